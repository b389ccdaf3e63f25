"""Every source checks its options up front (check_options), naming the option as the user typed it."""
from __future__ import annotations

import pytest

from pokewatch.run.collect import source_options
from pokewatch.errors import ParameterError
from pokewatch.data.sources import SOURCES, get_source


def notebook_defaults(**values) -> dict:
    """What the collect notebook builds from its default parameters (plus ``values``)."""
    params = {"archives": "", "category": 3, "watchlist": "", "path": "", "n_series": 500, "seed": 20261128}
    extra = values.pop("source_options", "")
    return source_options(extra, **{**params, **values})


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_source_accepts_the_collect_notebooks_defaults_and_fills_its_own(name):
    checked = get_source(name).check_options(notebook_defaults())

    assert set(checked) == {option.name for option in get_source(name).OPTIONS}


def test_a_non_number_names_the_option_as_typed():
    with pytest.raises(ParameterError, match="option n_series must be a whole number, got 'abc'"):
        get_source("demo").check_options(notebook_defaults(source_options='{"n_series": "abc"}'))


def test_values_are_normalised():
    checked = get_source("tcgcsv").check_options({"category": "85", "workers": "2", "refresh_products": "yes",
                                                  "catalogue": "OFF", "http_max_bytes": "1_000_000"})

    assert checked["category"] == 85 and checked["workers"] == 2 and checked["refresh_products"] is True
    assert checked["catalogue"] == "off" and checked["http_max_bytes"] == 1_000_000
    assert checked["rate_limit_per_minute"] == 300 and checked["archives"] is None


@pytest.mark.parametrize("source, options, message", [
    ("pokemontcg", {"page_size": "500"}, r"option page_size must be in 1..250, got 500"),
    ("pokemontcg", {"stale_days": "-1"}, r"option stale_days must be in 0..36500"),
    ("tcgcsv", {"refresh_products": "maybe"}, "option refresh_products must be true or false"),
    ("tcgcsv", {"catalogue": "sometimes"}, "option catalogue must be one of auto, refresh, off"),
    ("tcgcsv", {"http_timeout": "soon"}, "option http_timeout must be a number"),
    ("tcgcsv", {"workers": 2.5}, "option workers must be a whole number"),
    ("pokemonpricetracker", {"limit": "0"}, r"option limit must be in 1..200"),
    ("file", {"currency": "GBP"}, "option currency must be one of EUR, USD"),
    ("file", {"columns": "Price:cost"}, "unknown column"),
    ("demo", {"seed": "-5"}, r"option seed must be in 0..9"),
    ("demo", {"n_series": True}, "option n_series must be a whole number"),
])
def test_bad_values_are_refused_with_the_option_and_its_range(source, options, message):
    with pytest.raises(ParameterError, match=message):
        get_source(source).check_options(options)


def test_an_unknown_option_lists_the_known_ones():
    with pytest.raises(ParameterError, match=r"source pokemontcg has no option 'pagesize'; its options are: "
                                             r".*page_size.*stale_days"):
        get_source("pokemontcg").check_options({"pagesize": 10})


def test_notebook_options_a_source_does_not_read_are_ignored_but_others_are_not():
    assert "n_series" not in get_source("tcgcsv").check_options({"n_series": 500, "seed": 1})
    with pytest.raises(ParameterError, match="source demo has no option 'watchlist'"):
        get_source("demo").check_options({"watchlist": "w.yaml"})


def test_files_and_folders_must_exist_unless_replaying(tmp_path):
    missing = str(tmp_path / "nope.csv")
    with pytest.raises(ParameterError, match=r"option input_path: file .*nope.csv does not exist"):
        get_source("file").check_options(notebook_defaults(path=missing))
    with pytest.raises(ParameterError, match="archives .* is neither an existing folder nor an http"):
        get_source("tcgcsv").check_options({"archives": str(tmp_path / "no-such-folder")})
    assert get_source("file").check_options({"path": missing}, files=False)["path"] == missing
    with pytest.raises(ParameterError, match="must end in one of"):
        get_source("file").check_options({"path": str(tmp_path / "prices.xlsx")}, files=False)


def test_a_watchlist_is_read_and_checked_before_anything_runs(tmp_path):
    watchlist = tmp_path / "watch.yaml"
    watchlist.write_text("items:\n  - set: sv3pt5\n    category: treasure\n")

    with pytest.raises(ParameterError, match="category 'treasure' is not one of"):
        get_source("pokemontcg").check_options({"watchlist": str(watchlist)})


def test_an_option_given_under_two_names_is_refused(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("id,price\nx,1\n")
    with pytest.raises(ParameterError, match="option input_path was given twice"):
        get_source("file").check_options({"path": str(path), "input_path": str(path)})
