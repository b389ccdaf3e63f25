"""The kernel the papermill launcher starts before papermill is imported: who gets one, who runs on it, who stops it."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import nbformat
import pytest

from pokewatch.run import early_kernel
from tests.conftest import REPO

PIPELINE_ARGS = ["--engine", "pokewatch", "--kernel", "python3", "--log-level", "WARNING", "--no-progress-bar",
                 "in.ipynb", "out.ipynb"]


@pytest.mark.parametrize(("argv", "kernel"), [
    (PIPELINE_ARGS, ("python3", os.getcwd())),
    (["--engine=pokewatch", "-k", "ir", "a.ipynb", "b.ipynb"], ("ir", os.getcwd())),
    (["--engine", "pokewatch", "--kernel=python3", "a.ipynb", "b.ipynb"], ("python3", os.getcwd())),
    ([*PIPELINE_ARGS, "--cwd", "notebooks"], ("python3", os.path.join(os.getcwd(), "notebooks"))),
    (["--kernel", "python3", "a.ipynb", "b.ipynb"], None),                      # papermill's own engine
    (["--engine", "pokewatch", "a.ipynb", "b.ipynb"], None),                    # kernel from the notebook
    ([*PIPELINE_ARGS, "--prepare-only"], None),                                 # no kernel at all
    (["--help"], None),
])
def test_only_a_command_line_whose_kernel_is_known_up_front_gets_an_early_kernel(argv, kernel):
    assert early_kernel.kernel_for(argv) == kernel


@pytest.mark.parametrize("tmpdir_depth", [0, 90])
def test_the_early_kernel_runs_in_papermills_cwd_with_its_sockets_elsewhere(tmp_path, tmpdir_depth):
    """No sockets in the working folder, even under a $TMPDIR too deep for a socket path: there they are shared.

    (The pipeline starts three kernels at once in one folder; a client that connects to
    another kernel's socket fails with "Invalid Signature".)
    """
    tmpdir = tmp_path / ("t" * tmpdir_depth) if tmpdir_depth else tmp_path
    tmpdir.mkdir(exist_ok=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os\nprint(os.getcwd())\nprint([name for name in os.listdir() if 'ipc' in name])")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, tmp_path / "in.ipynb")
    (tmp_path / "elsewhere").mkdir()
    driver = ("import logging, sys\n"
              "logging.basicConfig(level=logging.DEBUG, format='%(message)s')\n"
              "from pokewatch.run.papermill_cli import main\n"
              f"main({[*PIPELINE_ARGS[:-2], 'in.ipynb', 'out.ipynb', '--cwd', 'elsewhere']!r})\n")
    result = subprocess.run([sys.executable, "-P", "-c", driver], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmpdir)})

    assert result.returncode == 0, result.stderr
    assert "started kernel python3 (pid " in result.stderr
    printed = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[0].outputs[0]["text"]
    assert printed.splitlines() == [str(tmp_path / "elsewhere"), "[]"], "no kernel-ipc-N sockets in its folder"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie has ended
        return stat.read().split(") ", 1)[1][0] != "Z"


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_notebook_runs_on_the_early_kernel_which_is_stopped_when_it_is_done(tmp_path):
    import papermill

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os\nprint(os.getpid())")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, tmp_path / "in.ipynb")

    early_kernel.start("python3", str(tmp_path))
    pid = early_kernel._started["python3"].provisioner.process.pid
    papermill.execute_notebook(str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb"), engine_name="pokewatch",
                               kernel_name="python3", progress_bar=False)

    printed = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[0].outputs[0]["text"]
    assert int(printed) == pid, "the notebook ran on the kernel started early, not on a second one"
    assert not early_kernel.waiting("python3")
    assert _gone_within(pid, 10)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_an_early_kernel_papermill_never_took_ends_with_the_launcher(tmp_path):
    """papermill fails before it runs anything (no such notebook): the launcher's exit stops the kernel."""
    argv = [*PIPELINE_ARGS[:-2], str(tmp_path / "missing.ipynb"), str(tmp_path / "out.ipynb")]
    driver = ("import logging, sys\n"
              "logging.basicConfig(level=logging.DEBUG, format='%(message)s')\n"
              "from pokewatch.run.papermill_cli import main\n"
              f"main({argv!r})\n")
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr:  # a file, not a pipe: a pipe the kernel inherited would wait for it to end
        result = subprocess.run([sys.executable, "-P", "-c", driver], stdout=subprocess.DEVNULL, stderr=stderr,
                                timeout=120, cwd=REPO)
    text = log.read_text()

    assert result.returncode != 0 and "missing.ipynb" in text
    pids = [int(line.split("(pid ")[1].split(")")[0]) for line in text.splitlines()
            if line.startswith("started kernel python3 (pid ")]
    assert len(pids) == 1, text
    assert _gone_within(pids[0], 0.5), "the kernel outlived its launcher"  # its parent poller takes ~1 s


def test_a_kernel_that_cannot_start_early_is_left_to_papermill(tmp_path):
    early_kernel.start("no-such-kernel", str(tmp_path))

    assert not early_kernel.waiting("no-such-kernel")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), tmp_path / "in.ipynb")
    result = subprocess.run([sys.executable, "-P", "-m", "pokewatch.run.papermill_cli", "--engine", "pokewatch",
                             "--kernel", "no-such-kernel", str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb")],
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode != 0 and "No such kernel named no-such-kernel" in result.stderr, "papermill's own error"


def test_a_home_folder_too_deep_for_a_socket_path_does_not_matter(tmp_path):
    """The sockets live in a short temporary folder, not under $HOME (a socket path has at most 107 bytes)."""
    home = tmp_path / ("h" * 60) / ("o" * 60)
    home.mkdir(parents=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('ran')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, tmp_path / "in.ipynb")
    for args in (PIPELINE_ARGS[:-2], ["--engine", "pokewatch"]):  # with an early kernel, and with nbclient's own
        result = subprocess.run([sys.executable, "-P", "-m", "pokewatch.run.papermill_cli", *args,
                                 str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb")], capture_output=True,
                                text=True, timeout=120, cwd=REPO, env={**os.environ, "HOME": str(home)})
        assert result.returncode == 0, result.stderr
        assert nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[0].outputs[0]["text"] == "ran\n"
    assert len(early_kernel.ipc_prefix()) <= 100


def test_a_tmpdir_too_deep_for_a_socket_path_gets_a_private_folder_in_tmp(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / ("t" * 120)))
    early_kernel.ipc_prefix.cache_clear()
    try:
        prefix = early_kernel.ipc_prefix()
    finally:
        early_kernel.ipc_prefix.cache_clear()

    assert prefix is not None and len(prefix) <= 100
    folder = os.path.dirname(prefix)
    assert folder.startswith("/tmp/pokewatch-ipc-") and os.stat(folder).st_mode & 0o077 == 0, "private, short"
