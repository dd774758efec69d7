"""`switchyard train` and `switchyard eval` end to end on a tiny outcomes file (real MiniLM)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from switchyard.cli import _register, app
from switchyard.learn.artifacts import load_router


def write_outcomes(path: Path, rows: int = 60) -> None:
    """Maths prompts need the strong model; greetings do not."""
    lines = []
    for i in range(rows):
        maths = i % 2 == 0
        prompt = (f"Compute the integral of x^{i} dx and simplify the result" if maths
                  else f"Say hello to my colleague number {i} in a friendly way")
        outcomes = {"small": {"quality": 0.0 if maths else 1.0, "cost": 1e-5},
                    "large": {"quality": 1.0, "cost": 1e-3}}
        if i % 7 == 0:
            del outcomes["small"]  # missing outcomes are allowed
        lines.append(json.dumps({"id": str(i), "prompt": prompt, "category": None,
                                 "outcomes": outcomes}))
    path.write_text("\n".join(lines) + "\n")


def test_train_then_eval(tmp_path: Path) -> None:
    _register()
    data = tmp_path / "outcomes.jsonl"
    write_outcomes(data)
    cache = tmp_path / "emb"
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "--data", str(data), "--router", "knn", "--no-tune",
                                  "--out", str(tmp_path / "r.npz"), "--features", "full",
                                  "--embedding-cache", str(cache)])
    assert trained.exit_code == 0, trained.output
    router = load_router(tmp_path / "r.npz")
    assert router.models == ("large", "small") and router.feature_set == "full"
    assert router.extra_arrays["calibration.features"].shape[0] == 60
    from switchyard.routing.learned import embedding_of  # served with what it was trained on

    assert embedding_of(router) == (256, "fp32") and router.meta["embed_max_tokens"] == 256
    report = tmp_path / "eval.json"
    evaluated = runner.invoke(app, ["eval", "--data", str(data), "--routers", "knn,mf",
                                    "--no-tune", "--features", "full", "--json", str(report),
                                    "--plot", str(tmp_path / "p.png"),
                                    "--embedding-cache", str(cache)])
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads(report.read_text())["metrics"]
    assert {"knn", "mf", "oracle", "zero_router", "random"} <= set(metrics)
    assert metrics["oracle"]["aiq"] >= metrics["knn"]["aiq"] - 1e-9
    assert (tmp_path / "p.png").stat().st_size > 1000
