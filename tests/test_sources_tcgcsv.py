"""tcgcsv end to end through pokewatch.run.collect.collect, against recorded responses on a local server."""
from __future__ import annotations

import json
import logging

import pandas as pd
import pytest
from sources_server import (
    RecordedServer,
    Reply,
    fast_http,
    fixture,
    isolate_data,
    tcgcsv_routes,
    write_archive,
)

from pokewatch import config
from pokewatch.data import catalogue
from pokewatch.cli.main import main
from pokewatch.run.collect import collect, replay
from pokewatch.errors import ParameterError, SourceError
from pokewatch.data.store import PriceStore
from pokewatch.run.folder import RunFolder

DAY = "2026-01-05"


@pytest.fixture
def server(monkeypatch, tmp_path):
    fast_http(monkeypatch)
    isolate_data(monkeypatch, tmp_path)
    with RecordedServer() as srv:
        monkeypatch.setenv("POKEWATCH_TCGCSV_URL", srv.url)
        yield srv


@pytest.fixture
def store(tmp_path):
    return PriceStore(tmp_path / "store")


def quality(run_dir) -> dict:
    return json.loads(RunFolder(run_dir).quality.read_text())


def test_a_day_of_tcgcsv_becomes_validated_long_rows(server, store, tmp_path):
    tcgcsv_routes(server)
    result = collect("tcgcsv", DAY, DAY, tmp_path / "run", store=store)

    prices = result.prices.set_index(["card_id", "variant"])
    assert len(prices) == 4
    charizard = prices.loc[("517045", "Holofoil")]
    assert charizard["market_price"] == 245.1 and charizard["currency"] == "USD"
    assert charizard["source"] == "tcgcsv" and charizard["date"] == pd.Timestamp(DAY)
    assert (charizard["name"], charizard["number"], charizard["rarity"]) == \
        ("Charizard ex - 199/165", "199/165", "Special Illustration Rare")
    assert (charizard["set_id"], charizard["set_name"]) == ("23237", "SV: Scarlet & Violet 151")
    assert charizard["high_price"] == 999.99  # kept, descriptive only
    assert prices.loc[("502550", "Reverse Holofoil"), "market_price"] == 0.88
    assert prices.loc[("42382", "Holofoil"), "set_name"] == "Base Set"
    report = quality(tmp_path / "run")
    assert report["validation"]["rejected_by_reason"]["missing_price"]["count"] == 1  # sealed, null market
    assert report["completeness"] == 1.0
    assert any(n["kind"] == "prices_as_of" for n in report["notes"])
    assert store.load("tcgcsv").shape[0] == 4


def test_a_failing_group_is_listed_and_does_not_abort_the_collect(server, store, tmp_path):
    tcgcsv_routes(server)
    server.route("/tcgplayer/3/24380/products", Reply(500, "down"))
    server.route("/tcgplayer/3/24380/prices", Reply(502, fixture("tcgcsv/error-502.html")))

    result = collect("tcgcsv", DAY, DAY, tmp_path / "run", store=store, min_completeness=0.5)

    assert len(result.prices) == 4
    failures = {f["item"]: f["error"] for f in quality(tmp_path / "run")["fetch_failures"]}
    assert set(failures) == {"group 24380 products", "group 24380 prices"}
    assert "HTTP 502" in failures["group 24380 prices"] and "502 Bad Gateway" in failures["group 24380 prices"]
    assert quality(tmp_path / "run")["completeness"] == pytest.approx(5 / 7, abs=1e-3)


def test_the_run_fails_below_min_completeness_and_keeps_the_raw_data(server, store, tmp_path):
    tcgcsv_routes(server)
    server.route("/tcgplayer/3/24380/prices", Reply(500, "down"))

    with pytest.raises(SourceError, match=r"below the min_completeness of 100%; nothing was stored"):
        collect("tcgcsv", DAY, DAY, tmp_path / "run", store=store, min_completeness=1.0)
    assert store.load("tcgcsv").empty
    assert (tmp_path / "run" / "raw" / "tcgcsv" / "prices-3-23237.json.gz").exists()


def test_500s_then_200_and_429_with_retry_after_are_retried(server, store, tmp_path, monkeypatch):
    tcgcsv_routes(server)
    server.route("/tcgplayer/3/24380/products", Reply(500), Reply(500), Reply(200, fixture("tcgcsv/products-604.json")))
    server.route("/tcgplayer/3/24380/prices", Reply(429, {"error": "slow down"}, headers={"Retry-After": "0.05"}),
                 Reply(200, {"success": True, "errors": [], "results": []}))

    collect("tcgcsv", DAY, DAY, tmp_path / "run", store=store, min_completeness=1.0)

    assert len(server.requests_to("/tcgplayer/3/24380/products")) == 3
    assert len(server.requests_to("/tcgplayer/3/24380/prices")) == 2


def test_a_timeout_is_a_listed_failure(server, store, tmp_path, monkeypatch):
    monkeypatch.setenv("POKEWATCH_HTTP_TIMEOUT", "0.2")
    monkeypatch.setenv("POKEWATCH_HTTP_RETRIES", "0")
    tcgcsv_routes(server)
    server.route("/tcgplayer/3/24380/products", Reply(200, fixture("tcgcsv/products-604.json")))
    server.route("/tcgplayer/3/24380/prices", Reply(200, {"results": []}, delay=1.0))

    collect("tcgcsv", DAY, DAY, tmp_path / "run", store=store, min_completeness=0.5)

    failure = quality(tmp_path / "run")["fetch_failures"][0]
    assert failure["item"] == "group 24380 prices" and "no answer within the 0.2s timeout" in failure["error"]


def test_an_html_groups_page_fails_the_run_with_the_reason_in_the_report(server, store, tmp_path):
    server.route("/tcgplayer/3/groups", Reply(200, fixture("tcgcsv/error-502.html").decode()))

    with pytest.raises(SourceError, match="returned 0% of 1 item"):
        collect("tcgcsv", DAY, DAY, tmp_path / "run", store=store)
    failure = quality(tmp_path / "run")["fetch_failures"][0]
    assert failure["item"] == "groups of category 3"
    assert "HTML page titled '502 Bad Gateway' instead of JSON" in failure["error"]


def test_malformed_prices_json_is_a_listed_failure(server, store, tmp_path):
    tcgcsv_routes(server)
    server.route("/tcgplayer/3/24380/products", Reply(200, fixture("tcgcsv/products-604.json")))
    server.route("/tcgplayer/3/24380/prices", Reply(200, fixture("tcgcsv/malformed.json")))

    collect("tcgcsv", DAY, DAY, tmp_path / "run", store=store, min_completeness=0.5)

    failure = quality(tmp_path / "run")["fetch_failures"][0]
    assert failure["item"] == "group 24380 prices" and "malformed JSON" in failure["error"]


def test_products_are_cached_per_group_but_still_kept_in_the_run(server, store, tmp_path):
    tcgcsv_routes(server)
    server.route("/tcgplayer/3/24380/products", Reply(200, {"success": True, "errors": [], "results": []}))
    server.route("/tcgplayer/3/24380/prices", Reply(200, {"success": True, "errors": [], "results": []}))
    collect("tcgcsv", DAY, DAY, tmp_path / "run1", store=store)
    first = len(server.requests_to("/tcgplayer/3/23237/products"))

    result = collect("tcgcsv", DAY, DAY, tmp_path / "run2", store=store)

    assert first == 1 and len(server.requests_to("/tcgplayer/3/23237/products")) == 1
    assert result.prices.set_index("card_id").loc["517045", "rarity"] == "Special Illustration Rare"
    cache_note = next(n for n in quality(tmp_path / "run2")["notes"] if n["kind"] == "products_cache")
    assert cache_note["groups_from_cache"] == 3


def test_a_watchlist_of_sets_limits_the_groups_fetched(server, store, tmp_path):
    tcgcsv_routes(server)
    watchlist = tmp_path / "watch.yaml"
    watchlist.write_text("items:\n  - set: {tcgcsv: 'SV: Scarlet & Violet 151'}\n    category: chase\n")

    result = collect("tcgcsv", DAY, DAY, tmp_path / "run", store=store, options={"watchlist": str(watchlist)})

    assert not server.requests_to("/tcgplayer/3/604/prices")
    assert set(result.prices["set_id"]) == {"23237"} and set(result.prices["category"]) == {"chase"}


def test_a_watchlist_keeps_its_sets_and_cards_and_the_card_category_wins(server, store, tmp_path):
    tcgcsv_routes(server)
    watchlist = tmp_path / "watch.csv"
    watchlist.write_text("kind,value,category,source\nset,23237,chase,tcgcsv\ncard,517045,grail,tcgcsv\n"
                         "card,42382,,tcgcsv\nquery,name:x,meta,\n")

    result = collect("tcgcsv", DAY, DAY, tmp_path / "run", store=store, options={"watchlist": str(watchlist)})

    categories = result.prices.set_index(["card_id", "variant"])["category"]
    assert categories[("517045", "Holofoil")] == "grail"
    assert categories[("502550", "Normal")] == "chase"
    assert pd.isna(categories[("42382", "Holofoil")])
    assert len(categories) == 4


def test_a_watchlist_naming_no_known_group_is_a_parameter_error(server, store, tmp_path):
    tcgcsv_routes(server)
    watchlist = tmp_path / "watch.yaml"
    watchlist.write_text("items:\n  - set: {tcgcsv: Neo Destiny Typo}\n")

    with pytest.raises(ParameterError, match="none of the watchlist sets \\['Neo Destiny Typo'\\]"):
        collect("tcgcsv", DAY, DAY, tmp_path / "run", store=store, options={"watchlist": str(watchlist)})


def test_the_category_is_a_parameter(server, store, tmp_path):
    server.route("/tcgplayer/85/groups", Reply(200, {"success": True, "errors": [], "results": [
        {"groupId": 23000, "name": "SV2a: Pokemon Card 151", "categoryId": 85, "modifiedOn": "2024-01-01T00:00:00"}]}))
    server.route("/tcgplayer/85/23000/products", Reply(200, {"success": True, "errors": [], "results": []}))
    server.route("/tcgplayer/85/23000/prices", Reply(200, {"success": True, "errors": [], "results": [
        {"productId": 500001, "marketPrice": 3.1, "subTypeName": "Holofoil"}]}))

    result = collect("tcgcsv", DAY, DAY, tmp_path / "run", store=store, options={"category": "85"})

    assert result.prices["card_id"].tolist() == ["500001"]


def test_a_range_without_archives_is_refused_with_advice(server, store, tmp_path):
    with pytest.raises(ParameterError, match="tcgcsv serves only the current day's prices.*--archives DIR"):
        collect("tcgcsv", "2026-01-01", DAY, tmp_path / "run", store=store)


def test_replay_reparses_the_raw_responses_without_the_network(server, store, tmp_path):
    tcgcsv_routes(server)
    server.route("/tcgplayer/3/24380/prices", Reply(500))
    first = collect("tcgcsv", DAY, DAY, tmp_path / "run", store=store, min_completeness=0.5)
    requests_before = len(server.requests)

    again = replay(tmp_path / "run", store=store)

    assert len(server.requests) == requests_before
    pd.testing.assert_frame_equal(first.prices, again.prices)
    assert quality(tmp_path / "run")["fetch_failures"]  # the failures of the fetch are still reported


# --------------------------------------------------------------------------- archives

def archive_day(day: str, charizard: float) -> dict:
    return {3: {"23237": [
        {"productId": 517045, "marketPrice": charizard, "highPrice": 999.0, "subTypeName": "Holofoil"},
        {"productId": 502550, "marketPrice": 0.21, "subTypeName": "Normal"},
        {"productId": 502550, "marketPrice": None, "subTypeName": "Reverse Holofoil"},
    ], "604": [{"productId": 42382, "marketPrice": 455.47, "subTypeName": "Holofoil"}]},
        85: {"23000": [{"productId": 500001, "marketPrice": 3.1, "subTypeName": "Holofoil"}]}}


@pytest.fixture
def archive_dir(tmp_path):
    folder = tmp_path / "archives"
    for i, day in enumerate(["2025-09-21", "2025-09-22", "2025-09-23"]):
        write_archive(folder, day, archive_day(day, 300.0 + i))
    (folder / "groups-category-3.csv").write_text(
        '23237,"SV: Scarlet & Violet 151",3,,"2025-10-15T02:13:51.447"\n604,"Base Set",3,,"2025-10-10T23:59:11.597"\n')
    return folder


def test_a_backfill_from_archives_yields_one_observation_per_day_and_is_idempotent(server, store, tmp_path,
                                                                                   archive_dir):
    options = {"archives": str(archive_dir), "category": 3}
    collect("tcgcsv", "2025-09-21", "2025-09-23", tmp_path / "run", store=store, options=options)
    first = store.load("tcgcsv")

    collect("tcgcsv", "2025-09-21", "2025-09-23", tmp_path / "run2", store=store, options=options)
    second = store.load("tcgcsv")

    assert first.groupby(["card_id", "variant", "currency"]).size().eq(3).all()
    assert not first.duplicated(["card_id", "variant", "currency", "date"]).any()
    pd.testing.assert_frame_equal(first, second)
    charizard = first[first["card_id"] == "517045"].sort_values("date")["market_price"].tolist()
    assert charizard == [300.0, 301.0, 302.0]
    assert set(first["set_name"]) == {"SV: Scarlet & Violet 151", "Base Set"}
    assert "500001" not in set(first["card_id"])  # category 85 is not category 3
    assert quality(tmp_path / "run2")["validation"]["rejected_by_reason"]["missing_price"]["count"] == 3
    # a local folder needs no network: one attempt at the catalogue (404 here), not repeated by the re-run
    assert [r.path for r in server.requests] == ["/tcgplayer/3/groups"]
    assert any(n["kind"] == "catalogue_unavailable" for n in quality(tmp_path / "run2")["notes"])


def test_a_missing_archive_day_is_a_listed_failure(server, store, tmp_path, archive_dir):
    collect("tcgcsv", "2025-09-21", "2025-09-24", tmp_path / "run", store=store,
            options={"archives": str(archive_dir)}, min_completeness=0.7)

    failure = quality(tmp_path / "run")["fetch_failures"][0]
    assert failure["item"] == "archive 2025-09-24"
    assert "no archive prices-2025-09-24.ppmd.7z in" in failure["error"]
    assert "2025-09-21..2025-09-23" in failure["error"]


def test_the_archive_url_answering_403_says_to_pass_a_local_folder(server, store, tmp_path):
    server.route("/archive/tcgplayer/prices-2025-09-21.ppmd.7z",
                 Reply(403, "<html><title>403 Forbidden</title></html>"))

    with pytest.raises(SourceError, match="archive not available from tcgcsv; pass a local folder of archives"):
        collect("tcgcsv", "2025-09-21", "2025-09-21", tmp_path / "run", store=store, options={"archives": "tcgcsv"})


def test_the_cli_reports_the_403_in_one_line(server, tmp_path, capsys):
    server.route("/archive/tcgplayer/prices-2025-09-21.ppmd.7z", Reply(403, "forbidden"))

    status = main(["collect", "--source", "tcgcsv", "--archives", f"{server.url}/archive/tcgplayer",
                   "--backfill", "2025-09-21..2025-09-21", "--run-dir", str(tmp_path / "run")])

    err = capsys.readouterr().err
    assert status == 2
    assert "pokewatch: error: archive not available from tcgcsv; pass a local folder of archives" in err
    assert "Traceback" not in err


def test_archives_from_a_url_are_downloaded_once(server, store, tmp_path, archive_dir):
    data = (archive_dir / "prices-2025-09-21.ppmd.7z").read_bytes()
    server.route("/mirror/prices-2025-09-21.ppmd.7z", Reply(200, data))
    tcgcsv_routes(server)
    options = {"archives": f"{server.url}/mirror"}

    collect("tcgcsv", "2025-09-21", "2025-09-21", tmp_path / "run", store=store, options=options)
    result = collect("tcgcsv", "2025-09-21", "2025-09-21", tmp_path / "run2", store=store, options=options)

    assert len(server.requests_to("/mirror/prices-2025-09-21.ppmd.7z")) == 1
    assert result.prices.set_index("card_id").loc["42382", "set_name"] == "Base Set"


# --------------------------------------------------------------------------- names on archive data

def test_a_backfill_fetches_the_catalogue_once_and_names_every_card(server, store, tmp_path, archive_dir):
    tcgcsv_routes(server)
    options = {"archives": str(archive_dir)}

    first = collect("tcgcsv", "2025-09-21", "2025-09-23", tmp_path / "run", store=store, options=options)
    fetched = [r.path for r in server.requests]
    again = collect("tcgcsv", "2025-09-21", "2025-09-23", tmp_path / "run2", store=store, options=options)

    assert sorted(fetched) == ["/tcgplayer/3/23237/products", "/tcgplayer/3/604/products", "/tcgplayer/3/groups"]
    assert len(server.requests) == 3  # the re-run used the stored catalogue
    for result in (first, again):
        charizard = result.prices.set_index("card_id").loc["517045"].iloc[0]
        assert (charizard["name"], charizard["number"], charizard["rarity"]) == \
            ("Charizard ex - 199/165", "199/165", "Special Illustration Rare")
    assert first.prices["name"].notna().all()
    products = catalogue.load_products(3).set_index("product_id")
    assert products.loc["42382", ["name", "set_id", "set_name"]].tolist() == ["Charizard", "604", "Base Set"]
    note = next(n for n in quality(tmp_path / "run2")["notes"] if n["kind"] == "catalogue")
    assert (note["products"], note["groups_named"], note["groups_in_archives"]) == (4, 2, 2)


def test_a_later_offline_backfill_has_the_names_a_live_collect_stored(server, store, tmp_path, archive_dir,
                                                                      monkeypatch):
    tcgcsv_routes(server)
    collect("tcgcsv", DAY, DAY, tmp_path / "live", store=store)
    (archive_dir / "groups-category-3.csv").unlink()
    monkeypatch.setenv("POKEWATCH_TCGCSV_URL", "http://127.0.0.1:9")  # offline from now on

    result = collect("tcgcsv", "2025-09-21", "2025-09-21", tmp_path / "run", store=store,
                     options={"archives": str(archive_dir), "catalogue": "off"})

    named = result.prices.set_index("card_id")
    assert named.loc["42382", "name"] == "Charizard" and named.loc["42382", "set_name"] == "Base Set"
    assert named.loc["517045", "set_name"] == "SV: Scarlet & Violet 151"


def test_an_unreachable_catalogue_is_a_note_not_retried_at_once_and_forced_with_refresh(server, store, tmp_path,
                                                                                        archive_dir):
    server.route("/tcgplayer/3/groups", Reply(503, "down"))
    options = {"archives": str(archive_dir)}

    result = collect("tcgcsv", "2025-09-21", "2025-09-21", tmp_path / "run1", store=store, options=options)
    collect("tcgcsv", "2025-09-21", "2025-09-21", tmp_path / "run2", store=store, options=options)
    tries = len(server.requests)
    collect("tcgcsv", "2025-09-21", "2025-09-21", tmp_path / "run3", store=store,
            options={**options, "catalogue": "refresh"})

    assert result.fetch.completeness == 1.0 and result.prices["name"].isna().all()
    assert tries == 1 and len(server.requests) == 2  # not retried within the hours, forced by refresh
    assert "trying again after" in next(n["detail"] for n in quality(tmp_path / "run2")["notes"]
                                        if n["kind"] == "catalogue_unavailable")


def test_catalogue_off_never_touches_the_network(server, store, tmp_path, archive_dir):
    tcgcsv_routes(server)

    collect("tcgcsv", "2025-09-21", "2025-09-21", tmp_path / "run", store=store,
            options={"archives": str(archive_dir), "catalogue": "off"})

    assert server.requests == []


def test_a_replay_names_cards_from_the_catalogue_copied_into_the_run(server, store, tmp_path, archive_dir):
    tcgcsv_routes(server)
    first = collect("tcgcsv", "2025-09-21", "2025-09-21", tmp_path / "run", store=store,
                    options={"archives": str(archive_dir)})
    for path in catalogue.catalogue_dir(3).iterdir():
        path.unlink()

    again = replay(tmp_path / "run", store=store)

    pd.testing.assert_frame_equal(first.prices, again.prices)


def test_a_backfill_logs_one_progress_line_per_day(server, store, tmp_path, archive_dir, caplog):
    with caplog.at_level(logging.INFO, logger="pokewatch.progress"):
        collect("tcgcsv", "2025-09-21", "2025-09-23", tmp_path / "run", store=store,
                options={"archives": str(archive_dir), "catalogue": "off"})

    lines = [r.getMessage() for r in caplog.records if r.name == "pokewatch.progress"]
    assert len(lines) == 3
    assert "3/3 days (100%)" in lines[-1] and lines[-1].endswith("2025-09-23: 2 groups")


def test_a_rerun_of_a_backfill_reads_the_decoded_archives(server, store, tmp_path, archive_dir):
    options = {"archives": str(archive_dir), "catalogue": "off"}
    collect("tcgcsv", "2025-09-21", "2025-09-23", tmp_path / "run", store=store, options=options)

    collect("tcgcsv", "2025-09-21", "2025-09-23", tmp_path / "run2", store=store, options=options)

    note = next(n for n in quality(tmp_path / "run2")["notes"] if n["kind"] == "archives_read")
    assert note["days_decoded_before"] == 3


def test_a_rerun_of_a_backfill_parses_each_archive_day_once(server, store, tmp_path, archive_dir, monkeypatch,
                                                             caplog):
    from pokewatch.data.sources.tcgcsv import TcgcsvSource

    options = {"archives": str(archive_dir), "catalogue": "off"}
    first = collect("tcgcsv", "2025-09-21", "2025-09-23", tmp_path / "run", store=store, options=options)
    parsed, parse = [], TcgcsvSource._parse_archive_day
    monkeypatch.setattr(TcgcsvSource, "_parse_archive_day",
                        staticmethod(lambda data, entry: parsed.append(entry["date"]) or parse(data, entry)))

    again = collect("tcgcsv", "2025-09-21", "2025-09-23", tmp_path / "run2", store=store, options=options)
    assert parsed == []
    pd.testing.assert_frame_equal(again.prices, first.prices)

    write_archive(archive_dir, "2025-09-22", archive_day("2025-09-22", 999.0))     # new bytes: parsed again
    cached = sorted((config.data_dir() / "cache" / "tcgcsv-parsed").glob("2025-09-21-*"))
    cached[0].write_bytes(b"not a pickle")                                           # damaged: parsed again
    with caplog.at_level(logging.WARNING):
        third = collect("tcgcsv", "2025-09-21", "2025-09-23", tmp_path / "run3", store=store, options=options)
    assert sorted(parsed) == ["2025-09-21", "2025-09-22"] and "unreadable" in caplog.text
    assert 999.0 in third.prices["market_price"].tolist()
    assert len(list((config.data_dir() / "cache" / "tcgcsv-parsed").glob("2025-09-22-*"))) == 1   # the old one went


def test_packed_raw_responses_are_kept_as_they_are_and_read_back_whole(tmp_path):
    from pokewatch.data import archives
    from pokewatch.data.raw_archive import RawArchive

    raw = RawArchive(tmp_path / "raw")
    data = archives.bundle({"604": json.dumps({"success": True, "results": []}).encode() * 200})
    path = raw.put("archive-3-2025-09-21.zip", data, packed=True, kind="archive_day", ok=True)

    assert raw.get("archive-3-2025-09-21.zip") == data
    assert path.stat().st_size >= len(data)          # stored, not squeezed a second time
    assert "packed" not in raw.entries()[0]


def test_malformed_price_results_in_an_archive_are_counted(server, store, tmp_path):
    folder = tmp_path / "archives"
    write_archive(folder, "2025-09-21", {3: {"604": [
        {"productId": 42382, "marketPrice": 455.47, "subTypeName": "Holofoil"},
        {"productId": [1], "marketPrice": 2.0, "subTypeName": "Normal"},
        "junk"]}})

    result = collect("tcgcsv", "2025-09-21", "2025-09-21", tmp_path / "run", store=store,
                     options={"archives": str(folder), "catalogue": "off"})

    assert result.prices["card_id"].tolist() == ["42382"]
    assert result.validation.counts == {"malformed_record": 2}


def test_archive_days_stored_by_earlier_versions_still_replay(tmp_path):
    from pokewatch.data.raw_archive import RawArchive
    from pokewatch.data.sources.tcgcsv import TcgcsvSource

    raw = RawArchive(tmp_path / "raw")
    payload = {"archive": "prices-2025-09-21.ppmd.7z", "date": "2025-09-21", "category": 3, "files": {
        "604": json.dumps({"success": True, "results": [{"productId": 42382, "marketPrice": 455.47,
                                                         "subTypeName": "Holofoil"}]})}}
    raw.put("archive-3-2025-09-21.json", json.dumps(payload).encode(), kind="archive_day", date="2025-09-21", ok=True)

    rows = TcgcsvSource._archive_day_rows(raw, raw.entries()[0])

    assert rows[["card_id", "variant", "market_price"]].values.tolist() == [["42382", "Holofoil", 455.47]]
