"""The ``pokewatch`` command line: a thin terminal front over the package.

Each sub-command lives in its own module under :mod:`pokewatch.cli` and
exposes ``register(subparsers)``; this file only discovers them, so adding a
command never means editing a shared list. Errors PokeWatch raises on purpose
print as one line (no stack trace) and exit with status 2. Logging is set up here,
once, for every command (:func:`pokewatch.logs.configure`): in ``terminal`` mode at
INFO (DEBUG with ``-v``), unless the command's parser sets ``log_mode`` and
``log_level`` defaults of its own (``pipeline``: stamped for the cron log, at WARNING;
``serve``: JSON at its ``--log-level``).

Start-up is kept short (see ``benchmarks/cli_startup.py``): only the command being
run is imported. ``pokewatch --help`` lists every command from the first line of its
module docstring, read from the file without importing it, because importing a
command can pull in pandas or the price sources. A reader that stops early
(``pokewatch runs | head``) ends the command quietly instead of with a BrokenPipeError.
Two optional modules nothing here uses are never imported (:mod:`pokewatch.startup`):
``finish`` renders the report with nbformat, which would spend 1.3 s on one of them.
"""
from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from pathlib import Path

from pokewatch import __version__, logs
from pokewatch.startup import skip_unused_imports
from pokewatch.cli import commands
from pokewatch.errors import PokeWatchError

_PREFIX = re.compile(r"^.*?``:\s*")


def command_names() -> list[str]:
    """The sub-commands there are: the modules of :mod:`pokewatch.cli.commands`, found without importing them.

    A plain directory listing: :func:`pkgutil.iter_modules` would import :mod:`inspect`,
    which costs the lean pipeline commands about 10 ms of start-up.
    """
    return sorted(path.stem for path in Path(commands.__path__[0]).glob("*.py") if not path.stem.startswith("_"))


def command_summary(name: str) -> str:
    """One line on a command: its module docstring's first line, minus the leading ````pokewatch x````: part."""
    import ast  # noqa: PLC0415 - only a help listing reads the docstrings

    path = Path(commands.__path__[0]) / f"{name}.py"
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    except (OSError, SyntaxError):
        return ""
    return _PREFIX.sub("", doc.strip().splitlines()[0] if doc.strip() else "").replace("``", "")


def _wanted(argv: list[str], names: list[str]) -> str | None:
    """The command ``argv`` runs: its first word that is not an option (top-level options take no value)."""
    word = next((a for a in argv if not a.startswith("-")), None)
    return word if word in names else None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv``, only the command it names is imported (the others are listed by name)."""
    parser = argparse.ArgumentParser(
        prog="pokewatch",
        description="PokeWatch: Pokémon-card fair values and BUY/SELL/HOLD flags, run by run.",
        epilog="Run 'pokewatch COMMAND --help' for the options of one command.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    parser.add_argument("--version", action="version", version=f"pokewatch {__version__}",
                        help="print the installed version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = command_names()
    wanted = _wanted(argv, names) if argv is not None else None
    # The other commands' one-line summaries show only in the top-level help: when a
    # command runs, reading and parsing their files would only slow its start.
    listing = wanted is None or any(a in ("-h", "--help") for a in argv[:argv.index(wanted)])
    for name in names:
        if argv is None or name == wanted:
            importlib.import_module(f"{commands.__name__}.{name}").register(subparsers)
        else:
            subparsers.add_parser(name, help=command_summary(name) if listing else None)
    return parser


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so flushing at exit does not raise again into a closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit status (2 for an error PokeWatch raised on purpose).

    A closed output pipe (``| head``) returns 0: the reader chose to stop reading.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    skip_unused_imports()
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        logs.configure(getattr(args, "log_mode", "terminal"),
                       "debug" if args.verbose else getattr(args, "log_level", "info"))
        if not getattr(args, "handler", None):
            parser.print_help()
            return 1
        try:
            status = int(args.handler(args) or 0)
        except PokeWatchError as exc:
            print(f"pokewatch: error: {exc}", file=sys.stderr)
            status = 2
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        _quiet_stdout()
        return 0


if __name__ == "__main__":
    sys.exit(main())
