"""The product catalogue in the data folder: merges, survives damage, and fills names of price rows."""
from __future__ import annotations

import pandas as pd

from pokewatch.data import catalogue


def products(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=catalogue.PRODUCT_COLUMNS)


def test_saving_merges_new_products_over_old_ones():
    catalogue.save_products(3, products(("1", "Pikachu", "1/100", "Common", "604", "Base Set"),
                                        ("2", "Raichu", "2/100", "Rare", "604", "Base Set")))

    merged = catalogue.save_products(3, products(("2", "Raichu", "2/100", "Rare Holo", "604", "Base Set")))

    assert merged.set_index("product_id")["rarity"].to_dict() == {"1": "Common", "2": "Rare Holo"}
    assert catalogue.products_path(3).is_file()
    assert catalogue.load_products(3).equals(merged)
    assert catalogue.load_products(85).empty


def test_a_damaged_catalogue_reads_as_empty_and_is_rebuilt(caplog):
    path = catalogue.products_path(3)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet")

    assert catalogue.load_products(3).empty
    assert "unreadable" in caplog.text
    catalogue.save_products(3, products(("1", "Pikachu", None, None, "604", None)))
    assert catalogue.load_products(3)["name"].tolist() == ["Pikachu"]


def test_groups_keep_when_their_products_were_fetched():
    fetched = pd.Timestamp("2026-01-05 10:00")
    catalogue.save_groups(3, pd.DataFrame({"set_id": ["604"], "set_name": ["Base Set"],
                                           "products_fetched_at": [fetched]}))

    groups = catalogue.save_groups(3, pd.DataFrame({"set_id": ["604", "23237"],
                                                    "set_name": ["Base Set", "SV: Scarlet & Violet 151"]}))

    when = groups.set_index("set_id")["products_fetched_at"]
    assert when["604"] == fetched and pd.isna(when["23237"])


def test_fill_descriptions_fills_only_what_is_missing():
    prices = pd.DataFrame({"card_id": ["1", "2", "3"], "name": [None, "My own name", None],
                           "set_name": ["Base", None, None]})
    known = products(("1", "Pikachu", "58/102", "Common", "604", "Base Set"),
                     ("2", "Raichu", "14/102", "Rare", "604", "Base Set"))

    filled = catalogue.fill_descriptions(prices, known)

    assert filled["name"].fillna("?").tolist() == ["Pikachu", "My own name", "?"]
    assert filled["set_name"].fillna("?").tolist() == ["Base", "Base Set", "?"]
    assert filled["number"].fillna("?").tolist() == ["58/102", "14/102", "?"]


def test_a_failed_fetch_is_remembered_until_cleared():
    assert catalogue.hours_since_failure(3) is None
    catalogue.record_failure(3, "connection refused")

    assert 0 <= catalogue.hours_since_failure(3) < 0.1
    assert catalogue.last_failure(3)["error"] == "connection refused"
    catalogue.clear_failure(3)
    assert catalogue.hours_since_failure(3) is None
