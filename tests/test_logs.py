"""The one logging set-up (pokewatch.logs): each mode's lines, one handler however often it is
called, secrets masked in every mode, and a host program's own handlers left alone."""
from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from pokewatch import logs
from tests.conftest import REPO

SECRET_URL = "GET /cards?api_key=pwk_live_1234 HTTP/1.1"


def logged(mode: str, level: str = "info", *, calls: int = 2) -> list[str]:
    """stderr lines of a fresh interpreter that configures ``mode`` ``calls`` times, then logs four records."""
    code = (
        "import logging, sys\nfrom pokewatch import logs\n"
        f"for _ in range({calls}): logs.configure({mode!r}, {level!r})\n"
        "print(len(logging.getLogger().handlers), file=sys.stderr)\n"
        "logging.getLogger('pokewatch.data.collect').info('collected %d rows', 12)\n"
        "logging.getLogger('pokewatch.run.helpers').warning('index skipped', extra={'attempt': 'a1'})\n"
        f"logging.getLogger('urllib3.connectionpool').warning({SECRET_URL!r})\n"
        "logging.getLogger('uvicorn.error').warning('uvicorn speaks')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    return result.stderr.splitlines()


def test_terminal_lines_name_level_and_logger_once_however_often_it_is_configured():
    handlers, *lines = logged("terminal")
    assert handlers == "1"
    assert lines[0].endswith(" INFO pokewatch.data.collect: collected 12 rows") and lines[0][:4].isdigit()
    assert len(lines) == 4


def test_pipeline_lines_are_stamped_like_the_scripts_and_hide_info_at_warning():
    handlers, *lines = logged("pipeline", "warning")
    assert handlers == "1" and len(lines) == 3, "the INFO record is not shown"
    stamp, rest = lines[0].split(" ", 1)
    assert stamp.endswith("Z") and stamp[10] == "T"
    assert rest == "pipeline: WARNING pokewatch.run.helpers: index skipped"


def test_json_lines_carry_extra_fields_and_uvicorns_records_too():
    handlers, *lines = logged("json")
    entries = [json.loads(line) for line in lines]
    assert handlers == "1"
    assert entries[1] | {"ts": "-"} == {"ts": "-", "level": "warning", "logger": "pokewatch.run.helpers",
                                         "msg": "index skipped", "attempt": "a1"}
    assert entries[3]["logger"] == "uvicorn.error" and entries[3]["msg"] == "uvicorn speaks"


@pytest.mark.parametrize("mode", ["terminal", "pipeline", "kernel", "json"])
def test_every_mode_masks_a_key_in_a_url_a_library_logs(mode):
    lines = logged(mode, calls=1)
    assert any("api_key=***" in line for line in lines)
    assert not any("pwk_live_1234" in line for line in lines)


def test_the_kernel_mode_sets_only_pokewatchs_level_not_the_libraries():
    handlers, *lines = logged("kernel", "warning")
    assert handlers == "1"
    assert [line.split(" ", 1)[1] for line in lines] == [
        "WARNING pokewatch.run.helpers: index skipped", f"WARNING urllib3.connectionpool: {SECRET_URL}".replace(
            "pwk_live_1234", "***"), "WARNING uvicorn.error: uvicorn speaks"]


def test_a_host_programs_handlers_are_left_alone():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    assert any(not getattr(h, "_pokewatch", False) for h in handlers), "pytest captures logs with its own handler"
    logs.configure("terminal", "debug")
    assert root.handlers == handlers and root.level == level


def test_an_unknown_mode_or_level_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown logging mode 'loud'"):
        logs.configure("loud")
    with pytest.raises(ValueError, match="unknown log level 'CHATTY'"):
        logs.configure("terminal", "chatty")
