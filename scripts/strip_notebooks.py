"""Strip notebooks for git: no outputs and no execution counts, except the nbval reference cells'.

Why not plain nbstripout: nbval compares a ``# NBVAL_CHECK_OUTPUT`` cell only when it has
an execution count and a stored output, and ``nbstripout --keep-count`` keeps *every*
cell's count, so counts from a JupyterLab session slipped into commits. And a reference
cell keeps whatever output it had when the notebook was saved, so a wrong reference
(one computed on a store that already had history) was committed without anyone noticing.

This tool strips with nbstripout's own ``strip_output`` (outputs, counts and the volatile
metadata nbstripout drops by default), then gives each reference cell (cell metadata
``keep_output: true``) execution count 1. It compares every reference output with the
committed one (``git show HEAD:<notebook>``): a changed or missing reference output is
put back to the committed one and reported, and the tool exits 1, until the author
confirms the new output with ``--accept-references``.

Usage (from the project root)::

    .venv/bin/python scripts/strip_notebooks.py notebooks/*.ipynb            # strip in place
    .venv/bin/python scripts/strip_notebooks.py --check notebooks/*.ipynb    # write nothing; exit 1 if needed
    .venv/bin/python scripts/strip_notebooks.py --accept-references notebooks/collect.ipynb

    .venv/bin/python scripts/strip_notebooks.py --filter < notebook.ipynb  # git's clean filter

pre-commit runs the first form on every commit (.pre-commit-config.yaml); ``make lint``
runs ``--check``. ``--filter`` is the git clean filter ``make setup`` and ``make lab``
install (``.gitattributes``): it also resets the notebook metadata to the committed
:data:`NOTEBOOK_METADATA` (JupyterLab writes the running Python's exact version into
``language_info`` on every save), so opening and saving a notebook in Lab leaves
``git status`` clean. Exit status: 0 nothing to do, 1 a file was (or would be) changed or a
reference output differs from the committed one, 2 bad usage or an unreadable notebook.
"""
from __future__ import annotations

import argparse
import copy
import logging
import subprocess
import sys
from pathlib import Path

import nbformat
from nbstripout import strip_output

logger = logging.getLogger(__name__)

#: The metadata nbstripout's command line drops by default (nbstripout/_nbstripout.py, ``main``).
VOLATILE_KEYS = [
    "metadata.signature", "metadata.widgets", "cell.metadata.collapsed", "cell.metadata.ExecuteTime",
    "cell.metadata.execution", "cell.metadata.heading_collapsed", "cell.metadata.hidden",
    "cell.metadata.scrolled",
]
#: The execution count every reference cell carries, so re-running a notebook changes nothing.
REFERENCE_COUNT = 1


def is_reference(cell) -> bool:
    """Whether a cell is an nbval reference cell (``keep_output`` in its metadata)."""
    return cell.cell_type == "code" and bool(cell.metadata.get("keep_output"))


def strip(nb):
    """A copy of ``nb`` with outputs and counts stripped, except the reference cells'.

    Args:
        nb: a notebook (nbformat v4 node).

    Returns:
        The stripped copy; reference cells keep their outputs and get execution count 1.
    """
    stripped = strip_output(copy.deepcopy(nb), keep_output=False, keep_count=False, keep_id=True,
                            extra_keys=VOLATILE_KEYS)
    for cell in stripped.cells:
        if is_reference(cell):
            cell.execution_count = REFERENCE_COUNT
            for output in cell.outputs:
                if "execution_count" in output:
                    output.execution_count = REFERENCE_COUNT
    return stripped


#: The notebook-level metadata committed with every notebook: the venv's own kernel, and the
#: language_info JupyterLab writes for it. The Python version is fixed here; the filter puts it back
#: over whatever 3.11.x a machine runs. (git compares file contents through the filter only when the
#: size is unchanged, so the committed form must be the one Lab writes, give or take the version.)
NOTEBOOK_METADATA = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                      "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
                      "pygments_lexer": "ipython3", "version": "3.11.7"},
}


def clean_for_git(text: str) -> str:
    """The git clean filter: a notebook's text stripped, with the committed notebook metadata."""
    nb = strip(nbformat.reads(text, as_version=4))
    nb.metadata.update(copy.deepcopy(NOTEBOOK_METADATA))
    return nbformat.writes(nb) + "\n"


def committed(path: Path):
    """The notebook as committed at git HEAD, or None when it is new or there is no repository."""
    try:
        text = subprocess.run(["git", "-C", str(path.parent), "show", f"HEAD:./{path.name}"],
                              capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return nbformat.reads(text, as_version=4)


def reference_changes(nb, old) -> list[tuple[str, list, list]]:
    """The reference cells whose outputs differ from the committed notebook's.

    Args:
        nb: the stripped working notebook.
        old: the committed notebook (None: nothing to compare with).

    Returns:
        ``(cell id, committed outputs, current outputs)`` per changed reference cell
        that exists in both (matched by cell id).
    """
    if old is None:
        return []
    before = {c.get("id"): c.outputs for c in old.cells if is_reference(c)}
    return [(cell.get("id"), before[cell.get("id")], cell.outputs) for cell in nb.cells
            if is_reference(cell) and cell.get("id") in before and cell.outputs != before[cell.get("id")]]


def _text(outputs: list) -> str:
    parts = [o.get("text") or o.get("data", {}).get("text/plain", "") or o.get("ename", "") for o in outputs]
    return repr("".join(parts).strip()) if parts else "no output"


def process(path: Path, *, check: bool, accept: bool) -> list[str]:
    """Strip one notebook (or only check it) and say what was wrong.

    Args:
        path: the notebook.
        check: write nothing, only report.
        accept: keep changed reference outputs instead of restoring the committed ones.

    Returns:
        One message per problem; empty when the file was already clean.

    Raises:
        nbformat.reader.NotJSONError, OSError: the file cannot be read as a notebook.
    """
    nb = nbformat.read(str(path), as_version=4)
    stripped = strip(nb)
    problems = []
    if stripped != nb:
        problems.append(f"{path}: carries outputs, execution counts or volatile metadata outside the "
                        f"reference cells" + ("" if check else "; stripped"))
    if not accept:
        old = committed(path)
        for cell_id, before, now in reference_changes(stripped, old):
            problems.append(
                f"{path}: reference cell {cell_id} output changed from {_text(before)} to {_text(now)}"
                + ("" if check else "; the committed output was put back")
                + f". If the new output is right, run: .venv/bin/python scripts/strip_notebooks.py "
                  f"--accept-references {path}")
            if not check:
                next(c for c in stripped.cells if c.get("id") == cell_id).outputs = before
    if not check and stripped != nb:
        nbformat.write(stripped, str(path))
    return problems


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--filter", action="store_true", help="git clean filter: a notebook on stdin, stripped, "
                                                             "to stdout")
    group.add_argument("--check", action="store_true", help="write nothing; exit 1 when a notebook needs stripping")
    group.add_argument("--accept-references", action="store_true",
                       help="keep changed reference outputs (after checking they are right)")
    args = parser.parse_args(argv)
    if args.filter:
        text = sys.stdin.read()
        try:
            sys.stdout.write(clean_for_git(text))
        except ValueError:  # not a notebook (yet): hand git the bytes unchanged
            sys.stdout.write(text)
        return 0
    if not args.notebooks:
        parser.error("give the notebooks to strip")
    problems = []
    for path in args.notebooks:
        try:
            problems += process(path, check=args.check, accept=args.accept_references)
        except (OSError, ValueError) as exc:
            print(f"strip_notebooks: cannot read {path} as a notebook: {exc}", file=sys.stderr)
            return 2
    for problem in problems:
        print(f"strip_notebooks: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
