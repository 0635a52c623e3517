"""Command line: `python -m service [--once | --plan]`.

--once   one reconciliation; prints the report as JSON; exit 0 when ok, 1 otherwise
--plan   the dry run, for a person: summary, each step with its reason, flags and diff;
         writes nothing (--plan --json: the same as JSON, as GET /plan answers)
(none)   serve the API and run every UPDATE_INTERVAL seconds
--version  print the version and exit
A configuration error exits 2, one line per problem on stderr, before any node is contacted.
Logs go to stdout when serving, to stderr otherwise; LOG_FORMAT=json makes them JSON lines.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from service import logs
from service.config import Config, ConfigError, load_config
from service.report import Report
from service.version import __version__

_DESCRIPTION = ("The orchestrator for Sesam: moves the systems slave nodes manage, and their "
                "pipes, from the master to the slaves. Configured by environment variables.")
_EPILOG = """commands:
  python -m service            serve the API on PORT; a run every UPDATE_INTERVAL seconds
  python -m service --once     one run; the report as JSON; exit 0 when ok, 1 otherwise
  python -m service --plan     the dry run for a person: why, diffs, flags; writes nothing
  python -m service --plan --json  the same as data, as GET /plan answers
  python -m service --version  the version
endpoints when serving:
  GET /health, GET /status, GET / and GET /page (the page), GET /metrics, GET /plan,
  POST /sync, GET /runs/<int:run_id> (one kept run's report)
environment:
  MASTER_NODE, SLAVE_NODES (JSON, required), UPDATE_INTERVAL, API_TOKEN, PORT,
  PER_NODE_CONCURRENCY, REQUEST_TIMEOUT, RUN_TIMEOUT, LOG_LEVEL, LOG_FORMAT,
  SYNC_POLICY, HISTORY_PATH, MAX_ANSWER_MB
a configuration error exits 2, every problem on stderr, before any node is contacted;
see README.rst"""


def main(argv: list[str] | None = None, *, exit_fast: bool = False) -> int:
    """The command; with exit_fast (the real command line, not a test calling it), the
    process ends as soon as its work is done and written (see _exit_now)."""
    parser = argparse.ArgumentParser(prog="python -m service", description=_DESCRIPTION,
                                     epilog=_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--once", action="store_true", help="run one reconciliation and exit")
    modes.add_argument("--plan", action="store_true", help="print the plan, write nothing")
    parser.add_argument("--json", action="store_true", help="with --plan: print JSON")
    args = parser.parse_args(argv)
    if args.json and not args.plan:
        parser.error("--json goes with --plan")
    try:
        config = load_config(os.environ)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"configuration error: {problem}", file=sys.stderr)
        return 2
    mode: logs.Mode = "once" if args.once else "plan" if args.plan else "serve"
    # --once and --plan keep stdout for their JSON.
    logs.configure(config.log_level, config.log_format,
                   sys.stdout if mode == "serve" else sys.stderr)
    logging.getLogger("service").info("%s", logs.startup_line(config, mode))
    for warning in config.warnings():
        # At start, before any run: a token about to be written in clear text, a typo'd field.
        logging.getLogger("service").warning("configuration: %s", warning)
    if args.plan or args.once:
        try:
            report = once(config, dry_run=args.plan)
        except Exception as exc:  # noqa: BLE001 - one line, not a traceback with its locals
            print(f"the run stopped on an internal error: {type(exc).__name__}", file=sys.stderr)
            return 1
        if args.plan:
            from service.core.plan_text import render
            print(json.dumps(report.as_json(), indent=2) if args.json
                  else render(report.as_json()))
        else:
            print(json.dumps(report.as_json(), indent=2))
        status = 0 if report.outcome == "ok" else 1
        if exit_fast:
            _exit_now(status)
        return status
    from service.web.server import serve
    serve(config)           # returns once stopped: no run in flight, its history written
    if exit_fast:
        _exit_now(0)
    return 0


def once(config: Config, *, dry_run: bool) -> Report:
    """One run (or plan) for --once and --plan, logging the lines the served process logs
    (logs.log_action, logs.log_findings). The run redacts its own report."""
    from service import orchestrator
    report = orchestrator.run(config, dry_run=dry_run,
                              progress=lambda done, total, action: logs.log_action(action))
    logs.log_findings(report.warnings, report.errors)
    logs.RUNS.info("run %s: %d action(s), %d warning(s), %d error(s)", report.outcome,
                   len(report.actions), len(report.warnings), len(report.errors))
    return report


def _exit_now(code: int) -> None:
    """End the process without the interpreter's teardown.

    Everything it had to say is written: the report, the history, and the log lines, flushed
    here. What is left is freeing a module graph that dies with the process anyway, and that
    takes about a third of a cold `--plan` (150 ms and more, mostly pydantic's and requests'
    modules) and as long again after a SIGTERM. Nothing of ours runs at exit: no atexit hook,
    no thread still working, no file left open for writing.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main(exit_fast=True))
