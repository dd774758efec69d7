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
from switchyard.pools.hashing import RingCache, affinity_key, prompt_tokens_of, request_blocks
from switchyard.pools.prefix_affinity import PrefixIndex
from switchyard.types import EndpointState, RequestView


@dataclass(frozen=True, slots=True)
class QueuedRequest:
    """A request waiting on an endpoint that has not started its prefill."""

    request_id: str
    view: RequestView


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
        tokens = prompt_tokens_of(view)
        matched = self.index.matched_blocks(endpoint, request_blocks(view))
        return max(0, tokens - matched * self._config.block_tokens)

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

    def pick(self, endpoints: Sequence[EndpointState], view: RequestView) -> EndpointState:
        by_name = {e.name: e for e in endpoints}
        first, second = self.candidates(list(by_name), view)
        ttft_first = self.estimated_ttft_s(by_name[first], view)
        ttft_second = self.estimated_ttft_s(by_name[second], view)
        chosen = by_name[first] if ttft_first <= ttft_second else by_name[second]
        if min(ttft_first, ttft_second) > self._config.ttft_slo_s:
            chosen = min(endpoints, key=lambda e: self.estimated_ttft_s(e, view))
        self._remember(chosen.name, view)
        return chosen

    def rebalance(
        self,
        endpoints: Sequence[EndpointState],
        queues: Mapping[str, Sequence[QueuedRequest]],
    ) -> list[Move]:
        """Moves that relieve hot endpoints; each request id is moved at most once."""
        queued_ids = {q.request_id for queue in queues.values() for q in queue}
        self._moved &= queued_ids
        by_name = {e.name: e for e in endpoints}
        pending = {e.name: e.pending_prefill_tokens for e in endpoints}
        rate = self._config.prefill_tokens_per_s
        moves: list[Move] = []
        for source, queue in queues.items():
            if source not in by_name:
                continue
            for request in reversed(queue):
                wait_s = pending[source] / (rate * by_name[source].weight)
                if wait_s <= self._config.migrate_wait_s:
                    break
                if request.request_id in self._moved:
                    continue
                target = self._other_candidate(list(by_name), source, request.view)
                if target is None:
                    continue
                tokens = prompt_tokens_of(request.view)
                stay = wait_s
                go = self.estimated_ttft_s(by_name[target], request.view, pending[target]
                                           - by_name[target].pending_prefill_tokens)
                if go + 1e-9 < stay:
                    moves.append(Move(request.request_id, source, target))
                    self._moved.add(request.request_id)
                    pending[source] -= tokens
                    pending[target] += tokens
                    self._remember(target, request.view)
        return moves

    def _other_candidate(self, names: Sequence[str], source: str, view: RequestView) -> str | None:
        first, second = self.candidates(names, view)
        if source == first and second != first:
            return second
        if source == second:
            return first
        return None


@register_balancer("dualmap", DualMapBalancerConfig)
def _dualmap(config: DualMapBalancerConfig) -> Balancer:
    return DualMapBalancer(config)
