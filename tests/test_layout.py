"""The package's stages import only the stages below them, so a reader can take them in order.

core is pure and imports no other stage; data builds on core; run on data and core;
analysis on run, data and core; the API and the CLI sit on top. config, errors,
atomic, logs, redaction, startup and memory_pages are shared by every stage. Lazy
imports inside functions count too: a layer that reaches upwards at call time is still
tied to it.
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pokewatch"
SHARED = {"pokewatch", *(f"pokewatch.{name}" for name in
                         ("config", "errors", "atomic", "logs", "memory_pages", "redaction",
                          "startup"))}
ORDER = ["core", "data", "run", "analysis", "api", "cli"]
#: What each stage may import besides itself and the shared modules.
ALLOWED = {stage: set(ORDER[:i]) for i, stage in enumerate(ORDER)}
ALLOWED["cli"] |= {"api"}
#: One module reaches up on purpose: the pipeline's last helper command, ``finish``,
#: renders the pages and sends the alert (lazily, so ``start`` stays lean).
REACHES_UP = {"pokewatch.run.helpers": {"analysis"}}


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ORDER else None


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if node.module == "pokewatch"}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m == "pokewatch" or m.startswith("pokewatch.")}


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_module_imports_only_its_own_stage_the_stages_below_and_the_shared_modules(path):
    module = ".".join(("pokewatch", *path.relative_to(PACKAGE).with_suffix("").parts))
    stage = _stage(module)
    upward = sorted(m for m in _imports(path) if m not in SHARED and _stage(m) not in {stage, None}
                    and (stage is None or _stage(m) not in ALLOWED[stage] | REACHES_UP.get(module, set())))
    if stage is None:       # the shared modules import no stage at all
        upward = sorted(m for m in _imports(path) if _stage(m) is not None and module != "pokewatch.__main__")
    assert not upward, f"{module} ({stage or 'shared'}) imports {upward}"


def test_every_module_belongs_to_a_stage_or_is_shared():
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "atomic.py", "config.py", "errors.py", "logs.py",
                     "memory_pages.py", "redaction.py", "startup.py"]
