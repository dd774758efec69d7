"""KV-cache-aware balancers: hash stability, bounded loads, remap fraction, affinity, migration."""

from __future__ import annotations

import pytest

from switchyard.config.pools import (
    ConsistentHashBalancerConfig,
    DualMapBalancerConfig,
    PrefixAffinityBalancerConfig,
    SessionAffinityBalancerConfig,
)
from switchyard.pools import kv_balancers  # noqa: F401  (registers the types)
from switchyard.pools.balancer import BALANCERS, build_balancer
from switchyard.pools.consistent_hash import ConsistentHashBalancer, bounded_capacity
from switchyard.pools.dualmap import DualMapBalancer, QueuedRequest
from switchyard.pools.hashing import (
    HashRing,
    affinity_key,
    blocks_and_token_ends,
    stable_hash64,
    text_blocks,
)
from switchyard.pools.least_pending_tokens import LeastPendingTokensBalancer
from switchyard.pools.prefix_affinity import PrefixAffinityBalancer
from switchyard.pools.session_affinity import SessionAffinityBalancer
from switchyard.types import ChatMessage, EndpointState, RequestView


def endpoints(count: int, **loads: int) -> list[EndpointState]:
    return [EndpointState(name=f"e{i}", pool="p", in_flight=loads.get(f"e{i}", 0))
            for i in range(count)]


def trace_view(request_id: str, blocks: tuple[int, ...]) -> RequestView:
    return RequestView(request_id=request_id, model="m", prefix_blocks=blocks,
                       prompt_tokens=512 * len(blocks))


def chat(*texts: str) -> RequestView:
    roles = ["user", "assistant"]
    messages = tuple(ChatMessage(roles[i % 2], t) for i, t in enumerate(texts))
    return RequestView(request_id="r", model="m", messages=messages)


def test_stable_hash_is_fixed_across_processes() -> None:
    # a literal: Python's hash() is salted per process, BLAKE2b is not
    assert stable_hash64(b"switchyard") == stable_hash64(b"switchyard")
    assert stable_hash64(b"switchyard") == 0x1C68B16CA22242D4
    assert stable_hash64(b"a", b"x") != stable_hash64(b"a", b"y")


def test_hash_ring_owner_is_stable_for_same_names() -> None:
    ring1 = HashRing(["a", "b", "c"], 50, b"s")
    ring2 = HashRing(["c", "b", "a"], 50, b"s")
    keys = [stable_hash64(str(i).encode()) for i in range(500)]
    assert [ring1.owner(k) for k in keys] == [ring2.owner(k) for k in keys]
    assert set(ring1.owner(k) for k in keys) == {"a", "b", "c"}


@pytest.mark.parametrize("count", [4, 8, 16])
def test_adding_a_replica_remaps_about_one_nth(count: int) -> None:
    names = [f"e{i}" for i in range(count)]
    before = HashRing(names, 100, b"s")
    after = HashRing([*names, "new"], 100, b"s")
    keys = [stable_hash64(str(i).encode()) for i in range(20_000)]
    moved = [k for k in keys if before.owner(k) != after.owner(k)]
    assert all(after.owner(k) == "new" for k in moved)  # only the new arcs change hands
    expected = 1 / (count + 1)
    assert expected * 0.6 < len(moved) / len(keys) < expected * 1.4


def test_live_text_blocks_of_a_follow_up_turn_extend_the_first_turn() -> None:
    first = text_blocks(chat("hello there"))
    second = text_blocks(chat("hello there", "hi! how can I help", "explain KV caches"))
    assert second[: len(first)] == first
    assert len(second) == len(first) + 2
    assert text_blocks(chat("another conversation"))[0] != first[0]


def test_affinity_key_same_for_all_turns_of_a_conversation() -> None:
    assert affinity_key(chat("q1"), 2) == affinity_key(chat("q1", "a1", "q2"), 2)
    assert affinity_key(chat("q1"), 2) != affinity_key(chat("other"), 2)
    assert affinity_key(trace_view("1", (0, 5, 6)), 2) == affinity_key(trace_view("2", (0, 5)), 2)


def test_bounded_load_never_exceeds_ceil_c_times_mean() -> None:
    config = ConsistentHashBalancerConfig(type="consistent_hash", load_factor=1.25)
    balancer = ConsistentHashBalancer(config)
    loads = {f"e{i}": 0 for i in range(5)}
    # every request has the same key: pure hashing would put all on one endpoint
    for n in range(200):
        state = [EndpointState(name=k, pool="p", in_flight=v) for k, v in loads.items()]
        cap = bounded_capacity(state, 1.25)
        chosen = balancer.pick(state, trace_view(str(n), (0, 1)))
        loads[chosen.name] += 1
        assert loads[chosen.name] <= cap
    assert max(loads.values()) <= -(-125 * 200 // (100 * 5))


def test_consistent_hash_keeps_key_on_its_endpoint_while_it_has_room() -> None:
    balancer = ConsistentHashBalancer(ConsistentHashBalancerConfig(type="consistent_hash"))
    picks = {balancer.pick(endpoints(8), trace_view(str(i), (0, 7))).name for i in range(20)}
    assert len(picks) == 1


def test_prefix_affinity_follows_longest_match_and_yields_to_imbalance() -> None:
    config = PrefixAffinityBalancerConfig(type="prefix_affinity", balance_abs_threshold=4,
                                          balance_rel_threshold=1.5)
    balancer = PrefixAffinityBalancer(config)
    first = balancer.pick(endpoints(4), trace_view("1", (0, 10, 11, 12)))
    again = balancer.pick(endpoints(4), trace_view("2", (0, 10, 11, 12, 13)))
    assert again.name == first.name
    skewed = endpoints(4, **{first.name: 20})
    moved = balancer.pick(skewed, trace_view("3", (0, 10, 11, 12, 13, 14)))
    assert moved.name != first.name and moved.in_flight == 0


def test_prefix_affinity_spreads_distinct_prompts() -> None:
    balancer = PrefixAffinityBalancer(PrefixAffinityBalancerConfig(type="prefix_affinity"))
    names = {balancer.pick(endpoints(4), trace_view(str(i), (100 + i * 10, 101 + i * 10))).name
             for i in range(4)}
    assert len(names) == 4


def test_least_pending_tokens_picks_fewest_queued_tokens() -> None:
    states = [EndpointState(name="a", pool="p", in_flight=1, pending_prefill_tokens=9000),
              EndpointState(name="b", pool="p", in_flight=5, pending_prefill_tokens=100)]
    assert LeastPendingTokensBalancer().pick(states, trace_view("1", (1,))).name == "b"


def test_session_affinity_is_sticky_and_falls_back_under_load() -> None:
    balancer = SessionAffinityBalancer(SessionAffinityBalancerConfig(type="session_affinity"))
    view = RequestView(request_id="1", model="m", user="alice")
    home = balancer.pick(endpoints(4), view).name
    assert all(balancer.pick(endpoints(4), view).name == home for _ in range(5))
    assert balancer.pick(endpoints(4, **{home: 50}), view).name != home


def dualmap() -> DualMapBalancer:
    return DualMapBalancer(DualMapBalancerConfig(type="dualmap", ttft_slo_s=5.0))


def test_dualmap_candidates_distinct_and_stable() -> None:
    balancer = dualmap()
    names = [f"e{i}" for i in range(8)]
    view = trace_view("1", (0, 42, 43))
    first, second = balancer.candidates(names, view)
    assert first != second
    assert balancer.candidates(list(reversed(names)), view) == (first, second)


def test_dualmap_picks_less_loaded_candidate_and_switches_past_slo() -> None:
    balancer = dualmap()
    names = [f"e{i}" for i in range(8)]
    view = trace_view("1", (0, 42, 43))
    first, second = balancer.candidates(names, view)
    states = [EndpointState(name=n, pool="p",
                            pending_prefill_tokens=20_000 if n == first else 0) for n in names]
    assert balancer.pick(states, view).name == second
    hot = [EndpointState(name=n, pool="p",
                         pending_prefill_tokens=90_000 if n in (first, second) else 0)
           for n in names]
    assert balancer.pick(hot, view).name not in (first, second)


def test_dualmap_migration_moves_each_request_at_most_once() -> None:
    balancer = dualmap()
    names = [f"e{i}" for i in range(4)]
    views = [trace_view(str(i), (0, 1000 + i, 2000 + i)) for i in range(40)]
    queues: dict[str, list[QueuedRequest]] = {n: [] for n in names}
    for view in views:
        home, _ = balancer.candidates(names, view)
        queues[home].append(QueuedRequest(view.request_id, view))
    moved_ids: list[str] = []
    for _ in range(5):  # repeated calls with the queues unchanged and maximally hot
        states = [EndpointState(name=n, pool="p", pending_prefill_tokens=50_000 * len(queues[n]))
                  for n in names]
        moves = balancer.rebalance(states, queues)
        moved_ids.extend(m.request_id for m in moves)
        for move in moves:
            request = next(q for q in queues[move.source] if q.request_id == move.request_id)
            queues[move.source].remove(request)
            queues[move.target].append(request)
            assert move.target in balancer.candidates(names, request.view)
    assert moved_ids, "hot queues should trigger migration"
    assert len(moved_ids) == len(set(moved_ids))


def test_new_balancers_are_registered_and_build_from_config() -> None:
    for type_name in ("consistent_hash", "prefix_affinity", "dualmap", "session_affinity",
                      "least_pending_tokens"):
        model, _ = BALANCERS[type_name]
        assert build_balancer(model(type=type_name)).name == type_name


def test_trace_block_token_ends_cover_the_prompt() -> None:
    view = RequestView(request_id="1", model="m", prefix_blocks=(0, 1, 2), prompt_tokens=1100)
    assert blocks_and_token_ends(view) == ((0, 1, 2), (512, 1024, 1100))


def test_shared_system_prompt_alone_does_not_attract_new_conversations() -> None:
    balancer = PrefixAffinityBalancer(PrefixAffinityBalancerConfig(type="prefix_affinity"))
    system = ChatMessage("system", "be brief")
    homes = set()
    for i in range(4):
        view = RequestView(request_id=str(i), model="m", messages=(
            system, ChatMessage("user", f"question number {i}: " + "z" * 400)))
        homes.add(balancer.pick(endpoints(4), view).name)
    assert len(homes) == 4


def test_dualmap_without_prefix_information_is_pure_load_aware() -> None:
    balancer = dualmap()
    states = [EndpointState(name=f"e{i}", pool="p", pending_prefill_tokens=1000 * (4 - i))
              for i in range(4)]
    blind = RequestView(request_id="1", model="m", prompt_tokens=800)
    assert all(balancer.pick(states, blind).name == "e3" for _ in range(5))


@pytest.mark.parametrize(("signal", "expected"), [("tokens", "e1"), ("requests", "e0")])
def test_prefix_affinity_queue_signal(signal: str, expected: str) -> None:
    config = PrefixAffinityBalancerConfig(type="prefix_affinity", queue_signal=signal)  # type: ignore[arg-type]
    states = [EndpointState(name="e0", pool="p", in_flight=1, pending_prefill_tokens=9000),
              EndpointState(name="e1", pool="p", in_flight=3, pending_prefill_tokens=10)]
    assert PrefixAffinityBalancer(config).pick(states, trace_view("1", (5, 6))).name == expected


def test_dualmap_migrates_prefixless_requests_to_the_least_loaded_endpoint() -> None:
    balancer = dualmap()
    queue = [QueuedRequest(str(i), RequestView(request_id=str(i), model="m", prompt_tokens=4000),
                           waited_s=3.0) for i in range(3)]
    states = [EndpointState(name="hot", pool="p", pending_prefill_tokens=60_000),
              EndpointState(name="busy", pool="p", pending_prefill_tokens=30_000),
              EndpointState(name="idle", pool="p", pending_prefill_tokens=0)]
    moves = balancer.rebalance(states, {"hot": queue})
    assert moves and moves[0].target == "idle"
    assert {m.source for m in moves} == {"hot"}


def test_dualmap_spreads_ties_instead_of_taking_the_first_idle_endpoint() -> None:
    balancer = dualmap()
    idle = [EndpointState(name=f"e{i}", pool="p") for i in range(4)]
    picks = [balancer.pick(idle, RequestView(request_id=str(i), model="m", prompt_tokens=800)).name
             for i in range(8)]
    assert sorted(set(picks)) == ["e0", "e1", "e2", "e3"]
    # a tie on the estimate goes to the endpoint with fewer requests in flight
    states = [EndpointState(name=f"e{i}", pool="p", in_flight=0 if i == 2 else 3)
              for i in range(4)]
    blind = RequestView(request_id="x", model="m", prompt_tokens=800)
    assert balancer.pick(states, blind).name == "e2"
