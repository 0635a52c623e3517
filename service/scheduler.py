"""Runs reconciliations: one at a time, on a schedule or on request, and remembers them.

`Runner` is where the served app calls the orchestrator's `run`. It owns
- the single-flight lock: a second request while a run is in progress gets `Busy` (HTTP 409)
  instead of queueing, so POST /sync storms cannot pile up runs against production nodes;
- the shared plan: GET /plan callers arriving while a plan is being made wait for that one
  and all get it, so 16 callers cost one plan's reads and memory, not 16;
- the progress of the current run, the last reports and the next scheduled time, which
  /status and the page show;
- the APScheduler job that reconciles a few seconds after start and then every
  UPDATE_INTERVAL seconds (missed runs coalesced, never two at once);
- the log: one line per action and per warning, with node and component id, never a token.

The run function is injected (`run(config, *, dry_run, progress) -> Report`), so tests can
drive the Runner with a fake one.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections import Counter, deque
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Protocol

from apscheduler.schedulers.background import BackgroundScheduler

from .config import Config
from .metrics import Metrics
from .report import Report
from .tokens import token_warnings

log = logging.getLogger("service.runs")

Progress = Callable[[int, int, dict[str, Any]], None]
HISTORY = 20
REDACTED = "[redacted]"


class RunFunction(Protocol):
    def __call__(self, config: Config, *, dry_run: bool = False,
                 progress: Progress | None = None) -> Report: ...


class _Flight:
    """A dry run in progress, and the callers waiting to share its report."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.report: Report | None = None
        self.waiting = 0


class Busy(Exception):
    """A reconciliation is already in progress; `progress` says how far it is."""

    def __init__(self, progress: dict[str, Any] | None) -> None:
        super().__init__("a reconciliation is already in progress")
        self.progress = progress


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _one_line(text: str) -> str:
    # Component ids are user input: a newline in one must not forge a second log line.
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _key(action: dict[str, Any]) -> tuple[Any, ...]:
    return (action.get("kind"), action.get("node"), action.get("id"), action.get("status"))


def _quoted(value: object) -> str:
    return json.dumps(str(value), ensure_ascii=False)


class Runner:
    def __init__(self, *, config: Config, run: RunFunction, metrics: Metrics | None = None,
                 history: int = HISTORY, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] = _now) -> None:
        self._config = config
        self._run = run
        self.metrics = metrics if metrics is not None else Metrics()
        self._clock, self._now = clock, now
        self._run_lock = threading.Lock()     # held for the whole of a real run: single flight
        self._state_lock = threading.Lock()   # guards the fields below; held only briefly
        self._progress: dict[str, Any] | None = None
        self._history: deque[dict[str, Any]] = deque(maxlen=history)
        self._scheduler: BackgroundScheduler | None = None
        self._flight: _Flight | None = None   # the plan being made; guarded by _state_lock
        # Every token the service holds: scrubbed from anything it logs or answers, in case
        # some exception text ever carries one.
        tokens = [node.jwt_token.get_secret_value() for node in config.nodes]
        if config.api_token is not None:
            tokens.append(config.api_token.get_secret_value())
        self._tokens = tuple(sorted({t for t in tokens if t}, key=len, reverse=True))

    # --- running ---
    def sync(self, *, trigger: str = "api") -> Report:
        """One real reconciliation now; raises Busy if one is already running."""
        if not self._run_lock.acquire(blocking=False):
            raise Busy(self.progress())
        try:
            return self._reconcile(trigger)
        finally:
            self._run_lock.release()

    def plan(self) -> Report:
        """A dry run. It writes nothing, so it does not take the run lock, and it is not
        recorded in the history or the metrics. Single flight: a caller arriving while a
        plan is being made gets that plan (read moments before it asked), not a second one."""
        with self._state_lock:
            flight, leader = self._flight, self._flight is None
            if flight is None:
                flight = self._flight = _Flight()
            else:
                flight.waiting += 1
        if not leader:
            flight.done.wait()
            assert flight.report is not None
            return flight.report
        try:
            report = self._call(dry_run=True, progress=None, started=self._now())
            flight.report = report
        finally:
            with self._state_lock:
                self._flight = None
            if flight.report is None:   # only a BaseException gets here: followers get a report
                flight.report = Report(started=_iso(self._now()), outcome="failed", dry_run=True,
                                       errors=["the plan was interrupted"])
            flight.done.set()
        log.info("plan: %d action(s), %d warning(s), %d error(s); %d caller(s) shared it",
                 len(report.actions), len(report.warnings), len(report.errors),
                 1 + flight.waiting)
        return report

    def _reconcile(self, trigger: str) -> Report:
        started = self._now()
        with self._state_lock:
            self._progress = {"trigger": trigger, "started": _iso(started), "done": 0,
                              "total": None, "last_action": None}
        log.info("run started (%s)", trigger)
        logged: list[dict[str, Any]] = []
        t0 = self._clock()
        try:
            report = self._call(dry_run=False, progress=self._progress_callback(logged),
                                started=started)
        finally:
            with self._state_lock:
                self._progress = None
        duration = self._clock() - t0
        # Actions the run reported without calling progress (a stand-in run function, or the
        # executor's fallback for unreachable steps) get their log line now, so the log
        # holds every action exactly once.
        seen = Counter(_key(a) for a in logged)     # a Counter: runs may hold 10,000s
        for action in report.actions:
            if seen[_key(action)] > 0:
                seen[_key(action)] -= 1
            else:
                self._log_action(action)
        for warning in report.warnings:
            log.warning("warning: %s", _one_line(warning))
        for error in report.errors:
            log.error("error: %s", _one_line(error))
        log.info("run finished (%s): outcome %s, %d action(s), %d warning(s), %d error(s) "
                 "in %.1f s", trigger, report.outcome, len(report.actions),
                 len(report.warnings), len(report.errors), duration)
        self.metrics.record(report, duration=duration)
        entry = {**report.as_json(), "trigger": trigger, "duration_seconds": round(duration, 3)}
        with self._state_lock:
            self._history.append(entry)
        return report

    def _progress_callback(self, logged: list[dict[str, Any]]) -> Progress:
        def progress(done: int, total: int, action: dict[str, Any]) -> None:
            # The executor may call this from several worker threads at once.
            with self._state_lock:
                if self._progress is not None:
                    self._progress.update(done=done, total=total, last_action=dict(action))
                logged.append(dict(action))
            self._log_action(action)
        return progress

    def _call(self, *, dry_run: bool, progress: Progress | None, started: datetime) -> Report:
        """The injected run, with a crash turned into a `failed` report rather than a 500."""
        try:
            report = self._run(self._config, dry_run=dry_run, progress=progress)
        except Exception as exc:  # noqa: BLE001 - the service must outlive a broken run
            log.error("run crashed: %s", _one_line(self.redact(
                "".join(traceback.format_exception(exc)))))
            report = Report(started=_iso(started), finished=_iso(self._now()), outcome="failed",
                            dry_run=dry_run, errors=[self.redact(
                                f"the run stopped on an internal error: "
                                f"{type(exc).__name__}: {exc}")])
        report.warnings = [self.redact(w) for w in report.warnings]
        report.errors = [self.redact(e) for e in report.errors]
        return report

    def _log_action(self, action: dict[str, Any]) -> None:
        log.info("action %s node=%s id=%s: %s", action.get("kind"), _quoted(action.get("node")),
                 _quoted(action.get("id")), action.get("status"))

    def redact(self, text: str) -> str:
        for token in self._tokens:
            text = text.replace(token, REDACTED)
        return text

    # --- what /status and the page show ---
    @property
    def running(self) -> bool:
        return self._run_lock.locked()

    def progress(self) -> dict[str, Any] | None:
        with self._state_lock:
            return None if self._progress is None else dict(self._progress)

    def history(self) -> list[dict[str, Any]]:
        """The last reports of real runs, newest first; without their placement, which
        /status shows once (20 copies of a 10,000-pipe map would swamp the answer)."""
        with self._state_lock:
            return [{k: v for k, v in entry.items() if k != "placement"}
                    for entry in reversed(self._history)]

    def last_report(self) -> dict[str, Any] | None:
        with self._state_lock:
            return self._history[-1] if self._history else None

    def next_run(self) -> str | None:
        scheduler = self._scheduler
        job = scheduler.get_job("reconcile") if scheduler is not None else None
        moment = getattr(job, "next_run_time", None)
        return _iso(moment) if moment is not None else None

    def placement(self) -> tuple[dict[str, Any], str | None]:
        """Placement from the newest run that read the nodes, and when that run finished.

        An aborted run stopped before it knew the nodes, so the one before it says more."""
        with self._state_lock:
            for entry in reversed(self._history):
                if entry.get("outcome") != "aborted" and entry.get("placement"):
                    return entry["placement"], entry.get("finished")
        return {}, None

    def attention(self) -> dict[str, list[str]]:
        """What needs a person: the last run's warnings and errors, plus token warnings read
        now from the configuration, so an expiring token shows even before the first run."""
        warnings = token_warnings(self._config.nodes, now=self._now())
        last = self.last_report()
        if last is not None:
            warnings += last.get("warnings", [])
        errors = list(last.get("errors", [])) if last is not None else []
        return {"warnings": [self.redact(w) for w in dict.fromkeys(warnings)],
                "errors": errors}

    # --- the schedule ---
    def start(self, *, first_delay: float = 3.0) -> None:
        """Reconcile `first_delay` seconds from now, then every UPDATE_INTERVAL seconds."""
        scheduler = BackgroundScheduler(timezone=timezone.utc, job_defaults={
            # Never two at once, and after a pause (a busy host, a long run) one catch-up
            # run rather than a burst; no grace limit so a late run still happens.
            "max_instances": 1, "coalesce": True, "misfire_grace_time": None})
        scheduler.add_job(self._scheduled, "interval", id="reconcile",
                          seconds=self._config.update_interval,
                          next_run_time=self._now() + timedelta(seconds=first_delay))
        scheduler.start()
        self._scheduler = scheduler
        log.info("scheduler started: first run in %.0f s, then every %d s", first_delay,
                 self._config.update_interval)

    def _scheduled(self) -> None:
        try:
            self.sync(trigger="schedule")
        except Busy:
            log.info("scheduled run skipped: a run started through POST /sync is in progress")

    def shutdown(self) -> None:
        """Stop scheduling; a run in progress is not waited for (see `wait_idle`)."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a run in progress to end; True when none runs."""
        if self._run_lock.acquire(timeout=max(timeout, 0)):
            self._run_lock.release()
            return True
        return False
