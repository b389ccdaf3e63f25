"""A stored day is merged, never truncated: every source, --replace-day, the kept raw responses, empty collects."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from sources_server import RecordedServer, Reply, fast_http, fixture, isolate_data, tcgcsv_routes

from pokewatch.data import raw_archive
from pokewatch.data.raw_archive import RawArchive
from pokewatch.cli.main import main
from pokewatch.run.collect import collect, replay
from pokewatch.errors import SourceError
from pokewatch.data.store import PriceStore
from pokewatch.run.folder import RunFolder

DAY = "2026-01-05"
KEY = ["card_id", "variant", "currency", "date"]


@pytest.fixture
def server(monkeypatch, tmp_path):
    fast_http(monkeypatch)
    isolate_data(monkeypatch, tmp_path)
    monkeypatch.delenv("POKEMONTCG_API_KEY", raising=False)
    monkeypatch.setenv("POKEMONPRICETRACKER_API_KEY", "ppt-fake-key-1")
    with RecordedServer() as srv:
        for name, path in (("TCGCSV", ""), ("POKEMONTCG", ""), ("PPT", "/api/v2")):
            monkeypatch.setenv(f"POKEWATCH_{name}_URL", srv.url + path)
        yield srv


@pytest.fixture
def store(tmp_path):
    return PriceStore(tmp_path / "store")


def stored_keys(store: PriceStore, source: str) -> set[tuple]:
    return set(store.load(source)[KEY].itertuples(index=False, name=None))


def quality(run_dir) -> dict:
    return json.loads(RunFolder(run_dir).quality.read_text())


# -- one partial re-collect per source: every earlier row stays -------------------------------------
def test_a_partial_demo_recollect_keeps_every_earlier_row(server, store, tmp_path):
    collect("demo", DAY, DAY, tmp_path / "run1", store=store, options={"n_series": 40})
    before = stored_keys(store, "demo")

    result = collect("demo", DAY, DAY, tmp_path / "run2", store=store, options={"n_series": 5})

    assert len(before) > result.rows_valid > 0
    assert before <= stored_keys(store, "demo")


def test_a_tcgcsv_recollect_with_a_failing_group_keeps_that_groups_rows(server, store, tmp_path):
    tcgcsv_routes(server)
    collect("tcgcsv", DAY, DAY, tmp_path / "run1", store=store)
    before = stored_keys(store, "tcgcsv")
    server.route("/tcgplayer/3/604/prices", Reply(500, "down"))

    result = collect("tcgcsv", DAY, DAY, tmp_path / "run2", store=store, min_completeness=0.5)

    assert "42382" not in set(result.prices["card_id"])  # Base Set's prices did not come back ...
    assert stored_keys(store, "tcgcsv") == before  # ... and its stored row is still there
    assert ("42382", "Holofoil", "USD", pd.Timestamp(DAY)) in before


def test_a_pokemontcg_recollect_with_a_failing_page_keeps_that_pages_rows(server, store, tmp_path):
    query = {"q": "set.id:sv3pt5"}
    options = {"set": "sv3pt5", "page_size": 2, "stale_days": 2000}
    server.route("/v2/cards", Reply(200, fixture("pokemontcg/cards-sv3pt5-page1.json")), query={**query, "page": "1"})
    server.route("/v2/cards", Reply(200, fixture("pokemontcg/cards-sv3pt5-page2.json")), query={**query, "page": "2"})
    collect("pokemontcg", DAY, DAY, tmp_path / "run1", store=store, options=options)
    before = stored_keys(store, "pokemontcg")
    server.route("/v2/cards", Reply(500, {"error": {"message": "down", "code": 500}}), query={**query, "page": "2"})

    result = collect("pokemontcg", DAY, DAY, tmp_path / "run2", store=store, options=options, min_completeness=0.4)

    assert result.fetch.failures and "sv3pt5-200" not in set(result.prices["card_id"])
    assert stored_keys(store, "pokemontcg") == before
    assert any(k[0] == "sv3pt5-200" for k in before)


def test_a_pokemonpricetracker_recollect_of_fewer_cards_keeps_the_others(server, store, tmp_path):
    server.route("/api/v2/cards", Reply(200, fixture("pokemonpricetracker/card-517045.json")),
                 query={"tcgPlayerId": "517045"})
    server.route("/api/v2/cards", Reply(200, fixture("pokemonpricetracker/set-23237-offset0.json")),
                 query={"setId": "23237", "offset": "0"})
    server.route("/api/v2/cards", Reply(200, fixture("pokemonpricetracker/set-23237-offset2.json")),
                 query={"setId": "23237", "offset": "2"})
    options = {"tcgplayer_id": "517045", "set_id": "23237", "limit": 2}
    collect("pokemonpricetracker", "2026-01-04", DAY, tmp_path / "run1", store=store, options=options)
    before = stored_keys(store, "pokemonpricetracker")
    server.route("/api/v2/cards", Reply(500, {"error": "down"}), query={"setId": "23237", "offset": "2"})

    collect("pokemonpricetracker", "2026-01-04", DAY, tmp_path / "run2", store=store, options=options,
            min_completeness=0.5)

    assert ("502552", "Normal", "USD", pd.Timestamp(DAY)) in before
    assert stored_keys(store, "pokemonpricetracker") == before


def write_csv(path, rows: list[tuple]) -> str:
    path.write_text("card_id,date,price\n" + "".join(f"{c},{d},{p}\n" for c, d, p in rows))
    return str(path)


def thirty_rows() -> list[tuple]:
    return [(f"sv3pt5-{card}", f"2026-01-0{day}", 1.0 + card + day / 10) for card in range(1, 7) for day in range(1, 6)]


def test_reimporting_five_cards_with_the_file_source_keeps_the_stored_thirty(server, store, tmp_path):
    collect("file", "2026-01-01", DAY, tmp_path / "run1", store=store,
            options={"path": write_csv(tmp_path / "all.csv", thirty_rows())})
    five = [(f"sv3pt5-{card}", DAY, 99.0) for card in range(1, 6)]

    result = collect("file", DAY, DAY, tmp_path / "run2", store=store,
                     options={"path": write_csv(tmp_path / "five.csv", five)})

    stored = store.load("file")
    assert len(stored) == 30 and result.rows_removed == 0
    today = stored[stored["date"] == pd.Timestamp(DAY)].set_index("card_id")["market_price"]
    assert today.to_dict() == {**{f"sv3pt5-{c}": 99.0 for c in range(1, 6)}, "sv3pt5-6": 7.5}
    assert quality(tmp_path / "run2")["rows_removed"] == 0


# -- removing rows takes --replace-day, which counts them ---------------------------------------------
def test_replace_day_removes_the_rows_not_fetched_again_and_says_how_many(server, store, tmp_path):
    collect("file", "2026-01-01", DAY, tmp_path / "run1", store=store,
            options={"path": write_csv(tmp_path / "all.csv", thirty_rows())})
    five = [(f"sv3pt5-{card}", DAY, 99.0) for card in range(1, 6)]

    result = collect("file", DAY, DAY, tmp_path / "run2", store=store, replace_day=True,
                     options={"path": write_csv(tmp_path / "five.csv", five)})

    assert result.rows_removed == 1 and len(store.load("file")) == 29
    report = quality(tmp_path / "run2")
    assert report["replace_day"] is True
    assert report["rows_removed"] == 1 and report["rows_removed_by_day"] == {DAY: 1}


def test_the_cli_replace_day_flag_prints_the_removed_rows(server, store, tmp_path, capsys):
    collect("file", "2026-01-01", DAY, tmp_path / "run1", options={"path": write_csv(tmp_path / "all.csv",
                                                                                     thirty_rows())})
    path = write_csv(tmp_path / "one.csv", [("sv3pt5-1", DAY, 50.0)])

    status = main(["collect", "--source", "file", "--date", DAY, "--param", f"input_path={path}", "--replace-day",
                   "--run-dir", str(tmp_path / "run2")])

    assert status == 0
    assert "removed 5 stored row(s) not fetched again (--replace-day)" in capsys.readouterr().out
    assert len(PriceStore.default().load("file", DAY, DAY)) == 1


# -- the raw responses of a successful collect outlive its run folder ----------------------------------
def test_kept_raw_responses_replay_a_day_after_the_run_folder_is_gone(server, store, tmp_path):
    tcgcsv_routes(server)
    result = collect("tcgcsv", DAY, DAY, tmp_path / "run", store=store)
    kept = tmp_path / "data" / "raw" / "tcgcsv"
    assert result.raw_kept and str(kept) in result.raw_kept
    assert quality(tmp_path / "run")["raw_kept"] == result.raw_kept
    for path in (tmp_path / "run").rglob("*"):  # the attempt folder is pruned ...
        if path.is_file():
            path.unlink()
    os.unlink(store.day_path("tcgcsv", DAY))  # ... and the day is lost from the store
    requests = len(server.requests)

    again = replay(result.raw_kept, store=store)

    assert len(server.requests) == requests and again.rows_valid == 4
    assert len(store.load("tcgcsv")) == 4
    assert (tmp_path / "data" / "collect-runs").is_dir()


def test_the_cli_replays_a_kept_folder(server, store, tmp_path, capsys):
    collect("file", DAY, DAY, tmp_path / "run", options={"path": write_csv(tmp_path / "a.csv", [("a-1", DAY, 2.0)])})
    folder = next((tmp_path / "data" / "raw" / "file").iterdir())

    assert main(["collect", "--replay", str(folder)]) == 0
    assert "rows: 1 valid" in capsys.readouterr().out


def test_kept_raw_folders_older_than_raw_keep_days_are_pruned(server, store, tmp_path, monkeypatch):
    monkeypatch.setenv("POKEWATCH_RAW_KEEP_DAYS", "30")
    first = collect("file", DAY, DAY, tmp_path / "run1", store=store,
                    options={"path": write_csv(tmp_path / "a.csv", [("a-1", DAY, 2.0)])})
    old = time.time() - 31 * 86_400
    os.utime(f"{first.raw_kept}/{raw_archive.KEPT_MARKER}", (old, old))

    second = collect("file", DAY, DAY, tmp_path / "run2", store=store,
                     options={"path": write_csv(tmp_path / "b.csv", [("a-1", DAY, 3.0)])})

    assert not os.path.exists(first.raw_kept) and os.path.exists(second.raw_kept)


def test_kept_responses_move_out_of_the_run_folder_which_still_reads_them(server, store, tmp_path):
    tcgcsv_routes(server)
    fetched = tmp_path / "run" / "raw" / "tcgcsv" / "prices-3-23237.json.gz"
    real_keep = raw_archive.keep
    inodes = {}

    def keep(raw, *args, **kwargs):
        inodes["fetched"] = os.stat(fetched).st_ino
        return real_keep(raw, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(raw_archive, "keep", keep)
        result = collect("tcgcsv", DAY, DAY, tmp_path / "run", store=store)

    assert os.stat(f"{result.raw_kept}/{fetched.name}").st_ino == inodes["fetched"]   # linked, never copied
    assert not list(fetched.parent.glob("*.gz"))                                     # the run folder stays small
    archive = RawArchive(fetched.parent)
    assert archive.kept_folder() == Path(result.raw_kept) and archive.has("prices-3-23237.json")
    assert archive.get("prices-3-23237.json") == gzip.decompress(Path(result.raw_kept, fetched.name).read_bytes())

    requests = len(server.requests)
    again = replay(tmp_path / "run", store=store)                                    # through the pointer
    assert again.rows_valid == 4 and len(server.requests) == requests


def test_a_kept_folder_a_run_still_points_to_is_not_pruned(server, store, tmp_path, monkeypatch):
    monkeypatch.setenv("POKEWATCH_RAW_KEEP_DAYS", "30")
    run = tmp_path / "runs" / "attempts" / "2026-01-05T030000-1"
    first = collect("file", DAY, DAY, run, store=store,
                    options={"path": write_csv(tmp_path / "a.csv", [("a-1", DAY, 2.0)])})
    old = time.time() - 31 * 86_400
    os.utime(f"{first.raw_kept}/{raw_archive.KEPT_MARKER}", (old, old))

    collect("file", DAY, DAY, tmp_path / "run2", store=store,
            options={"path": write_csv(tmp_path / "b.csv", [("a-1", DAY, 3.0)])})

    assert os.path.exists(first.raw_kept)
    shutil.rmtree(run)                                    # the attempt is pruned: nothing points there any more
    assert raw_archive.prune_kept() == [Path(first.raw_kept)]


def test_a_failed_collect_keeps_no_raw_copy(server, store, tmp_path):
    tcgcsv_routes(server)
    server.route("/tcgplayer/3/24380/prices", Reply(500, "down"))

    with pytest.raises(SourceError):
        collect("tcgcsv", DAY, DAY, tmp_path / "run", store=store, min_completeness=1.0)
    assert not (tmp_path / "data" / "raw").exists()


# -- a collect that yields nothing valid fails and stores nothing ---------------------------------------
def test_a_header_only_csv_fails_the_collect_and_stores_nothing(server, store, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("card_id,date,price\n")

    with pytest.raises(SourceError, match="empty.csv has a header but no data rows; there is nothing to import"):
        collect("file", DAY, DAY, tmp_path / "run", store=store, options={"path": str(path)})
    assert store.dates("file") == []


def test_a_collect_whose_rows_are_all_rejected_fails_with_the_reasons(server, store, tmp_path):
    path = write_csv(tmp_path / "bad.csv", [("a-1", DAY, -1), ("a-2", DAY, 0)])

    with pytest.raises(SourceError, match=r"none of its 2 row\(s\) dated 2026-01-05..2026-01-05 is valid "
                                          r"\(rejected: \{'non_positive_price': 2\}\)"):
        collect("file", DAY, DAY, tmp_path / "run", store=store, options={"path": path})
    assert store.dates("file") == []


# -- columns nobody declared never reach the store ---------------------------------------------------------
def test_unmapped_columns_of_a_wide_csv_are_dropped_and_reported(server, store, tmp_path):
    n_junk = 3_000
    header = "card_id,date,price,grade," + ",".join(f"junk{i}" for i in range(n_junk))
    rows = [f"a-{r},{DAY},{1.5 + r},PSA {r}," + ",".join("x" * n_junk) for r in range(3)]
    path = tmp_path / "wide.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")

    result = collect("file", DAY, DAY, tmp_path / "run", store=store, options={"path": str(path)})

    stored = store.load("file")
    assert len(stored) == 3 and result.rows_valid == 3
    assert not [c for c in stored.columns if c.startswith("junk")] and "grade" not in stored.columns
    note = next(n for n in quality(tmp_path / "run")["notes"] if n["kind"] == "input_file")
    assert note["columns_dropped"] == n_junk + 1      # the file source drops them before the store sees them
