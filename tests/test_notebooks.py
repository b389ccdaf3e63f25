"""The notebooks' shape: one typed, commented parameters cell, no outputs committed,
thin cells, and parameters papermill can read (``papermill --help-notebook``)."""
import ast

import nbformat
import papermill
import pytest

from tests.conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.name)
def notebook(request):
    return request.param, nbformat.read(str(request.param), as_version=4)


def test_there_are_pipeline_notebooks():
    assert {"collect.ipynb", "train.ipynb", "evaluate.ipynb"} <= {p.name for p in NOTEBOOKS}


def test_exactly_one_parameters_cell(notebook):
    _, nb = notebook
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1


def test_every_parameter_has_a_type_hint_and_a_comment(notebook):
    path, nb = notebook
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    lines = [line for line in cell.source.splitlines() if line.strip()]
    for line in lines:
        assert ":" in line.split("=")[0] and "#" in line, f"{path.name}: {line!r}"
    inferred = papermill.inspect_notebook(str(path))
    assert len(inferred) == len(lines), "papermill could not parse every parameter line"
    assert all(spec["help"] for spec in inferred.values())


def test_no_outputs_are_committed_except_nbval_references(notebook):
    path, nb = notebook
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if cell.metadata.get("keep_output"):
            assert cell.source.startswith("# NBVAL_CHECK_OUTPUT"), path.name
            continue
        assert not cell.outputs and cell.execution_count is None, f"{path.name}: {cell.source[:40]!r}"


def test_cells_stay_thin(notebook):
    path, nb = notebook
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if "parameters" not in cell.metadata.get("tags", []):   # declarations, one per line, are not logic
            assert len(cell.source.splitlines()) <= 15, f"{path.name}: cell too long: {cell.source[:60]!r}"
        tree = ast.parse(cell.source)
        assert not any(isinstance(n, (ast.FunctionDef, ast.ClassDef)) for n in ast.walk(tree)), path.name


def test_no_secret_is_a_notebook_parameter(notebook):
    path, _ = notebook
    for name in papermill.inspect_notebook(str(path)):
        assert not any(word in name.lower() for word in ("key", "token", "secret", "password")), name


def test_every_notebook_names_the_one_kernel_lab_and_the_pipeline_start(notebook):
    """JupyterLab rewrites metadata.kernelspec from the kernel it starts; equal values leave it clean."""
    from jupyter_client.kernelspec import KernelSpecManager

    path, nb = notebook
    spec = KernelSpecManager().get_kernel_spec("python3")
    assert dict(nb.metadata.kernelspec) == {"name": "python3", "display_name": spec.display_name,
                                            "language": spec.language}, path.name
    assert "--kernel python3" in (REPO / "scripts" / "run_pipeline.sh").read_text()
    assert "ipykernel install" not in (REPO / "Makefile").read_text(), "make lab registers no other kernel"
