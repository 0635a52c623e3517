"""The served process under a big master: `python -m service` as the image runs it.

The service is started as its own process with the HTTP server up, against emulator nodes
in this process holding `pipes` pipes over `systems` systems on `slaves` slaves. Two runs
through POST /sync: the first (everything moves) and a steady one (nothing to do); during
each, `plans` concurrent GET /plan calls. The service's peak resident memory (VmHWM) is
read from /proc for each run, reset in between (/proc/<pid>/clear_refs), and also sampled,
so a peak between two readings is not missed where the reset is not allowed.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from .child import proc_memory
from .scenarios import ROOT, clear_logs, environ, master_content, request_counts, started, \
    system_id, WRITES

STARTUP_S = 60
# What the Dockerfile's ENV sets that changes the process's memory (kept equal by a test).
IMAGE_ENV = {"MALLOC_ARENA_MAX": "2"}
RUN_S = 1800


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reset_peak(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")      # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


class _Sampler:
    """The highest VmRSS seen, every 10 ms, in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, proc_memory(self.pid).get("VmRSS", 0.0))

    def __enter__(self) -> "_Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _call(method: str, url: str, timeout: float = RUN_S) -> tuple[int, Any, float]:
    t0 = time.perf_counter()
    # A script's POST /sync says so (X-Requested-With): the service refuses what a browser
    # form could send from another site.
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None,
                                     headers={"X-Requested-With": "bench"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            status, body = answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    return status, parsed, round((time.perf_counter() - t0) * 1000, 1)


def _wait(check: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"served benchmark: timed out waiting for {what}")
        time.sleep(0.05)


def _up(base: str, child: subprocess.Popen) -> bool:
    if child.poll() is not None:
        raise RuntimeError(f"python -m service exited with {child.returncode} at start")
    try:
        return _call("GET", base + "/health", timeout=2)[0] == 200
    except OSError:
        return False


def _run_with_plans(base: str, pid: int, plans: int) -> dict[str, Any]:
    """POST /sync, and `plans` GET /plan once the run is under way; peak memory meanwhile."""
    reset = _reset_peak(pid)
    with _Sampler(pid) as sampler, ThreadPoolExecutor(max_workers=1 + plans) as pool:
        sync = pool.submit(_call, "POST", base + "/sync")
        _wait(lambda: sync.done() or _call("GET", base + "/health", 5)[1].get("running"),
              "the run to start", 60)
        asked = [pool.submit(_call, "GET", base + "/plan") for _ in range(plans)]
        status, report, wall = sync.result()
        answers = [f.result() for f in asked]
    peak = max(proc_memory(pid).get("VmHWM", 0.0) if reset else 0.0, sampler.peak)
    return {"status": status, "outcome": (report or {}).get("outcome"),
            "errors": ((report or {}).get("errors") or [])[:3],
            "actions": len((report or {}).get("actions") or []), "wall_ms": wall,
            "plans": [{"status": s, "outcome": (r or {}).get("outcome"), "wall_ms": w}
                      for s, r, w in answers],
            "peak_rss_mb": round(peak, 1), "peak_from": "VmHWM" if reset else "sampled"}


def served(*, pipes: int, slaves: int, systems: int, realistic: bool, plans: int = 4,
           concurrency: int = 8, name: str | None = None) -> dict[str, Any]:
    per_slave = systems // slaves
    with started(1 + slaves, 0) as nodes:
        master, *slave_nodes = nodes
        master.seed(**master_content(systems, pipes // systems, 0, realistic=realistic))
        for s in slave_nodes:
            s.seed(secrets={"crm-token": "x"})
        managed = {f"slave{k + 1:02d}": (n, [system_id(k * per_slave + i)
                                              for i in range(per_slave)])
                   for k, n in enumerate(slave_nodes)}
        by_id = {"master": master, **{sid: n for sid, (n, _) in managed.items()}}
        port = _free_port()
        env = {**os.environ, **IMAGE_ENV, **environ(master, managed, concurrency),
               "PORT": str(port), "UPDATE_INTERVAL": str(30 * 86_400), "PYTHONPATH": str(ROOT)}
        base = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryFile() as errors:
            child = subprocess.Popen([sys.executable, "-m", "service"], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=errors)
            try:
                _wait(lambda: _up(base, child), "the service to answer /health", STARTUP_S)
                started_mb = proc_memory(child.pid).get("VmRSS", 0.0)
                first = _run_with_plans(base, child.pid, plans)
                clear_logs(by_id)
                steady = _run_with_plans(base, child.pid, plans)
                steady["writes"] = sum(v for r in request_counts(by_id).values()
                                       for m, v in r.items() if m in WRITES)
            except Exception:
                errors.seek(0)
                sys.stderr.write(errors.read().decode(errors="replace")[-3000:])
                raise
            finally:
                child.terminate()
                try:
                    child.wait(15)
                except subprocess.TimeoutExpired:
                    child.kill()
    default = f"served-{pipes}" + ("" if realistic else "-minimal")
    return {"scenario": name or default, "pipes": pipes, "systems": systems,
            "slaves": slaves, "shape": "realistic (20-rule DTL)" if realistic else "minimal",
            "concurrent_plans": plans, "rss_started_mb": round(started_mb, 1),
            "first": first, "steady": steady,
            "peak_rss_mb": max(first["peak_rss_mb"], steady["peak_rss_mb"]),
            "outcome": "ok" if first["outcome"] == steady["outcome"] == "ok" else "failed",
            "errors": first["errors"] + steady["errors"]}
