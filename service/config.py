"""The service's configuration: environment variables in, a validated `Config` out.

Sesam passes a microservice's environment as strings; `MASTER_NODE` and `SLAVE_NODES` hold
JSON. Everything is checked here, before the service talks to any node, and a problem is
reported as one line naming the variable and the field (`SLAVE_NODES[1].endpoint: ...`).
Tokens are `SecretStr`, so no repr, log line or error message can show them.
"""
from __future__ import annotations

import json
import re
from typing import Annotated, Any, Mapping
from urllib.parse import urlsplit

from pydantic import (BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator,
                      model_validator)

from .names import FEEDER_SYSTEM

DAY = 86_400
# Node ids end up in generated names and in metadata; keep them to what Sesam accepts in ids.
_NODE_ID = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$"
Interval = Annotated[int, Field(gt=0, le=30 * DAY)]


class ConfigError(Exception):
    """One line: `VARIABLE.field: what is wrong`. Never holds a value from the input."""


def normalise_endpoint(value: str) -> str:
    """`https://x/`, `https://x/api` and `https://x/api/` all mean `https://x`."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL")
    if parts.query or parts.fragment or any(c.isspace() for c in value):
        raise ValueError("must be an http(s) URL without query, fragment or spaces")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        raise ValueError("must be an http(s) URL with a valid port") from None
    endpoint = value.rstrip("/")
    if endpoint.endswith("/api"):
        endpoint = endpoint[: -len("/api")].rstrip("/")
    return endpoint


class Node(BaseModel):
    # Strict: inside the JSON, `true` is not an interval of 1 s and "yes" is not a boolean.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True,
                              strict=True)

    id: str = Field(alias="_id", pattern=_NODE_ID)
    endpoint: str = Field(max_length=2048)
    jwt_token: SecretStr = Field(min_length=1, max_length=16_384)
    jwt_secret_key: str | None = Field(default=None, min_length=1, max_length=256)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        return normalise_endpoint(value)

    @property
    def api_url(self) -> str:
        return self.endpoint + "/api"


class MasterNode(Node):
    use_binary_source: bool = False


class SlaveNode(Node):
    managed_systems: list[Annotated[str, Field(min_length=1, max_length=512)]] = Field(
        max_length=10_000)
    sync_interval: Interval = 300
    sync_interval_stagger_range: Annotated[int, Field(ge=0, le=30 * DAY)] | None = None

    @field_validator("managed_systems")
    @classmethod
    def _systems(cls, value: list[str]) -> list[str]:
        if any(s.startswith("system:") for s in value):
            raise ValueError("ids starting with 'system:' are Sesam's own and cannot be managed")
        if any(not s.isprintable() for s in value):
            raise ValueError("a system id holds a control character (newline, tab, ...)")
        if FEEDER_SYSTEM in value:
            raise ValueError(f"'{FEEDER_SYSTEM}' is the name of the system the orchestrator "
                             "creates in slaves; rename that system in the master")
        if len(set(value)) != len(value):
            raise ValueError("names a system twice")
        return value

    @property
    def stagger_range(self) -> int:
        if self.sync_interval_stagger_range is None:
            return self.sync_interval
        return self.sync_interval_stagger_range


class Config(BaseModel):
    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    master: MasterNode
    slaves: tuple[SlaveNode, ...] = Field(min_length=1, max_length=1000)
    update_interval: Interval = 1800
    port: Annotated[int, Field(ge=1, le=65535)] = 5000
    # Printable ASCII: HTTP headers carry bytes, and a token a client cannot send is a lockout.
    api_token: SecretStr | None = Field(default=None, min_length=16, max_length=4096)
    per_node_concurrency: Annotated[int, Field(ge=1, le=64)] = 8
    request_timeout: Annotated[float, Field(gt=0, le=600)] = 30.0
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    # The largest answer (decompressed) read from a node; larger ones stop that node's read.
    max_answer_mb: Annotated[int, Field(ge=1, le=4096)] = 256

    @field_validator("api_token")
    @classmethod
    def _api_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(r"[\x21-\x7e]+", value.get_secret_value()):
            raise ValueError("must be printable ASCII without spaces")
        return value

    @model_validator(mode="after")
    def _unique(self) -> "Config":
        seen = {self.master.id}
        for i, slave in enumerate(self.slaves):
            if slave.id in seen:
                raise ValueError(f"SLAVE_NODES[{i}]._id: node id '{slave.id}' is used twice")
            seen.add(slave.id)
        # Two entries for one node would have one's cleanup delete the other's components.
        endpoints = {self.master.endpoint.lower(): "MASTER_NODE"}
        for i, slave in enumerate(self.slaves):
            other = endpoints.setdefault(slave.endpoint.lower(), f"SLAVE_NODES[{i}]")
            if other != f"SLAVE_NODES[{i}]":
                raise ValueError(f"SLAVE_NODES[{i}].endpoint: is the endpoint of {other}; "
                                 "each node may be listed once")
        owner: dict[str, int] = {}
        for i, slave in enumerate(self.slaves):
            for system in slave.managed_systems:
                if system in owner:
                    raise ValueError(
                        f"SLAVE_NODES[{i}].managed_systems: system '{system}' is already "
                        f"managed by SLAVE_NODES[{owner[system]}]")
                owner[system] = i
        return self

    def slave(self, slave_id: str) -> SlaveNode:
        return next(s for s in self.slaves if s.id == slave_id)

    @property
    def nodes(self) -> tuple[Node, ...]:
        return (self.master, *self.slaves)

    def public(self) -> dict[str, Any]:
        """The configuration as shown on /status: everything but tokens."""
        def node(n: Node) -> dict[str, Any]:
            return n.model_dump(by_alias=True, exclude={"jwt_token"})
        return {"master": node(self.master), "slaves": [node(s) for s in self.slaves],
                "update_interval": self.update_interval,
                "per_node_concurrency": self.per_node_concurrency,
                "request_timeout": self.request_timeout, "max_answer_mb": self.max_answer_mb,
                "api_token_required": self.api_token is not None}


# Environment variable -> (Config field, does it hold JSON?)
_VARIABLES = {
    "MASTER_NODE": ("master", True),
    "SLAVE_NODES": ("slaves", True),
    "UPDATE_INTERVAL": ("update_interval", False),
    "PORT": ("port", False),
    "API_TOKEN": ("api_token", False),
    "PER_NODE_CONCURRENCY": ("per_node_concurrency", False),
    "REQUEST_TIMEOUT": ("request_timeout", False),
    "LOG_LEVEL": ("log_level", False),
    "MAX_ANSWER_MB": ("max_answer_mb", False),
}
_FIELD_TO_VAR = {field: var for var, (field, _) in _VARIABLES.items()}
_REQUIRED = ("MASTER_NODE", "SLAVE_NODES")


def _where(loc: tuple[Any, ...]) -> str:
    """pydantic's error location -> `SLAVE_NODES[1].endpoint`."""
    out = _FIELD_TO_VAR.get(loc[0], str(loc[0])) if loc else "configuration"
    for part in loc[1:]:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def load_config(environ: Mapping[str, str]) -> Config:
    """Parse and validate; raise ConfigError with one line on the first problem."""
    raw: dict[str, Any] = {}
    for var, (field, is_json) in _VARIABLES.items():
        value = environ.get(var)
        if value is not None and var == "API_TOKEN" and not value.strip():
            # A security switch fails closed: set but blank is a mistake, not "no token".
            raise ConfigError("API_TOKEN: is set but blank; unset it to leave the API open")
        if value is None or (not is_json and value.strip() == "" and var not in _REQUIRED):
            if var in _REQUIRED:
                raise ConfigError(f"{var}: is required")
            continue
        if is_json:
            try:
                value = json.loads(value)
            except ValueError as exc:
                # The decoder's message gives a position, never the text it choked on.
                pos = getattr(exc, "pos", None)
                where = f" (at character {pos})" if pos is not None else ""
                raise ConfigError(f"{var}: is not valid JSON{where}") from None
        raw[field] = value
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors(include_input=False, include_url=False)[0]
        msg = error["msg"].removeprefix("Value error, ")
        # Cross-field checks name their own location at the start of the message.
        if re.match(r"^[A-Z_]+(\[\d+\])?\.", msg):
            raise ConfigError(msg) from None
        loc = tuple("_id" if part == "id" else part for part in error["loc"])
        raise ConfigError(f"{_where(loc)}: {msg}") from None

