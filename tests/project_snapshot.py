"""A throw-away git clone of this checkout's working tree, for tests that run commands as a user would.

Why a clone: the documented commands and JupyterLab write into the project folder (runs/,
portfolio.csv, saved notebooks), and "git status stays clean" can only be judged in a
repository of its own. Why the working tree and not HEAD: a test must check the docs and
notebooks being edited, so uncommitted and untracked (not ignored) files are copied over and
committed in the clone; its HEAD is exactly what the developer sees.

The clone shares this checkout's ``.venv`` through a symlink (building another one takes a
minute and a gigabyte). Its ``pyproject.toml`` keeps this checkout's modification time, so
``make`` sees the venv's install stamps as up to date and never reinstalls into the shared
venv (which would point its editable install at the clone). A clone is refused when this
checkout's own stamp is older than ``pyproject.toml``: run ``make setup`` first.

``../shared`` beside the clone links to ``../shared`` beside this checkout when that exists,
so relative paths such as ``../shared/data/tcgcsv-archives`` work from the clone's root.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import REPO, SHARED

VENV = REPO / ".venv"
STAMPS = (VENV / ".installed-stamp", VENV / ".installed-prod-stamp")


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def venv_problem() -> str | None:
    """Why this checkout's venv cannot be shared with a clone, or None when it can."""
    pyproject = (REPO / "pyproject.toml").stat().st_mtime
    if not (VENV / "bin" / "python").exists():
        return f"{VENV} does not exist: run make setup"
    stale = [s.name for s in STAMPS if not s.exists() or s.stat().st_mtime < pyproject]
    if stale:
        return f"{VENV} is older than pyproject.toml ({', '.join(stale)}): run make setup"
    return None


def snapshot(parent: Path, name: str = "pokewatch") -> Path:
    """Clone this checkout's working tree into ``parent/name`` and return the clone's root.

    Args:
        parent: an empty temporary folder; the clone and the ``shared`` link go inside.
        name: the clone's folder name.

    Returns:
        The clone's root: a git repository whose HEAD holds the working tree, with
        ``.venv`` linked to this checkout's and a clean ``git status``.

    Raises:
        RuntimeError: this checkout's venv is missing or stale (see :func:`venv_problem`).
    """
    problem = venv_problem()
    if problem:
        raise RuntimeError(problem)
    root = parent / name
    _git("clone", "--quiet", "--no-hardlinks", str(REPO), str(root), cwd=parent)
    changed = _git("ls-files", "-z", "--modified", "--others", "--exclude-standard", cwd=REPO).split("\0")
    deleted = set(_git("ls-files", "-z", "--deleted", cwd=REPO).split("\0"))
    for relative in filter(None, changed):
        target = root / relative
        if relative in deleted:
            target.unlink(missing_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / relative, target)
    stamp = os.stat(REPO / "pyproject.toml")
    os.utime(root / "pyproject.toml", ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    (root / ".venv").symlink_to(VENV)
    _git("add", "-A", cwd=root)
    _git("-c", "user.name=snapshot", "-c", "user.email=snapshot@example.invalid", "commit", "--quiet",
         "--allow-empty", "-m", "working tree snapshot", cwd=root)
    if SHARED.is_dir():
        (parent / "shared").symlink_to(SHARED)
    return root
