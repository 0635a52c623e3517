"""A steady run's cost per pipe: each slave copy is compared with the config it should be
once per run. Comparing digests the wanted config (canonical JSON, then a hash), for every
copy every slave holds, every run; the cleanup takes the answer the writes worked out."""
from __future__ import annotations

from typing import Any

from service import orchestrator
from service.config import load_config
from service.core import opaque

from orchestration import environ

RULES = {"default": [["copy", "*"], ["add", "x", ["lower", "_S.y"]]], "b": [["copy", "_id"]]}


def test_a_steady_plan_compares_each_slave_copy_with_what_it_should_be_once(
        nodes, monkeypatch) -> None:
    master, slave = nodes(), nodes()
    pids = [f"crm-{i}" for i in range(5)]
    master.seed(systems=[{"_id": "crm", "type": "system:url", "base_url": "http://crm.invalid/"}],
                pipes=[{"_id": pid, "type": "pipe",
                        "source": {"type": "json", "system": "crm", "url": pid},
                        "transform": {"type": "dtl", "rules": RULES}}
                       for pid in pids])
    config = load_config(environ(master, {"s1": (slave, ["crm"])}))
    assert orchestrator.run(config).outcome == "ok"
    compared: list[str] = []
    equal = opaque.Digest.__eq__

    def counted_equal(self: opaque.Digest, other: Any) -> bool:
        if isinstance(other, dict) and "$config-group" in (other.get("metadata") or {}):
            compared.append(other["_id"])
        return equal(self, other)
    monkeypatch.setattr(opaque.Digest, "__eq__", counted_equal)
    report = orchestrator.run(config)
    assert report.outcome == "ok" and report.actions == [], report.as_json()
    assert sorted(compared) == pids
