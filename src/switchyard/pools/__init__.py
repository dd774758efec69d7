"""Replica selection and upstream dispatch: balancers, health, circuit breakers, backends."""
