"""The real service process (`python -m service`) against emulator nodes, over HTTP.

One service process per test module (per xdist worker) serves the endpoint tests; the
life-cycle tests (bad configuration, SIGTERM) start their own.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator

import pytest

from emulator import EmulatorNode
from conftest import JWT_SECRET
from orchestration import environ, originals
from repo_root import ROOT
from service_process import (API_TOKEN, Service, at_once_watching_status, free_port, listening,
                             start_service, stop_service)

# One worker runs this file: its module fixture (a process, nodes) starts once, not once per
# worker (pytest.ini: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("the_served_process")

HOSTILE = 'erp-<b>&"x\''                     # a system id a page must escape
GHOST = 'ghost-<i>&"y'                       # managed by s2, absent from the master: a warning
ESCAPED_HOSTILE = "erp-&lt;b&gt;&amp;&#34;x&#39;"
# Messages quote an id that is not plain (service/core/names.py), then the page escapes it.
QUOTED_GHOST = json.dumps(GHOST)                # "ghost-<i>&\"y"
ESCAPED_GHOST = "&#34;ghost-&lt;i&gt;&amp;\\&#34;y&#34;"


@dataclass
class Cluster:
    master: EmulatorNode
    s1: EmulatorNode
    s2: EmulatorNode
    env: dict[str, str]

    @property
    def tokens(self) -> list[str]:
        nodes = [json.loads(self.env["MASTER_NODE"])] + json.loads(self.env["SLAVE_NODES"])
        return [n["jwt_token"] for n in nodes] + [API_TOKEN]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    master, s1, s2 = (EmulatorNode(jwt_secret=JWT_SECRET).start() for _ in range(3))
    master.seed(
        systems=[{"_id": "crm", "type": "system:url", "base_url": "http://crm.invalid/"},
                 {"_id": HOSTILE, "type": "system:url", "base_url": "http://erp.invalid/"}],
        pipes=[{"_id": "crm-person", "type": "pipe",
                "source": {"type": "json", "system": "crm", "url": "person"}},
               {"_id": f"{HOSTILE}-order", "type": "pipe",
                "source": {"type": "json", "system": HOSTILE, "url": "order"}}],
        env={"region": "eu"})
    env = environ(master, {"s1": (s1, ["crm"]), "s2": (s2, [HOSTILE, GHOST])},
                  UPDATE_INTERVAL="3600", API_TOKEN=API_TOKEN)
    yield Cluster(master=master, s1=s1, s2=s2, env=env)
    for node in (master, s1, s2):
        node.stop()


@pytest.fixture(scope="module")
def service(cluster: Cluster) -> Iterator[Service]:
    service = start_service(cluster.env)
    try:
        # The schedule's first run comes a few seconds after start; the tests build on it.
        deadline = time.monotonic() + 15
        while not service.get("/status").json()["history"]:
            assert time.monotonic() < deadline, service.log()
            time.sleep(0.1)
        yield service
    finally:
        code = stop_service(service)
    # After scheduled and API runs have left idle worker threads behind, SIGTERM still ends
    # the process, and cleanly.
    assert code == 0, service.log()[-2000:]


# --- endpoints ---

def test_health(service: Service) -> None:
    answer = service.get("/health")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"


def test_first_run_is_scheduled_and_status_shows_it(service: Service, cluster: Cluster) -> None:
    status = service.get("/status").json()
    first = status["history"][-1]
    assert first["trigger"] == "schedule" and first["outcome"] == "ok"
    assert first["dry_run"] is False
    assert {(a["kind"], a["node"], a["id"]) for a in first["actions"]} >= {
        ("create-system", "s1", "crm"), ("create-system", "s2", HOSTILE)}
    # The placement /status shows is what the nodes really hold now.
    assert status["placement"]["s1"] == {"systems": ["crm"], "pipes": ["crm-person"]}
    assert status["placement"]["s2"] == {"systems": [HOSTILE], "pipes": [f"{HOSTILE}-order"]}
    assert set(originals(cluster.s1, "systems")) == {"crm"}
    assert set(originals(cluster.s2, "pipes")) >= {f"{HOSTILE}-order"}
    assert any(QUOTED_GHOST in w and "does not exist in the master" in w
               for w in status["warnings"])
    # The test tokens expire in a day: a person is told before they break anything.
    assert any(w.startswith("node s1: its jwt_token expires soon") for w in status["warnings"])
    assert status["config"]["slaves"][1]["managed_systems"] == [HOSTILE, GHOST]
    assert status["config"]["api_token_required"] is True
    ahead = (datetime.fromisoformat(status["next_run"])
             - datetime.now(timezone.utc)).total_seconds()
    assert 3500 < ahead <= 3600


def test_page_shows_placement_and_warnings_escaped(service: Service) -> None:
    answer = service.get("/")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    page = answer.text
    assert HOSTILE not in page and GHOST not in page and "<b>" not in page
    assert f"<code>{ESCAPED_HOSTILE}</code>" in page                  # placement: system
    assert f"<code>{ESCAPED_HOSTILE}-order</code>" in page            # placement: pipe
    assert "<h3>s1</h3>" in page and "<code>crm-person</code>" in page
    assert f"managed system {ESCAPED_GHOST} does not exist in the master" in page
    assert 'class="ok">ok<' in page                                    # the last runs
    assert "node master: its jwt_token expires soon" in page


def test_sync_and_plan_need_the_api_token(service: Service, cluster: Cluster) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": API_TOKEN}):
        assert service.post("/sync", headers=headers).status_code == 401
        assert service.get("/plan", headers=headers).status_code == 401
    cluster.master.clear_requests()
    plan = service.get("/plan", headers=service.auth)
    assert plan.status_code == 200
    assert plan.json()["dry_run"] is True and plan.json()["actions"] == []
    sync = service.post("/sync", headers=service.auth)
    assert sync.status_code == 200
    # Steady state: the run read the nodes and wrote nothing.
    assert sync.json()["outcome"] == "ok" and sync.json()["actions"] == []
    master_log = cluster.master.requests()
    assert [r["path"] for r in master_log].count("/api/pipes") == 2    # the plan and the sync
    assert service.get("/status").json()["last_report"]["trigger"] == "api"


def test_metrics(service: Service) -> None:
    answer = service.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
              for line in answer.text.splitlines() if line and not line.startswith("#")}
    assert values['sesam_orchestrator_runs_total{outcome="ok"}'] >= 1
    assert values['sesam_orchestrator_actions_total{kind="create-system",status="done"}'] == 2
    assert values["sesam_orchestrator_run_duration_seconds_count"] >= 1
    assert values["sesam_orchestrator_last_success_timestamp_seconds"] > time.time() - 120
    assert values["sesam_orchestrator_warnings"] >= 1


def test_one_sync_at_a_time_and_status_answers_during_a_long_run(
        service: Service, cluster: Cluster) -> None:
    n = 10
    # While the winner runs, /status keeps answering and shows it running.
    answers, seen_running = at_once_watching_status(
        service, [lambda: service.post("/sync", headers=service.auth)] * n,
        (cluster.master, cluster.s1, cluster.s2), latency_ms=700)
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] + [409] * (n - 1), [(a.status_code, a.elapsed) for a in answers]
    assert seen_running
    busy = next(a for a in answers if a.status_code == 409).json()
    assert "in progress" in busy["error"] and busy["progress"]["trigger"] == "api"
    # Exactly one reconciliation read the master.
    assert [r["path"] for r in cluster.master.requests()].count("/api/pipes") == 1


def test_no_token_in_any_response_or_log_line(service: Service, cluster: Cluster) -> None:
    bodies = [service.get(p).text for p in ("/", "/health", "/status", "/metrics")]
    bodies += [service.get("/plan", headers=service.auth).text,
               service.post("/sync", headers=service.auth).text,
               service.post("/sync").text]
    log = service.log()
    # One line per action and per warning, naming node and component id.
    assert log.count('action create-system node="s1" id="crm": done') == 1
    assert log.count(f'action create-pipe node="s2" id={json.dumps(HOSTILE + "-order")}: done') == 1
    assert log.count(f"warning: slave s2: managed system {QUOTED_GHOST} does not exist") >= 2
    assert log.count(f"managed system {QUOTED_GHOST} does not exist") == log.count(
        f"warning: slave s2: managed system {QUOTED_GHOST} does not exist")
    for token in cluster.tokens:
        for text in bodies + [log]:
            assert token not in text


# --- life cycle ---

def test_invalid_config_exits_2_with_one_line_and_nothing_listening(cluster: Cluster) -> None:
    port = free_port()
    slaves = json.loads(cluster.env["SLAVE_NODES"])
    slaves[1]["endpoint"] = "ftp://s2.invalid"
    env = {**os.environ, **cluster.env, "SLAVE_NODES": json.dumps(slaves), "PORT": str(port)}
    cluster.master.clear_requests()
    done = subprocess.run([sys.executable, "-m", "service"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=20)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "SLAVE_NODES[1].endpoint" in done.stderr
    assert not listening(port)
    assert cluster.master.requests() == []       # no node was contacted
    for token in cluster.tokens:
        assert token not in done.stderr


def test_sigterm_stops_the_service_cleanly(cluster: Cluster) -> None:
    service = start_service(cluster.env)
    # Right after it answers, before the first scheduled run.
    assert service.get("/health").status_code == 200
    # 0, not the SIGKILL stop_service sends a process still alive 10 s after SIGTERM.
    code = stop_service(service)
    assert code == 0, service.log()
    assert not listening(service.port)
    assert "Traceback" not in service.log()
    assert "received SIGTERM, stopping" in service.log()


def test_the_docker_healthcheck_command_passes_against_the_service(service: Service) -> None:
    from dockerfile import healthcheck_command
    command = [sys.executable, *healthcheck_command()[1:]]
    ok = subprocess.run(command, env={**os.environ, "PORT": str(service.port)},
                        capture_output=True, timeout=20)
    assert ok.returncode == 0, ok.stderr
    down = subprocess.run(command, env={**os.environ, "PORT": str(free_port())},
                          capture_output=True, timeout=20)
    assert down.returncode != 0


STUCK_SERVICE = """
import os, threading
import service.web.server
from service.config import load_config

def stuck(config, *, dry_run=False, progress=None):
    print("run entered", flush=True)
    threading.Event().wait()          # a run that never ends, e.g. a node that hangs

service.web.server.STOP_GRACE_SECONDS = 0.5
service.web.server.serve(load_config(os.environ), run=stuck, first_run_delay=0.1)
"""


def test_sigterm_during_a_run_that_does_not_end_still_stops_after_the_grace(
        cluster: Cluster) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", STUCK_SERVICE], cwd=ROOT,
                            env={**os.environ, **cluster.env, "PORT": str(port)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    service = Service(proc=proc, url=f"http://127.0.0.1:{port}", port=port)
    service.read_output()
    try:
        deadline = time.monotonic() + 15
        while "run entered" not in service.log():
            assert time.monotonic() < deadline and proc.poll() is None, service.log()
            time.sleep(0.05)
        status = service.get("/status").json()
        assert status["running"] is True and status["progress"]["trigger"] == "schedule"
        assert service.post("/sync", headers=service.auth).status_code == 409
        code = stop_service(service)
        # The run never ends, so an exit of its own (0, not stop_service's SIGKILL after
        # 10 s) is the grace running out, and the line says so.
        assert code == 0, service.log()
        assert "stopped in the middle of a run; the next start completes it" in service.log()
        assert not listening(port)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
