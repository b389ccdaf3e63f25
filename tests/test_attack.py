"""scripts/attack.py reruns every attack of issue 11 against this checkout: every trial must hold.

Slow (about two minutes with --quick: one real pipeline run, a killed one, a real
``pokewatch serve`` per API attack, whose deadline cases wait 10 s each).
"""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow
ROW = re.compile(r"^\| (?P<attack>.+?) +\| +(?P<trials>\d+) \| +(?P<held>\d+)/(?P<of>\d+) \|$")


def test_every_attack_of_issue_11_holds_in_every_trial(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "attack.py"), "--quick"], capture_output=True,
                            text=True, timeout=900, cwd=REPO, env={"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path),
                                                                   "HOME": str(tmp_path)})

    rows = [ROW.match(line) for line in result.stdout.splitlines() if line.startswith("| ") and "trials" not in line]
    assert rows and all(rows), result.stdout
    not_held = [(r["attack"], f"{r['held']}/{r['trials']}") for r in rows if r["held"] != r["trials"]]
    assert not not_held, f"{not_held}\n{result.stderr[-4000:]}"
    assert all(int(r["trials"]) > 0 for r in rows)
    assert len(rows) >= 12, "one row per attack of the issue (the API's among them)"
    assert result.returncode == 0, result.stderr[-4000:]
    assert not list(tmp_path.glob("pokewatch-attack-*")), "the script removes its temporary folder"
