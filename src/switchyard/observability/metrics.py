"""Every Prometheus metric switchyard exports, on a registry owned by one gateway."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
)


_Children = tuple[Any, tuple[Any, Any, Any, Any] | None]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "switchyard_requests_total", "Requests answered, by model, decision and HTTP status",
            ("model", "decision", "status"), registry=r,
        )
        self.latency = Histogram(
            "switchyard_request_latency_seconds", "End-to-end request latency",
            ("model",), buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.ttft = Histogram(
            "switchyard_ttft_seconds", "Time to first upstream byte of streamed responses",
            ("model",), buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.upstream_errors = Counter(
            "switchyard_upstream_errors_total", "Failed upstream attempts by kind",
            ("endpoint", "kind"), registry=r,
        )
        self.retries = Counter(
            "switchyard_retries_total", "Upstream attempts beyond the first", ("model",),
            registry=r,
        )
        self.endpoint_healthy = Gauge(
            "switchyard_endpoint_healthy", "1 when the replica is healthy", ("pool", "endpoint"),
            registry=r,
        )
        self.tokens = Counter(
            "switchyard_tokens_total", "Tokens by model and kind (prompt|completion)",
            ("model", "kind"), registry=r,
        )
        self.cost = Counter(
            "switchyard_cost_usd_total", "Estimated spend in USD", ("model",), registry=r,
        )
        # (model, decision, status) -> resolved label children; bounded by the config's names
        self._children: dict[tuple[str, str, int], _Children] = {}
        self.signal_errors = Counter(
            "switchyard_signal_errors_total", "Signal evaluations that failed or timed out",
            ("signal",), registry=r,
        )
        self.cache_lookups = Counter(
            "switchyard_cache_lookups_total", "Cache lookups by result (hit|miss|bypass) and match",
            ("result", "match"), registry=r,
        )
        self.cache_lookup_latency = Histogram(
            "switchyard_cache_lookup_seconds", "Cache lookup latency (including embedding)",
            ("result",), buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
            registry=r,
        )
        self.cache_stores = Counter(
            "switchyard_cache_stores_total", "Responses offered to the cache, stored or skipped",
            ("result",), registry=r,
        )
        self.cache_backend_errors = Counter(
            "switchyard_cache_backend_errors_total",
            "Cache backend failures (e.g. PostgreSQL down); the cache was bypassed", registry=r,
        )
        self.cache_entries = Gauge("switchyard_cache_entries", "Entries in the cache", registry=r)
        self.cache_bytes = Gauge("switchyard_cache_bytes", "Bytes held by the cache", registry=r)
        self.cache_evictions = Gauge(
            "switchyard_cache_evictions", "Entries evicted (LRU/bytes) or expired since start",
            registry=r,
        )

    def record_request(
        self, model: str | None, decision: str, status: int, latency_s: float,
        prompt_tokens: int, completion_tokens: int, cost_usd: float,
    ) -> None:
        """Count one answered request. Label children are looked up once and kept."""
        key = (model or "none", decision or "none", status)
        children = self._children.get(key)
        if children is None:
            children = self._resolve(*key, has_model=model is not None)
            self._children[key] = children
        requests, per_model = children
        requests.inc()
        if per_model is not None:
            latency, prompt, completion, cost = per_model
            latency.observe(latency_s)
            prompt.inc(prompt_tokens)
            completion.inc(completion_tokens)
            cost.inc(cost_usd)

    def _resolve(self, model: str, decision: str, status: int, has_model: bool) -> _Children:
        requests = self.requests.labels(model, decision, str(status))
        if not has_model:
            return requests, None
        return requests, (
            self.latency.labels(model),
            self.tokens.labels(model, "prompt"),
            self.tokens.labels(model, "completion"),
            self.cost.labels(model),
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
