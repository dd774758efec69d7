"""Discrete-event fleet simulator: trace replay through the real balancers onto EndpointModels."""
