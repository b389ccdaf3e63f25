"""The tcgcsv archive reader: generated PPMd 7z archives, failure modes, and the real archives in ../shared."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import pytest
from sources_server import write_archive

from pokewatch.data import archives
from pokewatch.run.collect import collect
from pokewatch.errors import ParameterError, SourceError
from pokewatch.data.store import PriceStore

REPO = Path(__file__).resolve().parents[1]
REAL_ARCHIVES = REPO.parent / "shared" / "data" / "tcgcsv-archives"
REAL_DAYS = pd.date_range("2025-09-21", "2025-09-27", freq="D")


def test_reading_a_category_returns_its_groups_raw_files(tmp_path):
    path = write_archive(tmp_path, "2025-09-21", {
        3: {"604": [{"productId": 42382, "marketPrice": 455.47, "subTypeName": "Holofoil"}], "23237": []},
        85: {"23000": [{"productId": 1, "marketPrice": 1.0, "subTypeName": "Normal"}]},
    })

    files = archives.read_category(path, 3, "2025-09-21")

    assert sorted(files) == ["23237", "604"]
    assert b'"productId": 42382' in files["604"]
    assert list(archives.read_category(path, 85)) == ["23000"]


def test_generated_archives_use_ppmd_like_tcgcsv(tmp_path):
    import py7zr

    path = write_archive(tmp_path, "2025-09-21", {3: {"1": []}})
    with py7zr.SevenZipFile(path) as archive:
        assert archive.archiveinfo().method_names == ["PPMd"]
        assert archive.getnames() == ["2025-09-21/3/1/prices"]


def test_an_archive_of_another_day_is_refused(tmp_path):
    path = write_archive(tmp_path, "2025-09-21", {3: {"1": []}})
    renamed = path.rename(tmp_path / "prices-2025-09-22.ppmd.7z")

    with pytest.raises(SourceError, match=r"holds the day\(s\) \['2025-09-21'\], not 2025-09-22; was it renamed"):
        archives.read_category(renamed, 3, "2025-09-22")


def test_an_archive_without_the_category_says_so(tmp_path):
    path = write_archive(tmp_path, "2025-09-21", {85: {"1": []}})

    with pytest.raises(SourceError, match="has no files for category 3"):
        archives.read_category(path, 3)


def test_a_corrupt_archive_is_a_clear_error(tmp_path):
    path = write_archive(tmp_path, "2025-09-21", {3: {"1": []}})
    path.write_bytes(path.read_bytes()[:40])

    with pytest.raises(SourceError, match="could not be read .*truncated or corrupt"):
        archives.read_category(path, 3)


def _many_groups(category: int, count: int) -> dict[str, list[dict]]:
    return {str(category * 1000 + g): [{"productId": category * 100_000 + g * 100 + i, "marketPrice": 1.0 + i,
                                        "subTypeName": "Normal"} for i in range(40)] for g in range(count)}


def test_the_one_call_ppmd_decode_reads_the_same_bytes_as_py7zr_and_stops_at_the_last_wanted_file(
        tmp_path, monkeypatch):
    import py7zr

    path = write_archive(tmp_path, "2025-09-21", {1: _many_groups(1, 30), 3: _many_groups(3, 20),
                                                  85: _many_groups(85, 30)})
    with py7zr.SevenZipFile(path) as archive:
        stream = archives._single_ppmd_stream(archive)
    assert stream is not None and len(stream.members) == 80

    fast = {category: archives.read_category(path, category) for category in (3, 85)}
    monkeypatch.setattr(archives, "_single_ppmd_stream", lambda archive: None)
    through_py7zr = {category: archives.read_category(path, category) for category in (3, 85)}

    assert fast == through_py7zr
    assert len(fast[3]) == 20 and len(fast[85]) == 30


def test_a_damaged_ppmd_stream_is_a_clear_error(tmp_path):
    path = write_archive(tmp_path, "2025-09-21", {3: _many_groups(3, 20)})
    data = bytearray(path.read_bytes())
    data[32 + 400] ^= 0x01  # the packed stream starts after the 32-byte signature header
    path.write_bytes(bytes(data))

    with pytest.raises(SourceError, match=r"could not be read \(EOFError: the stream ends after .*corrupt"):
        archives.read_category(path, 3)


def test_a_file_that_decodes_to_other_bytes_than_its_crc_says_is_a_clear_error(tmp_path):
    import dataclasses

    import py7zr

    path = write_archive(tmp_path, "2025-09-21", {3: _many_groups(3, 3)})
    with py7zr.SevenZipFile(path) as archive:
        stream = archives._single_ppmd_stream(archive)
    name, size, crc = stream.members[1]
    wrong = dataclasses.replace(stream, members=(stream.members[0], (name, size, crc ^ 1), stream.members[2]))
    wanted = {member: member.split("/")[2] for member, _, _ in stream.members}

    assert archives._decode_stream(path, stream, wanted) == archives.read_category(path, 3)
    with pytest.raises(SourceError, match=f"{name} fails its CRC check"):
        archives._decode_stream(path, wrong, wanted)


def test_an_archive_of_another_compression_is_read_by_py7zr(tmp_path):
    import py7zr

    path = tmp_path / "prices-2025-09-21.ppmd.7z"
    with py7zr.SevenZipFile(path, "w") as archive:  # py7zr's default: LZMA2
        archive.writestr(b'{"success": true, "errors": [], "results": []}', "2025-09-21/3/7/prices")
    with py7zr.SevenZipFile(path) as archive:
        assert archives._single_ppmd_stream(archive) is None

    assert archives.read_category(path, 3, "2025-09-21") == {"7": b'{"success": true, "errors": [], "results": []}'}


def test_a_malformed_file_inside_an_archive_is_a_rejected_row_and_the_rest_is_read(tmp_path):
    folder = tmp_path / "archives"
    write_archive(folder, "2025-09-21", {3: {"1": [{"productId": 5, "marketPrice": 2.0, "subTypeName": "Normal"}],
                                             "2": b'{"results": [{"productId": '}})

    result = collect("tcgcsv", "2025-09-21", "2025-09-21", tmp_path / "run", store=PriceStore(tmp_path / "s"),
                     options={"archives": str(folder)})

    assert result.prices["card_id"].tolist() == ["5"]
    assert result.validation.counts == {"malformed_record": 1}
    rejected = result.validation.rejected.iloc[0]
    assert rejected["set_id"] == "2" and "2025-09-21/3/2/prices is not tcgcsv JSON" in rejected["malformed"]
    assert any(n["kind"] == "set_names_unavailable" for n in result.fetch.notes)


def test_groups_csv_is_read_with_or_without_a_header():
    headerless = archives.parse_groups_csv(b'604,"Base Set",3,,"2025-10-10T23:59:11.597"\n')
    with_header = archives.parse_groups_csv(b"groupId,name\n604,Base Set\n")
    assert headerless.loc[0, ["groupId", "name"]].tolist() == ["604", "Base Set"]
    assert with_header.loc[0, ["groupId", "name"]].tolist() == ["604", "Base Set"]


def test_a_location_is_a_folder_a_url_or_tcgcsv(tmp_path, monkeypatch):
    monkeypatch.setenv("POKEWATCH_TCGCSV_URL", "http://127.0.0.1:1")
    assert archives.ArchiveLocation.parse(tmp_path).folder == tmp_path.resolve()
    assert archives.ArchiveLocation.parse("https://example.org/a/").url == "https://example.org/a"
    assert archives.ArchiveLocation.parse("tcgcsv").url == "http://127.0.0.1:1/archive/tcgplayer"
    with pytest.raises(ParameterError, match="neither an existing folder nor an http"):
        archives.ArchiveLocation.parse(tmp_path / "nope")


def _no_ppmd(*args, **kwargs):
    raise AssertionError("PPMd was decoded although the archive was decoded before")


def test_an_archive_is_decoded_once_then_read_from_the_cache(tmp_path, monkeypatch):
    path = write_archive(tmp_path, "2025-09-21", {3: {"604": [{"productId": 1, "marketPrice": 2.0,
                                                              "subTypeName": "Normal"}]}})
    first, cached_first = archives.read_category_cached(path, 3, "2025-09-21")
    monkeypatch.setattr(archives, "read_category", _no_ppmd)

    again, cached_again = archives.read_category_cached(path, 3, "2025-09-21")

    assert (cached_first, cached_again) == (False, True)
    assert again == first
    assert archives.decoded_cache_path(path, 3).parent == archives.decoded_cache_folder()


def test_a_changed_archive_is_decoded_again_and_replaces_its_old_cache(tmp_path):
    path = write_archive(tmp_path, "2025-09-21", {3: {"604": []}})
    archives.read_category_cached(path, 3)
    old_cache = archives.decoded_cache_path(path, 3)
    write_archive(tmp_path, "2025-09-21", {3: {"604": [], "605": []}})
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))

    files, cached = archives.read_category_cached(path, 3)

    assert not cached and sorted(files) == ["604", "605"]
    assert not old_cache.exists() and archives.decoded_cache_path(path, 3).exists()


def test_a_damaged_cache_entry_is_decoded_again(tmp_path, caplog):
    path = write_archive(tmp_path, "2025-09-21", {3: {"604": []}})
    archives.read_category_cached(path, 3)
    archives.decoded_cache_path(path, 3).write_bytes(b"garbage")

    files, cached = archives.read_category_cached(path, 3)

    assert not cached and list(files) == ["604"] and "unreadable" in caplog.text


def test_a_cache_entry_with_one_flipped_byte_is_decoded_again(tmp_path, caplog):
    path = write_archive(tmp_path, "2025-09-21", {3: {"604": [{"productId": 1, "marketPrice": 2.0}]}})
    expected = archives.read_category_cached(path, 3)[0]
    entry = archives.decoded_cache_path(path, 3)
    damaged = bytearray(entry.read_bytes())
    damaged[len(damaged) // 2] ^= 0x01
    entry.write_bytes(bytes(damaged))

    files, cached = archives.read_category_cached(path, 3)

    assert not cached and files == expected and "SHA-256 does not match" in caplog.text
    assert archives.read_category_cached(path, 3) == (expected, True)


def test_reading_days_in_processes_gives_the_days_in_order_with_errors_per_day(tmp_path):
    paths = {}
    for i, day in enumerate(pd.date_range("2025-09-21", periods=4)):
        paths[day] = write_archive(tmp_path, f"{day:%Y-%m-%d}", {3: {str(600 + i): []}})
    bad_day = pd.Timestamp("2025-09-23")
    paths[bad_day].write_bytes(paths[bad_day].read_bytes()[:40])
    archives.read_category_cached(paths[pd.Timestamp("2025-09-21")], 3)  # one day decoded before

    results = list(archives.read_days(paths, 3, workers=2))

    assert [day for day, _, _ in results] == list(paths)
    assert [cached for _, _, cached in results] == [True, False, False, False]
    assert isinstance(results[2][1], SourceError) and "truncated or corrupt" in str(results[2][1])
    assert [archives.bundle_names(data) for _, data, _ in results if not isinstance(data, SourceError)] == \
        [["600"], ["601"], ["603"]]


needs_shared = pytest.mark.skipif(
    not REAL_ARCHIVES.is_dir() or not all((REAL_ARCHIVES / archives.archive_name(d)).is_file() for d in REAL_DAYS),
    reason=f"real tcgcsv archives not found in {REAL_ARCHIVES} (../shared is absent)",
)


@pytest.mark.shared
@needs_shared
def test_the_real_ppmd_archives_are_readable():
    started = time.perf_counter()
    files = archives.read_category(REAL_ARCHIVES / "prices-2025-09-21.ppmd.7z", 3, "2025-09-21")
    seconds = time.perf_counter() - started

    assert 180 <= len(files) <= 260
    print(f"read one day of category 3 ({len(files)} groups) in {seconds:.2f}s")


@pytest.mark.shared
@needs_shared
def test_a_7_day_backfill_of_the_real_archives_gives_43000_series_a_day_and_reruns_change_nothing(tmp_path):
    store = PriceStore(tmp_path / "store")
    options = {"archives": str(REAL_ARCHIVES), "category": 3}

    result = collect("tcgcsv", REAL_DAYS[0], REAL_DAYS[-1], tmp_path / "run", store=store, options=options)
    first = store.load("tcgcsv")
    # re-run the last two days of the backfill: the full path (archives, parse, store) again
    collect("tcgcsv", REAL_DAYS[-2], REAL_DAYS[-1], tmp_path / "rerun", store=store, options=options)
    second = store.load("tcgcsv")

    assert store.dates("tcgcsv") == list(REAL_DAYS)
    series_per_day = first.groupby("date").size()
    assert series_per_day.between(40_000, 46_000).all(), series_per_day.to_dict()
    assert not first.duplicated(["card_id", "variant", "currency", "date"]).any()
    assert set(result.validation.counts) <= {"missing_price"}  # null marketPrice, counted
    assert first["set_name"].notna().mean() > 0.99  # from groups-category-3.csv
    assert set(first["currency"]) == {"USD"}
    pd.testing.assert_frame_equal(first, second)


ALL_REAL_DAYS = pd.date_range("2025-09-21", "2025-10-08", freq="D")


@pytest.mark.shared
@pytest.mark.skipif(not all((REAL_ARCHIVES / archives.archive_name(d)).is_file() for d in ALL_REAL_DAYS),
                    reason=f"the 18 real archives are not in {REAL_ARCHIVES} (../shared is absent)")
def test_the_18_real_days_are_decoded_once_and_read_back_in_a_fraction_of_the_time():
    paths = {day: REAL_ARCHIVES / archives.archive_name(day) for day in ALL_REAL_DAYS}

    started = time.perf_counter()
    first = {day: len(archives.unbundle(data)) for day, data, _ in archives.read_days(paths, 3, workers=2)}
    decode = time.perf_counter() - started
    started = time.perf_counter()
    again = {day: (len(archives.unbundle(data)), cached)
             for day, data, cached in archives.read_days(paths, 3, workers=2)}
    cached_read = time.perf_counter() - started

    assert all(cached for _, cached in again.values()) and {d: n for d, (n, _) in again.items()} == first
    assert cached_read < decode / 5
    print(f"18 real days: first decode {decode:.1f}s, from the cache {cached_read:.2f}s")
