"""A moved system's secrets may be local to it on the slave (issue 12, point 7)."""
from __future__ import annotations

import json

from contract_helpers import YEAR, Cluster, crm_system, ids


def _secret_warnings(report, slave: str) -> list[str]:
    return [w for w in report.warnings if w.startswith(f"slave {slave}:") and "secret" in w]


def _crm_reads_through_a_secret(nodes) -> tuple[Cluster, str]:
    """crm's token is `$SECRET(crm-token)`: the master holds that secret, and so does every
    slave, globally. Returns the cluster and the secret's value."""
    c = Cluster(nodes, seed=False)
    value = c.src.token(expires_in=YEAR)
    crm = {**crm_system(c.src), "jwt_token": "$SECRET(crm-token)"}
    c.master.seed(secrets={"crm-token": value}, systems=[crm, c.systems[1]], pipes=c.pipes)
    for slave in c.slaves.values():
        slave.seed(secrets={"crm-token": value})
    return c, value


def test_a_secret_the_slave_holds_for_the_system_is_not_missing(nodes) -> None:
    c, value = _crm_reads_through_a_secret(nodes)
    cfg = c.config()
    report = c.run(cfg)
    assert report.outcome == "ok" and not _secret_warnings(report, "s1"), report.warnings
    s1 = c.slaves["s1"]

    # The slave's global secret goes: the warning names the system and how to set it there.
    assert s1.api("DELETE", "/secrets/crm-token")[0] == 200
    report = c.run(cfg)
    (warning,) = _secret_warnings(report, "s1")
    assert "system crm" in warning and "crm-token" in warning
    assert "PUT /systems/crm/secrets" in warning
    assert value not in json.dumps(report.as_json())

    # Set locally for the system on the slave: no warning, and the pipe reads through it.
    assert s1.api("PUT", "/systems/crm/secrets", {"crm-token": value})[0] == 200
    s1.clear_requests()
    report = c.run(cfg)
    assert not _secret_warnings(report, "s1"), report.warnings
    assert any(r["path"] == "/api/systems/crm/secrets" for r in s1.requests())
    assert not any(r["path"].endswith("/secrets") and "/systems/" in r["path"]
                   for r in c.master.requests())
    pump = s1.run_pipe("crm-person")
    assert pump["runtime"]["success"] is True, pump["runtime"]["last-error"]


def test_local_secret_names_unreadable_is_said_not_guessed(nodes) -> None:
    c, value = _crm_reads_through_a_secret(nodes)
    cfg = c.placed()
    s1 = c.slaves["s1"]
    s1.api("PUT", "/systems/crm/secrets", {"crm-token": value})
    s1.api("DELETE", "/secrets/crm-token")
    s1.add_fault(method="GET", path="^/api/systems/crm/secrets$", status=403, times=100)
    report = c.run(cfg)
    # no guess that the secret is missing: the slave may well hold it for the system
    assert not any("holds neither" in w for w in report.warnings), report.warnings
    assert any("cannot read the local secret names of system crm" in w and
               "read the names of that system's local secrets" in w
               for w in report.warnings), report.warnings


# --- adversarial review (breaker) ---

def test_a_first_move_of_a_system_with_a_local_secret_can_be_completed_as_advised(nodes) -> None:
    """The master holds crm's token as a secret local to crm (as Sesam recommends). s1 holds
    neither it nor crm yet. Whatever the run says to do on s1, doing it lets the next run move
    crm: advice to PUT /systems/crm/secrets on s1 must be followable there."""
    import re

    c = Cluster(nodes, seed=False)
    value = c.src.token(expires_in=YEAR)
    crm = {**crm_system(c.src), "jwt_token": "$SECRET(crm-token)"}
    # A system's local secret can only be set once the system exists: it is created first
    # (forced: its secret is not there yet), then given its secret, and so becomes valid.
    assert c.master.api("POST", "/systems?force=true", [crm])[0] in (200, 201)
    assert c.master.api("PUT", "/systems/crm/secrets", {"crm-token": value})[0] == 200
    c.master.seed(systems=[c.systems[1]], pipes=c.pipes)
    cfg = c.config()
    report = c.run(cfg)
    assert value not in json.dumps(report.as_json())
    s1 = c.slaves["s1"]
    advice = [w for w in report.warnings if w.startswith("slave s1:") and "crm-token" in w]
    assert advice, report.warnings
    path = re.search(r"PUT (/systems/\S+/secrets)", advice[0])
    if path:        # the operator does what the warning says
        status, body = s1.api("PUT", path.group(1), {"crm-token": value})
        assert status == 200, f"advised {path.group(1)} answers {status} on s1: {body}"
    else:
        assert re.search(r"POST /secrets", advice[0]), advice[0]
        assert s1.api("POST", "/secrets", {"crm-token": value})[0] == 200
    report = c.run(cfg)
    assert report.outcome == "ok", (report.errors, report.warnings)
    assert "crm" in ids(s1, "systems")
    assert s1.run_pipe("crm-person")["runtime"]["success"] is True
