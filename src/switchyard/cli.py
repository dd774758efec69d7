"""The `switchyard` command line. Each area registers its commands in `_register()`."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="switchyard",
    help="switchyard: an OpenAI-compatible LLM inference router.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    """Attach command groups from their own modules (one import line per area)."""
    from switchyard import cli_core

    cli_core.register(app)
    from switchyard import cli_sim

    cli_sim.register(app)
    from switchyard import cli_cache

    cli_cache.register(app)
    from switchyard import cli_local

    cli_local.register(app)
    from switchyard import cli_signals

    cli_signals.register(app)
    from switchyard import cli_learn

    cli_learn.register(app)


def main() -> None:
    _register()
    app()


if __name__ == "__main__":
    main()
