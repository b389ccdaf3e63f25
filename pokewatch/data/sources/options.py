"""Source options: what each price source accepts, checked once, before anything runs.

Why one module: a collect's options arrive as text from ``--param`` and
``source_options`` (``n_series:abc``), and each source used to convert its own with
``int(...)``, so a bad value surfaced as a raw ValueError deep inside a fetch, after
the run had started. Now each source declares its options once, as :class:`Option`
values, and :func:`check_options` validates and normalises all of them: types,
ranges, allowed values and names. Its errors name the option as the user typed it
(``input_path``, not the internal ``path``) and list the known names, so the
pipeline's plan step (``get_source(name).check_options(options)``) can refuse a bad
value in a second, with exit code 2.

Kinds of option (``Option.kind``):

============ ==============================================================
``int``      a whole number (``"12"``, ``12`` or ``12.0``), within [minimum, maximum]
``float``    a finite number, within [minimum, maximum]
``bool``     true/false, yes/no, on/off, 1/0
``text``     a short string (numbers are accepted and turned into text)
``choice``   one of ``choices`` (case-insensitive), returned as written there
``file``     the path of an existing file, with a suffix from ``choices``
``folder``   the path of an existing folder
``custom``   checked by the option's ``parse`` callable (a watchlist, a column map)
============ ==============================================================

The collect notebook passes ``category``, ``n_series`` and ``seed`` to every source
(they have notebook defaults); a source that does not read one simply ignores it
(:data:`NOTEBOOK_DEFAULTS`). Every other unknown name is an error.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pokewatch.errors import ParameterError

logger = logging.getLogger(__name__)

#: Options the collect notebook always passes (each has a notebook default), whatever the source.
NOTEBOOK_DEFAULTS = frozenset({"category", "n_series", "seed"})
#: Longest text option accepted: options are ids, names and queries, never documents.
MAX_TEXT_CHARS = 2000
_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}


@dataclass(frozen=True)
class Option:
    """One option a source reads.

    Attributes:
        name: the key in the options dict.
        kind: how the value is checked (module docstring).
        default: the value when the option is absent or empty (``None``: not set).
        help: one line for docs and error messages.
        minimum, maximum: inclusive bounds of ``int`` and ``float`` options.
        choices: allowed values of a ``choice``, allowed suffixes of a ``file``.
        typed_as: the name the user types when it differs from ``name`` (the collect
            notebook's ``input_path`` arrives as ``path``); errors use it.
        aliases: other keys accepted for the same option.
        parse: the check of a ``custom`` option, ``parse(value, files=bool)`` -> the
            normalised value, raising :class:`ParameterError`; ``files`` says whether
            it may check the disk (off when re-parsing a stored run).
    """

    name: str
    kind: str
    default: Any = None
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    typed_as: str = ""
    aliases: tuple[str, ...] = ()
    parse: Callable[..., Any] | None = None

    @property
    def label(self) -> str:
        """The option's name as the user types it."""
        return self.typed_as or self.name

    def check(self, value, *, files: bool = True):
        """``value`` validated and normalised for this option.

        Raises:
            ParameterError: the value has the wrong type, is out of range or not allowed.
        """
        return _CHECKS[self.kind](self, value, files)


def _bounds_text(option: Option) -> str:
    low = "-inf" if option.minimum is None else f"{option.minimum:g}"
    high = "inf" if option.maximum is None else f"{option.maximum:g}"
    return f"{low}..{high}"


def _in_bounds(option: Option, number: float) -> None:
    if (option.minimum is not None and number < option.minimum) or \
            (option.maximum is not None and number > option.maximum):
        raise ParameterError(f"option {option.label} must be in {_bounds_text(option)}, got {number:g}")


def _check_int(option: Option, value, files: bool) -> int:
    number = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value == int(value):
        number = int(value)
    elif isinstance(value, str):
        text = value.strip().replace("_", "")
        try:
            number = int(text)
        except ValueError:
            try:
                as_float = float(text)
            except ValueError:
                as_float = math.nan
            number = int(as_float) if math.isfinite(as_float) and as_float == int(as_float) else None
    if number is None:
        raise ParameterError(f"option {option.label} must be a whole number, got {value!r}")
    _in_bounds(option, number)
    return number


def _check_float(option: Option, value, files: bool) -> float:
    number = math.nan
    if not isinstance(value, bool) and isinstance(value, (int, float, str)):
        try:
            number = float(value.strip() if isinstance(value, str) else value)
        except ValueError:
            number = math.nan
    if not math.isfinite(number):
        raise ParameterError(f"option {option.label} must be a number, got {value!r}")
    _in_bounds(option, number)
    return number


def _check_bool(option: Option, value, files: bool) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ParameterError(f"option {option.label} must be true or false, got {value!r}")


def _check_text(option: Option, value, files: bool) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ParameterError(f"option {option.label} must be text, got {type(value).__name__} {value!r}")
    text = str(value).strip()
    if len(text) > MAX_TEXT_CHARS:
        raise ParameterError(f"option {option.label} is {len(text):,} characters long; at most "
                             f"{MAX_TEXT_CHARS:,} are accepted")
    return text


def _check_choice(option: Option, value, files: bool) -> str:
    text = _check_text(option, value, files)
    for choice in option.choices:
        if text.lower() == choice.lower():
            return choice
    raise ParameterError(f"option {option.label} must be one of {', '.join(option.choices)}, got {value!r}")


def _check_file(option: Option, value, files: bool) -> str:
    text = _check_text(option, value, files)
    path = Path(text).expanduser()
    if option.choices and path.suffix.lower() not in option.choices:
        raise ParameterError(f"option {option.label}: {text} must end in one of {', '.join(option.choices)}")
    if files and not path.is_file():
        where = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
        raise ParameterError(f"option {option.label}: file {text} does not exist{where}; check the path")
    return text


def _check_folder(option: Option, value, files: bool) -> str:
    text = _check_text(option, value, files)
    if files and not Path(text).expanduser().is_dir():
        raise ParameterError(f"option {option.label}: folder {text} does not exist; check the path")
    return text


def _check_custom(option: Option, value, files: bool):
    if option.parse is None:
        raise ParameterError(f"option {option.label} has no check (a PokeWatch bug: report it)")
    return option.parse(value, files=files)


_CHECKS: dict[str, Callable[[Option, Any, bool], Any]] = {
    "int": _check_int, "float": _check_float, "bool": _check_bool, "text": _check_text,
    "choice": _check_choice, "file": _check_file, "folder": _check_folder, "custom": _check_custom,
}


def check_options(specs: Iterable[Option], options: Mapping[str, Any] | None, *, source: str,
                  files: bool = True) -> dict[str, Any]:
    """Every option of ``specs``, validated and normalised from ``options``.

    Args:
        specs: the options a source reads.
        options: what the user gave (``pokewatch.run.collect.source_options(...)``).
        source: the source's name, for messages.
        files: check that file and folder options exist (off for a replay).

    Returns:
        ``{name: value}`` for every option in ``specs``: the checked value when one
        was given (empty strings and None count as not given), else its default.
        Names in :data:`NOTEBOOK_DEFAULTS` that the source does not read are dropped.

    Raises:
        ParameterError: an unknown option name (listing the known ones), an option
            given twice under two names, or a bad value (naming the option).
    """
    specs = list(specs)
    by_key: dict[str, Option] = {}
    for spec in specs:
        for key in (spec.name, *spec.aliases, *([spec.typed_as] if spec.typed_as else [])):
            by_key[key] = spec
    checked: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    for key, value in (options or {}).items():
        spec = by_key.get(str(key))
        if spec is None:
            if key in NOTEBOOK_DEFAULTS:
                continue
            known = sorted({s.label for s in specs})
            raise ParameterError(f"source {source} has no option {key!r}; its options are: {', '.join(known)}")
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if spec.name in given_as:
            raise ParameterError(f"option {spec.label} was given twice, as {given_as[spec.name]!r} and {key!r}; "
                                 "keep one")
        given_as[spec.name] = str(key)
        checked[spec.name] = spec.check(value, files=files)
    return {spec.name: checked.get(spec.name, spec.default) for spec in specs}


def describe(specs: Iterable[Option]) -> list[dict[str, Any]]:
    """The options as ``{name, kind, default, help}`` rows (for docs and ``--help`` text)."""
    return [{"name": s.label, "kind": s.kind, "default": s.default, "help": s.help} for s in specs]
