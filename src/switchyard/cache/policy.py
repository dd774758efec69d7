"""Category-aware cache policy: per decision or domain label, enable, threshold and TTL.

The first rule whose `match` names the decision or one of the signal labels wins; otherwise
the global settings apply. Labels listed in `bypass_labels` (e.g. `pii`) switch caching off.
"""

from __future__ import annotations

from dataclasses import dataclass

from switchyard.cache.base import CacheScope
from switchyard.config.cache import CacheConfig


@dataclass(frozen=True, slots=True)
class EffectivePolicy:
    enabled: bool
    category: str
    threshold: float
    min_similarity: float
    ttl_s: float
    semantic: bool
    reason: str = ""


class CachePolicy:
    def __init__(self, cfg: CacheConfig) -> None:
        self._cfg = cfg
        self._bypass = frozenset(label.casefold() for label in cfg.bypass_labels)

    def resolve(self, scope: CacheScope) -> EffectivePolicy:
        cfg = self._cfg
        labels = [label.casefold() for label in scope.labels]
        flagged = next((label for label in labels if label in self._bypass), None)
        base = EffectivePolicy(
            enabled=flagged is None,
            category="",
            threshold=cfg.threshold,
            min_similarity=cfg.min_similarity,
            ttl_s=cfg.ttl_s,
            semantic=cfg.mode != "exact",
            reason=f"label:{flagged}" if flagged else "",
        )
        names = ([scope.decision.casefold()] if scope.decision else []) + labels
        if not names:
            return base
        for rule in cfg.categories:
            matched = next((m for m in rule.match if m.casefold() in names), None)
            if matched is None:
                continue
            return EffectivePolicy(
                enabled=base.enabled and rule.enabled,
                category=matched,
                threshold=rule.threshold if rule.threshold is not None else cfg.threshold,
                min_similarity=(
                    rule.min_similarity if rule.min_similarity is not None
                    else cfg.min_similarity
                ),
                ttl_s=rule.ttl_s if rule.ttl_s is not None else cfg.ttl_s,
                semantic=base.semantic and rule.semantic,
                reason=base.reason or ("" if rule.enabled else f"category:{matched}"),
            )
        return base
