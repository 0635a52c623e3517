"""A JSON value as text in pieces: a list, and each list a dict holds, some items at a time.

What the service keeps or answers at a run's end (its flows, a plan, a report of 20,000
actions) comes on top of all else the run held. As one text, then its bytes, a few MB
passed twice through the container's 128 MB for nothing: what takes the text (a
compressor, the HTTP server) takes it piece by piece as well.
"""
from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from functools import partial
from typing import Any

ITEMS = 200          # list items turned to text at a time


def _as_json(value: Any) -> Any:
    """`default=` for json.dumps: an object with an `as_json()` (a run's `Flow`) is written
    as what that returns, made as it is met."""
    as_json = getattr(value, "as_json", None)
    if as_json is None:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")
    return as_json()


_dumps = partial(json.dumps, separators=(",", ":"), default=_as_json)


def pieces(value: Any) -> Iterator[str]:
    """The compact JSON text of `value`, in pieces; joined, equal to json.dumps'."""
    if isinstance(value, list):
        yield "["
        for at in range(0, len(value), ITEMS):
            yield ("," if at else "") + ",".join(map(_dumps, value[at:at + ITEMS]))
        yield "]"
    elif isinstance(value, dict):
        yield "{"
        for at, (key, item) in enumerate(value.items()):
            # A key as json.dumps writes it (True as "true"): one-entry dict, braces off.
            name = _dumps(key) if isinstance(key, str) else _dumps({key: 0})[1:-3]
            yield ("," if at else "") + name + ":"
            yield from pieces(item) if isinstance(item, list) else (_dumps(item),)
        yield "}"
    else:
        yield _dumps(value)


def utf8_pieces(value: Any, *, end: str = "") -> Iterator[bytes]:
    """`pieces` as bytes (ASCII: non-ASCII characters are written as \\u escapes), then
    `end` (an answer ends with a newline, as Flask's jsonify ends one)."""
    for piece in pieces(value):
        yield piece.encode("ascii")
    if end:
        yield end.encode("ascii")


def deflated(value: Any) -> bytes:
    """`value` as deflated JSON, turned to text and deflated piece by piece: what the
    service keeps between runs (flows, a plan, the history's reports) repeats its keys
    thousands of times, and as one text, then bytes, 3,000 flows were a passing 2.5 MB at
    the end of each run, at make bench's served peak."""
    packer = zlib.compressobj(1)
    out = [packer.compress(piece) for piece in utf8_pieces(value)]
    out.append(packer.flush())
    return b"".join(out)


def inflated(packed: bytes) -> Any:
    return json.loads(json_text(packed))


def json_text(packed: bytes) -> bytes:
    """What `deflated` packed, as its JSON text (UTF-8), not parsed."""
    return zlib.decompress(packed)
