"""What a node stores is its own: changing what was sent, or what was read back, after the
fact changes nothing on the node (emulator/copying.py makes the copies)."""
from __future__ import annotations

import pytest

from emulator.copying import json_copy
from emulator.store import Store


def test_a_copy_is_equal_and_shares_no_container() -> None:
    value = {"a": [1, 2.5, {"b": None, "c": True}], "d": "text", "e": {"f": [[]]}}
    copied = json_copy(value)
    assert copied == value
    copied["a"][2]["b"] = "changed"
    copied["e"]["f"][0].append(1)
    assert value == {"a": [1, 2.5, {"b": None, "c": True}], "d": "text", "e": {"f": [[]]}}


def test_what_is_not_json_is_refused_not_copied() -> None:
    with pytest.raises(ValueError, match="unmarshallable"):
        json_copy({"when": object()})


def test_a_written_config_and_a_read_entity_stay_the_node_s_own() -> None:
    store = Store()
    sent = {"_id": "p", "type": "pipe", "source": {"type": "embedded", "entities": [{"_id": "1"}]}}
    store.add("pipe", [sent])
    sent["source"]["entities"].append({"_id": "2"})
    assert store.get("pipe", "p")["config"]["original"]["source"]["entities"] == [{"_id": "1"}]

    dataset = store.dataset("d", create=True)
    entity = {"_id": "e", "tags": ["x"]}
    dataset.put(entity)
    entity["tags"].append("y")
    read = dataset.entities(since=None, limit=None, history=False, deleted=False)
    assert read[0]["tags"] == ["x"]
    read[0]["tags"].append("z")
    assert dataset.entities(since=None, limit=None, history=False, deleted=False)[0]["tags"] == ["x"]
