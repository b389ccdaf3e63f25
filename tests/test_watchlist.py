"""The watchlist format: YAML and CSV, per-source ids, categories and their precedence."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pokewatch.errors import ParameterError
from pokewatch.data.watchlist import Selection, load_watchlist, parse_csv, parse_yaml

REPO = Path(__file__).resolve().parents[1]


def test_the_example_watchlist_is_valid_and_maps_ids_per_source():
    watchlist = load_watchlist(REPO / "watchlist.example.yaml")

    pokemontcg = watchlist.for_source("pokemontcg")
    assert pokemontcg.cards["base1-4"] == "grail" and pokemontcg.sets["sv3pt5"] == "chase"
    assert pokemontcg.cards["swsh7-215"] == "personal"  # default_category
    assert list(pokemontcg.queries.values()) == ["meta"]
    tcgcsv = watchlist.for_source("tcgcsv")
    assert tcgcsv.cards == {"42382": "grail", "517045": "grail"} and tcgcsv.queries == {}


def test_yaml_plain_values_apply_to_every_source_but_queries_only_to_pokemontcg():
    watchlist = parse_yaml("items:\n  - set: sv3pt5\n  - query: 'name:pikachu'\n    category: meta\n")

    assert watchlist.for_source("file").sets == {"sv3pt5": None}
    assert watchlist.for_source("pokemonpricetracker").queries == {}
    assert watchlist.for_source("pokemontcg").queries == {"name:pikachu": "meta"}


def test_csv_rows_name_a_source_or_all_of_them():
    watchlist = parse_csv("kind,value,category,source\nset,sv3pt5,chase,pokemontcg\nset,23237,chase,tcgcsv\n"
                          "card,sv3pt5-199,grail,\n\n")

    assert watchlist.for_source("tcgcsv").sets == {"23237": "chase"}
    assert watchlist.for_source("pokemontcg").sets == {"sv3pt5": "chase"}
    assert watchlist.for_source("tcgcsv").cards == {"sv3pt5-199": "grail"}


@pytest.mark.parametrize("text, message", [
    ("items:\n  - set: a\n    card: b\n", "exactly one of"),
    ("items:\n  - sett: a\n", "unknown key"),
    ("items:\n  - set: a\n    category: favourite\n", "category 'favourite' is not one of"),
    ("items:\n  - card: ''\n", "card is empty"),
    ("items: [\n", "not valid YAML"),
    ("watch:\n  - set: a\n", "unknown top-level key"),
])
def test_invalid_yaml_entries_name_the_problem(text, message):
    with pytest.raises(ParameterError, match=message):
        parse_yaml(text, "w.yaml")


def test_invalid_csv_rows_name_the_line():
    with pytest.raises(ParameterError, match="line 3: kind 'deck' is not one of"):
        parse_csv("kind,value\nset,a\ndeck,b\n", "w.csv")
    with pytest.raises(ParameterError, match="needs the CSV columns kind,value"):
        parse_csv("type,id\nset,a\n", "w.csv")


def test_loading_checks_the_file(tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        load_watchlist(tmp_path / "missing.yaml")
    (tmp_path / "w.txt").write_text("set,a")
    with pytest.raises(ParameterError, match="must be .yaml, .yml or .csv"):
        load_watchlist(tmp_path / "w.txt")


def test_the_card_category_beats_the_set_category_beats_the_query():
    selection = Selection("pokemontcg", sets={"sv3pt5": "chase"}, cards={"sv3pt5-199": "grail"})
    frame = pd.DataFrame({"card_id": ["sv3pt5-199", "sv3pt5-1", "base1-4", "base1-5"],
                          "set_id": ["sv3pt5", "sv3pt5", "base1", "base1"]})
    query = pd.Series(["meta", "meta", "meta", None])

    out = selection.assign_categories(frame, query)

    assert out["category"].tolist()[:3] == ["grail", "chase", "meta"] and pd.isna(out["category"].iloc[3])


def test_restrict_keeps_watched_sets_and_cards_only():
    selection = Selection("tcgcsv", sets={"604": None}, cards={"517045": None})
    frame = pd.DataFrame({"card_id": ["517045", "42382", "1"], "set_id": ["23237", "604", "23237"]})

    assert selection.restrict(frame)["card_id"].tolist() == ["517045", "42382"]
    assert len(Selection("tcgcsv").restrict(frame)) == 3


def test_the_watchlist_option_is_checked_by_reading_the_file(tmp_path):
    from pokewatch.data.watchlist import check_watchlist_option

    good = tmp_path / "w.yaml"
    good.write_text("items:\n  - set: sv3pt5\n")
    assert check_watchlist_option(str(good)) == str(good)
    assert check_watchlist_option(str(tmp_path / "missing.yaml"), files=False) == str(tmp_path / "missing.yaml")
    with pytest.raises(ParameterError, match="does not exist"):
        check_watchlist_option(str(tmp_path / "missing.yaml"))
    with pytest.raises(ParameterError, match="must be the path"):
        check_watchlist_option(["w.yaml"])
