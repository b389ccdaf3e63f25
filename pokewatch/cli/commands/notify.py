"""``pokewatch notify health|reload``: check a running API, or make it serve the newest run.

``scripts/run_pipeline.sh`` calls it after a good run when ``POKEWATCH_API_URL`` is set.
It prints exactly one line and exits 0 on success, 1 when the API failed, could not be
reached or serves an older run, and 2 when the client is misconfigured (see
:mod:`pokewatch.api.notify`, which does the work with the standard library only, so the
check starts fast and runs wherever the pipeline does). The key is never printed.
"""
from __future__ import annotations

import argparse

EXAMPLES = """\
examples:
  POKEWATCH_API_URL=http://127.0.0.1:8000 pokewatch notify health
  POKEWATCH_API_URL=http://127.0.0.1:8000 POKEWATCH_API_KEY=<admin key> pokewatch notify reload

Reads POKEWATCH_API_URL, POKEWATCH_API_KEY (an admin key, for reload) and POKEWATCH_API_TIMEOUT.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "notify", help="check a running API (health) or make it serve the newest run (reload)",
        description="Check a running PokeWatch API (health) or make it serve the newest run (reload).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["health", "reload"])
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds to wait for the API (default: $POKEWATCH_API_TIMEOUT or 10)")
    parser.set_defaults(handler=notify)


def notify(args: argparse.Namespace) -> int:
    from pokewatch.api.notify import from_env  # noqa: PLC0415

    status, line = from_env(args.action, args.timeout)
    print(line)
    return status
