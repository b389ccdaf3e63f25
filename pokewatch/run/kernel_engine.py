"""The papermill engine the pipeline runs its notebooks with: kernels over IPC, stopped when done.

Why: papermill's default engine lets jupyter_client start each kernel on TCP ports of
127.0.0.1 without encryption, and ipykernel (7+) rightly warns about that
("Kernel is running over TCP without encryption") in every cron log; for the run's
duration any local user could connect to those ports. A headless run never needs a
kernel reachable over the network, so this engine asks for jupyter_client's IPC
transport: unix domain sockets in a private (0700) temporary folder of the papermill
process (jupyter_client's default, ``kernel-ipc-N`` in the working folder, would make
two runs started in one folder share sockets; see :func:`pokewatch.run.early_kernel.ipc_prefix`).
Nothing listens on a port, and there is nothing to encrypt or to warn about. (The
alternative, CurveZMQ keys over TCP, needs libzmq built with libsodium and still
opens ports.)

Once the last cell has answered, the kernel is stopped at once (nbclient's
``shutdown_kernel="immediate"``) rather than asked to shut down and waited for: a
kernel that has imported pandas, numba and matplotlib spent about a second tearing
its modules down, in each of a run's three notebooks, freeing memory the operating
system takes back anyway. Nothing is lost by it: every file a notebook writes is
closed and renamed into place before its cell returns, and the last cell's outputs
have reached papermill before the kernel is stopped.

``scripts/run_pipeline.sh`` still calls the papermill CLI once per notebook, with
``--engine pokewatch``; papermill finds this class through the ``papermill.engine``
entry point in ``pyproject.toml``. papermill imports every registered engine at
start-up, so this module imports nothing of PokeWatch at import time. A kernel the
papermill launcher started early (:mod:`pokewatch.run.early_kernel`) is used instead
of a new one, and stopped the same immediate way.
"""
from __future__ import annotations

from jupyter_client.manager import AsyncKernelManager
from papermill.engines import NBClientEngine
from traitlets.config import Config

#: The name papermill knows this engine by (``papermill --engine pokewatch``).
NAME = "pokewatch"
#: How nbclient stops a kernel once its notebook has run (see the module docstring).
SHUTDOWN = "immediate"


def kernel_config(config: Config | dict | None = None) -> Config:
    """``config`` with the kernel manager switched to the IPC transport, sockets in a private folder.

    Without a private folder (no temporary folder short enough for a socket path) the
    kernel keeps TCP, papermill's default: IPC in the working folder would share
    sockets with the other kernels the pipeline starts there at the same time.
    """
    from pokewatch.run import early_kernel  # noqa: PLC0415 - imports nothing heavy

    merged = Config(config or {})
    prefix = early_kernel.ipc_prefix()
    if prefix is not None:
        merged.KernelManager.transport = "ipc"
        merged.KernelManager.ip = prefix
    return merged


class IpcEngine(NBClientEngine):
    """papermill's nbclient engine, with kernels started on the IPC transport."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
        kwargs["config"] = kernel_config(kwargs.get("config"))
        kwargs.setdefault("shutdown_kernel", SHUTDOWN)
        from pokewatch.run import early_kernel, head_start  # noqa: PLC0415 - import nothing heavy

        if head_start.requested():  # started ahead of its turn: wait for it, connected
            kwargs.setdefault("on_notebook_start", head_start.wait_turn)
        if "km" not in kwargs and early_kernel.waiting(kernel_name):
            kwargs["config"].NotebookClient.kernel_manager_class = _EarlyKernelManager
        return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)


class _EarlyKernelManager(AsyncKernelManager):
    """The kernel manager nbclient builds, when the launcher already started the kernel.

    Constructing it hands back the launcher's running manager
    (:func:`pokewatch.run.early_kernel.take`), so nbclient owns it as one it made:
    it starts no second kernel, and stops this one and closes its channels exactly
    as it would its own. Without an early kernel it is a plain AsyncKernelManager.
    """

    def __new__(cls, *args, **kwargs):
        from pokewatch.run import early_kernel  # noqa: PLC0415

        early = early_kernel.take(kwargs.get("kernel_name", ""))
        if early is not None:
            return early  # not an instance of cls, so __init__ is not run on it again
        return super().__new__(cls, *args, **kwargs)
