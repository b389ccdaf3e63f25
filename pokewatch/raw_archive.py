"""Raw responses, kept compressed in the run folder before anything parses them.

Why: a parser bug must never cost fetched data. Every source writes each HTTP
response (or archive) here first and parses only from here, so a fixed parser can
replay a past run (``pokewatch collect --replay runs/<date>``) without the network.

Layout: ``<run>/raw/<source>/<name>.gz`` plus ``index.jsonl`` with one line of
metadata (URL without secrets, status, content type, fetched-at) per response.
"""
from __future__ import annotations

import gzip
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator

from pokewatch import atomic
from pokewatch.errors import RunError


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

    def names(self) -> Iterator[str]:
        return (entry["name"] for entry in self.entries())
