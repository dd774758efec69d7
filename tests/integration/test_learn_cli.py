"""`switchyard train` and `switchyard eval` end to end on a tiny outcomes file (real MiniLM)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
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


def test_train_with_a_cheaper_embedding_records_it_and_eval_uses_it(tmp_path: Path) -> None:
    _register()
    data = tmp_path / "outcomes.jsonl"
    write_outcomes(data)
    runner = CliRunner()
    common = ["--router", "knn", "--no-tune", "--features", "full",
              "--embedding-cache", str(tmp_path / "emb")]
    for name, extra in (("int8", ["--embed-tokens", "128", "--embed-precision", "int8"]),
                        ("fp32", [])):
        result = runner.invoke(app, ["train", "--data", str(data), "--out",
                                     str(tmp_path / f"{name}.npz"), *common, *extra])
        assert result.exit_code == 0, result.output
    from switchyard.routing.learned import embedding_of

    assert embedding_of(load_router(tmp_path / "int8.npz")) == (128, "int8")
    int8_rows = load_router(tmp_path / "int8.npz").extra_arrays["calibration.features"]
    fp32_rows = load_router(tmp_path / "fp32.npz").extra_arrays["calibration.features"]
    assert not np.allclose(int8_rows, fp32_rows)  # really embedded another way
    evaluated = runner.invoke(app, ["eval", "--data", str(data), "--routers",
                                    str(tmp_path / "int8.npz"), "--no-tune", "--features", "full",
                                    "--embedding-cache", str(tmp_path / "emb")])
    assert evaluated.exit_code == 0, evaluated.output
    mixed = runner.invoke(app, ["eval", "--data", str(data), "--routers",
                                f"{tmp_path / 'int8.npz'},{tmp_path / 'fp32.npz'}",
                                "--no-tune", "--features", "full"])
    assert mixed.exit_code != 0 and "embed prompts differently" in mixed.output
