"""`python -m service --once` as processes forked from one that has imported the service.

The crash tests kill a real run with SIGKILL at many points, one process per point, and
starting Python and importing the service took most of each point's time (0.7 s of CPU).
A fork server pays that once per test worker: it imports the service, then for each run
forks a child that takes the run's environment and calls the command line's own entry
point (`service.__main__.main(["--once"])`). The child is a process of its own, with its
own sockets, so SIGKILL ends it in the middle of a write as it would end the command.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping

from repo_root import ROOT

# One line in, one line out: "run <env as JSON>" -> pid; "poll <pid>" -> "running" or the
# exit status as Popen's returncode says it (negative: the signal that ended it).
_SERVER = r"""
import json, os, sys
import service.__main__ as command
import service.orchestrator         # what --once would import on its first run

def status(code):
    return -os.WTERMSIG(code) if os.WIFSIGNALED(code) else os.WEXITSTATUS(code)

for line in sys.stdin:
    verb, _, arg = line.rstrip("\n").partition(" ")
    if verb == "run":
        pid = os.fork()
        if pid == 0:                 # the child: the command, then out, never back here
            code = 1
            try:
                os.environ.clear()
                os.environ.update(json.loads(arg))
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                code = command.main(["--once"], exit_fast=True)
            finally:
                os._exit(code)
        answer = str(pid)
    else:
        done, code = os.waitpid(int(arg), os.WNOHANG)
        answer = "running" if done == 0 else str(status(code))
    sys.stdout.write(answer + "\n")
    sys.stdout.flush()
"""


class ForkedRun:
    """The part of subprocess.Popen the crash tests use, for a forked `--once`."""

    def __init__(self, server: ServiceForks, pid: int) -> None:
        self._server, self.pid = server, pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            answer = self._server.ask(f"poll {self.pid}")
            if answer != "running":
                self.returncode = int(answer)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signum)

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"forked --once {self.pid}", timeout)
            time.sleep(0.005)
        assert self.returncode is not None
        return self.returncode


class ServiceForks:
    def __init__(self) -> None:
        self._proc = subprocess.Popen([sys.executable, "-c", _SERVER], cwd=ROOT, text=True,
                                      env={**os.environ, "PYTHONPATH": str(ROOT)},
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def ask(self, line: str) -> str:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()
        answer = self._proc.stdout.readline().strip()
        assert answer, f"the fork server ended (exit {self._proc.poll()})"
        return answer

    def once(self, env: Mapping[str, str]) -> ForkedRun:
        """`python -m service --once` with `env` as its whole environment."""
        return ForkedRun(self, int(self.ask("run " + json.dumps(dict(env)))))

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait(timeout=10)
