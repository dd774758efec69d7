"""HTTP admin endpoints for the cache, protected by `cache.admin_key`.

    GET  /admin/cache/stats            counters and store size (per tenant)
    POST /admin/cache/clear?tenant=T   delete one tenant's entries (all without `tenant`)

The key goes in `x-switchyard-admin-key` or `authorization: Bearer`. Without a configured key
the endpoints answer 404 (disabled).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from switchyard.cache.base import Cache, CacheStats


def stats_dict(stats: CacheStats) -> dict[str, Any]:
    data = asdict(stats)
    if stats.store is not None:
        data["store"]["tenants"] = dict(stats.store.tenants)
    return data


def _error(status: int, message: str, code: str) -> Response:
    body = {"error": {"message": message, "type": "invalid_request_error" if status < 500
                      else "internal_error", "param": None, "code": code}}
    return Response(orjson.dumps(body), status, media_type="application/json")


def admin_routes(get_cache: Callable[[], Cache | None], admin_key: str | None) -> list[Route]:
    """Routes to mount on the app; they answer 404 while the cache or the key is absent.
    `get_cache` is called per request (the cache opens in the app's lifespan)."""

    def authorised(request: Request) -> Response | None:
        if get_cache() is None or not admin_key:
            return _error(404, "cache admin is not enabled", "not_found")
        given = request.headers.get("x-switchyard-admin-key", "")
        auth = request.headers.get("authorization", "")
        if not given and auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        if not hmac.compare_digest(given.encode(), admin_key.encode()):
            return _error(401, "invalid or missing admin key", "invalid_api_key")
        return None

    async def stats(request: Request) -> Response:
        denied, cache = authorised(request), get_cache()
        if denied is not None or cache is None:
            return denied or _error(404, "cache admin is not enabled", "not_found")
        return Response(orjson.dumps(stats_dict(await cache.stats())),
                        media_type="application/json")

    async def clear(request: Request) -> Response:
        denied, cache = authorised(request), get_cache()
        if denied is not None or cache is None:
            return denied or _error(404, "cache admin is not enabled", "not_found")
        tenant = request.query_params.get("tenant") or None
        removed = await cache.clear(tenant)
        return Response(orjson.dumps({"removed": removed, "tenant": tenant}),
                        media_type="application/json")

    return [Route("/admin/cache/stats", stats, methods=["GET"]),
            Route("/admin/cache/clear", clear, methods=["POST"])]
