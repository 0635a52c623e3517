"""Reading a node's answer as it arrives: capped in size, and a JSON array item by item.

A 10,000-pipe master's listing is tens of MB of JSON, several times that as Python objects.
Parsing it item by item lets the caller keep only what it needs of each entry (see
core/snapshots.py), so neither the whole text nor the whole parsed list is ever held. Every
answer counts its bytes *after* decompression, so a small gzip bomb stops at the cap too.
"""
from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from typing import Any

_DECODER = json.JSONDecoder()
_SPACE = " \t\r\n"


class TooLarge(ValueError):
    """The answer passed the size cap; `limit` is the cap in bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than {limit} bytes")
        self.limit = limit


class EntryTooLarge(TooLarge):
    """One entry of a listing passed the per-entry cap."""


class NotAnArray(ValueError):
    """The answer is valid JSON, or starts like it, but is not an array."""


def capped(chunks: Iterable[bytes], limit: int) -> Iterator[bytes]:
    """`chunks` as they come, raising TooLarge once more than `limit` bytes have come."""
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        if seen > limit:
            raise TooLarge(limit)
        yield chunk


def _text(chunks: Iterable[bytes]) -> Iterator[str]:
    # Incremental: a multi-byte character split between two chunks is decoded whole.
    utf8 = codecs.getincrementaldecoder("utf-8")()
    for chunk in chunks:
        text = utf8.decode(chunk)
        if text:
            yield text
    tail = utf8.decode(b"", final=True)
    if tail:
        yield tail


class _Buffer:
    """Text not consumed yet, refilled from the chunks on demand."""

    def __init__(self, chunks: Iterable[bytes], decoder: json.JSONDecoder,
                 max_entry: int) -> None:
        self._texts = _text(chunks)
        self._decoder = decoder
        self._max_entry = max_entry
        self.text = ""
        self.pos = 0
        self.eof = False

    def more(self) -> bool:
        """Append one more piece of text; False at the end of the answer."""
        piece = next(self._texts, None)
        if piece is None:
            self.eof = True
            return False
        self.text = self.text[self.pos:] + piece
        self.pos = 0
        return True

    def grow(self, at_least: int) -> None:
        # Doubling: an entry larger than a chunk is re-tried O(log n) times, not once a chunk;
        # and the pieces are joined once, not the text copied again for each piece.
        pieces, have = [self.text[self.pos:]], len(self.text) - self.pos
        while have < at_least:
            piece = next(self._texts, None)
            if piece is None:
                self.eof = True
                break
            pieces.append(piece)
            have += len(piece)
        self.text, self.pos = "".join(pieces), 0

    def next_char(self) -> str:
        """The next non-blank character (not consumed); '' at the end."""
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in _SPACE:
                self.pos += 1
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                return ""

    def value(self) -> Any:
        want = 1
        while True:
            try:
                found, end = self._decoder.raw_decode(self.text, self.pos)
            except ValueError:
                found, end = None, -1
            # A value ending exactly at the buffer's end may be cut short (a number): an array
            # entry is always followed by ',' or ']', so read on before trusting it.
            if end != -1 and (end < len(self.text) or self.eof):
                self.pos = end
                return found
            if self.eof:
                raise ValueError("not valid JSON")
            want = max(want, len(self.text) - self.pos) * 2
            if want > 2 * self._max_entry:
                # One entry is held whole while it is parsed: the answer's cap alone would
                # let a single huge entry fill the container.
                raise EntryTooLarge(self._max_entry)
            self.grow(want)


def iter_array(chunks: Iterable[bytes], decoder: json.JSONDecoder = _DECODER, *,
               max_entry: int = 2**62) -> Iterator[Any]:
    """Each entry of the JSON array the chunks hold, in order, parsed one at a time.
    Raises NotAnArray for a JSON object or scalar, ValueError for anything else not JSON,
    EntryTooLarge for an entry of more than about `max_entry` characters."""
    buf = _Buffer(chunks, decoder, max_entry)
    first = buf.next_char()
    if first != "[":
        if first and first in '{"-0123456789tfn':
            raise NotAnArray("not a JSON array")
        raise ValueError("not valid JSON")
    buf.pos += 1
    if buf.next_char() == "]":
        buf.pos += 1
    else:
        while True:
            buf.next_char()
            yield buf.value()
            sep = buf.next_char()
            buf.pos += 1
            if sep == "]":
                break
            if sep != ",":
                raise ValueError("not valid JSON")
    if buf.next_char() != "":
        raise ValueError("not valid JSON (text after the array)")
