"""The closed sets of names the emulator tells apart, as types mypy checks (not comments)."""
from __future__ import annotations

from typing import Literal

# The two kinds of configured component: /pipes and /systems.
Kind = Literal["pipe", "system"]
# Where a part sits in a pipe config (configuration-pipes.rst).
Role = Literal["source", "sink", "transform"]
# A pump's `mode` (configuration-pump.rst).
PumpMode = Literal["scheduled", "manual", "off"]
# The `operation` values of POST /pipes/{id}/pump that the emulator models.
Operation = Literal["start", "stop", "enable", "disable", "update-last-seen"]
