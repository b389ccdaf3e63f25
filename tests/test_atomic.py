"""Atomic CSV writes are spreadsheet-safe: no text cell can run as a formula, no number changes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pokewatch import atomic
from pokewatch.analysis import explore
from pokewatch.run.folder import RunFolder

HOSTILE = ["=cmd|' /C calc'!A0", "+SUM(1+1)", "@SUM(A1:A9)", "-2+3", "\tTab", "\rReturn"]


def test_text_cells_that_a_spreadsheet_would_run_are_prefixed(tmp_path):
    frame = pd.DataFrame({"name": pd.Series([*HOSTILE, "Charizard ex"], dtype="string")})

    atomic.write_csv(tmp_path / "x.csv", frame)

    written = pd.read_csv(tmp_path / "x.csv", dtype="string", keep_default_na=False)["name"].tolist()
    assert written == ["'" + text for text in HOSTILE] + ["Charizard ex"]


def test_numbers_and_harmless_text_are_written_as_they_are(tmp_path):
    frame = pd.DataFrame({"deviation": [-0.25, 0.1], "count": [-3, 4], "card_id": ["sv3pt5-199", "517045"],
                          "mixed": pd.Series([-1.5, "=x"], dtype=object),
                          "date": pd.to_datetime(["2026-01-05", "2026-01-06"])})

    atomic.write_csv(tmp_path / "x.csv", frame)

    lines = (tmp_path / "x.csv").read_text().splitlines()
    assert lines[1] == "-0.25,-3,sv3pt5-199,-1.5,2026-01-05"
    assert lines[2] == "0.1,4,517045,'=x,2026-01-06"


def test_categorical_text_is_prefixed_too():
    frame = pd.DataFrame({"category": pd.Categorical(["=HYPERLINK(\"x\")", "grail"])})

    assert atomic.spreadsheet_safe(frame)["category"].tolist() == ["'=HYPERLINK(\"x\")", "grail"]


def test_a_frame_needing_nothing_is_returned_unchanged():
    frame = pd.DataFrame({"name": ["Pikachu"], "market_price": [-1.0]})
    assert atomic.spreadsheet_safe(frame) is frame


def test_signals_read_back_keep_the_prefix_and_their_numbers(tmp_path):
    signals = pd.DataFrame({
        "card_id": ["sv3pt5-199", "517045"], "variant": ["Holofoil", "Normal"], "currency": ["USD", "USD"],
        "name": ["=cmd|' /C calc'!A0", "Charizard ex"], "date": ["2026-01-05", "2026-01-05"],
        "market_price": [245.1, 3.5], "fair_value": [250.0, 3.0], "deviation": [-0.0196, 0.1667],
        "signal": ["HOLD", "SELL"]})

    atomic.write_csv(RunFolder(tmp_path).signals, signals)
    back = explore.read_signals(RunFolder(tmp_path).signals)

    assert back["name"].tolist() == ["'=cmd|' /C calc'!A0", "Charizard ex"]  # the documented, expected form
    assert back["deviation"].tolist() == [-0.0196, 0.1667]
    assert back["card_id"].tolist() == ["sv3pt5-199", "517045"]
    assert back["signal"].astype(str).tolist() == ["HOLD", "SELL"]


def test_an_npz_holds_its_arrays_and_members_and_np_load_reads_it_without_pickles(tmp_path):
    path = atomic.write_npz(tmp_path / "m.npz", {"grid": np.eye(2), "names": np.array(["a", "bc"])},
                            members={"meta.json": b'{"version": 1}'})
    with np.load(path, allow_pickle=False) as archive:
        assert archive["grid"].tolist() == [[1.0, 0.0], [0.0, 1.0]] and archive["names"].tolist() == ["a", "bc"]
        assert archive["meta.json"] == b'{"version": 1}'


def test_an_npz_of_python_objects_is_refused_and_the_old_file_is_kept(tmp_path):
    path = atomic.write_npz(tmp_path / "m.npz", {"grid": np.zeros(3)}, compresslevel=None)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="pickle"):
        atomic.write_npz(path, {"grid": np.zeros(3), "objects": np.array([{"a": 1}], dtype=object)})
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_float_cells_are_written_exactly_as_pandas_float_format_writes_them(tmp_path):
    frame = pd.DataFrame({"price": [1 / 3, np.nan, -0.0, np.inf, 1e-300, 123456789012.5],
                          "low": np.array([0.1, 2.5, np.nan, -1.25, 7.0, 1 / 7], dtype=np.float32),
                          "nullable": pd.array([1 / 3, None, 2.0, None, -4.5, 0.0], dtype="Float64"),
                          "name": ["=x", "a,b", 'say "hi"', "-1", "", "plain"]})

    atomic.write_csv(tmp_path / "x.csv", frame)

    expected = atomic.spreadsheet_safe(frame).to_csv(None, index=False, float_format="%.10g", lineterminator="\r\n")
    assert (tmp_path / "x.csv").read_bytes() == expected.encode()
    assert (tmp_path / "x.csv").read_text().splitlines()[1] == "0.3333333333,0.1000000015,0.3333333333,'=x"
    assert frame["price"].dtype == np.float64          # the caller's frame is left as it was
