"""Issue 5, property-based: random masters, random placements, random changes of placement.

After every reconciliation: the plan is empty, another run writes nothing, no original is
lost, and every slave holds exactly what the contract says (computed here by a small
independent oracle, not by the service's own placement code).
"""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator import EmulatorNode
from service import orchestrator

from orchestration import as_copy, config_for, originals, writes
from scenarios import latest_originals

SECRET = "property-test-jwt-secret-0123456789-abcdefgh"
SYSTEMS = ["crm", "erp", "o d%d", "q'x"]            # odd ids round-trip too
PIPE_IDS = ["p0", "p1", "p 2", "p%3", 'p"4', "p|5", "p6", "p7"]
SLAVES = ("s1", "s2")


@st.composite
def masters(draw):
    systems = draw(st.lists(st.sampled_from(SYSTEMS), min_size=1, unique=True))
    pipe_ids = draw(st.lists(st.sampled_from(PIPE_IDS), min_size=1, max_size=6, unique=True))
    pipes = []
    for pid in pipe_ids:
        source = draw(st.one_of(
            st.builds(lambda s: {"type": "json", "system": s, "url": "things"},
                      st.sampled_from(systems)),
            st.builds(lambda d: {"type": "dataset", "dataset": d}, st.sampled_from(["d1", "d2"])),
            st.just({"type": "embedded", "entities": [{"_id": "e"}]})))
        sink = draw(st.one_of(
            st.none(),                                        # default: dataset named after pipe
            st.builds(lambda d: {"type": "dataset", "dataset": d},
                      st.sampled_from(["out-a", "out-b", "other name"])),
            st.builds(lambda s: {"type": "json", "system": s, "url": "x"},
                      st.sampled_from(systems))))
        pipe = {"_id": pid, "type": "pipe", "source": source}
        if sink is not None:
            pipe["sink"] = sink
        pipes.append(pipe)
    env = draw(st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(0, 3), max_size=3))
    secrets = draw(st.lists(st.sampled_from(["k1", "k2"]), unique=True))
    placements = draw(st.lists(
        st.fixed_dictionaries({s: st.sampled_from((None,) + SLAVES) for s in systems}),
        min_size=1, max_size=3))
    return systems, pipes, env, secrets, placements


def _refused(pipe, placement) -> set:
    """The managed systems of a pipe that cannot be placed (empty when it can)."""
    source, sink = pipe["source"], pipe.get("sink") or {"type": "dataset"}
    used = {s for s in (source.get("system"), sink.get("system")) if placement.get(s)}
    if not used:
        return set()
    one_slave = len({placement[s] for s in used}) == 1
    reads = bool(placement.get(source.get("system"))) or source["type"] == "dataset"
    writes_ = sink["type"] == "dataset" or bool(placement.get(sink.get("system")))
    return set() if one_slave and reads and writes_ else used


def _expected(pipes, placement):
    """The contract's placement rules (section 2 and 3), written out independently."""
    placement = dict(placement)
    while True:   # a system an unplaceable pipe uses stays in the master (issue 12.2)
        kept = set().union(*(_refused(p, placement) for p in pipes))
        if not kept:
            break
        placement.update({s: None for s in kept})
    on: dict[str, dict[str, set]] = {s: {"systems": set(), "pipes": set()} for s in SLAVES}
    for system, slave in placement.items():
        if slave:
            on[slave]["systems"].add(system)
    for pipe in pipes:
        source, sink = pipe["source"], pipe.get("sink") or {"type": "dataset"}
        src_slave = placement.get(source.get("system"))
        sink_slave = placement.get(sink.get("system"))
        if src_slave:
            on[src_slave]["pipes"].add(pipe["_id"])
        elif sink_slave:
            on[sink_slave]["pipes"].add(pipe["_id"])
            on[sink_slave]["systems"].add("orchestrator-master")
            on[sink_slave]["pipes"].add("orchestrator-feed-" + source["dataset"])
    return on


def test_random_masters_and_placement_changes_converge():
    nodes = {nid: EmulatorNode(jwt_secret=SECRET).start() for nid in ("master",) + SLAVES}
    empty = {nid: n.save_state() for nid, n in nodes.items()}
    master = nodes["master"]
    try:
        @settings(max_examples=200, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(masters())
        def check(example):
            systems, pipes, env, secrets, placements = example
            for nid, n in nodes.items():
                n.restore_state(empty[nid])
            master.seed(systems=[{"_id": s, "type": "system:url", "base_url": "http://x/"}
                                 for s in systems],
                        pipes=pipes, env=env or None,
                        secrets={k: "v" for k in secrets} or None)
            first = latest_originals(master)
            for placement in placements:
                config = config_for(master, {s: (nodes[s], [k for k, v in placement.items()
                                                            if v == s]) for s in SLAVES})
                report = orchestrator.run(config)
                assert report.outcome in ("ok", "failed"), report.as_json()
                assert all(a["status"] == "done" for a in report.actions), report.as_json()
                for n in nodes.values():
                    n.emulator("DELETE", "/requests")
                again = orchestrator.run(config)
                assert again.actions == []          # the plan is empty
                assert not [w for n in nodes.values() for w in writes(n.requests())]
                assert latest_originals(master) == first
                want = _expected(pipes, placement)
                for slave in SLAVES:
                    held_systems = originals(nodes[slave], "systems")
                    held_pipes = originals(nodes[slave], "pipes")
                    assert set(held_systems) == want[slave]["systems"], slave
                    assert set(held_pipes) == want[slave]["pipes"], slave
                    for pid in held_pipes.keys() & {p["_id"] for p in pipes}:
                        assert held_pipes[pid] == as_copy(first["pipes", pid])
                    for sid in held_systems.keys() & set(systems):
                        assert held_systems[sid] == as_copy(first["systems", sid])
                    assert {k: v for k, v in nodes[slave].store.env.items() if k in env} == env
        check()
    finally:
        for n in nodes.values():
            n.stop()
