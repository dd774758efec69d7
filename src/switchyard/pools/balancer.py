"""The Balancer contract and the registry of balancer types.

A balancer is pure in the DESIGN sense: `pick()` looks only at the plain values it is given
(endpoint snapshots and the request view) plus its own in-memory bookkeeping (a round-robin
counter, a prefix tree). It does no I/O, so the live pool and the simulator share the object.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from pydantic import BaseModel

from switchyard.types import EndpointState, RequestView


class Balancer(Protocol):
    name: str

    def pick(self, endpoints: Sequence[EndpointState], view: RequestView) -> EndpointState:
        """Choose one of `endpoints` (non-empty, all available) for `view`."""
        ...


BalancerFactory = Callable[[Any], Balancer]
# YAML `type:` -> (config model, factory). Filled by `switchyard.pools.balancers`.
BALANCERS: dict[str, tuple[type[BaseModel], BalancerFactory]] = {}


def register_balancer(
    type_name: str, config_model: type[BaseModel]
) -> Callable[[BalancerFactory], BalancerFactory]:
    def wrap(factory: BalancerFactory) -> BalancerFactory:
        BALANCERS[type_name] = (config_model, factory)
        return factory

    return wrap


# Modules whose import fills BALANCERS; add a module here when it registers new types.
BALANCER_MODULES: tuple[str, ...] = ("switchyard.pools.balancers", "switchyard.pools.kv_balancers")


def build_balancer(config: BaseModel) -> Balancer:
    for module in BALANCER_MODULES:
        importlib.import_module(module)
    type_name = str(config.model_dump().get("type"))
    try:
        _, factory = BALANCERS[type_name]
    except KeyError:
        raise ValueError(f"unknown balancer type {type_name!r}") from None
    return factory(config)
