"""Cache-aware balancing on an approximate per-replica prefix index (SGLang router style).

The balancer remembers, per endpoint, the prefix blocks of the prompts it routed there (an LRU
set of block keys, bounded by `max_blocks_per_endpoint`). Because block keys are prefix-chained
(trace ids or chained hashes, see `hashing.py`), "the longest prefix cached on endpoint e" is
the number of leading blocks of the request found in e's set: a radix tree flattened into a
hash set. It is approximate: it sees what was *sent*, not what the server still holds.

Policy (re-derived from the SGLang gateway's cache-aware policy):
1. If the load is imbalanced — max in-flight minus min in-flight exceeds `balance_abs_threshold`
   AND max exceeds `balance_rel_threshold` x min — route to the shortest queue (fewest queued
   prefill tokens, then fewest in flight; `queue_signal: requests` counts requests only, as
   SGLang does). Requests without any prefix blocks go there too.
2. Else route to the endpoint with the longest match if its match rate (matched prompt tokens /
   prompt tokens, as SGLang measures matched characters) reaches `cache_threshold`; otherwise
   to the shortest queue. (SGLang sends this case to the replica with the smallest tree; with
   LRU-bounded indexes that are all full, that is mostly a tie.)
3. Record the request's blocks on the chosen endpoint.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from switchyard.config.pools import PrefixAffinityBalancerConfig
from switchyard.pools.balancer import Balancer, register_balancer
from switchyard.pools.hashing import blocks_and_token_ends
from switchyard.types import EndpointState, RequestView


class PrefixIndex:
    """Per-endpoint LRU sets of prefix-block keys, each bounded in size."""

    def __init__(self, max_blocks_per_endpoint: int) -> None:
        self._max_blocks = max_blocks_per_endpoint
        self._blocks: dict[str, OrderedDict[int, None]] = {}

    def matched_blocks(self, endpoint: str, blocks: Sequence[int]) -> int:
        known = self._blocks.get(endpoint)
        if not known:
            return 0
        count = 0
        for block in blocks:
            if block not in known:
                break
            count += 1
        return count

    def size(self, endpoint: str) -> int:
        known = self._blocks.get(endpoint)
        return len(known) if known else 0

    def record(self, endpoint: str, blocks: Sequence[int]) -> None:
        known = self._blocks.setdefault(endpoint, OrderedDict())
        for block in blocks:
            if block in known:
                known.move_to_end(block)
            else:
                known[block] = None
        while len(known) > self._max_blocks:
            known.popitem(last=False)

    def forget(self, endpoint: str) -> None:
        self._blocks.pop(endpoint, None)


class PrefixAffinityBalancer:
    name = "prefix_affinity"

    def __init__(self, config: PrefixAffinityBalancerConfig) -> None:
        self._config = config
        self.index = PrefixIndex(config.max_blocks_per_endpoint)
        self._tiebreak = 0

    def _imbalanced(self, endpoints: Sequence[EndpointState]) -> bool:
        loads = [e.in_flight for e in endpoints]
        high, low = max(loads), min(loads)
        return (
            high - low > self._config.balance_abs_threshold
            and high > self._config.balance_rel_threshold * low
        )

    def _least_loaded(self, endpoints: Sequence[EndpointState]) -> EndpointState:
        """Shortest queue: fewest queued prefill tokens, then fewest in flight (per weight);
        ties rotate (not towards the longest match: at zero load that would pile every new
        conversation onto the replica that first saw a shared system prompt)."""

        by_tokens = self._config.queue_signal == "tokens"

        def queue(e: EndpointState) -> tuple[float, float]:
            tokens = e.pending_prefill_tokens / e.weight if by_tokens else 0.0
            return (tokens, e.in_flight / e.weight)

        best = min(queue(e) for e in endpoints)
        tied = [e for e in endpoints if queue(e) == best]
        self._tiebreak += 1
        return tied[self._tiebreak % len(tied)]

    def pick(self, endpoints: Sequence[EndpointState], view: RequestView) -> EndpointState:
        blocks, token_ends = blocks_and_token_ends(view)
        if len(endpoints) == 1:
            chosen = endpoints[0]
        elif self._imbalanced(endpoints) or not blocks:
            chosen = self._least_loaded(endpoints)
        else:
            matches = [self.index.matched_blocks(e.name, blocks) for e in endpoints]
            best = max(range(len(endpoints)), key=lambda i: (matches[i], -endpoints[i].in_flight))
            matched_tokens = token_ends[matches[best] - 1] if matches[best] else 0
            if matched_tokens / token_ends[-1] >= self._config.cache_threshold:
                chosen = endpoints[best]
            else:
                chosen = self._least_loaded(endpoints)
        self.index.record(chosen.name, blocks)
        return chosen


@register_balancer("prefix_affinity", PrefixAffinityBalancerConfig)
def _prefix_affinity(config: PrefixAffinityBalancerConfig) -> Balancer:
    return PrefixAffinityBalancer(config)
