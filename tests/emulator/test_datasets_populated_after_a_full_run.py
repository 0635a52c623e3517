"""A dataset is populated after its pipe's first complete full run; `populated=true` says so."""
from __future__ import annotations

import http.client

from emulator import EmulatorNode

PEOPLE = [{"_id": str(i)} for i in range(6)]


def _seed(node: EmulatorNode, **sink: object) -> None:
    node.seed(pipes=[{"_id": "p", "type": "pipe",
                      "source": {"type": "embedded", "entities": PEOPLE},
                      "sink": {"type": "dataset", "dataset": "p", **sink}}])


def test_populated_true_is_404_until_the_first_complete_full_run(node: EmulatorNode) -> None:
    _seed(node)
    node.set_knobs(batch_size=2, fail_after_batches=1)
    pump = node.run_pipe("p")
    assert pump["runtime"]["success"] is False and pump["runtime"]["last-seen"] is None
    status, body = node.api("GET", "/datasets/p/entities")
    assert status == 200 and len(body) == 2               # half-written, readable as such
    assert node.api("GET", "/datasets/p/entities?populated=true")[0] == 404
    assert node.api("GET", "/datasets/p")[1]["runtime"]["populated"] is False
    node.set_knobs(fail_after_batches=None)
    assert node.run_pipe("p")["runtime"]["success"] is True
    status, body = node.api("GET", "/datasets/p/entities?populated=true")
    assert status == 200 and len(body) == 6
    assert node.api("GET", "/datasets/p")[1]["runtime"]["populated"] is True


def test_entities_answer_carries_the_x_dataset_headers(node: EmulatorNode) -> None:
    _seed(node)
    node.run_pipe("p")
    headers = _entity_headers(node, "p")
    first = headers["X-Dataset-Generation"]
    assert headers["X-Dataset-Populated"] == "true"
    assert headers["X-Dataset-Max-Updated"] == "5"
    # Deleted and created again: another generation, not populated until a full run.
    node.api("DELETE", "/datasets/p")
    node.set_knobs(batch_size=2, fail_after_batches=1)
    node.run_pipe("p")
    headers = _entity_headers(node, "p")
    assert headers["X-Dataset-Populated"] == "false"
    assert headers["X-Dataset-Generation"] not in (None, first)


def _entity_headers(node: EmulatorNode, dataset: str) -> dict[str, str | None]:
    """The X-Dataset-* headers of a dataset's entities answer."""
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
    try:
        conn.request("GET", f"/api/datasets/{dataset}/entities",
                     headers={"Authorization": "Bearer " + node.token()})
        resp = conn.getresponse()
        resp.read()
        return {h: resp.getheader(h) for h in
                ("X-Dataset-Generation", "X-Dataset-Populated", "X-Dataset-Max-Updated")}
    finally:
        conn.close()


def test_a_dataset_recreated_by_hand_is_not_populated(node: EmulatorNode) -> None:
    _seed(node)
    node.run_pipe("p")
    node.api("DELETE", "/datasets/p")
    node.set_knobs(batch_size=2, fail_after_batches=2)
    node.run_pipe("p")
    assert node.api("GET", "/datasets/p/entities?populated=true")[0] == 404


def test_set_initial_offset_never_and_onload(node: EmulatorNode) -> None:
    _seed(node, set_initial_offset="never")
    node.run_pipe("p")
    assert node.api("GET", "/datasets/p/entities?populated=true")[0] == 404
    node.seed(pipes=[{"_id": "q", "type": "pipe",
                      "sink": {"type": "dataset", "dataset": "q", "set_initial_offset": "onload"}}])
    assert node.api("GET", "/datasets/q/entities?populated=true") == (200, [])


def test_a_dataset_source_populates_its_sink_once_the_source_is_populated(node: EmulatorNode) -> None:
    _seed(node)
    node.seed(pipes=[{"_id": "copy", "type": "pipe",
                      "source": {"type": "dataset", "dataset": "p"}}])
    node.set_knobs(batch_size=2, fail_after_batches=1)
    node.run_pipe("p")                         # p: 2 of 6, not populated
    node.set_knobs(fail_after_batches=None)
    assert node.run_pipe("copy")["runtime"]["success"] is True
    assert node.api("GET", "/datasets/copy/entities?populated=true")[0] == 404
    node.run_pipe("p")
    node.run_pipe("copy")
    assert node.api("GET", "/datasets/copy/entities?populated=true")[0] == 200
