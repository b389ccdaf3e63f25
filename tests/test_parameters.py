"""The parameter models: one per notebook, equal to its parameters cell, and every rule
the plan step enforces before anything runs (types, ranges, dates, paths, source options)."""
from __future__ import annotations

import ast
import datetime as dt

import pandas as pd
import papermill
import pytest

from pokewatch.run import parameters
from pokewatch.core import checks
from pokewatch.data import sources
from pokewatch.errors import ParameterError
from tests.conftest import REPO

TODAY = dt.date.today()


def day(offset: int) -> str:
    return f"{TODAY + dt.timedelta(days=offset):%Y-%m-%d}"


@pytest.mark.parametrize("notebook", sorted(parameters.MODELS))
def test_each_model_declares_exactly_its_notebooks_parameters(notebook):
    declared = papermill.inspect_notebook(str(REPO / "notebooks" / f"{notebook}.ipynb"))
    fields = parameters.MODELS[notebook].model_fields
    assert list(fields) == list(declared), "same names, in the order of the parameters cell"
    for name, spec in declared.items():
        assert fields[name].annotation.__name__ == spec["inferred_type_name"], name
        assert fields[name].default == ast.literal_eval(spec["default"]), name
        assert fields[name].description, f"{notebook}.{name} has no help text"


def test_the_date_bounds_are_the_days_pandas_can_hold():
    assert pd.Timestamp(checks.FIRST_DAY) - pd.Timedelta(days=1) < pd.Timestamp.min < pd.Timestamp(checks.FIRST_DAY)
    assert pd.Timestamp(checks.LAST_DAY) <= pd.Timestamp.max < pd.Timestamp(checks.LAST_DAY) + pd.Timedelta(days=1)


def test_today_and_tomorrow_are_fine_but_a_fabricated_future_date_is_refused():
    assert parameters.validate("collect", {"run_date": "today"}).run_date == day(0)
    assert parameters.validate("collect", {"run_date": day(1)}).run_date == day(1)
    with pytest.raises(ParameterError, match=r"^--date is 2 days after today.*POKEWATCH_MAX_FUTURE_DAYS"):
        parameters.validate("collect", {"run_date": day(2)}, labels={"run_date": "--date"})


def test_how_far_ahead_a_run_may_be_is_configurable(monkeypatch):
    monkeypatch.setenv(checks.MAX_FUTURE_DAYS_ENV, "0")
    with pytest.raises(ParameterError, match="at most 0 day"):
        parameters.validate("train", {"run_date": day(1)})
    monkeypatch.setenv(checks.MAX_FUTURE_DAYS_ENV, "7")
    assert parameters.validate("train", {"run_date": day(7)}).run_date == day(7)
    monkeypatch.setenv(checks.MAX_FUTURE_DAYS_ENV, "soon")
    with pytest.raises(ParameterError, match="POKEWATCH_MAX_FUTURE_DAYS must be a whole number"):
        parameters.validate("train", {"run_date": day(0)})


@pytest.mark.parametrize("value", ["9999-12-31", "2262-04-12", "1600-01-01"])
def test_dates_pandas_cannot_hold_are_refused(value):
    with pytest.raises(ParameterError, match="days pandas can hold"):
        parameters.validate("evaluate", {"run_date": value})


@pytest.mark.parametrize("value", ["yesterday", "2026-02-30", "26-11-28"])
def test_a_date_that_is_not_a_date_names_the_option(value):
    with pytest.raises(ParameterError, match=r"^--backfill TO (must be YYYY-MM-DD|is not a real date)"):
        parameters.validate("evaluate", {"run_date": value}, labels={"run_date": "--backfill TO"})


def test_an_empty_run_date_means_today_as_in_jupyterlab():
    assert parameters.validate("evaluate", {"run_date": ""}).run_date == day(0)


def test_a_window_reaching_before_the_first_day_pandas_can_hold_names_its_parameter():
    with pytest.raises(ParameterError, match="parameter eval_days reaches back to 1670"):
        parameters.validate("evaluate", {"run_date": "1680-01-01", "eval_days": 3650})


@pytest.mark.parametrize(("notebook", "name", "raw", "expected"), [
    ("evaluate", "eval_days", "999999999", "must be at most 3650"),
    ("train", "train_days", "0", "must be at least 1"),
    ("evaluate", "top_n", "many", "must be a whole number"),
    ("collect", "seed", "-1", "must be at least 0"),
    ("collect", "n_series", "1.5", "must be a whole number"),
    ("train", "buy_threshold", "nan", "must be a finite number"),
    ("train", "sell_threshold", "10", "must be less than 10"),
    ("train", "min_price", "inf", "must be a finite number"),
    ("train", "method", "median", "must be one of rolling_mean"),
    ("evaluate", "engine", "spark", "must be one of loky, threading, dask"),
    ("collect", "min_completeness", "1.5", "must be at most 1"),
    ("collect", "source", "ebay", "must be one of demo"),
])
def test_a_bad_value_is_refused_naming_the_parameter_and_its_help(notebook, name, raw, expected):
    with pytest.raises(ParameterError) as error:
        parameters.validate(notebook, {name: raw})
    message = str(error.value)
    assert message.startswith(f"parameter {name} {expected}") and repr(raw) in message
    assert parameters.MODELS[notebook].model_fields[name].description in message


def test_command_line_strings_become_the_declared_types():
    checked = parameters.validate("collect", {"n_series": "80", "min_completeness": "0.5", "seed": "7"})
    assert (checked.n_series, checked.min_completeness, checked.seed) == (80, 0.5, 7)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ParameterError, match="parameter window .*; parameter keep_days"):
        parameters.validate("train", {"window": "-1", "keep_days": "0"})


def test_an_unknown_name_lists_what_the_notebook_declares():
    with pytest.raises(ParameterError, match="unknown parameter 'bye_threshold'; the train notebook declares: "
                                             "run_date, run_dir, source, train_days"):
        parameters.validate("train", {"bye_threshold": 0.1})


def test_relative_paths_resolve_in_the_callers_folder_and_come_back_absolute(tmp_path):
    (tmp_path / "archives").mkdir()
    (tmp_path / "my_prices.csv").write_text("card_id,date,market_price\n")
    (tmp_path / "watch.yaml").write_text("items: []\n")
    checked = parameters.validate("collect", {"source": "tcgcsv", "archives": "archives", "watchlist": "./watch.yaml"},
                                  bases=[tmp_path])
    assert checked.archives == str(tmp_path / "archives")
    assert checked.watchlist == str(tmp_path / "watch.yaml")
    checked = parameters.validate("collect", {"source": "file", "input_path": "my_prices.csv"}, bases=[tmp_path])
    assert checked.input_path == str(tmp_path / "my_prices.csv")
    (tmp_path / "book.csv").write_text("card_id\n")
    assert parameters.validate("evaluate", {"portfolio_file": "book.csv"}, bases=[tmp_path]).portfolio_file \
        == str(tmp_path / "book.csv")


def test_a_missing_path_is_refused_naming_the_option_as_typed(tmp_path):
    with pytest.raises(ParameterError, match=rf"^--archives must be an existing folder \(looked in {tmp_path}\), "
                                             r"an http\(s\) URL or tcgcsv, got '../shared/data/tcgcsv-archives'"):
        parameters.validate("collect", {"archives": "../shared/data/tcgcsv-archives"},
                            labels={"archives": "--archives"}, bases=[tmp_path])
    with pytest.raises(ParameterError, match="^parameter input_path must be an existing file"):
        parameters.validate("collect", {"input_path": "my_prices.csv"}, bases=[tmp_path])
    (tmp_path / "a-folder").mkdir()
    with pytest.raises(ParameterError, match="^parameter watchlist must be a file, not a folder"):
        parameters.validate("collect", {"watchlist": "a-folder"}, bases=[tmp_path])
    with pytest.raises(ParameterError, match="^parameter portfolio_file must be an existing file.*or auto or none"):
        parameters.validate("evaluate", {"portfolio_file": "holdings.csv"}, bases=[tmp_path])


@pytest.mark.parametrize("value", ["tcgcsv", "https://example.org/archive", "http://127.0.0.1:8000/a"])
def test_archives_may_be_a_url_or_tcgcsv(value, tmp_path):
    assert parameters.validate("collect", {"source": "tcgcsv", "archives": value}, bases=[tmp_path]).archives == value


def test_a_path_parameter_the_source_does_not_read_is_refused(tmp_path):
    (tmp_path / "archives").mkdir()
    with pytest.raises(ParameterError, match="parameter archives does not apply to source demo"):
        parameters.validate("collect", {"archives": "archives"}, bases=[tmp_path])


@pytest.mark.parametrize("value", ["auto", "none", "NONE", "off", ""])
def test_portfolio_file_words_are_not_paths(value, tmp_path):
    assert parameters.validate("evaluate", {"portfolio_file": value}, bases=[tmp_path]).portfolio_file \
        == value.lower()


def test_a_source_option_that_is_also_a_parameter_obeys_the_parameters_rule():
    with pytest.raises(ParameterError, match=r"^parameter source_options: its n_series must be a whole number, "
                                             r"got 'abc'"):
        parameters.validate("collect", {"source_options": '{"n_series": "abc"}'})
    with pytest.raises(ParameterError, match="^parameter source_options: its seed must be at least 0"):
        parameters.validate("collect", {"source_options": "seed:-4"})
    with pytest.raises(ParameterError, match="^parameter source_options: source_options is not valid JSON"):
        parameters.validate("collect", {"source_options": "{broken"})


class StrictSource(sources.PriceSource):
    """A source that checks its options, as the real ones do through ``check_options``."""

    name = "strict"
    seen: list[dict] = []

    def check_options(self, options: dict) -> None:
        StrictSource.seen.append(options)
        if "page_size" in options and not str(options["page_size"]).isdigit():
            raise ParameterError(f"option page_size must be a whole number, got {options['page_size']!r}")


def test_the_source_checks_the_options_dict_the_notebook_would_build(monkeypatch, tmp_path):
    monkeypatch.setitem(sources.SOURCES, "strict", f"{__name__}:StrictSource")
    StrictSource.seen.clear()
    (tmp_path / "w.yaml").write_text("cards: []\n")
    parameters.validate("collect", {"source": "strict", "watchlist": "w.yaml", "source_options": "page_size:50"},
                        bases=[tmp_path])
    assert StrictSource.seen[-1] == {"category": 3, "watchlist": str(tmp_path / "w.yaml"), "n_series": 500,
                                     "seed": 20261128, "page_size": "50"}
    with pytest.raises(ParameterError, match="^parameter source_options: option page_size must be a whole number"):
        parameters.validate("collect", {"source": "strict", "source_options": "page_size:lots"})


def test_explore_takes_latest_and_a_comparison_date():
    checked = parameters.validate("explore", {"run_date": "latest", "compare_to": "2026-11-27"})
    assert (checked.run_date, checked.compare_to) == ("latest", "2026-11-27")
    with pytest.raises(ParameterError, match="^parameter compare_to must be YYYY-MM-DD, previous or empty"):
        parameters.validate("explore", {"compare_to": "last week"})
    with pytest.raises(ParameterError, match="^parameter run_dir must be an existing folder"):
        parameters.validate("explore", {"run_dir": "runs/nowhere"})


def test_recorded_values_leave_out_only_the_run_folder():
    recorded = parameters.validate("evaluate", {"run_dir": "/tmp/somewhere"}).recorded()
    assert set(recorded) == set(parameters.EvaluateParameters.model_fields) - {"run_dir"}
