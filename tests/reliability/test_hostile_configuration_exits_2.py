"""Issue 5, hostile and broken configuration: exit code 2, one line naming the field, no
request to any node, no token echoed."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hostile_configs import CASE_NAMES, TOKEN, cases, refused_once
from repo_root import ROOT


@pytest.mark.parametrize("name", CASE_NAMES)
def test_bad_configuration_exits_2_naming_the_field_and_sends_nothing(
        name, node, monkeypatch, capsys):
    environ, field = next((e, f) for n, e, f in cases(node.url) if n == name)
    err = refused_once(monkeypatch, capsys, environ)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("configuration error: " + field + ":"), lines[0]
    assert TOKEN not in err and "do-not-echo" not in err and "x" * 50 not in err
    assert node.requests() == []


def test_at_least_25_bad_configurations_are_covered():
    assert len(CASE_NAMES) >= 25 and len(set(CASE_NAMES)) == len(CASE_NAMES)


def test_the_real_process_exits_2_before_listening(node):
    environ = next(e for n, e, _ in cases(node.url) if n == "one system on two slaves")
    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_NODE", "SLAVE_NODES")}
    proc = subprocess.run([sys.executable, "-m", "service"], env={**env, **environ,
                          "PYTHONPATH": str(ROOT), "PORT": "5999"}, cwd=ROOT, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "configuration error: SLAVE_NODES[1].managed_systems: system 'a' is already managed "
        "by SLAVE_NODES[0]"]
    assert node.requests() == []
