"""The typed steps of a plan.

A plan is data: an ordered tuple of actions that the executor can apply and a dry run can
show. Payloads are what an action writes; they can hold tokens (a ``system:url`` with a
literal ``jwt_token``), so they are left out of every repr and of ``describe()``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from service.core.generated import SyncPipe

Kind = Literal[
    "create-system",   # POST /systems (bulk when several are ready together)
    "update-system",   # PUT /systems/{id}/config
    "delete-system",   # DELETE /systems/{id}
    "create-pipe",     # POST /pipes (bulk when several are ready together)
    "update-pipe",     # PUT /pipes/{id}/config
    "delete-pipe",     # DELETE /pipes/{id}
    "delete-dataset",  # DELETE /datasets/{id}
    "reset-pipe",      # stop, wait idle, POST /pipes/{id}/pump operation=update-last-seen, verify
    "quiesce-pipe",    # disable and stop a pipe, wait idle: before its dataset is deleted
    "disable-pipe",    # POST /pipes/{id}/pump operation=disable
    "enable-pipe",     # POST /pipes/{id}/pump operation=enable (a pipe moved back to the master)
    "set-env",         # POST /env with the names whose values differ
]
# What became of a step: a run's executor says done, failed or skipped (executor.Result); a
# dry run's report says planned (plan_text).
Status = Literal["done", "failed", "skipped", "planned"]
# A config as an action writes or expects it: a sync pipe may be held as what it is made of
# (generated.SyncPipe: a first run's plan holds thousands), and `generated.built` makes it
# whole where it is sent, compared or shown.
Payload = Mapping[str, Any] | SyncPipe

@dataclass(frozen=True, slots=True)   # slots: a first run holds 10,000s
class Action:
    kind: Kind
    node: str
    id: str
    # What gets written: a component config for create/update, the env values for set-env.
    payload: Payload | None = field(default=None, repr=False, hash=False)
    # Indices (into Plan.actions) of the actions that must have succeeded before this one.
    after: tuple[int, ...] = ()
    # For an overwrite in the master: the original config the plan was based on. The
    # executor re-reads the component right before writing and skips the write when it
    # differs, so a user's upload is never overwritten (contract 3.5). None: no re-read.
    expect: Payload | None = field(default=None, repr=False, hash=False, compare=False)
    # Why the planner wants this step, for the person approving the plan ("move system crm
    # s2 -> s1", "revert a hand edit", ...). Never holds a config value.
    reason: str = field(default="", compare=False)
    # For a write: what the component (or the env values written) held when read, so a plan
    # can show the difference. None: nothing there yet (a create), or not a write.
    before: Payload | None = field(default=None, repr=False, hash=False, compare=False)

    def describe(self) -> dict[str, str]:
        """The public face of an action: safe to log, report and compare."""
        return {"kind": self.kind, "node": self.node, "id": self.id, "reason": self.reason}


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...] = ()
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    # True when a safety check stopped planning (master unreadable or empty): nothing may be
    # written.
    aborted: bool = False
    # Where components live once the plan is applied: {slave: {"systems": [..], "pipes": [..]}}.
    placement: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
