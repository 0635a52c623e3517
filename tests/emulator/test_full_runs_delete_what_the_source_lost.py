"""A full run (first run, or after a reset) deletes what its source no longer has."""
from __future__ import annotations

from emulator import EmulatorNode


def _source_node(nodes, entities: list[dict]) -> tuple[EmulatorNode, EmulatorNode]:
    """Node `a` holds dataset `people`; node `b` reads it with a json source."""
    a, b = nodes(), nodes()
    a.seed(pipes=[{"_id": "people", "type": "pipe",
                   "source": {"type": "embedded", "entities": entities}}])
    a.run_pipe("people")
    b.seed(secrets={"a-token": a.token()},
           systems=[{"_id": "a", "type": "system:url", "jwt_token": "$SECRET(a-token)",
                     "url_pattern": a.api_url + "/datasets/%s/entities?history=false"}],
           pipes=[{"_id": "people", "type": "pipe",
                   "source": {"type": "json", "system": "a", "url": "people",
                              "supports_since": True, "is_chronological": True}}])
    return a, b


def _live(node: EmulatorNode, dataset: str) -> list[str]:
    body = node.api("GET", f"/datasets/{dataset}/entities?history=false&deleted=false")[1]
    return sorted(e["_id"] for e in body)


def _set_embedded(node: EmulatorNode, pid: str, entities: list[dict], **extra: object) -> None:
    status, body = node.api("PUT", f"/pipes/{pid}/config", {
        "_id": pid, "type": "pipe", "source": {"type": "embedded", "entities": entities}, **extra})
    assert status == 200, body


def test_an_embedded_full_run_deletes_entities_it_no_longer_sees(node: EmulatorNode) -> None:
    first = [{"_id": "1"}, {"_id": "2"}, {"_id": "3"}]
    node.seed(pipes=[{"_id": "p", "type": "pipe",
                      "source": {"type": "embedded", "entities": first}}])
    node.run_pipe("p")
    _set_embedded(node, "p", [{"_id": "1"}])
    assert node.run_pipe("p")["runtime"]["success"] is True
    assert _live(node, "p") == ["1"]
    deleted = [e for e in node.api("GET", "/datasets/p/entities")[1] if e["_deleted"]]
    assert sorted(e["_id"] for e in deleted) == ["2", "3"]


def test_deletion_tracking_false_keeps_unseen_entities(node: EmulatorNode) -> None:
    node.seed(pipes=[{"_id": "p", "type": "pipe",
                      "source": {"type": "embedded", "entities": [{"_id": "1"}, {"_id": "2"}]}}])
    node.run_pipe("p")
    _set_embedded(node, "p", [{"_id": "1"}],
                  sink={"type": "dataset", "dataset": "p", "deletion_tracking": False})
    node.run_pipe("p")
    assert _live(node, "p") == ["1", "2"]


def test_incremental_run_deletes_nothing_but_a_reset_run_does(nodes) -> None:
    a, b = _source_node(nodes, [{"_id": "1"}, {"_id": "2"}])
    b.run_pipe("people")
    assert _live(b, "people") == ["1", "2"]
    # Entities vanish from b's copy's source only through a full run: wipe a's dataset and
    # give it a single, new entity.
    a.api("DELETE", "/datasets/people")
    _set_embedded(a, "people", [{"_id": "9"}])
    a.run_pipe("people")
    b.run_pipe("people")          # incremental: since=1 (a's new dataset has offset 0 only)
    assert _live(b, "people") == ["1", "2"]
    b.api("POST", "/pipes/people/pump", {"operation": "update-last-seen", "last-seen": ""})
    assert b.run_pipe("people")["runtime"]["success"] is True
    assert _live(b, "people") == ["9"]


def test_a_json_full_run_that_receives_nothing_deletes_everything(nodes) -> None:
    a, b = _source_node(nodes, [{"_id": "1"}, {"_id": "2"}])
    b.run_pipe("people")
    _set_embedded(a, "people", [])
    a.run_pipe("people")                       # a's dataset: both entities deleted
    a.api("DELETE", "/datasets/people")        # ... and then gone: the source answers []
    a.api("POST", "/pipes/people/pump", {"operation": "update-last-seen", "last-seen": ""})
    a.run_pipe("people")
    b.api("POST", "/pipes/people/pump", {"operation": "update-last-seen", "last-seen": ""})
    assert b.run_pipe("people")["runtime"]["success"] is True   # if_source_empty: accept
    assert _live(b, "people") == []


def test_if_source_empty_fail_keeps_the_dataset(nodes) -> None:
    a, b = _source_node(nodes, [{"_id": "1"}])
    b.run_pipe("people")
    _set_embedded(a, "people", [])
    a.api("DELETE", "/datasets/people")
    a.run_pipe("people")
    cfg = b.api("GET", "/pipes/people/config")[1]
    cfg["source"]["if_source_empty"] = "fail"
    assert b.api("PUT", "/pipes/people/config", cfg)[0] == 200
    b.api("POST", "/pipes/people/pump", {"operation": "update-last-seen", "last-seen": ""})
    pump = b.run_pipe("people")
    assert pump["runtime"]["success"] is False and "if_source_empty" in pump["runtime"]["last-error"]
    assert _live(b, "people") == ["1"]
