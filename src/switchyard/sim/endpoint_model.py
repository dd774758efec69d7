"""`EndpointModel`: a continuous-batching server with chunked prefill and a prefix cache.

Model (constants from a `Profile`):
- Requests queue FCFS. The head is admitted when a batch slot is free (`max_batch` running) and
  the KV budget can hold its whole sequence (prompt + output blocks; no preemption — a real
  server would preempt instead, the simulator knows output lengths and reserves up front).
- Admission matches the longest run of leading prompt blocks already in this replica's cache;
  those tokens are not prefilled again (at least one token always is).
- Each engine step decodes one token for every decoding request and spends the rest of the
  `chunk_tokens` budget on prefill chunks, FCFS. Step time = prefill tokens / prefill rate +
  (decode_base + per_request x batch + per_1k_context x context/1000) when anything decodes.
- The first token is emitted at the end of the step that finishes a prompt's prefill.
- Prompt blocks stay cached after a request ends (refcount 0, LRU); they are evicted, oldest
  first, when an admission needs room. A finished request's blocks are released tail first, so a
  shared prefix outlives the tails hanging off it (vLLM's free-queue order).
- Pure decode runs are simulated as one segment up to the next completion (closed form for the
  step times, context grows by the batch size every step) and are cut short when new work
  arrives.
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict, deque
from collections.abc import Sequence

from switchyard.sim.profiles import Profile


class RequestTable:
    """Per-request columns the replicas read and write (plain lists: fast scalar access)."""

    def __init__(self, arrival: Sequence[float], inputs: Sequence[int], outputs: Sequence[int],
                 blocks: Sequence[tuple[int, ...]]) -> None:
        count = len(arrival)
        self.arrival = list(arrival)
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.blocks = blocks
        self.first_token = [math.nan] * count
        self.admitted = [math.nan] * count
        self.finish = [math.nan] * count
        self.cached_tokens = [0] * count
        self.replica = [-1] * count
        self.prefill_left = [0] * count
        self.anon_blocks = [0] * count
        self.completions = [0] * count
        # instrumentation: tokens cached on the best replica of the pool when the request arrived
        self.potential_cached = [0] * count


class EndpointModel:
    """One replica. `advance_to`/`on_step_end` are driven by the engine's event loop."""

    def __init__(self, index: int, name: str, profile: Profile, table: RequestTable) -> None:
        self.index = index
        self.name = name
        self.profile = profile
        self.table = table
        self.waiting: deque[int] = deque()
        self.prefilling: deque[int] = deque()
        self.decoding: list[tuple[int, int]] = []  # heap of (finish_step, request)
        self.steps_done = 0
        self.context_tokens = 0
        self.pending_prompt_tokens = 0  # prompt tokens of requests before their first token
        self.in_flight = 0
        # KV cache
        self.free_blocks = profile.kv_blocks
        self.refcount: dict[int, int] = {}
        self.evictable: OrderedDict[int, None] = OrderedDict()
        # current step / decode segment
        self.busy = False
        self.version = 0
        self.step_end = 0.0
        self._segment_start = 0.0
        self._segment_steps = 0
        self._segment_base_s = 0.0
        self._segment_growth_s = 0.0
        self._chunk: list[tuple[int, int]] = []
        # accounting
        self.busy_s = 0.0
        self.kv_blocked_s = 0.0  # time spent decoding only while requests wait for admission
        self._blocked = False
        self.prefilled_tokens = 0
        self.hit_tokens = 0
        self.prompt_tokens = 0
        self.served = 0

    # ---- queue ---------------------------------------------------------------------------
    def enqueue(self, request: int) -> None:
        self.waiting.append(request)
        self.in_flight += 1
        self.pending_prompt_tokens += self.table.inputs[request]
        self.table.replica[request] = self.index

    def remove_waiting(self, request: int) -> None:
        self.waiting.remove(request)
        self.in_flight -= 1
        self.pending_prompt_tokens -= self.table.inputs[request]

    # ---- KV cache ------------------------------------------------------------------------
    def cached_prefix_tokens(self, request: int) -> int:
        """Tokens of `request`'s prompt this replica would serve from its cache right now."""
        matched = self._matched_blocks(self.table.blocks[request])
        return min(matched * self.profile.block_tokens, self.table.inputs[request] - 1)

    def _matched_blocks(self, blocks: tuple[int, ...]) -> int:
        count = 0
        refcount = self.refcount
        evictable = self.evictable
        for block in blocks:
            if block in refcount or block in evictable:
                count += 1
            else:
                break
        return count

    def _take_free_block(self) -> None:
        if self.free_blocks > 0:
            self.free_blocks -= 1
        else:
            self.evictable.popitem(last=False)

    def _try_admit(self, request: int) -> bool:
        table = self.table
        block_tokens = self.profile.block_tokens
        blocks = table.blocks[request]
        matched = self._matched_blocks(blocks)
        total = math.ceil((table.inputs[request] + table.outputs[request]) / block_tokens)
        total = min(max(total, len(blocks)), self.profile.kv_blocks)
        reusable_idle = sum(1 for b in blocks[:matched] if b in self.evictable)
        if total - matched > self.free_blocks + len(self.evictable) - reusable_idle:
            return False
        refcount = self.refcount
        evictable = self.evictable
        for block in blocks[:matched]:
            if block in evictable:
                del evictable[block]
                refcount[block] = 1
            else:
                refcount[block] += 1
        allocated = matched
        for block in blocks[matched:]:
            if block in refcount:
                refcount[block] += 1
                continue
            if block in evictable:
                del evictable[block]
                refcount[block] = 1
                continue
            self._take_free_block()
            refcount[block] = 1
            allocated += 1
        anon = max(0, total - allocated)
        for _ in range(anon):
            self._take_free_block()
        table.anon_blocks[request] = anon
        cached = min(matched * block_tokens, table.inputs[request] - 1)
        table.cached_tokens[request] = cached
        table.prefill_left[request] = table.inputs[request] - cached
        self.hit_tokens += cached
        self.prompt_tokens += table.inputs[request]
        return True

    def _release(self, request: int) -> None:
        refcount = self.refcount
        evictable = self.evictable
        for block in reversed(self.table.blocks[request]):
            count = refcount.get(block)
            if count is None:
                continue
            if count <= 1:
                del refcount[block]
                evictable[block] = None
            else:
                refcount[block] = count - 1
        self.free_blocks += self.table.anon_blocks[request]

    # ---- scheduling ----------------------------------------------------------------------
    def _decode_step_s(self, batch: int, context: int) -> float:
        p = self.profile
        return (p.decode_base_ms + p.decode_per_request_ms * batch
                + p.decode_per_1k_context_ms * context / 1000.0) / 1000.0

    def plan(self, now: float) -> bool:
        """Start the next step or decode segment at `now`; False when there is nothing to do."""
        batch = len(self.decoding)
        budget = self.profile.chunk_tokens - batch
        chunk: list[tuple[int, int]] = []
        table = self.table
        for request in self.prefilling:
            if budget <= 0:
                break
            take = min(budget, table.prefill_left[request])
            chunk.append((request, take))
            budget -= take
        while budget > 0 and self.waiting:
            if len(self.prefilling) + batch >= self.profile.max_batch:
                break
            head = self.waiting[0]
            if not self._try_admit(head):
                break
            self.waiting.popleft()
            table.admitted[head] = now
            self.prefilling.append(head)
            take = min(budget, table.prefill_left[head])
            chunk.append((head, take))
            budget -= take
        self._chunk = chunk
        self._blocked = not chunk and bool(self.waiting)
        self._segment_start = now
        if chunk:
            tokens = sum(t for _, t in chunk)
            duration = tokens / self.profile.prefill_tokens_per_s
            if batch:
                duration += self._decode_step_s(batch, self.context_tokens)
            self._segment_steps = 1
            self.step_end = now + duration
        elif batch:
            steps = self.decoding[0][0] - self.steps_done
            self._segment_steps = max(1, steps)
            self._segment_base_s = self._decode_step_s(batch, self.context_tokens)
            self._segment_growth_s = self.profile.decode_per_1k_context_ms * batch / 1e6
            self.step_end = now + self._segment_time(self._segment_steps)
        else:
            self.busy = False
            return False
        self.busy = True
        self.version += 1
        return True

    def _segment_time(self, steps: int) -> float:
        return steps * self._segment_base_s + self._segment_growth_s * steps * (steps - 1) / 2.0

    def interrupt(self, now: float) -> bool:
        """New work arrived at `now`: cut a decode segment at the step in progress.
        Returns True when the step end moved (the engine must reschedule)."""
        if not self.busy or self._chunk or self._segment_steps <= 1:
            return False
        elapsed = now - self._segment_start
        base, growth = self._segment_base_s, self._segment_growth_s
        if growth > 0:
            a = growth / 2.0
            b = base - a
            done = int((-b + math.sqrt(b * b + 4 * a * elapsed)) / (2 * a))
        else:
            done = int(elapsed / base) if base > 0 else 0
        while done > 0 and self._segment_time(done) > elapsed:
            done -= 1
        steps = done + 1
        if steps >= self._segment_steps:
            return False
        self._segment_steps = steps
        self.step_end = self._segment_start + self._segment_time(steps)
        self.version += 1
        return True

    def on_step_end(self, now: float, finished: list[int]) -> None:
        """Apply the step/segment that ends at `now`; append completed requests to `finished`."""
        steps = self._segment_steps
        self.busy_s += now - self._segment_start
        if self._blocked:
            self.kv_blocked_s += now - self._segment_start
        table = self.table
        self.context_tokens += len(self.decoding) * steps
        self.steps_done += steps
        decoding = self.decoding
        while decoding and decoding[0][0] <= self.steps_done:
            _, request = heapq.heappop(decoding)
            self.context_tokens -= table.inputs[request] + table.outputs[request]
            self._complete(request, now, finished)
        for request, take in self._chunk:
            table.prefill_left[request] -= take
            self.prefilled_tokens += take
            if table.prefill_left[request] == 0:
                self.prefilling.remove(request)
                table.first_token[request] = now
                self.pending_prompt_tokens -= table.inputs[request]
                if table.outputs[request] <= 1:
                    self._complete(request, now, finished)
                else:
                    last_step = self.steps_done + table.outputs[request] - 1
                    heapq.heappush(decoding, (last_step, request))
                    self.context_tokens += table.inputs[request] + 1
        self._chunk = []
        self.busy = False

    def _complete(self, request: int, now: float, finished: list[int]) -> None:
        self.table.finish[request] = now
        self.table.completions[request] += 1
        self.in_flight -= 1
        self.served += 1
        self._release(request)
        finished.append(request)
