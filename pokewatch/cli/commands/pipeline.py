"""``pokewatch pipeline``: the steps ``scripts/run_pipeline.sh`` runs between its notebooks.

``plan``, ``start``, ``should-train``, ``fail``, ``index`` and ``finish``, as the bash
script calls them (``python -m pokewatch pipeline COMMAND``). This module only parses
the options; what each command does lives in :mod:`pokewatch.run.helpers`, which a
reader of the script opens next. ``start``, ``should-train`` and ``fail`` must start
fast, so nothing here imports more than the standard library until a command runs
(``tests/test_pipeline_helpers.py`` checks they load no pandas, numpy, pydantic or joblib).

Output is what the script reads: ``plan`` prints the run date, ``start`` the attempt
folder, ``should-train`` ``yes: why`` or ``no: why`` (exit 0 to train, 1 not to), and
``fail`` its one summary line. Log records and errors go to stderr stamped like the
script's own lines (``<UTC time> pipeline: ...``); an error PokeWatch raises on purpose is
one such line and exit status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXAMPLES = """\
scripts/run_pipeline.sh calls, in order:
  python -m pokewatch pipeline plan --date today --source demo --out PLAN.json [--param NAME=VALUE ...]
  python -m pokewatch pipeline start PLAN.json --pid $$
  python -m pokewatch pipeline should-train --date DATE --source demo --attempt ATTEMPT [--force]
  python -m pokewatch pipeline finish --attempt ATTEMPT --wall collect=12.3 --wall evaluate=40.1
  python -m pokewatch pipeline fail --attempt ATTEMPT --step evaluate --notebook NB --log LOG --message "..."
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "pipeline", help="the helper steps scripts/run_pipeline.sh calls (plan, start, should-train, ...)",
        description="The decisions and bookkeeping of scripts/run_pipeline.sh, one command per step.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(handler=lambda args: parser.print_help() or 1, log_mode="pipeline", log_level="warning")
    sub = parser.add_subparsers(dest="pipeline_command", metavar="COMMAND")
    p = sub.add_parser("plan", help="validate parameters; write the plan; print the run date")
    p.add_argument("--date", default="today")
    p.add_argument("--source", default="demo")
    p.add_argument("--param", action="append", default=[])
    p.add_argument("--backfill", default="")
    p.add_argument("--archives", default="")
    p.add_argument("--out", help="write the plan JSON here")
    p.set_defaults(handler=_guarded(plan))
    s = sub.add_parser("start", help="create an attempt folder from a plan; print its path")
    s.add_argument("plan_file")
    s.add_argument("--pid", type=int, help="the process running the attempt (default: this one)")
    s.set_defaults(handler=_guarded(start))
    t = sub.add_parser("should-train", help="print yes/no and why; exit 0 to train, 1 not to")
    t.add_argument("--date", required=True)
    t.add_argument("--force", action="store_true")
    t.add_argument("--source", help="the run's price source: only its models count")
    t.add_argument("--attempt", help="record the decision in this attempt's manifest")
    t.set_defaults(handler=_guarded(should_train))
    f = sub.add_parser("fail", help="mark an attempt failed; print the one-line summary")
    f.add_argument("--attempt", required=True)
    f.add_argument("--step", required=True)
    f.add_argument("--notebook")
    f.add_argument("--log", help="the step's full output")
    f.add_argument("--message", default="")
    f.add_argument("--wall", action="append", default=[], metavar="STEP=SECONDS")
    f.add_argument("--no-index", action="store_true", help="do not regenerate runs/index.html")
    f.set_defaults(handler=_guarded(fail))
    i = sub.add_parser("index", help="regenerate runs/index.html")
    i.set_defaults(handler=_guarded(index))
    d = sub.add_parser("finish", help="render the report, publish, print the summary")
    d.add_argument("--attempt", required=True)
    d.add_argument("--wall", action="append", default=[], metavar="STEP=SECONDS")
    d.set_defaults(handler=_guarded(finish))


def _guarded(command):
    """``command`` with a PokeWatch error said as one stamped line on stderr and exit status 2."""
    def handler(args: argparse.Namespace) -> int:
        from pokewatch.errors import PokeWatchError  # noqa: PLC0415
        from pokewatch.run import helpers  # noqa: PLC0415

        try:
            return command(helpers, args)
        except PokeWatchError as exc:
            helpers.say(f"error: {exc}", sys.stderr)
            return 2
    return handler


def plan(helpers, args: argparse.Namespace) -> int:
    result = helpers.plan(args.date, args.source, args.param, backfill=args.backfill, archives=args.archives)
    if args.out:
        helpers.save_plan(result, args.out)
    print(result["run_date"])
    return 0


def start(helpers, args: argparse.Namespace) -> int:
    print(helpers.start(args.plan_file, pid=args.pid))
    return 0


def should_train(helpers, args: argparse.Namespace) -> int:
    train, reason = helpers.should_train(args.date, args.force, args.source,
                                         attempt=Path(args.attempt) if args.attempt else None)
    print(f"{'yes' if train else 'no'}: {reason}")
    return 0 if train else 1


def fail(helpers, args: argparse.Namespace) -> int:
    print(helpers.fail(Path(args.attempt), args.step, args.message or "step failed",
                       Path(args.notebook) if args.notebook else None, Path(args.log) if args.log else None,
                       helpers.wall_times(args.wall)), flush=True)
    if not args.no_index:
        helpers.refresh_index()
    return 0


def index(helpers, args: argparse.Namespace) -> int:
    helpers.refresh_index()
    return 0


def finish(helpers, args: argparse.Namespace) -> int:
    helpers.finish(Path(args.attempt), helpers.wall_times(args.wall))
    return 0
