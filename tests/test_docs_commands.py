"""Every command in README.md and docs/ works as written from the project root (see tests/docs_commands.py).

The fast tests check the registry against the documents: every command is registered, no entry
is stale, venv tools are called by their path, mapped tests exist. The slow ones run the
commands in a throw-away clone of the working tree, and run the README cron line under
``env -i`` from ``/``.
"""
from __future__ import annotations

import ast
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests import docs_commands as docs
from pokewatch.run.folder import LATEST, RunFolder
from tests.conftest import REPO
from tests.project_snapshot import snapshot, venv_problem
from tests.sources_server import RecordedServer, Reply, fixture, tcgcsv_routes

COMMANDS = docs.documented_commands()
BY_KEY = {}
for _command in COMMANDS:
    BY_KEY.setdefault(_command.key, _command)
PRIMARY_PORT_TEXT = "127.0.0.1:8000"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def registration_help(unregistered: list[docs.Command]) -> str:
    """The failure message for commands found in the docs but not in the registry."""
    lines = [f"{len(unregistered)} documented command(s) are not registered in tests/docs_commands.py REGISTRY.",
             "Add one line per command, choosing how it is exercised:",
             "  run(needs..., expect=REGEX)   the docs check runs it as written in a clone (slow=True if it "
             "takes more than a few seconds)",
             "  mapped('tests/test_x.py::test_y', 'why')   an existing test runs exactly this command",
             "  template('concrete documented command')     a synopsis with placeholders",
             "  not_run('reason')                           cannot run on this machine (say why, and what covers it)",
             "Commands, with where they are:"]
    lines += [f"  {c.where}:  {c.key!r}: run()," for c in unregistered]
    return "\n".join(lines)


# --- the registry against the documents ------------------------------------------------------------

def test_every_documented_command_is_registered():
    unregistered = [c for c in BY_KEY.values() if c.key not in docs.REGISTRY]
    assert not unregistered, registration_help(unregistered)


def test_every_registry_entry_is_still_documented():
    stale = [key for key in docs.REGISTRY if key not in BY_KEY]
    assert not stale, ("these REGISTRY entries match no command in README.md or docs/*.md any more; "
                       f"remove them or update them to the new wording: {stale}")


def test_documented_commands_call_venv_tools_by_their_path():
    bare = [(c.where, c.key, tools) for c in COMMANDS if (tools := docs.bare_tools(c.raw))
            and c.key not in docs.BARE_ALLOWED]
    assert not bare, ("these commands call a .venv tool by its bare name, which is 'command not found' without an "
                      f"activated venv; write .venv/bin/<tool>: {bare}")
    assert set(docs.BARE_ALLOWED) <= set(BY_KEY), "BARE_ALLOWED names commands the docs no longer have"


def test_mapped_commands_name_tests_that_exist():
    for key, handling in docs.REGISTRY.items():
        if handling.kind != "mapped":
            continue
        path, _, name = handling.test.partition("::")
        assert (REPO / path).is_file(), f"{key!r} is mapped to {handling.test}, but {path} does not exist"
        functions = {n.name for n in ast.walk(ast.parse((REPO / path).read_text())) if isinstance(n, ast.FunctionDef)}
        assert name in functions, f"{key!r} is mapped to {handling.test}, but {path} has no test {name}"
        assert handling.reason, f"{key!r}: say why the mapped test covers it"


def test_templates_name_a_documented_example_that_is_run():
    for key, handling in docs.REGISTRY.items():
        if handling.kind == "template":
            assert handling.example in BY_KEY, f"{key!r}: its example {handling.example!r} is not documented"
            assert docs.REGISTRY[handling.example].kind == "run", f"{key!r}: its example is not run"


def test_commands_that_are_not_run_say_why():
    assert all(h.reason for h in docs.REGISTRY.values() if h.kind == "not_run")


def test_the_extractor_finds_block_inline_and_cron_commands(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text("\n".join([
        "Run `make lint` or `.venv/bin/pokewatch runs show 2026-11-28`; `scripts/run_pipeline.sh` is a file.",
        "Cron: `0 3 * * * cd /path && scripts/run_pipeline.sh >> logs/pipeline.log 2>&1`.",
        "```bash",
        "export KEY=abc            # a comment",
        "pokewatch runs --limit 5  # bare",
        "scripts/run_pipeline.sh --source tcgcsv \\",
        "    --backfill 2025-09-21..2025-09-27",
        "cat > env <<'ENV'",
        "export A=1   # kept: inside the heredoc",
        "ENV",
        "```",
        "```text",
        "scripts/run_pipeline.sh [--date YYYY-MM-DD]",
        "```",
        "```",
        "2026-11-28T03:00:52Z pipeline: a log line",
        "make help",
        "```",
    ]))
    monkeypatch.setattr(docs, "REPO", tmp_path)
    found = docs.extract(page)
    assert [(c.kind, c.key) for c in found] == [
        ("inline", "make lint"),
        ("inline", ".venv/bin/pokewatch runs show 2026-11-28"),
        ("cron", "cd /path && scripts/run_pipeline.sh >> logs/pipeline.log 2>&1"),
        ("block", "export KEY=abc"),
        ("block", "pokewatch runs --limit 5"),
        ("block", "scripts/run_pipeline.sh --source tcgcsv --backfill 2025-09-21..2025-09-27"),
        ("block", "cat > env <<'ENV'"),
        ("block", "make help"),
    ]
    assert found[4].preamble == ("export KEY=abc",)
    assert "# kept: inside the heredoc" in found[6].raw
    assert docs.bare_tools(found[4].raw) == ["pokewatch"] and docs.bare_tools(found[5].raw) == []


def test_an_unregistered_command_fails_with_a_line_to_paste():
    message = registration_help([docs.Command("make newtarget", "README.md", 12, "inline")])
    assert "README.md:12:  'make newtarget': run()," in message and "not_run('reason')" in message


# --- running the commands ---------------------------------------------------------------------------

class DocsSandbox:
    """A clone of the working tree where documented commands run as a user would type them."""

    def __init__(self, parent: Path):
        self.root = snapshot(parent)
        self.home = parent / "home"
        self.home.mkdir()
        self.logs = parent / "server-logs"
        self.logs.mkdir()
        self.sources = tcgcsv_routes(RecordedServer()).__enter__()
        today = time.strftime("%Y/%m/%d")
        cards = fixture("pokemontcg/cards-base1-4.json").replace(b'"updatedAt": "2026/01/05"',
                                                                  f'"updatedAt": "{today}"'.encode())
        self.sources.route("/v2/cards", Reply(200, cards))  # today's prices: older ones are dropped as stale
        self.primary_port = _free_port()
        path = os.pathsep.join(p for p in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
                               if ".venv" not in p)
        keep = {k: v for k, v in os.environ.items()
                if not k.startswith(("POKEWATCH_", "POKEMON", "VIRTUAL_ENV", "PYTEST_", "REDIS_", "DASK_"))}
        self.env = {**keep, "PATH": path, "HOME": str(self.home), "TQDM_DISABLE": "1",
                    "POKEWATCH_RUNS_DIR": str(self.root / "runs"), "POKEWATCH_DATA_DIR": str(self.root / "data"),
                    "POKEWATCH_CACHE_DIR": str(self.root / ".cache" / "joblib"),
                    "POKEWATCH_TCGCSV_URL": self.sources.url, "POKEWATCH_POKEMONTCG_URL": self.sources.url,
                    "POKEWATCH_PPT_URL": self.sources.url, "POKEWATCH_HTTP_RETRIES": "1"}
        self.results: dict[str, subprocess.CompletedProcess] = {}
        self.servers: list[subprocess.Popen] = []
        self.lock = threading.Lock()

    def text(self, command: str, port: int | None = None) -> str:
        """The command with the documented ports replaced (see tests/docs_commands.py)."""
        command = command.replace(PRIMARY_PORT_TEXT, f"127.0.0.1:{self.primary_port}")
        return re.sub(r"--port \d+", f"--port {port}", command) if port else command

    def shell(self, command: docs.Command | str, timeout: float = 1200) -> subprocess.CompletedProcess:
        raw, preamble = (command.raw, command.preamble) if isinstance(command, docs.Command) else (command, ())
        script = "\n".join([*preamble, self.text(raw)])
        return subprocess.run(["bash", "-c", script], cwd=self.root, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def ensure(self, key: str) -> subprocess.CompletedProcess | None:
        """Run a command (documented, with its own needs, or a set-up line) once per session."""
        if key in self.results:
            return self.results[key]
        handling = docs.REGISTRY.get(key) if key in BY_KEY else None
        if handling is not None:
            for need in handling.needs:
                self.require(need)
        if handling is not None and handling.kind == "serve":
            result = self.start_server(BY_KEY[key], handling)
        else:
            result = self.shell(BY_KEY.get(key, key))
        self.results[key] = result
        return result

    def require(self, key: str) -> None:
        result = self.ensure(key)
        assert result.returncode == 0, f"needed command failed: {key}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"

    def start_server(self, command: docs.Command, handling: docs.Handling) -> subprocess.CompletedProcess:
        port = self.primary_port if handling.primary else _free_port()
        log = self.logs / f"{port}.log"
        with log.open("w") as out:
            process = subprocess.Popen(["bash", "-c", "\n".join([*command.preamble, self.text(command.raw, port)])],
                                       cwd=self.root, env={**self.env, "POKEWATCH_API_PORT": str(port)},
                                       stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.servers.append(process)
        status = _wait_for_health(port, process)
        if not handling.primary:
            _stop(process)
        return subprocess.CompletedProcess(command.raw, 0 if status else 1, f"/health answered {status}",
                                           log.read_text())

    def close(self) -> None:
        for process in self.servers:
            _stop(process)
        self.sources.__exit__(None, None, None)


def _wait_for_health(port: int, process: subprocess.Popen, seconds: float = 90) -> int | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                return answer.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            time.sleep(0.5)
    return None


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    problem = venv_problem()
    if problem:
        pytest.fail(problem)
    box = DocsSandbox(tmp_path_factory.mktemp("docs"))
    yield box
    box.close()


def is_slow(key: str) -> bool:
    """Whether running ``key`` (with its needs) takes more than a few seconds."""
    handling = docs.REGISTRY.get(key)
    if handling is None:
        return key in docs.SLOW_SETUP
    return handling.slow or any(is_slow(need) for need in handling.needs)


def _runnable():
    for key, handling in docs.REGISTRY.items():
        if handling.kind not in ("run", "serve") or key not in BY_KEY:
            continue
        marks = [pytest.mark.slow] if is_slow(key) else []
        if handling.known_failure:
            marks.append(pytest.mark.xfail(reason=handling.known_failure, strict=False))
        if handling.shared:
            marks.append(pytest.mark.timeout(1800))
        yield pytest.param(key, marks=marks, id=f"{BY_KEY[key].where} {key[:60]}")


@pytest.mark.parametrize("key", list(_runnable()))
def test_documented_command_works_as_written(key, sandbox, tmp_path):
    handling = docs.REGISTRY[key]
    if handling.shared and not (sandbox.root.parent / "shared" / "data").is_dir():
        pytest.skip("../shared/data is not present beside this checkout")
    if handling.alone:
        box = DocsSandbox(tmp_path)
        try:
            result = box.ensure(key)
            check = box.shell(handling.then) if handling.then and result.returncode == 0 else None
        finally:
            box.close()
    else:
        result = sandbox.ensure(key)
        check = sandbox.shell(handling.then) if handling.then and result.returncode == 0 else None
    output = result.stdout + result.stderr
    assert result.returncode == handling.status, f"{key}\nexit {result.returncode}\n{output[-4000:]}"
    if handling.expect:
        assert re.search(handling.expect, output, re.M), f"{key}: output does not match {handling.expect!r}\n" \
                                                         f"{output[-4000:]}"
    if check is not None:
        assert check.returncode == 0, f"{key}: afterwards, `{handling.then}` failed\n{check.stdout}{check.stderr}"


# --- commands exercised by their own tests --------------------------------------------------------------

def _readme_cron_command() -> str:
    lines = [c for c in COMMANDS if c.kind == "cron" and c.doc == "README.md"]
    assert len(lines) == 1, "README.md should give exactly one crontab line"
    return lines[0].raw


@pytest.fixture(scope="module")
def cron_run(tmp_path_factory):
    """The README's crontab command, run under ``env -i`` from ``/`` in a clone of the working tree.

    ``env -i`` leaves no PATH, HOME or venv. The only variables given are the three
    POKEWATCH_*_DIR ones, pointing at the clone's own runs/, data/ and .cache/: that is where
    they point by default in a clone with its own venv; this clone shares the checkout's venv,
    whose editable install would otherwise write into the checkout.
    """
    clone = snapshot(tmp_path_factory.mktemp("cron"))
    command = _readme_cron_command()
    assert "/path/to/pokewatch" in command
    command = command.replace("/path/to/pokewatch", str(clone))
    dirs = [f"POKEWATCH_RUNS_DIR={clone / 'runs'}", f"POKEWATCH_DATA_DIR={clone / 'data'}",
            f"POKEWATCH_CACHE_DIR={clone / '.cache' / 'joblib'}"]
    result = subprocess.run(["env", "-i", *dirs, "/bin/bash", "-c", command], cwd="/", capture_output=True,
                            text=True, timeout=900)
    return clone, result


@pytest.mark.slow
def test_the_readme_cron_line_runs_under_env_i_from_the_root(cron_run):
    clone, result = cron_run
    log = (clone / "logs" / "pipeline.log").read_text()
    assert result.returncode == 0, result.stdout + result.stderr + log[-4000:]
    assert result.stdout == result.stderr == "", "everything goes to logs/pipeline.log"
    assert re.search(r"run \d{4}-\d\d-\d\d succeeded", log)
    latest = RunFolder(clone / "runs" / LATEST)
    assert latest.manifest.is_file()
    assert json.loads(latest.manifest.read_text())["status"] == "success"
    tail = subprocess.run(["tail", "-n", "20", "logs/pipeline.log"], cwd=clone, capture_output=True, text=True)
    assert tail.returncode == 0 and "succeeded" in tail.stdout  # automation guide, section 10
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout
    assert status == "", f"the cron run left files git sees:\n{status}"


@pytest.mark.slow
def test_the_cron_log_has_a_timestamp_on_every_line_and_no_warning_or_traceback(cron_run):
    clone, _ = cron_run
    lines = (clone / "logs" / "pipeline.log").read_text().splitlines()
    untimed = [line for line in lines if not re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", line)]
    noisy = [line for line in lines if re.search(r"warning|traceback|error", line, re.I)]
    assert not untimed, f"{len(untimed)} of {len(lines)} log lines have no timestamp, e.g. {untimed[:5]}"
    assert not noisy, f"warning/traceback lines in a successful run's log: {noisy[:5]}"


@pytest.mark.slow
def test_nbval_over_the_notebooks_passes_by_itself_in_a_clone(tmp_path):
    """README: `.venv/bin/python -m pytest --nbval-lax notebooks/`, as written, writes nothing into the clone."""
    clone = snapshot(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POKEWATCH_", "PYTEST_"))}
    result = subprocess.run(["bash", "-c", ".venv/bin/python -m pytest --nbval-lax notebooks/"], cwd=clone, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert re.search(r"\d+ passed", result.stdout) and "failed" not in result.stdout.splitlines()[-1]
    status = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=clone, capture_output=True,
                            text=True).stdout
    written = [line for line in status.splitlines() if re.search(r" (runs|data|\.cache)/", line)]
    assert not written, f"nbval wrote into the clone's runs/, data/ or cache: {written}"


class _Webhook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):
        _Webhook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_failure_alert_of_the_automation_guide_posts_to_the_webhook():
    """The `|| .venv/bin/python -c "..."` part of the guide's failure-alert crontab line, against a local webhook."""
    line = next(c.raw for c in COMMANDS if c.kind == "cron" and "alerts.post_json" in c.raw)
    alert = re.search(r"\|\| (\.venv/bin/python -c \"[^\"]+\")", line).group(1)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {**os.environ, "POKEWATCH_WEBHOOK_URL": f"http://127.0.0.1:{server.server_port}/hook"}
        result = subprocess.run(["bash", "-c", alert], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    assert _Webhook.received and "PokeWatch pipeline FAILED on" in json.dumps(_Webhook.received[-1])
