"""Prometheus collectors for reconciliation runs.

The collectors live on a private CollectorRegistry rather than the process-wide default one,
so each Runner (and each test) starts from zero and /metrics shows only what we define.
Only real reconciliations are recorded: a dry run (/plan) changes nothing on the nodes.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import get_args

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from service.core.flows import STATES as FLOW_STATES
from service.core.flows import Flow
from service.report import Outcome, Report
from service.version import __version__

OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
PREFIX = "sesam_orchestrator"
# Runs read every node and may write many components; seconds to tens of minutes.
DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, float("inf"))


class Metrics:
    """The service's collectors; `record(report, duration=...)` after each run."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        self.runs = Counter(f"{PREFIX}_runs", "Reconciliation runs by outcome.",
                            ["outcome"], registry=self.registry)
        self.duration = Histogram(f"{PREFIX}_run_duration_seconds",
                                  "Wall-clock duration of a reconciliation run.",
                                  buckets=DURATION_BUCKETS, registry=self.registry)
        self.actions = Counter(f"{PREFIX}_actions", "Actions taken, by kind and status.",
                               ["kind", "status"], registry=self.registry)
        self.last_success = Gauge(f"{PREFIX}_last_success_timestamp_seconds",
                                  "Unix time at which the last run with outcome ok finished "
                                  "(0 until one has).", registry=self.registry)
        self.warnings = Gauge(f"{PREFIX}_warnings", "Warnings reported by the last run.",
                              registry=self.registry)
        # The usual build-info idiom: always 1, the version in a label, so dashboards can
        # show which version ran when.
        Gauge(f"{PREFIX}_build_info", "The running service's version (the value is 1).",
              ["version"], registry=self.registry).labels(version=__version__).set(1)
        self.out_of_sync = Gauge(f"{PREFIX}_out_of_sync",
                                 "1 when the last plan had steps to apply (SYNC_POLICY=manual "
                                 "waits for POST /sync), 0 when it had none.",
                                 registry=self.registry)
        self.planned = Gauge(f"{PREFIX}_planned_actions", "Steps in the last plan.",
                             registry=self.registry)
        # Labels bounded by the configuration: one series per slave and state, never per pipe.
        self.flows = Gauge(f"{PREFIX}_flows", "Moved pipes' data flows by slave and state "
                           "(ok, waiting, stale, failing, unknown).", ["slave", "state"],
                           registry=self.registry)
        self.flow_age = Gauge(f"{PREFIX}_flow_oldest_sync_age_seconds",
                              "Seconds since the least recently synced flow of a slave last "
                              "synced successfully.", ["slave"], registry=self.registry)
        # Every outcome shows from the start, so a rate() over "failed" is 0, not absent.
        for outcome in OUTCOMES:
            self.runs.labels(outcome=outcome)

    def record(self, report: Report, *, duration: float) -> None:
        outcome = report.outcome or "failed"   # a run without an outcome did not finish well
        self.runs.labels(outcome=outcome).inc()
        self.duration.observe(max(duration, 0.0))
        for action in report.actions:
            self.actions.labels(kind=str(action.get("kind", "?")),
                                status=str(action.get("status", "?"))).inc()
        if outcome == "ok":
            self.last_success.set(self._clock())
        self.warnings.set(len(report.warnings))

    def record_plan(self, report: Report) -> None:
        """The last plan (a dry run): out of sync when it has steps to apply."""
        self.planned.set(len(report.actions))
        self.out_of_sync.set(1 if report.actions else 0)

    def record_flows(self, counts: dict[str, dict[str, int]], flows: list[Flow],
                     slaves: list[str]) -> None:
        """Every slave and state shows (0 when none), so an alert on "failing" has a series.
        Each series is set again, not cleared and made anew: the slaves are the
        configuration's, and series made at every run's end are small objects that would hold
        on to the heap pages the run used (service/web/history.py)."""
        oldest: dict[str, int] = {}
        for flow in flows:
            if flow.age_seconds is not None:
                oldest[flow.slave] = max(oldest.get(flow.slave, 0), flow.age_seconds)
        for slave in slaves:
            for state in FLOW_STATES:
                self.flows.labels(slave=slave, state=state).set(
                    counts.get(slave, {}).get(state, 0))
            if slave in oldest:
                self.flow_age.labels(slave=slave).set(oldest[slave])
            else:
                self.flow_age.remove(slave)       # none synced yet: no age to show

    def exposition(self) -> bytes:
        """The Prometheus text format of everything above."""
        return generate_latest(self.registry)
