"""Command line: `python -m service [--once | --plan]`.

--once   one reconciliation; prints the report as JSON; exit 0 when ok, 1 otherwise
--plan   the dry run, for a person: summary, each step with its reason, flags and diff;
         writes nothing (--plan --json: the same as JSON, as GET /plan answers)
(none)   serve the API and run every UPDATE_INTERVAL seconds
A configuration error exits 2 with one line on stderr, before any node is contacted.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from .config import ConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="run one reconciliation and exit")
    mode.add_argument("--plan", action="store_true", help="print the plan, write nothing")
    parser.add_argument("--json", action="store_true", help="with --plan: print JSON")
    args = parser.parse_args(argv)
    if args.json and not args.plan:
        parser.error("--json goes with --plan")
    try:
        config = load_config(os.environ)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level, stream=sys.stderr if (args.once or args.plan)
                        else sys.stdout, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from . import orchestrator
    if args.plan or args.once:
        try:
            # The run redacts its own report (tokens, credentials, a node's text).
            report = orchestrator.run(config, dry_run=args.plan)
        except Exception as exc:  # noqa: BLE001 - one line, not a traceback with its locals
            print(f"the run stopped on an internal error: {type(exc).__name__}", file=sys.stderr)
            return 1
        if args.plan:
            from .plan_text import render
            print(json.dumps(report.as_json(), indent=2) if args.json
                  else render(report.as_json()))
        else:
            print(json.dumps(report.as_json(), indent=2))
        return 0 if report.outcome == "ok" else 1
    from .server import serve
    serve(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
