"""A pipeline notebook started ahead of its turn: its kernel boots and imports while the steps before it run.

Why: in the demo pipeline each notebook's process spent about 0.65 s starting its
kernel, about 1 s in its import cell (pandas, matplotlib, the package) and, for train
and evaluate, about 0.6 s in its first step importing numba and loading the compiled
kernels: over 4 s of an 11.5 s run, one process after the other, while the machine's
second core mostly idled (``make bench``, docs/performance.md). None of it depends on
the step before. So ``scripts/run_pipeline.sh`` starts collect's launcher with the
script, and train's and evaluate's as soon as the run folder exists. Each starts its
kernel (:mod:`pokewatch.run.early_kernel`), sends it the notebook's own import
statements to run silently (:func:`warm_up`), and waits for its turn. The notebook then
runs exactly as before: same cells, same outputs, same execution counts (a silent
execution counts nothing), its imports already loaded.

The protocol, between the pipeline and :mod:`pokewatch.run.papermill_cli`:

* ``POKEWATCH_RELEASE`` names a file that does not exist yet. It holds ``run`` (the cells
  run now) or ``skip`` (an earlier step failed or the run stopped: the launcher stops its
  kernel, removes the notebook papermill began, and exits 0). The launcher waits for it
  once papermill has read the notebook and nbclient has connected to the kernel
  (:func:`wait_turn`), so that too happens beside the steps before.
* ``POKEWATCH_ARGS_FILE``, when set, names the file that brings the rest of papermill's
  command line (the parameters file and the two notebooks, NUL-separated), written once
  the run folder exists; the launcher started before it did, with ``POKEWATCH_NOTEBOOK``
  naming the notebook to warm up for (:func:`command_line`).
* ``POKEWATCH_RELEASE_OWNER`` is the pipeline's process id. A launcher whose owner is
  gone stops its kernel and exits 1, at any time: a killed pipeline leaves no notebook
  running or waiting behind it.
* The launcher writes its own process id to ``<release file>.pid``, so the pipeline can
  interrupt a notebook that is running (SIGINT, which a background job would otherwise
  ignore).
* ``POKEWATCH_READ_AHEAD``, when set, names the source whose stored history the notebook
  reads in full (train's and evaluate's): the launcher asks for it to be read into the
  page cache as it starts (:mod:`pokewatch.data.read_ahead`).
* ``POKEWATCH_RELEASE_IDLE=1``: until released, the launcher and its kernel run at idle
  CPU priority (Linux ``SCHED_IDLE``), so their warm-up only takes CPU the steps before
  leave free and never slows the step that holds up the run (on the demo run, train's
  and evaluate's warm-ups ran beside collect and took about a third of its two cores).
  Released, every thread of both goes back to the normal policy (:func:`reclaim_cpu`);
  a warm-up not finished by then goes on at normal speed. Where Linux would not let it
  back (a plain user without ``RLIMIT_NICE``), it never yields (:func:`can_leave_idle`).

Every file is written to a temporary name and renamed. Outside the pipeline
(JupyterLab, nbval, a plain papermill call) none of this is set and nothing changes.
The executed notebook's metadata records when the pipeline released it
(``metadata.pokewatch.released``, epoch seconds: the release file's time), so timings
can tell the warm-up and the wait, which ran beside the steps before, from the time
the notebook held up the run.
"""
from __future__ import annotations

import ast
import json
import logging
import os
import signal
import threading
import time
from pathlib import Path

logger = logging.getLogger(__name__)

RELEASE = "POKEWATCH_RELEASE"
OWNER = "POKEWATCH_RELEASE_OWNER"
IDLE = "POKEWATCH_RELEASE_IDLE"
ARGS = "POKEWATCH_ARGS_FILE"
NOTEBOOK = "POKEWATCH_NOTEBOOK"
#: The source whose stored history a step started ahead will read: the launcher asks Linux
#: to read it into the page cache while the steps before run (:mod:`pokewatch.data.read_ahead`).
READ_AHEAD = "POKEWATCH_READ_AHEAD"
RUN, SKIP = "run", "skip"

#: Per notebook, modules its steps import inside functions, which its own imports do not
#: load: numba and the compiled kernels (about 0.6 s; their machine code comes from
#: numba's cache). Collect never loads them, and would only wait for them.
LAZY_IMPORTS = {"train": ("pokewatch.core.kernels",), "evaluate": ("pokewatch.core.kernels",)}
#: How often the waiting launcher looks for its release file and its owner.
POLL_SECONDS = 0.005
#: How often a released launcher checks that its owner is still there.
WATCH_SECONDS = 0.25

released_at: float | None = None  # when the pipeline released this process's notebook ("run")


def requested() -> bool:
    """Whether this launcher was started ahead of its turn (the pipeline set ``POKEWATCH_RELEASE``)."""
    return bool(os.environ.get(RELEASE))


def notebook_imports(path: str | Path) -> str:
    """The import statements of a notebook's code cells, in order, as one block of Python.

    Cells that are not valid Python (magics) are skipped; an import inside a function or
    a branch is included, since importing a module has no effect beyond its own.
    """
    cells = json.loads(Path(path).read_text(encoding="utf-8")).get("cells", [])
    lines: list[str] = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = "".join(cell.get("source") or [])
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        lines += [ast.unparse(node) for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
    lines += [f"import {name}" for name in LAZY_IMPORTS.get(Path(path).stem, ())]
    return "\n".join(dict.fromkeys(lines))


def warm_up_code(imports: str) -> str:
    """Code that runs ``imports`` in a namespace of its own, so the notebook's names are untouched.

    A failing import is ignored here: the notebook's own cell then fails with its usual
    error, at its usual place.
    """
    return (f"def _pokewatch_warm_up():\n"
            f"    for line in {imports.splitlines()!r}:\n"
            f"        try:\n"
            f"            exec(line, {{}})\n"
            f"        except Exception:\n"
            f"            pass\n"
            f"_pokewatch_warm_up()\n"
            f"del _pokewatch_warm_up\n")


_warm_client = None  # the client that sent the warm-up, kept open so the request is never dropped


def warm_up(manager, code: str) -> bool:
    """Send ``code`` to run silently in the kernel of ``manager`` (an AsyncKernelManager); True once sent.

    Not waited for: papermill reads and parameterizes the notebook meanwhile, and
    nbclient's first request to the kernel is answered once the warm-up is done (a
    kernel runs one request at a time). The request is queued even if the kernel is
    still starting; the client that sent it stays open until the process ends.
    """
    global _warm_client
    try:
        # A blocking client: its socket queues the request until the kernel is listening
        # (an asyncio one would hold it for an event loop that is not running).
        client = manager.blocking_client()
        client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        client.execute(code, silent=True, store_history=False, allow_stdin=False)
    except Exception as exc:  # noqa: BLE001 - the notebook runs anyway, just without the head start
        logger.debug("warm-up not sent (%s: %s); the notebook imports on its own", type(exc).__name__, exc)
        return False
    _warm_client = client
    return True


def owner_alive(pid: int | None) -> bool:
    """Whether process ``pid`` still exists (None: no owner to watch)."""
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_pid() -> int | None:
    value = os.environ.get(OWNER, "")
    return int(value) if value.isdigit() else None


def watch_owner(owner: int | None, every: float = WATCH_SECONDS) -> None:
    """Interrupt this process (as Ctrl-C would) once ``owner`` is gone; in a daemon thread."""
    if owner is None:
        return

    def _watch() -> None:
        while owner_alive(owner):
            time.sleep(every)
        logger.warning("pipeline process %d is gone: interrupting this notebook", owner)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=_watch, name="pokewatch-owner-watch", daemon=True).start()


def notebook_path(argv: list[str], which: int = 0) -> str | None:
    """The input (``which=0``) or output (1) notebook of a papermill command line."""
    paths = [arg for arg in argv if arg.endswith(".ipynb") and not arg.startswith("-")]
    return paths[which] if len(paths) > which else None


class NotReleased(Exception):
    """This launcher's notebook is not to run: skipped (status 0), or its pipeline is gone (1)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


_manager = None  # the early kernel this launcher warmed (nbclient adopts it)


def _terminated(signum, frame) -> None:  # noqa: ARG001 - a signal handler's signature
    raise SystemExit(128 + signum)


def prepare(argv: list[str], kernel_name: str | None) -> None:
    """Before papermill: send the notebook's imports to the early kernel, to run while papermill starts.

    The notebook is the command line's, or ``POKEWATCH_NOTEBOOK`` when the command line
    comes later (:func:`command_line`).
    """
    from pokewatch.run import early_kernel  # noqa: PLC0415 - imports nothing heavy

    source_to_read = os.environ.get(READ_AHEAD)
    if source_to_read:
        from pokewatch import config  # noqa: PLC0415 - imports nothing heavy
        from pokewatch.data.read_ahead import read_ahead  # noqa: PLC0415 - imports nothing heavy
        read_ahead(config.store_dir(), source_to_read)
    global _manager
    source = notebook_path(argv) or os.environ.get(NOTEBOOK)
    _manager = early_kernel.peek(kernel_name) if kernel_name else None
    if _manager is not None and source and os.path.exists(source):
        warm_up(_manager, warm_up_code(notebook_imports(source)))


_idle = False  # whether begin() moved this launcher (and so the kernel it starts) to SCHED_IDLE


#: CAP_SYS_NICE's bit in /proc/<pid>/status's CapEff mask.
_CAP_SYS_NICE = 1 << 23


def can_leave_idle() -> bool:
    """Whether this process may go back from SCHED_IDLE to the normal policy once released.

    Linux allows it only with CAP_SYS_NICE or an ``RLIMIT_NICE`` of at least 20 (nice 0);
    a plain user's default limit is 0, so there the launcher never yields: a notebook
    left at idle priority for its whole run would crawl on a busy machine.
    """
    import resource  # noqa: PLC0415

    try:
        soft = resource.getrlimit(resource.RLIMIT_NICE)[0]
        if soft == resource.RLIM_INFINITY or soft >= 20:
            return True
        status = Path("/proc/self/status").read_text(encoding="utf-8")
        mask = next(line.split()[1] for line in status.splitlines() if line.startswith("CapEff:"))
        return bool(int(mask, 16) & _CAP_SYS_NICE)
    except (OSError, AttributeError, StopIteration, ValueError):
        return False


def yield_cpu() -> bool:
    """Move this process to idle CPU priority; the kernel it starts next inherits it. True if it did.

    Only the calling thread changes: call it before any thread or child exists. Nothing
    changes where the process could not come back (:func:`can_leave_idle`).
    """
    global _idle
    if os.environ.get(IDLE) != "1" or not hasattr(os, "SCHED_IDLE") or not can_leave_idle():
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except OSError as exc:  # not allowed here: the warm-up just competes for the CPU as before
        logger.debug("stays at normal priority (%s)", exc)
        return False
    _idle = True
    return True


def _threads(pid: int) -> list[int]:
    try:
        return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def _children(pid: int) -> list[int]:
    found = []
    for tid in _threads(pid):
        try:
            found += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except OSError:
            pass
    return found


def reclaim_cpu() -> None:
    """Every idle thread of this process and of its children (its kernel) back to the normal policy.

    Linux allows it only where :func:`can_leave_idle` holds, which :func:`yield_cpu` checked.
    """
    for process in (os.getpid(), *_children(os.getpid())):
        for tid in _threads(process):
            try:
                if os.sched_getscheduler(tid) == os.SCHED_IDLE:
                    os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
            except OSError:  # the thread ended meanwhile
                pass


def begin() -> None:
    """First thing in the launcher: the signals the pipeline sends, and ``<release file>.pid``, where it finds them.

    A background job of a non-interactive shell starts with SIGINT ignored; the pipeline
    interrupts a running notebook with it. SIGTERM (from outside: the pipeline tells a
    waiting launcher to skip instead) exits through the atexit hooks, which stop the
    early kernel and remove its socket folder.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminated)
    Path(f"{os.environ[RELEASE]}.pid").write_text(f"{os.getpid()}\n", encoding="utf-8")
    yield_cpu()


def command_line(argv: list[str], poll: float = POLL_SECONDS) -> list[str]:
    """``argv`` and the rest of papermill's command line, once the pipeline has written it.

    With ``POKEWATCH_ARGS_FILE`` set the launcher started before the run folder existed;
    the pipeline writes that file (NUL-separated arguments: the parameters file and the
    two notebooks) once it does. Without it, ``argv`` is the whole command line already.

    Raises:
        NotReleased: skipped or the owner gone before the command line came.
    """
    name = os.environ.get(ARGS)
    if not name:
        return argv
    path, release, owner = Path(name), Path(os.environ[RELEASE]), owner_pid()
    try:
        while not path.exists():
            if release.exists():
                raise NotReleased(f"released with {release.read_text(encoding='utf-8').strip()!r}", 0)
            if not owner_alive(owner):
                raise NotReleased(f"pipeline process {owner} ended before releasing this notebook", 1)
            time.sleep(poll)
    except KeyboardInterrupt:
        raise NotReleased("interrupted before its turn", 1) from None
    return [*argv, *(arg for arg in path.read_text(encoding="utf-8").split("\0") if arg)]


async def wait_turn(notebook=None, **_) -> None:
    """nbclient's ``on_notebook_start`` hook: wait, kernel connected, until this notebook may run.

    Here, after papermill has read and parameterized the notebook and nbclient has
    connected to the kernel (about 0.3 s), rather than before papermill starts: that
    time, too, passes beside the step before.

    Raises:
        NotReleased: released with ``skip``, the owner is gone, or interrupted.
    """
    import asyncio  # noqa: PLC0415

    global released_at
    path, owner = Path(os.environ[RELEASE]), owner_pid()
    try:
        while not path.exists():
            if not owner_alive(owner):
                raise NotReleased(f"pipeline process {owner} ended before releasing this notebook", 1)
            await asyncio.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        raise NotReleased("interrupted before its turn", 1) from None
    verdict = path.read_text(encoding="utf-8").strip()
    if verdict != RUN:
        raise NotReleased(f"released with {verdict!r}", 0 if verdict == SKIP else 1)
    if _idle:
        reclaim_cpu()
    # When the pipeline released it (the file's time), which can be before this moment: what
    # the kernel still had to do after that was on the run's critical path.
    released_at = min(path.stat().st_mtime, time.time())
    if notebook is not None:
        notebook.metadata.setdefault("pokewatch", {})["released"] = round(released_at, 6)
    watch_owner(owner)


def discard(argv: list[str]) -> None:
    """After :class:`NotReleased`: stop the warmed kernel and remove the notebook papermill began to write."""
    from pokewatch.run import early_kernel  # noqa: PLC0415

    if _manager is not None and _manager.has_kernel:
        early_kernel.stop(_manager)
    early_kernel.stop_untaken()
    output = notebook_path(argv, 1)
    if output and os.path.isfile(output):
        os.remove(output)
