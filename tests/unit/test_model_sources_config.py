"""`type: llamacpp` endpoints in the config, the default local config, and fleet planning."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchyard.config.loader import load_config, load_config_text
from switchyard.config.pools import EndpointConfig, LlamaCppEndpointConfig
from switchyard.errors import ConfigError
from switchyard.local import default_config_path
from switchyard.local.fleet import LocalFleet, plan_local_servers
from switchyard.local.model_sources import MODEL_SOURCES

REPO = Path(__file__).resolve().parents[2]

CONFIG = """
models:
  - {{name: tiny, pool: local, upstream_name: tiny-upstream}}
  - {{name: remote, pool: remote}}
pools:
  - name: local
    endpoints:
      - {{type: llamacpp, name: tiny-1, model: smollm2-135m, port: 18101{extra}}}
  - name: remote
    endpoints:
      - {{name: r1, url: "http://127.0.0.1:9/v1", max_concurrency: 4}}
routing:
  default: tiny
"""


def test_endpoints_without_type_stay_openai_and_llamacpp_derives_its_url() -> None:
    cfg = load_config_text(CONFIG.format(extra=""))
    local, remote = cfg.pool_by_name()["local"], cfg.pool_by_name()["remote"]

    endpoint = local.endpoints[0]
    assert isinstance(endpoint, LlamaCppEndpointConfig)
    assert endpoint.url == "http://127.0.0.1:18101/v1"
    assert (endpoint.max_concurrency, endpoint.threads, endpoint.api_key) == (1, 1, None)
    assert type(remote.endpoints[0]) is EndpointConfig
    assert remote.endpoints[0].max_concurrency == 4


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (", max_concurrency: 2", "one request at a time"),
        (", url: 'http://x/v1'", "derived from host and port"),
        (", threads: 0", "threads"),
        (", n_gpu: 1", "unknown key 'n_gpu'"),
    ],
)
def test_invalid_llamacpp_endpoints_are_config_errors(extra: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_config_text(CONFIG.format(extra=extra))


def test_unknown_endpoint_type_names_the_valid_types() -> None:
    text = CONFIG.format(extra="").replace("type: llamacpp", "type: vllm")
    with pytest.raises(ConfigError, match="use `openai` or `llamacpp`"):
        load_config_text(text)


def test_fleet_plans_one_server_per_llamacpp_endpoint_with_the_upstream_model_name() -> None:
    plans = plan_local_servers(load_config_text(CONFIG.format(extra="")))
    assert [(p.pool, p.endpoint.name, p.model_alias) for p in plans] == [
        ("local", "tiny-1", "tiny-upstream")]


def test_two_servers_on_one_port_are_rejected() -> None:
    text = CONFIG.format(extra="").replace(
        "      - {type: llamacpp, name: tiny-1, model: smollm2-135m, port: 18101}",
        "      - {type: llamacpp, name: tiny-1, model: smollm2-135m, port: 18101}\n"
        "      - {type: llamacpp, name: tiny-2, model: smollm2-135m, port: 18101}",
    )
    with pytest.raises(ConfigError, match="port 18101 is also used by local/tiny-1"):
        plan_local_servers(load_config_text(text))


async def test_a_config_without_local_endpoints_gives_an_empty_fleet_that_starts() -> None:
    text = CONFIG.format(extra="").replace(
        "{type: llamacpp, name: tiny-1, model: smollm2-135m, port: 18101}",
        "{name: l1, url: 'http://127.0.0.1:9/v1'}")
    fleet = LocalFleet.from_config(load_config_text(text))
    await fleet.start()
    assert len(fleet) == 0 and fleet.pids() == []
    await fleet.aclose()


def test_the_default_local_config_validates_and_uses_known_model_sources() -> None:
    path = default_config_path()
    assert path.is_file()
    assert (REPO / "examples" / "local.yaml").resolve() == path.resolve()
    cfg = load_config(path)
    plans = plan_local_servers(cfg)
    assert {p.endpoint.model for p in plans} == {"smollm2-135m", "qwen2.5-coder-1.5b"}
    assert all(p.endpoint.model in MODEL_SOURCES and p.endpoint.threads == 1 for p in plans)
    prices = {m.name: m.output_usd_per_mtok for m in cfg.models}
    assert prices["qwen2.5-coder-1.5b"] > prices["smollm2-135m"] > 0
