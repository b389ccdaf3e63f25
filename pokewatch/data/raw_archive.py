"""Raw responses, kept compressed in the run folder before anything parses them, and kept again after.

Why: a parser bug must never cost fetched data. Every source writes each HTTP
response (or archive) here first and parses only from here, so a fixed parser can
replay a past run (``pokewatch collect --replay runs/<date>``) without the network.

Why they move on: run attempts are pruned (a date keeps its last few), so the raw
responses of the collect that stored a day can vanish with its attempt folder. After
every successful collect :func:`keep` moves the responses into
``$POKEWATCH_DATA_DIR/raw/<source>/<end date>-<digest>/`` (hard links where the file
system allows, so the bytes are never copied) and leaves ``kept_in.json`` in the run
folder's ``raw/<source>/`` in their place: a run folder stays small (an 18-day
tcgcsv backfill's responses are 17 MB), and :class:`RawArchive` reads a response
through that pointer as if it were still there, so a replay of the run folder works
as before. A kept folder stays for :func:`raw_keep_days` days
(``POKEWATCH_RAW_KEEP_DAYS``, default 90), and for as long as a run folder under
``runs/`` points to it. ``pokewatch collect --replay`` takes a kept folder as well. A
failed collect keeps its responses in its attempt folder.

Layout: ``<run>/raw/<source>/<name>.gz`` plus ``index.jsonl`` with one line of
metadata (URL without secrets, status, content type, fetched-at) per response, and
``request.json`` / ``fetch_report.json`` from the collect step; after a successful
collect, ``kept_in.json`` instead of the ``.gz`` files.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pokewatch import atomic, config
from pokewatch.errors import ParameterError, RunError

logger = logging.getLogger(__name__)

#: Days the kept raw responses of a collect stay, unless ``POKEWATCH_RAW_KEEP_DAYS`` says otherwise.
RAW_KEEP_DAYS = 90
#: The marker file of a kept folder; its mtime is when the folder was kept.
KEPT_MARKER = "kept.json"
#: In a run folder's ``raw/<source>/`` once its responses were kept: which kept folder has them.
KEPT_IN = "kept_in.json"


@dataclass
class RawArchive:
    """A folder of gzip-compressed responses with a JSON-lines index."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self._lock = threading.Lock()

    @property
    def index_path(self) -> Path:
        return self.root / "index.jsonl"

    def put(self, name: str, content: bytes, *, packed: bool = False, **meta) -> Path:
        """Store one response under a unique, path-safe ``name``.

        ``packed`` content (already compressed, such as a zip bundle) is stored in the gzip
        wrapper without compressing it again: that would cost time and save nothing.
        """
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"raw response name must be a plain file name, got {name!r}")
        path = self.root / f"{name}.gz"
        atomic.write_bytes(path, gzip.compress(content, compresslevel=0 if packed else 6))
        line = json.dumps({"name": name, "bytes": len(content), **meta}, default=str)
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            with self.index_path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        return path

    def kept_folder(self) -> Path | None:
        """The kept folder this archive's responses moved to (see the module docstring), or None."""
        pointer = self.root / KEPT_IN
        if not pointer.exists():
            return None
        return kept_root() / json.loads(pointer.read_text(encoding="utf-8"))["folder"]

    def _path(self, name: str) -> Path:
        path = self.root / f"{name}.gz"
        if not path.exists() and (kept := self.kept_folder()) is not None and (kept / path.name).exists():
            return kept / path.name
        return path

    def get(self, name: str) -> bytes:
        path = self._path(name)
        if not path.exists():
            where = f"{self.root} or the kept folder it points to" if self.kept_folder() else str(self.root)
            raise RunError(f"raw response {name!r} is not in {where}; it was never fetched or was deleted")
        return gzip.decompress(path.read_bytes())

    def has(self, name: str) -> bool:
        return self._path(name).exists()

    def entries(self) -> list[dict]:
        """Index lines in fetch order; the last entry wins for a repeated name."""
        if not self.index_path.exists():
            return []
        latest: dict[str, dict] = {}
        for line in self.index_path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                latest.pop(entry["name"], None)
                latest[entry["name"]] = entry
        return list(latest.values())


# -- raw responses kept beyond the run folder ----------------------------------------------------
def kept_root() -> Path:
    """Where the raw responses of successful collects are kept: ``$POKEWATCH_DATA_DIR/raw``."""
    return config.data_dir() / "raw"


def raw_keep_days() -> int:
    """Days kept raw responses stay (``POKEWATCH_RAW_KEEP_DAYS``, default :data:`RAW_KEEP_DAYS`).

    Raises:
        ParameterError: the variable is not a whole number of at least 1.
    """
    text = os.environ.get("POKEWATCH_RAW_KEEP_DAYS", "").strip()
    if not text:
        return RAW_KEEP_DAYS
    try:
        days = int(text)
    except ValueError:
        raise ParameterError(f"POKEWATCH_RAW_KEEP_DAYS must be a whole number of days, got {text!r}") from None
    if days < 1:
        raise ParameterError(f"POKEWATCH_RAW_KEEP_DAYS must be at least 1, got {days}")
    return days


def is_kept(folder: Path) -> bool:
    """True for a folder :func:`keep` made (it can be replayed directly)."""
    return (Path(folder) / KEPT_MARKER).exists() and (Path(folder) / "request.json").exists()


def keep(raw: RawArchive, source: str, end_day: str, root: Path | None = None) -> Path:
    """Keep ``raw``'s responses under ``<root>/<source>/<end_day>-<digest>/`` and prune old kept folders.

    The digest is of the request and the response index, so keeping the same
    responses twice (a replay of a kept run) finds the folder already there.
    Responses are hard-linked (they are never rewritten in place); the small
    metadata files are copied.

    Returns:
        The kept folder.
    """
    root = Path(root) if root is not None else kept_root()
    digest = hashlib.sha256()
    for name in ("request.json", "index.jsonl"):
        path = raw.root / name
        digest.update(path.read_bytes() if path.exists() else b"")
    target = root / source / f"{end_day}-{digest.hexdigest()[:12]}"
    if is_kept(target):
        os.utime(target / KEPT_MARKER)
        return target
    tmp = root / source / f".tmp-{target.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    linked = copied = 0
    for path in sorted(raw.root.iterdir()):
        if not path.is_file():
            continue
        if path.suffix == ".gz":
            try:
                os.link(path, tmp / path.name)
                linked += 1
                continue
            except OSError:  # another file system, or links not allowed
                pass
        shutil.copy2(path, tmp / path.name)
        copied += 1
    (tmp / KEPT_MARKER).write_text(json.dumps({"source": source, "end": end_day, "from": str(raw.root),
                                               "kept_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n")
    try:
        os.rename(tmp, target)
    except OSError:  # kept meanwhile by another process
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("kept the raw responses in %s (%d linked, %d copied)", target, linked, copied)
    _hand_over(raw, target, root)
    prune_kept(root)
    return target


def _hand_over(raw: RawArchive, target: Path, root: Path) -> None:
    """Point ``raw`` at ``target`` (:data:`KEPT_IN`), then drop its own copy of each response ``target`` holds.

    The pointer is written first, so a reader finds every response at every moment.
    """
    atomic.write_json(raw.root / KEPT_IN, {"folder": target.relative_to(root).as_posix()})
    for path in raw.root.glob("*.gz"):
        kept = target / path.name
        if kept.exists() and (os.path.samefile(path, kept) or kept.read_bytes() == path.read_bytes()):
            path.unlink()


def referenced_kept_folders(runs_root: Path | None = None, root: Path | None = None) -> set[Path]:
    """The kept folders some run folder under ``runs_root`` (default ``runs/``) still points to."""
    runs_root = Path(runs_root) if runs_root is not None else config.runs_dir()
    root = Path(root) if root is not None else kept_root()
    found = set()
    for folders in ("attempts", "interactive"):   # every published run is an attempt folder
        for pointer in runs_root.glob(f"{folders}/*/raw/*/{KEPT_IN}"):
            try:
                found.add(root / json.loads(pointer.read_text(encoding="utf-8"))["folder"])
            except (OSError, ValueError, KeyError):
                continue
    return found


def prune_kept(root: Path | None = None, keep_days: int | None = None, now: float | None = None) -> list[Path]:
    """Remove kept folders older than ``keep_days`` (default :func:`raw_keep_days`) that no run points to."""
    root = Path(root) if root is not None else kept_root()
    cutoff = (now if now is not None else time.time()) - (keep_days or raw_keep_days()) * 86_400
    removed = []
    referenced = None
    for marker in root.glob(f"*/*/{KEPT_MARKER}"):
        try:
            old = marker.stat().st_mtime < cutoff
        except FileNotFoundError:
            continue
        if old and referenced is None:
            referenced = referenced_kept_folders(root=root)
        if old and marker.parent not in referenced:
            shutil.rmtree(marker.parent, ignore_errors=True)
            removed.append(marker.parent)
    if removed:
        logger.info("removed %d kept raw folder(s) older than %d days", len(removed), keep_days or raw_keep_days())
    return removed
