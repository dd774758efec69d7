"""Cost–quality plot: every router's hull, single models and the oracle as points (PNG)."""

from __future__ import annotations

from pathlib import Path

from switchyard.learn.report import EvalReport


def plot_report(report: EvalReport, path: Path | str, title: str | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5.5), dpi=90)
    ref = report.reference
    for curve in report.curves:
        if curve.kind == "router":
            hull = curve.hull
            line = axes.plot(hull.costs, hull.qualities, "-", linewidth=1.6, label=curve.name)[0]
            axes.plot(curve.costs, curve.qualities, ".", markersize=2, alpha=0.4,
                      color=line.get_color())
        elif curve.name == "oracle":
            axes.plot(curve.costs[-1:], curve.qualities[-1:], "*", markersize=12,
                      color="black", label="oracle")
        elif curve.name == "zero_router":
            axes.plot(curve.costs, curve.qualities, "--", color="grey", linewidth=1,
                      label="zero router (single-model hull)")
        elif curve.name == "random":
            axes.plot(curve.costs, curve.qualities, "x", color="grey", label="random")
    for curve in report.curves:
        if curve.kind != "single":
            continue
        axes.plot(curve.costs, curve.qualities, "o", color="tab:grey", markersize=5)
        axes.annotate(curve.name, (float(curve.costs[0]), float(curve.qualities[0])),
                      fontsize=6, xytext=(3, 3), textcoords="offset points")
    axes.axhline(ref.best_quality, color="tab:red", linewidth=0.6, linestyle=":")
    axes.set_xscale("log")
    axes.set_xlabel("mean cost per request (USD, log scale)")
    axes.set_ylabel("mean quality")
    axes.set_title(title or f"{report.dataset}: cost–quality (test split)")
    axes.legend(fontsize=7, loc="lower right")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target)
    plt.close(figure)
    return target
