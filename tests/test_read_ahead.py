"""A step started ahead asks for the stored history it will scan, and nothing else, to be read into the page cache."""
import json
import os

import pandas as pd
import pytest

from pokewatch.data import compaction, read_ahead
from pokewatch.data.store import PriceStore
from pokewatch.run import head_start
from tests.conftest import prices


def _store(tmp_path) -> PriceStore:
    store = PriceStore(tmp_path / "store")
    store.write_days("demo", prices([(f"c-{i}", "Normal", f"2026-11-{d:02d}", 1.0 + d) for i in range(3)
                                     for d in range(1, 11)]))
    store.write_days("demo", prices([(f"c-{i}", "Normal", "2026-11-11", 2.0) for i in range(3)]))
    return store


def test_the_newest_states_scanned_files_are_asked_for(tmp_path, monkeypatch):
    store = _store(tmp_path)
    history, _ = store.compacted("demo")
    asked = []
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, offset, length, advice: asked.append((offset, advice)))
    expected = sum(os.path.getsize(part.path / name) for part in history.parts for name in read_ahead.SCANNED
                   if (part.path / name).exists())
    assert len(history.parts) == 2 and expected > 0
    assert read_ahead.read_ahead(store.root, "demo") == expected
    assert {advice for _, advice in asked} == {os.POSIX_FADV_WILLNEED}
    assert read_ahead.FOLDER == compaction.FOLDER


def test_a_store_without_that_source_or_with_a_broken_state_asks_for_nothing(tmp_path):
    store = _store(tmp_path)
    assert read_ahead.read_ahead(store.root, "tcgcsv") == 0
    assert read_ahead.read_ahead(tmp_path / "nowhere", "demo") == 0
    state = max((store.root / compaction.FOLDER / "demo").glob("state-*.json"), key=lambda p: p.stat().st_mtime_ns)
    state.write_text("{not json")
    assert read_ahead.read_ahead(store.root, "demo") == 0
    state.write_text(json.dumps({"parts": ["part-gone"]}))
    assert read_ahead.read_ahead(store.root, "demo") == 0


def test_the_history_loads_the_same_after_reading_ahead(tmp_path):
    store = _store(tmp_path)
    before = store.load("demo")
    read_ahead.read_ahead(store.root, "demo")
    pd.testing.assert_frame_equal(store.load("demo"), before)


@pytest.mark.parametrize(("setting", "calls"), [("demo", [("demo",)]), ("", [])])
def test_a_launcher_started_ahead_reads_ahead_only_when_the_pipeline_names_a_source(tmp_path, monkeypatch,
                                                                                    setting, calls):
    made = []
    monkeypatch.setenv(head_start.READ_AHEAD, setting)
    monkeypatch.setenv("POKEWATCH_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(read_ahead, "read_ahead", lambda root, source: made.append((root, source)) or 0)
    head_start.prepare([], None)
    assert [call[1:] for call in made] == calls
    assert all(str(root).startswith(str(tmp_path)) for root, _ in made)
