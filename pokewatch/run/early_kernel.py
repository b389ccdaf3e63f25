"""Start a pipeline step's kernel before papermill is imported, so the two start-ups overlap.

Why: a papermill process of the pipeline spent about 0.55 s importing papermill,
nbformat and nbclient before it launched the kernel, and the kernel then took about
0.6 s to answer; one after the other, on a machine with a second core idle. The
papermill launcher (:mod:`pokewatch.run.papermill_cli`) now starts the kernel first
(jupyter_client alone: about 0.2 s), imports papermill while the kernel boots in its
own process, and the pipeline's engine (:mod:`pokewatch.run.kernel_engine`) has
nbclient adopt that kernel instead of starting another.

Only a command line whose kernel is known up front gets an early kernel: ``--engine
pokewatch`` and ``--kernel NAME``, without ``--prepare-only`` (the pipeline's own
call, ``scripts/run_pipeline.sh``). Any other papermill call starts its kernel as
papermill always did. The kernel is started as nbclient would start it: same
kernelspec, IPC transport and environment, in papermill's ``--cwd`` (else the
launcher's working directory).
nbclient stops it when the notebook has run, as its own; an atexit hook stops it if
papermill fails before it gets that far (a missing notebook, a bad option), so it never outlives
the launcher; its parent poller ends it if the launcher is killed.
"""
from __future__ import annotations

import atexit
import functools
import logging
import os

logger = logging.getLogger(__name__)

#: Options after which papermill starts no kernel or starts it elsewhere: no early kernel then.
_NOT_EARLY = ("--prepare-only", "--help", "-h", "--version")

_started: dict[str, object] = {}  # kernel name -> a started AsyncKernelManager not yet taken


#: Longest socket path a Unix domain socket takes (sun_path is 108 bytes with its NUL), less
#: jupyter_client's "-N" port suffix.
_MAX_IPC_PREFIX = 100


@functools.cache
def ipc_prefix() -> str | None:
    """Where this process's kernel puts its IPC sockets: a private (0700) temporary folder of its own.

    Not jupyter_client's default (``kernel-ipc-N`` in the working folder, which two
    kernels started in one folder would share: the pipeline starts three at once, and
    a client that connects to another kernel's socket fails with "Invalid Signature"),
    and not the Jupyter runtime folder under ``$HOME``, whose path can be longer than a
    socket path may be. The folder is in ``$TMPDIR``, or in ``/tmp`` (then
    ``/dev/shm``) when ``$TMPDIR`` is too deep for a socket path; one per process, it is
    removed when the process exits. None only when none of them can hold one: the
    caller then keeps jupyter_client's TCP default, never the shared folder.
    """
    import shutil  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    # mkdtemp's name is 8 random characters after the prefix; "/kernel" follows it.
    longest = len("/pokewatch-ipc-") + 8 + len("/kernel")
    for parent in dict.fromkeys((tempfile.gettempdir(), "/tmp", "/dev/shm")):
        if len(parent) + longest > _MAX_IPC_PREFIX:
            continue
        try:
            folder = tempfile.mkdtemp(prefix="pokewatch-ipc-", dir=parent)
        except OSError:  # missing or not writable
            continue
        atexit.register(shutil.rmtree, folder, True)
        return os.path.join(folder, "kernel")
    return None


def _option(argv: list[str], *names: str) -> str | None:
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if name.startswith("--") and arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
    return None


def kernel_for(argv: list[str]) -> tuple[str, str] | None:
    """The kernel name and working folder to start early for papermill's ``argv``, or None.

    None means papermill starts its own kernel, as without this module.
    """
    if any(arg == flag or arg.startswith(f"{flag}=") for arg in argv for flag in _NOT_EARLY):
        return None
    kernel = _option(argv, "--kernel", "-k")
    if _option(argv, "--engine") != "pokewatch" or not kernel:
        return None
    return kernel, os.path.abspath(_option(argv, "--cwd") or os.getcwd())


def start(kernel_name: str, cwd: str | None = None) -> None:
    """Launch ``kernel_name``'s kernel over IPC in ``cwd`` now; :func:`take` hands it to the engine.

    A kernel that cannot be started here (an unknown name, say) is left to papermill,
    which then fails with its own message exactly as without an early kernel.
    """
    import asyncio  # noqa: PLC0415 - this module is imported before anything heavy

    from jupyter_client.manager import AsyncKernelManager  # noqa: PLC0415

    manager, prefix = None, ipc_prefix()
    if prefix is None:
        return
    try:
        manager = AsyncKernelManager(kernel_name=kernel_name, transport="ipc", ip=prefix)
        asyncio.run(manager.start_kernel(cwd=cwd or os.getcwd()))
    except Exception as exc:  # noqa: BLE001 - papermill then starts the kernel itself, and reports its problem
        logger.debug("no early kernel (%s: %s); papermill starts its own", type(exc).__name__, exc)
        if manager is not None and manager.has_kernel:
            stop(manager)
        return
    _started[kernel_name] = manager
    logger.debug("started kernel %s (pid %d) before importing papermill", kernel_name,
                 manager.provisioner.process.pid)
    atexit.register(_stop_if_untaken, kernel_name)


def waiting(kernel_name: str) -> bool:
    """Whether an early kernel of ``kernel_name`` was started and not taken yet."""
    return kernel_name in _started


def peek(kernel_name: str):
    """The early kernel of ``kernel_name`` (its AsyncKernelManager), left for :func:`take`; None when there is none."""
    return _started.get(kernel_name)


def stop_untaken() -> None:
    """Stop every early kernel nothing has taken (a launcher that will not run its notebook)."""
    for kernel_name in list(_started):
        _stop_if_untaken(kernel_name)


def take(kernel_name: str):
    """The early kernel of ``kernel_name`` (its AsyncKernelManager), once; None when there is none."""
    return _started.pop(kernel_name, None)


def stop(manager) -> None:
    """Kill an early kernel and remove its connection file and sockets."""
    import asyncio  # noqa: PLC0415

    async def _stop() -> None:
        if await manager.is_alive():
            await manager.shutdown_kernel(now=True)  # also removes the connection file
        else:
            await manager.cleanup_resources()

    asyncio.run(_stop())


def _stop_if_untaken(kernel_name: str) -> None:
    manager = _started.pop(kernel_name, None)
    if manager is not None:
        stop(manager)
