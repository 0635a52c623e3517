"""The record of one run: what was planned or done, and what a person should know.

Built from action descriptions and plain strings only, so it cannot hold a token.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:    # only named: service.core imports this module (through redaction)
    from service.core.flows import Flow

Outcome = Literal["ok", "failed", "aborted"]


@dataclass
class Report:
    started: str
    finished: str | None = None
    outcome: Outcome | None = None
    dry_run: bool = False
    actions: list[dict[str, Any]] = field(default_factory=list)   # describe() + actions.Status
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # Which systems and pipes the run left on which slave: {slave: {"systems": [..], "pipes": [..]}}
    placement: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # The digest of the plan this run made (plan_text.plan_id): POST /sync may name it.
    plan_id: str | None = None
    # A dry run's counts per kind and node (plan_text.summary).
    summary: dict[str, Any] | None = None
    # True when the run was asked for a plan id and the nodes had changed since: it wrote nothing.
    stale_plan: bool = False
    # Data-flow health of every moved pipe, from the runtimes read (flows.flows); None: not read.
    flows: list[Flow] | None = None

    def as_json(self, *, flow_objects: bool = False) -> dict[str, Any]:
        """The report as JSON values. `flow_objects`: its flows left as `Flow` objects, for a
        writer that turns each into JSON as it meets it (service/web/json_pieces.py): as
        dicts all at once, 10,000 flows are ~9 MB made at a dry run's end."""
        out: dict[str, Any] = {
            "outcome": self.outcome, "started": self.started, "finished": self.finished,
            "dry_run": self.dry_run, "actions": list(self.actions),
            "warnings": list(self.warnings), "errors": list(self.errors),
            "placement": self.placement}
        if self.plan_id is not None:
            out["plan_id"] = self.plan_id
        if self.summary is not None:
            out["summary"] = self.summary
        if self.stale_plan:
            out["stale_plan"] = True
        if self.flows is not None:
            out["flows"] = list(self.flows) if flow_objects else \
                [flow.as_json() for flow in self.flows]
        return out
