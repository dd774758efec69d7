"""Stable hashing, prompt-prefix block keys and hash rings shared by the KV-aware balancers.

Block keys
----------
A trace request (the simulator) carries `view.prefix_blocks`: Mooncake `hash_ids`, one per
512-token block, where equal ids mean an identical prefix up to and including that block. Those
ids are used as they are.

A live request carries text instead. Its blocks are derived per message: every message (role +
text) is cut into pieces of at most `LIVE_BLOCK_CHARS` characters (about 512 tokens at the
4-characters-per-token estimate used throughout the project), and each piece is hashed *chained*
with the hash of everything before it. Message-granular chaining is chosen over fixed-size chunks
of the joined text because a follow-up turn repeats the earlier messages byte for byte: every
block of turn N is then a block of turn N+1, whereas fixed chunks would never match the partial
last chunk of turn N. Hashes are 64-bit BLAKE2b (stable across processes, unlike `hash()`).

Affinity key
------------
Hash-ring balancers need one key per conversation. For traces it is the chain of the first
`key_blocks` blocks (default 2: in the Mooncake conversation trace block 0 is a system prompt
shared by all 12,031 requests, and the first two blocks separate 7,373 conversations). For live
requests it is the hash of the system text plus the first user message: stable across the turns
of one conversation and different between conversations.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Sequence

from switchyard.types import RequestView

LIVE_BLOCK_CHARS = 2048
CHARS_PER_TOKEN = 4


def stable_hash64(data: bytes, salt: bytes = b"") -> int:
    """64-bit BLAKE2b digest as an int; `salt` gives independent hash functions."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, salt=salt[:16]).digest(), "big")


def _int_bytes(value: int) -> bytes:
    return (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")


def chained_hash(items: Iterable[int], salt: bytes = b"") -> int:
    """Hash of a sequence of block ids (order-sensitive)."""
    acc = 0
    for item in items:
        acc = stable_hash64(_int_bytes(acc) + _int_bytes(item), salt)
    return acc


def text_blocks(view: RequestView, block_chars: int = LIVE_BLOCK_CHARS) -> tuple[int, ...]:
    """Chained per-message block hashes of a live request (see module docstring)."""
    return text_blocks_with_sizes(view, block_chars)[0]


def text_blocks_with_sizes(
    view: RequestView, block_chars: int = LIVE_BLOCK_CHARS
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Chained per-message block hashes and each block's size in characters."""
    blocks: list[int] = []
    acc = 0
    messages = view.messages or ()
    pieces: list[str] = []
    if messages:
        for message in messages:
            text = f"{message.role}\x1f{message.text}"
            starts = range(0, max(len(text), 1), block_chars)
            pieces.extend(text[i : i + block_chars] for i in starts)
    elif view.prompt:
        pieces = [view.prompt[i : i + block_chars] for i in range(0, len(view.prompt), block_chars)]
    for piece in pieces:
        acc = stable_hash64(_int_bytes(acc) + piece.encode("utf-8", "surrogatepass"))
        blocks.append(acc)
    return tuple(blocks), tuple(len(piece) for piece in pieces)


def request_blocks(view: RequestView) -> tuple[int, ...]:
    """Prefix block keys: the trace's ids when present, else derived from the text."""
    return view.prefix_blocks if view.prefix_blocks else text_blocks(view)


def blocks_and_token_ends(
    view: RequestView, block_tokens: int = 512
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Prefix block keys and, per block, the estimated prompt tokens up to its end.

    Trace blocks are `block_tokens` long (the last one partial); live blocks are sized by the
    characters/4 estimate. `ends[k - 1] / ends[-1]` is the token share of a k-block match."""
    if view.prefix_blocks:
        total = prompt_tokens_of(view)
        count = len(view.prefix_blocks)
        ends = tuple(min(total, block_tokens * (i + 1)) if i < count - 1 else max(total, 1)
                     for i in range(count))
        return view.prefix_blocks, ends
    blocks, sizes = text_blocks_with_sizes(view)
    running = 0
    token_ends: list[int] = []
    for size in sizes:
        running += size
        token_ends.append(max(1, running // CHARS_PER_TOKEN))
    return blocks, tuple(token_ends)


def prompt_tokens_of(view: RequestView) -> int:
    """Prompt size in tokens: the view's count, else the characters/4 estimate."""
    if view.prompt_tokens:
        return view.prompt_tokens
    return max(1, len(view.conversation_text) // CHARS_PER_TOKEN)


def affinity_key(view: RequestView, key_blocks: int) -> int:
    """One key per conversation (see module docstring)."""
    if view.prefix_blocks:
        return chained_hash(view.prefix_blocks[:key_blocks])
    first_user = next((m.text for m in view.messages if m.role == "user"), view.prompt)
    return stable_hash64(f"{view.system_text}\x1e{first_user}".encode("utf-8", "surrogatepass"))


class HashRing:
    """Consistent-hash ring of endpoint names with virtual nodes.

    Each endpoint owns `virtual_nodes` points placed by hashing `name#i` with this ring's salt,
    so two rings with different salts are independent, and adding or removing an endpoint moves
    only the keys on its own arcs (about 1/n of them).
    """

    def __init__(self, names: Sequence[str], virtual_nodes: int, salt: bytes = b"") -> None:
        points = sorted(
            (stable_hash64(f"{name}#{i}".encode(), salt), name)
            for name in names
            for i in range(virtual_nodes)
        )
        self.names = tuple(sorted(set(names)))
        self._hashes = [p for p, _ in points]
        self._owners = [n for _, n in points]

    def walk(self, key: int) -> Iterable[str]:
        """Distinct endpoint names clockwise from `key`'s position, each once."""
        size = len(self._hashes)
        start = bisect.bisect_left(self._hashes, key)
        seen: set[str] = set()
        for offset in range(size):
            name = self._owners[(start + offset) % size]
            if name not in seen:
                seen.add(name)
                yield name
                if len(seen) == len(self.names):
                    return

    def owner(self, key: int) -> str:
        return next(iter(self.walk(key)))


class RingCache:
    """Rebuilds a ring only when the set of endpoint names changes."""

    def __init__(self, virtual_nodes: int, salt: bytes = b"") -> None:
        self._virtual_nodes = virtual_nodes
        self._salt = salt
        self._ring: HashRing | None = None

    def ring_for(self, names: Sequence[str]) -> HashRing:
        key = tuple(sorted(names))
        if self._ring is None or self._ring.names != key:
            self._ring = HashRing(key, self._virtual_nodes, self._salt)
        return self._ring
