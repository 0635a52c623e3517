"""Review attacks on the running service (issues 4 and 5): API token checks, error answers,
HTML escaping, /status and /metrics under load, the scheduler, crashing runs, SIGTERM,
PORT handling and the log.

The first group are bugs the review found (fixed since); each asserts the correct
behaviour. The others are attacks the service survived, kept as regression tests.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Iterator

import jwt
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_SUBMITTED
from apscheduler.schedulers.background import BackgroundScheduler
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from emulator import EmulatorNode
from service import orchestrator
from service.web.app import create_app
from service.config import ConfigError, load_config
from service.web.runner import JOB_ID, Runner
from tests.conftest import JWT_SECRET
from tests.orchestration import environ, originals
from tests.test_service_app import (ACTIONS, SECRET, FakeRun, in_thread, make, make_config,
                                    report)
from tests.test_service_process import (ROOT, Service, free_port, listening, stop_service)

API_TOKEN = "review-api-token-0123456789-abcdef"
# A pipe id that, logged raw, would forge a second log line of the service's own format.
FORGED = "forged\n2030-01-01 00:00:00,000 ERROR service.runs: FORGED-ENTRY"
SCRIPT = 'evil-<script>alert(1)<script>'   # no '/': a real node refuses ids with one


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------

def raw_request(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (headers a client library would refuse), read one answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    return status, headers, body


def with_auth(method: str, path: str, authorization: bytes | None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", b"Connection: close",
             b"Content-Length: 0"]
    if authorization is not None:
        lines.append(b"Authorization: " + authorization)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def assert_json_one_line(body: bytes) -> dict:
    text = body.decode("utf-8")
    assert text.rstrip("\n").count("\n") == 0, text
    value = json.loads(text)
    assert isinstance(value, dict)
    return value


SERVE = """
import os
import service.web.server
from service.config import load_config
service.web.server.serve(load_config(os.environ), first_run_delay={delay})
"""


def start(env: dict[str, str], *, first_run_delay: float = 0.2,
          wait_first_run: bool = True) -> Service:
    """The real service (real orchestrator, CherryPy, APScheduler), with a short first delay
    so the tests need not wait the production 3 s."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVE.format(delay=first_run_delay)],
                            cwd=ROOT, env={**os.environ, **env, "PORT": str(port)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    service = Service(proc=proc, url=f"http://127.0.0.1:{port}", port=port,
                      auth={"Authorization": f"Bearer {API_TOKEN}"})
    service.read_output()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert proc.poll() is None, service.log()
        try:
            if not wait_first_run and service.get("/health").status_code == 200:
                return service
            if service.get("/status").json()["history"]:
                return service
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    stop_service(service)
    raise AssertionError(f"no first run: {service.log()}")


class Real:
    def __init__(self, master: EmulatorNode, s1: EmulatorNode, env: dict[str, str]) -> None:
        self.master, self.s1, self.env = master, s1, env
        self.tokens = [json.loads(env["MASTER_NODE"])["jwt_token"],
                       json.loads(env["SLAVE_NODES"])[0]["jwt_token"], API_TOKEN]


@pytest.fixture(scope="module")
def real() -> Iterator[tuple[Real, Service]]:
    master, s1 = (EmulatorNode(jwt_secret=JWT_SECRET).start() for _ in range(2))
    master.seed(
        systems=[{"_id": "crm", "type": "system:url", "base_url": "http://crm.invalid/"},
                 {"_id": SCRIPT, "type": "system:url", "base_url": "http://x.invalid/"}],
        pipes=[{"_id": "crm-person", "type": "pipe",
                "source": {"type": "json", "system": "crm", "url": "person"}},
               {"_id": FORGED, "type": "pipe",
                "source": {"type": "json", "system": "crm", "url": "forged"}},
               {"_id": f"{SCRIPT}-in", "type": "pipe",
                "source": {"type": "json", "system": SCRIPT, "url": "x"}}])
    env = environ(master, {"s1": (s1, ["crm", SCRIPT, "ghost-<img src=x onerror=alert(1)>"])},
                  UPDATE_INTERVAL="3600", API_TOKEN=API_TOKEN)
    cluster = Real(master, s1, env)
    service = start(env)
    try:
        yield cluster, service
    finally:
        code = stop_service(service)
        for node in (master, s1):
            node.stop()
    assert code == 0, service.log()[-2000:]


# --------------------------------------------------------------------------------------
# Bugs: each asserts the correct behaviour and fails today.
# --------------------------------------------------------------------------------------

def _far_token(exp: float) -> str:
    return jwt.encode({"exp": exp, "principals": ["group:Admin"]}, SECRET, algorithm="HS256")


@pytest.mark.parametrize("exp", [int(time.time() * 1000), 1e300], ids=["milliseconds", "1e300"])
def test_status_and_page_survive_a_token_with_an_out_of_range_exp(exp: float) -> None:
    client, _, _ = make(master_token=_far_token(exp))
    for path in ("/status", "/"):
        assert client.get(path).status_code == 200, path


def test_a_token_with_exp_in_milliseconds_does_not_stop_every_run(nodes) -> None:
    master, s1 = nodes(), nodes()
    master.seed(systems=[{"_id": "crm", "type": "system:url", "base_url": "http://x/"}],
                pipes=[{"_id": "crm-person", "type": "pipe",
                        "source": {"type": "json", "system": "crm", "url": "p"}}])
    token = jwt.encode({"exp": int(time.time() * 1000), "principals": ["group:Admin"]},
                       JWT_SECRET, algorithm="HS256")
    assert master.api("GET", "/pipes")[0] == 200          # the node itself accepts it
    config = load_config(environ(master, {"s1": (s1, ["crm"])},
                                 master_extra={"jwt_token": token}))
    try:
        result = orchestrator.run(config)
    except (ValueError, OverflowError) as exc:
        pytest.fail(f"the run raised {exc!r}")
    assert result.outcome == "ok", result.as_json()
    assert "crm-person" in originals(s1, "pipes")


@pytest.mark.parametrize("method,path,code", [("GET", "/nope", 404), ("POST", "/plan", 405),
                                              ("GET", "/sync", 405), ("DELETE", "/status", 405)])
def test_404_and_405_answers_are_json_one_line(real, method: str, path: str, code: int) -> None:
    _, service = real
    status, headers, body = raw_request(service.port, with_auth(method, path, None))
    assert status == code
    assert headers["content-type"].startswith("application/json"), headers
    assert "error" in assert_json_one_line(body)


def test_a_non_ascii_api_token_is_refused_up_front() -> None:
    # A WSGI server hands header bytes over as latin-1: such a token could never match, so
    # the service refuses it at start with one line, rather than locking the API for good.
    with pytest.raises(ConfigError, match=r"^API_TOKEN: must be printable ASCII"):
        make(api_token="jeton-secret-ø-☃-0123456789")


@pytest.mark.parametrize("value", ["", "   "])
def test_a_blank_api_token_is_refused_rather_than_opening_the_api(value: str) -> None:
    env = json.loads(json.dumps({
        "MASTER_NODE": {"_id": "m", "endpoint": "http://127.0.0.1:9", "jwt_token": "t"},
        "SLAVE_NODES": [{"_id": "s1", "endpoint": "http://127.0.0.1:10", "jwt_token": "t",
                         "managed_systems": ["a"]}]}))
    variables = {k: json.dumps(v) for k, v in env.items()} | {"API_TOKEN": value}
    with pytest.raises(ConfigError, match=r"^API_TOKEN: is set but blank"):
        load_config(variables)


def test_a_taken_port_exits_with_one_clear_line(real) -> None:
    cluster, _ = real
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "service"], cwd=ROOT,
                              env={**os.environ, **cluster.env, "PORT": str(port)},
                              capture_output=True, text=True, timeout=20)
    assert done.returncode == 1, done.returncode
    assert "Traceback" not in done.stdout + done.stderr
    assert str(port) in done.stdout + done.stderr


# --------------------------------------------------------------------------------------
# Attacks survived (in process: Flask test client, stand-in run)
# --------------------------------------------------------------------------------------

def test_the_token_is_compared_with_compare_digest_on_every_attempt(monkeypatch) -> None:
    import service.web.app as app_module
    calls: list[tuple[bytes, bytes]] = []
    real_compare = app_module.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real_compare(a, b)
    monkeypatch.setattr(app_module.hmac, "compare_digest", spy)
    client, _, fake = make(api_token=API_TOKEN)
    guesses = ["", "x", API_TOKEN[:-1], API_TOKEN + "x", "y" * 10_000, API_TOKEN.upper()]
    for guess in guesses:
        assert client.post("/sync", headers={"Authorization": f"Bearer {guess}"}
                           ).status_code == 401
    assert fake.calls == []
    # Every guess, whatever its length, went through the constant-time comparison, as bytes.
    assert len(calls) == len(guesses)
    assert all(isinstance(a, bytes) and b == API_TOKEN.encode() for a, b in calls)
    for header in (f"bearer {API_TOKEN}", f"Bearer   {API_TOKEN}  "):
        assert client.post("/sync", headers={"Authorization": header}).status_code == 200


def test_garbled_authorization_headers_are_401_json_in_process() -> None:
    client, _, fake = make(api_token=API_TOKEN)
    for header in ("Bearer", "Bearer ", " Bearer " + API_TOKEN, "Bearer\t" + API_TOKEN,
                   "Token " + API_TOKEN, API_TOKEN, "Bearer " + API_TOKEN + "\x00",
                   "Bearer " + "é" * 50, "Bearer ☃" + API_TOKEN):
        for method, path in (("POST", "/sync"), ("GET", "/plan")):
            answer = client.open(path, method=method, headers={"Authorization": header})
            assert answer.status_code == 401, (header, answer.status_code)
            assert answer.mimetype == "application/json"
            assert_json_one_line(answer.data)
            assert API_TOKEN not in answer.text
    assert fake.calls == []


def test_every_user_string_on_the_page_is_escaped() -> None:
    hostile = '<script>x</script>&"\''
    config_env = {
        "MASTER_NODE": json.dumps({"_id": "master", "endpoint": f"http://127.0.0.1:9/{hostile}",
                                   "jwt_token": "not-a-jwt"}),
        "SLAVE_NODES": json.dumps([{"_id": "s1", "endpoint": "http://127.0.0.1:10",
                                    "jwt_token": "not-a-jwt", "managed_systems": ["crm"]}])}
    config = load_config(config_env)             # such an endpoint is accepted
    fake = FakeRun(report(
        outcome="failed",
        actions=[{"kind": f"kind{hostile}", "node": f"node{hostile}", "id": f"id{hostile}",
                  "status": f"status{hostile}"}],
        warnings=[f"warning{hostile}"], errors=[f"error{hostile}"],
        placement={f"slave{hostile}": {"systems": [f"sys{hostile}"],
                                       "pipes": [f"pipe{hostile}"]}}))
    runner = Runner(config=config, run=fake)
    client = create_app(config=config, runner=runner).test_client()
    client.environ_base["HTTP_X_REQUESTED_WITH"] = "tests"  # a script, not a cross-site form: POST /sync refuses those
    client.post("/sync")
    fake.entered.clear()        # set by the run above: wait for the second run's, not it
    fake.hold()
    thread, _ = in_thread(lambda: client.post("/sync"))
    assert fake.entered.wait(5)
    try:
        page = client.get("/").text                    # during a run: progress shows too
    finally:
        fake.release.set()
        thread.join(5)
    assert "<script>" not in page and hostile not in page
    escaped = "&lt;script&gt;x&lt;/script&gt;&amp;&#34;&#39;"
    for label in ("kind", "node", "id", "status", "warning", "error", "slave", "sys", "pipe"):
        assert f"{label}{escaped}" in page, label
    assert f"http://127.0.0.1:9/{escaped}" in page                # the master's endpoint
    assert "A run is in progress" in page


def test_metrics_parse_with_the_prometheus_parser_even_with_odd_labels() -> None:
    odd = 'k"i\\n\nd'
    fake = FakeRun(report(actions=[*ACTIONS, {"kind": odd, "node": "s1", "id": "p",
                                              "status": "done"}], warnings=["w"]))
    client, _, _ = make(fake=fake)
    client.post("/sync")
    fake.result = report(outcome="aborted", errors=["master unreadable"])
    client.post("/sync")
    answer = client.get("/metrics")
    assert answer.headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    assert families["sesam_orchestrator_runs"].type == "counter"
    assert families["sesam_orchestrator_run_duration_seconds"].type == "histogram"
    assert families["sesam_orchestrator_actions"].type == "counter"
    assert families["sesam_orchestrator_last_success_timestamp_seconds"].type == "gauge"
    assert families["sesam_orchestrator_warnings"].type == "gauge"
    runs = {s.labels["outcome"]: s.value for s in families["sesam_orchestrator_runs"].samples
            if s.name.endswith("_total")}
    assert runs == {"ok": 1, "failed": 0, "aborted": 1}
    kinds = {(s.labels["kind"], s.labels["status"]): s.value
             for s in families["sesam_orchestrator_actions"].samples if s.name.endswith("_total")}
    assert kinds[(odd, "done")] == 1 and kinds[("update-pipe", "skipped")] == 1
    assert [s.value for s in families["sesam_orchestrator_warnings"].samples] == [0]
    count = next(s for s in families["sesam_orchestrator_run_duration_seconds"].samples
                 if s.name.endswith("_count"))
    assert count.value == 2


def test_a_crashing_run_logs_one_redacted_line_and_frees_the_lock(caplog) -> None:
    fake = FakeRun()
    client, runner, _ = make(fake=fake)
    token = make_config().slaves[0].jwt_token.get_secret_value()
    fake.error = RuntimeError(f"line one {token}\n2030-01-01 ERROR service.runs: FORGED")
    with caplog.at_level(logging.INFO, logger="service"):
        answer = client.post("/sync")
    assert answer.status_code == 200 and answer.json["outcome"] == "failed"
    messages = [r.getMessage() for r in caplog.records]
    assert all("\n" not in m for m in messages)
    assert not any(m.startswith("2030-01-01") for m in messages)
    assert all(token not in m for m in messages)
    assert any(m.startswith("run crashed: ") for m in messages)
    status = client.get("/status").json
    assert status["running"] is False and status["progress"] is None
    assert "FORGED" in status["errors"][0] and token not in json.dumps(status)
    fake.error = None
    assert client.post("/sync").json["outcome"] == "ok"
    assert 'sesam_orchestrator_runs_total{outcome="failed"} 1.0' in client.get("/metrics").text


class DrivenSchedule:
    """The Runner's job on a BackgroundScheduler the test drives: `tick(missed)` makes the job
    due now, with `missed` earlier run times also past, through APScheduler's own API (as if
    the host had been busy that long). Nothing waits on a wall clock: the interval is an
    hour, and each tick's outcome is read from the scheduler's events."""

    def __init__(self, runner: Runner, interval: int) -> None:
        self.interval = interval
        self.scheduler = BackgroundScheduler(timezone=timezone.utc)
        self.submitted: list[int] = []     # per submission: how many run times it covered
        self.refused = 0                   # ticks that found the job still running
        self._seen = threading.Condition()
        self.scheduler.add_listener(self._event, EVENT_JOB_SUBMITTED | EVENT_JOB_MAX_INSTANCES)
        runner.start(first_delay=interval, scheduler=self.scheduler)

    def _event(self, event) -> None:
        with self._seen:
            if event.code == EVENT_JOB_SUBMITTED:
                self.submitted.append(len(event.scheduled_run_times))
            else:
                self.refused += 1
            self._seen.notify_all()

    def tick(self, missed: int = 0) -> None:
        """Make the job due (`missed` whole intervals late) and wait until the scheduler
        has either submitted it or refused it."""
        with self._seen:
            before = len(self.submitted) + self.refused
        late = timedelta(seconds=self.interval * missed + 1)
        self.scheduler.modify_job(JOB_ID, next_run_time=datetime.now(timezone.utc) - late)
        with self._seen:
            assert self._seen.wait_for(lambda: len(self.submitted) + self.refused > before, 10)

    def next_run_is_ahead(self) -> bool:
        job = self.scheduler.get_job(JOB_ID)
        return job.next_run_time > datetime.now(timezone.utc)


def test_schedule_never_overlaps_and_coalesces_missed_runs() -> None:
    fake = FakeRun()
    inside, most = [0], [0]
    lock = threading.Lock()
    original = fake.__call__

    def counting(config, *, dry_run=False, progress=None):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        try:
            return original(config, dry_run=dry_run, progress=progress)
        finally:
            with lock:
                inside[0] -= 1
    runner = Runner(config=make_config(update_interval=3600), run=counting)
    fake.hold()
    schedule = DrivenSchedule(runner, 3600)
    try:
        # Three run times are due at once (two missed): one run covers them all ...
        schedule.tick(missed=2)
        assert fake.entered.wait(10)
        assert schedule.submitted == [1] and schedule.refused == 0
        # ... and the next is an interval away, not a catch-up burst.
        assert schedule.next_run_is_ahead()
        # Due again while that run is held: refused, not queued behind it.
        schedule.tick(missed=1)
        assert schedule.submitted == [1] and schedule.refused == 1
        assert len(fake.calls) == 1
        fake.release.set()
        deadline = time.monotonic() + 10
        while not runner.history():
            assert time.monotonic() < deadline, "the held run never finished"
            time.sleep(0.01)
        # Nothing it refused runs once it has ended: the job waits for its next time ...
        assert len(fake.calls) == 1 and schedule.next_run_is_ahead()
        # ... and the schedule goes on.
        schedule.tick()
        assert schedule.submitted == [1, 1]
        deadline = time.monotonic() + 10
        while len(runner.history()) < 2:
            assert time.monotonic() < deadline, "the second scheduled run never finished"
            time.sleep(0.01)
    finally:
        fake.release.set()
        runner.shutdown()
    assert len(fake.calls) == 2
    assert most[0] == 1
    assert [r["trigger"] for r in runner.history()] == ["schedule", "schedule"]


def test_put_and_delete_are_retried_after_a_5xx_and_a_post_is_not(nodes) -> None:
    # README, Guarantees: "Reads (and PUT/DELETE) are retried with backoff"; no other test
    # makes a PUT or a DELETE fail once and looks for the retry.
    master, s1 = nodes(), nodes()
    master.seed(systems=[{"_id": "crm", "type": "system:url", "base_url": "http://x/"}],
                pipes=[{"_id": "crm-person", "type": "pipe",
                        "source": {"type": "json", "system": "crm", "url": "p"}}])
    master.add_fault(method="PUT", path="^/api/pipes/", status=500, times=1)
    first = orchestrator.run(load_config(environ(master, {"s1": (s1, ["crm"])})))
    assert first.outcome == "ok", first.as_json()
    puts = [r["status"] for r in master.requests()
            if r["method"] == "PUT" and r["path"].startswith("/api/pipes/")]
    assert puts[:2] == [500, 200]
    s1.emulator("DELETE", "/requests")
    s1.add_fault(method="DELETE", path="^/api/", status=503, times=1)
    back = orchestrator.run(load_config(environ(master, {"s1": (s1, [])})))
    assert back.outcome == "ok", back.as_json()
    deletes = [r for r in s1.requests() if r["method"] == "DELETE"]
    assert deletes[0]["status"] == 503
    assert deletes[1]["path"] == deletes[0]["path"] and deletes[1]["status"] in (200, 404)
    assert originals(s1, "pipes") == {} and originals(s1, "systems") == {}


@pytest.mark.parametrize("port", ["abc", "0", "65536", "5000; rm -rf /"])
def test_a_bad_port_exits_2_with_one_line_before_listening(port: str) -> None:
    env = {"MASTER_NODE": json.dumps({"_id": "m", "endpoint": "http://127.0.0.1:9",
                                      "jwt_token": "secret-token-do-not-echo"}),
           "SLAVE_NODES": json.dumps([{"_id": "s1", "endpoint": "http://127.0.0.1:10",
                                       "jwt_token": "secret-token-do-not-echo",
                                       "managed_systems": ["a"]}]), "PORT": port}
    done = subprocess.run([sys.executable, "-m", "service"], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=20)
    assert done.returncode == 2
    assert done.stdout == "" and done.stderr.count("\n") == 1
    assert done.stderr.startswith("configuration error: PORT: ")
    assert "do-not-echo" not in done.stderr


# --------------------------------------------------------------------------------------
# Attacks survived (the real process against emulator nodes)
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("authorization", [
    None, b"Bearer", b"Bearer ", b"Bearer wrong", b"Basic " + API_TOKEN.encode(),
    b"Bearer " + "☃".encode("utf-8") + API_TOKEN.encode(), b"Bearer \xff\xfe\xfd",
    b"Bearer " + API_TOKEN.encode() + b"\xc3", b"Bearer " + b"A" * 20_000])
def test_real_unauthorized_answers_are_json_one_line(real, authorization) -> None:
    cluster, service = real
    for method, path in (("POST", "/sync"), ("GET", "/plan")):
        status, headers, body = raw_request(service.port, with_auth(method, path, authorization))
        assert status == 401, (authorization, status, body[:200])
        assert headers["content-type"] == "application/json"
        assert headers["www-authenticate"].startswith("Bearer")
        assert "error" in assert_json_one_line(body)
        assert API_TOKEN.encode() not in body
    assert service.get("/health").status_code == 200


def test_real_page_escapes_ids_and_warnings(real) -> None:
    _, service = real
    page = service.get("/").text
    assert "<script>" not in page and "<img" not in page
    assert "<code>evil-&lt;script&gt;alert(1)&lt;script&gt;</code>" in page
    assert "<code>evil-&lt;script&gt;alert(1)&lt;script&gt;-in</code>" in page
    # (the id is not plain, so the message JSON-quotes it; the page then escapes the quotes)
    assert "&#34;ghost-&lt;img src=x onerror=alert(1)&gt;&#34; does not exist in the master" \
        in page


def test_real_log_has_no_forged_line_and_no_token(real) -> None:
    cluster, service = real
    # A node's JWT presented as the API token: refused, and not logged.
    assert service.post("/sync", headers={"Authorization": f"Bearer {cluster.tokens[0]}"}
                        ).status_code == 401
    status = service.get("/status").json()
    # The pipe with a newline in its id really moved: the attack reached the log.
    assert FORGED in status["placement"]["s1"]["pipes"]
    log = service.log()
    assert 'action create-pipe node="s1" id="forged\\n2030-01-01' in log
    assert not any(line.startswith("2030-01-01") for line in log.splitlines())
    assert "FORGED-ENTRY" in log
    for token in cluster.tokens:
        assert token not in log
        assert token not in json.dumps(status)


def test_real_metrics_parse(real) -> None:
    _, service = real
    answer = service.get("/metrics")
    assert answer.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    ok = next(s.value for s in families["sesam_orchestrator_runs"].samples
              if s.name.endswith("_total") and s.labels["outcome"] == "ok")
    assert ok >= 1
    done = {s.labels["kind"]: s.value for s in families["sesam_orchestrator_actions"].samples
            if s.name.endswith("_total") and s.labels["status"] == "done"}
    assert done["create-system"] == 2 and done["create-pipe"] == 3
    last = families["sesam_orchestrator_last_success_timestamp_seconds"].samples[0].value
    assert time.time() - 120 < last <= time.time() + 1


def test_real_concurrent_syncs_and_plans(real) -> None:
    cluster, service = real
    nodes = (cluster.master, cluster.s1)
    for node in nodes:
        node.latency_ms = 250
        node.emulator("DELETE", "/requests")
    n_sync, n_plan = 6, 4
    barrier = threading.Barrier(n_sync + n_plan)

    def call(kind: str) -> requests.Response:
        barrier.wait()
        if kind == "sync":
            return service.post("/sync", headers=service.auth)
        return service.get("/plan", headers=service.auth)
    try:
        with ThreadPoolExecutor(n_sync + n_plan) as pool:
            futures = [pool.submit(call, "sync") for _ in range(n_sync)]
            futures += [pool.submit(call, "plan") for _ in range(n_plan)]
            seen_running = False
            while not all(f.done() for f in futures):
                status = service.get("/status")
                assert status.status_code == 200
                seen_running |= status.json()["running"]
                time.sleep(0.05)
            answers = [f.result() for f in futures]
    finally:
        for node in nodes:
            node.latency_ms = 0
    syncs, plans = answers[:n_sync], answers[n_sync:]
    assert sorted(a.status_code for a in syncs) == [200] + [409] * (n_sync - 1)
    assert all(a.status_code == 200 and a.json()["dry_run"] is True for a in plans)
    assert all(a.json()["actions"] == [] for a in plans)        # steady state
    # /status answered while the run was in progress: it does not wait for the run. (How
    # fast it answers is the benchmark's business, not a test's.)
    assert seen_running
    # One reconciliation plus one read for all the plans, which arrived together and share
    # one (single flight, issue 17); none of them wrote anything.
    assert [r["path"] for r in cluster.master.requests()].count("/api/pipes") == 1 + 1
    assert not [r for node in nodes for r in node.requests()
                if r["method"] in ("POST", "PUT", "DELETE")]


def test_real_sigterm_during_a_run_lets_it_finish_then_exits_0(nodes) -> None:
    master, s1 = nodes(latency_ms=120), nodes(latency_ms=120)
    master.seed(systems=[{"_id": "crm", "type": "system:url", "base_url": "http://x/"}],
                pipes=[{"_id": f"crm-{i}", "type": "pipe",
                        "source": {"type": "json", "system": "crm", "url": str(i)}}
                       for i in range(3)])
    env = environ(master, {"s1": (s1, ["crm"])}, UPDATE_INTERVAL="3600")
    service = start(env, first_run_delay=3600, wait_first_run=False)
    try:
        thread, box = in_thread(lambda: service.post("/sync"))
        deadline = time.monotonic() + 10
        while "run started (api)" not in service.log():
            assert time.monotonic() < deadline, service.log()
            time.sleep(0.01)
        # The run is writing now: its first write has reached the slave.
        while not [r for r in s1.requests() if r["method"] in ("POST", "PUT", "DELETE")]:
            assert time.monotonic() < deadline, service.log()
            time.sleep(0.01)
        assert "run finished" not in service.log()
        code = stop_service(service)
        thread.join(5)
    finally:
        if service.proc.poll() is None:
            os.killpg(service.proc.pid, signal.SIGKILL)
            service.proc.wait()
    log = service.log()
    assert code == 0, log       # not stop_service's SIGKILL, sent 10 s after SIGTERM
    assert "Traceback" not in log
    # The run was not cut short: it finished, was logged, and then the process stopped.
    assert log.index("received SIGTERM") < log.index("run finished (api): outcome ok")
    assert log.index("run finished (api): outcome ok") < log.index(" stopped\n")
    assert "stopped in the middle of a run" not in log
    assert {f"crm-{i}" for i in range(3)} <= set(originals(s1, "pipes"))
    assert not listening(service.port)
