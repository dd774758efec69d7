"""Cache keys, eligibility and the category-aware policy."""

from __future__ import annotations

from typing import Any

import pytest

from switchyard.cache.base import CacheScope
from switchyard.cache.key import SHARED_TENANT, ineligibility, make_key, normalise_text
from switchyard.cache.policy import CachePolicy
from switchyard.config.cache import CacheCategoryRule, CacheConfig
from switchyard.types import ChatMessage, RequestView


def view(user: str = "What is the capital of France?", system: str = "", model: str = "m1",
         history: tuple[ChatMessage, ...] = (), tools: bool = False) -> RequestView:
    messages = ((ChatMessage("system", system),) if system else ()) + history + (
        ChatMessage("user", user),)
    return RequestView(request_id="r", model=model, messages=messages, has_tools=tools)


CFG = CacheConfig(enabled=True)


def test_normalise_text_folds_case_space_and_unicode() -> None:
    assert normalise_text("  Hello\u00a0  WORLD\n") == "hello world"


def test_exact_key_ignores_case_and_whitespace_only() -> None:
    a = make_key(view("What is  the capital of France?"), {}, CFG, "t1")
    b = make_key(view("what is the capital of france?"), {}, CFG, "t1")
    c = make_key(view("what is the capital of spain?"), {}, CFG, "t1")
    assert a.exact == b.exact
    assert a.exact != c.exact
    assert a.partition == c.partition


@pytest.mark.parametrize(
    ("changed", "body"),
    [
        (view(model="m2"), {}),
        (view(system="You are terse."), {}),
        (view(), {"max_tokens": 5}),
        (view(), {"response_format": {"type": "json_object"}}),
    ],
)
def test_partition_covers_model_system_and_parameters(
    changed: RequestView, body: dict[str, Any]
) -> None:
    assert make_key(changed, body, CFG, "t1").partition != make_key(view(), {}, CFG, "t1").partition


def test_partition_ignores_stream_and_user_fields() -> None:
    base = make_key(view(), {}, CFG, "t1")
    assert make_key(view(), {"stream": True, "user": "u9", "stream_options": {}}, CFG,
                    "t1").partition == base.partition


def test_tenants_never_share_a_partition_unless_shared_scope() -> None:
    assert make_key(view(), {}, CFG, "a").partition != make_key(view(), {}, CFG, "b").partition
    shared = CacheConfig(enabled=True, scope="shared")
    a, b = make_key(view(), {}, shared, "a"), make_key(view(), {}, shared, "b")
    assert a.partition == b.partition
    assert a.tenant == SHARED_TENANT


def test_history_turns_enter_the_key_only_when_configured() -> None:
    h1 = (ChatMessage("user", "talk about cats"), ChatMessage("assistant", "ok"))
    h2 = (ChatMessage("user", "talk about dogs"), ChatMessage("assistant", "ok"))
    assert make_key(view(history=h1), {}, CFG, "t").partition == make_key(
        view(history=h2), {}, CFG, "t").partition
    with_history = CacheConfig(enabled=True, history_turns=2)
    assert make_key(view(history=h1), {}, with_history, "t").partition != make_key(
        view(history=h2), {}, with_history, "t").partition


@pytest.mark.parametrize(
    ("request_view", "body", "reason"),
    [
        (view(tools=True), {}, "tools"),
        (view(), {"tools": [{"type": "function"}]}, "tools"),
        (view(), {"n": 2}, "n"),
        (view(), {"temperature": 0.7}, "temperature"),
        (view(user="   "), {}, "no_user_text"),
        (view(), {"messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]},
         "non_text_content"),
        (view(), {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]},
         None),
        (view(), {"temperature": 0}, None),
        (view(), {}, None),
    ],
)
def test_ineligible_requests(request_view: RequestView, body: dict[str, Any],
                             reason: str | None) -> None:
    assert ineligibility(request_view, body, CFG) == reason


def test_opt_ins_allow_sampled_multi_and_tools() -> None:
    cfg = CacheConfig(enabled=True, cache_sampled=True, cache_multiple_choices=True,
                      cache_tools=True)
    assert ineligibility(view(tools=True), {"temperature": 1.0, "n": 3}, cfg) is None


POLICY_CFG = CacheConfig(
    enabled=True, threshold=0.5, ttl_s=100,
    categories=[
        CacheCategoryRule(match=["code", "math"], threshold=0.9, ttl_s=10),
        CacheCategoryRule(match=["medical"], enabled=False),
    ],
)


def test_policy_defaults_without_category() -> None:
    policy = CachePolicy(POLICY_CFG).resolve(CacheScope(tenant="t"))
    assert (policy.enabled, policy.threshold, policy.ttl_s, policy.category) == (
        True, 0.5, 100, "")


def test_policy_stricter_for_code_by_decision_or_label() -> None:
    by_decision = CachePolicy(POLICY_CFG).resolve(CacheScope(tenant="t", decision="math"))
    by_label = CachePolicy(POLICY_CFG).resolve(CacheScope(tenant="t", labels=("code",)))
    for policy in (by_decision, by_label):
        assert (policy.threshold, policy.ttl_s) == (0.9, 10)
    assert by_decision.category == "math"


def test_policy_disabled_category_and_pii_label() -> None:
    medical = CachePolicy(POLICY_CFG).resolve(CacheScope(tenant="t", decision="medical"))
    assert not medical.enabled
    assert medical.reason == "category:medical"
    pii = CachePolicy(POLICY_CFG).resolve(CacheScope(tenant="t", labels=("PII",)))
    assert not pii.enabled
    assert pii.reason == "label:pii"
