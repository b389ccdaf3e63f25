"""Lint is part of `make test`, works offline, and notebook stripping keeps exactly the nbval references.

scripts/strip_notebooks.py is what pre-commit and `make lint` run on notebooks; these tests
pin its promises on small notebooks written here: every output and execution count goes
except the reference cells', and a changed reference output is refused, not kept silently.
"""
from __future__ import annotations

import re
import subprocess
import sys

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_notebook, new_output

from tests.conftest import REPO

STRIP = REPO / "scripts" / "strip_notebooks.py"
sys.path.insert(0, str(REPO / "scripts"))
import strip_notebooks  # noqa: E402


def _notebook(reference_output: str = "11 candidates compared\n", *, count: int | None = 1):
    """A three-cell notebook: a plain cell run in a session, and one nbval reference cell."""
    plain = new_code_cell("x = 1\nx", id="plain", execution_count=7,
                          outputs=[new_output("execute_result", data={"text/plain": "1"}, execution_count=7)])
    reference = new_code_cell('# NBVAL_CHECK_OUTPUT\nprint("11 candidates compared")', id="reference",
                              execution_count=count, metadata={"keep_output": True},
                              outputs=[new_output("stream", name="stdout", text=reference_output)])
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return new_notebook(cells=[plain, reference], metadata={"kernelspec": kernelspec})


def _run(*args, cwd):
    return subprocess.run([sys.executable, str(STRIP), *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture
def repo(tmp_path):
    """A git repository with one committed, correctly stripped notebook."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    path = tmp_path / "train.ipynb"
    nbformat.write(strip_notebooks.strip(_notebook()), str(path))
    subprocess.run(["git", "-C", str(tmp_path), "add", "train.ipynb"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com",
                    "commit", "-qm", "notebook"], check=True)
    return path


def test_stripping_drops_every_count_and_output_except_the_reference_cells():
    stripped = strip_notebooks.strip(_notebook(count=12))
    plain, reference = stripped.cells
    assert plain.outputs == [] and plain.execution_count is None
    assert reference.execution_count == 1
    assert reference.outputs[0].text == "11 candidates compared\n"


def test_a_reference_cell_without_a_count_gets_one_so_nbval_compares_it():
    assert strip_notebooks.strip(_notebook(count=None)).cells[1].execution_count == 1


def test_a_stripped_notebook_passes_the_check_unchanged(repo):
    before = repo.read_bytes()
    result = _run("--check", repo.name, cwd=repo.parent)
    assert result.returncode == 0, result.stderr
    assert repo.read_bytes() == before


def test_a_session_count_fails_the_check_and_is_stripped_on_commit(repo):
    nbformat.write(_notebook(count=5), str(repo))
    check = _run("--check", repo.name, cwd=repo.parent)
    assert check.returncode == 1 and "execution counts" in check.stderr
    assert _run(repo.name, cwd=repo.parent).returncode == 1
    plain, reference = nbformat.read(str(repo), as_version=4).cells
    assert plain.execution_count is None and plain.outputs == [] and reference.execution_count == 1
    assert _run("--check", repo.name, cwd=repo.parent).returncode == 0


def test_a_changed_reference_output_is_refused_and_the_committed_one_put_back(repo):
    nbformat.write(_notebook("9 candidates compared\n"), str(repo))
    result = _run(repo.name, cwd=repo.parent)
    assert result.returncode == 1
    assert "reference cell reference output changed from '11 candidates compared' to '9 candidates compared'" \
        in result.stderr
    assert "--accept-references" in result.stderr
    assert nbformat.read(str(repo), as_version=4).cells[1].outputs[0].text == "11 candidates compared\n"


def test_a_cleared_reference_output_is_refused_too(repo):
    nb = _notebook()
    nb.cells[1].outputs = []
    nbformat.write(nb, str(repo))
    assert _run("--check", repo.name, cwd=repo.parent).returncode == 1
    assert _run(repo.name, cwd=repo.parent).returncode == 1
    assert nbformat.read(str(repo), as_version=4).cells[1].outputs[0].text == "11 candidates compared\n"


def test_an_intended_reference_change_is_kept_with_accept_references(repo):
    nbformat.write(_notebook("12 candidates compared\n"), str(repo))
    result = _run("--accept-references", repo.name, cwd=repo.parent)
    assert result.returncode == 1 and "stripped" in result.stderr  # the plain cell's output went
    assert nbformat.read(str(repo), as_version=4).cells[1].outputs[0].text == "12 candidates compared\n"


def test_an_unreadable_notebook_exits_2_naming_the_file(tmp_path):
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    result = _run(broken.name, cwd=tmp_path)
    assert result.returncode == 2 and "broken.ipynb" in result.stderr


def test_the_committed_notebooks_are_stripped():
    result = _run("--check", *sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb")), cwd=REPO / "notebooks")
    assert result.returncode == 0, result.stderr


def test_make_test_lints_code_and_notebooks():
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^test: lint\b", makefile, re.M)
    lint = re.search(r"^lint:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert re.search(r"ruff check pokewatch tests scripts benchmarks notebooks\b", lint)
    assert "strip_notebooks.py --check notebooks/*.ipynb" in lint


def test_pre_commit_hooks_are_local_and_use_the_venvs_tools():
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    hooks = config["repos"][0]["hooks"]
    assert all(hook["language"] == "system" and hook["entry"].startswith(".venv/bin/") for hook in hooks)
    assert {"ruff", "strip-notebooks"} <= {hook["id"] for hook in hooks}


@pytest.mark.slow
def test_pre_commit_runs_every_hook_offline_on_a_clone(tmp_path):
    """`pre-commit run --all-files` on a clone of HEAD, with this venv and no network."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    (clone / ".venv").symlink_to(REPO / ".venv")
    result = subprocess.run([str(REPO / ".venv" / "bin" / "pre-commit"), "run", "--all-files"], cwd=clone,
                            capture_output=True, text=True, timeout=300,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                 "PRE_COMMIT_HOME": str(tmp_path / "pre-commit"),
                                 "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"ruff \(code and notebooks\)\.+Passed", result.stdout)
    assert re.search(r"strip notebooks \(keep the nbval references\)\.+Passed", result.stdout)
