"""Issue 5, property-based: random masters, random placements, random changes of placement.

After every reconciliation: the plan is empty, another run writes nothing, no original is
lost, and every slave holds exactly what the contract says (computed here by a small
independent oracle, not by the service's own placement code).
"""
from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from emulator import EmulatorNode
from service import orchestrator

from pipe_strategies import draw_pipes
from orchestration import as_copy, config_for, originals, writes
from scenarios import latest_originals

SECRET = "property-test-jwt-secret-0123456789-abcdefgh"
SYSTEMS = ["crm", "erp", "o d%d", "q'x"]            # odd ids round-trip too
PIPE_IDS = ["p0", "p1", "p 2", "p%3", 'p"4', "p|5", "p6", "p7"]
SLAVES = ("s1", "s2")


_SYSTEM_SETS = st.lists(st.sampled_from(SYSTEMS), min_size=1, unique=True)
_PIPE_IDS = st.lists(st.sampled_from(PIPE_IDS), min_size=1, max_size=6, unique=True)
_ENV = st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(0, 3), max_size=3)
_SECRETS = st.lists(st.sampled_from(["k1", "k2"]), unique=True)


@functools.cache
def _placements(systems: tuple[str, ...]) -> st.SearchStrategy:
    return st.lists(st.fixed_dictionaries({s: st.sampled_from((None,) + SLAVES)
                                           for s in systems}), min_size=1, max_size=3)


@st.composite
def masters(draw):
    systems = draw(_SYSTEM_SETS)
    # "out-a" is read and written: an outbound pipe may read what a slave's own pipe writes
    # (no feeder then).
    pipes = draw_pipes(draw, _PIPE_IDS, systems, ("d1", "d2", "out-a"),
                       ("out-a", "out-b", "other name"))
    env = draw(_ENV)
    secrets = draw(_SECRETS)
    return systems, pipes, env, secrets, draw(_placements(tuple(systems)))


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


def _placed(pipes, placement) -> dict:
    """The placement once every system an unplaceable pipe uses stays in the master."""
    placement = dict(placement)
    while True:   # a system an unplaceable pipe uses stays in the master (issue 12.2)
        kept = set().union(*(_refused(p, placement) for p in pipes))
        if not kept:
            return placement
        placement.update({s: None for s in kept})


def _pipe_slave(pipe, placement) -> tuple[str | None, str]:
    """Where a pipe runs and its shape in the master: (slave, 'sync' | 'placeholder'), or
    (None, 'user') when it stays in the master as the user wrote it."""
    source, sink = pipe["source"], pipe.get("sink") or {"type": "dataset"}
    src_slave = placement.get(source.get("system"))
    sink_slave = placement.get(sink.get("system"))
    if src_slave:
        return src_slave, "sync" if sink["type"] == "dataset" else "placeholder"
    if sink_slave:
        return sink_slave, "placeholder"
    return None, "user"


def _expected(pipes, placement):
    """The contract's placement rules (section 2 and 3), written out independently."""
    placement = _placed(pipes, placement)
    on: dict[str, dict[str, set]] = {s: {"systems": set(), "pipes": set()} for s in SLAVES}
    for system, slave in placement.items():
        if slave:
            on[slave]["systems"].add(system)
    writes_here: dict[str, set] = {s: set() for s in SLAVES}
    feeds: dict[str, set] = {s: set() for s in SLAVES}
    for pipe in pipes:
        slave, shape = _pipe_slave(pipe, placement)
        if slave is None:
            continue
        on[slave]["pipes"].add(pipe["_id"])
        if shape == "sync":
            writes_here[slave].add((pipe.get("sink") or {}).get("dataset", pipe["_id"]))
        if pipe["source"]["type"] == "dataset":
            feeds[slave].add(pipe["source"]["dataset"])
    for slave in SLAVES:
        # A dataset the slave's own pipe writes needs no feeder from the master.
        need = feeds[slave] - writes_here[slave]
        if need:
            on[slave]["systems"].add("orchestrator-master")
            on[slave]["pipes"] |= {"orchestrator-feed-" + d for d in need}
    return on


def _check_master(master: EmulatorNode, first: dict, pipes, placement, urls) -> None:
    """The master's components: the user's own where nothing moved; where something did, a
    generated one pointing at the right slave and keeping the user's original."""
    placement = _placed(pipes, placement)
    held = {"systems": originals(master, "systems"), "pipes": originals(master, "pipes")}
    for (kind, cid), original in first.items():
        config = held[kind][cid]
        slave = placement.get(cid) if kind == "systems" else \
            _pipe_slave(next(p for p in pipes if p["_id"] == cid), placement)[0]
        if slave is None:
            assert config == original, (kind, cid, config)
            continue
        meta = config["metadata"]["orchestrator"]
        assert (meta["slave"], meta["original_configuration"]) == (slave, original), (kind, cid)
        if kind == "systems":
            assert config["type"] == "system:url", config
            assert config["url_pattern"].startswith(urls[slave] + "/api/datasets/"), config
            continue
        pipe = next(p for p in pipes if p["_id"] == cid)
        if _pipe_slave(pipe, placement)[1] == "sync":
            dataset = (pipe.get("sink") or {}).get("dataset", cid)
            assert config["source"]["system"] == pipe["source"]["system"], config
            assert config["sink"] == {"type": "dataset", "dataset": dataset}, config
        else:
            assert config["pump"]["mode"] == "off", config


@pytest.mark.long
def test_random_masters_and_placement_changes_converge():
    nodes = {nid: EmulatorNode(jwt_secret=SECRET).start() for nid in ("master",) + SLAVES}
    master = nodes["master"]
    try:
        @settings(max_examples=200, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(masters())
        # An outbound pipe reading what the slave's own pipe writes: no feeder; then back.
        @example((["crm"], [
            {"_id": "p0", "type": "pipe", "source": {"type": "json", "system": "crm", "url": "t"},
             "sink": {"type": "dataset", "dataset": "out-a"}},
            {"_id": "p1", "type": "pipe", "source": {"type": "dataset", "dataset": "out-a"},
             "sink": {"type": "json", "system": "crm", "url": "x"}}],
            {}, [], [{"crm": "s1"}, {"crm": "s2"}, {"crm": None}]))
        def check(example):
            systems, pipes, env, secrets, placements = example
            for n in nodes.values():
                n.reset()   # as if started afresh (faults, request log, knobs too)
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
                    n.clear_requests()
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
                _check_master(master, first, pipes, placement,
                              {s: nodes[s].url for s in SLAVES})
        check()
    finally:
        for n in nodes.values():
            n.stop()
