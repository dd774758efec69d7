"""A simulator-only headroom yardstick: greedy routing with perfect knowledge of every replica.

`OracleBalancer` is not a product balancer (a gateway cannot see a server's KV cache or queue
internals); it answers "how far could better information take a balancer?". For each arrival it
reads every replica's true state and picks the lowest estimated TTFT:

    (remaining prefill of running prompts + uncached tokens of queued prompts
     + this prompt's tokens not in that replica's cache right now) / prefill rate

Cached tokens are counted with the replica's actual cache at arrival (a queued prompt may lose
or gain blocks before its admission). Ties go to the most cached, then fewer in-flight requests,
then rotate. It looks at the queue by walking it, which is fine for a yardstick and too slow for
a product.

With `cache_window_s` > 0 it is greedier for the cache (`oracle_window`): among the replicas
whose estimate is within that many seconds of the lowest, the one with the most of this prompt
cached wins (then the lower estimate). Per request that can cost TTFT; it buys prefill work
saved for everything queued behind.
"""

from __future__ import annotations

from collections.abc import Sequence

from switchyard.sim.endpoint_model import EndpointModel
from switchyard.types import EndpointState, RequestView


class OracleBalancer:
    name = "oracle_greedy"

    def __init__(self, prefill_tokens_per_s: float, cache_window_s: float = 0.0) -> None:
        self._rate = prefill_tokens_per_s
        self._window_s = cache_window_s
        self._replicas: dict[str, EndpointModel] = {}
        self._tiebreak = 0

    def attach_replicas(self, replicas: Sequence[EndpointModel]) -> None:
        """Called by the simulation engine with the pool's replica models."""
        self._replicas = {r.name: r for r in replicas}

    @staticmethod
    def queued_uncached_tokens(replica: EndpointModel) -> int:
        table = replica.table
        work = sum(table.prefill_left[r] for r in replica.prefilling)
        return work + sum(
            table.inputs[r] - replica.cached_prefix_tokens(r) for r in replica.waiting
        )

    def pick(self, endpoints: Sequence[EndpointState], view: RequestView) -> EndpointState:
        request = int(view.request_id)
        rows: list[tuple[float, int, EndpointState]] = []
        for endpoint in endpoints:
            replica = self._replicas[endpoint.name]
            cached = replica.cached_prefix_tokens(request) if view.prefix_blocks else 0
            own = replica.table.inputs[request] - cached
            rows.append(((self.queued_uncached_tokens(replica) + own) / self._rate, cached,
                         endpoint))
        lowest = min(seconds for seconds, _, _ in rows)
        window = [row for row in rows if row[0] <= lowest + self._window_s]
        most = max(cached for _, cached, _ in window)
        costs = [((seconds, e.in_flight), e) for seconds, cached, e in window if cached == most]
        best = min(c for c, _ in costs)
        tied = [e for c, e in costs if c == best]
        self._tiebreak += 1
        return tied[self._tiebreak % len(tied)]
