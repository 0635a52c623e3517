"""Issue 14, point 8: every entry point's --help lists every command, and `python -m demo
--help` explains the demo without running it."""
from __future__ import annotations

import subprocess
import sys

from service.config import _VARIABLES
from repo_root import ROOT
from stand_in_run import make


def _help(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", *args, "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return done.stdout


def test_service_help_lists_every_mode_endpoint_and_variable():
    text = _help("service")
    for mode in ("--once", "--plan", "--version", "python -m service "):
        assert mode in text
    client, _, _ = make()
    routes = {(method, rule.rule) for rule in client.application.url_map.iter_rules()
              if rule.endpoint != "static" for method in rule.methods - {"HEAD", "OPTIONS"}}
    for method, path in routes:
        assert f"{method} {path}" in text, (method, path)
    for variable in _VARIABLES:
        assert variable in text, variable


def test_demo_help_does_not_run_the_demo():
    text = _help("demo")
    assert text.startswith("usage: python -m demo")
    assert "Orchestrate emulated nodes once" in text
    # The demo's own lines: it would print these as soon as it starts nodes.
    assert "Sesam orchestrator demo" not in text and "Stopped" not in text


def test_emulator_help_lists_serving_and_the_token_command():
    text = _help("emulator")
    assert "python -m emulator --jwt-secret K" in text
    assert "python -m emulator token --jwt-secret K [--no-admin] [--expires-in SECONDS]" in text
    token = _help("emulator", "token")
    assert "--no-admin" in token and "--expires-in" in token


def test_sandbox_help_does_not_start_it():
    text = _help("sandbox")
    assert "--port" in text and "Ctrl-C" in text and "Sandbox:" not in text
