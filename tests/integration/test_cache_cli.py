"""`switchyard cache stats|clear` directly on the embedded store's SQLite file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import orjson
import yaml
from typer.testing import CliRunner

from switchyard.cache.base import CacheScope
from switchyard.cache.factory import build_cache
from switchyard.cli import _register, app
from switchyard.config.cache import CacheConfig, EmbeddedCacheBackendConfig
from switchyard.types import ChatMessage, RequestView


def answer(text: str) -> bytes:
    return orjson.dumps({"object": "chat.completion", "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}]})


async def fill(path: Path) -> None:
    cfg = CacheConfig(enabled=True, mode="exact",
                      backend=EmbeddedCacheBackendConfig(path=str(path)))
    cache = await build_cache(cfg, None)
    for tenant, text in (("a", "one"), ("a", "two"), ("b", "three")):
        view = RequestView(request_id="r", model="m1", messages=(ChatMessage("user", text),))
        assert await cache.store(view, CacheScope(tenant=tenant), answer(text))
    await cache.aclose()


def test_cache_stats_and_clear_by_tenant(tmp_path: Path) -> None:
    db = tmp_path / "cache.sqlite"
    asyncio.run(fill(db))
    config = tmp_path / "switchyard.yaml"
    config.write_text(yaml.safe_dump({
        "models": [{"name": "m1", "pool": "p"}],
        "pools": [{"name": "p", "endpoints": [{"name": "e", "url": "http://127.0.0.1:9/v1"}]}],
        "routing": {"default": "m1"},
        "cache": {"enabled": True, "mode": "exact", "backend": {"path": "cache.sqlite"}},
    }))
    _register()
    runner = CliRunner()
    stats = runner.invoke(app, ["cache", "stats", "--config", str(config)])
    assert stats.exit_code == 0, stats.output
    assert json.loads(stats.output)["store"]["tenants"] == {"a": 2, "b": 1}
    cleared = runner.invoke(app, ["cache", "clear", "--config", str(config), "--tenant", "a"])
    assert cleared.exit_code == 0, cleared.output
    assert json.loads(cleared.output) == {"removed": 2, "tenant": "a"}
    after = runner.invoke(app, ["cache", "stats", "--config", str(config)])
    assert json.loads(after.output)["store"]["tenants"] == {"b": 1}
