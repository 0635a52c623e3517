"""A cold `python -m service --plan` against the demo's nodes, beside `python -c pass`.

A one-shot command pays for starting Python and importing the service before it reads a
node; this times the whole process, several times, alternating with a bare interpreter
started the same way, so the ratio says how much of it is ours whatever the machine.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from typing import Any

from emulator import EmulatorNode

from demo import scenario

from .scenarios import ROOT, median


def _wall_ms(args: list[str], env: dict[str, str]) -> tuple[float, int]:
    t0 = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, timeout=120)
    return round((time.perf_counter() - t0) * 1000, 1), done.returncode


def cold(*, repeat: int = 7) -> dict[str, Any]:
    nodes: dict[str, EmulatorNode] = {}
    onprem = scenario.OnPremise(scenario.ONPREM_DATA).start()
    try:
        for nid in (scenario.MASTER_ID, *scenario.SLAVES):
            nodes[nid] = EmulatorNode(jwt_secret=secrets.token_hex(32)).start()
        tokens = {nid: n.token(admin=True, expires_in=365 * 86_400) for nid, n in nodes.items()}
        shared = {scenario.MASTER_SECRET_KEY: tokens[scenario.MASTER_ID],
                  **{key: tokens[sid] for sid, (_, key) in scenario.SLAVES.items()},
                  "oracle-password": "x"}
        for node in nodes.values():
            node.seed(secrets=shared)
        nodes[scenario.MASTER_ID].seed(env=scenario.master_env(onprem.url),
                                       systems=scenario.master_systems(),
                                       pipes=scenario.master_pipes())
        env = {**os.environ, "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING",
               "MASTER_NODE": json.dumps({"_id": scenario.MASTER_ID,
                                          "endpoint": nodes[scenario.MASTER_ID].url,
                                          "jwt_token": tokens[scenario.MASTER_ID]}),
               "SLAVE_NODES": json.dumps([{"_id": sid, "endpoint": nodes[sid].url,
                                           "jwt_token": tokens[sid], "managed_systems": systems}
                                          for sid, (systems, _) in scenario.SLAVES.items()])}
        plan_ms: list[float] = []
        pass_ms: list[float] = []
        codes: set[int] = set()
        for _ in range(repeat):
            wall, code = _wall_ms([sys.executable, "-m", "service", "--plan"], env)
            plan_ms.append(wall)
            codes.add(code)
            pass_ms.append(_wall_ms([sys.executable, "-c", "pass"], env)[0])
    finally:
        for node in nodes.values():
            node.stop()
        onprem.stop()
    plan, bare = median(plan_ms), median(pass_ms)
    return {"scenario": "cold", "repeat": repeat, "wall_ms": plan, "wall_ms_runs": plan_ms,
            "python_pass_ms": bare, "python_pass_ms_runs": pass_ms,
            "ratio_to_python": round(plan / bare, 2) if bare else None,
            "outcome": "ok" if codes == {0} else f"exit codes {sorted(codes)}", "errors": []}
