"""One rule for tests whose inputs are not in the repository.

`../shared/data` (the project's real datasets, never committed) and the local model packages
exist on the development and CI machines but not in every checkout. Without them such a test
is skipped, saying what is missing; under CI=true a missing input is a failure, so CI can never
go green by skipping.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def missing(problem: str) -> NoReturn:
    """Fail under CI=true, else skip, with `problem` as the reason."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{problem} (required under CI=true)")
    pytest.skip(f"{problem}; the test needs it and is skipped only outside CI")


def require_shared_data(path: Path) -> Path:
    """`path` (under ../shared/data) if it exists; otherwise `missing()`."""
    if not path.exists():
        missing(f"shared data {path} is not present (../shared/data is not in the repository)")
    return path
