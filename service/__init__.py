"""Orchestrator for Sesam: places a master node's managed systems and pipes on slave nodes."""

import os as _os

# pydantic looks for plugins in every installed package's metadata when the first model is
# built: tens of ms of each one-shot command's start (--plan, --once), for plugins the
# service never uses. An operator's own setting wins.
_os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
