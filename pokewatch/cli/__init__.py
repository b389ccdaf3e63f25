"""The ``pokewatch`` command line.

:mod:`~pokewatch.cli.main` parses and dispatches, :mod:`~pokewatch.cli.commands` holds one module
per command, and :mod:`~pokewatch.cli.terminal` prints.
"""
