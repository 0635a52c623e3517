"""One node's in-memory state. Every method takes the node lock, so handlers stay simple."""
from __future__ import annotations

import copy
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .copying import json_copy
from .datasets import Dataset
from .effective import pipe_effective, system_effective
from .kinds import Kind
from .validation import pipe_errors, refusal, system_errors, systems_named


class ApiError(Exception):
    """An HTTP error answer: status plus a one-line message (never a secret)."""

    def __init__(self, status: int, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body   # the whole answer, when it says more than the message


@dataclass
class RunKnobs:
    """Test knobs (POST /_emulator/config) that make runs take time, as on a real node."""
    batch_size: int = 0              # entities per committed batch; 0: one batch
    batch_delay_ms: int = 0          # pause after each committed batch
    fail_after_batches: int | None = None   # the run fails once this many batches committed
    deploy_ms: int = 0               # a pipe stays Deploying this long after a config write
    schedule_ms: int = 0             # the scheduler starts due pipes this often; 0: no scheduler


_INCARNATIONS = itertools.count(1)
# Pump state that outlives a config write (Sesam keeps it across redeploys).
_RUNTIME = ("disabled", "last_seen", "last_run", "running", "stop_requested", "full_run",
            "seen", "incarnation", "deploying_until")


@dataclass
class Pipe:
    original: dict[str, Any]
    effective: dict[str, Any]
    errors: list[dict[str, Any]]
    disabled: bool = False
    last_seen: str | None = None
    last_run: dict[str, Any] = field(default_factory=dict)
    running: bool = False
    stop_requested: bool = False
    full_run: bool = False           # a full run started and has not completed yet
    seen: set[str] = field(default_factory=set)   # ids that full run has written so far
    # A pipe deleted and created again is another pipe: a run of the old one commits nothing.
    incarnation: int = field(default_factory=lambda: next(_INCARNATIONS))
    deploying_until: float = 0.0     # time.monotonic() until which the pump is not deployed

    def deploying(self) -> bool:
        return time.monotonic() < self.deploying_until

    def as_json(self) -> dict[str, Any]:
        pid = self.original["_id"]
        return {"_id": pid,
                "config": {"original": self.original, "effective": self.effective},
                "runtime": {"is-running": self.running, "is-valid-config": not self.errors,
                            "is-disabled": self.disabled, "config-errors": self.errors,
                            "dependencies": _dependencies(self.effective),
                            "last-seen": self.last_seen, "queues": {},
                            # The pump's state is part of a pipe's runtime (hub/api.rst reads
                            # supported-operations there): once it has run, the last run's
                            # outcome and end.
                            **({"success": self.last_run.get("success"),
                                "last-run": self.last_run.get("finished")}
                               if self.last_run else {})}}


def _dependencies(effective: dict[str, Any]) -> list[str]:
    source = effective.get("source")
    if isinstance(source, dict) and source.get("type") == "dataset" and source.get("dataset"):
        return [source["dataset"]]
    return []


def _system_json(original: dict[str, Any], effective: dict[str, Any],
                 errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"_id": original["_id"], "type": original.get("type"),
            "config": {"original": original, "effective": effective},
            "runtime": {"is-valid-config": not errors, "config-errors": errors}}


def check_config(config: object, *, kind: Kind) -> dict[str, Any]:
    """400 unless `config` is a valid pipe/system config object."""
    if not isinstance(config, dict):
        raise ApiError(400, f"a {kind} config must be a JSON object")
    cid = config.get("_id")
    if not isinstance(cid, str) or not cid:
        raise ApiError(400, f"a {kind} config needs a string '_id'")
    ctype = config.get("type")
    if kind == "pipe" and ctype != "pipe":
        raise ApiError(400, f"pipe '{cid}': 'type' must be 'pipe'")
    if kind == "system" and not (isinstance(ctype, str) and ctype.startswith("system:")):
        raise ApiError(400, f"system '{cid}': 'type' must start with 'system:'")
    return json_copy(config)


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.pipes: dict[str, Pipe] = {}
        self.systems: dict[str, dict[str, Any]] = {}          # id -> original
        # id -> API object, computed at write time
        self.system_json: dict[str, dict[str, Any]] = {}
        self.pipe_json: dict[str, dict[str, Any]] = {}
        self.datasets: dict[str, Dataset] = {}
        self.env: dict[str, object] = {}
        self.secrets: dict[str, str] = {}
        # System-local secrets: system id -> name -> value; they die with their system.
        self.system_secrets: dict[str, dict[str, str]] = {}
        self.node_metadata: dict[str, Any] | None = None      # the `_id: node` entity of /config
        self._encoded: dict[str, dict[str, tuple[dict[str, Any], bytes]]] = {}   # see listing_raw
        self.knobs = RunKnobs()

    # --- whole-state copies, so a test can replay a run from the same start many times ---
    _STATE = ("pipes", "systems", "system_json", "pipe_json", "datasets", "env", "secrets",
              "system_secrets", "node_metadata")

    def save(self) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy({name: getattr(self, name) for name in self._STATE})

    def restore(self, saved: dict[str, Any]) -> None:
        with self.lock:
            for name, value in copy.deepcopy(saved).items():
                setattr(self, name, value)

    def reset(self) -> None:
        """Back to a new node's state: no config, datasets, env, secrets or knobs set."""
        with self.lock:
            fresh = Store()
            for name in (*self._STATE, "_encoded", "knobs"):
                setattr(self, name, getattr(fresh, name))

    # --- derived state, recomputed on write so reads are cheap ---
    def _pipe_errors(self,
                     original: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        eff, errors = pipe_effective(original, env=self.env)
        types = {sid: str(s.get("type")) for sid, s in self.systems.items()}
        return eff, errors + pipe_errors(original, eff, env=self.env, systems=types,
                                         system_ids=set(self.systems))

    def _system_errors(self, original: dict[str, Any]) -> list[dict[str, Any]]:
        names = set(self.secrets) | set(self.system_secrets.get(original["_id"], {}))
        return system_errors(original, env=self.env, secrets=names, pipe_ids=set(self.pipes))

    def _errors(self, kind: Kind, config: dict[str, Any]) -> list[dict[str, Any]]:
        return self._pipe_errors(config)[1] if kind == "pipe" else self._system_errors(config)

    def _refuse_invalid(self, kind: Kind, configs: list[dict[str, Any]], force: bool) -> None:
        """400 with every component's errors, unless forced (then they are stored invalid)."""
        if force:
            return
        rejected = [(c, errs) for c in configs if (errs := self._errors(kind, c))]
        if rejected:
            ids = ", ".join(repr(c["_id"]) for c, _ in rejected)
            raise ApiError(400, f"{kind} config errors in {ids}", body=refusal(kind, rejected))

    def _refresh_pipe(self, original: dict[str, Any], old: Pipe | None) -> None:
        eff, errors = self._pipe_errors(original)
        pipe = Pipe(original=original, effective=eff, errors=errors)
        if old is not None:
            for name in _RUNTIME:
                setattr(pipe, name, getattr(old, name))
        self.pipes[original["_id"]] = pipe
        self.pipe_json[original["_id"]] = pipe.as_json()

    def _refresh_all(self) -> None:
        self.refresh_systems()
        for pipe in list(self.pipes.values()):
            self._refresh_pipe(pipe.original, pipe)

    def refresh_systems(self) -> None:
        """Secrets changed (global or a system's own): systems may change validity."""
        with self.lock:
            for sid in self.systems:
                self._refresh_system_json(sid)

    def _refresh_system_json(self, sid: str) -> None:
        original = self.systems[sid]
        self.system_json[sid] = _system_json(original, system_effective(original, env=self.env),
                                             self._system_errors(original))

    def _refresh_system(self, sid: str) -> None:
        """A system came, changed or went: only pipes that name it (or share its id) can
        change validity."""
        if sid in self.systems:
            self._refresh_system_json(sid)
        for pipe in list(self.pipes.values()):
            if sid in systems_named(pipe.effective) or pipe.original["_id"] == sid:
                self._refresh_pipe(pipe.original, pipe)

    def pipe_changed(self, pid: str) -> None:
        """Runtime fields (disabled, last-seen) changed: rebuild the cached API object."""
        self.pipe_json[pid] = self.pipes[pid].as_json()

    # --- pipes and systems ---
    def add(self, kind: Kind, configs: object, *, force: bool = False) -> list[dict[str, Any]]:
        if not isinstance(configs, list):
            configs = [configs]
        checked = [check_config(c, kind=kind) for c in configs]
        with self.lock:
            existing = self.pipes if kind == "pipe" else self.systems
            seen: set[str] = set()
            for c in checked:
                if c["_id"] in existing or c["_id"] in seen:
                    raise ApiError(409, f"{kind} '{c['_id']}' already exists")
                seen.add(c["_id"])
            self._refuse_invalid(kind, checked, force)
            for c in checked:
                self._put(kind, c)
            table = self.pipe_json if kind == "pipe" else self.system_json
            # Not copied, as get() does not: API objects are replaced, never changed in place.
            return [table[c["_id"]] for c in checked]

    def _put(self, kind: Kind, config: dict[str, Any]) -> None:
        if kind == "pipe":
            self._refresh_pipe(config, self.pipes.get(config["_id"]))
            pipe = self.pipes[config["_id"]]
            if self.knobs.deploy_ms > 0:
                # A real node deploys a written pipe in the background: its pump is not there yet.
                pipe.deploying_until = time.monotonic() + self.knobs.deploy_ms / 1000
            if (pipe.effective.get("sink") or {}).get("set_initial_offset") == "onload":
                sink = pipe.effective["sink"]
                self.dataset(sink.get("dataset") or config["_id"], create=True).populated = True
            if config["_id"] in self.systems:
                self._refresh_system_json(config["_id"])
        else:
            self.systems[config["_id"]] = config
            self._refresh_system(config["_id"])

    def put_config(self, kind: Kind, config: dict[str, Any]) -> None:
        """Create or replace one checked config (a whole-config upload's step)."""
        with self.lock:
            self._put(kind, config)

    def replace(self, kind: Kind, cid: str, config: object, *,
                force: bool = False) -> dict[str, Any]:
        checked = check_config(config, kind=kind)
        if checked["_id"] != cid:
            raise ApiError(400, f"the config's _id does not match the {kind} id in the URL")
        with self.lock:
            self.get(kind, cid)
            self._refuse_invalid(kind, [checked], force)
            self._put(kind, checked)
            return self.get(kind, cid)

    def get(self, kind: Kind, cid: str) -> dict[str, Any]:
        with self.lock:
            table = self.pipe_json if kind == "pipe" else self.system_json
            if cid not in table:
                raise ApiError(404, f"no {kind} with that id")
            return table[cid]

    def delete(self, kind: Kind, cid: str) -> dict[str, Any]:
        with self.lock:
            found = self.get(kind, cid)
            if kind == "pipe":
                del self.pipes[cid], self.pipe_json[cid]
                if cid in self.systems:
                    self._refresh_system_json(cid)
            else:
                del self.systems[cid], self.system_json[cid]
                # security.rst: system secrets live until the system is removed.
                self.system_secrets.pop(cid, None)
                self._refresh_system(cid)
            return found

    def listing(self, kind: Kind) -> list[dict[str, Any]]:
        with self.lock:
            table = self.pipe_json if kind == "pipe" else self.system_json
            return list(table.values())

    def listing_raw(self, kind: Kind) -> bytes:
        """The listing as JSON bytes. Each component's API object is replaced (never changed
        in place) when it changes, so its encoding is reused while the object is the same:
        a node with thousands of pipes answers GET /pipes without encoding them all again."""
        with self.lock:
            table = self.pipe_json if kind == "pipe" else self.system_json
            cache = self._encoded.get(kind, {})
            fresh: dict[str, tuple[dict[str, Any], bytes]] = {}
            for cid, obj in table.items():
                hit = cache.get(cid)
                if hit is None or hit[0] is not obj:
                    hit = (obj, json.dumps(obj).encode("utf-8"))
                fresh[cid] = hit
            self._encoded[kind] = fresh
            return b"[" + b",".join(raw for _, raw in fresh.values()) + b"]"

    # --- env ---
    def set_env(self, values: object, *, replace: bool) -> dict[str, Any]:
        if not isinstance(values, dict):
            raise ApiError(400, "env must be a JSON object")
        with self.lock:
            if replace:
                self.env = {}
            self.env.update(json_copy(values))
            self._refresh_all()
            return dict(self.env)

    def delete_env(self, name: str) -> None:
        with self.lock:
            if name not in self.env:
                raise ApiError(404, "no env var with that name")
            del self.env[name]
            self._refresh_all()

    # --- secrets ---
    def set_secrets(self, values: object, *, replace: bool) -> list[str]:
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            raise ApiError(400, "secrets must be a JSON object of strings")
        with self.lock:
            if replace:
                self.secrets = {}
            self.secrets.update(values)
            self.refresh_systems()
            return sorted(self.secrets)

    def delete_secret(self, name: str) -> None:
        with self.lock:
            if name not in self.secrets:
                raise ApiError(404, "no secret with that name")
            del self.secrets[name]
            self.refresh_systems()

    # --- system-local secrets (names only ever leave the node) ---
    def system_secret_names(self, sid: str) -> list[str]:
        with self.lock:
            self.get("system", sid)
            return sorted(self.system_secrets.get(sid, {}))

    def set_system_secrets(self, sid: str, values: object, *, replace: bool) -> list[str]:
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            raise ApiError(400, "secrets must be a JSON object of strings")
        with self.lock:
            self.get("system", sid)
            held = {} if replace else dict(self.system_secrets.get(sid, {}))
            held.update(values)
            self.system_secrets[sid] = held
            return sorted(held)

    def delete_system_secret(self, sid: str, name: str) -> None:
        with self.lock:
            self.get("system", sid)
            if name not in self.system_secrets.get(sid, {}):
                raise ApiError(404, "no secret with that name for this system")
            del self.system_secrets[sid][name]

    def secrets_for(self, sid: str | None) -> dict[str, str]:
        """What `$SECRET(name)` in system `sid` can see: its own secrets over the global ones."""
        with self.lock:
            return {**self.secrets, **self.system_secrets.get(sid or "", {})}

    # --- datasets ---
    def dataset(self, did: str, *, create: bool = False) -> Dataset:
        with self.lock:
            if did not in self.datasets:
                if not create:
                    raise ApiError(404, "no dataset with that id")
                self.datasets[did] = Dataset(id=did)
            return self.datasets[did]
