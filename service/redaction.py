"""One redaction for every output: reports (`--once`, `--plan`, /status, the page, /sync,
/plan), log lines and, through the reports, metrics.

What a node says is its text, and a node (or a proxy in front of it) can say anything: a
validation message may quote the config it refused, credentials included. So every string
that reaches an output loses
- the tokens the service holds and the credential values of the nodes' system configs
  (fields such as `password`, `secret`, `token`), wherever they appear;
- anything shaped like a JWT, a `Bearer`/`Basic` credential, URL user info, or the value
  of a `password`/`secret`/`token` field written as `key: value` or `key=value`, unless
  that value is a whole `$SECRET(..)` or `$ENV(..)` reference (a name, not a value).
"""
from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

from service.report import Report

REDACTED = "[redacted]"
_MIN_SECRET = 6          # shorter values would blank out ordinary words
_CREDENTIAL_KEY = re.compile(r"(?i)passw(or)?d|secret|token|api[_-]?key|credential")
_PATTERNS = (
    (re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*"), REDACTED),
    (re.compile(r"(?i)\b(bearer|basic)\s+[\w.~+/=-]+"), r"\1 " + REDACTED),
    (re.compile(r"(://)[^/@\s]+@"), r"\1" + REDACTED + "@"),
    (re.compile(r"""(?ix)
        ((?<![\w/.-])["']?[\w-]*(?:passw(?:or)?d|secret|token|api[_-]?key|credential)[\w-]*["']?
         \s*[:=]\s*)(?!\[redacted\]|["']?\$(?:SECRET|ENV)\([\w.-]*\)["']?(?:[\s,;})\]]|$))
        ("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,;})\]]+)"""), r"\1" + REDACTED),
)


def scrub(text: str) -> str:
    """The pattern half of the redaction, for text from a node."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def credential_values(configs: Iterable[Any]) -> set[str]:
    """String values of credential fields anywhere in these configs (walked without
    recursion: a config may be nested deeply). `$SECRET(..)`/`$ENV(..)` are references,
    not values."""
    found: set[str] = set()
    stack = list(configs)
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if (isinstance(value, str) and len(value) >= _MIN_SECRET
                        and _CREDENTIAL_KEY.search(str(key)) and not value.startswith("$")):
                    found.add(value)
                elif isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return found


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first: a token that contains another is blanked out whole.
        self._secrets = tuple(sorted({s for s in secrets if len(s) >= _MIN_SECRET},
                                     key=len, reverse=True))

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return scrub(text)

    def report(self, report: Report) -> Report:
        """The report's every string (warnings, errors, action fields), in place."""
        report.warnings = [self(w) for w in report.warnings]
        report.errors = [self(e) for e in report.errors]
        report.actions = [{k: self(v) if isinstance(v, str) else v for k, v in a.items()}
                          for a in report.actions]
        return report


def for_tokens(nodes: Iterable[Any], *extra: str | None) -> Redactor:
    """A Redactor for the tokens of these nodes (`jwt_token` SecretStr) and `extra` values."""
    tokens = [n.jwt_token.get_secret_value() for n in nodes]
    return Redactor([*tokens, *(e for e in extra if e)])


# Credential values read from nodes during this process's runs: the log lines of every
# module (the executor's included) are redacted with them too.
_remembered: set[str] = set()
_lock = threading.Lock()
_for_logs = Redactor()


def remember(values: Iterable[str]) -> None:
    global _for_logs
    with _lock:
        before = len(_remembered)
        _remembered.update(values)
        if len(_remembered) != before:
            _for_logs = Redactor(_remembered)


class _LogRedaction(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        clean = _for_logs(text)
        if clean != text:
            record.msg, record.args = clean, ()
        return True


_FILTER = _LogRedaction()


def redact_logs(*logger_names: str) -> None:
    """Every record of these loggers goes through the redaction (idempotent)."""
    for logger_name in logger_names:
        logger = logging.getLogger(logger_name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
