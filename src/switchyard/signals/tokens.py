"""Offline token counting: tiktoken encodings loaded from the files shipped in `bpe-openai`.

No network, ever: the `.tiktoken.gz` rank files inside the `bpe_openai` package are checked
against the SHA-256 that tiktoken itself expects, written into a private tiktoken cache
directory under the cache key tiktoken would use for the download URL, and tiktoken is asked
for the encoding with TIKTOKEN_CACHE_DIR pointing there. If anything is missing or differs,
no encoding is returned and callers fall back to a bytes-per-token estimate.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import importlib.util
import inspect
import logging
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from switchyard.types import RequestView

logger = logging.getLogger(__name__)

_BLOB_ROOT = "https://openaipublic.blob.core.windows.net/encodings/"
# encoding name -> SHA-256 of the uncompressed rank file, as tiktoken checks it.
_EXPECTED_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
OFFLINE_ENCODINGS = tuple(_EXPECTED_SHA256)
# Chat formatting overhead (role and separators), as in OpenAI's published counting recipe.
TOKENS_PER_MESSAGE = 4  # 3 separator tokens + 1 for the role name (one token in both)
TOKENS_REPLY_PRIMING = 3
_ENV_LOCK = threading.Lock()


class Encoder(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


def _cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"switchyard-tiktoken-{os.getuid()}"


def _packaged_file(name: str) -> Path | None:
    """The `.tiktoken.gz` file inside bpe-openai, found without importing the package (its
    import eagerly parses rank files, which takes seconds)."""
    spec = importlib.util.find_spec("bpe_openai")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "data" / f"{name}.tiktoken.gz"
    return path if path.is_file() else None


def _seed_cache(name: str, cache_dir: Path) -> bool:
    """Place the shipped rank file where tiktoken looks for its download; True when in place."""
    url = f"{_BLOB_ROOT}{name}.tiktoken"
    target = cache_dir / hashlib.sha1(url.encode()).hexdigest()
    expected = _EXPECTED_SHA256[name]
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == expected:
        return True
    packaged = _packaged_file(name)
    if packaged is None:
        logger.warning("package bpe-openai (with the %s file) is not installed", name)
        return False
    data = gzip.decompress(packaged.read_bytes())
    if hashlib.sha256(data).hexdigest() != expected:
        logger.warning("bpe-openai's %s file does not match tiktoken's hash", name)
        return False
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(data)
    partial.replace(target)
    return True


def _tiktoken_expects(name: str) -> bool:
    """Whether the installed tiktoken checks the same file hash: otherwise it would discard the
    seeded file and download its own, so no encoding is loaded at all."""
    public = importlib.import_module("tiktoken_ext.openai_public")
    if _EXPECTED_SHA256[name] in inspect.getsource(public):
        return True
    logger.warning("the installed tiktoken expects a different %s file; estimating tokens", name)
    return False


def load_offline_encoding(name: str, cache_dir: Path | None = None) -> Encoder | None:
    """The tiktoken encoding `name` built from local files only, or None when unavailable."""
    if name not in _EXPECTED_SHA256:
        logger.warning("no offline file for encoding %r; known: %s", name, OFFLINE_ENCODINGS)
        return None
    directory = cache_dir or _cache_dir()
    try:
        import tiktoken

        if not _tiktoken_expects(name) or not _seed_cache(name, directory):
            return None
        with _ENV_LOCK:
            previous = os.environ.get("TIKTOKEN_CACHE_DIR")
            os.environ["TIKTOKEN_CACHE_DIR"] = str(directory)
            try:
                encoding: Encoder = tiktoken.get_encoding(name)
            finally:
                if previous is None:
                    os.environ.pop("TIKTOKEN_CACHE_DIR", None)
                else:
                    os.environ["TIKTOKEN_CACHE_DIR"] = previous
    except (ImportError, OSError, TypeError, ValueError) as exc:
        logger.warning("cannot load encoding %r offline: %s", name, exc)
        return None
    return encoding


class TokenCountCache:
    """Token counts of long texts seen recently (system prompts, conversation history).

    Clients resend the same system prompt and history with every turn; hashing a text is about
    a hundred times cheaper than tokenizing it. Bounded by total characters held: when full it
    starts over. Only texts of at least `min_chars` are kept (short ones are cheap to count).
    """

    def __init__(self, max_chars: int = 4_000_000, min_chars: int = 256) -> None:
        self.max_chars = max_chars
        self.min_chars = min_chars
        self.counts: dict[str, int] = {}
        self.chars = 0

    def get(self, text: str) -> int | None:
        return self.counts.get(text) if len(text) >= self.min_chars else None

    def put(self, text: str, count: int) -> None:
        if len(text) < self.min_chars or len(text) > self.max_chars:
            return
        if self.chars + len(text) > self.max_chars:
            self.counts = {}
            self.chars = 0
        self.counts[text] = count
        self.chars += len(text)


@dataclass(frozen=True, slots=True)
class TokenCounter:
    """Counts prompt tokens of a request; `encoder=None` means bytes-per-token estimation."""

    encoder: Encoder | None
    bytes_per_token: float = 4.0
    cache: TokenCountCache = field(default_factory=TokenCountCache)

    def count_text(self, text: str) -> int:
        if not text:
            return 0
        if self.encoder is None:
            return max(1, round(len(text.encode("utf-8")) / self.bytes_per_token))
        cached = self.cache.get(text)
        if cached is not None:
            return cached
        count = len(self.encoder.encode_ordinary(text))
        self.cache.put(text, count)
        return count

    def count_request(self, view: RequestView) -> int:
        """Prompt tokens: the given count if the view has one, else the text plus overheads."""
        if view.prompt_tokens > 0:
            return view.prompt_tokens
        if not view.messages:
            return self.count_text(view.prompt)
        total = TOKENS_REPLY_PRIMING
        for message in view.messages:
            total += TOKENS_PER_MESSAGE + self.count_text(message.text)
        return total
