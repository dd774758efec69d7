"""`switchyard cache stats|clear [--tenant]`: through a running gateway's admin endpoint
(`--url` + `--admin-key`) or, without `--url`, directly on the configured store."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

cache_app = typer.Typer(help="Inspect or clear the response cache.", no_args_is_help=True)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="YAML config")]
TenantOption = Annotated[str | None, typer.Option("--tenant", help="only this tenant")]
UrlOption = Annotated[str | None, typer.Option("--url", help="running gateway base URL")]
KeyOption = Annotated[str | None, typer.Option("--admin-key", envvar="SWITCHYARD_ADMIN_KEY",
                                               help="cache.admin_key of that gateway")]


def _remote(url: str, key: str | None, method: str, path: str,
            params: dict[str, str]) -> dict[str, Any]:
    headers = {"x-switchyard-admin-key": key} if key else {}
    response = httpx.request(method, url.rstrip("/") + path, params=params, headers=headers,
                             timeout=10.0)
    if response.status_code != 200:
        typer.echo(f"{response.status_code}: {response.text}", err=True)
        raise typer.Exit(1)
    result: dict[str, Any] = response.json()
    return result


async def _local(config: Path, tenant: str | None, clear: bool) -> dict[str, Any]:
    from switchyard.cache.admin import stats_dict
    from switchyard.cache.factory import open_store
    from switchyard.cache.semantic import ResponseCache
    from switchyard.cli_core import _load_or_exit

    cfg = _load_or_exit(config).cache
    store = await open_store(cfg, 384, config.resolve().parent, admin_only=True)
    cache = ResponseCache(cfg.model_copy(update={"mode": "exact"}), store, None, None)
    try:
        if clear:
            return {"removed": await cache.clear(tenant), "tenant": tenant}
        data = stats_dict(await cache.stats())
        if tenant is not None and data.get("store"):
            data["store"]["tenants"] = {tenant: data["store"]["tenants"].get(tenant, 0)}
        return data
    finally:
        await cache.aclose()


@cache_app.command("stats")
def stats(config: ConfigOption = Path("examples/local.yaml"), tenant: TenantOption = None,
          url: UrlOption = None, admin_key: KeyOption = None) -> None:
    """Print entry counts, bytes, evictions (and, via --url, hit/miss counters) as JSON."""
    if url:
        data = _remote(url, admin_key, "GET", "/admin/cache/stats", {})
    else:
        data = asyncio.run(_local(config, tenant, clear=False))
    typer.echo(json.dumps(data, indent=2))


@cache_app.command("clear")
def clear(config: ConfigOption = Path("examples/local.yaml"), tenant: TenantOption = None,
          url: UrlOption = None, admin_key: KeyOption = None) -> None:
    """Delete cached entries: one tenant's with --tenant, else all."""
    params = {"tenant": tenant} if tenant else {}
    if url:
        data = _remote(url, admin_key, "POST", "/admin/cache/clear", params)
    else:
        data = asyncio.run(_local(config, tenant, clear=True))
    typer.echo(json.dumps(data))


def register(app: typer.Typer) -> None:
    app.add_typer(cache_app, name="cache")
