"""The benchmark's scenarios, on emulator nodes started in this process.

Each scenario returns a plain dict of figures (what `bench/results.json` holds). The
orchestrator is the real one (`service.orchestrator.run`); its plan is computed once more
beforehand, with the nodes' latency switched off, to derive the critical-path bound.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from emulator import EmulatorNode
from service import orchestrator
from service.core.actions import Plan
from service.nodes.client import SesamClient
from service.config import Config, load_config
from service.core.planner import plan as make_plan
from service.nodes.reading import read_node

from .bound import critical_path

JWT_SECRET = "benchmark-secret-for-emulated-sesam-nodes-0123456789"
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
ROOT = Path(__file__).resolve().parent.parent


# --- building the nodes' contents -------------------------------------------------------

def system_id(i: int) -> str:
    return f"crm-{i:04d}"


def dtl_transform(pipe_id: str) -> dict:
    """A DTL transform of 20 rules (~1.2 KB of JSON), its names and values specific to the
    pipe, as a real inbound pipe's would be: no two pipes share a rule list."""
    ns = pipe_id.replace("-", "_")
    rules: list = [["copy", ["list", "_id", "_updated", "_deleted"]],
                   ["add", "rdf:type", ["ni", f"{ns}:Entity"]]]
    for n in range(9):
        rules.append(["add", f"field{n}", ["lower", f"_S.attr{n}"]])
        rules.append(["if", ["is-not-null", f"_S.ref{n}"],
                      ["add", f"ref{n}", ["ni", f"{ns}{n}", f"_S.ref{n}"]]])
    return {"type": "dtl", "rules": {"default": rules}}


def master_content(systems: int, pipes_per_system: int, local_pipes: int, *,
                   realistic: bool = False) -> dict:
    """`systems` systems, each read by `pipes_per_system` inbound pipes (json source into a
    dataset: they become synchronising pipes), and `local_pipes` pipes that read one of
    those datasets and stay in the master. `realistic`: each inbound pipe also has a
    20-rule DTL transform (the minimal shape has none)."""
    sys_cfgs = [{"_id": system_id(i), "type": "system:url",
                 "url_pattern": f"https://crm{i}.example.com/api/%s",
                 "authentication": "jwt", "jwt_token": "$SECRET(crm-token)"}
                for i in range(systems)]
    pipes = [{"_id": f"{system_id(i)}-entity-{j:02d}", "type": "pipe",
              "source": {"type": "json", "system": system_id(i), "url": f"entity{j}",
                         "supports_since": True},
              "sink": {"type": "dataset", "dataset": f"{system_id(i)}-entity-{j:02d}"}}
             for i in range(systems) for j in range(pipes_per_system)]
    if realistic:
        for pipe in pipes:
            pipe["transform"] = dtl_transform(pipe["_id"])
    local = [{"_id": f"local-{k:04d}", "type": "pipe",
              "source": {"type": "dataset", "dataset": pipes[k % len(pipes)]["_id"]},
              "transform": {"type": "dtl", "rules": {"default": [["copy", "*"]]}}}
             for k in range(local_pipes)]
    return {"systems": sys_cfgs, "pipes": pipes + local,
            "env": {"region": "eu-north", "tenant": "bench"}, "secrets": {"crm-token": "x"}}


TOKEN_LIFETIME = 365 * 86_400   # far from expiry: no "expires soon" warnings


def token(node: EmulatorNode) -> str:
    """One token per node for the whole benchmark: a token is part of the generated
    `system:url` configs, so a fresh one per run would rewrite them every run."""
    cached = getattr(node, "_bench_token", None)
    if cached is None:
        cached = node.token(admin=True, expires_in=TOKEN_LIFETIME)
        node._bench_token = cached
    return cached


def environ(master: EmulatorNode, slaves: Mapping[str, tuple[EmulatorNode, Sequence[str]]],
            concurrency: int) -> dict[str, str]:
    """What Sesam would pass the service: MASTER_NODE and SLAVE_NODES as JSON."""
    m = {"_id": "master", "endpoint": master.url, "jwt_token": token(master)}
    s = [{"_id": sid, "endpoint": node.url, "jwt_token": token(node),
          "managed_systems": list(managed)} for sid, (node, managed) in slaves.items()]
    return {"MASTER_NODE": json.dumps(m), "SLAVE_NODES": json.dumps(s),
            "PER_NODE_CONCURRENCY": str(concurrency), "LOG_LEVEL": "WARNING"}


@contextmanager
def started(count: int, latency_ms: int) -> Iterator[list[EmulatorNode]]:
    nodes: list[EmulatorNode] = []
    try:
        for _ in range(count):
            nodes.append(EmulatorNode(jwt_secret=JWT_SECRET, latency_ms=latency_ms).start())
        yield nodes
    finally:
        for node in nodes:
            node.stop()


# --- measuring -----------------------------------------------------------------------

def plan_now(config: Config) -> Plan:
    """The plan a run would make right now (read every node, plan; no writes)."""
    clients = {n.id: SesamClient(node_id=n.id, api_url=n.api_url,
                                 token=n.jwt_token.get_secret_value())
               for n in config.nodes}
    master = read_node(clients[config.master.id], config.master.id)
    slaves = {s.id: read_node(clients[s.id], s.id) for s in config.slaves}
    return make_plan(config, master, slaves, now=datetime.now(timezone.utc))


def request_counts(nodes: Mapping[str, EmulatorNode]) -> dict[str, dict[str, int]]:
    """{node: {method: count}} from the emulators' request logs; the re-reads before
    overwrites (GET .../config) are counted apart, as "GET config"."""
    out: dict[str, dict[str, int]] = {}
    for nid, node in nodes.items():
        out[nid] = dict(sorted(Counter(
            "GET config" if r["method"] == "GET" and r["path"].endswith("/config")
            else r["method"] for r in node.requests()).items()))
    return out


def clear_logs(nodes: Mapping[str, EmulatorNode]) -> None:
    for node in nodes.values():
        node.emulator("DELETE", "/requests")


def run_orchestrator(config_env: Mapping[str, str], *, plan_first: bool = False,
                     in_process: bool = False) -> dict:
    """One timed `orchestrator.run`; by default in a child process (see bench/child.py)."""
    if in_process:
        config = load_config(config_env)
        t0 = time.perf_counter()
        report = orchestrator.run(config)
        wall = time.perf_counter() - t0
        return {"wall_ms": round(wall * 1000, 1), "outcome": report.outcome,
                "errors": list(report.errors)[:5],
                "done": sum(1 for a in report.actions if a["status"] == "done"),
                "not_done": sum(1 for a in report.actions if a["status"] != "done")}
    env = {**os.environ, **config_env, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "bench.child"] + (["--plan-first"] if plan_first else [])
    child = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=1800)
    if child.returncode != 0 or not child.stdout.strip():
        raise RuntimeError(f"bench.child failed ({child.returncode}):\n{child.stderr[-3000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def measured_run(config_env: Mapping[str, str], nodes: Mapping[str, EmulatorNode],
                 latency_ms: int, *, in_process: bool = False) -> dict:
    """Plan (without latency) for the bound, then one timed run with latency."""
    config = load_config(config_env)
    for node in nodes.values():
        node.latency_ms = 0
    the_plan = plan_now(config)
    b = critical_path(the_plan.actions, [n.id for n in config.nodes],
                      concurrency=config.per_node_concurrency, latency_ms=latency_ms)
    for node in nodes.values():
        node.latency_ms = latency_ms
    clear_logs(nodes)
    figures = run_orchestrator(config_env, in_process=in_process)
    for node in nodes.values():
        node.latency_ms = 0
    requests = request_counts(nodes)
    return {
        **figures,
        "latency_ms": latency_ms,
        "concurrency": config.per_node_concurrency,
        "bound": b.as_json(),
        "actions": dict(sorted(Counter(a.kind for a in the_plan.actions).items())),
        "requests": requests,
        "reads": {n: r.get("GET", 0) for n, r in requests.items()},
        "rereads": {n: r.get("GET config", 0) for n, r in requests.items()},
        "writes": {n: sum(v for m, v in r.items() if m in WRITES) for n, r in requests.items()},
    }


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# --- the scenarios ---------------------------------------------------------------------

SLAVES = 4
SYSTEMS_PER_SLAVE = 10
PIPES_PER_SYSTEM = 10
LOCAL_PIPES = 100


STEADY_SAMPLES = 20


def latency_scenarios(*, latency_ms: int = 20, concurrency: int = 8, repeat: int = 3,
                      steady_samples: int = STEADY_SAMPLES,
                      slaves: int = SLAVES, systems_per_slave: int = SYSTEMS_PER_SLAVE,
                      pipes_per_system: int = PIPES_PER_SYSTEM, local_pipes: int = LOCAL_PIPES,
                      in_process: bool = False) -> dict[str, dict]:
    """`initial`, `steady` and `move`, one after the other on the same nodes; the sequence is
    repeated `repeat` times from the same seeded state, and wall times are the median.
    `steady` is measured `steady_samples` times at each latency (the sequence's runs, then
    more steady runs after the last move).

    With a latency, each repetition also runs the sequence at 0 ms first: `wall_ms_0` is
    then the CPU part (the orchestrator's, the emulators', process start), and
    `latency_part_ms` = wall(latency) - wall(0) what the latency cost, which is what the
    critical-path bound predicts."""
    systems = slaves * systems_per_slave
    latencies = (0, latency_ms) if latency_ms else (0,)
    with started(1 + slaves, 0) as started_nodes:
        master, *slave_nodes = started_nodes
        master.seed(**master_content(systems, pipes_per_system, local_pipes))
        for s in slave_nodes:
            s.seed(secrets={"crm-token": "x"})
        nodes = {"master": master, **{f"slave{k + 1}": n for k, n in enumerate(slave_nodes)}}
        seeded = {nid: node.save_state() for nid, node in nodes.items()}
        runs: dict[tuple[str, int], list[dict]] = defaultdict(list)
        for _, lat in ((r, lat) for r in range(max(1, repeat)) for lat in latencies):
            for nid, node in nodes.items():
                node.restore_state(seeded[nid])
            managed = {f"slave{k + 1}": [system_id(k * systems_per_slave + i)
                                         for i in range(systems_per_slave)]
                       for k in range(slaves)}

            def env() -> dict[str, str]:
                return environ(master, {sid: (nodes[sid], managed[sid]) for sid in managed},
                               concurrency)

            runs["initial", lat].append(measured_run(env(), nodes, lat, in_process=in_process))
            runs["steady", lat].append(measured_run(env(), nodes, lat, in_process=in_process))
            # Move one system (and its pipes) from the first slave to the second.
            moved = managed["slave1"].pop(0)
            target = "slave2" if slaves > 1 else "slave1"
            managed[target].append(moved)
            move = measured_run(env(), nodes, lat, in_process=in_process)
            runs["move", lat].append({"moved": f"{moved}: slave1 -> {target}", **move})
        # More steady runs, from the steady state the last move left, the two latencies
        # taking turns to go first: its latency part (about 10 ms) hides in run-to-run noise
        # of +-60 ms, and the medians of 5 swung by 90 ms between two invocations.
        for k in range(max(0, steady_samples - max(1, repeat))):
            for lat in latencies if k % 2 else latencies[::-1]:
                runs["steady", lat].append(measured_run(env(), nodes, lat,
                                                        in_process=in_process))
        pipes = systems * pipes_per_system + local_pipes
        results: dict[str, dict] = {}
        for name in ("initial", "steady", "move"):
            measured, at_zero = runs[name, latency_ms], runs[name, 0]
            first = measured[0]
            walls = [m["wall_ms"] for m in measured]
            zero = round(median([m["wall_ms"] for m in at_zero]), 1)
            results[name] = {"scenario": name, **first, "wall_ms": round(median(walls), 1),
                             "wall_ms_runs": walls, "wall_ms_0": zero,
                             "wall_ms_0_runs": [m["wall_ms"] for m in at_zero],
                             "latency_part_ms": round(median(walls) - zero, 1),
                             "pipes": pipes, "cpu_ms_per_pipe": round(zero / pipes, 3),
                             "same_requests_every_run": all(m["requests"] == first["requests"]
                                                            for m in measured + at_zero)}
        return results


SCALE_SLAVES = 50
SCALE_SYSTEMS = 500
SCALE_PIPES = 10_000


def scale(*, slaves: int = SCALE_SLAVES, systems: int = SCALE_SYSTEMS,
          pipes: int = SCALE_PIPES, concurrency: int = 8, realistic: bool = True) -> dict:
    """A big master, no latency; the orchestrator runs in a child process (bench/child.py)
    that times the planner alone, then a full run, and reports its own peak memory (the
    core's; the served process's is the served-* scenarios')."""
    per_slave = systems // slaves
    with started(1 + slaves, 0) as started_nodes:
        master, *slave_nodes = started_nodes
        master.seed(**master_content(systems, pipes // systems, 0, realistic=realistic))
        for s in slave_nodes:
            s.seed(secrets={"crm-token": "x"})
        managed = {f"slave{k + 1:02d}": (n, [system_id(k * per_slave + i) for i in range(per_slave)])
                   for k, n in enumerate(slave_nodes)}
        nodes = {"master": master, **{sid: n for sid, (n, _) in managed.items()}}
        clear_logs(nodes)
        figures = run_orchestrator(environ(master, managed, concurrency), plan_first=True)
        requests = request_counts(nodes)
        total: Counter = Counter()
        for per_method in requests.values():
            total.update(per_method)
        return {"scenario": "scale", "slaves": slaves, "systems": systems, "pipes": pipes,
                "shape": "realistic (20-rule DTL)" if realistic else "minimal",
                "concurrency": concurrency, **figures,
                "requests_total": dict(sorted(total.items())),
                "requests_master": requests["master"]}
