"""``pokewatch report [RUN ...]``: render report.html of run folders, then runs/index.html.

The pipeline renders both itself when it publishes a run; this is for by hand, after
changing the report code or for an older run. The pages come from
:mod:`pokewatch.analysis.report`. A run folder is a path (``runs/2026-11-28``,
``runs/latest``); with none, only the index of every run is written.
"""
from __future__ import annotations

import argparse

EXAMPLES = """\
examples:
  pokewatch report runs/2026-11-28     # report.html of that run, then runs/index.html
  pokewatch report                     # only runs/index.html
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="render report.html of run folders, then runs/index.html",
        description="Render report.html of each RUN (an executed run folder), then regenerate runs/index.html "
                    "of every run. With no RUN only the index is written.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="*", metavar="RUN", help="a run folder, e.g. runs/latest")
    parser.set_defaults(handler=report)


def report(args: argparse.Namespace) -> int:
    from pokewatch.analysis import report as pages  # noqa: PLC0415 - nbconvert only when rendering

    for run_dir in args.run_dirs:
        print(pages.render_report(run_dir))
    print(pages.write_index())
    return 0
