"""Pure: does the data of each moved pipe flow? Read from the pipe runtimes a run fetches
anyway (the listings), so it costs no request.

A moved pipe's flow is its copy on the slave plus, in the master, the synchronising pipe that
pulls the copy's dataset back (`sync`), or, on the slave, the feeder that brings it the
master's dataset it sends out (`outbound`); a placeholder fed by nothing is the copy alone.
The flow is as fresh as its least fresh side: its last successful sync is the oldest of the
sides' last successful runs. More than STALE_FACTOR x its interval ago is a warning.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, NamedTuple, get_args

from service.core.names import FEEDER_PREFIX, name
from service.core.references import user_original
from service.core.snapshots import Component, NodeSnapshot, Runtime

STALE_FACTOR = 3
State = Literal["failing", "stale", "waiting", "unknown", "ok"]
STATES: tuple[State, ...] = get_args(State)     # worst first
FlowKind = Literal["sync", "outbound", "copy only"]     # what carries a flow's data (see above)
OK_SHOWN = 50          # healthy flows kept per slave between runs; the counts cover the rest


def _when(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return moment if moment is None or moment.tzinfo is not None else None


def _interval(comp: Component | None) -> int | None:
    return comp.interval if comp is not None else None


class Side(NamedTuple):
    """One pipe carrying a flow's data, as its runtime says it last ran."""
    role: str
    node: str
    pipe: str
    exists: bool
    ok: bool | None
    last_run: Any       # as the node's runtime has it (an ISO time when it is one)


# Tuples and slots, not dicts: a run holds one flow per moved pipe (10,000s) from its
# listings to its end, and as dicts with a dict per side they were ~0.9 KB each, made on
# top of the listings at a steady run's highest point.
@dataclass(frozen=True, slots=True)
class Flow:
    pipe: str
    slave: str
    kind: FlowKind
    sides: tuple[Side, ...]
    interval: int | None = None
    unreadable: bool = False
    # What `judge` says of it:
    state: State = "unknown"
    age_seconds: int | None = None
    last_success: str | None = None
    warning: str | None = None

    def as_json(self) -> dict[str, Any]:
        """As /status, the page and a run's report show it."""
        return {"pipe": self.pipe, "slave": self.slave, "kind": self.kind,
                "sides": [s._asdict() for s in self.sides], "interval": self.interval,
                "unreadable": self.unreadable, "state": self.state,
                "age_seconds": self.age_seconds, "last_success": self.last_success,
                "warning": self.warning}


def _side(role: str, node: str, pipe: str, comp: Component | None) -> Side:
    runtime = comp.runtime if comp is not None else Runtime()
    ok = runtime.get("success")
    return Side(role, node, pipe, comp is not None, ok if isinstance(ok, bool) else None,
                runtime.get("last-run"))


def _flow(pid: str, comp: Component, slave_id: str, snap: NodeSnapshot | None,
          master_id: str) -> tuple[FlowKind, tuple[Side, ...], Component | None]:
    """What carries the flow of a pipe moved to `slave_id`: its kind, its sides, and the
    component whose schedule says how often it should sync."""
    r = comp.roles
    copy = snap.pipes.get(pid) if snap is not None else None
    copied = _side("slave copy", slave_id, pid, copy)
    if r.source_type in ("json", "binary"):
        return "sync", (copied, _side("sync pipe", master_id, pid, comp)), comp
    if r.source_dataset and snap is not None and FEEDER_PREFIX + r.source_dataset in snap.pipes:
        # (No feeder: a pipe on the slave makes that dataset there; the copy is the flow.)
        feeder_id = FEEDER_PREFIX + r.source_dataset
        timer = snap.pipes[feeder_id]
        return "outbound", (_side("feeder", slave_id, feeder_id, timer), copied), timer
    return "copy only", (copied,), copy


def judge(flow: Flow, *, now: datetime) -> Flow:
    """State, last successful sync and its age, from the flow's sides (and a `last_success`
    remembered from an earlier run, when the sides' last runs failed since)."""
    sides = flow.sides
    successes = [_when(s.last_run) if s.ok else None for s in sides]
    known = [moment for moment in successes if moment is not None]
    last = min(known) if len(known) == len(successes) else _when(flow.last_success)
    age = int((now - last).total_seconds()) if last is not None else None
    interval = flow.interval
    state: State
    if flow.unreadable:
        state = "unknown"
    elif any(s.ok is False for s in sides) or not all(s.exists for s in sides):
        state = "failing"
    elif interval and age is not None and age > STALE_FACTOR * interval:
        state = "stale"
    elif last is None:
        state = "waiting"
    else:
        state = "ok"
    return replace(flow, state=state, age_seconds=age,
                   last_success=last.isoformat() if last is not None else None,
                   warning=_warning(flow, state, age))


def _warning(flow: Flow, state: State, age: int | None) -> str | None:
    where = f"flow of pipe {name(flow.pipe)} (slave {flow.slave})"
    if state == "failing":
        bad = [s for s in flow.sides if s.ok is False or not s.exists]
        what = "; ".join(f"{s.role} {name(s.pipe)} on {s.node} "
                         f"{'last run failed' if s.exists else 'is missing'}" for s in bad)
        return f"{where}: {what}"
    if state == "stale":
        return (f"{where}: not synced for {age} s, more than {STALE_FACTOR} x its interval of "
                f"{flow.interval} s")
    return None


def flows(master: NodeSnapshot, slaves: Mapping[str, NodeSnapshot | None], *,
          now: datetime) -> list[Flow]:
    """One entry per pipe the master says it moved, worst first."""
    out = []
    for pid, comp in sorted(master.pipes.items()):
        mark = user_original(comp)[1]
        slave_id = mark.get("slave") if mark is not None else None
        if not isinstance(slave_id, str) or slave_id not in slaves:
            continue
        kind, sides, timer = _flow(pid, comp, slave_id, slaves[slave_id], master.node_id)
        out.append(judge(Flow(pid, slave_id, kind, sides, interval=_interval(timer),
                              unreadable=slaves[slave_id] is None), now=now))
    return ordered(out)


def ordered(found: list[Flow]) -> list[Flow]:
    return sorted(found, key=lambda f: (STATES.index(f.state), f.slave, f.pipe))


def carry_over(new: list[Flow], seen: Mapping[tuple[str, str], str], *,
               now: datetime) -> list[Flow]:
    """A flow whose last runs failed keeps the last success an earlier run saw."""
    out = []
    for flow in new:
        earlier = seen.get((flow.slave, flow.pipe))
        if flow.last_success is None and earlier is not None:
            flow = judge(replace(flow, last_success=earlier), now=now)
        out.append(flow)
    return ordered(out)


def successes(found: list[Flow]) -> dict[tuple[str, str], str]:
    """(slave, pipe) -> last successful sync: all a later run needs of these flows."""
    return {(f.slave, f.pipe): f.last_success for f in found if f.last_success}


def counts(found: list[Flow]) -> dict[str, dict[str, int]]:
    """slave -> state -> number of flows."""
    out: dict[str, dict[str, int]] = {}
    for flow in found:
        per = out.setdefault(flow.slave, {})
        per[flow.state] = per.get(flow.state, 0) + 1
    return out


def shown(found: list[Flow], *, ok_per_slave: int = OK_SHOWN) -> list[Flow]:
    """Every flow that needs a look, and the first healthy ones of each slave: what the
    service keeps between runs (10,000 healthy flows would cost megabytes to say "ok")."""
    ok: dict[str, int] = {}
    out = []
    for flow in found:
        if flow.state == "ok":
            ok[flow.slave] = ok.get(flow.slave, 0) + 1
            if ok[flow.slave] > ok_per_slave:
                continue
        out.append(flow)
    return out
