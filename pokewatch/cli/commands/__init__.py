"""Sub-commands of the ``pokewatch`` CLI, one module each, each with ``register(subparsers)``.

A command module adds its parser and sets ``handler=`` to a function taking the
parsed ``argparse.Namespace`` and returning an exit status.
"""
