"""Cache-blind, token-aware control: the endpoint with the fewest queued prefill tokens.

`EndpointState.pending_prefill_tokens` is the estimated prompt tokens of requests sent to the
endpoint that have not produced a first token yet (the live pool and the simulator fill it the
same way). Ties go to fewer in-flight requests, then rotate.
"""

from __future__ import annotations

from collections.abc import Sequence

from switchyard.config.pools import LeastPendingTokensBalancerConfig
from switchyard.pools.balancer import Balancer, register_balancer
from switchyard.types import EndpointState, RequestView


class LeastPendingTokensBalancer:
    name = "least_pending_tokens"

    def __init__(self) -> None:
        self._tiebreak = 0

    def pick(self, endpoints: Sequence[EndpointState], view: RequestView) -> EndpointState:
        def cost(e: EndpointState) -> tuple[float, float]:
            return (e.pending_prefill_tokens / e.weight, e.in_flight / e.weight)

        best = min(cost(e) for e in endpoints)
        tied = [e for e in endpoints if cost(e) == best]
        self._tiebreak += 1
        return tied[self._tiebreak % len(tied)]


@register_balancer("least_pending_tokens", LeastPendingTokensBalancerConfig)
def _least_pending_tokens(config: LeastPendingTokensBalancerConfig) -> Balancer:
    return LeastPendingTokensBalancer()
