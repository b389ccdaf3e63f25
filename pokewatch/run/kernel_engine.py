"""The papermill engine the pipeline runs its notebooks with: kernels talk over IPC, not TCP.

Why: papermill's default engine lets jupyter_client start each kernel on TCP ports of
127.0.0.1 without encryption, and ipykernel (7+) rightly warns about that
("Kernel is running over TCP without encryption") in every cron log; for the run's
duration any local user could connect to those ports. A headless run never needs a
kernel reachable over the network, so this engine asks for jupyter_client's IPC
transport: unix domain sockets in the user's private (0700) Jupyter runtime folder.
Nothing listens on a port, and there is nothing to encrypt or to warn about. (The
alternative, CurveZMQ keys over TCP, needs libzmq built with libsodium and still
opens ports.)

``scripts/run_pipeline.sh`` still calls the papermill CLI once per notebook, with
``--engine pokewatch``; papermill finds this class through the ``papermill.engine``
entry point in ``pyproject.toml``. papermill imports every registered engine at
start-up, so this module imports nothing of PokeWatch.
"""
from __future__ import annotations

from papermill.engines import NBClientEngine
from traitlets.config import Config

#: The name papermill knows this engine by (``papermill --engine pokewatch``).
NAME = "pokewatch"


def kernel_config(config: Config | dict | None = None) -> Config:
    """``config`` with the kernel manager switched to the IPC transport."""
    merged = Config(config or {})
    merged.KernelManager.transport = "ipc"
    return merged


class IpcEngine(NBClientEngine):
    """papermill's nbclient engine, with kernels started on the IPC transport."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
        kwargs["config"] = kernel_config(kwargs.get("config"))
        return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)
