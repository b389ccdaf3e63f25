"""Opening a notebook in JupyterLab and saving it changes nothing git can see.

Why: `make lab` registered one kernel name and the notebooks named another, so merely
opening a notebook dirtied it. This test does what JupyterLab does, through the Jupyter
server's REST API, on a clone of the working tree. It runs `make lab` as written (its
Jupyter config only adds a port, a token and allow_root, since this machine runs as root).
Then, for each notebook, it opens it (GET /api/contents), starts a kernel session for the
kernel the notebook names (POST /api/sessions) and updates the notebook's metadata as
JupyterLab 4 does once the kernel is up: its NotebookPanel sets ``kernelspec`` to the
running kernel's name, display name and language, and ``language_info`` to the kernel's
kernel_info reply, each only when it differs. It saves the notebook (PUT /api/contents)
and closes the session. Then ``git status`` must be clean.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time

import pytest
import requests
from jupyter_client import BlockingKernelClient

from tests.conftest import REPO
from tests.project_snapshot import snapshot

pytestmark = pytest.mark.slow
NOTEBOOKS = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))


class Lab:
    """`make lab` running in a clone, with a known port and token, and its REST API."""

    def __init__(self, parent):
        self.clone = snapshot(parent)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.token = secrets.token_hex(16)
        self.runtime = parent / "runtime"
        config = parent / "jupyter-config"
        config.mkdir()
        (parent / "home").mkdir()
        (config / "jupyter_server_config.json").write_text(json.dumps({
            "ServerApp": {"ip": "127.0.0.1", "port": self.port, "port_retries": 0, "open_browser": False,
                          "allow_root": True},  # this machine's agents run as root
            "IdentityProvider": {"token": self.token}}))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "POKEWATCH_", "VIRTUAL_ENV"))}
        env |= {"HOME": str(parent / "home"), "JUPYTER_CONFIG_DIR": str(config),
                "JUPYTER_RUNTIME_DIR": str(self.runtime), "TQDM_DISABLE": "1"}
        self.log = parent / "lab.log"
        with self.log.open("w") as out:
            self.process = subprocess.Popen(["make", "lab"], cwd=self.clone, env=env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {self.token}"
        self._wait()

    def _wait(self, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"make lab exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if self.http.get(f"{self.url}/api/status", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"JupyterLab did not answer within {seconds:.0f} s:\n{self.log.read_text()}")

    def api(self, method: str, path: str, **kwargs) -> dict | None:
        answer = self.http.request(method, f"{self.url}/api/{path}", timeout=60, **kwargs)
        assert answer.ok, f"{method} /api/{path}: {answer.status_code} {answer.text[:500]}"
        return answer.json() if answer.content else None

    def notebook_path(self, name: str) -> str:
        """The API path of notebooks/<name>, whether Lab serves the project root or notebooks/."""
        root = {entry["name"] for entry in self.api("GET", "contents/")["content"]}
        return f"notebooks/{name}" if "notebooks" in root else name

    def language_info(self, kernel_id: str) -> dict:
        client = BlockingKernelClient(connection_file=str(self.runtime / f"kernel-{kernel_id}.json"))
        client.load_connection_file()
        client.start_channels()
        try:
            return client.kernel_info(reply=True, timeout=60)["content"]["language_info"]
        finally:
            client.stop_channels()

    def open_start_kernel_and_save(self, name: str) -> None:
        path = self.notebook_path(name)
        notebook = self.api("GET", f"contents/{path}", params={"content": 1, "type": "notebook"})["content"]
        wanted = notebook["metadata"].get("kernelspec", {}).get("name")
        specs = self.api("GET", "kernelspecs")["kernelspecs"]
        assert wanted in specs, (f"{name} names kernel {wanted!r}, which `make lab` does not provide "
                                 f"(it has {sorted(specs)}): JupyterLab would ask for a kernel")
        session = self.api("POST", "sessions", json={"path": path, "type": "notebook", "name": name,
                                                     "kernel": {"name": wanted}})
        kernel = session["kernel"]
        spec = specs[kernel["name"]]["spec"]
        old = notebook["metadata"].get("kernelspec", {})
        kernelspec = {"name": kernel["name"], "display_name": spec.get("display_name") or old.get("display_name"),
                      "language": spec.get("language") or old.get("language")}
        for key, value in (("kernelspec", kernelspec), ("language_info", self.language_info(kernel["id"]))):
            if notebook["metadata"].get(key) != value:
                notebook["metadata"][key] = value
        self.api("PUT", f"contents/{path}", json={"type": "notebook", "format": "json", "content": notebook})
        self.api("DELETE", f"sessions/{session['id']}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("lab"))
    yield lab
    lab.stop()


def test_opening_each_notebook_in_jupyterlab_leaves_git_status_clean(lab):
    for name in NOTEBOOKS:
        lab.open_start_kernel_and_save(name)
    status = subprocess.run(["git", "status", "--porcelain"], cwd=lab.clone, capture_output=True, text=True).stdout
    if status:
        committed = {n: json.loads(subprocess.run(["git", "show", f"HEAD:notebooks/{n}"], cwd=lab.clone,
                                                  capture_output=True, text=True).stdout)["metadata"]
                     for n in NOTEBOOKS}
        saved = {n: json.loads((lab.clone / "notebooks" / n).read_text())["metadata"] for n in NOTEBOOKS}
        changed = {n: {k: {"committed": committed[n].get(k), "after Lab": saved[n].get(k)}
                       for k in set(committed[n]) | set(saved[n]) if committed[n].get(k) != saved[n].get(k)}
                   for n in NOTEBOOKS if committed[n] != saved[n]}
        diff = subprocess.run(["git", "diff", "--stat"], cwd=lab.clone, capture_output=True, text=True).stdout
        pytest.fail(f"opening and saving in JupyterLab changed:\n{status}{diff}\nmetadata changes:\n"
                    f"{json.dumps(changed, indent=1)}")


def test_make_lab_serves_the_notebooks(lab):
    folder = lab.notebook_path("").rstrip("/")
    assert set(NOTEBOOKS) <= {entry["name"] for entry in lab.api("GET", f"contents/{folder}")["content"]}
