"""Every parameter of every notebook, declared once: its type, default, range and help.

Why: the rules for a parameter used to be spread over ``checks.CHECKS``, the
notebooks' ``RunContext.open(...)`` calls, the sources and the model, so the
pipeline could not check everything before a run, and a notebook that forgot a
name in its ``open`` call never recorded it in the manifest. Here each notebook has
one pydantic model, and everything else reads the rules from it:

* ``pokewatch pipeline plan`` validates the user's ``--param`` values with
  the models before anything runs, and resolves path parameters against the
  caller's working directory (the kernels run in ``notebooks/``);
* :class:`pokewatch.run.context.RunContext` validates what papermill injected and
  records every field in the run manifest;
* ``tests/test_parameters.py`` keeps each model equal to its notebook's parameters
  cell (names, types, defaults), so the plan step needs no papermill to read them.

Validation errors become one :class:`~pokewatch.errors.ParameterError` whose message
names the parameter as the user typed it (``--date``, ``--archives``, ``parameter
input_path``), says what is allowed and quotes the help text.

This module imports pydantic; lean helper commands import it only when they validate.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from pokewatch.core import checks, methods
from pokewatch.errors import ParameterError

#: joblib backends the per-series work can be sharded over (see pokewatch.core.parallel).
ENGINES = ("loky", "threading", "dask")
#: Values of ``portfolio_file`` that are words, not paths (see pokewatch.analysis.portfolio).
PORTFOLIO_WORDS = ("auto", "none", "off", "no", "")
#: Parameters that hold a path to read, and what must be there.
INPUT_FILES = ("watchlist", "input_path", "portfolio_file")
_URL = re.compile(r"(?i)^https?://\S+$")


class _Said(ValueError):
    """A problem whose message already quotes the value: shown after the label as it is."""


# -- shared field rules ---------------------------------------------------------------------
def _bases(info: ValidationInfo) -> tuple[Path, ...]:
    """Folders a relative path is looked up in, first match wins (the validation context's ``bases``)."""
    bases = (info.context or {}).get("bases") if info.context else None
    return tuple(Path(b) for b in bases) if bases else (Path.cwd(),)


def _existing(text: str, info: ValidationInfo, *, folder: bool) -> str:
    """The absolute path of ``text`` found in one of the bases, or a ValueError."""
    path = Path(text).expanduser()
    candidates = [path] if path.is_absolute() else [base / path for base in _bases(info)]
    for candidate in candidates:
        if candidate.is_dir() if folder else candidate.is_file():
            return str(candidate.resolve())
    where = "" if path.is_absolute() else f" (looked in {', '.join(str(b) for b in _bases(info))})"
    kind = "an existing folder" if folder else "an existing file"
    if not folder and any(c.is_dir() for c in candidates):
        raise ValueError(f"must be a file, not a folder{where}")
    raise ValueError(f"must be {kind}{where}")


def _run_day(value: str) -> str:
    """``today``/empty or a YYYY-MM-DD day pandas can hold and not too far ahead."""
    if value in ("", "today"):
        return f"{checks.today():%Y-%m-%d}"
    problem = checks.day_problem(value)
    if problem:
        raise ValueError(problem + (" or today" if problem == "must be YYYY-MM-DD" else ""))
    problem = checks.future_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _window_reaches_back(days: int, info: ValidationInfo) -> int:
    """``days`` before the run date must still be a day pandas can hold."""
    run_date = info.data.get("run_date")
    if run_date and run_date not in ("latest", "today"):
        first = dt.date.fromisoformat(run_date) - dt.timedelta(days=days)
        if first < checks.FIRST_DAY:
            raise ValueError(f"reaches back to {first} from {run_date}, before {checks.FIRST_DAY}, "
                             "the first day pandas can hold")
    return days


def _known_source(value: str) -> str:
    from pokewatch.data.sources import SOURCES  # noqa: PLC0415 - the source registry, only when validating

    if value not in SOURCES:
        raise ValueError(f"must be one of {', '.join(sorted(SOURCES))}")
    return value


def _choice(value: str, options: Iterable[str]) -> str:
    if value not in options:
        raise ValueError(f"must be one of {', '.join(options)}")
    return value


class NotebookParameters(BaseModel):
    """Fields every pipeline notebook shares; subclasses add the rest in notebook order."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True, validate_default=True)
    #: The notebook (``notebooks/<name>.ipynb``) these are the parameters of.
    notebook: ClassVar[str] = ""

    run_date: str = Field("today", description="YYYY-MM-DD, the trading day this run is for, or today")
    run_dir: str = Field("", description="run folder to write to; empty means runs/interactive/<run_date>")

    @field_validator("run_date")
    @classmethod
    def _run_date(cls, value: str) -> str:
        return _run_day(value)

    @field_validator("run_dir")
    @classmethod
    def _run_dir(cls, value: str, info: ValidationInfo) -> str:
        if not value:
            return value
        path = Path(value).expanduser()
        return str((path if path.is_absolute() else _bases(info)[0] / path).resolve())

    def recorded(self) -> dict:
        """The values the run manifest records (all fields but the run folder itself)."""
        return self.model_dump(exclude={"run_dir"})


class _ScoringParameters(NotebookParameters):
    """Rules shared by train and evaluate, whose fields come from :data:`_THRESHOLDS`."""

    @field_validator("source", check_fields=False)
    @classmethod
    def _source(cls, value: str) -> str:
        return _known_source(value)

    @field_validator("engine", check_fields=False)
    @classmethod
    def _engine(cls, value: str) -> str:
        return _choice(value, ENGINES)


_THRESHOLDS = {
    "buy_threshold": dict(gt=0, lt=1, description="BUY when market is at or below fair * (1 - buy_threshold)"),
    "sell_threshold": dict(gt=0, lt=10, description="SELL when market is at or above fair * (1 + sell_threshold)"),
    "min_price": dict(ge=0, description="cards cheaper than this are never flagged"),
    "horizon_days": dict(ge=1, le=checks.MAX_HORIZON_DAYS,
                         description="a flag is judged by the price this many days later"),
    "target_return": dict(gt=0, lt=1, description="the move that makes a BUY (rise) or SELL (fall) right"),
    "workers": dict(ge=1, le=1024, description="processes for per-series work; 1 runs in-process"),
    "engine": dict(description="joblib backend for workers > 1: loky (local) or dask (a Dask cluster)"),
}


class CollectParameters(NotebookParameters):
    """``notebooks/collect.ipynb``: fetch the run date's prices into the store."""

    notebook: ClassVar[str] = "collect"

    source: str = Field("demo", description="price source: demo, tcgcsv, pokemontcg, pokemonpricetracker, file")
    history_days: int = Field(365, ge=1, le=3650,
                              description="a history-capable source's first run also collects this many prior days")
    backfill_from: str = Field("", description="YYYY-MM-DD: collect every day from here to run_date")
    archives: str = Field("", description="tcgcsv: local folder or URL of daily prices-YYYY-MM-DD.ppmd.7z archives")
    category: int = Field(3, ge=1, le=1_000_000,
                          description="tcgcsv: TCGplayer category (3 English Pokémon, 85 Japanese)")
    watchlist: str = Field("", description="watchlist.yaml or .csv naming what to track; empty means all")
    input_path: str = Field("", description="file source: CSV, Parquet or JSON export to import")
    n_series: int = Field(500, ge=1, le=200_000, description="demo: number of simulated price series")
    seed: int = Field(20261128, ge=0, le=2**63 - 1,
                      description="demo: market seed (same seed, same prices on every machine)")
    min_completeness: float = Field(0.9, ge=0, le=1,
                                    description="fail when fewer than this share of requested items could be fetched")
    replace_day: bool = Field(False, description="remove stored rows of the collected days that this collect did "
                                                 "not fetch")
    source_options: str = Field("", description="more source settings as name:value pairs or JSON, "
                                                "see docs/data_sources.md")

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        return _known_source(value)

    @field_validator("history_days")
    @classmethod
    def _history_days(cls, value: int, info: ValidationInfo) -> int:
        return _window_reaches_back(value, info)

    @field_validator("backfill_from")
    @classmethod
    def _backfill_from(cls, value: str, info: ValidationInfo) -> str:
        if not value:
            return value
        problem = checks.day_problem(value)
        if problem:
            raise ValueError(problem)
        run_date = info.data.get("run_date")
        if run_date and value > run_date:
            raise ValueError(f"must not be after the run date {run_date}")
        return value

    @field_validator("archives")
    @classmethod
    def _archives(cls, value: str, info: ValidationInfo) -> str:
        text = value.strip()
        if not text or text.lower() == "tcgcsv" or _URL.match(text):
            return text
        try:
            return _existing(text, info, folder=True)
        except ValueError as exc:
            raise ValueError(f"{exc}, an http(s) URL or tcgcsv") from None

    @field_validator("watchlist", "input_path")
    @classmethod
    def _input_file(cls, value: str, info: ValidationInfo) -> str:
        return _existing(value, info, folder=False) if value.strip() else ""

    @field_validator("source_options")
    @classmethod
    def _source_options(cls, value: str, info: ValidationInfo) -> str:
        """The options dict exactly as the collect notebook builds it, checked by the source."""
        from pokewatch.run import collect  # noqa: PLC0415 - the notebook's own options builder
        from pokewatch.data.sources import get_source  # noqa: PLC0415

        data = info.data
        if "source" not in data:  # the source itself was refused; nothing to check options against
            return value
        try:
            extra = collect.source_options(value)
        except ParameterError as exc:
            raise _Said(f": {exc}") from None
        overlap = {k: v for k, v in extra.items() if k in cls.model_fields and k != "source_options"}
        if overlap:  # an option that is also a notebook parameter obeys the parameter's rule
            try:
                cls.model_validate({**data, **overlap}, context=info.context)
            except ValidationError as exc:
                raise _Said(": " + "; ".join(describe(cls, exc, {k: f"its {k}" for k in overlap}))) from None
        options = collect.notebook_options({**data, "source_options": value})
        source = get_source(data["source"])
        declared = {option.name for option in getattr(source, "OPTIONS", ())}
        for parameter, option in (("archives", "archives"), ("watchlist", "watchlist"), ("input_path", "path")):
            if data.get(parameter) and declared and option not in declared:
                raise _Said(f": parameter {parameter} does not apply to source {data['source']}; "
                            f"leave it empty or choose a source that reads it")
        if hasattr(source, "check_options"):  # sources that declare their options check them
            try:
                source.check_options(options)
            except ParameterError as exc:
                raise _Said(f": {exc}") from None
        return value


class TrainParameters(_ScoringParameters):
    """``notebooks/train.ipynb``: choose this week's rule from outcomes known before it."""

    notebook: ClassVar[str] = "train"

    source: str = Field("demo", description="which source's stored prices to train on")
    train_days: int = Field(365, ge=1, le=3650,
                            description="days of flags (with known outcomes) each weekly selection learns from")
    method: str = Field("auto", description=methods.help_text())
    window: int = Field(0, ge=0, le=365, description="observations in the fair-value window for a fixed method; "
                                                     "0 means its default")
    buy_threshold: float = Field(0.10, **_THRESHOLDS["buy_threshold"])
    sell_threshold: float = Field(0.15, **_THRESHOLDS["sell_threshold"])
    min_price: float = Field(1.0, **_THRESHOLDS["min_price"])
    horizon_days: int = Field(7, **_THRESHOLDS["horizon_days"])
    target_return: float = Field(0.05, **_THRESHOLDS["target_return"])
    min_flags: int = Field(50, ge=1, le=1_000_000,
                           description="scored flags a rule needs in training before it can be chosen")
    keep_days: int = Field(90, ge=1, le=3650, description="days of fair values the saved model can answer for")
    stale_days: int = Field(2, ge=0, le=3650,
                            description="cards whose newest price is older than this many days are not flagged")
    workers: int = Field(1, **_THRESHOLDS["workers"])
    engine: str = Field("loky", **_THRESHOLDS["engine"])

    @field_validator("window")
    @classmethod
    def _window(cls, value: int, info: ValidationInfo) -> int:
        spec = methods.BY_NAME.get(info.data.get("method"))
        if spec is not None and spec.fixed_window and value not in (0, spec.default_window):
            raise ValueError(f"must be 0 or {spec.default_window} for {spec.name}, {spec.description}")
        return value

    @field_validator("train_days")
    @classmethod
    def _train_days(cls, value: int, info: ValidationInfo) -> int:
        return _window_reaches_back(value, info)

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        return _choice(value, (*methods.NAMES, "auto"))


class EvaluateParameters(_ScoringParameters):
    """``notebooks/evaluate.ipynb``: today's signals, the out-of-sample track record, plots and the portfolio.

    The rule's parameters (thresholds, horizon, training window) are the train
    notebook's, read from the model: evaluate scores the rule training chose.
    """

    notebook: ClassVar[str] = "evaluate"

    source: str = Field("demo", description="which source's stored prices to evaluate on")
    eval_days: int = Field(365, ge=1, le=3650, description="days of walk-forward flags the track record scores")
    top_n: int = Field(4, ge=1, le=50, description="cards shown in the price-and-band plot")
    workers: int = Field(1, **_THRESHOLDS["workers"])
    engine: str = Field("loky", **_THRESHOLDS["engine"])
    portfolio_file: str = Field("auto", description="collector holdings CSV; auto, none or a path "
                                                    "(see docs/analyst_guide.md)")

    @field_validator("eval_days")
    @classmethod
    def _eval_days(cls, value: int, info: ValidationInfo) -> int:
        return _window_reaches_back(value, info)

    @field_validator("portfolio_file")
    @classmethod
    def _portfolio_file(cls, value: str, info: ValidationInfo) -> str:
        if value.strip().lower() in PORTFOLIO_WORDS:
            return value.strip().lower()
        try:
            return _existing(value.strip(), info, folder=False)
        except ValueError as exc:
            raise ValueError(f"{exc}, or auto or none") from None


class ExploreParameters(NotebookParameters):
    """``notebooks/explore.ipynb``: look at a finished run (JupyterLab only, never published)."""

    notebook: ClassVar[str] = "explore"

    run_date: str = Field("latest", description="YYYY-MM-DD, latest or today; a published run, "
                                                "else runs/interactive/<date>")
    run_dir: str = Field("", description="an explicit run folder; overrides run_date")
    card: str = Field("", description="card name or id, fuzzy matched; empty shows the day's strongest flag")
    variant: str = Field("", description="printing such as Holofoil; empty picks the usual one")
    compare_to: str = Field("previous", description="YYYY-MM-DD of a run to compare with, previous, "
                                                    "or empty for none")
    top_n: int = Field(10, ge=1, le=1000, description="rows in the candidate and comparison tables")

    @field_validator("run_date")
    @classmethod
    def _run_date(cls, value: str) -> str:
        return value if value in ("latest", "today") else _run_day(value)

    @field_validator("run_dir")
    @classmethod
    def _run_dir(cls, value: str, info: ValidationInfo) -> str:
        return _existing(value, info, folder=True) if value else value

    @field_validator("compare_to")
    @classmethod
    def _compare_to(cls, value: str) -> str:
        if value in ("", "previous"):
            return value
        problem = checks.day_problem(value)
        if problem:
            raise ValueError(f"{problem}, previous or empty")
        return value


#: The model of each notebook, by notebook name.
MODELS: dict[str, type[NotebookParameters]] = {
    model.notebook: model for model in (CollectParameters, TrainParameters, EvaluateParameters, ExploreParameters)
}


# -- validation with messages people can act on ---------------------------------------------------
_PREDICATES = {
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "greater_than": "must be more than {gt}",
    "less_than": "must be less than {lt}",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "int_type": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "string_type": "must be text",
    "bool_parsing": "must be true or false",
}


def describe(model: type[NotebookParameters], error: ValidationError, labels: Mapping[str, str] | None = None
             ) -> list[str]:
    """One sentence per problem: the parameter as the user typed it, what is allowed, what was given."""
    labels = labels or {}
    sentences = []
    for problem in error.errors(include_url=False):
        name = str(problem["loc"][0]) if problem["loc"] else ""
        label = labels.get(name, f"parameter {name}")
        if problem["type"] == "extra_forbidden":
            sentences.append(f"unknown parameter {name!r}; the {model.notebook} notebook declares: "
                             f"{', '.join(model.model_fields)}")
            continue
        if problem["type"] == "value_error" and isinstance(problem["ctx"]["error"], _Said):
            sentences.append(f"{label}{problem['ctx']['error']}")
            continue
        if problem["type"] == "value_error":
            predicate = str(problem["ctx"]["error"])
        else:
            predicate = _PREDICATES.get(problem["type"], problem["msg"]).format(**problem.get("ctx", {}))
        field = model.model_fields.get(name)
        help_text = f" ({field.description})" if field is not None and field.description else ""
        sentences.append(f"{label} {predicate}, got {problem['input']!r}{help_text}")
    return sentences


def validate(notebook: str, values: Mapping, *, labels: Mapping[str, str] | None = None,
             bases: Iterable[str | Path] | None = None) -> NotebookParameters:
    """``values`` checked against ``notebook``'s model; missing names take their defaults.

    Args:
        notebook: ``collect``, ``train``, ``evaluate`` or ``explore``.
        values: parameter name -> value (strings from the command line are converted).
        labels: how the user typed a parameter (``{"run_date": "--date"}``); the
            default is ``parameter NAME``.
        bases: folders a relative path is resolved in, first match wins (default: the
            current directory).

    Raises:
        ParameterError: every problem found, each naming its parameter.
    """
    model = model_of(notebook)
    context = {"bases": tuple(Path(b) for b in bases)} if bases else None
    try:
        return model.model_validate(dict(values), context=context)
    except ValidationError as exc:
        raise ParameterError("; ".join(describe(model, exc, labels))) from None


def model_of(notebook: str) -> type[NotebookParameters]:
    """The parameters model of ``notebook``.

    Raises:
        ParameterError: no such notebook.
    """
    if notebook not in MODELS:
        raise ParameterError(f"no parameters are declared for notebook {notebook!r}; known: {', '.join(MODELS)}")
    return MODELS[notebook]
