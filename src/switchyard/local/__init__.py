"""Local model fleet: GGUF model sources from PyPI packages and supervised llama.cpp servers."""

from pathlib import Path


def default_config_path() -> Path:
    """The default configuration (`examples/local.yaml` in the repo), shipped in the package."""
    return Path(__file__).resolve().parent / "local.yaml"
