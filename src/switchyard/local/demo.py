"""`switchyard demo`: send a short mixed set of prompts through a running gateway over HTTP.

For each prompt it prints the decision, the model, the latency and the first line of the answer,
then the total cost compared with sending every prompt to the most expensive model (priced from
the configuration with the same token counts; `--compare` really sends them there instead).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Annotated, Any

import httpx
import typer

from switchyard.config.schema import ModelConfig

DEMO_PROMPTS: tuple[str, ...] = (
    "Say hello in French.",
    "What is the capital of Japan?",
    "Write a Python function that checks whether a string is a palindrome.",
    "Give me three names for a pet goldfish.",
    "Explain step by step how to compute 15% of 80.",
    "Fix the bug in this code: for i in range(10) print(i)",
)


@dataclass(frozen=True, slots=True)
class DemoResult:
    prompt: str
    status: int
    decision: str
    model: str
    endpoint: str
    latency_s: float
    answer: str
    prompt_tokens: int
    completion_tokens: int

    @property
    def first_line(self) -> str:
        lines = [line.strip() for line in self.answer.splitlines()
                 if line.strip() and not line.strip().startswith("```")]
        return lines[0] if lines else ""

    def cost_usd(self, models: Mapping[str, ModelConfig], model: str | None = None) -> float:
        config = models.get(model or self.model)
        return config.cost_usd(self.prompt_tokens, self.completion_tokens) if config else 0.0


def most_expensive(models: Mapping[str, ModelConfig]) -> ModelConfig:
    return max(models.values(), key=lambda m: (m.output_usd_per_mtok, m.input_usd_per_mtok))


async def ask(client: httpx.AsyncClient, prompt: str, model: str, max_tokens: int) -> DemoResult:
    body = {"model": model, "max_tokens": max_tokens, "temperature": 0,
            "messages": [{"role": "user", "content": prompt}]}
    started = perf_counter()
    answer = await client.post("/v1/chat/completions", json=body)
    latency = perf_counter() - started
    payload: dict[str, Any] = answer.json() if answer.content else {}
    usage = payload.get("usage") or {}
    if answer.status_code == 200:
        text = str(payload["choices"][0]["message"].get("content") or "")
    else:
        text = str((payload.get("error") or {}).get("message", answer.text))
    return DemoResult(
        prompt=prompt, status=answer.status_code,
        decision=answer.headers.get("x-switchyard-decision", ""),
        model=answer.headers.get("x-switchyard-model", "") or str(payload.get("model", "")),
        endpoint=answer.headers.get("x-switchyard-endpoint", ""),
        latency_s=latency, answer=text,
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        completion_tokens=int(usage.get("completion_tokens", 0)),
    )


async def run_prompts(base_url: str, prompts: Sequence[str], model: str = "auto",
                      max_tokens: int = 64, timeout_s: float = 600.0) -> list[DemoResult]:
    """One request at a time, in order (the local servers answer one at a time anyway)."""
    async with httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s,
                                 trust_env=False) as client:
        return [await ask(client, prompt, model, max_tokens) for prompt in prompts]


def _report(results: Sequence[DemoResult], models: Mapping[str, ModelConfig]) -> str:
    lines: list[str] = []
    for index, result in enumerate(results, 1):
        where = (f"{result.decision or '-'} → {result.model} ({result.endpoint})"
                 if result.status == 200 else f"HTTP {result.status}")
        lines += [
            f"{index}. {result.prompt}",
            f"   {where}  {result.latency_s:.1f}s  "
            f"{result.prompt_tokens}+{result.completion_tokens} tokens  "
            f"${result.cost_usd(models):.7f}",
            f"   {result.first_line[:96]}",
        ]
    return "\n".join(lines)


def demo(
    url: Annotated[str, typer.Option(help="the running gateway")] = "http://127.0.0.1:8080",
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="config the gateway runs (for prices)")] = None,
    max_tokens: Annotated[int, typer.Option(help="answer length cap")] = 64,
    compare: Annotated[bool, typer.Option(
        "--compare", help="also send every prompt to the most expensive model")] = False,
) -> None:
    """Send a short mixed set of prompts through the gateway; show routing, latency and cost."""
    from switchyard.cli_core import _load_or_exit
    from switchyard.local import default_config_path

    cfg = _load_or_exit(config or default_config_path())
    models = cfg.model_by_name()
    large = most_expensive(models)
    try:
        results = asyncio.run(run_prompts(url, DEMO_PROMPTS, max_tokens=max_tokens))
    except httpx.HTTPError as exc:
        typer.echo(f"error: cannot reach the gateway at {url} ({exc!r}); start it with "
                   "`make run` or `switchyard serve`", err=True)
        raise typer.Exit(1) from None
    typer.echo(_report(results, models))
    routed = sum(r.cost_usd(models) for r in results)
    if compare:
        baseline = asyncio.run(run_prompts(url, DEMO_PROMPTS, model=large.name,
                                           max_tokens=max_tokens))
        all_large = sum(r.cost_usd(models) for r in baseline)
        how = f"measured: the same prompts sent to {large.name}"
    else:
        all_large = sum(r.cost_usd(models, large.name) for r in results)
        how = f"same token counts priced as {large.name}"
    ratio = routed / all_large if all_large else 0.0
    typer.echo(f"\ntotal cost ${routed:.7f} vs all-large ${all_large:.7f} ({how}): "
               f"{ratio:.0%} of the all-large cost; {sum(r.latency_s for r in results):.1f}s")
    if any(r.status != 200 for r in results):
        raise typer.Exit(1)
