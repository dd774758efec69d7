"""Pool admission: bounded queueing when replicas are saturated, failover exclusion."""

from __future__ import annotations

import asyncio

import pytest

from switchyard.config.pools import PoolConfig
from switchyard.errors import NoHealthyEndpointError, OverloadedError
from switchyard.pools.pool import Pool
from switchyard.types import RequestView

VIEW = RequestView(request_id="r", model="m")


def make_pool(max_concurrency: int = 1, wait_s: float = 0.2, replicas: int = 1) -> Pool:
    return Pool(PoolConfig.model_validate({
        "name": "p",
        "endpoints": [
            {"name": f"e{i}", "url": f"http://127.0.0.1:{9000 + i}/v1",
             "max_concurrency": max_concurrency, "max_queue_wait_s": wait_s}
            for i in range(replicas)
        ],
        "balancer": {"type": "round_robin"},
    }))


async def test_excess_request_waits_for_a_free_slot() -> None:
    pool = make_pool(wait_s=2.0)
    first = await pool.acquire(VIEW, (), tokens=10)
    waiter = asyncio.ensure_future(pool.acquire(VIEW, (), tokens=10))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    first.release()
    second = await asyncio.wait_for(waiter, 1.0)
    assert second.endpoint.in_flight == 1
    second.release()
    assert second.endpoint.in_flight == 0


async def test_queue_wait_is_bounded_then_overloaded_with_retry_after() -> None:
    pool = make_pool(wait_s=0.1)
    lease = await pool.acquire(VIEW, (), tokens=1)
    with pytest.raises(OverloadedError) as info:
        await pool.acquire(VIEW, (), tokens=1)
    assert info.value.status == 503 and info.value.retry_after is not None
    lease.release()


async def test_release_is_idempotent_and_tracks_prefill_tokens() -> None:
    pool = make_pool(max_concurrency=0)
    lease = await pool.acquire(VIEW, (), tokens=100)
    assert lease.endpoint.pending_prefill_tokens == 100
    lease.first_byte()
    assert lease.endpoint.pending_prefill_tokens == 0
    lease.release()
    lease.release()
    assert lease.endpoint.in_flight == 0 and lease.endpoint.pending_prefill_tokens == 0


async def test_failover_prefers_untried_replicas() -> None:
    pool = make_pool(max_concurrency=0, replicas=3)
    lease = await pool.acquire(VIEW, ("e0", "e1"), tokens=1)
    assert lease.endpoint.name == "e2"


async def test_unhealthy_everywhere_raises_no_healthy_endpoint() -> None:
    pool = make_pool(replicas=2)
    for endpoint in pool.endpoints:
        endpoint.healthy = False
    with pytest.raises(NoHealthyEndpointError):
        await pool.acquire(VIEW, (), tokens=1)


async def test_passive_ejection_after_consecutive_failures() -> None:
    pool = make_pool(replicas=2)
    target = pool.endpoints[0]
    for _ in range(pool.config.outlier.consecutive_failures):
        pool.report_failure(target)
    assert not target.healthy
    lease = await pool.acquire(VIEW, (), tokens=1)
    assert lease.endpoint.name == "e1"
