"""The service's configuration: environment variables in, a validated `Config` out.

Sesam passes a microservice's environment as strings; `MASTER_NODE` and `SLAVE_NODES` hold
JSON. Everything is checked here, before the service talks to any node, and every problem is
reported at once, one line each naming the variable and the field
(`SLAVE_NODES[1].endpoint: ...`). Numbers may be written as numeric strings, as Sesam users
write them (`"sync_interval": "300"`). An unknown field is a warning, or an error when it is
a near miss of a known one (`jwt_secret` for `jwt_secret_key`): a typo must not silently
drop a setting. Tokens are `SecretStr`, so no repr, log line or error message can show them.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from service.config_words import near_miss, plain
from service.core.names import FEEDER_SYSTEM, name
from service.redaction import scrub

DAY = 86_400
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogFormat = Literal["text", "json"]
# Node ids end up in generated names and in metadata; keep them to what Sesam accepts in ids.
_NODE_ID = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$"


def _numeric_string(value: Any) -> Any:
    """`"300"` is 300: Sesam users quote numbers. `true` or `"often"` stay what they are and
    are refused (the node models are strict)."""
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,18}\s*", value):
        return int(value)
    return value


def _boolean_string(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


Interval = Annotated[int, BeforeValidator(_numeric_string), Field(gt=0, le=30 * DAY)]


class ConfigError(Exception):
    """Every problem found, each `VARIABLE.field: what is wrong` on one line (`problems`;
    the CLI prints one per line, str() joins them with '; '). Never holds a value from the
    input."""

    def __init__(self, *problems: str) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def normalise_endpoint(value: str) -> str:
    """`https://x/`, `https://x/api` and `https://x/api/` all mean `https://x`."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL")
    if parts.query or parts.fragment or any(c.isspace() for c in value):
        raise ValueError("must be an http(s) URL without query, fragment or spaces")
    if "@" in parts.netloc:
        # requests would send `user:password` as Basic auth instead of the node's JWT, and
        # the endpoint is shown on /status and the page.
        raise ValueError("must not hold user info (user:password@); a node takes its jwt_token")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        raise ValueError("must be an http(s) URL with a valid port") from None
    endpoint = value.rstrip("/")
    if endpoint.endswith("/api"):
        endpoint = endpoint[: -len("/api")].rstrip("/")
    return endpoint


def header_token(value: SecretStr) -> SecretStr:
    """A token goes in an HTTP header: printable ASCII, no spaces. A token that is not, every
    request would fail obscurely (or the client could not send it at all)."""
    token = value.get_secret_value()
    if token != token.strip():
        raise ValueError("has whitespace around it (a trailing newline?); remove it")
    if not re.fullmatch(r"[\x21-\x7e]+", token):
        raise ValueError("must be printable ASCII without spaces (an HTTP header carries it)")
    return value


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

    @field_validator("jwt_token")
    @classmethod
    def _jwt_token(cls, value: SecretStr) -> SecretStr:
        return header_token(value)

    @property
    def api_url(self) -> str:
        return self.endpoint + "/api"


class MasterNode(Node):
    use_binary_source: Annotated[bool, BeforeValidator(_boolean_string)] = False


class SlaveNode(Node):
    managed_systems: list[Annotated[str, Field(min_length=1, max_length=512)]] = Field(
        max_length=10_000)
    sync_interval: Interval = 300
    sync_interval_stagger_range: Annotated[int, BeforeValidator(_numeric_string),
                                           Field(ge=0, le=30 * DAY)] | None = None

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
    # Empty is valid: every system is un-managed, moved back to the master.
    slaves: tuple[SlaveNode, ...] = Field(max_length=1000)
    update_interval: Interval = 1800
    port: Annotated[int, Field(ge=1, le=65535)] = 5000
    # Printable ASCII: HTTP headers carry bytes, and a token a client cannot send is a lockout.
    api_token: SecretStr | None = Field(default=None, min_length=16, max_length=4096)
    per_node_concurrency: Annotated[int, Field(ge=1, le=64)] = 8
    request_timeout: Annotated[float, Field(gt=0, le=600)] = 30.0
    # A whole run: past it, what is left fails and the run lock is free again.
    run_timeout: Annotated[float, Field(gt=0, le=DAY)] = 3600.0
    log_level: LogLevel = "INFO"
    # `json`: one JSON object per line, for log shippers.
    log_format: LogFormat = "text"
    # Set by load_config: the unknown fields it ignored, one sentence each.
    ignored: tuple[str, ...] = ()

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: Any) -> Any:
        # `debug`, `Debug` and `WARN` are what people write.
        if isinstance(value, str):
            value = value.strip().upper()
            return "WARNING" if value == "WARN" else value
        return value

    @field_validator("log_format", mode="before")
    @classmethod
    def _log_format(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value
    # manual: plan every interval, apply only on POST /sync (issue 15.2).
    sync_policy: Literal["auto", "manual"] = "auto"
    # Where the last run reports are kept across restarts; None: in memory only (15.4).
    history_path: str | None = Field(default=None, min_length=1, max_length=4096)
    # The largest answer (decompressed) read from a node; larger ones stop that node's read.
    max_answer_mb: Annotated[int, Field(ge=1, le=4096)] = 256

    @field_validator("api_token")
    @classmethod
    def _api_token(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None else header_token(value)

    @model_validator(mode="after")
    def _unique(self) -> Config:
        problems = _cross_field_problems(self)
        if problems:
            # One ValueError; load_config splits it back into its lines.
            raise ValueError("\n".join(problems))
        return self

    def slave(self, slave_id: str) -> SlaveNode:
        return next(s for s in self.slaves if s.id == slave_id)

    @property
    def nodes(self) -> tuple[Node, ...]:
        return (self.master, *self.slaves)

    def warnings(self) -> list[str]:
        """What works but should be changed: ignored fields, and tokens that would be written
        in clear text into a node's config for lack of a jwt_secret_key."""
        found = list(self.ignored)
        if self.master.jwt_secret_key is None and self.slaves:
            found.append(
                f"MASTER_NODE has no jwt_secret_key: the master's token is written in clear "
                f"text into system '{FEEDER_SYSTEM}' on the slaves that read master datasets; "
                f"add the token as a secret (say '{self.master.id}-jwt') to the master and the "
                f"slaves and set \"jwt_secret_key\": \"{self.master.id}-jwt\" in MASTER_NODE")
        for i, slave in enumerate(self.slaves):
            if slave.jwt_secret_key is None:
                found.append(
                    f"SLAVE_NODES[{i}] ({slave.id}) has no jwt_secret_key: its token is written "
                    f"in clear text into the master's config (the systems it manages become "
                    f"system:url systems holding it); add the token as a secret (say "
                    f"'{slave.id}-jwt') to the master and set \"jwt_secret_key\": "
                    f"\"{slave.id}-jwt\" in SLAVE_NODES[{i}]")
        return found

    def public(self) -> dict[str, Any]:
        """The configuration as shown on /status: everything but tokens."""
        def node(n: Node) -> dict[str, Any]:
            return n.model_dump(by_alias=True, exclude={"jwt_token"})
        return {"master": node(self.master), "slaves": [node(s) for s in self.slaves],
                "update_interval": self.update_interval,
                "per_node_concurrency": self.per_node_concurrency,
                "request_timeout": self.request_timeout, "run_timeout": self.run_timeout,
                "max_answer_mb": self.max_answer_mb,
                "api_token_required": self.api_token is not None,
                "warnings": self.warnings(), "sync_policy": self.sync_policy}


def _cross_field_problems(config: Config) -> list[str]:
    """Checks across fields and nodes, every problem found (not only the first)."""
    problems = []
    if config.run_timeout < config.request_timeout:
        problems.append("RUN_TIMEOUT: is shorter than REQUEST_TIMEOUT; a run could not wait "
                        "for a single answer")
    seen = {config.master.id}
    for i, slave in enumerate(config.slaves):
        if slave.id in seen:
            problems.append(f"SLAVE_NODES[{i}]._id: node id '{slave.id}' is used twice")
        seen.add(slave.id)
    # Two entries for one node would have one's cleanup delete the other's components.
    endpoints = {config.master.endpoint.lower(): "MASTER_NODE"}
    for i, slave in enumerate(config.slaves):
        other = endpoints.setdefault(slave.endpoint.lower(), f"SLAVE_NODES[{i}]")
        if other != f"SLAVE_NODES[{i}]":
            problems.append(f"SLAVE_NODES[{i}].endpoint: is the endpoint of {other}; each node "
                            "may be listed once")
    owner: dict[str, int] = {}
    for i, slave in enumerate(config.slaves):
        for system in slave.managed_systems:
            if system in owner:
                problems.append(f"SLAVE_NODES[{i}].managed_systems: system '{system}' is "
                                f"already managed by SLAVE_NODES[{owner[system]}]")
            owner.setdefault(system, i)
    return problems


# Environment variable -> (Config field, does it hold JSON?)
_VARIABLES = {
    "MASTER_NODE": ("master", True),
    "SLAVE_NODES": ("slaves", True),
    "UPDATE_INTERVAL": ("update_interval", False),
    "PORT": ("port", False),
    "API_TOKEN": ("api_token", False),
    "PER_NODE_CONCURRENCY": ("per_node_concurrency", False),
    "REQUEST_TIMEOUT": ("request_timeout", False),
    "RUN_TIMEOUT": ("run_timeout", False),
    "LOG_LEVEL": ("log_level", False),
    "LOG_FORMAT": ("log_format", False),
    "SYNC_POLICY": ("sync_policy", False),
    "HISTORY_PATH": ("history_path", False),
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


def _shown(key: str) -> str:
    """A name the user wrote, for a message: one line (quoted when odd), nothing shaped like
    a credential (a token pasted where a key belongs), and short."""
    return scrub(name(key[:100]))


def _unknown_fields(var: str, value: Any, model: type[Node], problems: list[str],
                    ignored: list[str]) -> Any:
    """`value` without the fields `model` does not know; a near miss of a known field is a
    problem (a typo would silently drop a setting), anything else is ignored with a note."""
    if not isinstance(value, dict):
        return value
    known = [f.alias or n for n, f in model.model_fields.items()]
    kept = {}
    for key, item in value.items():
        if key in known:
            kept[key] = item
            continue
        shown = _shown(key)
        meant = near_miss(key, known)
        if meant is not None:
            problems.append(f"{var}.{shown}: is not a known field; did you mean '{meant}'?")
        else:
            ignored.append(f"{var}.{shown}: is not a known field; it is ignored")
    return kept


def _read_variables(environ: Mapping[str, str], problems: list[str]) -> dict[str, Any]:
    """The variables as Config's input; a variable that cannot be read adds a problem."""
    raw: dict[str, Any] = {}
    for var, (field, is_json) in _VARIABLES.items():
        value = environ.get(var)
        if value is not None and var == "API_TOKEN" and not value.strip():
            # A security switch fails closed: set but blank is a mistake, not "no token".
            problems.append("API_TOKEN: is set but blank; unset it to leave the API open")
            continue
        if value is None or (not is_json and value.strip() == "" and var not in _REQUIRED):
            if var in _REQUIRED:
                meant = [v for v in environ if v != var and near_miss(v, [var])]
                hint = f" ({_shown(meant[0])} is set: did you mean {var}?)" if meant else ""
                problems.append(f"{var}: is required{hint}")
            continue
        if is_json:
            try:
                value = json.loads(value)
            except RecursionError:
                problems.append(f"{var}: is JSON nested too deeply")
                continue
            except ValueError as exc:
                # The decoder's message gives a position, never the text it choked on.
                pos = getattr(exc, "pos", None)
                where = f" (at character {pos})" if pos is not None else ""
                problems.append(f"{var}: is not valid JSON{where}")
                continue
        raw[field] = value
    return raw


def load_config(environ: Mapping[str, str]) -> Config:
    """Parse and validate; raise ConfigError naming every problem found, one line each."""
    problems: list[str] = []
    raw = _read_variables(environ, problems)
    unread = {_VARIABLES[p.split(":")[0]][0] for p in problems if p.split(":")[0] in _VARIABLES}
    ignored: list[str] = []
    if "master" in raw:
        raw["master"] = _unknown_fields("MASTER_NODE", raw["master"], MasterNode, problems,
                                        ignored)
    if isinstance(raw.get("slaves"), list):
        raw["slaves"] = [_unknown_fields(f"SLAVE_NODES[{i}]", s, SlaveNode, problems, ignored)
                         for i, s in enumerate(raw["slaves"])]
    raw["ignored"] = tuple(ignored)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors(include_input=False, include_url=False):
            if error["loc"] and error["loc"][0] in unread:
                continue            # already reported: it could not be read at all
            problems += _located(error)
        config = None
    if problems:
        raise ConfigError(*problems)
    assert config is not None
    return config


def _located(error: ErrorDetails) -> list[str]:
    msg = plain(error)
    # Cross-field checks name their own location at the start of each line.
    if re.match(r"^[A-Z_]+(\[\d+\])?[.:]", msg):
        return msg.splitlines()
    loc = tuple("_id" if part == "id" else part for part in error["loc"])
    return [f"{_where(loc)}: {msg}"]
