"""`make demo` (`python -m demo`) works end to end and leaves nothing running."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from repo_root import ROOT
from service_process import listening as answers

# One worker runs this file: its module fixture (a process, nodes) starts once, not once per
# worker (pytest.ini: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("demo_runs_end_to_end")


@pytest.fixture(scope="module")
def demo() -> tuple[subprocess.CompletedProcess, float, dict[int, bool], bool]:
    """Run the demo once, in its own process group; right after it ends, look for survivors."""
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "demo"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    took = time.monotonic() - t0
    # Checked at once, so another test's server has no time to take one of these ports.
    match = re.search(r"ports ([\d, ]+) closed\.", stdout)
    ports = [int(p) for p in match.group(1).split(",")] if match else []
    listening = {port: answers(port) for port in ports}
    try:
        os.killpg(proc.pid, 0)      # any process left in the demo's group?
        survivors = True
    except ProcessLookupError:
        survivors = False
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return done, took, listening, survivors


def test_demo_exits_0_cleanly(demo) -> None:
    # How long it takes is measured for the README, not judged here (a busy machine is slow).
    done = demo[0]
    assert done.returncode == 0, done.stdout + done.stderr
    assert "RESULT: ok" in done.stdout
    assert "Traceback" not in done.stderr


def test_demo_shows_placement_before_and_after(demo) -> None:
    out = demo[0].stdout
    # label, id, before, after: columns of the placement table.
    for label, cid, before, after in [
        ("system", "my-oracle-system", "m1", "s1"),
        ("system", "my-url-system", "m1", "s2"),
        ("pipe", "oracle-customers", "m1", "s1"),
        ("pipe", "oracle-orders", "m1", "s1"),
        ("pipe", "crm-contacts", "m1", "s2"),
        ("pipe", "crm-customer-export", "m1", "s2"),
        ("pipe", "customer-summary", "m1", "m1"),
    ]:
        assert re.search(rf"^\s+{label}\s+{re.escape(cid)}\s+{before}\s+{after}\s", out, re.M), cid
    assert re.search(r"pipe\s+orchestrator-feed-customer-summary\s+-\s+s2\s", out)
    assert "outcome ok" in out


def test_demo_shows_entities_reaching_the_master(demo) -> None:
    out = demo[0].stdout
    counts = dict(re.findall(r"(\d+) entities in master dataset (\S+) \(synchronised", out))
    counts = {dataset: int(n) for n, dataset in counts.items()}
    # `orders` is oracle-orders' sink: a dataset not named after its pipe.
    assert set(counts) == {"oracle-customers", "orders", "crm-contacts"}, out
    assert all(n > 0 for n in counts.values()), counts
    fed = re.search(r"(\d+) entities in s2's copy of the master dataset customer-summary", out)
    assert fed and int(fed.group(1)) > 0, out
    # ... and the outbound pipe, run in s2, pushes them on to the on-premise system.
    pushed = re.search(r"crm-customer-export\s+(\d+) entities pushed to my-url-system", out)
    assert pushed and int(pushed.group(1)) == int(fed.group(1)), out
    assert re.search(r"on-premise stand-in received: crm/customers x(\d+)", out).group(1) == \
        pushed.group(1), out


def test_demo_prints_no_token(demo) -> None:
    done = demo[0]
    # Every token the emulators issue is a JWT, and a JWT's header starts with "eyJ".
    assert "eyJ" not in done.stdout + done.stderr


def test_demo_leaves_no_server_behind(demo) -> None:
    done, _, listening, survivors = demo
    assert len(listening) == 4, done.stdout    # master, two slaves, the on-premise stand-in
    announced = {int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)", done.stdout)}
    assert announced == set(listening)
    assert not any(listening.values()), listening
    assert not survivors, "a process of the demo's group is still running"
