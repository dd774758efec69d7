"""The simulator on the real traces in ../shared/data (fails in CI when the data is missing)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.requirements import SHARED_DATA, require_shared_data
from typer.testing import CliRunner

from switchyard.cli import _register, app
from switchyard.sim.engine import PoolSpec, simulate
from switchyard.sim.metrics import summarize
from switchyard.sim.policies import balancer_factory
from switchyard.sim.profiles import load_profile
from switchyard.sim.workloads import load_azure, load_mooncake

TRACES = SHARED_DATA / "traces"


def trace(name: str) -> Path:
    return require_shared_data(TRACES / name)


def test_mooncake_loader_reads_the_whole_trace() -> None:
    workload = load_mooncake(trace("mooncake_conversation.jsonl"))
    assert len(workload) == 12_031
    assert workload.has_prefix_info and workload.blocks[0][0] == 0
    assert 3_500 < workload.duration_s < 3_600
    assert all(len(b) * 512 >= n for b, n in zip(workload.blocks, workload.input_tokens,
                                                  strict=True))


def test_azure_loader_reads_the_whole_trace() -> None:
    workload = load_azure(trace("azure_conv_2023.csv"))
    assert len(workload) == 19_366
    assert not workload.has_prefix_info
    assert 3_400 < workload.duration_s < 3_700


def test_dualmap_gets_more_cache_hits_than_least_pending_tokens_on_mooncake() -> None:
    workload = load_mooncake(trace("mooncake_conversation.jsonl")).head(3000)
    profile = load_profile("reference")
    hit = {}
    for policy in ("least_pending_tokens", "dualmap"):
        result = simulate(workload, [PoolSpec("p", 8, profile,
                                              balancer_factory(policy, profile, 5.0))])
        summary = summarize(result, 5.0)
        assert summary.completed == 3000
        hit[policy] = summary.prefix_hit_rate
    assert hit["dualmap"] > hit["least_pending_tokens"] + 0.01


def test_simulate_cli_reports_json() -> None:
    _register()
    result = CliRunner().invoke(app, ["simulate", str(trace("mooncake_conversation.jsonl")),
                                      "--limit", "400", "-p", "least_outstanding",
                                      "-p", "dualmap", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload) == {"least_outstanding", "dualmap"}
    assert payload["dualmap"]["completed"] == 400
