"""The ``pokewatch`` command line: a thin terminal front over the package.

Each sub-command lives in its own module under :mod:`pokewatch.commands` and
exposes ``register(subparsers)``; this file only discovers them, so adding a
command never means editing a shared list. Errors PokeWatch raises on purpose
print as one line (no stack trace) and exit with status 2.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from pokewatch import commands
from pokewatch.errors import PokeWatchError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pokewatch",
        description="PokeWatch: Pokémon-card fair values and BUY/SELL/HOLD flags, run by run.",
        epilog="Run 'pokewatch COMMAND --help' for the options of one command.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "handler", None):
        parser.print_help()
        return 1
    try:
        return int(args.handler(args) or 0)
    except PokeWatchError as exc:
        print(f"pokewatch: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
