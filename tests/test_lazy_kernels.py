"""The compiled kernels load on first use: a notebook whose steps are all cache hits never imports numba."""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def _python(code: str) -> list[str]:
    result = subprocess.run([sys.executable, "-P", "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_the_train_and_evaluate_imports_leave_numba_unloaded_until_a_kernel_is_used():
    out = _python(
        "import sys\n"
        "from pokewatch.analysis import explore, history, plots, report, summary, tables\n"
        "from pokewatch.run import steps\n"
        "from pokewatch.core import training, walkforward\n"
        "from pokewatch.run.context import RunContext\n"
        "from pokewatch.core import kernels\n"
        "print('numba' in sys.modules)\n"
        "print(kernels.ROW_SCORED, 'numba' in sys.modules)\n"
        "from pokewatch.core import kernels as again\n"
        "print(again is sys.modules['pokewatch.core.kernels'])\n")
    assert out == ["False", "8", "True", "True"]


def test_setting_a_name_on_the_stand_in_sets_it_on_the_module():
    out = _python(
        "import sys\n"
        "from pokewatch.core import kernels\n"
        "kernels._MIN_ROWS_PER_THREAD = 1\n"
        "print(sys.modules['pokewatch.core.kernels']._MIN_ROWS_PER_THREAD)\n"
        "del kernels._MIN_ROWS_PER_THREAD\n"
        "print(hasattr(sys.modules['pokewatch.core.kernels'], '_MIN_ROWS_PER_THREAD'))\n")
    assert out == ["1", "False"]


TRAIN_STEP = (
    "import sys, numpy as np\n"
    "from pokewatch.data.store import PriceStore\n"
    "from pokewatch.run import steps\n"
    "from tests.market_fixtures import market\n"
    "store = PriceStore.default()\n"
    "if not store.dates('demo'):\n"
    "    store.write_days('demo', market(days=60))\n"
    "key = steps.history_key('demo', '2026-03-01', store)\n"
    "model, selection = steps.train_step(key, '2026-03-01', steps.TrainingSpec(train_days=30, min_flags=1)).value\n"
    "np.save(sys.argv[1], model.fair)\n"
    "print('pokewatch.core.kernels' in sys.modules, bool(np.isfinite(model.fair).any()))\n")


def test_a_re_run_of_the_train_step_gets_the_same_model_without_importing_the_kernels(tmp_path):
    first = subprocess.run([sys.executable, "-c", TRAIN_STEP, str(tmp_path / "first.npy")], cwd=REPO,
                           capture_output=True, text=True, timeout=300)
    again = subprocess.run([sys.executable, "-c", TRAIN_STEP, str(tmp_path / "again.npy")], cwd=REPO,
                           capture_output=True, text=True, timeout=300)

    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    assert first.stdout.split() == ["True", "True"], "the first run fits the model with the kernels"
    assert again.stdout.split() == ["False", "True"], "the re-run reads the model from the cache"
    import numpy as np

    assert np.array_equal(np.load(tmp_path / "first.npy"), np.load(tmp_path / "again.npy"), equal_nan=True)
