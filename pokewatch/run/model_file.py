"""The model file of a run folder: ``model.npz``, numpy arrays plus JSON, never a pickle.

Why not a pickle. A pickled model names the module and class it was made from, so a
run folder stops loading when the package is reorganised (``pokewatch.model`` became
``pokewatch.core.model``), and unpickling a file runs whatever code it names. The
model is instead saved as :meth:`~pokewatch.core.model.FairValueModel.to_arrays`
gives it: plain numpy arrays (``.npy`` members, read with ``allow_pickle=False``)
and one JSON member, ``meta.json``, holding the rule, the training facts and
:data:`FORMAT_VERSION`. The file is an ordinary ``.npz``: ``np.load`` opens it.

Old run folders. Runs written before this format hold ``model.joblib`` (a pickle).
PokeWatch never unpickles a run-folder file: such a run is refused with a message that
names it and says how to train again, and :func:`pokewatch.run.runs.find_model` skips
it, so the pipeline trains a new model instead of reusing one it cannot read.

This module imports only the standard library at the top: :func:`is_current` reads
``meta.json`` with :mod:`zipfile` alone, so ``should-train`` stays lean; numpy and the
model are imported by :func:`write` and :func:`read`.
"""
from __future__ import annotations

import json
import re
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from pokewatch import atomic
from pokewatch.errors import RunError
from pokewatch.run.folder import RunFolder

if TYPE_CHECKING:
    from pokewatch.core.model import FairValueModel

#: The model's file in a run folder (named in :class:`~pokewatch.run.folder.RunFolder`).
MODEL_FILE = RunFolder.model.name
#: What runs written before ``model.npz`` hold instead: a pickle, refused and never loaded.
OLD_MODEL_FILE = RunFolder.old_model.name
#: The JSON member of the archive.
META_MEMBER = "meta.json"
#: What ``meta.json`` says the file is, so another ``.npz`` is not taken for a model.
FORMAT = "pokewatch-fair-value-model"
#: Bumped whenever the arrays or ``meta.json`` change shape; a file of another version is refused.
FORMAT_VERSION = 1
#: Deflate level 1: a 20,000-series model (90 days) is 7 MB instead of 33 MB and loads in about
#: 0.12 s (0.03 s uncompressed), once per process; None stores the arrays uncompressed.
COMPRESSION_LEVEL = 1

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def path_in(run_dir: str | Path) -> Path:
    """Where the model of ``run_dir`` lives."""
    return RunFolder(Path(run_dir)).model


def write(path: str | Path, model: FairValueModel) -> Path:
    """Save ``model`` to ``path`` atomically (a reader sees the old file or the new one).

    Raises:
        UnknownDateError: the model has not been fitted.
    """
    arrays, meta = model.to_arrays()
    document = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": meta}
    text = json.dumps(document, default=_plain)
    return atomic.write_npz(path, arrays, members={META_MEMBER: text.encode("utf-8")},
                            compresslevel=COMPRESSION_LEVEL)


def format_version(path: str | Path) -> int | None:
    """The format version ``path`` records, or None when it is missing or not a PokeWatch model file.

    Reads only ``meta.json``, with the standard library: cheap enough for ``should-train``.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            document = json.loads(archive.read(META_MEMBER))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, zlib.error, EOFError):
        return None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return None
    version = document.get("format_version")
    return version if isinstance(version, int) else None


def is_current(path: str | Path) -> bool:
    """Whether ``path`` is a model file this PokeWatch reads (format :data:`FORMAT_VERSION`)."""
    return format_version(path) == FORMAT_VERSION


def read(path: str | Path, fitted: bool = True) -> FairValueModel:
    """The model saved at ``path`` (a run folder's ``model.npz``), ready to predict.

    ``fitted=False`` reads only ``meta.json``: the rule, why it was chosen and the
    settings, as an unfitted model. Evaluate fits its own day grids, and inflating the
    saved ones costs about 0.2 s at 45,000 series.

    Raises:
        RunError: the file is missing (and, when the folder holds an old pickled
            ``model.joblib``, the message says it is refused and how to train again),
            of another format version, not a PokeWatch model, or damaged. Each message
            names the run.
    """
    import numpy as np  # noqa: PLC0415 - only readers of the model need it

    from pokewatch.core.model import FairValueModel  # noqa: PLC0415

    path = Path(path)
    run = path.parent.name
    if not path.exists():
        if (path.parent / OLD_MODEL_FILE).exists():
            raise RunError(f"run {run} holds an old-format model ({OLD_MODEL_FILE}, a pickle written before "
                           f"PokeWatch saved models as {MODEL_FILE}); PokeWatch does not unpickle run files, "
                           f"so train again: {_retrain(run)}")
        raise RunError(f"run {run} has no {MODEL_FILE}; re-run the pipeline for that date")
    if not zipfile.is_zipfile(path):
        raise RunError(f"{MODEL_FILE} of run {run} cannot be read (it is not an .npz archive: damaged, or "
                       "another kind of file); re-run the pipeline for that date")
    try:
        with np.load(path, allow_pickle=False) as archive:   # lazy: a member is inflated when it is read
            document = json.loads(archive[META_MEMBER]) if META_MEMBER in archive.files else None
            if not isinstance(document, dict) or document.get("format") != FORMAT:
                raise RunError(f"{MODEL_FILE} of run {run} is not a PokeWatch model file; "
                               "re-run the pipeline for that date")
            if document.get("format_version") != FORMAT_VERSION:
                raise RunError(f"{MODEL_FILE} of run {run} is in format version {document.get('format_version')!r}, "
                               f"and this PokeWatch reads version {FORMAT_VERSION}; train again: {_retrain(run)}")
            if not fitted:
                return FairValueModel.unfitted(document["model"])
            arrays = {name: archive[name] for name in archive.files if name != META_MEMBER}
        return FairValueModel.from_arrays(arrays, document["model"])
    except RunError:
        raise
    except (OSError, ValueError, TypeError, KeyError, IndexError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise RunError(f"{MODEL_FILE} of run {run} cannot be read ({exc.__class__.__name__}: {exc}); "
                       "re-run the pipeline for that date") from exc


def _retrain(run: str) -> str:
    """The command that trains a fresh model for the run named ``run``."""
    date = run[:10] if _DATE_RE.fullmatch(run[:10]) else "YYYY-MM-DD"
    return f"scripts/run_pipeline.sh --date {date} --force-train"


def _plain(value):
    """numpy scalars in the model's metadata as the Python numbers JSON knows."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")
