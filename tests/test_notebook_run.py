"""RunContext: parameters validated by the notebook's model and every one recorded in the
manifest; logging as plain text in a kernel, with progress lines on the real stderr."""
from __future__ import annotations

import logging
import subprocess
import sys

import nbformat
import pandas as pd
import pytest

from pokewatch.core.model import FairValueModel
from pokewatch.core.rules import Rule
from pokewatch.run import model_file, runs
from pokewatch.run import helpers
from pokewatch import logs
from pokewatch.errors import ParameterError, UnknownDateError
from pokewatch.run.context import RunContext
from tests.conftest import REPO, series


@pytest.fixture(autouse=True)
def _restore_root_logging():
    """Opening a context adds a handler to the root logger (once per kernel); take it off again so that
    later tests' captured stdout holds only what they print."""
    handlers = list(logging.getLogger().handlers)
    yield
    logging.getLogger().handlers[:] = handlers


def notebook_namespace(**values) -> dict:
    """What a notebook's globals look like after papermill injected ``values``."""
    return {"get_ipython": lambda: None, "__name__": "__main__", **values}


def opening_line(notebook: str) -> str:
    """The line of ``notebooks/<notebook>.ipynb`` that opens its RunContext, as the notebook has it."""
    nb = nbformat.read(REPO / "notebooks" / f"{notebook}.ipynb", as_version=4)
    return next(line for cell in nb.cells if cell.cell_type == "code" for line in cell.source.splitlines()
                if line.startswith("ctx = RunContext."))


def test_a_param_of_the_pipeline_reaches_the_manifest_through_the_evaluate_notebooks_own_call(
        isolated_dirs, monkeypatch):
    """scripts/run_pipeline.sh --param portfolio_file=portfolio.example.csv, step by step: plan, start,
    papermill's injection, then the evaluate notebook's line that opens its context."""
    monkeypatch.chdir(REPO)  # where the pipeline is run from, so the relative path is the example file
    plan = helpers.plan("2026-11-27", "demo", ["portfolio_file=portfolio.example.csv"])
    attempt = runs.start_run(plan["run_date"], plan["parameters"])
    injected = plan["notebooks"]["evaluate"]
    assert injected["portfolio_file"] == str(REPO / "portfolio.example.csv")
    runs.update_manifest(attempt, parameters={"evaluate": {}})  # only the notebook's own record counts below
    namespace = notebook_namespace(**injected, run_dir=str(attempt), RunContext=RunContext)
    monkeypatch.chdir(REPO / "notebooks")  # papermill runs the kernel there (--cwd)
    exec(opening_line("evaluate"), namespace)
    recorded = runs.read_manifest(attempt)["parameters"]["evaluate"]
    assert recorded["portfolio_file"] == str(REPO / "portfolio.example.csv")
    assert namespace["ctx"].parameters.portfolio_file == str(REPO / "portfolio.example.csv")
    assert set(recorded) == set(type(namespace["ctx"].parameters).model_fields) - {"run_dir"}


def test_every_pipeline_notebook_opens_its_context_from_all_its_parameters():
    for notebook in helpers.NOTEBOOKS:
        assert opening_line(notebook) == f'ctx = RunContext.from_parameters("{notebook}", globals())'


def test_open_outside_a_notebook_takes_only_what_it_is_given(tmp_path):
    portfolio_file = "not/read/from/this/module.csv"  # noqa: F841 - must not be picked up
    ctx = RunContext.open("evaluate", "2026-11-27", str(tmp_path / "attempt"), eval_days=30)
    assert ctx.parameters.portfolio_file == "auto"


def test_from_parameters_reads_every_declared_parameter_from_the_namespace(tmp_path):
    namespace = notebook_namespace(run_date="2026-11-27", run_dir=str(tmp_path / "a"), train_days=60,
                                   method="ewm", window=14, unrelated=object())
    ctx = RunContext.from_parameters("train", namespace)
    assert (ctx.run_date, ctx.dir, ctx.parameters.method, ctx.parameters.window) == \
        ("2026-11-27", tmp_path / "a", "ewm", 14)
    assert runs.read_manifest(ctx.dir)["parameters"]["train"]["train_days"] == 60


def test_a_bad_parameter_fails_when_the_notebook_opens(tmp_path):
    with pytest.raises(ParameterError, match="parameter window must be at most 365"):
        RunContext.from_parameters("train", notebook_namespace(run_dir=str(tmp_path / "a"), window=400))
    assert not (tmp_path / "a").exists()


def test_an_interactive_run_writes_under_runs_interactive(isolated_dirs):
    ctx = RunContext.from_parameters("collect", notebook_namespace(run_date="2026-11-27", n_series=20))
    assert ctx.dir == isolated_dirs["runs"] / "interactive" / "2026-11-27"
    assert runs.read_manifest(ctx.dir)["status"] == "interactive"


def test_progress_goes_to_the_real_stderr_stamped_with_the_step_only_under_the_pipeline(monkeypatch, capfd):
    progress = logging.getLogger(logs.PROGRESS_LOGGER)
    monkeypatch.setattr(progress, "handlers", [])
    monkeypatch.setenv(logs.STEP_ENV, "collect")
    logs.configure("kernel")
    logs.configure("kernel")  # idempotent: one line per record, not two
    progress.info("day 3/18 (2025-09-23)")
    lines = [line for line in capfd.readouterr().err.splitlines() if "day 3/18" in line]
    assert len(lines) == 1
    assert lines[0].endswith("Z collect: day 3/18 (2025-09-23)") and lines[0][:4].isdigit()


KERNEL_NOTEBOOK_CELLS = [
    "import logging\nfrom pokewatch.run.context import RunContext\n"
    "ctx = RunContext.from_parameters('collect', {'run_date': '2026-11-27', 'run_dir': RUN_DIR})",
    "logging.getLogger('pokewatch.progress').info('group 40/120')\n"
    "logging.getLogger('pokewatch.run.collect').warning('two rows rejected')",
    "from matplotlib.figure import Figure\nfig = Figure()\nfig.add_subplot().plot([1, 2])\nfig",
]


def test_in_a_kernel_records_are_plain_stdout_progress_reaches_the_pipeline_and_figures_show(tmp_path):
    """One real papermill run through the pipeline's engine (IPC kernels): opening the context sets the kernel up."""
    cells = [KERNEL_NOTEBOOK_CELLS[0].replace("RUN_DIR", repr(str(tmp_path / "attempt"))), *KERNEL_NOTEBOOK_CELLS[1:]]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, tmp_path / "in.ipynb")
    env = {**subprocess.os.environ, logs.STEP_ENV: "collect"}
    result = subprocess.run([sys.executable, "-m", "papermill", "--engine", "pokewatch", "--kernel", "python3",
                             "--log-level", "WARNING", "--no-progress-bar", str(tmp_path / "in.ipynb"),
                             str(tmp_path / "out.ipynb")], capture_output=True, text=True, env=env, timeout=300,
                            cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "Kernel is running over TCP" not in result.stderr
    progress = [line for line in result.stderr.splitlines() if "group 40/120" in line]
    assert len(progress) == 1 and progress[0].endswith("Z collect: group 40/120")
    assert "two rows rejected" not in result.stderr, "only progress lines go to the cron log"
    outputs = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[1].outputs
    assert {o.get("name") for o in outputs} == {"stdout"}, "no red stderr boxes in the notebook"
    text = "".join(o["text"] for o in outputs)
    assert "WARNING pokewatch.run.collect: two rows rejected" in text and "group 40/120" in text
    figure = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[2].outputs
    assert [o["output_type"] for o in figure] == ["execute_result"] and "image/png" in figure[0]["data"], \
        "a returned Figure is drawn, not shown as <Figure size ...>"


def test_the_engine_stops_a_kernel_once_its_last_cell_has_answered(tmp_path):
    """The kernel is stopped, not asked to wind down: its atexit hooks never run, yet no output is lost.

    Everything a notebook of ours writes is closed before its cell returns, so the
    interpreter's own teardown (about a second per kernel) would only free memory.
    """
    marker = tmp_path / "atexit-ran"
    cells = [f"import atexit, pathlib\natexit.register(pathlib.Path({str(marker)!r}).write_text, 'ran')",
             "print('last words', flush=False)\n'the result'"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, tmp_path / "in.ipynb")
    result = subprocess.run([sys.executable, "-P", "-m", "pokewatch.run.papermill_cli", "--engine", "pokewatch",
                             "--kernel", "python3", "--log-level", "WARNING", "--no-progress-bar",
                             str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb")], capture_output=True, text=True,
                            timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr
    last = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[1].outputs
    assert [o["output_type"] for o in last] == ["stream", "execute_result"]
    assert last[0]["text"] == "last words\n" and last[1]["data"]["text/plain"] == "'the result'"
    assert not marker.exists(), "the kernel was left to run its exit hooks"


def test_evaluate_loads_the_model_train_saved_and_never_an_old_pickle(isolated_dirs):
    from tests.analyst_fixtures import make_run

    train = RunContext.open("train", "2026-12-01", str(isolated_dirs["runs"] / "attempt"))
    model = FairValueModel(Rule("rolling_mean", 3), trained_on="2026-12-01").fit(series("base1-4", [1.0, 2.0, 4.0]))
    assert train.save_model(model, origin="trained in attempt") == train.dir / model_file.MODEL_FILE
    assert runs.read_manifest(train.dir)["model"]["trained_on"] == "2026-12-01"
    loaded, origin = RunContext.open("evaluate", "2026-12-01", str(train.dir)).load_model()
    assert origin == "trained in this run (attempt)"
    pd.testing.assert_frame_equal(loaded.predict_all(), model.predict_all())
    settings, _ = RunContext.open("evaluate", "2026-12-01", str(train.dir)).load_model(fitted=False)
    assert (settings.rule, settings.keep_days, settings.stale_days, settings.trained_on, settings.selection) == \
        (model.rule, model.keep_days, model.stale_days, model.trained_on, model.selection)
    with pytest.raises(UnknownDateError, match="not been fitted"):   # evaluate fits its own day grids
        settings.predict_all()

    old = make_run(isolated_dirs["runs"], "2026-11-28")        # a published run, as before model.npz
    model_file.path_in(old).unlink()
    (old / model_file.OLD_MODEL_FILE).write_bytes(b"a pickle of pokewatch.model.FairValueModel")
    assert RunContext.open("evaluate", "2026-12-02", str(isolated_dirs["runs"] / "next")).load_model() == \
        (None, "no model trained on or before 2026-12-02")


def test_a_model_saved_beside_other_writes_is_in_its_file_and_manifest_when_the_block_ends(isolated_dirs):
    evaluate = RunContext.open("evaluate", "2026-12-01", str(isolated_dirs["runs"] / "attempt"))
    model = FairValueModel(Rule("rolling_mean", 3), trained_on="2026-12-01").fit(series("base1-4", [1.0, 2.0, 4.0]))

    with evaluate.saving_model(model, origin="trained in attempt"):
        evaluate.write_json(evaluate.folder.metrics, {"cards": 1})

    assert runs.read_manifest(evaluate.dir)["model"]["origin"] == "trained in attempt"
    loaded, _ = evaluate.load_model()
    pd.testing.assert_frame_equal(loaded.predict_all(), model.predict_all())

    with pytest.raises(RuntimeError, match="the tables failed"), evaluate.saving_model(model, origin="never recorded"):
        raise RuntimeError("the tables failed")
    assert runs.read_manifest(evaluate.dir)["model"]["origin"] == "trained in attempt"
