"""The HTTP face of the service: a Flask app over a `Runner`.

GET /health, /status, /plan, /metrics, /runs/<id> (one kept run's report) and /, POST /sync.
When API_TOKEN is configured, /sync and /plan (the two that talk to the nodes on request)
need `Authorization: Bearer <API_TOKEN>` or `X-Orchestrator-Token: <API_TOKEN>` (through
Sesam's proxy, Authorization carries the node's JWT). POST /sync must be a request no other
site's page can make a browser send: a JSON body, an `X-Requested-With`, `Authorization` or
`X-Orchestrator-Token` header (a form can set none of them), and an `Origin`, when there is
one, of this very host. POST /sync may name a plan (`{"plan_id": ..}` or `?plan_id=`): 409
when the plan made now has another id. No response carries a token: /status shows
`config.public()`, reports are token-free by
construction and the Runner scrubs any token that might slip into a message.
"""
from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, jsonify, render_template, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from service.config import Config
from service.version import __version__
from service.web.json_pieces import utf8_pieces
from service.web.runner import Busy, Runner

TOKEN_HEADER = "X-Orchestrator-Token"
log = logging.getLogger("service.runs")


def _bearer_guard(config: Config) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    expected = (config.api_token.get_secret_value().encode("utf-8")
                if config.api_token is not None else None)

    def guard(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if expected is not None and not _token_given(expected):
                answer = jsonify(error="this endpoint needs 'Authorization: Bearer "
                                       "<API_TOKEN>' or 'X-Orchestrator-Token: <API_TOKEN>'")
                answer.status_code = 401
                answer.headers["WWW-Authenticate"] = 'Bearer realm="sesam-orchestrator"'
                return answer
            return view(*args, **kwargs)
        return checked
    return guard


def _token_given(expected: bytes) -> bool:
    """API_TOKEN in `Authorization: Bearer`, or in `X-Orchestrator-Token`: through Sesam's
    proxy (`/api/systems/<id>/proxy/...`) Authorization carries the node's own JWT."""
    scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
    given = [request.headers[TOKEN_HEADER]] if TOKEN_HEADER in request.headers else []
    if scheme.lower() == "bearer":
        given.append(bearer)
    # compare_digest on every attempt, an empty one too: the time taken does not tell how
    # much of a guess was right.
    return any(hmac.compare_digest(g.strip().encode("utf-8"), expected) for g in given)


def _cross_site(view: Callable[..., Any]) -> Callable[..., Any]:
    """403 for a request a page of another site could have made a browser send: with
    API_TOKEN unset, a form on any page the operator visits would otherwise start a run."""
    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        problem = _forgeable()
        if problem is not None:
            answer = jsonify(error=f"403 Forbidden: {problem}")
            answer.status_code = 403
            return answer
        return view(*args, **kwargs)
    return checked


def _forgeable() -> str | None:
    origin = request.headers.get("Origin")
    if origin is not None:
        # Browsers send Origin on every cross-site POST; it must name this service's host.
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or parts.netloc.lower() != request.host.lower():
            return "the request comes from another site (its Origin is not this host)"
    if (request.mimetype == "application/json" or "X-Requested-With" in request.headers
            or "Authorization" in request.headers or TOKEN_HEADER in request.headers):
        return None
    return ("send a JSON body (Content-Type: application/json) or an X-Requested-With "
            "header: a plain form post could come from any site")


def _log_caller(what: str) -> None:
    """Who asked for a run: the peer's address and, behind a proxy, what it forwarded (quoted:
    a header is the caller's own text and must not forge a second log line)."""
    forwarded = request.headers.get("X-Forwarded-For")
    log.info("%s asked by %s%s", what, request.remote_addr or "an unknown address",
             f" (X-Forwarded-For {json.dumps(forwarded[:200])})" if forwarded else "")


_PLAN_ID = re.compile(r"[0-9a-f]{16}")


def _plan_id() -> tuple[str | None, str | None]:
    """The plan id POST /sync may name (JSON body `plan_id`, or `?plan_id=`), or a problem."""
    given = request.args.get("plan_id")
    if given is None and request.mimetype == "application/json" and request.content_length:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return None, "the body must be a JSON object, e.g. {\"plan_id\": \"...\"}"
        given = body.get("plan_id")
    if given is None:
        return None, None
    if not isinstance(given, str) or not _PLAN_ID.fullmatch(given):
        return None, "plan_id must be the 16 hex digits GET /plan gives as plan_id"
    return given, None


class _InOrder(DefaultJSONProvider):
    sort_keys = False          # keep reports in the order they were written


def create_app(*, config: Config, runner: Runner) -> Flask:
    app = Flask(__name__)
    app.json = _InOrder(app)
    protected = _bearer_guard(config)

    def status() -> dict[str, Any]:
        return {"version": __version__, "running": runner.running, "progress": runner.progress(),
                "next_run": runner.next_run(), **runner.shown(), **runner.sync_state(),
                "flows": runner.flows(), "flow_counts": runner.flow_counts(),
                "config": config.public()}

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Any:
        # 404, 405, ...: the same one-line JSON as 401 and 409, not Flask's HTML page.
        answer = jsonify(error=f"{error.code} {error.name}: {error.description}")
        answer.status_code = error.code or 500
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            answer.headers["Allow"] = ", ".join(error.valid_methods)
        return answer

    @app.get("/health")
    def health() -> Any:
        # Liveness only: answering at all is the signal; a failed run is not an unhealthy
        # process (it shows on /status and /metrics instead).
        return jsonify(status="ok", running=runner.running)

    @app.get("/status")
    def status_view() -> Any:
        return jsonify(status())

    @app.post("/sync")
    @protected          # first: without the API token, 401 says what is missing
    @_cross_site
    def sync() -> Any:
        _log_caller("POST /sync")
        plan_id, problem = _plan_id()
        if problem is not None:
            answer = jsonify(error=f"400 Bad Request: {problem}")
            answer.status_code = 400
            return answer
        try:
            report = runner.sync(trigger="api", plan_id=plan_id)
        except Busy as busy:
            answer = jsonify(error="a reconciliation is already in progress; try again when "
                                   "it has finished", progress=busy.progress)
            answer.status_code = 409
            return answer
        if report.stale_plan:
            # What a person approved is not what would run now: nothing was written.
            answer = jsonify(error="409 Conflict: the nodes changed since that plan was made; "
                                   "review the new plan (GET /plan) and sync with its plan_id",
                             plan_id=report.plan_id)
            answer.status_code = 409
            return answer
        # In pieces: a first run's report holds an entry per action, MBs at 10,000 pipes.
        return app.response_class(utf8_pieces(report.as_json(), end="\n"),
                                  mimetype="application/json")

    @app.get("/plan")
    @protected
    def plan() -> Any:
        _log_caller("GET /plan")
        # Made once and shared by every caller of the flight, as its pieces: no whole text,
        # and no joined copy of them (10,000 flows are an answer of about 3 MB).
        body = runner.plan_as(lambda report: tuple(utf8_pieces(
            report.as_json(flow_objects=True), end="\n")))
        return app.response_class(body, mimetype="application/json")

    @app.get("/runs/<int:run_id>")
    def run_report(run_id: int) -> Any:
        # One run's whole report (actions, warnings, errors): what the page links to.
        found = runner.report(run_id)
        if found is None:
            answer = jsonify(error=f"404 Not Found: run {run_id} is not among the last "
                                   "runs kept")
            answer.status_code = 404
            return answer
        return jsonify(found)

    @app.get("/metrics")
    def metrics() -> Any:
        return Response(runner.metrics.exposition(), mimetype=None,
                        content_type=runner.metrics.content_type)

    @app.get("/")
    @app.get("/page")       # the same page at a non-empty path: see README, Reaching it
    def index() -> Any:
        # Jinja autoescapes .html templates: component ids are user input.
        return render_template("index.html", request_root=request.host_url, **status())

    return app
