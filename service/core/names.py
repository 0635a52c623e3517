"""Names: those of the components the orchestrator creates in slaves (see docs/design.md),
and how an id is written into a message or a URL path.

Ids are user input. In a message an id is JSON-quoted unless plain, so one with a newline or
a quote in it cannot break a report entry or a log line in two, or pass for a line of its
own. In a URL path an id is one segment, whatever it holds.

Kept apart so the configuration can refuse generated names as user ids without importing
the planner.
"""
from __future__ import annotations

import json
import re
from typing import Literal
from urllib.parse import quote

from service.redaction import scrub

# The two kinds of component the orchestrator moves, as Sesam's API names their collections
# (/systems, /pipes) and a NodeSnapshot its tables.
ComponentKind = Literal["systems", "pipes"]

FEEDER_SYSTEM = "orchestrator-master"     # system:url in a slave reading the master's datasets
FEEDER_PREFIX = "orchestrator-feed-"      # + dataset id: the slave pipe copying that dataset

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


def q(component_id: str) -> str:
    """One path segment, fully quoted. `.` and `..` are legal ids but, as a segment, mean
    "here" and "up": `/pipes/../config` is `/config`. Their dots are percent-encoded, and
    the client sends the path as built (requests would decode `%2E` back to a dot)."""
    quoted = quote(component_id, safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted
