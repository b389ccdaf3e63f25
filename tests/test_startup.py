"""What PokeWatch processes leave out of their imports, and that nothing they do needs it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str) -> str:
    result = subprocess.run([sys.executable, "-P", "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_papermill_launcher_is_papermills_command_line():
    result = subprocess.run([sys.executable, "-P", "-m", "pokewatch.run.papermill_cli", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: papermill [OPTIONS] NOTEBOOK_PATH")
    assert "--engine" in result.stdout


def test_papermill_and_nbformat_validate_notebooks_without_the_skipped_modules():
    out = _python(
        "import sys\n"
        "from pokewatch.startup import SKIPPED_BY_PAPERMILL, skip_unused_imports\n"
        "skip_unused_imports(SKIPPED_BY_PAPERMILL)\n"
        "import nbformat, papermill\n"
        "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('1')])\n"
        "nbformat.validate(nb)\n"
        "bad = nbformat.from_dict({'nbformat': 4, 'nbformat_minor': 5, 'metadata': {}, 'cells': [{'x': 1}]})\n"
        "try:\n"
        "    nbformat.validate(bad)\n"
        "except nbformat.ValidationError:\n"
        "    print('invalid refused')\n"
        "print([sys.modules[name] for name in SKIPPED_BY_PAPERMILL])\n")
    assert out.splitlines() == ["invalid refused", "[None, None]"]


def test_the_command_line_still_reads_parquet():
    out = _python(
        "import sys\n"
        "from pokewatch.startup import skip_unused_imports\n"
        "skip_unused_imports()\n"
        "import pandas as pd, pyarrow.parquet\n"
        "print(sys.modules['rfc3987_syntax'], 'pyarrow.fs' in sys.modules and sys.modules['pyarrow.fs'] is not None)\n")
    assert out == "None True"


def test_a_module_imported_already_is_left_alone():
    out = _python(
        "import sys, json\n"
        "from pokewatch.startup import skip_unused_imports\n"
        "skip_unused_imports(('json',))\n"
        "print(sys.modules['json'] is json)\n")
    assert out == "True"


def _exit(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-P", "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**subprocess.os.environ, "OUT": str(tmp_path / "atexit.txt")})


def test_exit_now_keeps_the_status_the_atexit_hooks_and_the_buffered_output(tmp_path):
    result = _exit(
        "import atexit, os, sys\n"
        "from pokewatch.startup import exit_now\n"
        "atexit.register(lambda: open(os.environ['OUT'], 'w').write('hook ran'))\n"
        "sys.stdout.write('no newline, still buffered')\n"
        "exit_now(3)\n"
        "print('never reached')\n", tmp_path)
    assert result.returncode == 3
    assert result.stdout == "no newline, still buffered"
    assert (tmp_path / "atexit.txt").read_text() == "hook ran"


def test_exit_now_says_a_message_status_and_waits_for_a_running_thread(tmp_path):
    message = _exit("from pokewatch.startup import exit_now\nexit_now('could not start')\n", tmp_path)
    assert (message.returncode, message.stderr.strip()) == (1, "could not start")
    threaded = _exit(
        "import os, threading, time\n"
        "from pokewatch.startup import exit_now\n"
        "def late():\n"
        "    time.sleep(0.5)\n"
        "    open(os.environ['OUT'], 'w').write('thread finished')\n"
        "threading.Thread(target=late).start()\n"
        "exit_now(None)\n", tmp_path)
    assert threaded.returncode == 0, threaded.stderr
    assert (tmp_path / "atexit.txt").read_text() == "thread finished"


def test_exit_now_does_not_wait_for_a_daemon_thread(tmp_path):
    result = _exit(
        "import atexit, os, threading, time\n"
        "from pokewatch.startup import exit_now\n"
        "atexit.register(lambda: open(os.environ['OUT'], 'w').write('hook ran'))\n"
        "class Torn:\n"
        "    def __del__(self, _open=open, _path=os.environ['OUT'] + '.torn'):\n"
        "        _open(_path, 'w').write('modules torn down')\n"
        "kept = Torn()\n"
        "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
        "exit_now(4)\n", tmp_path)
    assert result.returncode == 4, result.stderr
    assert (tmp_path / "atexit.txt").read_text() == "hook ran"
    assert not (tmp_path / "atexit.txt.torn").exists(), "the quick exit, not the interpreter's teardown"


def test_the_command_line_exits_with_its_commands_status():
    ok = subprocess.run([sys.executable, "-P", "-m", "pokewatch", "--version"], cwd=ROOT, capture_output=True,
                        text=True, timeout=120)
    assert ok.returncode == 0 and ok.stdout.startswith("pokewatch ")
    bad = subprocess.run([sys.executable, "-P", "-m", "pokewatch", "pipeline", "plan", "--date", "2026-13-45"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "2026-13-45" in bad.stderr
