"""Issue 5, faults at every step: any one write failing, as a 500 or a cut connection, at
any point of a run with every kind of move (500, connection cut before the node acts, or
cut after it acted so the answer is lost), leaves nothing lost; the next run converges to
exactly the state a fault-free run reaches.
"""
from __future__ import annotations

from service import orchestrator

from orchestration import writes
from scenarios import NEXT, build, end_state, holds_every_original, latest_originals


def test_a_fault_at_any_write_loses_nothing_and_the_next_run_converges(nodes, capsys):
    sc = build(nodes)
    start = sc.save()
    sc.restore(start)   # also clears the request logs: count this run's writes only
    expected = latest_originals(sc.master)
    config = sc.config(NEXT)

    # The fault-free run: the target state, and how many writes each node gets.
    clean = orchestrator.run(config)
    assert clean.outcome == "ok", clean.as_json()
    target = end_state(sc)
    writes_per_node = {nid: len(writes(node.requests())) for nid, node in sc.nodes.items()}
    assert writes_per_node["master"] > 0 and writes_per_node["s1"] > 0 and writes_per_node["s2"] > 0
    # The scenario does move, clean and move back (else this test proves little).
    kinds = {(a["kind"], a["node"]) for a in clean.actions}
    assert {("reset-pipe", "master"), ("delete-dataset", "s1"), ("delete-system", "s1"),
            ("create-pipe", "s2")} <= kinds

    violations: list[str] = []

    def check(method: str, path: str, status: int) -> None:
        violations.extend(holds_every_original(sc.master, expected))

    for node in sc.nodes.values():
        node.add_observer(check)

    cases = 0
    for nid, count in writes_per_node.items():
        for k in range(count):
            for fault in ({"status": 500}, {"drop": True}, {"drop_after": True}):
                sc.restore(start)
                sc.nodes[nid].add_fault(method="*", path="^/api/", writes_only=True, skip=k,
                                        times=1, **fault)
                first = orchestrator.run(config)
                assert first.outcome in ("ok", "failed"), first.as_json()
                hit = [r for r in sc.nodes[nid].requests() if r["status"] in (0, 500)]
                assert hit, f"the fault on {nid} never fired"
                for node in sc.nodes.values():
                    node.emulator("DELETE", "/faults")
                again = orchestrator.run(config)
                case = f"write {k + 1} of {count} on {nid} failing with {fault}"
                assert again.outcome == "ok", (case, again.as_json())
                assert end_state(sc) == target, case
                assert not violations, (case, violations[:3])
                cases += 1
    assert cases == 3 * sum(writes_per_node.values())
    with capsys.disabled():
        print(f"\n  fault cases run: {cases} ({writes_per_node} writes per node, x3 kinds: 500, cut before, cut after the write landed)")
