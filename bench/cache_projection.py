"""Does a learned projection of the MiniLM embeddings separate QQP duplicates better than cosine?

The issue suggests "a learned projection of the embeddings, trained on the tuning part only" as one
way to the hit-quality target. This trains W (k x 384) so that sigmoid(alpha * cos(W a, W b) + beta)
predicts the duplicate label (logistic loss, L2 towards the first k rows of the identity, full-batch
Adam, numpy only) on the tuning half, picks k and the L2 weight by 2-fold CV on the tuning half,
and reports the pairwise hit rate on duplicates at a 2% false-hit rate on the test half, next to
plain cosine (same split as bench/cache.py).

    python bench/cache_projection.py
"""

from __future__ import annotations

import sys
from itertools import product
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cache_quality import hit_rate_at_fpr, load_pairs  # noqa: E402

Floats = npt.NDArray[np.float64]
EPOCHS = 300
LEARNING_RATE = 0.01


def cosines(w: Floats, a: Floats, b: Floats) -> tuple[Floats, Floats, Floats, Floats, Floats]:
    wa, wb = a @ w.T, b @ w.T
    na, nb = np.linalg.norm(wa, axis=1), np.linalg.norm(wb, axis=1)
    return (wa * wb).sum(1) / (na * nb), wa, wb, na, nb


def train(a: Floats, b: Floats, y: Floats, k: int, l2: float, seed: int = 0) -> tuple[Floats, float,
                                                                                       float]:
    rng = np.random.default_rng(seed)
    anchor = np.eye(a.shape[1])[:k]
    params: list[Floats] = [anchor + 0.01 * rng.standard_normal(anchor.shape),
                            np.array(10.0), np.array(-8.0)]  # W, alpha, beta
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    for epoch in range(1, EPOCHS + 1):
        w, alpha, beta = params
        cos, wa, wb, na, nb = cosines(w, a, b)
        p = 1.0 / (1.0 + np.exp(-(alpha * cos + beta)))
        g = (p - y) / len(y)  # dLoss/dscore
        gc = (g * alpha)[:, None]
        d_wa = gc * (wb / (na * nb)[:, None] - cos[:, None] * wa / (na**2)[:, None])
        d_wb = gc * (wa / (na * nb)[:, None] - cos[:, None] * wb / (nb**2)[:, None])
        grads = [d_wa.T @ a + d_wb.T @ b + l2 * (w - anchor), np.array((g * cos).sum()),
                 np.array(g.sum())]
        for i, grad in enumerate(grads):
            first[i] = 0.9 * first[i] + 0.1 * grad
            second[i] = 0.999 * second[i] + 0.001 * grad**2
            corrected = first[i] / (1 - 0.9**epoch)
            params[i] = params[i] - LEARNING_RATE * corrected / (
                np.sqrt(second[i] / (1 - 0.999**epoch)) + 1e-8)
    return params[0], float(params[1]), float(params[2])


def main() -> None:
    data = load_pairs()
    a, b = data.va.astype(np.float64), data.vb.astype(np.float64)
    y = data.label.astype(np.float64)
    tune, test = data.tune, data.test
    plain = (a * b).sum(1)
    half = len(tune) // 2
    folds = ((tune[:half], tune[half:]), (tune[half:], tune[:half]))
    results = []
    for k, l2 in product((384, 128), (1e-3, 1e-2)):
        cv = []
        for fit, held in folds:
            w, alpha, beta = train(a[fit], b[fit], y[fit], k, l2)
            cv.append(hit_rate_at_fpr(alpha * cosines(w, a[held], b[held])[0] + beta, y[held],
                                      0.02))
        results.append((float(np.mean(cv)), k, l2))
        print(f"k={k} l2={l2}: CV hit rate on duplicates at 2% false hits {np.mean(cv):.3f}")
    _, k, l2 = max(results)
    w, alpha, beta = train(a[tune], b[tune], y[tune], k, l2)
    projected = alpha * cosines(w, a[test], b[test])[0] + beta
    print(f"chosen k={k} l2={l2}; test half, duplicates hit at 2% false hits: "
          f"projection {hit_rate_at_fpr(projected, y[test], 0.02):.3f}, "
          f"cosine {hit_rate_at_fpr(plain[test], y[test], 0.02):.3f}")


if __name__ == "__main__":
    main()
