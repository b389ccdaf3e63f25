"""``pokewatch keys``: make API keys (readers or admins), and find a key's id in the server's logs.

The server logs and counts a key only by its id (a SHA-256 prefix, see
:mod:`pokewatch.api.security`); ``keys id`` computes that id from a key read on
standard input, never from the command line, where shell history would keep it.
A key's role (``reader``, the default, or ``admin``, which may also ``POST /reload``)
is written after it in the key file: ``keys new --role admin --quiet`` prints such lines.
"""
from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser("keys", help="make API keys for 'pokewatch serve'",
                                   description="Make API keys and look up their log ids.")
    actions = parser.add_subparsers(dest="keys_action", metavar="ACTION")
    new = actions.add_parser("new", help="print a new random key and how to install it")
    new.add_argument("--count", type=int, default=1, help="how many keys (default 1)")
    new.add_argument("--role", choices=["reader", "admin"], default="reader",
                     help="reader (default): the data routes; admin: POST /reload too (the pipeline's key)")
    new.add_argument("--quiet", action="store_true",
                     help="print only key file lines, '<key>' or '<key> admin' (... --quiet >> api_keys)")
    new.set_defaults(handler=new_keys)
    ident = actions.add_parser("id", help="print the log id of keys read from stdin, one per line "
                                          "(key file lines with a role are fine)")
    ident.set_defaults(handler=key_ids)
    parser.set_defaults(handler=lambda args: parser.print_help() or 1)


def new_keys(args: argparse.Namespace) -> int:
    from pokewatch.api.security import key_id, new_key

    if not 1 <= args.count <= 100:
        print("pokewatch: error: --count must be between 1 and 100", file=sys.stderr)
        return 2
    keys = [new_key() for _ in range(args.count)]
    admin = args.role == "admin"
    lines = [f"{key} admin" if admin else key for key in keys]
    if args.quiet:
        print("\n".join(lines))
        return 0
    joined = ",".join(keys)
    variable = "POKEWATCH_API_ADMIN_KEYS" if admin else "POKEWATCH_API_KEYS"
    print(f"New {args.role} API key(s). They are shown once: store them in your secret manager now.\n")
    for key in keys:
        print(f"  {key}    (log id {key_id(key)}, role {args.role})")
    quoted = " ".join(f"'{line}'" for line in lines)
    print(f"""
Give the server the key(s) in one of two ways:
  export {variable}="{joined}"
      (comma-separated; to rotate, list the old and the new key together,
       move clients to the new key, then drop the old one)
  or, one key per line, in a file readable only by the server's user:
      umask 077; printf '%s\\n' {quoted} >> /etc/pokewatch/api_keys
      export POKEWATCH_API_KEY_FILE=/etc/pokewatch/api_keys

Clients send it as the X-API-Key header, never in the URL (the server refuses that):
  curl -H "X-API-Key: $KEY" "http://127.0.0.1:8000/fair_price?card_id=sv3pt5-199"
Reader keys may call every data route; only admin keys may POST /reload.
The pipeline's reload hook reads its (admin) key from POKEWATCH_API_KEY.
The server logs only the log id shown above, never the key.""")
    return 0


def key_ids(args: argparse.Namespace) -> int:
    from pokewatch.api.security import key_id

    keys = [line.split()[0] for line in sys.stdin
            if line.strip() and not line.lstrip().startswith("#")]
    if not keys:
        print("pokewatch: error: no key on standard input; e.g. "
              "'pokewatch keys id < keyfile' or paste one and press Ctrl-D", file=sys.stderr)
        return 2
    for key in keys:
        print(key_id(key))
    return 0
