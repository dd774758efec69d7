"""Consistent hashing on a prompt-prefix key with bounded loads.

Mirrokni, Thorup, Zadimoghaddam, "Consistent Hashing with Bounded Loads" (SODA 2018): walk the
ring clockwise from the key and take the first endpoint whose load (in-flight, this request
included) stays within ceil(c x (total + 1) / n), c = `load_factor` > 1. So no endpoint ever
exceeds c times the mean, and keys keep their endpoint while it has room.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from switchyard.config.pools import ConsistentHashBalancerConfig
from switchyard.pools.balancer import Balancer, register_balancer
from switchyard.pools.hashing import RingCache, affinity_key
from switchyard.types import EndpointState, RequestView


def bounded_capacity(endpoints: Sequence[EndpointState], load_factor: float) -> int:
    total = sum(e.in_flight for e in endpoints) + 1
    return math.ceil(load_factor * total / len(endpoints))


class ConsistentHashBalancer:
    name = "consistent_hash"

    def __init__(self, config: ConsistentHashBalancerConfig) -> None:
        self._config = config
        self._rings = RingCache(config.virtual_nodes, b"consistent")

    def pick(self, endpoints: Sequence[EndpointState], view: RequestView) -> EndpointState:
        by_name = {e.name: e for e in endpoints}
        ring = self._rings.ring_for(list(by_name))
        capacity = bounded_capacity(endpoints, self._config.load_factor)
        key = affinity_key(view, self._config.key_blocks)
        for name in ring.walk(key):
            if by_name[name].in_flight + 1 <= capacity:
                return by_name[name]
        return min(endpoints, key=lambda e: e.in_flight)


@register_balancer("consistent_hash", ConsistentHashBalancerConfig)
def _consistent_hash(config: ConsistentHashBalancerConfig) -> Balancer:
    return ConsistentHashBalancer(config)
