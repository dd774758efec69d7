"""Cost–quality metrics for routers (RouterBench AIQ, RouteLLM APGR/CPT) and the hull they use.

A router evaluated at several operating points (λ values or thresholds) gives points
(mean cost per request, mean quality). Mixing two operating points at random realises any point
on the segment between them, so what a router can achieve is the *non-decreasing concave hull*
of its points: the upper convex hull from its cheapest point up to its best-quality point, flat
afterwards (spending more never has to lower quality).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Hull:
    """Vertices of a non-decreasing concave hull, sorted by cost (strictly increasing)."""

    costs: FloatArray
    qualities: FloatArray

    def value(self, cost: float) -> float:
        """Best quality reachable at mean cost `cost`; NaN below the cheapest vertex."""
        if cost < self.costs[0] - 1e-15 * max(1.0, abs(self.costs[0])):
            return float("nan")
        return float(np.interp(cost, self.costs, self.qualities))

    def cost_to_reach(self, quality: float) -> float:
        """Smallest mean cost whose hull quality is >= `quality`; inf if never reached."""
        reached = np.flatnonzero(self.qualities >= quality - 1e-12)
        if reached.size == 0:
            return float("inf")
        k = int(reached[0])
        if k == 0:
            return float(self.costs[0])
        c0, c1 = self.costs[k - 1], self.costs[k]
        q0, q1 = self.qualities[k - 1], self.qualities[k]
        return float(c0 + (c1 - c0) * (quality - q0) / (q1 - q0))


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def nondecreasing_hull(costs: Sequence[float] | FloatArray,
                       qualities: Sequence[float] | FloatArray) -> Hull:
    """Upper convex hull from the cheapest point to the best point (cheapest among best)."""
    c = np.asarray(costs, dtype=np.float64)
    q = np.asarray(qualities, dtype=np.float64)
    keep = ~(np.isnan(c) | np.isnan(q))
    c, q = c[keep], q[keep]
    if c.size == 0:
        raise ValueError("a hull needs at least one point")
    order = np.lexsort((-q, c))  # by cost, then best quality first
    points: list[tuple[float, float]] = []
    for i in order:
        point = (float(c[i]), float(q[i]))
        if points and point[0] == points[-1][0]:
            continue  # same cost, lower (or equal) quality: dominated
        while len(points) >= 2 and _cross(points[-2], points[-1], point) >= 0:
            points.pop()
        points.append(point)
    best = max(range(len(points)), key=lambda k: (points[k][1], -points[k][0]))
    points = points[: best + 1]
    return Hull(np.array([p[0] for p in points]), np.array([p[1] for p in points]))


def aiq(hull: Hull, cost_low: float, cost_high: float) -> float:
    """RouterBench AIQ: area under the hull over [cost_low, cost_high] divided by its width.

    Below the hull's cheapest vertex the curve is taken as that vertex's quality (routers swept
    down to "always the cheapest model" start at `cost_low` anyway); above its last vertex the
    curve is flat.
    """
    if cost_high <= cost_low:
        raise ValueError("cost_high must exceed cost_low")
    inner = hull.costs[(hull.costs > cost_low) & (hull.costs < cost_high)]
    xs = np.concatenate([[cost_low], inner, [cost_high]])
    ys = np.interp(xs, hull.costs, hull.qualities)
    area = float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2.0))
    return area / (cost_high - cost_low)


@dataclass(frozen=True)
class StrongShareCurve:
    """Two-model routing: share of calls sent to the strong model vs. mean quality."""

    shares: FloatArray
    qualities: FloatArray
    weak_quality: float
    strong_quality: float

    def pgr(self) -> FloatArray:
        """Performance gap recovered at each share (RouteLLM)."""
        gap = self.strong_quality - self.weak_quality
        if gap == 0:
            raise ValueError("strong and weak models have the same quality: PGR undefined")
        return (self.qualities - self.weak_quality) / gap


def strong_share_curve(scores: FloatArray, weak_quality: FloatArray,
                       strong_quality: FloatArray, seed: int = 0) -> StrongShareCurve:
    """Exact curve of a threshold router: the k highest-scoring prompts go to the strong model.

    Ties in `scores` are broken at random (seeded). A constant score is the random router, whose
    expected curve (a straight line from weak to strong) is returned exactly.
    """
    n = scores.shape[0]
    if n and float(np.ptp(scores)) == 0.0:
        shares = np.arange(n + 1, dtype=np.float64) / n
        weak, strong = float(np.mean(weak_quality)), float(np.mean(strong_quality))
        return StrongShareCurve(shares, weak + shares * (strong - weak), weak, strong)
    shuffle = np.random.default_rng(seed).permutation(n)
    order = shuffle[np.argsort(-scores[shuffle], kind="stable")]
    gain = (strong_quality - weak_quality)[order]
    base = float(np.sum(weak_quality))
    totals = base + np.concatenate([[0.0], np.cumsum(gain)])
    shares = np.arange(n + 1, dtype=np.float64) / n
    return StrongShareCurve(shares, totals / n, float(np.mean(weak_quality)),
                            float(np.mean(strong_quality)))


def apgr(curve: StrongShareCurve) -> float:
    """Average PGR over strong-call share in [0, 1] (trapezoid; RouteLLM's APGR)."""
    x, y = curve.shares, curve.pgr()
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


def cpt(curve: StrongShareCurve, pgr_target: float) -> float:
    """Call-performance threshold: the smallest strong share whose PGR reaches the target."""
    reached = np.flatnonzero(curve.pgr() >= pgr_target - 1e-12)
    return float(curve.shares[reached[0]]) if reached.size else float("nan")


def oracle_choice(quality: FloatArray, cost: FloatArray) -> npt.NDArray[np.int64]:
    """Per row: the model with the best quality, the cheapest among ties (NaN = unavailable)."""
    q = np.where(np.isnan(quality), -np.inf, quality)
    best = np.max(q, axis=1, keepdims=True)
    c = np.where(q >= best - 1e-12, np.nan_to_num(cost, nan=np.inf), np.inf)
    return np.asarray(np.argmin(c, axis=1), dtype=np.int64)


def realised(choice: npt.NDArray[np.int64], quality: FloatArray,
             cost: FloatArray) -> tuple[float, float]:
    """(mean cost, mean quality) of a per-row model choice."""
    rows = np.arange(choice.shape[0])
    return float(np.mean(cost[rows, choice])), float(np.mean(quality[rows, choice]))
