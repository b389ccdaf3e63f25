"""``pokewatch keys`` and ``pokewatch serve``, including one real server run end to end."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from api_fixtures import ADMIN_KEY, KEY, demo_model, publish_run
from redis_server import free_port

from pokewatch.api.security import key_id
from pokewatch.cli import main as cli


def test_keys_new_prints_a_key_its_log_id_and_how_to_install_it(capsys):
    assert cli.main(["keys", "new"]) == 0
    out = capsys.readouterr().out
    key = next(word for word in out.split() if word.startswith("pwk_"))
    assert len(key) == 47
    assert f"(log id {key_id(key)}, role reader)" in out
    assert f'export POKEWATCH_API_KEYS="{key}"' in out
    assert "POKEWATCH_API_KEY_FILE" in out


def test_keys_new_quiet_prints_only_keys_for_a_key_file(capsys):
    assert cli.main(["keys", "new", "--count", "3", "--quiet"]) == 0
    keys = capsys.readouterr().out.split()
    assert len(keys) == 3 == len(set(keys)) and all(k.startswith("pwk_") for k in keys)


def test_keys_new_admin_prints_key_file_lines_with_the_role(capsys):
    assert cli.main(["keys", "new", "--role", "admin", "--count", "2", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith("pwk_") and line.endswith(" admin") for line in lines)
    assert cli.main(["keys", "new", "--role", "admin"]) == 0
    out = capsys.readouterr().out
    assert "export POKEWATCH_API_ADMIN_KEYS=" in out and "role admin" in out


def test_keys_id_accepts_key_file_lines_with_a_role(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"# comment\n{KEY} admin\n"))
    assert cli.main(["keys", "id"]) == 0
    assert capsys.readouterr().out.strip() == key_id(KEY)


def test_keys_id_reads_keys_from_stdin(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{KEY}\n"))
    assert cli.main(["keys", "id"]) == 0
    assert capsys.readouterr().out.strip() == key_id(KEY)


def test_serve_refuses_bad_settings_in_one_line(capsys, monkeypatch):
    monkeypatch.setenv("POKEWATCH_CORS_ORIGINS", "*")
    monkeypatch.setenv("POKEWATCH_CORS_ALLOW_CREDENTIALS", "true")
    assert cli.main(["serve", "--port", str(free_port())]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pokewatch: error:") and "cannot be combined" in err and "\n" not in err


def test_serve_refuses_a_bad_port(capsys):
    assert cli.main(["serve", "--port", "70000"]) == 2


@pytest.mark.timeout(60)
def test_pokewatch_serve_answers_and_the_pipeline_hooks_work(tmp_path):
    """`pokewatch serve` as the pipeline meets it: health, reload, JSON logs without keys."""
    runs_root = tmp_path / "runs"
    publish_run(runs_root)
    port = free_port()
    env = {**os.environ, "POKEWATCH_API_KEYS": KEY, "POKEWATCH_API_ADMIN_KEYS": ADMIN_KEY,
           "POKEWATCH_API_URL": f"http://127.0.0.1:{port}", "POKEWATCH_API_KEY": ADMIN_KEY}
    env.pop("REDIS_URL", None)
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        server = subprocess.Popen([sys.executable, "-m", "pokewatch", "serve", "--port", str(port),
                                   "--runs-dir", str(runs_root)], env=env, stdout=sink, stderr=sink)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as answer:
                    assert json.load(answer)["run_date"] == "2026-11-28"
                    break
            except OSError:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "pokewatch serve did not start"
                time.sleep(0.1)
        publish_run(runs_root, "2026-11-29", demo_model("2026-11-29"))
        notify = [sys.executable, "-m", "pokewatch", "notify"]
        reload = subprocess.run([*notify, "reload"], env=env, capture_output=True, text=True, timeout=30, check=False)
        health = subprocess.run([*notify, "health"], env=env, capture_output=True, text=True, timeout=30, check=False)
        assert reload.returncode == 0, reload.stdout + reload.stderr
        assert "now serving run 2026-11-29" in reload.stdout
        assert health.returncode == 0 and "serving run 2026-11-29" in health.stdout
    finally:
        server.terminate()
        server.wait(timeout=15)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = [entry for entry in lines if entry["logger"] == "pokewatch.api.access"]
    assert any(e["path"] == "/reload" and e["status"] == 200 and e["key_id"] == key_id(ADMIN_KEY) for e in access)
    assert KEY not in log.read_text() and ADMIN_KEY not in log.read_text()
