"""The official sesamclient drives a whole life cycle against an emulated node."""
from __future__ import annotations

import sesamclient

from emulator import EmulatorNode


def test_sesamclient_life_cycle(node: EmulatorNode) -> None:
    conn = sesamclient.Connection(sesamapi_base_url=node.api_url, jwt_auth_token=node.token(),
                                  timeout=30)
    conn.add_systems([{"_id": "crm", "type": "system:url", "url_pattern": "http://crm/%s"}])
    system = conn.get_system("crm")
    system.modify({"type": "system:url", "url_pattern": "http://crm2/%s"})
    assert conn.get_system("crm").config["original"]["url_pattern"] == "http://crm2/%s"

    conn.add_pipes([{"_id": "p", "type": "pipe",
                     "source": {"type": "embedded", "entities": [{"_id": "e1"}, {"_id": "e2"}]}}])
    pipe = conn.get_pipe("p")
    assert pipe.config["effective"]["sink"]["dataset"] == "p"
    pipe.modify({"_id": "p", "type": "pipe",
                 "source": {"type": "embedded", "entities": [{"_id": "e1"}]}})
    assert [p.id for p in conn.get_pipes()] == ["p"]

    pump = conn.get_pipe("p").get_pump()
    assert "start" in pump.supported_operations
    pump.disable()
    assert conn.get_pipe("p").get_pump().is_disabled is True
    pump.enable()
    pump.start()
    pump.wait_for_pump_to_finish_running(timeout=10, poll_interval=0.01)
    assert pump.runtime["success"] is True
    pump.update_last_seen("0")
    pump.unset_last_seen()
    assert pump.last_seen is None

    conn.put_env_vars({"a": "1"})
    conn.post_env_vars({"b": "2"})
    assert conn.get_env_vars() == {"a": "1", "b": "2"}
    conn.delete_env_var("a")
    assert conn.get_env_vars() == {"b": "2"}
    conn.put_secrets({"s1": "v1"})
    conn.post_secrets({"s2": "v2"})
    assert sorted(conn.get_secrets()) == ["s1", "s2"]
    conn.delete_secret("s1")
    assert conn.get_secrets() == ["s2"]

    dataset = conn.get_dataset("p")
    assert [e["_id"] for e in dataset.get_entities()] == ["e1"]
    assert [d.id for d in conn.get_datasets()] == ["p"]
    dataset.delete()
    assert conn.get_dataset("p") is None

    pipe.delete()
    conn.get_system("crm").delete()
    assert conn.get_pipes() == [] and conn.get_systems() == []
    conn.close()
