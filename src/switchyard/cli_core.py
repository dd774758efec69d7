"""Core commands: serve, config validate|schema, route."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console

from switchyard.config import SwitchyardConfig, load_config
from switchyard.errors import ConfigError, SwitchyardError

config_app = typer.Typer(help="Validate configuration files or print their JSON Schema.",
                         no_args_is_help=True)
_DEFAULT_CONFIG = Path("examples/local.yaml")


def _load_or_exit(path: Path) -> SwitchyardConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        console = Console(stderr=True)
        console.print(f"[red]{len(exc.problems)} configuration error(s)[/red]")
        for problem in exc.problems:
            console.print(f"  {problem}", markup=False, highlight=False)
        raise typer.Exit(2) from None


def default_config_path() -> Path:
    """The configuration `serve` uses when given none (the local llama.cpp fleet)."""
    from switchyard.local import default_config_path as packaged_local

    return _DEFAULT_CONFIG if _DEFAULT_CONFIG.is_file() else packaged_local()


@config_app.command("validate")
def validate(file: Annotated[Path, typer.Argument(help="YAML configuration file")]) -> None:
    """Check FILE; print every error with its line and key path; exit 2 on errors."""
    cfg = _load_or_exit(file)
    typer.echo(
        f"{file}: OK ({len(cfg.models)} models, {len(cfg.pools)} pools, "
        f"{len(cfg.routing.decisions)} decisions)"
    )


@config_app.command("schema")
def schema() -> None:
    """Print the configuration's JSON Schema."""
    typer.echo(json.dumps(SwitchyardConfig.model_json_schema(by_alias=True), indent=2))


def serve(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config")] = None,
    host: Annotated[str | None, typer.Option(help="override server.host")] = None,
    port: Annotated[int | None, typer.Option(help="override server.port")] = None,
    log_level: Annotated[str, typer.Option(help="debug|info|warning|error")] = "info",
) -> None:
    """Run the gateway."""
    import uvicorn

    from switchyard.server.app import create_app

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # no line per readiness probe
    path = config or default_config_path()
    cfg = _load_or_exit(path)
    app = create_app(cfg, path.resolve().parent)
    uvicorn.run(
        app,
        host=host or cfg.server.host,
        port=port if port is not None else cfg.server.port,
        loop="uvloop",
        http="httptools",
        log_level=log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=int(cfg.server.graceful_shutdown_s),
    )


def route(
    prompt: Annotated[str, typer.Argument(help="user message to route")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config")] = None,
    model: Annotated[str, typer.Option(help="requested model")] = "auto",
    explain: Annotated[bool, typer.Option("--explain", help="show every signal")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show which decision and model PROMPT would get, and why (no model is called)."""
    from switchyard.gateway import Gateway
    from switchyard.routing.explain import decision_to_dict, explain_table

    path = config or default_config_path()
    cfg = _load_or_exit(path)
    body = orjson.dumps({"model": model, "messages": [{"role": "user", "content": prompt}]})

    async def run() -> None:
        gateway = Gateway(cfg, path.resolve().parent)
        try:
            await gateway.prepare_signals()
            _, signals, decision = await gateway.route(body, {})
        finally:
            await gateway.close_signal_resources()
        if as_json:
            typer.echo(json.dumps(decision_to_dict(decision, signals), indent=2))
        else:
            Console().print(explain_table(decision, signals))

    try:
        asyncio.run(run())
    except SwitchyardError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    _ = explain


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
    app.command("serve")(serve)
    app.command("route")(route)
