"""Issue 14, point 7: `make sandbox` (python -m sandbox) starts emulated nodes loaded with
the demo configuration and the real service against them, prints what to open and curl,
and Ctrl-C stops everything."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
import sesamclient

from repo_root import ROOT
from service_process import free_port, listening


def test_sandbox_serves_a_first_run_and_stops_on_ctrl_c():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(iter(proc.stdout.readline, "")),
                              daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        status: dict = {}
        while not (status.get("last_report") or {}).get("outcome"):
            assert time.monotonic() < deadline, "".join(output)[-3000:]
            assert proc.poll() is None, "".join(output)
            try:
                status = requests.get(f"http://127.0.0.1:{port}/status", timeout=5).json()
            except requests.ConnectionError:
                time.sleep(0.2)
        assert status["last_report"]["outcome"] == "ok", status["last_report"]
        assert status["placement"]["s1"]["systems"] == ["my-oracle-system"]
        text = "".join(output)
        assert f"http://127.0.0.1:{port}/" in text
        assert f"curl -X POST -H 'X-Requested-With: curl' http://127.0.0.1:{port}/sync" in text
        token_file = Path(re.search(r"TOKEN=\$\(cat (\S+\.jwt)\)", text).group(1))
        token = token_file.read_text()
        assert token.count(".") == 2 and token not in text
        # Loading your own configuration, as README's "A sandbox" shows, with sesamclient.
        master_api = re.search(r"m1\s+master (\S+)", text).group(1)
        connection = sesamclient.Connection(sesamapi_base_url=master_api, jwt_auth_token=token)
        connection.add_pipes([{"_id": "oracle-invoices", "type": "pipe", "source": {
            "type": "json", "system": "my-oracle-system", "url": "invoices"}}])
        deadline = time.monotonic() + 60
        while True:     # 409: a scheduled run got there first; ask again once it is done
            answer = requests.post(f"http://127.0.0.1:{port}/sync",
                                   headers={"X-Requested-With": "curl"}, timeout=60)
            if answer.status_code != 409 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert answer.status_code == 200 and answer.json()["outcome"] == "ok", answer.text
        assert "oracle-invoices" in answer.json()["placement"]["s1"]["pipes"]
    finally:
        os.kill(proc.pid, signal.SIGINT)        # what Ctrl-C sends
        code = proc.wait(30)
        reader.join(5)
    assert code == 0, "".join(output)[-3000:]
    assert "Sandbox stopped" in "".join(output)
    assert not listening(port)
    assert not token_file.exists()
