"""Configuration loading: every problem reported with file, line and key path."""

from __future__ import annotations

import pytest

from switchyard.config import load_config_text
from switchyard.errors import ConfigError

ENV = {"API_KEY": "sk-test"}

VALID = """\
server:
  port: 8080
models:
  - name: small
    pool: local
  - name: big
    pool: local
    input_usd_per_mtok: 3
pools:
  - name: local
    endpoints:
      - name: a
        url: http://127.0.0.1:9000/v1
        api_key: ${API_KEY}
routing:
  signals:
    - name: code
      type: keyword
      keywords: [python]
    - name: ctx
      type: context_length
  decisions:
    - name: coding
      priority: 10
      model: big
      when:
        all:
          - signal: code
          - not:
              signal: ctx
              gte: 2000
  default: small
"""


def problems_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "cfg.yaml", ENV if env is None else env)
    return caught.value.problems


def edit(old: str, new: str) -> str:
    assert old in VALID, old
    return VALID.replace(old, new, 1)


def test_valid_config_loads_with_env_interpolated() -> None:
    config = load_config_text(VALID, "cfg.yaml", ENV)
    assert config.pools[0].endpoints[0].api_key == "sk-test"
    assert config.routing.decisions[0].when.all is not None
    assert config.routing.default_models == ("small",)
    assert config.model_by_name()["big"].input_usd_per_mtok == 3.0


# (edit old, edit new, the exact problem line)
SINGLE_PROBLEMS = [
    pytest.param(
        "  port: 8080\n",
        "  port: 8080\n  prot: 1\n",
        "cfg.yaml:3: server.prot: unknown key 'prot'",
        id="unknown top-level section key",
    ),
    pytest.param(
        "      keywords: [python]\n",
        "      keywords: [python]\n      regexp: true\n",
        "cfg.yaml:20: routing.signals.0.regexp: unknown key 'regexp'",
        id="unknown key inside a union member (signal)",
    ),
    pytest.param(
        "              gte: 2000\n",
        "              gte: 2000\n              lable: x\n",
        "cfg.yaml:32: routing.decisions.0.when.all.1.not.lable: unknown key 'lable'",
        id="unknown key deep in a condition tree",
    ),
    pytest.param(
        "priority: 10",
        "priority: high",
        "cfg.yaml:24: routing.decisions.0.priority: "
        "Input should be a valid integer, unable to parse string as an integer",
        id="wrong type (int)",
    ),
    pytest.param(
        "keywords: [python]",
        "keywords: python",
        "cfg.yaml:19: routing.signals.0.keywords: Input should be a valid list",
        id="wrong type (list)",
    ),
    pytest.param(
        "gte: 2000",
        "gte: lots",
        "cfg.yaml:31: routing.decisions.0.when.all.1.not.gte: "
        "Input should be a valid number, unable to parse string as a number",
        id="wrong type in a comparator",
    ),
    pytest.param(
        "  - name: small\n    pool: local\n",
        "  - name: small\n    pool: remote\n",
        "cfg.yaml:5: models.0.pool: unknown pool 'remote'; pools: ['local']",
        id="model refers to a missing pool",
    ),
    pytest.param(
        "model: big",
        "model: huge",
        "cfg.yaml:25: routing.decisions.0.model: unknown model 'huge'; models: ['big', 'small']",
        id="decision refers to a missing model",
    ),
    pytest.param(
        "default: small",
        "default: tiny",
        "cfg.yaml:32: routing.default: unknown model 'tiny'; models: ['big', 'small']",
        id="default refers to a missing model",
    ),
    pytest.param(
        "          - signal: code\n",
        "          - signal: kode\n",
        "cfg.yaml:26: routing.decisions.0.when: unknown signal 'kode'",
        id="condition refers to a missing signal",
    ),
    pytest.param(
        "${API_KEY}",
        "${OTHER_KEY}",
        "cfg.yaml:14: pools.0.endpoints.0.api_key: environment variable OTHER_KEY is not set",
        id="missing environment variable",
    ),
    pytest.param(
        "          - signal: code\n",
        "          - signal: code\n            any: [{signal: ctx}]\n",
        "cfg.yaml:28: routing.decisions.0.when.all.0: "
        "Value error, a condition needs exactly one of: all, any, not, signal",
        id="condition with two kinds",
    ),
    pytest.param(
        "keywords: [python]",
        "keywords: ['(py']\n      regex: true",
        "cfg.yaml:17: routing.signals.0: Value error, invalid regular expression '(py': "
        "missing ), unterminated subpattern at position 0",
        id="invalid keyword regex",
    ),
    pytest.param(
        "type: context_length",
        "type: context_length\n      encoding: gpt2",
        "cfg.yaml:22: routing.signals.1.encoding: Input should be 'cl100k_base' or 'o200k_base'",
        id="unknown token encoding",
    ),
    pytest.param(
        "  - name: small\n    pool: local\n",
        "  - pool: local\n",
        "cfg.yaml:4: models.0.name: Field required",
        id="missing required key",
    ),
    pytest.param(
        "server:\n  port: 8080\n",
        "server:\n",
        "cfg.yaml:1: server: Input should be a valid dictionary or instance of ServerConfig",
        id="empty section (null value)",
    ),
    pytest.param(
        "    - name: coding\n",
        "    - name: small\n",
        "cfg.yaml:4: models.0.name: 'small' is reserved as a routed alias",
        id="decision name collides with a model name",
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), SINGLE_PROBLEMS)
def test_single_problem_is_reported_with_line_and_key(old: str, new: str, expected: str) -> None:
    assert problems_of(edit(old, new)) == [expected]


def test_several_validation_errors_are_all_listed() -> None:
    text = (
        edit("port: 8080", "port: eighty")
        .replace("      keywords: [python]\n", "      keywords: [python]\n      regexp: true\n")
        .replace("priority: 10", "priority: high")
    )
    problems = problems_of(text)
    assert len(problems) == 3
    assert problems[0].startswith("cfg.yaml:2: server.port: ")
    assert problems[1] == "cfg.yaml:20: routing.signals.0.regexp: unknown key 'regexp'"
    assert problems[2].startswith("cfg.yaml:25: routing.decisions.0.priority: ")


def test_several_reference_errors_are_all_listed() -> None:
    text = edit("model: big", "model: huge").replace("default: small", "default: [tiny, small]")
    text = text.replace("          - signal: code\n", "          - signal: kode\n")
    assert problems_of(text) == [
        "cfg.yaml:25: routing.decisions.0.model: unknown model 'huge'; models: ['big', 'small']",
        "cfg.yaml:26: routing.decisions.0.when: unknown signal 'kode'",
        "cfg.yaml:32: routing.default.0: unknown model 'tiny'; models: ['big', 'small']",
    ]


def test_several_missing_environment_variables_are_all_listed() -> None:
    text = edit("port: 8080", "port: ${PORT}")
    assert problems_of(text, env={}) == [
        "cfg.yaml:2: server.port: environment variable PORT is not set",
        "cfg.yaml:14: pools.0.endpoints.0.api_key: environment variable API_KEY is not set",
    ]


def test_environment_defaults_and_typed_interpolation() -> None:
    text = edit("port: 8080", "port: ${PORT:-9090}").replace("${API_KEY}", "${NOPE:-}")
    config = load_config_text(text, "cfg.yaml", {})
    assert config.server.port == 9090
    assert config.pools[0].endpoints[0].api_key == ""


def test_invalid_yaml_names_the_line() -> None:
    problems = problems_of(edit("port: 8080", "port: [8080"))
    assert len(problems) == 1
    assert problems[0].startswith("cfg.yaml:3: invalid YAML:")


@pytest.mark.parametrize("text", ["", "- just\n- a list\n", "plain scalar"])
def test_non_mapping_document_is_rejected(text: str) -> None:
    assert problems_of(text) == ["cfg.yaml:1: the configuration must be a YAML mapping"]


def test_error_message_lists_every_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text(edit("model: big", "model: huge"), "cfg.yaml", ENV)
    assert "invalid configuration" in caught.value.message
    assert "routing.decisions.0.model" in caught.value.message


def test_duplicate_keys_are_reported_not_silently_overridden() -> None:
    text = edit("  port: 8080\n", "  port: 8080\n  port: 9090\n").replace(
        "      type: context_length\n", "      type: context_length\n      type: keyword\n"
    )
    assert problems_of(text) == [
        "cfg.yaml:3: server.port: duplicate key 'port' (first on line 2)",
        "cfg.yaml:23: routing.signals.1.type: duplicate key 'type' (first on line 22)",
    ]


def test_duplicate_keys_and_missing_env_are_listed_together() -> None:
    text = edit("  port: 8080\n", "  port: 8080\n  port: 9090\n")
    assert problems_of(text, env={}) == [
        "cfg.yaml:3: server.port: duplicate key 'port' (first on line 2)",
        "cfg.yaml:15: pools.0.endpoints.0.api_key: environment variable API_KEY is not set",
    ]


LEARNED = edit("    - name: coding\n", """    - name: learned
      strategy: {type: learned, artifact: r.npz, candidates: [small, big], lam: 0.1}
      models: [small]
    - name: coding
""")


def test_learned_strategy_runs_as_a_signal_named_after_its_decision() -> None:
    routing = load_config_text(LEARNED, "cfg.yaml", ENV).routing
    signal = {s.name: s for s in routing.signals}["learned"]
    assert signal.type == "learned_router" and signal.candidates == ["small", "big"]
    learned = routing.decisions[0]
    assert learned.when.signal == "learned" and learned.target_signal == "learned"
    assert routing.decisions[1].target_signal is None
    # a dumped config (which now holds the generated signal) loads again unchanged
    again = type(routing).model_validate(routing.model_dump(by_alias=True, exclude_none=True))
    assert again == routing


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param("name: learned", "name: code",
                     "cfg.yaml:15: routing: Value error, decision 'code' has a `strategy`, which "
                     "runs as a signal of the same name, but a different signal with that name "
                     "exists; rename one of them", id="strategy name taken by a signal"),
        pytest.param("candidates: [small, big]", "candidates: [small, huge]",
                     "cfg.yaml:24: routing.decisions.0.strategy.candidates.1: unknown model "
                     "'huge'; models: ['big', 'small']", id="unknown candidate"),
        pytest.param("models: [small]\n", "models: [small]\n      models_from_signal: code\n",
                     "cfg.yaml:23: routing.decisions.0: Value error, give `strategy` or "
                     "`models_from_signal`, not both", id="strategy and models_from_signal"),
        pytest.param("lam: 0.1", "lam: 0.1, quality_target: 0.5",
                     "cfg.yaml:24: routing.decisions.0.strategy: Value error, give exactly one of "
                     "lam, quality_target, max_cost_per_request", id="two cost policies"),
    ],
)
def test_learned_strategy_problems(old: str, new: str, expected: str) -> None:
    assert old in LEARNED
    assert problems_of(LEARNED.replace(old, new, 1)) == [expected]
