"""Card names and links for display: a readable name for every row, never <NA>, and the right shop page."""
from __future__ import annotations

import pandas as pd

from pokewatch.analysis.card_display import card_url, display_name


def cards(**columns) -> pd.DataFrame:
    return pd.DataFrame(columns)


def test_a_known_name_is_shown_as_it_is():
    frame = cards(card_id=["sv3pt5-199"], name=["Charizard ex"], set_name=["151"], source=["pokemontcg"])
    assert display_name(frame).tolist() == ["Charizard ex"]


def test_an_unnamed_tcgplayer_product_says_what_it_is_and_where():
    frame = cards(card_id=["89333", "89334"], name=[None, "  "], set_name=["SV: Scarlet & Violet 151", None],
                  source=["tcgcsv", "tcgcsv"])

    assert display_name(frame).tolist() == ["TCGplayer product 89333 (SV: Scarlet & Violet 151)",
                                            "TCGplayer product 89334"]
    assert card_url(frame).tolist() == ["https://www.tcgplayer.com/product/89333",
                                        "https://www.tcgplayer.com/product/89334"]


def test_names_are_never_na_even_without_name_or_set_columns():
    frame = cards(card_id=["517045", None, "abc"], source=[pd.NA, "file", "file"])

    names = display_name(frame)

    assert names.tolist() == ["TCGplayer product 517045", "unknown card", "card abc"]
    assert names.notna().all() and not names.str.contains("<NA>").any()


def test_pokemontcg_ids_link_to_the_price_pages_pokemontcg_io_documents():
    frame = cards(card_id=["sv3pt5-199", "sv3pt5-199"], currency=["USD", "EUR"],
                  variant=["Holofoil", "Cardmarket"], source=["pokemontcg", "pokemontcg"])

    assert card_url(frame).tolist() == ["https://prices.pokemontcg.io/tcgplayer/sv3pt5-199",
                                        "https://prices.pokemontcg.io/cardmarket/sv3pt5-199"]


def test_the_source_decides_and_the_shape_only_guesses_for_files():
    frame = cards(card_id=["dp1-65", "12345", "base1-4", "12345", "sv3pt5-199"],
                  source=["demo", "pokemontcg", "file", "file", "tcgcsv"])

    assert card_url(frame).tolist() == ["", "", "https://prices.pokemontcg.io/tcgplayer/base1-4",
                                        "https://www.tcgplayer.com/product/12345", ""]
    assert display_name(frame).tolist()[3] == "TCGplayer product 12345"


def test_results_align_with_the_frames_index():
    frame = cards(card_id=["1", "2"], name=["A", None]).set_axis([10, 20])
    assert display_name(frame).index.tolist() == [10, 20] and card_url(frame).index.tolist() == [10, 20]
