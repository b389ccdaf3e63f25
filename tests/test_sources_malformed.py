"""No source parser crashes on a bad record: generated shapes, and the malformed cases an attack found.

The property every parser keeps: whatever JSON-like value arrives where a record
should be, parsing returns a frame (never raises), validation splits it into valid
and rejected rows, and a row a parser marked malformed is never valid.
"""
from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pokewatch.core.schema import MALFORMED, validate_observations
from pokewatch.data.sources import file as file_source
from pokewatch.data.sources import pokemonpricetracker, pokemontcg, tcgcsv
from pokewatch.data.sources.base import loads_json

DAY = pd.Timestamp("2026-01-05")
FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.text(max_size=8) | \
    st.floats(allow_nan=False) | st.sampled_from(["2026/01/05", "2026-01-05", "", " Holofoil ", "1e308"])
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=12)


def near(keys: dict) -> st.SearchStrategy:
    """Objects with some of the documented keys (each holding any JSON value or its expected shape)."""
    return st.fixed_dictionaries({}, optional={k: v | json_values for k, v in keys.items()})


price_block = near({"market": st.floats(0, 1000), "low": st.floats(0, 100), "directLow": scalars})
ptcg_card = near({"id": st.sampled_from(["sv3pt5-199", "base1-4"]), "name": st.text(max_size=5),
                  "set": near({"id": st.text(max_size=4), "name": st.text(max_size=4)}),
                  "tcgplayer": near({"updatedAt": st.sampled_from(["2026/01/05", "2021/03/01"]),
                                     "prices": st.dictionaries(st.sampled_from(["normal", "holofoil", "x"]),
                                                               price_block, max_size=2)}),
                  "cardmarket": near({"updatedAt": st.just("2026/01/04"), "prices": near({"trendPrice": scalars})})})
ppt_card = near({"tcgPlayerId": st.integers(1, 10**6), "name": st.text(max_size=5),
                 "prices": near({"market": scalars, "lastUpdated": st.just("2026-01-05T10:00:00Z"),
                                 "primaryPrinting": st.text(max_size=5)}),
                 "priceHistory": near({"conditions": near({"Near Mint": near({"history": st.lists(
                     near({"date": st.sampled_from(["2026-01-04", "2026-01-05", "junk"]), "market": scalars}),
                     max_size=3)})})})})
tcgcsv_result = near({"productId": st.integers(1, 10**6), "subTypeName": st.sampled_from(["Normal", "Holofoil"]),
                      "marketPrice": scalars, "lowPrice": scalars})


def assert_malformed_rows_never_pass(frame: pd.DataFrame) -> None:
    result = validate_observations(frame)
    assert len(result.valid) + len(result.rejected) == len(frame)
    if MALFORMED in frame.columns:
        marked = frame[MALFORMED].notna().sum()
        assert (result.rejected["reason"] == "malformed_record").sum() == marked


@FAST
@given(st.lists(ptcg_card | json_values, max_size=4))
def test_pokemontcg_cards_of_any_shape_never_crash_the_parser(cards):
    assert_malformed_rows_never_pass(pokemontcg.card_rows(cards, DAY))


@FAST
@given(st.lists(ppt_card | json_values, max_size=4) | json_values)
def test_pokemonpricetracker_answers_of_any_shape_never_crash_the_parser(data):
    payload = {"data": data}
    frame = pokemonpricetracker.card_rows(pokemonpricetracker.cards_of(payload), "2026-01-01", DAY)
    assert_malformed_rows_never_pass(frame)
    pokemonpricetracker.envelope_problem(data, single=False)  # any shape is described, never raised


@FAST
@given(st.lists(tcgcsv_result | json_values, max_size=5), json_values)
def test_tcgcsv_results_of_any_shape_never_crash_the_parsers(results, other):
    assert_malformed_rows_never_pass(tcgcsv.price_rows({"604": results}, DAY))
    tcgcsv.product_details({"results": results})
    tcgcsv.product_details(other)
    try:
        tcgcsv.groups_frame({"results": results} if isinstance(other, dict) else other)
    except tcgcsv.SourceError:
        pass  # no results list at all: the documented error


@FAST
@given(st.lists(near({"card_id": scalars, "date": scalars, "price": scalars, "variant": scalars}) | json_values,
                max_size=4) | st.dictionaries(st.text(max_size=5), st.dictionaries(st.text(max_size=5), scalars)
                                              | json_values, min_size=1, max_size=3))
def test_file_json_of_any_shape_never_crashes_the_reader(payload):
    try:
        table = file_source.load_table(json.dumps(payload).encode(), "json")
    except file_source.SchemaError:
        return  # a top-level shape the file source does not take: the documented error
    frame = table.frame
    if {"card_id", "market_price"} <= set(frame.columns):
        frame = frame.assign(variant="Normal", currency="USD", source="file", date=frame.get("date", DAY))
        assert_malformed_rows_never_pass(frame)


@FAST
@given(st.lists(st.lists(st.text(alphabet='ab,"\n\r1.-', max_size=6), min_size=0, max_size=4), max_size=5))
def test_csv_of_any_shape_never_crashes_the_reader(rows):
    text = "card_id,market_price,date\n" + "\n".join(",".join(row) for row in rows)
    file_source.load_table(text.encode(), "csv")


# --------------------------------------------------------------------------- the cases an attack found

def reasons(frame: pd.DataFrame) -> dict:
    return validate_observations(frame).counts


@pytest.mark.parametrize("prices", ["$12.00", ["normal", 1.0], 7])
def test_a_pokemontcg_prices_block_that_is_not_an_object_is_one_malformed_row(prices):
    good = {"id": "sv3pt5-1", "tcgplayer": {"updatedAt": "2026/01/05", "prices": {"normal": {"market": 1.5}}}}
    bad = {"id": "sv3pt5-2", "tcgplayer": {"updatedAt": "2026/01/05", "prices": prices}}

    frame = pokemontcg.card_rows([good, bad], DAY)

    assert reasons(frame) == {"malformed_record": 1}
    assert "tcgplayer.prices is" in frame.loc[frame["card_id"] == "sv3pt5-2", MALFORMED].iloc[0]
    assert validate_observations(frame).valid["card_id"].tolist() == ["sv3pt5-1"]


def test_a_pokemontcg_card_without_updated_at_is_kept_as_current():
    frame = pokemontcg.card_rows([{"id": "sv3pt5-1", "tcgplayer": {"prices": {"normal": {"market": 1.5}}}}], DAY)

    assert reasons(frame) == {} and frame["updated_at"].isna().all()


@pytest.mark.parametrize("card_id, stored", [(123, "123"), ("  sv3pt5-1 ", "sv3pt5-1")])
def test_ids_that_are_strings_or_integers_are_kept_as_text(card_id, stored):
    frame = pokemontcg.card_rows([{"id": card_id, "tcgplayer": {"prices": {"normal": {"market": 1.5}}}}], DAY)
    assert validate_observations(frame).valid["card_id"].tolist() == [stored]


@pytest.mark.parametrize("card_id", [["a"], {"x": 1}, True, 1.5])
def test_ids_that_are_lists_objects_booleans_or_fractions_are_malformed(card_id):
    cards = [{"id": card_id, "tcgplayer": {"prices": {"normal": {"market": 1.5}}}}]
    results = [{"productId": card_id, "subTypeName": "Normal", "marketPrice": 1.5}]

    assert reasons(pokemontcg.card_rows(cards, DAY)) == {"malformed_record": 1}
    assert reasons(tcgcsv.price_rows({"604": results}, DAY)) == {"malformed_record": 1}
    assert reasons(pokemonpricetracker.card_rows([{"tcgPlayerId": card_id, "prices": {
        "market": 1.5, "lastUpdated": "2026-01-05"}}], "2026-01-05", DAY)) == {"malformed_record": 1}


def test_a_json_key_given_twice_makes_the_record_malformed():
    results = loads_json(b'[{"productId": 1, "marketPrice": 1.0, "marketPrice": 9.0, "subTypeName": "Normal"},'
                         b' {"productId": 2, "marketPrice": 2.0, "subTypeName": "Normal"}]')

    frame = tcgcsv.price_rows({"604": results}, DAY)

    assert reasons(frame) == {"malformed_record": 1}
    assert "marketPrice" in frame.loc[0, MALFORMED]


def test_a_tcgcsv_result_that_is_not_an_object_is_counted_not_dropped():
    frame = tcgcsv.price_rows({"604": [{"productId": 1, "marketPrice": 1.0, "subTypeName": "Normal"}, "oops", 3]},
                              DAY)
    assert reasons(frame) == {"malformed_record": 2} and len(frame) == 3


def test_a_pricetracker_history_point_with_a_bad_date_is_a_bad_date_not_a_silent_drop():
    card = {"tcgPlayerId": 1, "priceHistory": {"conditions": {"Near Mint": {"history": [
        {"date": "2026-01-05", "market": 2.0}, {"date": "someday", "market": 3.0}, "junk"]}}}}

    frame = pokemonpricetracker.card_rows([card], "2026-01-01", DAY)

    assert reasons(frame) == {"bad_date": 1, "malformed_record": 1}
