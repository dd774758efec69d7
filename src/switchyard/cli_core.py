"""Core commands: serve, config validate|schema, route."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Placeholder until the gateway lands; filled in by the gateway core work."""
    _ = app
