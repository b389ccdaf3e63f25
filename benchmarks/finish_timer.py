"""``python -P finish_timer.py OUT.json MODULE ARGS...``: run ``python -m MODULE ARGS`` and time its report render.

``MODULE`` is ``pokewatch`` (``ARGS`` then start with ``pipeline``) or, in the flat
layout of older checkouts, ``pokewatch.pipeline``.

Standalone on purpose: the benchmark runs it with the python of whichever checkout it
measures (today's main or this one), so it imports nothing from ``benchmarks`` and
only that checkout's ``pokewatch``. When its report module is first imported its
``render_report`` is wrapped by a timer, without importing it earlier than the
command itself would; the seconds spent inside it go to ``OUT.json`` beside the
command's own wall time.
"""
from __future__ import annotations

import atexit
import importlib.abc
import importlib.util
import json
import runpy
import sys
import time


class _WrapRender(importlib.abc.MetaPathFinder):
    """Wrap ``render_report`` of the report module (either layout's) as soon as it is loaded."""

    def __init__(self, seconds: list[float]) -> None:
        self.seconds = seconds

    def find_spec(self, name, path=None, target=None):
        if name not in ("pokewatch.analysis.report", "pokewatch.report"):
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        loader, seconds = spec.loader, self.seconds

        class Loader(importlib.abc.Loader):
            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                loader.exec_module(module)
                render = module.render_report

                def timed(*args, **kwargs):
                    started = time.perf_counter()
                    try:
                        return render(*args, **kwargs)
                    finally:
                        seconds.append(time.perf_counter() - started)

                module.render_report = timed

        spec.loader = Loader()
        return spec


def main() -> None:
    out, module, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    started = time.time()
    seconds: list[float] = []
    sys.meta_path.insert(0, _WrapRender(seconds))

    def record() -> None:
        # An atexit hook, not a finally block: a command that ends with os._exit (this
        # checkout's pokewatch.startup.exit_now) still runs the atexit hooks.
        with open(out, "a", encoding="utf-8") as handle:
            command = args[1:2] if args[:1] == ["pipeline"] else args[:1]
            handle.write(json.dumps({"command": command, "started": started, "ended": time.time(),
                                     "render_seconds": sum(seconds), "renders": len(seconds)}) + "\n")

    atexit.register(record)
    sys.argv = ["-m", *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
