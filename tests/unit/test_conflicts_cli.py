"""`switchyard config check`: findings printed, exit code 1 when there are any."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from switchyard.cli import _register, app

BASE = """
models:
  - {name: small, pool: p}
  - {name: large, pool: p}
pools:
  - name: p
    endpoints: [{name: e, url: "http://127.0.0.1:9/v1"}]
routing:
  signals:
    - {name: code, type: keyword, keywords: ["def "]}
    - {name: long, type: context_length}
    - {name: spare, type: keyword, keywords: ["x"]}
  decisions:
"""
CODE_AND_LONG = "{all: [{signal: code}, {signal: long, gte: 900}]}"


def run(tmp_path: Path, decisions: str) -> tuple[int, str]:
    path = tmp_path / "config.yaml"
    path.write_text(BASE + decisions + "  default: small\n")
    _register()
    result = CliRunner().invoke(app, ["config", "check", str(path)])
    return result.exit_code, " ".join(result.output.split())


def test_reports_shadowed_decisions_and_unused_signals(tmp_path: Path) -> None:
    code, output = run(
        tmp_path,
        "    - {name: any_code, priority: 9, when: {signal: code}, model: large}\n"
        "    - {name: long_code, priority: 1, when: " + CODE_AND_LONG + ", model: large}\n",
    )
    assert code == 1
    assert "shadowed: decision 'long_code' can never fire" in output
    assert "unused_signal: signal 'spare' is defined but no decision uses it" in output


def test_clean_policy_exits_zero(tmp_path: Path) -> None:
    code, output = run(
        tmp_path,
        "    - {name: long_code, priority: 9, when: " + CODE_AND_LONG + ", model: large}\n"
        "    - {name: any_code, priority: 1, when: {signal: code}, model: large}\n"
        "    - {name: spare_use, priority: 0, when: {signal: spare}, model: small}\n",
    )
    assert (code, output) == (0, f"{tmp_path / 'config.yaml'}: no policy conflicts found")
