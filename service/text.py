"""Ids in messages: as they are when plain, JSON-quoted otherwise.

Ids are user input. Quoted, one with a newline or a quote in it cannot break a report entry
or a log line in two, or pass for a line of its own.
"""
from __future__ import annotations

import json
import re

_PLAIN = re.compile(r"[\w.:@+/-]+")


def name(value: object) -> str:
    text = str(value)
    return text if _PLAIN.fullmatch(text) else json.dumps(text, ensure_ascii=False)
