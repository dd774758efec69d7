"""DualMap: cache affinity from two hash rings plus power-of-two-choices load balance.

Choices settled on (and why):
- Key: `affinity_key(view, key_blocks=2)` — the first two 512-token blocks for trace requests
  (block 0 is the shared system prompt in the Mooncake conversation trace; two blocks identify a
  conversation), system text + first user message for live requests. All turns of a
  conversation therefore share their two candidates.
- Two independent hash functions: BLAKE2b salted `dualmap-a` / `dualmap-b`, each placing
  `virtual_nodes` points per endpoint on its own ring. Adding or removing an endpoint changes only
  the arcs it owns on each ring (~1/n of keys per ring). If ring B maps a key to ring A's
  endpoint, the next distinct endpoint clockwise on ring B is the second candidate.
- Choice: estimated TTFT = (pending prefill tokens x the endpoint's recent uncached share + this
  prompt's uncached tokens) / prefill rate; "uncached" uses the balancer's own approximate prefix
  index of what it sent where. The candidate with the lower estimate wins; ties go to fewer
  in-flight requests, then rotate (every pool-wide choice too).
- SLO switch: when even that estimate exceeds `switch_slo_fraction` x `ttft_slo_s`, affinity is
  dropped and the endpoint with the lowest estimate in the whole pool is taken. Requests with no
  prefix information at all always take that pool-wide choice.
- Hotspot migration (`rebalance`): a pure method the owner of the queues calls periodically
  (see its docstring). Every request moves at most once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from switchyard.config.pools import DualMapBalancerConfig
from switchyard.pools.balancer import Balancer, register_balancer
from switchyard.pools.hashing import (
    RingCache,
    affinity_key,
    blocks_and_token_ends,
    prompt_tokens_of,
)
from switchyard.pools.prefix_affinity import PrefixIndex
from switchyard.types import EndpointState, RequestView


@dataclass(frozen=True, slots=True)
class QueuedRequest:
    """A request waiting on an endpoint that has not started its prefill."""

    request_id: str
    view: RequestView
    waited_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Move:
    request_id: str
    source: str
    target: str


SHARE_EWMA_ALPHA = 0.1


@dataclass(frozen=True, slots=True)
class _PromptBlocks:
    """A prompt's block keys, token count at the end of each block, and total tokens."""

    blocks: tuple[int, ...]
    token_ends: tuple[int, ...]
    tokens: int

    @classmethod
    def of(cls, view: RequestView, block_tokens: int) -> _PromptBlocks:
        blocks, ends = blocks_and_token_ends(view, block_tokens)
        return cls(blocks, ends, prompt_tokens_of(view))


class DualMapBalancer:
    name = "dualmap"

    def __init__(self, config: DualMapBalancerConfig) -> None:
        self._config = config
        self._ring_a = RingCache(config.virtual_nodes, b"dualmap-a")
        self._ring_b = RingCache(config.virtual_nodes, b"dualmap-b")
        self.index = PrefixIndex(config.max_blocks_per_endpoint)
        self._moved: set[str] = set()
        # per endpoint: EWMA of (estimated uncached tokens / prompt tokens) of what was sent
        self._uncached_share: dict[str, float] = {}
        self._tiebreak = 0

    def candidates(self, names: Sequence[str], view: RequestView) -> tuple[str, str]:
        key = affinity_key(view, self._config.key_blocks)
        first = self._ring_a.ring_for(names).owner(key)
        for name in self._ring_b.ring_for(names).walk(key):
            if name != first:
                return first, name
        return first, first

    def uncached_tokens(self, endpoint: str, view: RequestView) -> int:
        return self._uncached(endpoint, _PromptBlocks.of(view, self._config.block_tokens))

    def _uncached(self, endpoint: str, prompt: _PromptBlocks) -> int:
        matched = self.index.matched_blocks(endpoint, prompt.blocks)
        cached = prompt.token_ends[matched - 1] if matched else 0
        return max(0, prompt.tokens - cached)

    def queued_work(self, endpoint: EndpointState) -> float:
        """Pending prompt tokens discounted by the cache share expected on this endpoint."""
        share = self._uncached_share.get(endpoint.name, 1.0)
        return endpoint.pending_prefill_tokens * share

    def _remember(self, endpoint: str, prompt: _PromptBlocks) -> None:
        share = self._uncached(endpoint, prompt) / prompt.tokens if prompt.tokens else 1.0
        old = self._uncached_share.get(endpoint, 1.0)
        self._uncached_share[endpoint] = old + SHARE_EWMA_ALPHA * (share - old)
        self.index.record(endpoint, prompt.blocks)

    def _lowest(self, endpoints: Sequence[EndpointState],
                cost: Callable[[EndpointState], float]) -> EndpointState:
        """The endpoint with the lowest cost; ties go to fewer in-flight requests, then rotate.
        (Taking the first of a tie sent every tie — all replicas idle, or no prefix information
        as on the Azure trace — to the same replica.)"""
        keyed = [((cost(e), e.in_flight / e.weight), e) for e in endpoints]
        best = min(key for key, _ in keyed)
        tied = [e for key, e in keyed if key == best]
        if len(tied) == 1:
            return tied[0]
        self._tiebreak += 1
        return tied[self._tiebreak % len(tied)]

    def estimated_ttft_s(self, endpoint: EndpointState, view: RequestView, extra: int = 0) -> float:
        prompt = _PromptBlocks.of(view, self._config.block_tokens)
        return self._estimate(endpoint, prompt, extra)

    def _estimate(self, endpoint: EndpointState, prompt: _PromptBlocks, extra: int = 0) -> float:
        work = self.queued_work(endpoint) + extra + self._uncached(endpoint.name, prompt)
        return work / (self._config.prefill_tokens_per_s * endpoint.weight)

    def _choice_cost(self, endpoint: EndpointState, prompt: _PromptBlocks) -> float:
        """Queue wait plus `cache_weight` x this prompt's uncached prefill time."""
        speed = self._config.prefill_tokens_per_s * endpoint.weight
        uncached = self._uncached(endpoint.name, prompt)
        return (self.queued_work(endpoint) + self._config.cache_weight * uncached) / speed

    def pick(self, endpoints: Sequence[EndpointState], view: RequestView) -> EndpointState:
        prompt = _PromptBlocks.of(view, self._config.block_tokens)
        if not prompt.blocks:  # nothing to be affine to: pure load-aware choice
            return self._lowest(endpoints, lambda e: self._estimate(e, prompt))
        by_name = {e.name: e for e in endpoints}
        options: tuple[str, ...] = self.candidates(list(by_name), view)
        if self._config.include_best_match:
            best = max(endpoints, key=lambda e: self.index.matched_blocks(e.name, prompt.blocks))
            options = (*options, best.name)
        chosen = self._lowest([by_name[name] for name in dict.fromkeys(options)],
                              lambda e: self._choice_cost(e, prompt))
        switch_s = self._config.switch_slo_fraction * self._config.ttft_slo_s
        if self._estimate(chosen, prompt) > switch_s:
            chosen = self._lowest(endpoints, lambda e: self._estimate(e, prompt))
        self._remember(chosen.name, prompt)
        return chosen

    def rebalance(
        self,
        endpoints: Sequence[EndpointState],
        queues: Mapping[str, Sequence[QueuedRequest]],
    ) -> list[Move]:
        """Moves that relieve hot endpoints; each request id is moved at most once.

        `queues` lists, per endpoint, the requests that have not started, oldest first. A
        request is a migration candidate when its endpoint's queue estimate exceeds
        `migrate_wait_s` or it has itself waited longer than that (a late request: the estimate
        missed something, e.g. the endpoint is out of KV blocks). Its expected stay is the work
        queued ahead of it, and for a late request at least the time it has already waited. It
        moves to its other candidate when the estimate there is lower."""
        queued_ids = {q.request_id for queue in queues.values() for q in queue}
        self._moved &= queued_ids
        by_name = {e.name: e for e in endpoints}
        moved_in = dict.fromkeys(by_name, 0.0)
        rate = self._config.prefill_tokens_per_s
        limit = self._config.migrate_wait_s
        moves: list[Move] = []
        for source, queue in queues.items():
            endpoint = by_name.get(source)
            if endpoint is None:
                continue
            speed = rate * endpoint.weight
            behind = sum(prompt_tokens_of(q.view) for q in queue)
            queue_hot = self.queued_work(endpoint) / speed > limit
            for request in queue:
                tokens = prompt_tokens_of(request.view)
                behind -= tokens
                late = request.waited_s > limit
                if request.request_id in self._moved or not (queue_hot or late):
                    continue
                ahead = max(0.0, endpoint.pending_prefill_tokens - behind - tokens)
                stay = (ahead * self._uncached_share.get(source, 1.0)
                        + self.uncached_tokens(source, request.view)) / speed
                if late:
                    stay = max(stay, request.waited_s)
                target = self._migration_target(endpoints, source, request.view, moved_in)
                if target is None:
                    continue
                go = self.estimated_ttft_s(by_name[target], request.view, int(moved_in[target]))
                if go + 1e-9 < stay:
                    moves.append(Move(request.request_id, source, target))
                    self._moved.add(request.request_id)
                    moved_in[target] += tokens
                    self._remember(target, _PromptBlocks.of(request.view,
                                                            self._config.block_tokens))
        return moves

    def _migration_target(self, endpoints: Sequence[EndpointState], source: str,
                          view: RequestView, moved_in: Mapping[str, float]) -> str | None:
        """The other candidate; for a request without prefix information (no candidates to be
        affine to) the other endpoint with the least queued work."""
        if _PromptBlocks.of(view, self._config.block_tokens).blocks:
            return self._other_candidate([e.name for e in endpoints], source, view)
        others = [e for e in endpoints if e.name != source]
        if not others:
            return None
        return self._lowest(others, lambda e: self.queued_work(e) + moved_in[e.name]).name

    def _other_candidate(self, names: Sequence[str], source: str, view: RequestView) -> str | None:
        """The candidate the request is not on (either one if the SLO switch placed it)."""
        first, second = self.candidates(names, view)
        if source == first:
            return second if second != first else None
        return first


@register_balancer("dualmap", DualMapBalancerConfig)
def _dualmap(config: DualMapBalancerConfig) -> Balancer:
    return DualMapBalancer(config)
