"""The Dockerfile read as Docker reads it: the image tests and the service tests check it."""
from __future__ import annotations

import json
import re

from repo_root import ROOT


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, args = line.partition(" ")
            out.append((instruction.upper(), args.strip()))
    return out


def healthcheck_command() -> list[str]:
    """The HEALTHCHECK's exec-form command, as Docker would run it."""
    args = next(a for i, a in dockerfile() if i == "HEALTHCHECK")
    return json.loads(args[args.index("CMD ") + 4:])
