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
- Choice: estimated TTFT = (pending prefill tokens + this prompt's uncached tokens) / prefill
  rate, where "uncached" uses the balancer's own approximate prefix index of what it sent where.
  The better of the two candidates wins (ties go to ring A's).
- SLO switch: when even the better candidate's estimate exceeds `ttft_slo_s`, affinity is
  dropped and the endpoint with the lowest estimate over the whole pool is taken.
- Hotspot migration (`rebalance`): a pure method the owner of the queues calls periodically.
  For an endpoint whose queue wait estimate exceeds `migrate_wait_s`, queued (not yet started)
  requests, newest first, move to their other candidate when that lowers their estimated TTFT.
  Every request moves at most once (the balancer remembers moved ids while they are queued).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from switchyard.config.pools import DualMapBalancerConfig
from switchyard.pools.balancer import Balancer, register_balancer
from switchyard.pools.hashing import (
    RingCache,
    affinity_key,
    blocks_and_token_ends,
    prompt_tokens_of,
    request_blocks,
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

    def candidates(self, names: Sequence[str], view: RequestView) -> tuple[str, str]:
        key = affinity_key(view, self._config.key_blocks)
        first = self._ring_a.ring_for(names).owner(key)
        for name in self._ring_b.ring_for(names).walk(key):
            if name != first:
                return first, name
        return first, first

    def uncached_tokens(self, endpoint: str, view: RequestView) -> int:
        blocks, token_ends = blocks_and_token_ends(view, self._config.block_tokens)
        matched = self.index.matched_blocks(endpoint, blocks)
        cached = token_ends[matched - 1] if matched else 0
        return max(0, prompt_tokens_of(view) - cached)

    def queued_work(self, endpoint: EndpointState) -> float:
        """Pending prompt tokens discounted by the cache share expected on this endpoint."""
        share = self._uncached_share.get(endpoint.name, 1.0)
        return endpoint.pending_prefill_tokens * share

    def _remember(self, endpoint: str, view: RequestView) -> None:
        tokens = prompt_tokens_of(view)
        share = self.uncached_tokens(endpoint, view) / tokens if tokens else 1.0
        old = self._uncached_share.get(endpoint, 1.0)
        self._uncached_share[endpoint] = old + SHARE_EWMA_ALPHA * (share - old)
        self.index.record(endpoint, request_blocks(view))

    def estimated_ttft_s(self, endpoint: EndpointState, view: RequestView, extra: int = 0) -> float:
        work = self.queued_work(endpoint) + extra + self.uncached_tokens(endpoint.name, view)
        return work / (self._config.prefill_tokens_per_s * endpoint.weight)

    def has_prefix(self, view: RequestView) -> bool:
        return bool(view.prefix_blocks or view.messages or view.prompt)

    def choice_cost(self, endpoint: EndpointState, view: RequestView) -> float:
        """Queue wait plus `cache_weight` x this prompt's uncached prefill time: uncached work
        delays this request once and, as capacity it takes, everyone queued behind it."""
        speed = self._config.prefill_tokens_per_s * endpoint.weight
        uncached = self.uncached_tokens(endpoint.name, view)
        return (self.queued_work(endpoint) + self._config.cache_weight * uncached) / speed

    def pick(self, endpoints: Sequence[EndpointState], view: RequestView) -> EndpointState:
        if not self.has_prefix(view):  # nothing to be affine to: pure load-aware choice
            return min(endpoints, key=lambda e: self.estimated_ttft_s(e, view))
        by_name = {e.name: e for e in endpoints}
        options: tuple[str, ...] = self.candidates(list(by_name), view)
        if self._config.include_best_match:
            blocks = request_blocks(view)
            matched = max(endpoints, key=lambda e: self.index.matched_blocks(e.name, blocks))
            options = (*options, matched.name)
        chosen = min((by_name[name] for name in options), key=lambda e: self.choice_cost(e, view))
        switch_s = self._config.switch_slo_fraction * self._config.ttft_slo_s
        if self.estimated_ttft_s(chosen, view) > switch_s:
            chosen = min(endpoints, key=lambda e: self.estimated_ttft_s(e, view))
        self._remember(chosen.name, view)
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
                target = self._other_candidate(list(by_name), source, request.view)
                if target is None:
                    continue
                go = self.estimated_ttft_s(by_name[target], request.view, int(moved_in[target]))
                if go + 1e-9 < stay:
                    moves.append(Move(request.request_id, source, target))
                    self._moved.add(request.request_id)
                    moved_in[target] += tokens
                    self._remember(target, request.view)
        return moves

    def _other_candidate(self, names: Sequence[str], source: str, view: RequestView) -> str | None:
        """The candidate the request is not on (either one if the SLO switch placed it)."""
        first, second = self.candidates(names, view)
        if source == first:
            return second if second != first else None
        return first


@register_balancer("dualmap", DualMapBalancerConfig)
def _dualmap(config: DualMapBalancerConfig) -> Balancer:
    return DualMapBalancer(config)
