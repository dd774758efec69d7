"""Sticky routing by conversation (session id, user, or first turn) with a load fallback.

The preferred endpoint is the rendezvous-hash (highest random weight) winner for
`view.session_key`, so a session stays put and removing an endpoint only moves its own sessions.
If the preferred endpoint is overloaded — in-flight above `max_load_ratio` x the mean plus
`slack`, or at its concurrency limit — the next endpoint in the session's ranking that is not
overloaded is used, else the least loaded.
"""

from __future__ import annotations

from collections.abc import Sequence

from switchyard.config.pools import SessionAffinityBalancerConfig
from switchyard.pools.balancer import Balancer, register_balancer
from switchyard.pools.hashing import stable_hash64
from switchyard.types import EndpointState, RequestView


class SessionAffinityBalancer:
    name = "session_affinity"

    def __init__(self, config: SessionAffinityBalancerConfig) -> None:
        self._config = config

    def ranking(self, endpoints: Sequence[EndpointState], session: str) -> list[EndpointState]:
        def score(e: EndpointState) -> int:
            return stable_hash64(f"{session}\x1f{e.name}".encode("utf-8", "surrogatepass"))

        return sorted(endpoints, key=score, reverse=True)

    def pick(self, endpoints: Sequence[EndpointState], view: RequestView) -> EndpointState:
        mean = sum(e.in_flight for e in endpoints) / len(endpoints)
        limit = self._config.max_load_ratio * mean + self._config.slack
        for endpoint in self.ranking(endpoints, view.session_key):
            if endpoint.in_flight <= limit and not endpoint.saturated:
                return endpoint
        return min(endpoints, key=lambda e: e.in_flight / e.weight)


@register_balancer("session_affinity", SessionAffinityBalancerConfig)
def _session_affinity(config: SessionAffinityBalancerConfig) -> Balancer:
    return SessionAffinityBalancer(config)
