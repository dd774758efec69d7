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


PATTERN_TYPES = ["CREDIT_CARD", "EMAIL_ADDRESS", "IBAN_CODE", "PHONE_NUMBER", "US_SSN"]


def test_pre_screen_skips_only_entities_the_text_cannot_contain() -> None:
    from switchyard.signals.pii_engine import possible_entities

    assert possible_entities("What is the capital of France?", PATTERN_TYPES) == []
    assert possible_entities("In 1999 and 2024 there were 3 cats", PATTERN_TYPES) == [
        "IBAN_CODE",
        "PHONE_NUMBER",
    ]
    assert possible_entities("in 19 and 99 and 24", PATTERN_TYPES) == ["IBAN_CODE"]
    assert possible_entities(f"mail {EMAIL}", ["EMAIL_ADDRESS", "PERSON"]) == [
        "EMAIL_ADDRESS",
        "PERSON",  # not pre-screened: always analysed
    ]
    card = possible_entities("card 4111-1111-1111-1111", PATTERN_TYPES)
    assert {"CREDIT_CARD", "US_SSN", "PHONE_NUMBER"} <= set(card)
    assert "PHONE_NUMBER" in possible_entities("03ー1234ー5678 or 555 x 1234", PATTERN_TYPES)


def test_pre_screen_digit_minimum_covers_every_phone_number_length() -> None:
    import phonenumbers
    from phonenumbers import PhoneMetadata

    from switchyard.signals.pii_engine import MIN_DIGITS_WITHOUT_LETTERS

    shortest = min(
        min(metadata.general_desc.possible_length)
        for region in phonenumbers.SUPPORTED_REGIONS
        if (metadata := PhoneMetadata.metadata_for_region(region)) is not None
        and metadata.general_desc.possible_length
    )
    assert MIN_DIGITS_WITHOUT_LETTERS["PHONE_NUMBER"] <= shortest


@pytest.mark.parametrize(
    ("text", "entity"),
    [
        ("my phone is +44 20 7946 0958", "PHONE_NUMBER"),
        ("my cell: (212) 555-0198 ext. 12", "PHONE_NUMBER"),
        ("ssn 219-09-9999 on file", "US_SSN"),
        ("pay with card 4111111111111111", "CREDIT_CARD"),
        ("IBAN GB82 WEST 1234 5698 7654 32 please", "IBAN_CODE"),
        (f"write to {EMAIL}", "EMAIL_ADDRESS"),
    ],
)
def test_pre_screened_analysis_still_finds_each_type(
    context: SignalContext, text: str, entity: str
) -> None:
    signal = build(context, policies={name: "redact" for name in PATTERN_TYPES})
    analyzer = signal._analyzer.result()
    threshold = signal.config.score_threshold
    found = analyzer.analyse(text, signal.entities, threshold)
    assert entity in {finding.entity for finding in found}
    unscreened = analyzer._engine.analyze(
        text=text, language="en", entities=signal.entities, score_threshold=threshold
    )
    assert {f.entity for f in found} == {result.entity_type for result in unscreened}


async def test_texts_without_candidates_never_reach_the_worker(context: SignalContext) -> None:
    signal = build(context)
    await signal.ready()
    calls: list[list[str]] = []
    original = signal._run

    def counting(analyzer: object, texts: list[str]) -> object:
        calls.append(texts)
        return original(analyzer, texts)  # type: ignore[arg-type]

    signal._run = counting  # type: ignore[method-assign]
    clean = await signal.evaluate(view("Tell me a story about a dragon.", request_id="clean"))
    dirty = await signal.evaluate(view(TEXT, request_id="dirty"))
    assert clean.labels == () and "PHONE_NUMBER" in dirty.labels
    assert calls == [[TEXT]]
