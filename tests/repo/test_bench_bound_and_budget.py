"""The benchmark's own arithmetic: the critical-path bound, request counting, the budget.

No timing is asserted here (the budget is checked by `make bench`, not by tests): only that
the bound is computed as its docstring says and that a tiny scenario's measured request
counts agree with the bound's.
"""
from __future__ import annotations

import pytest

from bench import scenarios
from bench.bound import critical_path, levels, requests_of
from bench.budget import check
from service.core.actions import Action


def tiny_plan(gate: tuple[int, ...] = tuple(range(4, 14))) -> list[Action]:
    """slave s: 1 system, then 3 pipes (bulk); master m: 10 PUTs after them; s: 1 delete
    after the master PUTs in `gate` (all of them by default), a dataset delete after that."""
    a = [Action("create-system", "s", "sys")]
    a += [Action("create-pipe", "s", f"p{i}", after=(0,)) for i in range(3)]          # 1..3
    a += [Action("update-pipe", "m", f"p{i % 3}-{i}", after=(1 + i % 3,)) for i in range(10)]  # 4..13
    a += [Action("delete-pipe", "s", "old", after=gate)]                              # 14
    a += [Action("delete-dataset", "s", "old", after=(14,))]                           # 15
    return a


def test_levels_earliest_round_and_rounds_after():
    est, tail = levels(tiny_plan())
    assert est[0] == 0 and est[1:4] == [1, 1, 1] and est[4:14] == [2] * 10
    assert est[14] == 3 and est[15] == 4
    assert tail[0] == 4           # pipes, a master PUT, the delete, the dataset delete
    assert tail[13] == 2 and tail[4] == 2 and tail[15] == 0
    assert levels(tiny_plan(gate=(13,)))[1][4] == 0


def test_bulk_creates_ready_together_are_one_request():
    reqs = requests_of(tiny_plan())
    creates = [r for r in reqs if r.kind.startswith("create")]
    assert sorted((r.kind, len(r.members)) for r in creates) == [("create-pipe", 3),
                                                                   ("create-system", 1)]
    assert len(reqs) == 2 + 10 + 2
    # More than 100 ready together: ceil(n / 100) requests.
    many = [Action("create-pipe", "s", f"p{i}") for i in range(250)]
    assert [len(r.members) for r in requests_of(many)] == [100, 100, 50]


def test_bound_counts_rounds_and_per_node_concurrency():
    plan = tiny_plan()
    # Concurrency 8: reads 1 round; master's 10 PUTs start in round 2 and need 2 rounds,
    # and the last one is followed by 2 more (delete pipe, delete dataset): 2 + 2 + 2 = 6.
    b = critical_path(plan, ["m", "s"], concurrency=8, latency_ms=20)
    assert b.dependent_rounds == 5
    assert b.read_rounds == 1
    assert b.rounds == 1 + 6
    assert b.bound_ms == 140
    assert b.requests == {"m": 10, "s": 4}
    # Concurrency 2: reads take 2 rounds; master 2 + ceil(10/2) + 2 = 9.
    b2 = critical_path(plan, ["m", "s"], concurrency=2, latency_ms=10)
    assert (b2.read_rounds, b2.rounds, b2.bound_ms) == (2, 2 + 9, 110)
    # Unlimited concurrency: the dependent rounds alone.
    b3 = critical_path(plan, ["m", "s"], concurrency=64, latency_ms=1)
    assert b3.rounds == 1 + 5
    assert critical_path([], ["m"], concurrency=8, latency_ms=20).bound_ms == 20
    # Only one PUT gates the deletes: the other 9 can share its rounds with them,
    # so the dependent rounds (5) set the bound, not 2 + 2 + 2.
    assert critical_path(tiny_plan(gate=(13,)), ["m", "s"], concurrency=8,
                         latency_ms=20).rounds == 1 + 5


def test_bound_counts_concurrency_inside_chains_behind_a_barrier():
    """16 master PUTs (2 rounds at 8 in flight); then, on slave s, 10 dataset deletes
    waiting for all of them, each pipe delete after its dataset, the system after every
    pipe. Best schedule: m, m | 8 ds | 2 ds + 6 pipes | 4 pipes | system = 6 rounds.
    Chains alone give 4, per-node load on the plain levels 5; step 5 finds the 6."""
    a = [Action("update-pipe", "m", f"p{i}") for i in range(16)]
    barrier = tuple(range(16))
    a += [Action("delete-dataset", "s", f"d{i}", after=barrier) for i in range(10)]   # 16..25
    a += [Action("delete-pipe", "s", f"p{i}", after=(16 + i,)) for i in range(10)]    # 26..35
    a += [Action("delete-system", "s", "sys", after=tuple(range(26, 36)))]
    b = critical_path(a, ["m", "s"], concurrency=8, latency_ms=10)
    assert b.dependent_rounds == 4
    assert b.rounds == 1 + 6 and b.bound_ms == 70
    assert "stretched" in b.limiting


def test_bound_refuses_a_forward_dependency():
    with pytest.raises(ValueError, match="action 0 depends on 1, which does not come before it"):
        levels([Action("update-pipe", "m", "a", after=(1,)), Action("update-pipe", "m", "b")])


def test_budget_names_the_figure_that_misses():
    bound = {"bound_ms": 20.0}
    steady = {"outcome": "ok", "latency_ms": 20, "wall_ms": 170.0, "wall_ms_0": 140.0,
              "latency_part_ms": 30.0, "bound": bound,
              "reads": {"master": 5, "s": 4}, "writes": {"master": 0, "s": 1}}
    misses = check("steady", steady)
    assert any("5 reads on master" in m for m in misses)
    assert any("1 writes on s" in m for m in misses)
    assert any("latency part 30.0 ms" in m and "= 25.0 ms" in m for m in misses)
    # Only the latency part counts: a slow CPU (wall(0) = 900 ms) is not a miss.
    ok = {"outcome": "ok", "wall_ms": 1024.0, "wall_ms_0": 900.0, "latency_part_ms": 124.0,
          "bound": {"bound_ms": 100.0}}
    assert check("move", ok) == []
    assert check("initial", {**ok, "latency_part_ms": 125.1})
    assert check("scale", {"outcome": "ok", "plan_ms": 1999}) == []
    assert len(check("scale", {"outcome": "failed", "plan_ms": 2000})) == 2
    assert check("cold", {"outcome": "ok", "wall_ms": 500.0}) == []
    assert check("cold", {"outcome": "ok", "wall_ms": 500.1}) == ["cold --plan 500.1 ms > 500 ms"]


def test_served_budget_by_size():
    run = {"outcome": "ok", "plans": [{"status": 200, "outcome": "ok", "wall_ms": 1.0}]}
    r = {"outcome": "ok", "pipes": 3000, "peak_rss_mb": 80.0, "first": run,
         "steady": {**run, "writes": 0}}
    assert check("served-3000", r) == []
    assert check("served-3000", {**r, "peak_rss_mb": 80.1}) == ["peak RSS 80.1 MB > 80 MB"]
    assert check("served-10000", {**r, "pipes": 10_000, "peak_rss_mb": 99.0}) == []
    busy = {**run, "plans": [{"status": 409, "outcome": None, "wall_ms": 1.0}]}
    assert any("GET /plan during the first run" in m
               for m in check("served-3000", {**r, "first": busy}))
    assert check("served-3000", {**r, "steady": {**run, "writes": 2}}) == [
        "2 writes in the steady run > 0"]


def test_tiny_scenarios_end_to_end_requests_match_the_bound():
    results = scenarios.latency_scenarios(latency_ms=0, repeat=1, slaves=2,
                                          systems_per_slave=2, pipes_per_system=2,
                                          local_pipes=2, in_process=True, steady_samples=3)
    initial, steady, move = results["initial"], results["steady"], results["move"]
    # steady is sampled more: its few ms of latency hide in the noise of a few runs
    assert len(steady["wall_ms_runs"]) == 3 and len(initial["wall_ms_runs"]) == 1
    assert steady["same_requests_every_run"]
    for r in (initial, steady, move):
        assert r["outcome"] == "ok", r["errors"]
        # A reset and a quiesce read the pump's state from their own answer: no extra GET
        # when no run is in flight.
        assert r["reads"] == {"master": 4, "slave1": 4, "slave2": 4}
    # initial: per slave env + 2 systems (1 bulk) + 4 pipes (1 bulk); master 2 + 4 PUTs.
    assert initial["actions"] == {"create-pipe": 8, "create-system": 4, "set-env": 2,
                                  "update-pipe": 8, "update-system": 4}
    assert initial["writes"] == {"master": 12, "slave1": 3, "slave2": 3}
    assert initial["writes"] == {n: initial["bound"]["write_requests"].get(n, 0)
                                 for n in initial["writes"]}
    # slave system, slave pipes, master system (re-read, PUT), master pipes (re-read, PUT):
    # a master pipe waits for its system's write there, and each overwrite re-reads first.
    assert initial["bound"]["dependent_rounds"] == 5
    # one re-read per master overwrite, as the bound counts them; none in steady state
    assert initial["rereads"] == {"master": 12, "slave1": 0, "slave2": 0}
    assert initial["rereads"]["master"] == initial["bound"]["rereads"]["master"]
    assert steady["rereads"] == {"master": 0, "slave1": 0, "slave2": 0}
    assert steady["actions"] == {} and steady["writes"] == {"master": 0, "slave1": 0, "slave2": 0}
    assert steady["bound"]["rounds"] == 1
    # move: one system and its 2 pipes from slave1 to slave2 (crash-safe: PUT, reset, PUT).
    assert move["moved"].startswith("crm-0000: slave1 -> slave2")
    assert move["writes"] == {n: move["bound"]["write_requests"].get(n, 0)
                              for n in move["writes"]}
    assert move["actions"]["reset-pipe"] == 2
    assert move["requests"]["slave2"] == {"GET": 4, "POST": 2}
    # At least: slave2 system, its pipes, master PUT, reset, PUT, then slave1's deletes
    # (pipe and dataset); the planner may order the deletes further.
    assert move["bound"]["dependent_rounds"] >= 7
