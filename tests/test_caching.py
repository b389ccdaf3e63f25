import hashlib
import logging
import pickle

import pytest

from pokewatch.run import caching, steps
from pokewatch.errors import ParameterError
from pokewatch.data.store import PriceStore
from tests.conftest import series

CALLS = []


def slow_square(x: int, cache_version: str) -> int:
    CALLS.append(x)
    return x * x


@pytest.fixture(autouse=True)
def reset_calls():
    CALLS.clear()


def test_second_call_with_the_same_key_is_a_hit():
    first = caching.cached_call(slow_square, 3, "v1")
    second = caching.cached_call(slow_square, 3, "v1")
    assert (first.value, first.hit) == (9, False)
    assert (second.value, second.hit) == (9, True)
    assert CALLS == [3]


def test_bumping_cache_version_recomputes():
    caching.cached_call(slow_square, 3, "v1")
    assert caching.cached_call(slow_square, 3, "v2").hit is False
    assert CALLS == [3, 3]


def test_a_corrupted_entry_is_recomputed_not_fatal(isolated_dirs):
    caching.cached_call(slow_square, 4, "v1")
    outputs = list(isolated_dirs["cache"].rglob("output.pkl"))
    assert outputs
    for path in outputs:
        path.write_bytes(b"not a pickle")
    again = caching.cached_call(slow_square, 4, "v1")
    assert again.value == 16 and again.hit is False, "a damaged entry is a miss, never reported as a hit"
    assert CALLS == [4, 4]
    assert caching.cached_call(slow_square, 4, "v1").hit is True


def test_a_folder_in_place_of_an_entry_is_recomputed_and_stored_again(isolated_dirs):
    caching.cached_call(slow_square, 6, "v1")
    for path in isolated_dirs["cache"].rglob("output.pkl"):
        path.unlink()
        path.mkdir()  # what a damaged disk or a stray tool can leave

    again = caching.cached_call(slow_square, 6, "v1")

    assert (again.value, again.hit) == (36, False)
    assert caching.cached_call(slow_square, 6, "v1").hit is True
    assert CALLS == [6, 6]


def test_steps_are_keyed_on_the_store_fingerprint_not_the_rows():
    store = PriceStore.default()
    store.write_days("demo", series("a-1", [10.0, 11.0, 12.0, 13.0]))
    spec = steps.TrainingSpec(train_days=30, horizon_days=1)
    monday = "2026-01-05"
    assert steps.selection_step("demo", monday, spec, store).hit is False
    assert steps.selection_step("demo", monday, spec, store).hit is True
    store.write_days("demo", series("a-1", [10.0], start="2026-01-04"))   # a day before that Monday changed
    assert steps.selection_step("demo", monday, spec, store).hit is False
    store.write_days("demo", series("a-1", [10.0], start="2026-01-05"))   # the Monday itself: not read
    assert steps.selection_step("demo", monday, spec, store).hit is True
    key = steps.history_key("demo", "2026-01-04", store)
    assert len(pickle.dumps(key.args())) < 500


def refuse(x: int, cache_version: str) -> int:
    CALLS.append(x)
    raise ParameterError(f"parameter x must be positive, got {x}")


def test_a_step_that_raises_runs_once_and_blames_itself_not_the_cache(caplog):
    with caplog.at_level(logging.WARNING, logger="pokewatch"), pytest.raises(ParameterError, match="positive"):
        caching.cached_call(refuse, -1, "v1")
    assert CALLS == [-1]
    assert "unreadable" not in caplog.text


def truncated_entry(self):
    raise EOFError("truncated entry")


def test_an_entry_that_cannot_be_loaded_is_recomputed_once(monkeypatch, caplog):
    caching.cached_call(slow_square, 5, "v1")
    shelved = caching.memorized(slow_square).call_and_shelve(5, "v1")
    monkeypatch.setattr(type(shelved), "get", truncated_entry)
    with caplog.at_level(logging.WARNING, logger="pokewatch"):
        again = caching.cached_call(slow_square, 5, "v1")
    assert (again.value, again.hit) == (25, False)
    assert CALLS == [5, 5]
    assert "cache entry for slow_square was unreadable (EOFError: truncated entry); recomputing" in caplog.text


@pytest.fixture
def tiny_package(tmp_path, monkeypatch):
    """A package named pokewatch whose steps import a helper, and a module nobody imports."""
    package = tmp_path / "pokewatch"
    (package / "sub").mkdir(parents=True)
    (package / "run").mkdir()
    (package / "__init__.py").write_text('"""A package."""\n')
    (package / "run" / "__init__.py").write_text("")
    (package / "run" / "steps.py").write_text("from pokewatch import helper\nfrom ..sub import inner\n")
    (package / "helper.py").write_text("def f():\n    from pokewatch.lazy import g\n    return 1\n")
    (package / "lazy.py").write_text("g = 1\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "inner.py").write_text("x = (\n    1)\n")
    (package / "unrelated.py").write_text("y = 1\n")
    monkeypatch.setattr(caching, "_PACKAGE_DIR", package)
    caching.code_version.cache_clear()
    yield package
    caching.code_version.cache_clear()


def versions_after(package, edits: list[str]) -> list[str]:
    seen = [caching.code_version()]
    for name in edits:
        path = package / name
        path.write_text(path.read_text() + "# edited\n")
        caching.code_version.cache_clear()
        seen.append(caching.code_version())
    return seen


def test_the_cache_version_changes_with_every_module_the_steps_import(tiny_package):
    versions = versions_after(tiny_package, ["helper.py", "lazy.py", "sub/inner.py", "run/steps.py"])
    assert len(set(versions)) == len(versions), "each edit behind a step is a new cache version"


def test_the_cache_version_ignores_modules_the_steps_do_not_import(tiny_package):
    first, after = versions_after(tiny_package, ["unrelated.py"])
    assert first == after


def test_cache_version_is_the_code_version_of_the_steps():
    assert caching.CACHE_VERSION == caching.code_version() == caching.code_version("pokewatch.run.steps")
    assert steps.CACHE_VERSION == caching.CACHE_VERSION
    assert caching.CACHE_VERSION != hashlib.sha256().hexdigest()[:16], "the steps' own source is hashed"
