"""Raw responses, kept compressed in the run folder before anything parses them, and kept again after.

Why: a parser bug must never cost fetched data. Every source writes each HTTP
response (or archive) here first and parses only from here, so a fixed parser can
replay a past run (``pokewatch collect --replay runs/<date>``) without the network.

Why a second copy: run attempts are pruned (a date keeps its last few), so the raw
responses of the collect that stored a day can vanish with its attempt folder. After
every successful collect :func:`keep` links the responses into
``$POKEWATCH_DATA_DIR/raw/<source>/<end date>-<digest>/`` (hard links where the file
system allows, so no second copy of the bytes), where they stay for
:func:`raw_keep_days` days (``POKEWATCH_RAW_KEEP_DAYS``, default 90) whatever happens
to the attempt folders. ``pokewatch collect --replay`` takes such a folder as well.

Layout: ``<run>/raw/<source>/<name>.gz`` plus ``index.jsonl`` with one line of
metadata (URL without secrets, status, content type, fetched-at) per response, and
``request.json`` / ``fetch_report.json`` from the collect step.
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

    def put(self, name: str, content: bytes, **meta) -> Path:
        """Store one response under a unique, path-safe ``name``."""
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"raw response name must be a plain file name, got {name!r}")
        path = self.root / f"{name}.gz"
        atomic.write_bytes(path, gzip.compress(content, compresslevel=6))
        line = json.dumps({"name": name, "bytes": len(content), **meta}, default=str)
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            with self.index_path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        return path

    def get(self, name: str) -> bytes:
        path = self.root / f"{name}.gz"
        if not path.exists():
            raise RunError(f"raw response {name!r} is not in {self.root}; it was never fetched or was deleted")
        return gzip.decompress(path.read_bytes())

    def has(self, name: str) -> bool:
        return (self.root / f"{name}.gz").exists()

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
    prune_kept(root)
    return target


def prune_kept(root: Path | None = None, keep_days: int | None = None, now: float | None = None) -> list[Path]:
    """Remove kept folders older than ``keep_days`` (default :func:`raw_keep_days`); return them."""
    root = Path(root) if root is not None else kept_root()
    cutoff = (now if now is not None else time.time()) - (keep_days or raw_keep_days()) * 86_400
    removed = []
    for marker in root.glob(f"*/*/{KEPT_MARKER}"):
        try:
            old = marker.stat().st_mtime < cutoff
        except FileNotFoundError:
            continue
        if old:
            shutil.rmtree(marker.parent, ignore_errors=True)
            removed.append(marker.parent)
    if removed:
        logger.info("removed %d kept raw folder(s) older than %d days", len(removed), keep_days or raw_keep_days())
    return removed
