"""A stand-in for service.orchestrator.run and the Flask app and Runner around it.

The stand-in returns scripted reports and can hold a run open, so tests of the service
shell (locking, 409, /status during a run, the page, metrics, logs) contact no node.
"""
from __future__ import annotations

import json
import threading
from typing import Any

from emulator import make_token
from service.config import Config, load_config
from service.report import Report
from service.web.app import create_app
from service.web.runner import Runner

SECRET = "fake-nodes-secret-0123456789-0123456789-abcdef"
MASTER_TOKEN = make_token(SECRET, expires_in=90 * 86400)
SLAVE_TOKEN = make_token(SECRET, expires_in=90 * 86400, principals=["group:Admin", "s1"])
API_TOKEN = "service-api-token-0123456789"
HOSTILE = '<b>&"x\'</b>'


def make_config(*, api_token: str | None = None, master_token: str = MASTER_TOKEN,
                update_interval: int = 1800) -> Config:
    env = {
        "MASTER_NODE": json.dumps({"_id": "master", "endpoint": "http://127.0.0.1:9/",
                                   "jwt_token": master_token}),
        "SLAVE_NODES": json.dumps([{"_id": "s1", "endpoint": "http://127.0.0.1:10/api",
                                    "jwt_token": SLAVE_TOKEN, "managed_systems": ["crm"]}]),
        "UPDATE_INTERVAL": str(update_interval),
    }
    if api_token is not None:
        env["API_TOKEN"] = api_token
    return load_config(env)


def report(*, outcome: str = "ok", dry_run: bool = False, actions: list[dict] | None = None,
           warnings: list[str] | None = None, errors: list[str] | None = None,
           placement: dict | None = None) -> Report:
    return Report(started="2024-01-01T00:00:00+00:00", finished="2024-01-01T00:00:01+00:00",
                  outcome=outcome, dry_run=dry_run, actions=list(actions or []),
                  warnings=list(warnings or []), errors=list(errors or []),
                  placement=placement if placement is not None else {})


ACTIONS = [{"kind": "create-system", "node": "s1", "id": "crm", "status": "done"},
           {"kind": "create-pipe", "node": "s1", "id": "crm-person", "status": "done"},
           {"kind": "update-pipe", "node": "master", "id": "crm-person", "status": "skipped"}]


class FakeRun:
    """Stands in for service.orchestrator.run; `hold()` keeps the next runs open."""

    def __init__(self, result: Report | None = None, *, progress_steps: int = 2) -> None:
        self.result = result or report(actions=ACTIONS, warnings=["node s1: secret 'pw' missing"],
                                       placement={"s1": {"systems": ["crm"],
                                                         "pipes": ["crm-person"]}})
        self.calls: list[dict[str, Any]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.progress_steps = progress_steps
        self.error: Exception | None = None

    def hold(self) -> None:
        self.release.clear()

    def __call__(self, config: Config, *, dry_run: bool = False, progress=None) -> Report:
        self.calls.append({"dry_run": dry_run})
        if not dry_run and progress is not None:
            # Report the first actions as done, as the executor would, then wait.
            for i, action in enumerate(self.result.actions[:self.progress_steps]):
                progress(i + 1, len(self.result.actions), action)
        if not dry_run:
            self.entered.set()
            assert self.release.wait(10), "test never released the run"
        if self.error is not None:
            raise self.error
        return report(outcome=self.result.outcome, dry_run=dry_run,
                      actions=[{**a, "status": "planned"} if dry_run else a
                               for a in self.result.actions],
                      warnings=self.result.warnings, errors=self.result.errors,
                      placement=self.result.placement)


def make(*, api_token: str | None = None, fake: FakeRun | None = None, **kw: Any):
    config = make_config(api_token=api_token, **kw)
    fake = fake or FakeRun()
    runner = Runner(config=config, run=fake)
    app = create_app(config=config, runner=runner)
    client = app.test_client()
    client.environ_base["HTTP_X_REQUESTED_WITH"] = "tests"  # a script, not a cross-site form: POST /sync refuses those
    return client, runner, fake


def in_thread(fn):
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.setdefault("value", fn()), daemon=True)
    thread.start()
    return thread, box
