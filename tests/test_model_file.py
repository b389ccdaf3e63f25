"""A run folder's model.npz: numpy arrays plus JSON, read back exactly, and old pickles refused unread."""
from __future__ import annotations

import json
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest

from pokewatch.core.model import FairValueModel
from pokewatch.core.rules import Filters, Rule
from pokewatch.data.demo_market import demo_prices
from pokewatch.errors import RunError
from pokewatch.run import model_file

RUN = "2026-11-28T101500-4242"


@pytest.fixture(scope="module")
def model() -> FairValueModel:
    rule = Rule("ewm", 7, buy=Filters(activity=2, persistence=True), sell=None, reasons={"SELL": "no edge"})
    fitted = FairValueModel(rule, keep_days=30, trained_on="2026-11-23",
                            selection={"reason": "best net precision", "flag_days": ["2026-10-01", "2026-11-15"],
                                       "in_sample": {"BUY": {"precision": 0.61, "lift": float("nan")}}})
    return fitted.fit(demo_prices("2026-09-01", "2026-11-26", n_series=60), through="2026-11-28")


@pytest.fixture
def saved(model, tmp_path):
    run_dir = tmp_path / RUN
    return model_file.write(model_file.path_in(run_dir), model)


def test_a_saved_model_predicts_exactly_what_it_did_before(model, saved):
    loaded = model_file.read(saved)
    for day in ("2026-10-30", "2026-11-26", "2026-11-28"):
        pd.testing.assert_frame_equal(loaded.predict_all(day), model.predict_all(day))
    card = model.cards().iloc[5]
    assert loaded.predict(card["card_id"], variant=card["variant"]) == model.predict(card["card_id"],
                                                                                      variant=card["variant"])
    assert (loaded.rule, loaded.params, loaded.trained_on) == (model.rule, model.params, model.trained_on)
    assert loaded.rule.reasons == {"SELL": "no edge"}
    assert loaded.selection["flag_days"] == ["2026-10-01", "2026-11-15"]


def test_the_file_is_a_plain_npz_with_no_pickle_inside(saved):
    with np.load(saved, allow_pickle=False) as archive:
        document = json.loads(archive[model_file.META_MEMBER])
        assert {"market", "fair", "codes", "days"} <= set(archive.files)
        assert archive["days"].dtype == np.int32
    assert (document["format"], document["format_version"]) == (model_file.FORMAT, model_file.FORMAT_VERSION)
    assert document["model"]["trained_on"] == "2026-11-23"
    assert model_file.format_version(saved) == model_file.FORMAT_VERSION and model_file.is_current(saved)


class _Tripwire:
    """Unpickling this creates ``path``: proof that a file was unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (self.path.__class__.touch, (self.path,))


def test_an_old_pickled_model_is_refused_unread_with_how_to_train_again(tmp_path):
    run_dir = tmp_path / RUN
    run_dir.mkdir()
    tripwire = tmp_path / "unpickled"
    (run_dir / model_file.OLD_MODEL_FILE).write_bytes(pickle.dumps(_Tripwire(tripwire)))
    with pytest.raises(RunError, match=rf"run {RUN} holds an old-format model \(model.joblib, a pickle") as caught:
        model_file.read(model_file.path_in(run_dir))
    assert "scripts/run_pipeline.sh --date 2026-11-28 --force-train" in str(caught.value)
    assert not tripwire.exists()
    assert not model_file.is_current(model_file.path_in(run_dir))


def test_a_pickle_saved_under_the_new_name_is_not_unpickled_either(tmp_path):
    path = model_file.path_in(tmp_path / RUN)
    path.parent.mkdir()
    tripwire = tmp_path / "unpickled"
    path.write_bytes(pickle.dumps(_Tripwire(tripwire)))
    with pytest.raises(RunError, match=f"model.npz of run {RUN} cannot be read .*not an .npz archive"):
        model_file.read(path)
    assert not tripwire.exists()


@pytest.mark.parametrize("fitted", [True, False])   # reading only the settings checks the same
def test_a_model_of_another_format_version_is_refused_with_how_to_train_again(model, saved, monkeypatch, fitted):
    monkeypatch.setattr(model_file, "FORMAT_VERSION", 2)
    model_file.write(saved, model)
    monkeypatch.setattr(model_file, "FORMAT_VERSION", 1)
    assert model_file.format_version(saved) == 2 and not model_file.is_current(saved)
    with pytest.raises(RunError, match=f"model.npz of run {RUN} is in format version 2, and this PokeWatch "
                                       "reads version 1; train again: scripts/run_pipeline.sh --date 2026-11-28"):
        model_file.read(saved, fitted)


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(p.read_bytes()[:3000]), "cannot be read"),
    (lambda p: p.write_bytes(b""), "cannot be read"),
    (lambda p: np.savez(p, prices=np.arange(3.0)), "is not a PokeWatch model file"),
])
@pytest.mark.parametrize("fitted", [True, False])
def test_a_damaged_or_foreign_file_is_refused_naming_the_run(saved, damage, message, fitted):
    damage(saved)
    with pytest.raises(RunError, match=f"model.npz of run {RUN} {message}.*re-run the pipeline"):
        model_file.read(saved, fitted)
    assert not model_file.is_current(saved)


def test_arrays_that_do_not_fit_the_metadata_are_refused_naming_the_run(saved):
    with zipfile.ZipFile(saved) as archive:
        members = {name: archive.read(name) for name in archive.namelist() if name != "fair.npy"}
    with zipfile.ZipFile(saved, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(RunError, match=f"model.npz of run {RUN} cannot be read .*lack 'fair'"):
        model_file.read(saved)


def test_a_run_without_a_model_says_so(tmp_path):
    with pytest.raises(RunError, match=f"run {RUN} has no model.npz; re-run the pipeline"):
        model_file.read(model_file.path_in(tmp_path / RUN))
