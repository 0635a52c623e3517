"""The service shell (Runner, Flask app, metrics) driven by a stand-in run function.

No node is contacted here: the stand-in returns scripted reports, and can hold a run open
so locking, 409 and /status during a run are observed deterministically. The real process
against emulator nodes is tested in test_the_served_process.py.
"""
from __future__ import annotations

import json
import jwt
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from emulator import make_token
from stand_in_run import (ACTIONS, API_TOKEN, HOSTILE, MASTER_TOKEN, SECRET, SLAVE_TOKEN, FakeRun,
                          in_thread, make, make_config, report)
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_SUBMITTED
from apscheduler.schedulers.background import BackgroundScheduler
from datetime import datetime, timedelta, timezone
from prometheus_client.parser import text_string_to_metric_families
from service.config import load_config
from service.web.app import create_app
from service.web.runner import JOB_ID, Runner
from service_process import assert_json_one_line


# --- endpoints ---

def test_health_answers_liveness_json() -> None:
    client, _, _ = make()
    answer = client.get("/health")
    assert answer.status_code == 200
    assert answer.json == {"status": "ok", "running": False}


def test_sync_answers_the_report_and_status_shows_it() -> None:
    client, _, fake = make()
    answer = client.post("/sync")
    assert answer.status_code == 200
    body = answer.json
    assert body["outcome"] == "ok" and body["dry_run"] is False
    assert body["actions"] == ACTIONS
    assert fake.calls == [{"dry_run": False}]

    status = client.get("/status").json
    assert status["running"] is False and status["progress"] is None
    assert status["last_report"]["actions"] == ACTIONS
    assert status["last_report"]["trigger"] == "api"
    assert [r["started"] for r in status["history"]] == [body["started"]]
    assert status["placement"] == {"s1": {"systems": ["crm"], "pipes": ["crm-person"]}}
    assert status["placement_as_of"] == body["finished"]
    assert "node s1: secret 'pw' missing" in status["warnings"]
    assert status["errors"] == []
    assert status["config"]["master"]["_id"] == "master"
    assert status["config"]["slaves"][0]["managed_systems"] == ["crm"]
    assert status["next_run"] is None   # the schedule was not started in this test


def test_status_before_any_run() -> None:
    client, _, _ = make()
    status = client.get("/status").json
    assert status["last_report"] is None and status["history"] == []
    assert status["placement"] == {} and status["warnings"] == []


def test_plan_is_a_dry_run_kept_out_of_history_and_metrics() -> None:
    client, runner, fake = make()
    answer = client.get("/plan")
    assert answer.status_code == 200
    assert answer.json["dry_run"] is True
    assert {a["status"] for a in answer.json["actions"]} == {"planned"}
    assert fake.calls == [{"dry_run": True}]
    assert runner.history() == []
    assert 'sesam_orchestrator_runs_total{outcome="ok"} 0.0' in client.get("/metrics").text
    assert client.post("/plan").status_code == 405
    assert client.get("/sync").status_code == 405


def test_history_keeps_the_last_20_newest_first() -> None:
    client, runner, _ = make()
    for _ in range(23):
        assert client.post("/sync").status_code == 200
    history = client.get("/status").json["history"]
    assert len(history) == 20
    last = runner.last_report()
    assert history[0] == {k: v for k, v in last.items() if k != "placement"}
    assert "placement" not in history[0] and last["placement"]


def test_placement_survives_an_aborted_run() -> None:
    fake = FakeRun()
    client, _, _ = make(fake=fake)
    client.post("/sync")
    fake.result = report(outcome="aborted", errors=["master: GET /pipes: 500"])
    client.post("/sync")
    status = client.get("/status").json
    assert status["last_report"]["outcome"] == "aborted"
    assert status["errors"] == ["master: GET /pipes: 500"]
    assert status["placement"] == {"s1": {"systems": ["crm"], "pipes": ["crm-person"]}}


# --- single flight ---

def test_sync_while_running_is_409_and_status_shows_progress() -> None:
    fake = FakeRun()
    client, runner, _ = make(fake=fake)
    fake.hold()
    thread, box = in_thread(lambda: client.post("/sync"))
    assert fake.entered.wait(5)

    busy = client.post("/sync")
    assert busy.status_code == 409
    assert "in progress" in busy.json["error"]
    assert busy.json["progress"]["done"] == 2 and busy.json["progress"]["total"] == 3

    status = client.get("/status").json
    assert status["running"] is True
    assert status["progress"]["trigger"] == "api"
    assert status["progress"]["last_action"] == ACTIONS[1]
    assert client.get("/health").json["running"] is True
    page = client.get("/")
    assert "A run is in progress" in page.text and "2 of 3 action(s) done" in page.text

    fake.release.set()
    thread.join(5)
    assert box["value"].status_code == 200
    assert len(fake.calls) == 1
    assert client.get("/status").json["running"] is False


def test_concurrent_syncs_run_exactly_once() -> None:
    fake = FakeRun()
    client, _, _ = make(fake=fake)
    fake.hold()
    n = 12
    start = threading.Barrier(n)

    def post() -> int:
        start.wait()
        return client.post("/sync").status_code

    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(post) for _ in range(n)]
        # All but the winner answer 409 without waiting for it.
        deadline = time.monotonic() + 5
        while sum(f.done() for f in futures) < n - 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sum(f.done() for f in futures) == n - 1
        fake.release.set()
        codes = sorted(f.result() for f in futures)
    assert codes == [200] + [409] * (n - 1)
    assert len(fake.calls) == 1


def test_plan_does_not_wait_for_a_run() -> None:
    fake = FakeRun()
    client, _, _ = make(fake=fake)
    fake.hold()
    thread, box = in_thread(lambda: client.post("/sync"))
    assert fake.entered.wait(5)
    # A dry run writes nothing, so it is answered while the real run holds the lock.
    answer = client.get("/plan")
    assert answer.status_code == 200 and answer.json["dry_run"] is True
    assert client.get("/status").json["running"] is True
    fake.release.set()
    thread.join(5)
    assert box["value"].status_code == 200


def test_a_crashing_run_is_a_failed_report_without_the_token() -> None:
    fake = FakeRun()
    fake.error = RuntimeError(f"boom near {SLAVE_TOKEN}")
    client, _, _ = make(fake=fake)
    answer = client.post("/sync")
    assert answer.status_code == 200
    assert answer.json["outcome"] == "failed"
    assert answer.json["errors"] == ["the run stopped on an internal error: RuntimeError: "
                                     "boom near [redacted]"]
    assert SLAVE_TOKEN not in client.get("/status").text
    # The service stays usable after a crash.
    fake.error = None
    assert client.post("/sync").json["outcome"] == "ok"


# --- API token ---

@pytest.mark.parametrize("method,path", [("POST", "/sync"), ("GET", "/plan")])
def test_api_token_guards_sync_and_plan(method: str, path: str) -> None:
    client, _, fake = make(api_token=API_TOKEN)
    for headers in ({}, {"Authorization": "Bearer wrong"},
                    {"Authorization": f"Basic {API_TOKEN}"},
                    {"Authorization": f"Bearer {API_TOKEN}x"},
                    {"Authorization": f"Bearer {API_TOKEN[:-1]}"},
                    {"Authorization": "Bearer"}):
        answer = client.open(path, method=method, headers=headers)
        assert answer.status_code == 401, headers
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert API_TOKEN not in answer.text
    assert fake.calls == []
    answer = client.open(path, method=method, headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert answer.status_code == 200
    assert len(fake.calls) == 1


def test_without_api_token_sync_and_plan_are_open_and_the_rest_always_is() -> None:
    client, _, _ = make()
    assert client.post("/sync").status_code == 200
    assert client.get("/plan").status_code == 200
    guarded, _, _ = make(api_token=API_TOKEN)
    for path in ("/", "/health", "/status", "/metrics"):
        assert guarded.get(path).status_code == 200, path


def test_no_response_carries_a_token() -> None:
    client, _, _ = make(api_token=API_TOKEN)
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    bodies = [client.post("/sync", headers=auth).text, client.get("/plan", headers=auth).text]
    bodies += [client.get(p).text for p in ("/", "/health", "/status", "/metrics")]
    bodies.append(client.post("/sync").text)
    status = client.get("/status").json
    assert status["config"]["api_token_required"] is True
    for body in bodies:
        for token in (MASTER_TOKEN, SLAVE_TOKEN, API_TOKEN):
            assert token not in body


# --- the page ---

def test_page_shows_placement_runs_and_warnings_escaped() -> None:
    fake = FakeRun(report(
        actions=[{"kind": "create-pipe", "node": "s1", "id": f"pipe-{HOSTILE}", "status": "done"}],
        warnings=[f"node s1: secret '{HOSTILE}' is missing"],
        errors=[f"pipe 'out-{HOSTILE}' cannot be placed"],
        placement={"s1": {"systems": [f"sys-{HOSTILE}"], "pipes": [f"pipe-{HOSTILE}"]}}))
    client, _, _ = make(fake=fake)
    before = client.get("/")
    assert before.status_code == 200 and before.mimetype == "text/html"
    assert "No run yet." in before.text
    client.post("/sync")
    page = client.get("/").text
    escaped = "&lt;b&gt;&amp;&#34;x&#39;&lt;/b&gt;"
    assert HOSTILE not in page and "<b>" not in page
    assert f"<code>sys-{escaped}</code>" in page          # placement map
    assert page.count(f"<code>pipe-{escaped}</code>") == 2  # placement and the run's actions
    assert f"node s1: secret &#39;{escaped}&#39; is missing" in page
    assert f"pipe &#39;out-{escaped}&#39; cannot be placed" in page
    assert 'class="ok">ok<' in page and "1 action(s)" in page


def test_expiring_token_shows_before_any_run() -> None:
    soon = make_token(SECRET, expires_in=3 * 86400)
    client, _, _ = make(master_token=soon)
    status = client.get("/status").json
    assert len(status["warnings"]) == 1
    assert status["warnings"][0].startswith("node master: its jwt_token expires soon")
    assert "node master: its jwt_token expires soon" in client.get("/").text
    assert soon not in client.get("/").text


# --- metrics ---

def sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


def test_metrics_count_runs_actions_duration_and_warnings() -> None:
    fake = FakeRun()
    client, _, _ = make(fake=fake)
    text = client.get("/metrics").text
    assert sample(text, "sesam_orchestrator_last_success_timestamp_seconds") == 0
    client.post("/sync")
    client.post("/sync")
    fake.result = report(outcome="failed", errors=["x"], warnings=["w1", "w2", "w3"],
                         actions=[{"kind": "delete-pipe", "node": "s1", "id": "p",
                                   "status": "failed"}])
    client.post("/sync")
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=")
    text = answer.text
    assert sample(text, 'sesam_orchestrator_runs_total{outcome="ok"}') == 2
    assert sample(text, 'sesam_orchestrator_runs_total{outcome="failed"}') == 1
    assert sample(text, 'sesam_orchestrator_runs_total{outcome="aborted"}') == 0
    assert sample(text, 'sesam_orchestrator_actions_total{kind="create-pipe",status="done"}') == 2
    assert sample(text,
                  'sesam_orchestrator_actions_total{kind="update-pipe",status="skipped"}') == 2
    assert sample(text,
                  'sesam_orchestrator_actions_total{kind="delete-pipe",status="failed"}') == 1
    assert sample(text, "sesam_orchestrator_run_duration_seconds_count") == 3
    assert sample(text, "sesam_orchestrator_warnings") == 3
    last_ok = sample(text, "sesam_orchestrator_last_success_timestamp_seconds")
    assert time.time() - 60 < last_ok <= time.time()


# --- logging ---

def test_one_log_line_per_action_and_warning_without_tokens(
        caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeRun(report(actions=ACTIONS + [{"kind": "create-pipe", "node": "s1",
                                              "id": "evil\nINFO forged", "status": "done"}],
                          warnings=["node s1: secret 'pw' missing", f"leak {MASTER_TOKEN}"],
                          errors=["pipe 'x' cannot be placed"]))
    client, _, _ = make(fake=fake, api_token=API_TOKEN)
    with caplog.at_level(logging.INFO, logger="service"):
        client.post("/sync", headers={"Authorization": f"Bearer {API_TOKEN}"})
    lines = [r.getMessage() for r in caplog.records]
    actions = [line for line in lines if line.startswith("action ")]
    # Two came through progress, the other two from the report: each exactly once.
    assert actions == ['action create-system node="s1" id="crm": done',
                       'action create-pipe node="s1" id="crm-person": done',
                       'action update-pipe node="master" id="crm-person": skipped',
                       'action create-pipe node="s1" id="evil\\nINFO forged": done']
    assert "warning: node s1: secret 'pw' missing" in lines
    assert "warning: leak [redacted]" in lines
    assert "error: pipe 'x' cannot be placed" in lines
    assert all("\n" not in line for line in lines)
    text = "\n".join(lines)
    for token in (MASTER_TOKEN, SLAVE_TOKEN, API_TOKEN):
        assert token not in text


# --- the schedule ---

def test_scheduler_runs_soon_after_start_then_reports_next_run() -> None:
    client, runner, fake = make(update_interval=3600)
    runner.start(first_delay=0.05)
    try:
        deadline = time.monotonic() + 5
        while not runner.history() and time.monotonic() < deadline:
            time.sleep(0.02)
        history = client.get("/status").json["history"]
        assert [r["trigger"] for r in history] == ["schedule"]
        next_run = client.get("/status").json["next_run"]
        # The next one is an interval away, not another immediate one.
        from datetime import datetime, timezone
        ahead = (datetime.fromisoformat(next_run) - datetime.now(timezone.utc)).total_seconds()
        assert 3500 < ahead <= 3600
        assert "Next scheduled run" in client.get("/").text
    finally:
        runner.shutdown()
    assert runner.next_run() is None


def test_scheduled_run_is_skipped_while_a_sync_runs() -> None:
    fake = FakeRun()
    client, runner, _ = make(fake=fake)
    fake.hold()
    thread, box = in_thread(lambda: client.post("/sync"))
    assert fake.entered.wait(5)
    runner._scheduled()   # what APScheduler calls; must not raise nor queue
    fake.release.set()
    thread.join(5)
    assert len(fake.calls) == 1
    assert [r["trigger"] for r in runner.history()] == ["api"]


def test_page_lists_at_most_200_actions_per_run_and_status_has_all() -> None:
    many = [{"kind": "create-pipe", "node": "s1", "id": f"p{i}", "status": "done"}
            for i in range(250)]
    client, _, _ = make(fake=FakeRun(report(actions=many), progress_steps=100))
    client.post("/sync")
    page = client.get("/").text
    assert "<code>p199</code>" in page and "<code>p200</code>" not in page
    assert "and 50 more (see /status)" in page
    assert len(client.get("/status").json["last_report"]["actions"]) == 250


def test_token_without_group_admin_shows_before_any_run() -> None:
    plain = make_token(SECRET, expires_in=90 * 86400, principals=["someone"])
    client, _, _ = make(master_token=plain)
    status = client.get("/status").json
    assert status["warnings"] == ["node master: its jwt_token is not issued to group:Admin, "
                                  "which copying env vars and reading secrets requires"]
    assert "is not issued to group:Admin" in client.get("/").text


def _far_token(exp: float) -> str:
    return jwt.encode({"exp": exp, "principals": ["group:Admin"]}, SECRET, algorithm="HS256")


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


# Found in the service review (fixed since).
@pytest.mark.parametrize("exp", [int(time.time() * 1000), 1e300], ids=["milliseconds", "1e300"])
def test_status_and_page_survive_a_token_with_an_out_of_range_exp(exp: float) -> None:
    client, _, _ = make(master_token=_far_token(exp))
    for path in ("/status", "/"):
        assert client.get(path).status_code == 200, path


# An attack from the service review, survived.
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


# An attack from the service review, survived.
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


# An attack from the service review, survived.
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


# An attack from the service review, survived.
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


# An attack from the service review, survived.
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


# An attack from the service review, survived.
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


def test_the_runner_hands_freed_heap_back_after_each_run_and_plan(monkeypatch):
    # The served process's next run starts from what it holds, not from the last peak; the
    # release is the Runner's, so a library call of orchestrator.run never collects for it.
    from service import heap
    fake = FakeRun()
    released: list[int] = []        # how many runs had been called at each release
    monkeypatch.setattr(heap, "release", lambda: released.append(len(fake.calls)))
    runner = Runner(config=make_config(), run=fake)
    runner.sync(trigger="api")
    runner.plan()
    assert released == [1, 2]
