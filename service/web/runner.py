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

import logging
import re
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, TypeVar, overload

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler

from service import heap
from service.config import Config
from service.core import flows
from service.core.flows import carry_over
from service.core.leftovers import is_leftover_warning
from service.core.tokens import token_warnings
from service.logs import OncePer, log_action, log_findings, one_line
from service.redaction import REDACTED, for_tokens  # noqa: F401 - REDACTED: kept importable here
from service.report import Report
from service.web import history as history_file
from service.web.json_pieces import deflated, inflated
from service.web.metrics import Metrics

log = logging.getLogger("service.runs")

Progress = Callable[[int, int, dict[str, Any]], None]
HISTORY = 20
JOB_ID = "reconcile"    # the scheduled reconciliation's job in APScheduler
Trigger = Literal["api", "schedule"]    # what started a run: POST /sync or the timer
_Answer = TypeVar("_Answer")   # what a plan_as caller turns the shared report into
# tokens.py's warnings: the text names the node and, for expiry, the moment (so a new token
# with another expiry is a new warning, logged at once).
_TOKEN_WARNING = re.compile(r"^node \S+: its jwt_token ")


class RunFunction(Protocol):
    # `plan_id` is passed only when POST /sync names one (a stand-in that is never asked
    # for a plan may leave it out).
    def __call__(self, config: Config, *, dry_run: bool = False,
                 progress: Progress | None = None, plan_id: str | None = None) -> Report: ...


class _Flight:
    """A dry run in progress, and the callers waiting to share its report."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.report: Report | None = None
        self.answer: Any = None     # the report as the leader's caller encoded it, if it did
        self.waiting = 0


class Busy(Exception):
    """A reconciliation is already in progress; `progress` says how far it is."""

    def __init__(self, progress: dict[str, Any] | None) -> None:
        super().__init__("a reconciliation is already in progress")
        self.progress = progress


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _newest_placed(kept: list[history_file.Entry]) -> int | None:
    """Where in `kept` (newest first) the newest run that read the nodes is: an aborted run
    stopped before it knew them, so the one before it says more about the placement."""
    return next((i for i, e in enumerate(kept) if e.outcome != "aborted" and e.placed), None)


def _without_placement(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "placement"}


def _without_flows(report: Report) -> dict[str, Any]:
    """A plan as kept for review: its flows are kept apart (_keep_flows)."""
    kept = report.as_json(flow_objects=True)
    kept.pop("flows", None)
    return kept


def _key(action: dict[str, Any]) -> tuple[Any, ...]:
    return (action.get("kind"), action.get("node"), action.get("id"), action.get("status"))


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
        self._history: deque[history_file.Entry] = deque(
            map(history_file.pack, history_file.load(config.history_path)), maxlen=history)
        self._next_id = max((e.id for e in self._history), default=0) + 1
        self._scheduler: BaseScheduler | None = None
        # The last plan shown (GET /plan, or the interval's plan under SYNC_POLICY=manual).
        # Packed when it has steps, b"" when it has none, None when no plan was made since
        # the last run: as dicts, its placement alone held a string per pipe made while
        # reading, spread over the heap pages the run had used.
        self._pending: bytes | None = None
        # The newest data-flow health: what needs a look (flows.shown), the counts per slave
        # and state, and each flow's last successful sync for the next run to carry over.
        # The first and last packed (see _keep_flows).
        self._flows = deflated([])
        self._flow_counts: dict[str, dict[str, int]] = {}
        self._flow_successes = deflated([])
        # Every token the service holds, and anything shaped like a credential: scrubbed
        # from anything it logs or answers (the run redacts its report too; a crash's text
        # and a stand-in run's report are only redacted here).
        self._redactor = for_tokens(config.nodes, config.api_token.get_secret_value()
                                    if config.api_token is not None else None)
        # A token warning repeats on every run until the token is replaced: a line a day.
        self._daily = OncePer(clock=clock)
        self._flight: _Flight | None = None   # the plan being made; guarded by _state_lock
        # Datasets an earlier orchestrator may have left, as the newest plan found them: only
        # dry runs list datasets (leftovers.py), and /status shows them until the next plan.
        self._leftovers: list[str] = []

    # --- running ---
    def sync(self, *, trigger: Trigger = "api", plan_id: str | None = None) -> Report:
        """One real reconciliation now; raises Busy if one is already running. With
        `plan_id`, it writes only if the plan made now still has that id."""
        if not self._run_lock.acquire(blocking=False):
            raise Busy(self.progress())
        try:
            report = self._reconcile(trigger, plan_id)
        finally:
            self._run_lock.release()
        if not report.stale_plan:
            with self._state_lock:
                self._pending = None      # applied: whether anything is left, the next plan says
        return report

    def plan(self) -> Report:
        """A dry run. It writes nothing, so it does not take the run lock, and it is not
        recorded in the history or the metrics. Single flight: a caller arriving while a
        plan is being made gets that plan (read moments before it asked), not a second one."""
        return self.plan_as(None)

    @overload
    def plan_as(self, encode: None) -> Report: ...
    @overload
    def plan_as(self, encode: Callable[[Report], _Answer]) -> _Answer: ...

    def plan_as(self, encode: Callable[[Report], Any] | None) -> Any:
        """As `plan`, the report turned into an answer by `encode` once per flight: callers
        sharing a plan of thousands of actions share one encoded answer (MBs), not one each."""
        with self._state_lock:
            flight, leader = self._flight, self._flight is None
            if flight is None:
                flight = self._flight = _Flight()
            else:
                flight.waiting += 1
        if not leader:
            flight.done.wait()
            assert flight.report is not None
            if encode is None:
                return flight.report
            return flight.answer if flight.answer is not None else encode(flight.report)
        try:
            report = self._call(dry_run=True, progress=None, started=self._now())
            flight.report = report
            if encode is not None:
                flight.answer = encode(report)
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
        self._keep_flows(report)
        if report.outcome != "aborted" and report.plan_id is not None:
            self.metrics.record_plan(report)
            with self._state_lock:
                self._pending = deflated(_without_flows(report)) if report.actions else b""
                self._leftovers = [w for w in report.warnings if is_leftover_warning(w)]
        return report if encode is None else flight.answer

    def _reconcile(self, trigger: Trigger, plan_id: str | None = None) -> Report:
        started = self._now()
        with self._state_lock:
            self._progress = {"trigger": trigger, "started": _iso(started), "done": 0,
                              "total": None, "last_action": None}
        log.info("run started (%s)", trigger)
        # The actions already logged, counted by _key: a run may hold 10,000s of actions,
        # and a copy of each would be held to the end of the run.
        logged: Counter[tuple[Any, ...]] = Counter()
        t0 = self._clock()
        try:
            report = self._call(dry_run=False, progress=self._progress_callback(logged),
                                started=started, plan_id=plan_id)
        finally:
            with self._state_lock:
                self._progress = None
        duration = self._clock() - t0
        # Actions the run reported without calling progress (a stand-in run function, or the
        # executor's fallback for unreachable steps) get their log line now, so the log
        # holds every action exactly once.
        for action in report.actions:
            if logged[_key(action)] > 0:
                logged[_key(action)] -= 1
            else:
                log_action(action)
        log_findings((w for w in report.warnings
                      if not _TOKEN_WARNING.match(w) or self._daily.due(w)), report.errors)
        log.info("run finished (%s): outcome %s, %d action(s), %d warning(s), %d error(s) "
                 "in %.1f s", trigger, report.outcome, len(report.actions),
                 len(report.warnings), len(report.errors), duration)
        self.metrics.record(report, duration=duration)
        self._keep_flows(report)
        report.flows = None            # the Runner keeps what it shows; the rest can go
        entry = {**report.as_json(), "trigger": trigger, "duration_seconds": round(duration, 3)}
        entry.pop("flows", None)        # /status shows the newest once
        entry["counts"] = dict(Counter(str(a.get("status")) for a in report.actions))
        with self._state_lock:
            entry["id"] = self._next_id
            self._next_id += 1
            self._history.append(history_file.pack(entry))
            kept = list(self._history)
        history_file.save(self._config.history_path, kept)
        return report

    def _progress_callback(self, logged: Counter[tuple[Any, ...]]) -> Progress:
        def progress(done: int, total: int, action: dict[str, Any]) -> None:
            # The executor may call this from several worker threads at once.
            with self._state_lock:
                if self._progress is not None:
                    self._progress.update(done=done, total=total, last_action=dict(action))
                logged[_key(action)] += 1
            log_action(action)
        return progress

    def _call(self, *, dry_run: bool, progress: Progress | None, started: datetime,
              plan_id: str | None = None) -> Report:
        """The injected run, with a crash turned into a `failed` report rather than a 500."""
        extra = {"plan_id": plan_id} if plan_id is not None else {}
        try:
            report = self._run(self._config, dry_run=dry_run, progress=progress, **extra)
        except Exception as exc:  # noqa: BLE001 - the service must outlive a broken run
            log.error("run crashed: %s", one_line(self.redact(
                "".join(traceback.format_exception(exc)))))
            report = Report(started=_iso(started), finished=_iso(self._now()), outcome="failed",
                            dry_run=dry_run, errors=[self.redact(
                                f"the run stopped on an internal error: "
                                f"{type(exc).__name__}: {exc}")])
        finally:
            # The served process's next run (or plan) starts from what this one holds after
            # it, not from its peak. Here, not in the run itself: a full collection is the
            # process's business (a one-shot --once exits anyway).
            heap.release()
        return self._redactor.report(report)

    def redact(self, text: str) -> str:
        return self._redactor(text)

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
            kept = list(reversed(self._history))
        return [_without_placement(history_file.unpack(entry)) for entry in kept]

    def shown(self) -> dict[str, Any]:
        """What /status shows of the kept reports: the last one, the history, the placement
        and what needs a person, with each report parsed once (the newest, a first run's
        thousands of actions, is what last_report, history, placement and attention each
        read)."""
        with self._state_lock:
            kept = list(reversed(self._history))
        reports = [history_file.unpack(entry) for entry in kept]
        at = _newest_placed(kept)
        last = reports[0] if reports else None
        return {"last_report": last,
                "history": [_without_placement(r) for r in reports],
                "placement": reports[at]["placement"] if at is not None else {},
                "placement_as_of": reports[at].get("finished") if at is not None else None,
                **self._attention(last)}

    def report(self, run_id: int) -> dict[str, Any] | None:
        """One kept run's whole report, or None when it is not (or no longer) kept."""
        with self._state_lock:
            found = next((e for e in self._history if e.id == run_id), None)
        return history_file.unpack(found) if found is not None else None

    def last_report(self) -> dict[str, Any] | None:
        with self._state_lock:
            last = self._history[-1] if self._history else None
        return history_file.unpack(last) if last is not None else None

    def _keep_flows(self, report: Report) -> None:
        if report.flows is None:
            return
        with self._state_lock:
            seen = {(slave, pipe): when for slave, pipe, when in inflated(self._flow_successes)}
            found = carry_over(report.flows, seen, now=self._now())
            # Packed until the next run: kept as objects, thousands of flows made late in a
            # run and kept through the next one held on to the heap pages the run's own
            # objects had shared with them (make bench: ~2 MB at 3,000 pipes); as plain JSON
            # text, 1.3 MB of 3,000 flows waiting for a first sync. Each flow becomes JSON as
            # the packer meets it (json_pieces): as dicts all at once, 10,000 flows waiting
            # for a first sync were ~9 MB at a run's end.
            self._flows = deflated(flows.shown(found))
            self._flow_successes = deflated(
                [[slave, pipe, when] for (slave, pipe), when in flows.successes(found).items()])
            self._flow_counts = counted = flows.counts(found)
        self.metrics.record_flows(counted, found, [s.id for s in self._config.slaves])

    def flows(self) -> list[dict[str, Any]]:
        """The newest data-flow health, worst first (healthy ones capped per slave)."""
        with self._state_lock:
            kept = self._flows
        shown: list[dict[str, Any]] = inflated(kept)
        return shown

    def flow_counts(self) -> dict[str, dict[str, int]]:
        with self._state_lock:
            return {slave: dict(per) for slave, per in self._flow_counts.items()}

    def sync_state(self) -> dict[str, Any]:
        """The sync policy and, from the last plan shown, whether the nodes are out of sync
        (None: no plan since the last run) and that plan."""
        with self._state_lock:
            pending = self._pending
        return {"sync_policy": self._config.sync_policy,
                "out_of_sync": None if pending is None else bool(pending),
                "pending_plan": inflated(pending) if pending else None}

    def next_run(self) -> str | None:
        scheduler = self._scheduler
        job = scheduler.get_job(JOB_ID) if scheduler is not None else None
        moment = getattr(job, "next_run_time", None)
        return _iso(moment) if moment is not None else None

    def placement(self) -> tuple[dict[str, Any], str | None]:
        """Placement from the newest run that read the nodes, and when that run finished."""
        with self._state_lock:
            kept = list(reversed(self._history))
        at = _newest_placed(kept)
        if at is None:
            return {}, None
        entry = history_file.unpack(kept[at])
        return entry["placement"], entry.get("finished")

    def attention(self) -> dict[str, list[str]]:
        """What needs a person: the last run's warnings and errors, plus token warnings read
        now from the configuration, so an expiring token shows even before the first run."""
        return self._attention(self.last_report())

    def _attention(self, last: dict[str, Any] | None) -> dict[str, list[str]]:
        warnings = token_warnings(self._config.nodes, now=self._now())
        if last is not None:
            warnings += last.get("warnings", [])
        warnings += [f["warning"] for f in self.flows() if f.get("warning")]
        with self._state_lock:
            warnings += self._leftovers
        errors = list(last.get("errors", [])) if last is not None else []
        return {"warnings": [self.redact(w) for w in dict.fromkeys(warnings)],
                "errors": errors}

    # --- the schedule ---
    def start(self, *, first_delay: float = 3.0, scheduler: BaseScheduler | None = None) -> None:
        """Reconcile `first_delay` seconds from now, then every UPDATE_INTERVAL seconds.

        `scheduler` is where the job goes: a BackgroundScheduler unless a test hands in one
        it drives (moving the job's next run time through APScheduler's own API, so the
        test needs no sleeps). Not started yet: `start` starts it."""
        if scheduler is None:
            scheduler = BackgroundScheduler(timezone=UTC)
        # Never two at once, and after a pause (a busy host, a long run) one catch-up run
        # rather than a burst; no grace limit so a late run still happens. Given on the job,
        # not as the scheduler's defaults, so they hold on whichever scheduler runs it.
        scheduler.add_job(self._scheduled, "interval", id=JOB_ID,
                          seconds=self._config.update_interval,
                          next_run_time=self._now() + timedelta(seconds=first_delay),
                          max_instances=1, coalesce=True, misfire_grace_time=None)
        scheduler.start()
        self._scheduler = scheduler
        log.info("scheduler started: first run in %.0f s, then every %d s", first_delay,
                 self._config.update_interval)

    def _scheduled(self) -> None:
        if self._config.sync_policy == "manual":
            self.plan()         # shown for approval; applied only on POST /sync
            return
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
