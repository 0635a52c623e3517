"""The configuration's problems in plain words.

An operator reads these in Sesam's log of the microservice: they must say what to change in
the variable they wrote, not how the validation library names its checks.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable

from pydantic_core import ErrorDetails

_ID_RULE = ("may hold only letters, digits, '_', '.' and '-', must not start with '.' or '-', "
            "and is at most 100 characters")


def plain(error: ErrorDetails) -> str:
    """One validation error (pydantic's `errors()` item) as a sentence without jargon."""
    kind, ctx = error["type"], error.get("ctx") or {}
    field = str(error["loc"][-1]) if error["loc"] else ""
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        return _ID_RULE
    if kind == "literal_error" and field in _CHOICES:
        return _CHOICES[field]
    if kind == "string_too_short":
        return "must not be empty" if ctx.get("min_length") == 1 \
            else f"must be at least {ctx.get('min_length')} characters long"
    if kind == "too_short":
        return f"must list at least {ctx.get('min_length')} item(s)"
    return _WORDS.get(kind, "is not valid here").format(**ctx)


_CHOICES = {"log_level": "must be one of debug, info, warning or error",
            "log_format": "must be text or json"}

_WORDS = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "int_type": "must be a whole number (300 or \"300\")",
    "int_parsing": "must be a whole number (300 or \"300\")",
    "int_from_float": "must be a whole number (300 or \"300\")",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be text (a JSON string in quotes)",
    "string_too_long": "is longer than {max_length} characters",
    "too_long": "lists more than {max_length} items",
    "greater_than": "must be more than {gt}",
    "greater_than_equal": "must be {ge} or more",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be {le} or less",
    "list_type": "must be a JSON list",
    "tuple_type": "must be a JSON list",
    "model_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
}


def near_miss(key: str, known: Iterable[str]) -> str | None:
    """The known name `key` was most likely meant to be, if it is close enough to be a typo."""
    by_lower = {k.lower(): k for k in known}
    found = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.75)
    return by_lower[found[0]] if found else None
