"""What keeps the service inside its container's memory (issue 17).

- Concurrent GET /plan callers share one plan (single flight): one set of reads, one
  plan's memory, whatever the number of callers; and a plan asked for during a run waits
  for the run to end (one run at a time per process).
- Every answer is capped after decompression (MAX_ANSWER_MB): a listing larger than the
  cap, or a small gzip bomb, stops with one line naming the node, and the run changes nothing.
- A listing is read entry by entry into what the planner needs: the DTL rules of a pipe as
  compact text that still compares (and is written back) like the rules themselves.
"""
from __future__ import annotations

import gzip
import json
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from service.nodes.client import SesamClient, SesamError
from service.config import ConfigError, load_config
from service.core.opaque import Opaque, freeze, thaw
from service.report import Report
from service.web.runner import Runner
from service.core.references import Roles
from service.core.snapshots import Component, NodeSnapshot, Uses, component_of, uses_of
from service.nodes.stream import iter_array
from stand_in_run import make_config


# --- single flight ---------------------------------------------------------------------

class HeldPlan:
    """A stand-in run whose dry runs wait for `release`; counts how many were made."""

    def __init__(self) -> None:
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, config: Any, *, dry_run: bool = False, progress: Any = None) -> Report:
        self.calls += 1
        self.entered.set()
        assert self.release.wait(10), "test never released the plan"
        return Report(started="2024-01-01T00:00:00+00:00", outcome="ok", dry_run=dry_run,
                      actions=[{"kind": "create-pipe", "node": "s1", "id": f"p{self.calls}",
                                "status": "planned"}])


def _wait_for(check, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_concurrent_plan_callers_share_one_plan() -> None:
    fake = HeldPlan()
    runner = Runner(config=make_config(), run=fake)
    with ThreadPoolExecutor(max_workers=8) as pool:
        first = pool.submit(runner.plan)
        assert fake.entered.wait(5)
        others = [pool.submit(runner.plan) for _ in range(7)]
        _wait_for(lambda: runner._flight is not None and runner._flight.waiting == 7,
                  "7 callers waiting on the plan in flight")
        fake.release.set()
        reports = [first.result(10)] + [f.result(10) for f in others]
    assert fake.calls == 1
    assert all(r is reports[0] for r in reports)
    assert reports[0].actions[0]["id"] == "p1"


def test_a_caller_sharing_a_plan_gets_its_flows_however_late_it_writes_its_answer() -> None:
    """A GET /plan that joins a plan the schedule asked for (the leader wants the report,
    not an answer) writes its answer from the shared report after the leader is done with
    it: the leader keeps what it shows of the flows without taking them from that report
    (found in review: a late answer had no flows)."""
    from service.core.flows import Flow

    class HeldPlanWithFlows(HeldPlan):
        def __call__(self, config: Any, *, dry_run: bool = False, progress: Any = None
                     ) -> Report:
            report = super().__call__(config, dry_run=dry_run, progress=progress)
            report.plan_id, report.flows = "0" * 16, [Flow("p", "s1", "sync", ())]
            return report
    fake = HeldPlanWithFlows()
    runner = Runner(config=make_config(), run=fake)
    leader_done = threading.Event()

    def late_answer(report: Report) -> Any:
        assert leader_done.wait(10)
        return report.as_json(flow_objects=True).get("flows")
    with ThreadPoolExecutor(max_workers=2) as pool:
        leader = pool.submit(runner.plan)
        assert fake.entered.wait(5)
        follower = pool.submit(runner.plan_as, late_answer)
        _wait_for(lambda: runner._flight is not None and runner._flight.waiting == 1,
                  "a caller waiting on the plan in flight")
        fake.release.set()
        leader.result(10)
        leader_done.set()
        answered = follower.result(10)
    assert [f.pipe for f in answered] == ["p"] and fake.calls == 1
    assert [f["pipe"] for f in runner.flows()] == ["p"]       # and the Runner kept them


def test_a_plan_asked_for_after_one_finished_is_a_new_plan() -> None:
    fake = HeldPlan()
    fake.release.set()
    runner = Runner(config=make_config(), run=fake)
    assert runner.plan().actions[0]["id"] == "p1"
    assert runner.plan().actions[0]["id"] == "p2"
    assert fake.calls == 2 and runner._flight is None


def test_a_dry_run_asked_for_during_a_run_starts_after_the_run_has_ended(nodes) -> None:
    """One run at a time per process, from first read to report: a dry run (GET /plan)
    arriving while a real run executes waits, instead of holding its snapshots beside the
    plan being executed."""
    from service import orchestrator
    from orchestration import environ
    master, slave = nodes(), nodes()
    master.seed(systems=[{"_id": "crm", "type": "system:url", "base_url": "http://crm.invalid/"}],
                pipes=[{"_id": "crm-person", "type": "pipe",
                        "source": {"type": "json", "system": "crm", "url": "person"}}])
    config = load_config(environ(master, {"s1": (slave, ["crm"])}))
    dry: dict[str, Report] = {}
    asked = threading.Event()

    def plan_now() -> None:
        asked.set()
        dry["report"] = orchestrator.run(config, dry_run=True)

    def progress(done: int, total: int, action: dict[str, Any]) -> None:
        if done == 1:       # the real run is executing: ask for a plan, give it time to start
            threading.Thread(target=plan_now, daemon=True).start()
            assert asked.wait(5)
            time.sleep(0.3)
            assert "report" not in dry

    real = orchestrator.run(config, progress=progress)
    _wait_for(lambda: "report" in dry, "the dry run")
    assert real.outcome == "ok" and real.actions, real.errors
    assert dry["report"].started >= real.finished
    assert dry["report"].outcome == "ok" and dry["report"].actions == []


def test_a_dry_run_lets_the_snapshots_go_before_it_lists_every_nodes_datasets(
        nodes, monkeypatch) -> None:
    """A dry run lists every node's datasets to report leftovers (leftovers.py): 20,000 ids
    at 10,000 pipes. What a leftover is, it reads off the snapshots first, and lists the
    datasets once they are gone, instead of holding both at once."""
    import gc
    import weakref

    from service import orchestrator
    from orchestration import environ
    master, slave = nodes(), nodes()
    master.seed(systems=[{"_id": "crm", "type": "system:url", "base_url": "http://crm.invalid/"}],
                pipes=[{"_id": "crm-person", "type": "pipe",
                        "source": {"type": "json", "system": "crm", "url": "person"}}])
    config = load_config(environ(master, {"s1": (slave, ["crm"])}))
    assert orchestrator.run(config).outcome == "ok"
    read = orchestrator.read_node
    made: list[weakref.ref[NodeSnapshot]] = []

    def read_node(*args: Any, **kwargs: Any) -> NodeSnapshot:
        snapshot = read(*args, **kwargs)
        made.append(weakref.ref(snapshot))
        return snapshot
    held: list[int] = []
    listed = SesamClient.list_dataset_ids

    def list_ids(self: SesamClient) -> list[str]:
        gc.collect()
        held.append(sum(ref() is not None for ref in made))
        return listed(self)
    monkeypatch.setattr(orchestrator, "read_node", read_node)
    monkeypatch.setattr(SesamClient, "list_dataset_ids", list_ids)
    report = orchestrator.run(config, dry_run=True)
    assert report.outcome == "ok", report.errors
    assert len(made) == 2 and held == [0, 0]


def test_a_run_reads_at_most_read_at_once_nodes_at_a_time_the_master_first(
        nodes, monkeypatch) -> None:
    """Each node read holds its four listings in flight: with 32 nodes at once a 10,000-pipe
    master's steady run over 50 slaves peaked ~5 MB higher (`make bench`). The master, the
    long read, goes first, so the slaves' reads overlap it."""
    from service import orchestrator
    from orchestration import environ
    master, slaves = nodes(), [nodes() for _ in range(orchestrator.READ_AT_ONCE + 2)]
    master.seed(systems=[{"_id": f"sys{i}", "type": "system:url", "base_url": "http://x.invalid/"}
                         for i in range(len(slaves))],
                pipes=[{"_id": "p", "type": "pipe", "source": {"type": "embedded", "entities": []}}])
    config = load_config(environ(master, {f"s{i}": (n, [f"sys{i}"])
                                          for i, n in enumerate(slaves)}))
    read, lock = orchestrator.read_node, threading.Lock()
    order: list[str] = []
    active = [0, 0]      # now, most
    all_started = threading.Event()

    def read_node(client: SesamClient, node_id: str, **kwargs: Any) -> NodeSnapshot:
        with lock:
            order.append(node_id)
            active[0] += 1
            active[1] = max(active)
            if active[0] == orchestrator.READ_AT_ONCE:
                all_started.set()
        try:
            # The first reads wait until as many as are allowed at once have started: the
            # most seen at once is then the limit, whatever the machine's speed.
            all_started.wait(5)
            return read(client, node_id, **kwargs)
        finally:
            with lock:
                active[0] -= 1
    monkeypatch.setattr(orchestrator, "read_node", read_node)
    report = orchestrator.run(config, dry_run=True)
    assert report.outcome == "ok", report.errors
    assert order[0] == config.master.id and len(order) == len(slaves) + 1
    assert active[1] == orchestrator.READ_AT_ONCE


def test_a_runs_snapshots_share_one_object_per_string_and_let_the_table_go_once_read(
        nodes, monkeypatch) -> None:
    """Listings repeat short strings thousands of times (ids, types, system names) on every
    node: one object each, shared by all the snapshots of a run. The table that shares them
    is the run's, emptied once the nodes are read: interned (sys.intern), they were in the
    process's table, which stayed at its largest for good (1.8 MB at 10,000 pipes)."""
    from service import orchestrator
    from orchestration import environ
    master, slave = nodes(), nodes()
    master.seed(systems=[{"_id": "crm", "type": "system:url", "base_url": "http://crm.invalid/"}],
                pipes=[{"_id": "crm-person", "type": "pipe",
                        "source": {"type": "json", "system": "crm", "url": "person"}}])
    config = load_config(environ(master, {"s1": (slave, ["crm"])}))
    assert orchestrator.run(config).outcome == "ok"       # the slave holds the copy now
    tables: list[dict[str, str]] = []
    client, make_plan = orchestrator._client, orchestrator.make_plan

    def made(config: Any, node: Any, strings: dict[str, str]) -> SesamClient:
        tables.append(strings)
        return client(config, node, strings)
    seen: dict[str, Any] = {}

    def planned(config: Any, master: NodeSnapshot, slaves: Any, *, now: Any) -> Any:
        seen["left"] = [len(t) for t in tables]
        seen["ids"] = [next(k for k in snap.pipes if k == "crm-person")
                       for snap in (master, slaves["s1"])]
        return make_plan(config, master, slaves, now=now)
    monkeypatch.setattr(orchestrator, "_client", made)
    monkeypatch.setattr(orchestrator, "make_plan", planned)
    assert orchestrator.run(config, dry_run=True).outcome == "ok"
    assert len(tables) == 2 and tables[0] is tables[1] and seen["left"] == [0, 0]
    in_master, in_slave = seen["ids"]
    assert in_master is in_slave


# --- the answer-size cap -----------------------------------------------------------------

class _Answers(BaseHTTPRequestHandler):
    """A fake node: GET answers with what the test put in `server.bodies[path]`."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body, headers = self.server.bodies.get(self.path.split("?")[0], (b"[]", {}))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_node() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    server.bodies = {}
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _client(server: ThreadingHTTPServer, **kw: Any) -> SesamClient:
    return SesamClient(node_id="m1", api_url=f"http://127.0.0.1:{server.server_port}/api",
                       token="t", retries=0, **kw)


def _bomb(mb: int) -> bytes:
    """A gzip body of a JSON array that decompresses to `mb` MB (about 1,000 times its size)."""
    raw = b"[" + b" " * (mb * 2**20) + b"]"
    return gzip.compress(raw, compresslevel=9)


def test_a_gzip_bomb_stops_at_the_cap_with_one_line_naming_the_node(fake_node) -> None:
    bomb = _bomb(64)
    assert len(bomb) < 2**20 // 4          # a small answer on the wire ...
    fake_node.bodies["/api/pipes"] = (bomb, {"Content-Encoding": "gzip"})
    client = _client(fake_node, max_answer_mb=8)
    with pytest.raises(SesamError, match=r"^m1 GET /pipes: answer larger than 8 MB "
                                         r"\(MAX_ANSWER_MB\); not read$"):
        client.list_pipes()


def test_an_answer_within_the_cap_is_read_even_gzipped(fake_node) -> None:
    items = [{"_id": f"p{i}", "config": {"original": {"_id": f"p{i}"}}} for i in range(2000)]
    fake_node.bodies["/api/pipes"] = (gzip.compress(json.dumps(items).encode()),
                                      {"Content-Encoding": "gzip"})
    fake_node.bodies["/api/env"] = (b'{"a": 1}', {})
    client = _client(fake_node, max_answer_mb=1)
    assert [p["_id"] for p in client.list_pipes()] == [f"p{i}" for i in range(2000)]
    assert client.get_env() == {"a": 1}


def test_any_answer_is_capped_not_only_listings(fake_node) -> None:
    fake_node.bodies["/api/env"] = (b'{"a": "' + b"x" * (2 * 2**20) + b'"}', {})
    client = _client(fake_node, max_answer_mb=1)
    with pytest.raises(SesamError, match=r"^m1 GET /env: answer larger than 1 MB"):
        client.get_env()


def test_max_answer_mb_is_configurable_and_checked() -> None:
    base = {"MASTER_NODE": json.dumps({"_id": "m", "endpoint": "http://127.0.0.1:9",
                                       "jwt_token": "x"}),
            "SLAVE_NODES": json.dumps([{"_id": "s", "endpoint": "http://127.0.0.1:10",
                                        "jwt_token": "y", "managed_systems": []}])}
    assert load_config(base).max_answer_mb == 256
    assert load_config({**base, "MAX_ANSWER_MB": "32"}).max_answer_mb == 32
    with pytest.raises(ConfigError, match=r"^MAX_ANSWER_MB: "):
        load_config({**base, "MAX_ANSWER_MB": "0"})


def test_a_master_listing_over_the_cap_aborts_the_run_and_changes_nothing(nodes) -> None:
    from service import orchestrator
    from orchestration import clear_logs, environ, writes
    master, slave = nodes(), nodes()
    master.seed(systems=[{"_id": "crm", "type": "system:url", "base_url": "http://crm.invalid/"}],
                pipes=[{"_id": "crm-person", "type": "pipe", "description": "x" * (2 * 2**20),
                        "source": {"type": "json", "system": "crm", "url": "person"}}])
    env = environ(master, {"s1": (slave, ["crm"])}, MAX_ANSWER_MB="1")
    clear_logs(master, slave)
    report = orchestrator.run(load_config(env))
    assert report.outcome == "aborted"
    assert any("master GET /pipes: answer larger than 1 MB (MAX_ANSWER_MB); not read" in e
               for e in report.errors), report.errors
    assert writes(master.requests()) == [] and writes(slave.requests()) == []


# --- what a listing entry leaves behind ------------------------------------------------------

RULES = {"default": [["copy", "*"], ["add", "x", ["lower", "_S.y"]]], "b": [["copy", "_id"]]}


def test_dtl_rules_are_kept_as_text_that_compares_and_writes_like_the_rules() -> None:
    """A plain DTL transform ({type, rules}: nearly all of them) is deflated whole; one with
    more keys keeps its dict and its rules are deflated. Either compares, thaws and digests
    like the transform it stands for."""
    from service.core.opaque import DtlTransform, digest
    pipe = {"_id": "p", "type": "pipe", "transform": {"type": "dtl", "rules": json.loads(
        json.dumps(RULES))}, "metadata": {"orchestrator": {"original_configuration": {
            "_id": "p", "transform": [{"type": "dtl", "rules": {"default": []}, "name": "n"},
                                      {"type": "dtl", "rules": RULES}]}}}}
    frozen = freeze(json.loads(json.dumps(pipe)))
    assert isinstance(frozen["transform"], DtlTransform)
    named, plain = frozen["metadata"]["orchestrator"]["original_configuration"]["transform"]
    assert isinstance(named["rules"], Opaque) and isinstance(plain, DtlTransform)
    assert frozen == pipe and pipe == frozen
    reordered = {"b": RULES["b"], "default": RULES["default"]}
    assert frozen["transform"] == {"rules": reordered, "type": "dtl"}
    assert frozen["transform"] != {"type": "dtl", "rules": {"default": [["copy", "*"]]}}
    assert frozen["transform"] != json.dumps(pipe["transform"])     # a string is not it
    assert frozen["transform"].rules_text() == json.dumps(RULES, sort_keys=True,
                                                          separators=(",", ":"))
    assert thaw(frozen) == pipe and not isinstance(thaw(frozen)["transform"]["rules"], str)
    assert json.loads(json.dumps(thaw(frozen))) == pipe
    assert digest(frozen) == digest(pipe)        # a slave's copy, read as it is, digests alike


def test_a_write_splices_rules_in_and_leaves_placeholder_shaped_strings_alone() -> None:
    """dumps() marks where each Opaque goes with a random 16-hex tag; a user string of the
    same shape (another tag, or even a placeholder of an earlier write) is written as it is,
    and writing does not compile a pattern per call (re's cache stays as it was)."""
    from service.core.opaque import dumps
    lookalike = "0123456789abcdef:0"
    pipe = freeze({"_id": "p", "description": lookalike, "comment": [lookalike, "x:1"],
                   "transform": {"type": "dtl", "rules": json.loads(json.dumps(RULES))}})
    re.purge()
    for _ in range(50):
        written = json.loads(dumps(pipe))
    assert written == thaw(pipe)
    assert written["description"] == lookalike and written["comment"] == [lookalike, "x:1"]
    assert written["transform"]["rules"] == RULES
    assert len(re._cache) <= 1    # type: ignore[attr-defined]


def test_of_an_effective_config_a_component_keeps_what_the_planner_reads_only() -> None:
    """Its roles, the systems it names (a conditional's alternative in force only) and its
    pump's interval, worked out as the entry is read: not the config itself."""
    effective = {"_id": "p", "type": "pipe",
                 "source": {"type": "conditional", "condition": "a",
                            "alternatives": {"a": {"type": "json", "system": "s1", "url": "u"},
                                             "b": {"type": "json", "system": "s3"}}},
                 "transform": [{"type": "dtl", "rules": RULES},
                               {"type": "rest", "system": "s2", "operations": {"x": {}}}],
                 "sink": {"type": "dataset", "dataset": "d"}, "pump": {"schedule_interval": 5},
                 "metadata": {"orchestrator": {"original_configuration": {"_id": "p"}}}}
    comp = component_of({"_id": "p", "config": {"original": {"_id": "p", "type": "pipe"},
                                                "effective": effective}})
    assert (comp.roles, comp.systems, comp.interval) == (
        Roles(source_type="json", source_system="s1", source_dataset=None,
              sink_type="dataset", sink_system=None, sink_dataset="d"),
        frozenset({"s1", "s2"}), 5)
    assert not hasattr(comp, "effective") and not hasattr(comp, "__dict__")
    # Held field by field in the component, not as a Uses apiece.
    assert not any(isinstance(getattr(comp, f), Uses) for f in comp.__slots__)
    # No effective config: Sesam's defaults read from the original; an interval that is not
    # a positive whole number is none.
    bare = component_of({"_id": "q", "config": {"original": {
        "_id": "q", "type": "pipe", "pump": {"schedule_interval": True}}}})
    assert Uses(bare.roles, bare.systems, bare.interval) == Uses(
        roles=Roles(source_type="embedded", source_system=None, source_dataset=None,
                    sink_type="dataset", sink_system=None, sink_dataset="q"),
        systems=frozenset(), interval=None)


def test_a_listing_is_parsed_entry_by_entry_across_chunk_boundaries() -> None:
    items = [{"_id": f"p{i}", "é": "€" * i, "n": [i, 1.5, None, True]} for i in range(40)]
    text = json.dumps(items, ensure_ascii=False, indent=2).encode()
    for size in (1, 3, 4096):
        chunks = (text[i:i + size] for i in range(0, len(text), size))
        assert list(iter_array(chunks)) == items
    with pytest.raises(ValueError, match="not valid JSON"):
        list(iter_array([b"[1, 2"]))


def test_a_slave_copy_kept_by_digest_compares_like_the_config() -> None:
    from service.core.opaque import Digest, dumps
    copy = {"_id": "p", "type": "pipe", "transform": {"type": "dtl", "rules": RULES},
            "metadata": {"orchestrator": {"feeder": True, "master": "http://m"}}}
    kept = Digest(json.loads(json.dumps(copy)))
    assert kept == copy and copy == kept and not (kept != copy)
    assert kept == freeze(json.loads(json.dumps(copy)))        # rules as text or as lists
    assert kept != {**copy, "type": "other"} and {**copy, "type": "other"} != kept
    assert kept.get("metadata") == {"orchestrator": {"feeder": True, "master": "http://m"}}
    assert "transform" not in kept                               # the rest is not held
    assert dict(kept) == {"metadata": copy["metadata"]} and len(kept) == 1
    assert json.loads(dumps([freeze(json.loads(json.dumps(copy)))])) == [copy]
    # Not a dict: a dict's own table, to hold that one key, was ~0.2 KB a copy (10,000s).
    assert not isinstance(kept, dict) and sys.getsizeof(kept) < 80
    bare = Digest({"_id": "p", "type": "pipe"})
    assert dict(bare) == {} and bare.get("metadata") is None and bare == {"type": "pipe", "_id": "p"}
    with pytest.raises(TypeError):
        json.dumps(kept)                      # never written: it is no config


def test_the_benchmark_runs_the_service_with_the_images_memory_settings() -> None:
    from bench.served import IMAGE_ENV
    from dockerfile import dockerfile
    env = " ".join(args for instruction, args in dockerfile() if instruction == "ENV")
    for name, value in IMAGE_ENV.items():
        assert f"{name}={value}" in env.split(), (name, env)
    # Bytecode built into the image: a cold start does not compile the service.
    assert ("RUN", "python -m compileall -q service/") in dockerfile()


def test_one_huge_listing_entry_stops_the_read_before_it_fills_memory(fake_node) -> None:
    huge = b'[{"_id": "p", "description": "' + b"x" * (40 * 2**20) + b'"}]'
    fake_node.bodies["/api/pipes"] = (gzip.compress(huge), {"Content-Encoding": "gzip"})
    client = _client(fake_node)        # the answer's own cap (256 MB) is not reached
    with pytest.raises(SesamError, match=r"^m1 GET /pipes: an entry larger than 16 MB; "
                                         r"not read$"):
        client.list_pipes()


# --- what a plan holds per pipe ---------------------------------------------------------------

def test_a_plan_remembers_equal_answers_about_different_configs_once() -> None:
    """The original, the slave copy, the generated pipe and the effective config of one pipe
    all name the same system: one frozenset (~200 bytes) and one Roles for them all while a
    plan is made, not one per config object."""
    from service.core.references import remembering, roles, systems_used
    configs = [{"_id": "p", "source": {"type": "json", "system": "crm", "url": "u"},
                "sink": {"type": "dataset", "dataset": "d"}, "n": n} for n in range(3)]
    with remembering():
        used = [systems_used(c, {}) for c in configs]
        found = [roles("p", c, {}) for c in configs]
        assert used[0] == frozenset({"crm"}) and found[0].sink_dataset == "d"
        assert all(u is used[0] for u in used) and all(r is found[0] for r in found)
        # Each config still has its own answer.
        other = {"_id": "q", "source": {"type": "json", "system": "erp"}}
        assert systems_used(other, {}) == frozenset({"erp"})
        assert roles("q", other, {}).sink_dataset == "q"


def test_slave_copies_without_metadata_of_their_own_share_one_mark() -> None:
    from service.core.ownership import GROUP_KEY, with_mark
    plain = [with_mark({"_id": f"p{n}", "type": "pipe"}, "orchestrator-m") for n in range(3)]
    assert all(c["metadata"] == {GROUP_KEY: "orchestrator-m"} for c in plain)
    assert all(c["metadata"] is plain[0]["metadata"] for c in plain)
    own = {"_id": "q", "metadata": {"owner": "ann", GROUP_KEY: "mine"}}
    marked = with_mark(own, "orchestrator-m")
    assert marked["metadata"] == {"owner": "ann", GROUP_KEY: "orchestrator-m"}
    assert own["metadata"] == {"owner": "ann", GROUP_KEY: "mine"}      # the user's untouched
    assert with_mark({"_id": "r", "metadata": {}}, "orchestrator-m")["metadata"] \
        == {GROUP_KEY: "orchestrator-m"}


def test_a_pipe_placement_and_a_component_have_no_per_object_dict() -> None:
    from service.core.placement import PipePlacement
    from service.core.snapshots import Component
    placed = PipePlacement(id="p", original={}, slave="s1", shape="sync")
    assert not hasattr(placed, "__dict__")
    assert not hasattr(Component.using("p", {}, uses_of("p", {})), "__dict__")


def test_a_big_answer_reaches_the_server_in_pieces_and_the_body_is_closed() -> None:
    """Cheroot copies what it is handed into a buffer per connection (and again per socket
    write): a 1.2 MB plan sent to 4 callers at once held ~10 MB. The served app hands it
    over at most PIECE bytes at a time, the same bytes and headers."""
    from service.web.server import PIECE, in_pieces
    big = bytes(range(256)) * (5 * PIECE // 256 + 7)
    closed: list[bool] = []
    started: list[tuple[str, list[tuple[str, str]]]] = []

    class Body(list):
        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Any) -> Body:
        start_response("200 OK", [("Content-Length", str(len(big) + 2))])
        return Body([b"{", big, b"}"])

    pieces = list(in_pieces(app)({}, lambda status, headers: started.append((status, headers))))
    assert started == [("200 OK", [("Content-Length", str(len(big) + 2))])]
    assert b"".join(pieces) == b"{" + big + b"}" and all(type(p) is bytes for p in pieces)
    assert max(map(len, pieces)) <= PIECE and len(pieces) > 5 and closed == [True]


def test_the_served_app_answers_through_the_pieces(monkeypatch) -> None:
    import cherrypy
    from service.web import server

    class Grafted(Exception):
        pass

    def graft(app: Any, path: str) -> None:
        raise Grafted(app)        # stops serve() before it configures or starts anything

    monkeypatch.setattr(cherrypy.tree, "graft", graft)
    monkeypatch.setattr(server, "_configure_logging", lambda level, fmt: None)
    monkeypatch.setattr(server, "_check_port_free", lambda port: None)
    with pytest.raises(Grafted) as grafted:
        server.serve(make_config(), run=HeldPlan())
    assert grafted.value.args[0].__qualname__ == "in_pieces.<locals>.wrapped"


def test_dtl_rules_are_kept_deflated_and_still_found_by_what_reads_their_text() -> None:
    """20 rules are ~1.2 KB of JSON text (1.4 KB as a str object); kept deflated, ~0.3 KB:
    3 MB less for a 3,000-pipe master whose sync pipes carry the user's rules. The text is
    still what $SECRET(..) lookups and $ENV(..) checks read, and what a write splices in."""
    import sys
    from bench.scenarios import dtl_transform
    from service.core.opaque import canonical, dumps
    from service.core.references import secrets_used
    rules = dtl_transform("crm-0001-entity-03")["rules"]
    rules["default"].append(["add", "key", "$SECRET(crm-key)"])
    kept = freeze({"_id": "p", "transform": {"type": "dtl", "name": "n", "rules": json.loads(
        json.dumps(rules))}})["transform"]["rules"]
    assert isinstance(kept, Opaque) and kept == rules and kept.text() == canonical(rules)
    assert sys.getsizeof(kept) < len(canonical(rules)) / 3
    assert Opaque.of(json.loads(json.dumps(rules))) == kept          # equal bytes, equal rules
    assert secrets_used({"transform": {"type": "dtl", "rules": kept}}) == {"crm-key"}
    assert json.loads(dumps({"rules": kept})) == {"rules": rules}
    assert str(kept) == canonical(rules)


def test_kept_run_reports_are_held_as_deflated_json_and_read_back_whole(tmp_path) -> None:
    """A first run's report lists thousands of actions, held for as long as the service
    runs: as dicts several MB, as JSON text most of that, deflated a tenth of the text.
    /status, /runs/<id> and the placement read the same reports as before, and the history
    file holds what json.dump wrote."""
    from service.web import history as history_file
    actions = [{"kind": "create-pipe", "node": "s1", "id": f"p{n}", "reason": "move system crm",
                "status": "done"} for n in range(2000)]

    def run(config: Any, *, dry_run: bool = False, progress: Any = None) -> Report:
        return Report(started="2024-01-01T00:00:00+00:00", finished="2024-01-01T00:00:01+00:00",
                      outcome="ok", actions=[dict(a) for a in actions],
                      placement={"s1": {"systems": ["crm"], "pipes": ["p0"]}})

    path = tmp_path / "history.json"
    config = make_config().model_copy(update={"history_path": str(path)})
    runner = Runner(config=config, run=run)
    runner.sync()
    kept = runner._history[-1]
    assert isinstance(kept, history_file.Entry) and isinstance(kept.packed, bytes)
    whole = runner.report(kept.id)
    assert whole is not None and whole["actions"] == actions and whole["counts"] == {"done": 2000}
    assert len(kept.packed) < len(json.dumps(whole)) / 8
    assert runner.last_report() == whole
    assert runner.history() == [{k: v for k, v in whole.items() if k != "placement"}]
    assert runner.placement() == ({"s1": {"systems": ["crm"], "pipes": ["p0"]}}, whole["finished"])
    assert json.loads(path.read_text()) == [whole]
    again = Runner(config=config, run=run)
    assert again.report(kept.id) == whole and again.sync() and again.history()[0]["id"] == 2


def test_status_parses_each_kept_report_once_and_shows_what_the_parts_show(monkeypatch) -> None:
    """/status shows the last report, the history, the placement and what needs a person,
    all read from the kept reports: each report is parsed once for it, not once per part
    (the newest, a first run's thousands of actions, is in all four)."""
    from service.web import history as history_file
    outcomes = iter(["ok", "aborted"])

    def run(config: Any, *, dry_run: bool = False, progress: Any = None) -> Report:
        outcome = next(outcomes)
        return Report(started="2024-01-01T00:00:00+00:00", finished="2024-01-01T00:00:01+00:00",
                      outcome=outcome, errors=["x"] if outcome == "aborted" else [],
                      placement={"s1": {"systems": ["crm"], "pipes": []}}
                      if outcome == "ok" else {})

    runner = Runner(config=make_config(), run=run)
    runner.sync()
    runner.sync()
    parsed: list[int] = []
    unpack = history_file.unpack
    monkeypatch.setattr(history_file, "unpack", lambda e: parsed.append(e.id) or unpack(e))
    shown = runner.shown()
    assert sorted(parsed) == [1, 2]
    monkeypatch.setattr(history_file, "unpack", unpack)
    assert shown["last_report"] == runner.last_report() and shown["history"] == runner.history()
    assert (shown["placement"], shown["placement_as_of"]) == runner.placement()
    assert shown["placement"] == {"s1": {"systems": ["crm"], "pipes": []}}     # not the aborted
    attention = runner.attention()
    assert (shown["warnings"], shown["errors"]) == (attention["warnings"], attention["errors"])
    assert shown["errors"] == ["x"]


def test_deflated_rules_are_not_inflated_to_look_for_secrets_or_env_vars_they_lack(
        monkeypatch) -> None:
    """The planner looks for `$SECRET(` and `$ENV(` in every config it writes: deflated
    rules say whether they hold one, so the others are never inflated (a plan of 10,000
    pipes would inflate 20,000 texts)."""
    from service.core.planner import _env_first
    from service.core.references import secrets_used
    plain = Opaque.of({"default": [["copy", "*"]]})
    with_env = Opaque.of({"default": [["add", "x", "$ENV(region)"]]})
    with_secret = Opaque.of({"default": [["add", "x", "$SECRET(key)"]]})
    assert (plain.names_env, plain.names_secrets) == (False, False)
    assert (with_env.names_env, with_secret.names_secrets) == (True, True)
    inflated: list[Opaque] = []
    real_text = Opaque.text

    def text(self: Opaque) -> str:
        inflated.append(self)
        return real_text(self)

    monkeypatch.setattr(Opaque, "text", text)
    pipe = {"_id": "p", "transform": [{"type": "dtl", "rules": plain}]}
    assert secrets_used(pipe) == set() and _env_first(7, pipe) is None
    assert inflated == []
    from service.core.opaque import Digest
    deflated: list[Any] = []
    real_of = Opaque.of.__func__         # type: ignore[attr-defined]
    monkeypatch.setattr(Opaque, "of", classmethod(
        lambda cls, value: deflated.append(value) or real_of(cls, value)))
    copy = {"_id": "p", "transform": {"type": "dtl", "rules": {"default": [["copy", "*"]]}}}
    kept = Digest(copy)                  # a slave's copy: its rules are not deflated
    assert deflated == []
    assert kept == {**copy, "transform": {"type": "dtl", "rules": plain}}
    assert kept != {**copy, "transform": {"type": "dtl", "rules": with_env}}
    inflated.clear()
    assert secrets_used({"transform": {"type": "dtl", "rules": with_secret}}) == {"key"}
    assert _env_first(7, {"transform": {"type": "dtl", "rules": with_env}}) == 7
    assert inflated == [with_secret, with_env]


def test_the_flows_kept_between_runs_are_packed_and_shown_whole() -> None:
    """The Runner keeps a run's data flows until the next run (for /status, the page and the
    next run's carry-over) packed: thousands of small dicts made late in one run and kept
    through the next had kept the heap pages they shared with that run's objects in use."""
    from datetime import UTC, datetime

    from service.core.flows import Flow, Side, judge
    now = datetime(2024, 1, 1, 1, tzinfo=UTC)
    runs = iter([True, False])

    def run(config: Any, *, dry_run: bool = False, progress: Any = None) -> Report:
        ok = next(runs)
        sides = [Side("slave copy", "s1", f"kept-as-text-{i}", True, ok,
                      "2024-01-01T00:00:00+00:00") for i in range(3)]
        return Report(started="2024-01-01T01:00:00+00:00", outcome="ok", flows=[
            judge(Flow(f"kept-as-text-{i}", "s1", "sync", (sides[i],), interval=3600),
                  now=now) for i in range(3)])

    runner = Runner(config=make_config(), run=run, now=lambda: now)
    runner.sync()
    import gc
    gc.collect()
    # Plain dicts only: other modules' dict subclasses may not take any key.
    assert not [o for o in gc.get_objects() if type(o) is dict
                and str(o.get("pipe", "")).startswith("kept-as-text-")]
    shown = runner.flows()
    assert [(f["pipe"], f["state"], f["last_success"]) for f in shown] == [
        (f"kept-as-text-{i}", "ok", "2024-01-01T00:00:00+00:00") for i in range(3)]
    runner.sync()        # the copies' last runs failed: the earlier success is carried over
    assert [(f["state"], f["last_success"]) for f in runner.flows()] == \
        [("failing", "2024-01-01T00:00:00+00:00")] * 3


def test_the_plan_kept_for_review_holds_no_object_of_the_run() -> None:
    """The last plan with steps is kept for /status until a run applies it: as text, so its
    placement (a pipe id per moved pipe, strings made while reading) does not keep the heap
    pages of the run that made them in use."""
    def run(config: Any, *, dry_run: bool = False, progress: Any = None) -> Report:
        return Report(started="2024-01-01T00:00:00+00:00", outcome="ok", dry_run=dry_run,
                      plan_id="p1", actions=[{"kind": "create-pipe", "node": "s1",
                                              "id": "kept-for-review", "reason": "r"}],
                      placement={"s1": {"systems": [], "pipes": ["kept-for-review"]}})

    runner = Runner(config=make_config(), run=run)
    runner.plan()
    import gc
    gc.collect()
    assert not [o for o in gc.get_objects() if type(o) in (dict, list)
                and ("kept-for-review" in o or o.get("id") == "kept-for-review"
                     if type(o) is dict else "kept-for-review" in o)]
    state = runner.sync_state()
    assert state["out_of_sync"] is True
    assert state["pending_plan"]["actions"][0]["id"] == "kept-for-review"
    assert state["pending_plan"]["placement"] == {"s1": {"systems": [],
                                                         "pipes": ["kept-for-review"]}}


def test_a_runtime_keeps_the_fields_the_planner_reads_in_a_tuple_read_like_a_dict() -> None:
    """Every component keeps its runtime for the whole run: by position, not as a dict."""
    from service.core.snapshots import Runtime
    node_said = {"is-disabled": True, "last-seen": "42", "is-valid-config": False,
                 "success": False, "last-run": "2024-01-01T00:00:00Z", "count": 7,
                 "config-errors": [{"msg": "no such system"}, "odd"]}
    runtime = Runtime.of(node_said)
    assert isinstance(runtime, tuple) and not hasattr(runtime, "__dict__")
    assert [runtime.get(k) for k in ("is-disabled", "last-seen", "is-valid-config", "success",
                                     "last-run", "config-errors")] == \
        [True, "42", False, False, "2024-01-01T00:00:00Z", ("no such system",)]
    assert runtime.get("count") is None and runtime.get("count", 0) == 0    # not kept
    valid = Runtime.of({"is-valid-config": True, "config-errors": [{"msg": "x"}]})
    assert valid.get("config-errors") is None and valid.get("is-disabled") is None
    assert Runtime().get("is-disabled") is None
    # A component holds the fields one by one, no Runtime of its own, and reads the same.
    comp = component_of({"_id": "p", "config": {"original": {"_id": "p"}}, "runtime": node_said})
    assert comp.runtime == runtime and comp.last_seen == "42"
    assert not any(isinstance(getattr(comp, f), Runtime) for f in comp.__slots__)


def test_the_answer_to_a_write_is_read_to_its_end_and_not_kept(node, monkeypatch) -> None:
    """A node answers a bulk create with the configs it made: the bulks of a first run go to
    every node at once, so their answers are read (the connection is used again) and
    dropped; a refusal's answer is still read for its messages."""
    client = SesamClient(node_id="n", api_url=node.api_url, token=node.token(admin=True))
    bodies: list[Any] = []
    once = SesamClient._once

    def spy(self: SesamClient, *args: Any) -> Any:
        found = once(self, *args)
        bodies.append(found[2])
        return found
    monkeypatch.setattr(SesamClient, "_once", spy)
    client.create_pipes([{"_id": f"p{i}", "type": "pipe", "transform": {
        "type": "dtl", "rules": Opaque.of({"default": [["copy", "*"]]})}} for i in range(100)])
    assert bodies == [b""]
    assert len(client.list_pipes()) == 100 and len(bodies[-1]) == 100    # a read keeps all
    with pytest.raises(SesamError, match="refused"):
        client.create_pipes([{"_id": "bad", "type": "pipe", "source": {"type": "nope"}}])
    assert bodies[-1]                                  # the refusal's messages were kept


def test_a_sync_pipe_the_orchestrator_wrote_is_kept_by_digest_with_what_is_read_of_it(
        ) -> None:
    """In the master, a sync pipe of ours is kept by its digest, its marker (the user's
    config, rules deflated) and its source's url; a user's upload stays whole, rules
    deflated; the planner makes a kept one whole again where a write needs it (tested with
    the owed resets in tests/contract/test_resets_that_stick.py)."""
    from service.core.opaque import Digest
    from service.core.references import user_original
    user = {"_id": "p", "type": "pipe", "source": {"type": "json", "system": "crm", "url": "x"},
            "transform": {"type": "dtl", "rules": {"default": RULES}}}
    sync = {"_id": "p", "type": "pipe", "description": "generated",
            "source": {"type": "json", "system": "s1-feed", "url": "p", "supports_since": True},
            "sink": {"type": "dataset", "dataset": "p"}, "pump": {"schedule_interval": 300},
            "metadata": {"orchestrator": {"slave": "s1", "url": "https://s1/api/pipes/p",
                                          "original_configuration": user}}}
    kept = component_of({"_id": "p", "config": {"original": json.loads(json.dumps(sync))}})
    assert isinstance(kept.original, Digest) and kept.original == sync
    # Digested as read, before its rules were deflated: the same fingerprint as after.
    from service.core.opaque import digest
    assert kept.original.fingerprint == digest(freeze(json.loads(json.dumps(sync))))
    assert set(kept.original) == {"metadata"} and kept.original.source_url == "p"
    raw = json.loads(json.dumps(sync))      # its metadata holds nothing else: kept, not copied
    assert Digest(raw)["metadata"] is raw["metadata"]
    original, mark = user_original(kept)
    assert mark is not None and mark["slave"] == "s1" and original == user
    assert isinstance(original["transform"], Opaque)
    upload = component_of({"_id": "p", "config": {"original": json.loads(json.dumps(user))}})
    assert not isinstance(upload.original, Digest) and upload.original == user
    assert isinstance(upload.original["transform"], Opaque)


def test_what_the_runner_packs_is_never_held_whole_as_text() -> None:
    """Flows and plans are packed at a run's end, on top of all else the run held: a few
    items at a time go to the compressor, never the whole list as one text and its bytes."""
    import tracemalloc

    from service.web.json_pieces import deflated, inflated, pieces
    flows = [{"pipe": f"p{i:05d}", "slave": f"s{i % 15}", "state": "waiting",
              "last_success": None, "sides": [{"role": "slave copy", "exists": True}]}
             for i in range(10_000)]
    report = {"outcome": "ok", "actions": flows, "placement": {"s1": {"pipes": ["p"]}}}
    text = len(json.dumps(flows))
    tracemalloc.start()      # the report: a dict, its list in pieces
    packed = deflated(report)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # The compressor's own state is about 0.27 MB; the text is 1.3 MB.
    assert peak < text / 3, (peak, text)
    assert inflated(packed) == json.loads(json.dumps(report))
    assert inflated(deflated(flows)) == json.loads(json.dumps(flows))
    for value in ([], {}, {"a": []}, [[1, 2], {"b": [3]}] * 300, {"é": "ü"}, None, 1.5, "x",
                  {True: [1], None: 2, 3: {4: 5}, 1.5: "f"}):
        assert "".join(pieces(value)) == json.dumps(value, separators=(",", ":"))


def test_the_bodies_sent_at_once_stay_under_their_limit_and_one_larger_still_goes() -> None:
    """A first run sends bulks of 100 configs to every slave at once: a body is made only
    while the bodies held, all nodes counted, are under a limit (so at most the limit and
    one body are held), and one larger than the limit still goes."""
    from service.nodes import client as client_module
    bodies = client_module._Bodies(10_000)
    made = [bodies.made({"x": "a" * 3000}) for _ in range(5)]
    assert [m is not None for m in made] == [True] * 4 + [False]     # 4 x 3 KB: no room
    assert not bodies.room(time.monotonic() + 0.05)                  # none by the deadline
    waiter = ThreadPoolExecutor(max_workers=1).submit(bodies.room, float("inf"))
    time.sleep(0.05)
    assert not waiter.done()
    bodies.done(made[0])
    assert waiter.result(timeout=5) is True
    for data in made[1:4]:
        bodies.done(data)
    big = bodies.made({"x": "a" * 50_000})                           # larger than the limit
    assert big is not None and len(big) > 50_000
    assert bodies.made({"x": 1}) is None
    bodies.done(big)
    assert bodies.made({"x": 1}) == b'{"x": 1}'


def test_a_node_slow_to_take_writes_holds_up_no_other_nodes_reads(nodes, monkeypatch
                                                                  ) -> None:
    """While one node takes its time over the writes that fill the bodies' room, another
    node's writes wait for room without holding that node's slots: its reads go on."""
    from service.nodes import client as client_module
    monkeypatch.setattr(client_module, "_BODIES", client_module._Bodies(1000))
    slow, quick = nodes(latency_ms=1500), nodes()
    to_slow = SesamClient(node_id="slow", api_url=slow.api_url, token=slow.token(admin=True),
                          concurrency=1)
    to_quick = SesamClient(node_id="quick", api_url=quick.api_url,
                           token=quick.token(admin=True), concurrency=1)
    with ThreadPoolExecutor(max_workers=2) as pool:
        held = pool.submit(to_slow.post_env, {"big": "x" * 2000})
        time.sleep(0.3)                               # its body holds all the room now
        waiting = pool.submit(to_quick.post_env, {"k": "v"})
        time.sleep(0.1)
        t0 = time.monotonic()
        assert to_quick.get_env() == {}               # the write waits; the read does not
        assert time.monotonic() - t0 < 1.0 and not waiting.done()
        held.result(timeout=10)
        waiting.result(timeout=10)
    assert to_quick.get_env() == {"k": "v"}


def test_a_write_that_finds_no_room_before_the_runs_deadline_fails_as_late(
        nodes, monkeypatch) -> None:
    from service.nodes import client as client_module
    monkeypatch.setattr(client_module, "_BODIES", client_module._Bodies(10))
    node = nodes()
    client = SesamClient(node_id="n", api_url=node.api_url, token=node.token(admin=True),
                         run_timeout=0.3)
    filler = client_module._BODIES.made({"x": "y" * 100})
    assert filler is not None
    with pytest.raises(SesamError, match="RUN_TIMEOUT"):
        client.post_env({"k": "v"})
    client_module._BODIES.done(filler)
    one_slot = SesamClient(node_id="n", api_url=node.api_url, token=node.token(admin=True),
                           concurrency=1, run_timeout=5)
    with pytest.raises(ValueError):                   # not JSON: the slot is given back
        one_slot.post_env({"k": float("nan")})
    assert one_slot.get_env() == {}


def test_a_runs_report_is_answered_in_pieces_never_as_one_text() -> None:
    """POST /sync answers with the run's report, an entry per action: 20,000 entries at
    10,000 pipes. It goes to the server a piece at a time, and says the same."""
    from stand_in_run import FakeRun, make, report
    actions = [{"kind": "create-pipe", "node": "s1", "id": f"p{i}", "status": "done",
                "reason": "move é"} for i in range(2000)]
    client, _, _ = make(fake=FakeRun(report(actions=actions)))
    answer = client.post("/sync", buffered=False)
    assert answer.status_code == 200 and answer.is_streamed
    parts = list(answer.response)
    assert len(parts) > 5 and max(map(len, parts)) < len(b"".join(parts)) / 5
    assert json.loads(b"".join(parts))["actions"] == actions and parts[-1] == b"\n"
    planned = client.get("/plan").get_json()["actions"]
    assert planned == [{**a, "status": "planned"} for a in actions]


def _snapshot(node_id: str, pipes: list[dict[str, Any]], systems: list[dict[str, Any]] = ()
              ) -> NodeSnapshot:
    """A node's snapshot as the reading makes it, of these configs (no runtime)."""
    def comp(c: dict[str, Any]) -> Component:
        return Component.using(c["_id"], c, uses_of(c["_id"], c))
    return NodeSnapshot(node_id=node_id, pipes={p["_id"]: comp(p) for p in pipes},
                        systems={s["_id"]: comp(s) for s in systems}, env={},
                        secrets=frozenset())


def test_a_slave_copy_is_marked_only_to_be_compared_or_written() -> None:
    """What each slave should hold is kept as the master's config itself, not a marked copy
    per pipe held through the whole plan (0.5 KB a pipe): the group mark is added where the
    copy is compared with the slave's and where it is sent."""
    from datetime import UTC, datetime

    from service.core.placement import desired_state
    from service.core.planner import plan
    from stand_in_run import make_config as config_of

    node = _snapshot
    config = config_of()
    managed = config.slaves[0].managed_systems[0]
    user = {"_id": "in", "type": "pipe", "source": {"type": "json", "system": managed,
                                                      "url": "u"}}
    master = node("master", [user], [{"_id": managed, "type": "system:url", "base_url": "x"}])
    desired = desired_state(config, master)
    slave = config.slaves[0].id
    assert desired.slave_pipes[slave]["in"] is user
    now = datetime(2024, 1, 1, tzinfo=UTC)
    first = plan(config, master, {slave: node(slave, [])}, now=now)
    sent = [a.payload for a in first.actions if a.kind == "create-pipe" and a.node == slave]
    assert sent == [desired.marked(user)] and sent[0]["metadata"] == {
        "$config-group": desired.group} and "metadata" not in user
    holding = node(slave, [json.loads(json.dumps(sent[0]))],
                   [json.loads(json.dumps(desired.marked(
                       desired.slave_systems[slave][managed])))])
    steady = plan(config, master, {slave: holding}, now=now)
    assert [a for a in steady.actions if a.node == slave and a.kind != "set-env"] == []


def test_a_first_runs_plan_holds_each_master_rewrite_as_what_it_is_made_of() -> None:
    """A first run rewrites every moved pipe in the master as a sync pipe, and its plan holds
    each rewrite until it is written: as dicts, ~1.3 KB a pipe (13 MB of a 10,000-pipe plan,
    beside the master's listing). The plan holds what each is made of; the executor and the
    plan's text build it whole, as the master gets it."""
    import tracemalloc
    from datetime import UTC, datetime

    from service.core.generated import built
    from service.core.planner import plan
    from stand_in_run import make_config as config_of

    config = config_of()
    slave, managed = config.slaves[0].id, config.slaves[0].managed_systems[0]
    count = 300
    users = [{"_id": f"in-{i:03d}", "type": "pipe",
              "source": {"type": "json", "system": managed, "url": f"entities-{i}"},
              "sink": {"type": "dataset", "dataset": f"in-{i:03d}"}} for i in range(count)]
    master = _snapshot("master", users, [{"_id": managed, "type": "system:url",
                                          "base_url": "http://crm.invalid/"}])
    slaves = {slave: _snapshot(slave, [])}
    now = datetime(2024, 1, 1, tzinfo=UTC)
    made_before = plan(config, master, slaves, now=now)   # what is made once per process
    tracemalloc.start()
    try:
        first = plan(config, master, slaves, now=now)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    rewrites = [a for a in first.actions if a.node == "master" and a.kind == "update-pipe"]
    assert len(rewrites) == count
    # Everything the plan holds, the slaves' copies and every action included: ~0.7 KB a
    # moved pipe; with each rewrite held as a dict it was ~2 KB.
    assert held / count < 1200, f"{held / count:.0f} bytes held a moved pipe"
    whole = built(rewrites[0].payload)
    assert whole["_id"] == "in-000" and whole["sink"] == {"type": "dataset",
                                                          "dataset": "in-000"}
    assert whole["source"]["type"] == "json" and whole["source"]["url"] == "in-000"
    mark = whole["metadata"]["orchestrator"]
    assert mark["slave"] == slave and mark["original_configuration"] is users[0]
    # The user's config (it may hold a token) is never in a repr, so never in a log line.
    assert "entities-0" not in repr(rewrites[0].payload)
    # Compared unbuilt with a config, it would differ from an equal one and every run would
    # rewrite the pipe: that comparison fails loudly instead.
    with pytest.raises(TypeError):
        assert rewrites[0].payload != whole
    # Two made alike compare equal without being built (plans compare their actions).
    assert made_before.actions == first.actions


def test_a_runs_data_flows_are_held_as_tuples_not_dicts() -> None:
    """A run holds one flow per moved pipe from its listings to its end, and a steady run
    makes them on top of the listings, at its highest point: as a dict with a dict per side
    they were ~0.9 KB each; they are slotted objects and tuples (~0.4 KB), dicts only where
    shown."""
    import tracemalloc
    from datetime import UTC, datetime

    from service.core import flows

    count = 300

    def moved(i: int) -> dict[str, Any]:
        user = {"_id": f"p{i:03d}", "type": "pipe",
                "source": {"type": "sql", "system": "crm", "table": f"t{i}"}}
        return {"_id": user["_id"], "type": "pipe",
                "source": {"type": "json", "system": "s1-sync", "url": user["_id"]},
                "sink": {"type": "dataset", "dataset": user["_id"]},
                "metadata": {"orchestrator": {"slave": "s1", "original_configuration": user}}}
    master = _snapshot("master", [moved(i) for i in range(count)])
    slave = _snapshot("s1", [{"_id": f"p{i:03d}", "type": "pipe"} for i in range(count)])
    now = datetime(2024, 1, 1, tzinfo=UTC)
    tracemalloc.start()
    try:
        found = flows.flows(master, {"s1": slave}, now=now)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(found) == count and {f.state for f in found} == {"waiting"}
    assert held / count < 600, f"{held / count:.0f} bytes a flow"
    assert found[0].as_json()["sides"] == [
        {"role": "slave copy", "node": "s1", "pipe": "p000", "exists": True, "ok": None,
         "last_run": None},
        {"role": "sync pipe", "node": "master", "pipe": "p000", "exists": True, "ok": None,
         "last_run": None}]


def test_a_plans_flows_become_json_a_few_at_a_time_in_its_answer_and_what_is_kept() -> None:
    """A dry run's report holds one flow per moved pipe. Its GET /plan answer, and the flows
    the Runner keeps for /status, write each flow as JSON as the writer meets it: as dicts
    all at once, 10,000 flows waiting for a first sync were ~9 MB made at a run's end."""
    import tracemalloc

    from service.core.flows import Flow, Side
    from service.web.app import create_app

    def flow(i: int) -> Flow:
        pid = f"pipe-{i:05d}"
        return Flow(pid, "s1", "sync", (Side("slave copy", "s1", pid, True, None, None),
                                        Side("sync pipe", "master", pid, True, None, None)),
                    interval=60, state="waiting")
    made = [flow(i) for i in range(3000)]

    def run(config: Any, *, dry_run: bool = False, progress: Any = None) -> Report:
        return Report(started="2024-01-01T00:00:00+00:00", outcome="ok", dry_run=dry_run,
                      plan_id="0" * 16, flows=list(made))
    config = make_config()
    runner = Runner(config=config, run=run)
    client = create_app(config=config, runner=runner).test_client()
    tracemalloc.start()
    try:
        as_dicts = [f.as_json() for f in made]
        dicts_size = tracemalloc.get_traced_memory()[0]
        del as_dicts
        tracemalloc.reset_peak()
        at_start = tracemalloc.get_traced_memory()[0]
        answer = client.get("/plan")
        peak = tracemalloc.get_traced_memory()[1] - at_start
    finally:
        tracemalloc.stop()
    expected = [f.as_json() for f in made]
    assert answer.status_code == 200 and answer.get_json()["flows"] == expected
    assert runner.flows() == expected           # kept for /status: all of them need a look
    # The answer is about 1 MB here, shared as its pieces (the test client joins its own
    # copy): 1.8 MB at peak. The flows as dicts are 2.6 MB; made all at once the peak was
    # 4.4 MB, and with the pieces joined into one answer 2.1 MB.
    assert peak < 0.75 * dicts_size, \
        f"{peak / 2**20:.1f} MB at peak, {dicts_size / 2**20:.1f} as dicts"
