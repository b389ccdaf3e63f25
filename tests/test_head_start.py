"""A notebook launcher started ahead of its turn: what it warms, when it runs, and when it never does."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import nbformat
import pytest

from pokewatch.run import head_start
from tests.conftest import REPO

PIPELINE_ARGS = ["--engine", "pokewatch", "--kernel", "python3", "--log-level", "WARNING", "--no-progress-bar",
                 "in.ipynb", "out.ipynb"]


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, path)


@pytest.mark.parametrize(("name", "lazy"), [("collect", []), ("evaluate", ["import pokewatch.core.kernels"])])
def test_the_warm_up_is_the_notebooks_own_imports_in_order_then_what_its_steps_import(tmp_path, name, lazy):
    _notebook(tmp_path / f"{name}.ipynb",
              "import json\nfrom pathlib import Path\nx = 1",
              "%matplotlib inline\nimport this_is_not_python",       # a magic: not Python, skipped
              "def f():\n    import csv\n    return csv",
              "import json")

    assert head_start.notebook_imports(tmp_path / f"{name}.ipynb").splitlines() == [
        "import json", "from pathlib import Path", "import csv", *lazy]


def test_the_lazy_imports_name_real_modules_of_pipeline_notebooks():
    import importlib.util

    notebooks = {path.stem for path in (REPO / "notebooks").glob("*.ipynb")}
    assert set(head_start.LAZY_IMPORTS) <= notebooks
    assert all(importlib.util.find_spec(m) for ms in head_start.LAZY_IMPORTS.values() for m in ms)


def test_the_warm_up_loads_modules_without_binding_names_and_ignores_a_failing_import():
    namespace: dict = {}
    exec(head_start.warm_up_code("import no_such_module_here\nimport colorsys"), namespace)

    assert "colorsys" in sys.modules, "the import after the failing one still ran"
    assert set(namespace) == {"__builtins__"}, "the notebook's names are its own to define"


def _launch(tmp_path, owner: int, cell: str = "import time\nprint(time.time())", **extra_env):
    _notebook(tmp_path / "in.ipynb", cell)
    env = {**os.environ, "PYTHONPATH": str(REPO), head_start.RELEASE: str(tmp_path / "release"),
           head_start.OWNER: str(owner), **extra_env}
    return subprocess.Popen([sys.executable, "-P", "-m", "pokewatch.run.papermill_cli", *PIPELINE_ARGS],
                            cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)


def _wait_for(path, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def _release(tmp_path, verdict: str) -> float:
    at = time.time()
    (tmp_path / "release.tmp").write_text(f"{verdict}\n")
    os.replace(tmp_path / "release.tmp", tmp_path / "release")
    return at


def test_a_notebook_started_ahead_runs_only_once_released_and_records_when(tmp_path):
    launcher = _launch(tmp_path, os.getpid())
    _wait_for(tmp_path / "release.pid")
    assert int((tmp_path / "release.pid").read_text()) == launcher.pid
    time.sleep(1.0)  # long enough to have run a one-line cell, had it not waited
    assert launcher.poll() is None, launcher.stderr.read()

    released = _release(tmp_path, head_start.RUN)
    assert launcher.wait(timeout=120) == 0, launcher.stderr.read()

    nb = json.loads((tmp_path / "out.ipynb").read_text())
    printed = float("".join(nb["cells"][0]["outputs"][0]["text"]))
    assert printed >= released, "the cell ran after the release, not before"
    # the file's time, as the pipeline wrote it (file times are a few ms coarse)
    assert released - 0.05 <= nb["metadata"]["pokewatch"]["released"] <= printed
    assert nb["cells"][0]["execution_count"] == 1, "the silent warm-up counted nothing"


def _policies(pid: int) -> set[int]:
    """The scheduling policy of every thread of ``pid`` and of its children."""
    found = set()
    for process in (pid, *head_start._children(pid)):
        found |= {os.sched_getscheduler(tid) for tid in head_start._threads(process)}
    return found


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE") or not head_start.can_leave_idle(),
                    reason="Linux scheduling policies, and the right to leave SCHED_IDLE")
def test_an_idle_launcher_and_its_kernel_wait_at_idle_priority_and_run_at_normal(tmp_path):
    cell = ("import os\n"
            "print(sorted({os.sched_getscheduler(t) for p in (os.getpid(), os.getppid())\n"
            "              for t in map(int, os.listdir(f'/proc/{p}/task'))}))")
    launcher = _launch(tmp_path, os.getpid(), cell, **{head_start.IDLE: "1"})
    _wait_for(tmp_path / "release.pid")
    deadline = time.monotonic() + 60
    while not head_start._children(launcher.pid):  # its kernel
        assert time.monotonic() < deadline and launcher.poll() is None, "no kernel started"
        time.sleep(0.02)
    assert _policies(launcher.pid) == {os.SCHED_IDLE}, "waiting: the launcher and its kernel yield the CPU"

    _release(tmp_path, head_start.RUN)
    assert launcher.wait(timeout=120) == 0, launcher.stderr.read()
    printed = "".join(json.loads((tmp_path / "out.ipynb").read_text())["cells"][0]["outputs"][0]["text"])
    assert printed.strip() == str([os.SCHED_OTHER]), "released: every thread of both at normal priority"


@pytest.mark.parametrize(("limit", "capabilities", "allowed"), [
    ((20, 20), "0000000000000000", True),     # RLIMIT_NICE lets it back to nice 0
    ((0, 0), "0000000000800000", True),       # CAP_SYS_NICE
    ((0, 0), "000001fffe7fffff", False),      # every capability but CAP_SYS_NICE, a plain limit
])
def test_a_launcher_yields_only_where_it_may_come_back(monkeypatch, limit, capabilities, allowed):
    import resource
    from pathlib import Path

    monkeypatch.setattr(resource, "getrlimit", lambda which: limit)
    real_read = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: f"Name:\tx\nCapEff:\t{capabilities}\n"
                        if str(self) == "/proc/self/status" else real_read(self, *a, **k))
    assert head_start.can_leave_idle() is allowed
    monkeypatch.setenv(head_start.IDLE, "1")
    if not allowed:
        assert head_start.yield_cpu() is False
        assert os.sched_getscheduler(0) == os.SCHED_OTHER


def test_without_the_idle_setting_nothing_changes_priority(monkeypatch):
    monkeypatch.delenv(head_start.IDLE, raising=False)
    assert head_start.yield_cpu() is False
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


def test_a_skipped_notebook_leaves_no_notebook_and_exits_zero(tmp_path):
    launcher = _launch(tmp_path, os.getpid())
    _wait_for(tmp_path / "release.pid")
    _release(tmp_path, head_start.SKIP)

    assert launcher.wait(timeout=120) == 0, launcher.stderr.read()
    assert not (tmp_path / "out.ipynb").exists()


def test_a_launcher_whose_pipeline_is_gone_stops_without_running(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    launcher = _launch(tmp_path, gone.pid)

    assert launcher.wait(timeout=120) == 1
    assert "ended before releasing this notebook" in launcher.stderr.read()
    assert not (tmp_path / "out.ipynb").exists()


@pytest.mark.parametrize("verdict", ["", "go"])
def test_a_release_file_with_anything_but_run_or_skip_fails_the_notebook(tmp_path, verdict):
    launcher = _launch(tmp_path, os.getpid())
    _wait_for(tmp_path / "release.pid")
    _release(tmp_path, verdict)

    assert launcher.wait(timeout=120) == 1
    assert "released with" in launcher.stderr.read()
    assert not (tmp_path / "out.ipynb").exists()
