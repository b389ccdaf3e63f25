"""RunFolder names every file of a run once; the manifest accepts only the fields it declares."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from pokewatch.run import runs
from pokewatch.run.folder import KEPT_WHEN_PRUNED, RunFolder
from pokewatch.run.manifest import FIELDS
from tests.conftest import REPO


def test_a_run_folder_gives_each_file_under_it_and_the_class_gives_the_name():
    folder = RunFolder("runs/attempts/2026-11-27T010203-7")
    assert folder.signals == Path("runs/attempts/2026-11-27T010203-7/signals.csv")
    assert folder.notebook("train") == folder.path / "train.ipynb"
    assert folder.log("collect") == folder.logs / "collect.log"
    assert folder.parameters_file("evaluate") == folder.params / "evaluate.yaml"
    assert folder.plot("top_cards") == folder.plots / "top_cards.png"
    assert RunFolder.model.name == folder.model.name == "model.npz"


def test_no_two_entries_share_a_name():
    names = [entry.name for entry in RunFolder.entries()]
    assert len(names) == len(set(names)) and "manifest.json" in names


def test_a_pruned_attempt_keeps_what_the_runs_index_reads():
    assert KEPT_WHEN_PRUNED == ("manifest.json", "metrics.json", "quality.json")


def _spelled(name: str) -> list[str]:
    """Files of the package, notebooks and scripts that spell ``name`` as a string literal."""
    literal = re.compile(r'\\?"' + re.escape(name) + r'\\?"')
    places = [p for folder in ("pokewatch", "notebooks", "scripts") for p in (REPO / folder).rglob("*")
              if p.suffix in (".py", ".ipynb", ".sh") and ".ipynb_checkpoints" not in p.parts]
    return sorted(str(p.relative_to(REPO)) for p in places if literal.search(p.read_text(encoding="utf-8")))


#: The files (folders such as "raw" and "plots" are also plain words in other contexts).
FILES = [entry for entry in RunFolder.entries() if "." in entry.name]


@pytest.mark.parametrize("entry", FILES, ids=lambda entry: entry.attribute)
def test_each_file_name_is_spelled_only_in_the_folder_module(entry):
    allowed = ["pokewatch/run/folder.py"]
    if entry is RunFolder.portfolio:  # the collector's own holdings file at the project root shares the name
        allowed.append("pokewatch/analysis/portfolio.py")
    assert _spelled(entry.name) == sorted(allowed)


def test_the_manifest_refuses_a_field_it_does_not_declare(tmp_path):
    runs.update_manifest(tmp_path, run_date="2026-11-27", status="running")
    with pytest.raises(ValueError, match="manifest field.* finshed_at are not declared"):
        runs.update_manifest(tmp_path, finshed_at="2026-11-27T10:00:00+00:00")
    with pytest.raises(ValueError, match="manifest status 'done' is not one of running, success"):
        runs.update_manifest(tmp_path, status="done")
    assert runs.read_manifest(tmp_path) == {"run_date": "2026-11-27", "status": "running"}


def test_every_field_the_pipeline_writes_is_declared(tmp_path):
    attempt = runs.start_run("2026-11-27", {"collect": {"source": "demo"}}, tmp_path)
    runs.record_step(attempt, "collect", 1.25, {"prices": False}, rows=10)
    runs.record_wall_times(attempt, {"collect": 2.5})
    runs.fail(attempt, "collect", "exit status 1", log="logs/collect.log")
    manifest = runs.read_manifest(attempt)
    assert set(manifest) <= FIELDS
    assert manifest["steps"]["collect"] == {"seconds": 1.25, "cache_hits": {"prices": False}, "rows": 10,
                                            "wall_seconds": 2.5}
