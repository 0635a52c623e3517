"""`python -m demo`: orchestrate emulated nodes once, let the data flow, show before and after.

Exit 0 only when the run's outcome is `ok` and every synchronised master dataset (and the
outbound pipe's feeder copy in its slave) received entities. Every server is stopped before
the process ends. Tokens are never printed: the report holds none, and the demo prints ids,
counts and URLs only.
"""
from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from collections import Counter
from typing import Callable

from emulator import EmulatorNode

from . import scenario

YEAR = 365 * 86_400   # token lifetime: long enough that no "expires soon" warning shows


def _out(line: str = "") -> None:
    print(line, flush=True)


# --- reading a node -------------------------------------------------------------------------

def _components(node: EmulatorNode, kind: str) -> dict[str, dict]:
    """id -> the API object (config.original / config.effective), Sesam's own ids left out."""
    status, body = node.api("GET", f"/{kind}")
    if status != 200:
        raise RuntimeError(f"GET /{kind} answered {status}")
    return {c["_id"]: c for c in body if not c["_id"].startswith("system:")}


def _read(nodes: dict[str, EmulatorNode]) -> dict[str, dict[str, dict[str, dict]]]:
    """node id -> {"systems": {...}, "pipes": {...}}"""
    return {nid: {"systems": _components(n, "systems"), "pipes": _components(n, "pipes")}
            for nid, n in nodes.items()}


def _meta(component: dict) -> dict | None:
    meta = component["config"]["original"].get("metadata")
    return meta.get("orchestrator") if isinstance(meta, dict) else None


def _count(node: EmulatorNode, dataset: str) -> int:
    status, body = node.api("GET", f"/datasets/{EmulatorNode.quote(dataset)}/entities"
                                   "?history=false&deleted=false")
    return len(body) if status == 200 and isinstance(body, list) else 0


def _sink_dataset(pipe: dict) -> str | None:
    sink = pipe["config"]["effective"].get("sink", {})
    return sink.get("dataset") if sink.get("type") == "dataset" else None


# --- the parts of the view -----------------------------------------------------------------

def _master_role(kind: str, comp: dict | None, before: dict) -> str:
    if comp is None:
        return "GONE from the master"
    meta = _meta(comp)
    eff = comp["config"]["effective"]
    if meta is None:
        return "unchanged" if comp["config"]["original"] == before["config"]["original"] else "changed"
    if kind == "systems":
        return f"master keeps a {eff.get('type')} reading {meta.get('slave')}'s datasets"
    source = eff.get("source", {})
    if source.get("type") in ("json", "binary"):
        every = eff.get("pump", {}).get("schedule_interval")
        return (f"master: synchronising pipe -> dataset {_sink_dataset(comp)}"
                + (f", every {every} s" if every else ""))
    if eff.get("pump", {}).get("mode") == "off":
        return "master: disabled placeholder"
    return "master: generated"


def _placement(before: dict, after: dict, master: str, slaves: list[str]) -> list[str]:
    rows: list[tuple[str, str, str, str, str]] = []
    for kind in ("systems", "pipes"):
        label = kind[:-1]
        for cid, comp in sorted(before[master][kind].items()):
            holders = [s for s in slaves if cid in after[s][kind]]
            role = _master_role(kind, after[master][kind].get(cid), comp)
            rows.append((label, cid, master, ", ".join(holders) or master, role))
        for slave in slaves:
            for cid, comp in sorted(after[slave][kind].items()):
                if cid in before[master][kind]:
                    continue
                meta = _meta(comp) or {}
                if meta.get("feeder") and kind == "systems":
                    note = f"feeder: reads {master}'s datasets"
                elif meta.get("feeder"):
                    src = comp["config"]["effective"].get("source", {})
                    note = f"feeder: copies {master}'s dataset {src.get('url') or src.get('dataset')}"
                else:
                    note = "new"
                rows.append((label, cid, "-", slave, note))
    w_id = max(len(r[1]) for r in rows)
    w_where = max(len("after"), max(len(r[3]) for r in rows))
    lines = [f"  {'':6} {'id':{w_id}}  {'before':6}  {'after':{w_where}}  notes"]
    for label, cid, was, now, note in rows:
        lines.append(f"  {label:6} {cid:{w_id}}  {was:6}  {now:{w_where}}  {note}")
    return lines


def _actions(report: dict) -> list[str]:
    actions = report.get("actions", [])
    statuses = Counter(a.get("status") for a in actions)
    lines = [f"  {len(actions)} actions: " + (", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
                                            or "none")]
    by_kind: dict[str, Counter] = {}
    for a in actions:
        by_kind.setdefault(a["kind"], Counter())[a["node"]] += 1
    for kind in sorted(by_kind):
        nodes = by_kind[kind]
        per_node = ", ".join(f"{node} {n}" for node, n in sorted(nodes.items()))
        lines.append(f"    {kind:15} {sum(nodes.values()):3}  ({per_node})")
    for title in ("warnings", "errors"):
        items = report.get(title) or []
        lines.append(f"  {title}: {len(items) or 'none'}")
        lines.extend(f"    - {item}" for item in items)
    return lines


def _run_pipe(node: EmulatorNode, pid: str) -> tuple[bool, int, str | None]:
    # A node runs a started pipe in the background: wait for that run to end.
    try:
        pump = node.run_pipe(pid)
    except (RuntimeError, TimeoutError) as exc:
        return False, 0, str(exc)
    runtime = pump["runtime"]
    return bool(runtime.get("success")), runtime.get("progress", {}).get("processed", 0), \
        runtime.get("last-error")


# --- the demo -------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    # --help explains and exits before anything starts.
    argparse.ArgumentParser(
        prog="python -m demo", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n")[0].removeprefix("`python -m demo`: ").capitalize(),
        epilog="Takes no options. Exits 0 when the run is ok and the data reached the master; "
               "leaves nothing running.\nFor a service to try by hand: python -m sandbox "
               "(make sandbox).").parse_args(argv)
    master_id, slave_ids = scenario.MASTER_ID, list(scenario.SLAVES)
    nodes: dict[str, EmulatorNode] = {}
    onprem: scenario.OnPremise | None = None
    ports: list[int] = []
    try:
        for nid in (master_id, *slave_ids):
            # Each node signs with its own key, as separate Sesam subscriptions do.
            nodes[nid] = EmulatorNode(jwt_secret=secrets.token_hex(32)).start()
            ports.append(nodes[nid].port)
        onprem = scenario.OnPremise(scenario.ONPREM_DATA).start()
        ports.append(int(onprem.url.rsplit(":", 1)[1]))
        return _demo(nodes, onprem, master_id, slave_ids)
    finally:
        stopped = []
        for nid, node in nodes.items():
            node.stop()
            stopped.append(nid)
        if onprem is not None:
            onprem.stop()
            stopped.append("the on-premise stand-in")
        _out(f"Stopped {', '.join(stopped) or 'nothing'}; ports {', '.join(map(str, ports))} closed.")


def _demo(nodes: dict[str, EmulatorNode], onprem: scenario.OnPremise,
          master_id: str, slave_ids: list[str]) -> int:
    master = nodes[master_id]
    tokens = {nid: n.token(admin=True, expires_in=YEAR) for nid, n in nodes.items()}

    _out("Sesam orchestrator demo: a master, two slaves and an on-premise system, all on 127.0.0.1")
    _out(f"  {master_id}  master  {master.url}")
    for sid in slave_ids:
        _out(f"  {sid}  slave   {nodes[sid].url}  manages {', '.join(scenario.SLAVES[sid][0])}")
    _out(f"  on-premise stand-in   {onprem.url}  (in real life only the slaves can reach it)")

    # Secrets hold the real tokens under the README's jwt_secret_key names, on every node
    # ("the master and slave(s) must share the same secrets").
    shared = {scenario.MASTER_SECRET_KEY: tokens[master_id],
              **{key: tokens[sid] for sid, (_, key) in scenario.SLAVES.items()},
              "oracle-password": "not-a-real-password"}
    for node in nodes.values():
        node.seed(secrets=shared)
    master.seed(env=scenario.master_env(onprem.url), systems=scenario.master_systems(),
                pipes=scenario.master_pipes())
    before = _read(nodes)
    _out()
    _out(f"1. The master is loaded: {len(before[master_id]['systems'])} systems, "
         f"{len(before[master_id]['pipes'])} pipes, env {', '.join(scenario.ENV_NAMES)}, "
         f"secrets {', '.join(scenario.SECRET_NAMES)}; the slaves hold no components.")

    environ = {
        "MASTER_NODE": json.dumps({"_id": master_id, "endpoint": master.url,
                                   "jwt_token": tokens[master_id],
                                   "jwt_secret_key": scenario.MASTER_SECRET_KEY}),
        "SLAVE_NODES": json.dumps([
            {"_id": sid, "endpoint": nodes[sid].url, "jwt_token": tokens[sid],
             "managed_systems": systems, "jwt_secret_key": key,
             **({"sync_interval": 300, "sync_interval_stagger_range": 300} if sid == "s1" else {})}
            for sid, (systems, key) in scenario.SLAVES.items()]),
        "UPDATE_INTERVAL": "1800",
    }
    try:
        from service.config import load_config
        from service.orchestrator import run
    except ImportError as exc:
        _out(f"\nThe orchestrator core is missing ({exc}); nothing to demo.")
        return 1
    config = load_config(environ)

    t0 = time.monotonic()
    report = run(config).as_json()
    took = time.monotonic() - t0
    after = _read(nodes)
    _out()
    _out(f"2. One orchestrator run: outcome {report.get('outcome')} in {took:.2f} s")
    for line in _actions(report):
        _out(line)

    _out()
    _out("3. Where each component lives (read back from the nodes)")
    for line in _placement(before, after, master_id, slave_ids):
        _out(line)

    _out()
    _out("4. The data flows: slave pipes, the master's synchronising pipes, the feeders, "
         "and the outbound pipe")
    problems = _flow(nodes, after, master_id, slave_ids, onprem)

    # A second run with nothing changed must write nothing (counted from the request logs).
    for node in nodes.values():
        node.emulator("DELETE", "/requests")
    second = run(config).as_json()
    writes = sum(1 for n in nodes.values() for r in n.requests()
                 if r["method"] in ("POST", "PUT", "PATCH", "DELETE"))
    _out()
    _out(f"5. A second run (nothing changed): outcome {second.get('outcome')}, "
         f"{len(second.get('actions', []))} actions, {writes} writes on the nodes")

    if report.get("outcome") != "ok":
        problems.insert(0, f"the run's outcome is {report.get('outcome')}, not ok")
    _out()
    if problems:
        _out("RESULT: FAILED")
        for p in problems:
            _out(f"  - {p}")
        return 1
    _out("RESULT: ok, every synchronised master dataset received the slaves' entities")
    return 0


def _flow(nodes: dict[str, EmulatorNode], after: dict, master_id: str, slave_ids: list[str],
          onprem: scenario.OnPremise) -> list[str]:
    """Run the pipes in data order, print what each moved; the problems found."""
    problems: list[str] = []
    w = max(len(pid) for nid in nodes for pid in after[nid]["pipes"])

    def step(nid: str, pid: str, what: Callable[[str, int], str]) -> int:
        pipe = after[nid]["pipes"][pid]
        ok, processed, error = _run_pipe(nodes[nid], pid)
        dataset = _sink_dataset(pipe)
        count = _count(nodes[nid], dataset) if dataset else 0
        if ok:
            _out(f"  {nid}  {pid:{w}}  {what(dataset or '?', count)}")
        else:
            _out(f"  {nid}  {pid:{w}}  FAILED: {error}")
            problems.append(f"{nid} pipe {pid} failed: {error}")
        return count

    slave_pipes = {sid: after[sid]["pipes"] for sid in slave_ids}
    # 4a. In each slave, the copies of the inbound pipes read the on-premise systems.
    for sid in slave_ids:
        for pid, pipe in sorted(slave_pipes[sid].items()):
            if _meta(pipe) is None and _sink_dataset(pipe):
                step(sid, pid, lambda d, n: f"{n} entities in {sid}'s dataset {d} (from on-premise)")
    # 4b. The master's synchronising pipes read the slaves' datasets.
    synced: dict[str, int] = {}
    for pid, pipe in sorted(after[master_id]["pipes"].items()):
        meta = _meta(pipe)
        source = pipe["config"]["effective"].get("source", {})
        if meta is not None and source.get("type") in ("json", "binary"):
            slave = meta.get("slave")
            synced[_sink_dataset(pipe) or pid] = step(
                master_id, pid, lambda d, n: f"{n} entities in master dataset {d} (synchronised from {slave})")
    # 4c. Master pipes the orchestrator left alone read the synchronised datasets as before.
    for pid, pipe in sorted(after[master_id]["pipes"].items()):
        if _meta(pipe) is None and _sink_dataset(pipe):
            step(master_id, pid, lambda d, n: f"{n} entities in master dataset {d} (a pipe that stays in the master)")
    # 4d. Feeders copy master datasets to the slave of an outbound pipe.
    fed: dict[str, int] = {}
    for sid in slave_ids:
        for pid, pipe in sorted(slave_pipes[sid].items()):
            if (_meta(pipe) or {}).get("feeder"):
                fed[f"{sid}/{_sink_dataset(pipe)}"] = step(
                    sid, pid, lambda d, n: f"{n} entities in {sid}'s copy of the master dataset {d} (feeder)")
    # 4e. Outbound pipes, in the slave that can reach their system, push the fed copy there.
    pushed: dict[str, int] = {}
    for sid in slave_ids:
        for pid, pipe in sorted(slave_pipes[sid].items()):
            if _meta(pipe) is None and not _sink_dataset(pipe):
                sink = pipe["config"]["effective"].get("sink", {})
                ok, processed, error = _run_pipe(nodes[sid], pid)
                if ok:
                    pushed[f"{sid}/{pid}"] = processed
                    _out(f"  {sid}  {pid:{w}}  {processed} entities pushed to {sink.get('system')} "
                         "(on-premise) from the slave")
                else:
                    _out(f"  {sid}  {pid:{w}}  FAILED: {error}")
                    problems.append(f"{sid} pipe {pid} failed: {error}")
    received = ", ".join(f"{path} x{n}" for path, n in sorted(onprem.received.items())) or "nothing"
    _out(f"  on-premise stand-in received: {received}")
    if not pushed or not any(pushed.values()):
        problems.append("no outbound pipe pushed entities to the on-premise system")
    served = ", ".join(f"{path} x{n}" for path, n in sorted(onprem.served.items())) or "nothing"
    _out(f"  on-premise stand-in served: {served}")

    expected = {_sink_dataset_of(p) for p in scenario.master_pipes()
                if p["source"].get("type") == "json"}
    for dataset in sorted(expected - set(synced)):
        problems.append(f"no synchronising pipe in the master writes dataset {dataset}")
    for dataset, n in sorted(synced.items()):
        if n == 0:
            problems.append(f"master dataset {dataset} received no entities")
    if not fed:
        problems.append("no feeder for the outbound pipe in any slave")
    for where, n in sorted(fed.items()):
        if n == 0:
            problems.append(f"the feeder's dataset {where} received no entities")
    return problems


def _sink_dataset_of(original: dict) -> str:
    sink = original.get("sink") or {}
    return sink.get("dataset") or original["_id"]


if __name__ == "__main__":
    sys.exit(main())
