"""The PII signal with the real Presidio analyzer and spaCy model (offline)."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from switchyard.config.signals import SignalConfig
from switchyard.signals.base import SignalContext
from switchyard.signals.pii import PiiSignal, mask, pii_signals, redact_for_upstream
from switchyard.signals.pii_engine import Finding
from switchyard.signals.pii_recognizers import luhn_valid
from switchyard.types import ChatMessage, RequestView

CONFIG = TypeAdapter(SignalConfig)
POLICIES = {
    "EMAIL_ADDRESS": "redact",
    "PHONE_NUMBER": "redact",
    "US_SSN": "block",
    "CREDIT_CARD": {"action": "route", "model": "local-llm"},
    "IBAN_CODE": "allow",
}
EMAIL = "jane.roe@example.org"
TEXT = f"Please email me at {EMAIL} or call my phone 212-555-0198 about the invoice."


@pytest.fixture(scope="module")
def context() -> SignalContext:
    return SignalContext()  # the analyzer loads once for the module


def build(context: SignalContext, **overrides: object) -> PiiSignal:
    config = CONFIG.validate_python(
        {"name": "pii", "type": "pii", "policies": POLICIES, **overrides}
    )
    signal = PiiSignal(config, context)  # type: ignore[arg-type]
    return signal


def view(*texts: str, request_id: str = "r1") -> RequestView:
    return RequestView(request_id, "auto", messages=tuple(ChatMessage("user", t) for t in texts))


async def test_detects_types_and_reports_policy_actions(context: SignalContext) -> None:
    result = await build(context).evaluate(view(TEXT))
    assert result.labels == ("EMAIL_ADDRESS", "PHONE_NUMBER", "action:redact")
    assert result.details == {"EMAIL_ADDRESS": 1.0, "PHONE_NUMBER": 1.0}
    assert EMAIL not in repr(result) and "555-0198" not in repr(result)


async def test_block_and_route_policies(context: SignalContext) -> None:
    signal = build(context)
    blocked = await signal.evaluate(view("My social security number is 219-09-9999 (SSN)."))
    routed = await signal.evaluate(view("Charge my credit card 4111 1111 1111 1111 please."))
    assert "action:block" in blocked.labels and "US_SSN" in blocked.labels
    assert "route:local-llm" in routed.labels and "CREDIT_CARD" in routed.labels


async def test_allowed_types_and_clean_text_do_not_fire(context: SignalContext) -> None:
    signal = build(context)
    result = await signal.evaluate(view("Transfer to IBAN DE89370400440532013000 today."))
    clean = await signal.evaluate(view("What is the boiling point of water at sea level?"))
    assert result.labels == () and clean.labels == ()


async def test_every_user_turn_is_in_scope_by_default(context: SignalContext) -> None:
    signal = build(context)
    assert "EMAIL_ADDRESS" in (await signal.evaluate(view(TEXT, "thanks!"))).labels
    last_only = build(context, scope="last_user")
    assert (await last_only.evaluate(view(TEXT, "thanks!", request_id="r2"))).labels == ()


async def test_redact_body_masks_only_redact_policy_values(context: SignalContext) -> None:
    signal = build(context)
    body = {
        "model": "auto",
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": [{"type": "text", "text": TEXT}]},
            {"role": "user", "content": "My SSN is 219-09-9999, email jane.roe@example.org"},
        ],
        "temperature": 0.2,
    }
    redacted = await signal.redact_body("r3", body)
    first = redacted["messages"][1]["content"][0]["text"]
    assert first == (
        "Please email me at <EMAIL_ADDRESS> or call my phone <PHONE_NUMBER> about the invoice."
    )
    assert redacted["messages"][2]["content"] == "My SSN is 219-09-9999, email <EMAIL_ADDRESS>"
    assert redacted["temperature"] == 0.2 and redacted["messages"][0] == body["messages"][0]
    assert body["messages"][1]["content"][0]["text"] == TEXT  # the original is untouched


async def test_redact_body_handles_completion_prompts(context: SignalContext) -> None:
    redacted = await build(context).redact_body("r4", {"prompt": [TEXT, "no pii here"]})
    assert EMAIL not in redacted["prompt"][0] and redacted["prompt"][1] == "no pii here"


async def test_person_policy_loads_the_ner_pipeline(context: SignalContext) -> None:
    signal = build(context, policies={"PERSON": "redact"})
    result = await signal.evaluate(view("Yesterday I met Barack Obama in Chicago."))
    assert result.labels == ("PERSON", "action:redact")
    assert pii_signals([signal, object()]) == [signal]


def test_mask_merges_overlapping_findings() -> None:
    findings = [Finding("URL", 4, 10, 0.5), Finding("EMAIL_ADDRESS", 0, 12, 1.0)]
    assert mask("abc@defgh.ij rest", findings) == "<EMAIL_ADDRESS> rest"


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")


def test_route_policy_needs_a_model() -> None:
    with pytest.raises(ValidationError, match="model"):
        CONFIG.validate_python({"name": "p", "type": "pii", "policies": {"US_SSN": "route"}})


async def test_redact_for_upstream_follows_the_signal_result(context: SignalContext) -> None:
    signal = build(context)
    body = {"messages": [{"role": "user", "content": TEXT}]}
    request = view(TEXT, request_id="r9")
    results = {"pii": await signal.evaluate(request)}
    forwarded = await redact_for_upstream([signal], results, "r9", body)
    assert EMAIL not in forwarded["messages"][0]["content"]
    clean = {"pii": await signal.evaluate(view("no personal data", request_id="r10"))}
    assert await redact_for_upstream([signal], clean, "r10", body) is body
