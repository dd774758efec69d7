"""ASGI application: routes, body guards, lifespan."""
