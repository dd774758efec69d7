"""The Embedder contract: texts in, L2-normalised float32 vectors out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Turns texts into unit-length vectors of size `dim` without blocking the event loop."""

    dim: int

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """Return a float32 array of shape [len(texts), dim]; rows are L2-normalised."""
        ...


def l2_normalise(matrix: npt.NDArray[np.floating]) -> Vectors:
    """Scale each row to unit length (all-zero rows stay zero)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    normalised: Vectors = (matrix / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return normalised
