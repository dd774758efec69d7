"""Extra Presidio recognizers for formats the built-in ones miss (international phone numbers,
Luhn-valid card numbers of unusual lengths). Both score low on their own and need a context word
nearby (Presidio's context enhancer lifts them to its minimum-with-context score)."""

from __future__ import annotations

from typing import Any

PHONE_PATTERN = (
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{1,8}(?:[\s.-]\d{1,8}){0,5}"
    r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w])"
)
CARD_PATTERN = r"(?<![\w-])\d(?:[ -]?\d){11,18}(?![\w-])"

PHONE_CONTEXT = [
    "phone", "telephone", "tel", "mobile", "cell", "cellphone", "call", "fax", "desk", "office",
    "contact", "reach", "answering", "message", "text", "sms", "whatsapp", "landline", "number",
]  # fmt: skip
CARD_CONTEXT = [
    "card", "credit", "debit", "visa", "mastercard", "amex", "maestro", "cc", "billing",
    "payment", "pay", "charge", "charged", "withdraw",
]  # fmt: skip

CONTEXT_WORDS = tuple(PHONE_CONTEXT + CARD_CONTEXT)


def digit_count(text: str) -> int:
    return sum(character.isdigit() for character in text)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, character in enumerate(reversed(digits)):
        value = int(character)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def context_recognizers() -> list[Any]:
    from presidio_analyzer import Pattern, PatternRecognizer

    class ContextPhoneRecognizer(PatternRecognizer):
        def validate_result(self, pattern_text: str) -> bool | None:
            main = pattern_text.split("x")[0].split("ext")[0]
            return None if 7 <= digit_count(main) <= 15 else False

    class LuhnCardRecognizer(PatternRecognizer):
        def validate_result(self, pattern_text: str) -> bool | None:
            digits = "".join(c for c in pattern_text if c.isdigit())
            return None if 12 <= len(digits) <= 19 and luhn_valid(digits) else False

    phone = ContextPhoneRecognizer(
        supported_entity="PHONE_NUMBER",
        name="ContextPhoneRecognizer",
        patterns=[Pattern("phone-like digit groups", PHONE_PATTERN, 0.05)],
        context=PHONE_CONTEXT,
    )
    card = LuhnCardRecognizer(
        supported_entity="CREDIT_CARD",
        name="LuhnCardRecognizer",
        patterns=[Pattern("luhn-valid 12-19 digits", CARD_PATTERN, 0.1)],
        context=CARD_CONTEXT,
    )
    return [phone, card]
