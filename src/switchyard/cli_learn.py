"""`switchyard train` and `switchyard eval`: learned cost–quality routers, offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from switchyard.errors import SwitchyardError

ROUTER_KINDS = ("knn", "mf", "mlp", "irt", "ensemble", "constant")
CALIBRATION_SAMPLE = 512
DEFAULT_FEATURES = "full+last"
FEATURES_OPTION = typer.Option("--features", help="full | full+last (see docs/learned-routing.md)")


EMBED_TOKENS_OPTION = typer.Option(
    "--embed-tokens", min=8, max=512,
    help="prompt tokens embedded (the served router embeds the same; default 256)")
EMBED_PRECISION_OPTION = typer.Option(
    "--embed-precision",
    help="fp32 | int8 MiniLM (int8: about half the CPU; the semantic cache key is 128/int8)")


def _featurise(prompts: tuple[str, ...], feature_set: str, cache: Path | None,
               embedding: tuple[int, str] | None = None) -> np.ndarray[Any, Any]:
    """Feature rows, embedded with `embedding` = (tokens, precision) (default 256, fp32)."""
    from switchyard.embed.corpus import embed_corpus
    from switchyard.embed.minilm import MiniLMEmbedder
    from switchyard.learn.features import TRAIN_EMBED_TOKENS, build_features

    tokens, precision = embedding or (TRAIN_EMBED_TOKENS, "fp32")
    if precision not in ("fp32", "int8"):
        raise typer.BadParameter(f"--embed-precision must be fp32 or int8, not {precision!r}")
    model = MiniLMEmbedder(max_length=tokens, precision="int8") if precision == "int8" else None
    return build_features(prompts, feature_set, lambda texts: embed_corpus(
        texts, cache_dir=cache, progress=True, max_length=tokens, embedder=model))


def _status(console: Console) -> Any:
    def show(message: str) -> None:
        console.log(message)

    return show


def train(
    data: Annotated[Path, typer.Option("--data", help="training outcomes JSONL(.gz)")],
    router: Annotated[str, typer.Option("--router", help="knn | mf | mlp | irt | ensemble")],
    out: Annotated[Path, typer.Option("--out", help="artifact to write (.npz)")],
    tune_params: Annotated[bool, typer.Option("--tune/--no-tune",
                                              help="pick hyper-parameters by 3-fold CV")] = True,
    params: Annotated[str, typer.Option("--params", help="fixed hyper-parameters (JSON)")] = "",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    features_set: Annotated[str, FEATURES_OPTION] = DEFAULT_FEATURES,
    cache: Annotated[Path | None, typer.Option("--embedding-cache")] = None,
    embed_tokens: Annotated[int, EMBED_TOKENS_OPTION] = 256,
    embed_precision: Annotated[str, EMBED_PRECISION_OPTION] = "fp32",
) -> None:
    """Train a learned router on routing outcomes and save it as a versioned .npz artifact."""
    from switchyard.embed.minilm import INT8_MODEL_ID, MiniLMEmbedder
    from switchyard.learn.artifacts import save_router
    from switchyard.learn.datasets import load_outcomes
    from switchyard.learn.report import train_routers

    console = Console(stderr=True)
    if router not in ROUTER_KINDS:
        raise typer.BadParameter(f"unknown router {router!r}; use one of {ROUTER_KINDS}")
    try:
        dataset = load_outcomes(data)
        features = _featurise(dataset.prompts, features_set, cache, (embed_tokens, embed_precision))
        fixed = {router: json.loads(params)} if params else None
        kinds = ["knn", "mlp", "irt", "ensemble"] if router == "ensemble" else [router]
        routers, tuning, seconds = train_routers(
            dataset, features, kinds, tune_params=tune_params and not params, seed=seed,
            fixed=fixed, progress=_status(console))
    except SwitchyardError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    trained = routers[router]
    # recorded so that serving embeds the same way (routing.learned.embedding_of)
    trained.embedder_id = INT8_MODEL_ID if embed_precision == "int8" else MiniLMEmbedder.model_id
    trained.meta["embed_max_tokens"] = embed_tokens
    trained.feature_set = features_set
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(dataset), size=min(CALIBRATION_SAMPLE, len(dataset)), replace=False)
    trained.extra_arrays["calibration.features"] = features[sample].astype(np.float16)
    trained.extra_arrays["calibration.prompt_chars"] = np.array(
        [len(dataset.prompts[i]) for i in sample], dtype=np.int64)
    if router in tuning:
        trained.meta["cv_score"] = tuning[router].cv_score
    save_router(trained, out)
    console.print(f"[green]saved[/green] {out}  ({router}, {len(dataset)} prompts, "
                  f"{len(dataset.models)} models, fit {seconds.get(router, 0.0):.1f}s)")


def evaluate(
    data: Annotated[Path, typer.Option("--data", help="test outcomes JSONL(.gz)")],
    routers: Annotated[str, typer.Option(
        "--routers", help="comma list of router kinds (trained on --train) or .npz artifacts")],
    train_data: Annotated[Path | None, typer.Option(
        "--train", help="training outcomes for router kinds; default: 80/20 prompt-hash "
                        "split of --data")] = None,
    baselines: Annotated[str, typer.Option("--baselines", help="'all' or 'none'")] = "all",
    plot: Annotated[Path | None, typer.Option("--plot", help="PNG of all curves")] = None,
    json_out: Annotated[Path | None, typer.Option("--json")] = None,
    markdown: Annotated[Path | None, typer.Option("--markdown")] = None,
    tune_params: Annotated[bool, typer.Option("--tune/--no-tune")] = True,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    features_set: Annotated[str, FEATURES_OPTION] = DEFAULT_FEATURES,
    cache: Annotated[Path | None, typer.Option("--embedding-cache")] = None,
) -> None:
    """Sweep λ for each router on the test split; AIQ, APGR/CPT, cost to match the best model."""
    from switchyard.learn.artifacts import load_router
    from switchyard.learn.datasets import load_outcomes, split_by_prompt_hash
    from switchyard.learn.report import (
        evaluate_all,
        markdown_table,
        report_json,
        train_routers,
    )
    from switchyard.routing.learned import embedding_of

    console = Console(stderr=True)
    try:
        test = load_outcomes(data)
        train_set = load_outcomes(train_data) if train_data else None
        if train_set is None:
            train_set, test = split_by_prompt_hash(test)
        names = [n.strip() for n in routers.split(",") if n.strip()]
        kinds = [n for n in names if not n.endswith(".npz")]
        loaded = {Path(n).stem: load_router(n) for n in names if n.endswith(".npz")}
        embeddings = {embedding_of(router) for router in loaded.values()}
        if len(embeddings) > 1:
            raise typer.BadParameter(f"artifacts embed prompts differently: {embeddings}")
        embedding = embeddings.pop() if embeddings else None  # kinds trained here use it too
        trained: dict[str, Any] = dict(loaded)
        if kinds:
            train_x = _featurise(train_set.prompts, features_set, cache, embedding)
            fitted, _, _ = train_routers(train_set, train_x, kinds, tune_params=tune_params,
                                         seed=seed, progress=_status(console))
            for kind in kinds:
                fitted[kind].feature_set = features_set
            trained.update({k: fitted[k] for k in kinds})
        feature_sets = {r.feature_set for r in trained.values()}
        if len(feature_sets) != 1:
            raise typer.BadParameter(f"routers use different feature sets: {feature_sets}")
        test_x = _featurise(test.prompts, feature_sets.pop(), cache, embedding)
        for name, router in trained.items():
            if tuple(router.models) != test.models:
                test = test.restrict_models(router.models)
                console.log(f"{name}: evaluating on its {len(router.models)} models")
        report = evaluate_all(train_set, test, trained, test_x, seed)
    except SwitchyardError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    if baselines == "none":
        report.metrics = {k: v for k, v in report.metrics.items() if k in trained}
    _print_table(report.metrics)
    if markdown:
        markdown.write_text(markdown_table(report) + "\n")
    if json_out:
        json_out.write_text(json.dumps(report_json(report), indent=2))
    if plot:
        from switchyard.learn.plots import plot_report

        plot_report(report, plot)
        console.print(f"plot: {plot}")


def _print_table(metrics: dict[str, dict[str, float | None]]) -> None:
    columns = sorted({k for m in metrics.values() for k in m})
    table = Table(title="routing evaluation (test split)")
    table.add_column("router")
    for column in columns:
        table.add_column(column, justify="right")
    for name, values in metrics.items():
        table.add_row(name, *[("—" if values.get(c) is None else f"{values[c]:.4g}")
                              for c in columns])
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("eval")(evaluate)
