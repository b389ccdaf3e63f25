"""One exception type per failure kind, so callers can react to what went wrong.

Every message says what was wrong, with which input, and what to do next.
All derive from :class:`PokeWatchError`, which command-line entry points catch
to print a one-line error instead of a stack trace.
"""
from __future__ import annotations


class PokeWatchError(Exception):
    """Base class of every error PokeWatch raises on purpose."""


class ParameterError(PokeWatchError, ValueError):
    """A run or function parameter is out of range or of the wrong type."""


class SchemaError(PokeWatchError, ValueError):
    """A price table is missing required columns or has unusable types."""


class UnknownCardError(PokeWatchError, KeyError):
    """A card id is not in the price history or the model."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownDateError(PokeWatchError, KeyError):
    """A date is outside the range a model or run covers."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class SourceError(PokeWatchError):
    """A price source could not be reached or answered with something unusable."""


class RunError(PokeWatchError):
    """A run folder is missing, incomplete or failed."""
