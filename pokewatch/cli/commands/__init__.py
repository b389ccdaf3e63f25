"""Sub-commands of the ``pokewatch`` CLI, one module each, each with ``register(subparsers)``.

A command module adds its parser and sets ``handler=`` to a function taking the
parsed ``argparse.Namespace`` and returning an exit status. It may also set
``log_mode=`` and ``log_level=`` defaults (see :func:`pokewatch.logs.configure`);
:mod:`pokewatch.cli.main` sets logging up with them before the handler runs.
``pokewatch --help`` lists them all without importing any, and running one imports
only its own module, so keep what a module imports at the top as light as the command
allows (``pipeline`` and ``notify`` import only the standard library until they run).
"""
