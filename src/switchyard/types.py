"""Frozen value types shared by signals, the decision engine, balancers and records.

Everything here is a plain value: no I/O, no clients. The live gateway, the offline evaluator
and the fleet simulator build and consume the same types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

EMPTY_MAP: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One conversation turn reduced to its role and its text content."""

    role: str
    text: str


@dataclass(frozen=True, slots=True)
class RequestView:
    """What routing code may look at: a read-only summary of one inference request.

    `prefix_blocks` and `prompt_tokens` let the simulator describe a request that has no text
    (trace replay); live requests leave them empty and balancers derive keys from the text.
    """

    request_id: str
    model: str
    kind: Literal["chat", "completion"] = "chat"
    messages: tuple[ChatMessage, ...] = ()
    prompt: str = ""
    has_tools: bool = False
    stream: bool = False
    tenant: str = "default"
    headers: Mapping[str, str] = field(default_factory=lambda: EMPTY_MAP)
    metadata: Mapping[str, str] = field(default_factory=lambda: EMPTY_MAP)
    user: str = ""
    prefix_blocks: tuple[int, ...] = ()
    prompt_tokens: int = 0

    @property
    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.role == "user":
                return message.text
        return self.prompt

    @property
    def conversation_text(self) -> str:
        if not self.messages:
            return self.prompt
        return "\n".join(m.text for m in self.messages)

    @property
    def system_text(self) -> str:
        return "\n".join(m.text for m in self.messages if m.role in ("system", "developer"))

    @property
    def user_turns(self) -> int:
        return sum(1 for m in self.messages if m.role == "user")

    @property
    def session_key(self) -> str:
        """Conversation identity for sticky routing: explicit id, else user, else first turn."""
        explicit = self.headers.get("x-session-id") or self.metadata.get("conversation_id")
        if explicit:
            return explicit
        if self.user:
            return self.user
        first = next((m.text for m in self.messages if m.role == "user"), self.prompt)
        return first[:256]


@dataclass(frozen=True, slots=True)
class SignalResult:
    """Outcome of one signal: labels it assigns, a score, and how long it took."""

    name: str
    labels: tuple[str, ...] = ()
    score: float = 0.0
    value: float | None = None
    confidence: float = 1.0
    latency_ms: float = 0.0
    error: str | None = None
    details: Mapping[str, float] = field(default_factory=dict)


Signals = Mapping[str, SignalResult]


class Action(StrEnum):
    ROUTE = "route"
    BLOCK = "block"


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """One evaluated condition (or rule) and its value, for explaining a decision."""

    path: str
    condition: str
    value: bool
    observed: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    """Which decision fired and what it asks for: ordered candidate models, or a block."""

    name: str
    action: Action
    models: tuple[str, ...]
    priority: int = 0
    message: str = ""
    reason: str = ""
    trace: tuple[TraceEntry, ...] = ()
    # a learned strategy's per-candidate predictions, e.g. {"m1.quality": 0.7, "m1.cost": 2e-5}
    predictions: Mapping[str, float] = field(default_factory=dict)


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class EndpointState:
    """Snapshot of one replica as balancers see it."""

    name: str
    pool: str
    url: str = ""
    weight: float = 1.0
    healthy: bool = True
    circuit: CircuitState = CircuitState.CLOSED
    in_flight: int = 0
    max_concurrency: int = 0
    pending_prefill_tokens: int = 0
    ewma_latency_ms: float = 0.0

    @property
    def available(self) -> bool:
        return self.healthy and self.circuit != CircuitState.OPEN

    @property
    def saturated(self) -> bool:
        return self.max_concurrency > 0 and self.in_flight >= self.max_concurrency


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True, slots=True)
class RouteRecord:
    """One line of the route log: what was decided and what it cost. No prompt text by default."""

    request_id: str
    time: float
    tenant: str
    decision: str
    model: str
    endpoint: str
    attempts: int
    status: int
    latency_ms: float
    ttft_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    stream: bool = False
    error: str | None = None
    cache: str | None = None
    prompt: str | None = None
    cost_saved_usd: float = 0.0  # a cache hit: what the cached answer cost when it was made
