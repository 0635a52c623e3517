"""DTL rules carried as compressed JSON text: the orchestrator moves them, never reads them.

A pipe's 20-rule DTL transform is ~1.2 KB of JSON but ~13 KB as Python lists and dicts; a
10,000-pipe master holds each one twice (the master's copy and a slave's). Read from a
node, the `rules` of a DTL transform become an `Opaque`: its canonical JSON text, deflated
(~0.3 KB), equal to another Opaque of the same rules and to the same rules as plain lists
and dicts. The rules name no system or dataset the planner looks at (references.py never
enters `rules`), and `thaw` turns them back into JSON values right before a write. Where a
config is written as JSON, an Opaque is the JSON string of its text (`text_of`).
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
import zlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any


def text_of(value: Any) -> str:
    """`default=` for json.dumps: an Opaque is written as its text (a JSON string)."""
    if isinstance(value, Opaque):
        return value.text()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def env_text_of(value: Any) -> str:
    """`default=` for json.dumps when only `$ENV(` is looked for: an Opaque's text where it
    holds one, else nothing (not inflated)."""
    if isinstance(value, Opaque):
        return value.text() if value.names_env else ""
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def canonical(value: Any) -> str:
    # Keys sorted: two dicts are equal in Python whatever their key order, so their texts are.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=text_of)


_SECRETS, _ENVS = 1, 2
# A 4 KB window and a small hash: rules are a few KB, and the default state (~270 KB to
# deflate, 32 KB to inflate) taken by every listing thread at once cost more than it saved.
_WINDOW_BITS = 12


class Opaque(bytes):
    """Canonical JSON text standing for a JSON value, deflated; compares like that value
    would. Deflating is deterministic, so equal texts are equal bytes: two Opaques compare
    without being inflated. ~0.3 KB for the 1.2 KB of 20 rules (1.4 KB as a str)."""

    __slots__ = ()

    # The first byte says whether the text holds a `$SECRET(` or an `$ENV(` (_SECRETS,
    # _ENVS): what the planner looks for in every config it writes, without inflating it.
    @classmethod
    def of(cls, value: Any) -> Opaque:
        text = canonical(value)
        flags = (_SECRETS if "$SECRET(" in text else 0) | (_ENVS if "$ENV(" in text else 0)
        packer = zlib.compressobj(6, zlib.DEFLATED, -_WINDOW_BITS, 4)
        return cls(bytes((flags,)) + packer.compress(text.encode("utf-8")) + packer.flush())

    def text(self) -> str:
        return self.utf8().decode("utf-8")

    def utf8(self) -> bytes:
        """The text as UTF-8 bytes."""
        return zlib.decompress(memoryview(self)[1:], -_WINDOW_BITS)

    @property
    def names_secrets(self) -> bool:
        return bool(self[0] & _SECRETS)

    @property
    def names_env(self) -> bool:
        return bool(self[0] & _ENVS)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Opaque):
            return bytes.__eq__(self, other)
        if isinstance(other, (list, dict)):
            return self.text() == canonical(other)
        return False

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = bytes.__hash__

    def __repr__(self) -> str:
        return f"Opaque({len(self)} bytes)"

    def __str__(self) -> str:
        return self.text()

    def value(self) -> Any:
        return json.loads(self.text())


def dumps(value: Any) -> bytes:
    """`value` as JSON bytes, each Opaque written as the text it holds, never parsed back
    into lists and dicts: a bulk write of 100 pipes stays ~150 KB, not ~1.3 MB of objects.
    The encoder meets an Opaque as a value it cannot write (bytes) and asks `default`: no
    copy of the configs is made to swap them out (100 configs a bulk, many bulks at once)."""
    rules: list[Opaque] = []
    tag = secrets.token_hex(8)

    def placeholder(v: Any) -> str:
        if isinstance(v, Opaque):
            rules.append(v)
            return f"{tag}:{len(rules) - 1}"
        raise TypeError(f"{type(v).__name__} is not JSON serializable")
    text = json.dumps(value, allow_nan=False, default=placeholder)   # ASCII: \u escapes
    if not rules:
        return text.encode("ascii")
    # Pieces joined once, each rule inflated straight into its place as UTF-8 bytes: no
    # whole text with the rules spliced in is made before the bytes sent (many bulks of
    # 100 pipes are written at once). A random tag: no user string passes for a placeholder.
    out: list[bytes] = []
    at = 0
    for found in _PLACEHOLDER.finditer(text):
        if found.group(1) == tag:
            out += (text[at:found.start()].encode("ascii"), rules[int(found.group(2))].utf8())
            at = found.end()
    out.append(text[at:].encode("ascii"))
    return b"".join(out)


# One pattern for every tag, the tag checked in the replacement: a pattern made per call
# would be compiled per write and fill `re`'s cache with patterns never used again.
_PLACEHOLDER = re.compile(r'"([0-9a-f]{16}):(\d+)"')


class DtlTransform(Opaque):
    """A DTL transform as it nearly always is, `{"type": "dtl", "rules": ...}`, deflated
    whole: its dict was ~0.2 KB a pipe beside its deflated rules (10,000 user configs in a
    master's sync pipes). Compares, and is written, like that dict."""

    __slots__ = ()

    _HEAD, _TAIL = '{"rules":', ',"type":"dtl"}'    # its canonical text, around the rules

    def rules_text(self) -> str:
        """The canonical text of its rules, cut from its own (keys sorted: rules, type)."""
        return self.text()[len(self._HEAD):-len(self._TAIL)]


def _frozen(transform: Any) -> Any:
    """A transform with its DTL rules deflated; a plain DTL transform deflated whole."""
    if not isinstance(transform, dict) or transform.get("type") != "dtl" \
            or not isinstance(transform.get("rules"), (dict, list)):
        return transform
    if transform.keys() == {"type", "rules"}:
        return DtlTransform.of(transform)
    return {**transform, "rules": Opaque.of(transform["rules"])}


def _each(transform: Any, change: Callable[[Any], Any]) -> Any:
    """A `transform` value (one transform or a list of them) with `change` applied to each."""
    return [change(t) for t in transform] if isinstance(transform, list) else change(transform)


def _freeze_transforms(config: dict[str, Any]) -> None:
    if "transform" in config:
        config["transform"] = _each(config["transform"], _frozen)


def freeze(config: dict[str, Any]) -> dict[str, Any]:
    """In place: the DTL transforms of a pipe, and of the user's config a generated pipe
    keeps in `metadata.orchestrator.original_configuration`, become Opaque (their rules, or
    a plain DTL transform whole)."""
    _freeze_transforms(config)
    meta = config.get("metadata")
    mark = meta.get("orchestrator") if isinstance(meta, dict) else None
    inner = mark.get("original_configuration") if isinstance(mark, dict) else None
    if isinstance(inner, dict):
        _freeze_transforms(inner)
    return config


def thaw(value: Any) -> Any:
    """`value` with every Opaque inside turned back into the JSON value it stands for."""
    if isinstance(value, Opaque):
        return value.value()
    if isinstance(value, dict):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


def _as_text(transform: Any) -> Any:
    """A transform with its DTL rules as their canonical text (a new dict where that
    changes): the form a config's digest is made of, whichever way its rules are held."""
    if isinstance(transform, DtlTransform):
        return {"type": "dtl", "rules": transform.rules_text()}
    if not isinstance(transform, dict) or transform.get("type") != "dtl":
        return transform
    rules = transform.get("rules")
    if isinstance(rules, Opaque):
        return {**transform, "rules": rules.text()}
    if isinstance(rules, (dict, list)):
        return {**transform, "rules": canonical(rules)}
    return transform


def _text_copy(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` with its DTL rules as their canonical text, copying only what that changes.
    Text, not Opaque: a slave's copies are read by digest, and deflating the rules of each
    (3,000 at 3,000 pipes) to compare them cost more than inflating the planner's side."""
    out = dict(config)
    if "transform" in out:
        out["transform"] = _each(out["transform"], _as_text)
    meta = out.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    mark = meta.get("orchestrator")
    if isinstance(mark, dict) and isinstance(mark.get("original_configuration"), dict):
        inner = _text_copy(mark["original_configuration"])
        out["metadata"] = {**meta, "orchestrator": {**mark, "original_configuration": inner}}
    return out


def digest(config: dict[str, Any]) -> bytes:
    """A config's fingerprint: equal for equal configs (key order aside), rules as text."""
    return hashlib.blake2b(canonical(_text_copy(config)).encode(), digest_size=16).digest()


# The metadata a Digest keeps (ownership.GROUP_KEY is "$config-group").
_DIGEST_KEEPS = ("orchestrator", "$config-group")


class Digest(Mapping[str, Any]):
    """A config kept by its fingerprint: what a slave's copy of a pipe, and a sync pipe the
    orchestrator wrote in the master, are compared by.

    Read as a mapping it holds only the metadata read of one besides the comparison: its
    `metadata.orchestrator` marker (the planner; in the master it keeps the user's config)
    and its `metadata["$config-group"]` (ownership.py: whose copy it is). A sync pipe's
    also keeps its source's `url` aside (read with `source_url`). It is
    equal to any config whose digest is its own. A 10,000-pipe master has 10,000 such
    copies on its slaves and 10,000 sync pipes; whole, they would be the largest part of a
    run's memory. Not a dict: a dict's own table, for that one key, was ~0.2 KB a copy."""

    __slots__ = ("fingerprint", "source_url", "_metadata")

    def __init__(self, config: dict[str, Any],
                 share: Callable[[dict[str, Any]], dict[str, Any]] | None = None, *,
                 keep_source_url: bool = False) -> None:
        """`share`: may hand back an equal dict already held for the kept metadata (a
        slave's copies mostly carry the same group and nothing else). `keep_source_url`:
        keep the source's `url` (None when it has none)."""
        meta = config.get("metadata")
        kept: dict[str, Any] = {}
        if isinstance(meta, dict):
            # The config's own metadata when it holds nothing else (a sync pipe's holds only
            # the marker): a copy of it would be one more dict for every pipe.
            kept = meta if all(k in _DIGEST_KEEPS for k in meta) \
                else {k: meta[k] for k in _DIGEST_KEEPS if k in meta}
        if kept and share is not None:
            kept = share(kept)
        self._metadata = kept or None
        self.fingerprint = digest(config)
        # Aside, not as a {"source": {"url": ..}} of the dict: two dicts less a sync pipe.
        self.source_url = source_url(config) if keep_source_url else None

    def __getitem__(self, key: str) -> Any:
        if key != "metadata" or self._metadata is None:
            raise KeyError(key)
        return self._metadata

    def __iter__(self) -> Iterator[str]:
        return iter(("metadata",) if self._metadata is not None else ())

    def __len__(self) -> int:
        return self._metadata is not None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Digest):
            return self.fingerprint == other.fingerprint
        if isinstance(other, dict):
            return self.fingerprint == digest(other)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None   # type: ignore[assignment]   # as a dict's: not hashable

    def __repr__(self) -> str:
        return f"Digest({self.fingerprint.hex()})"


def source_url(config: Mapping[str, Any]) -> Any:
    """The `url` of a pipe's source; a sync pipe kept by digest keeps it aside."""
    if isinstance(config, Digest):
        return config.source_url
    source = config.get("source")
    return source.get("url") if isinstance(source, dict) else None
