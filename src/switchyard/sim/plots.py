"""PNG charts of a set of runs: TTFT CDFs per policy and busy time per replica."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from switchyard.sim.engine import SimResult


def plot_runs(runs: Mapping[str, SimResult], path: Path, ttft_slo_s: float, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (cdf_axes, load_axes) = plt.subplots(1, 2, figsize=(12, 4.5))
    for label, result in runs.items():
        ttft = np.sort(np.asarray(result.table.first_token) - np.asarray(result.table.arrival))
        cdf_axes.plot(ttft, np.arange(1, len(ttft) + 1) / len(ttft), label=label)
    cdf_axes.axvline(ttft_slo_s, color="grey", linestyle="--", linewidth=1)
    cdf_axes.axhline(0.9, color="grey", linestyle=":", linewidth=1)
    cdf_axes.set_xscale("log")
    cdf_axes.set_xlabel("TTFT (s)")
    cdf_axes.set_ylabel("fraction of requests")
    cdf_axes.legend(fontsize=8)
    width = 0.8 / max(len(runs), 1)
    for offset, (label, result) in enumerate(runs.items()):
        work = np.asarray([r.prefilled_tokens for r in result.replicas], dtype=np.float64)
        share = work / max(float(work.mean()), 1.0)
        positions = np.arange(len(share)) + offset * width
        load_axes.bar(positions, share, width=width, label=label)
    load_axes.set_xlabel("replica")
    load_axes.set_ylabel("prefilled (uncached) tokens / mean")
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
