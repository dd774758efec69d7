"""Choosing a model: the compiled routing policy and the pure `decide()` function."""

from switchyard.routing.engine import RoutingPolicy, decide

__all__ = ["RoutingPolicy", "decide"]
