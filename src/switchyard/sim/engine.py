"""The discrete-event loop: arrivals -> the real `Balancer.pick` -> `EndpointModel`s.

Events are replica step ends (a heap of `(time, seq, replica, version)`; a stale version is
skipped) and periodic rebalance ticks; arrivals are read in order from the sorted workload
arrays without entering the heap. Pools: each request goes to the first pool whose
`max_prompt_tokens` admits it (a context-length split), then the pool's balancer picks a replica
from `EndpointState` snapshots filled like the live pool fills them (`in_flight`,
`pending_prefill_tokens` = prompt tokens of requests that have not produced a first token).
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from switchyard.pools.balancer import Balancer
from switchyard.pools.dualmap import QueuedRequest
from switchyard.sim.endpoint_model import EndpointModel, RequestTable
from switchyard.sim.profiles import Profile
from switchyard.sim.workloads import Workload
from switchyard.types import EndpointState, RequestView


@dataclass
class PoolSpec:
    """A group of identical replicas behind one balancer."""

    name: str
    replicas: int
    profile: Profile
    balancer_factory: Callable[[], Balancer]
    max_prompt_tokens: int | None = None


@dataclass
class SimResult:
    table: RequestTable
    replicas: list[EndpointModel]
    pools: list[PoolSpec]
    wall_s: float
    sim_end_s: float
    cpu_s: float
    moves: int = 0
    in_system_seen_by_arrivals: int = 0  # sum over arrivals of requests already in the system


ProgressHook = Callable[[int], None]


class Simulation:
    def __init__(self, workload: Workload, pools: Sequence[PoolSpec],
                 rebalance_interval_s: float = 1.0) -> None:
        self.workload = workload
        self.pools = list(pools)
        self.table = RequestTable(workload.arrival_s.tolist(), workload.input_tokens.tolist(),
                                  workload.output_tokens.tolist(), workload.blocks)
        self.replicas: list[EndpointModel] = []
        self.pool_members: list[list[EndpointModel]] = []
        self.balancers: list[Balancer] = []
        self.by_name: dict[str, EndpointModel] = {}
        for pool in self.pools:
            members = []
            for i in range(pool.replicas):
                model = EndpointModel(len(self.replicas), f"{pool.name}-{i}", pool.profile,
                                      self.table)
                self.replicas.append(model)
                self.by_name[model.name] = model
                members.append(model)
            self.pool_members.append(members)
            balancer = pool.balancer_factory()
            attach = getattr(balancer, "attach_replicas", None)
            if attach is not None:  # an oracle (sim.oracle) that reads the replicas' true state
                attach(members)
            self.balancers.append(balancer)
        self.rebalance_interval_s = rebalance_interval_s
        self._heap: list[tuple[float, int, int, int]] = []
        self._seq = 0
        self._finished: list[int] = []
        self.moves = 0
        self._in_system_seen = 0

    # ---- helpers -------------------------------------------------------------------------
    def _schedule(self, replica: EndpointModel) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (replica.step_end, self._seq, replica.index, replica.version))

    def _poke(self, replica: EndpointModel, now: float) -> None:
        if not replica.busy:
            if replica.plan(now):
                self._schedule(replica)
        elif len(replica.waiting) == 1 and replica.interrupt(now):
            self._schedule(replica)

    def _view(self, request: int) -> RequestView:
        blocks = self.table.blocks[request] if self.workload.has_prefix_info else ()
        return RequestView(request_id=str(request), model="sim", prefix_blocks=blocks,
                           prompt_tokens=self.table.inputs[request])

    @staticmethod
    def _state(replica: EndpointModel, pool: str) -> EndpointState:
        return EndpointState(name=replica.name, pool=pool, in_flight=replica.in_flight,
                             pending_prefill_tokens=replica.pending_prompt_tokens)

    def _pool_for(self, request: int) -> int:
        tokens = self.table.inputs[request]
        for i, pool in enumerate(self.pools):
            if pool.max_prompt_tokens is None or tokens <= pool.max_prompt_tokens:
                return i
        return len(self.pools) - 1

    def _arrive(self, request: int, now: float) -> None:
        self._in_system_seen += sum(r.in_flight for r in self.replicas)
        pool_index = self._pool_for(request)
        members = self.pool_members[pool_index]
        self.table.potential_cached[request] = max(m.cached_prefix_tokens(request)
                                                   for m in members)
        name = self.pools[pool_index].name
        states = [self._state(m, name) for m in members]
        chosen = self.balancers[pool_index].pick(states, self._view(request))
        replica = self.by_name[chosen.name]
        replica.enqueue(request)
        self._poke(replica, now)

    def _rebalance(self, now: float) -> None:
        for pool_index, balancer in enumerate(self.balancers):
            rebalance = getattr(balancer, "rebalance", None)
            members = self.pool_members[pool_index]
            if rebalance is None or not any(m.waiting for m in members):
                continue
            name = self.pools[pool_index].name
            arrival = self.table.arrival
            queues = {m.name: [QueuedRequest(str(r), self._view(r), now - arrival[r])
                               for r in m.waiting]
                      for m in members if m.waiting}
            by_name = self.by_name
            for move in rebalance([self._state(m, name) for m in members], queues):
                request = int(move.request_id)
                source, target = by_name[move.source], by_name[move.target]
                if request not in source.waiting:
                    continue
                source.remove_waiting(request)
                target.enqueue(request)
                self.moves += 1
                self._poke(target, now)
                self._poke(source, now)

    # ---- main loop -----------------------------------------------------------------------
    def run(self, progress: ProgressHook | None = None) -> SimResult:
        started = time.perf_counter()
        started_cpu = time.process_time()
        arrivals = self.table.arrival
        count = len(arrivals)
        heap = self._heap
        replicas = self.replicas
        has_rebalance = any(hasattr(b, "rebalance") for b in self.balancers)
        next_tick = self.rebalance_interval_s if has_rebalance else float("inf")
        next_arrival = 0
        now = 0.0
        done = 0
        while done < count:
            arrival_time = arrivals[next_arrival] if next_arrival < count else float("inf")
            event_time = heap[0][0] if heap else float("inf")
            if next_tick <= arrival_time and next_tick <= event_time and next_tick < float("inf"):
                now = next_tick
                self._rebalance(now)
                busy = next_arrival < count or any(r.waiting for r in replicas)
                next_tick = now + self.rebalance_interval_s if busy else float("inf")
                continue
            if arrival_time <= event_time:
                now = arrival_time
                self._arrive(next_arrival, now)
                next_arrival += 1
                continue
            now, _, index, version = heapq.heappop(heap)
            replica = replicas[index]
            if version != replica.version:
                continue
            replica.on_step_end(now, self._finished)
            if self._finished:
                done += len(self._finished)
                if progress is not None:
                    progress(len(self._finished))
                self._finished.clear()
            if replica.plan(now):
                self._schedule(replica)
            if has_rebalance and next_tick == float("inf"):
                next_tick = now + self.rebalance_interval_s
        return SimResult(self.table, self.replicas, self.pools, time.perf_counter() - started,
                         now, time.process_time() - started_cpu, self.moves, self._in_system_seen)


def simulate(workload: Workload, pools: Sequence[PoolSpec],
             progress: ProgressHook | None = None) -> SimResult:
    return Simulation(workload, pools).run(progress)
