"""Ids in messages: as they are when plain, JSON-quoted otherwise.

Ids are user input. Quoted, one with a newline or a quote in it cannot break a report entry
or a log line in two, or pass for a line of its own.
"""
from __future__ import annotations

import json
import re

from .redaction import scrub

_PLAIN = re.compile(r"[\w.:@+/-]+")


def name(value: object) -> str:
    text = str(value)
    return text if _PLAIN.fullmatch(text) else json.dumps(text, ensure_ascii=False)


_MAX_MESSAGE = 300


def node_message(text: str) -> str:
    """A node's own message (a config error) for a report: one line, capped, and anything
    that looks like a credential blanked out, since the node may quote the config it
    refused (the run's report is redacted again as a whole, with the values it knows)."""
    return scrub(" ".join(text.split()))[:_MAX_MESSAGE]
