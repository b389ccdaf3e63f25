"""The pipeline's API hook, ``pokewatch notify health|reload``, against a live server."""
from __future__ import annotations

import pytest
from api_fixtures import ADMIN_KEY, KEY, LiveServer, demo_model, publish_run, settings
from redis_server import free_port

from pokewatch.api.app import create_app
from pokewatch.run import model_file
from pokewatch.cli.main import main


@pytest.fixture
def runs_root(tmp_path):
    publish_run(tmp_path)
    return tmp_path


@pytest.fixture
def server(runs_root):
    with LiveServer(create_app(settings(runs_root))) as server:
        yield server


def run(monkeypatch, capsys, action, url=None, key=None):
    for name, value in (("POKEWATCH_API_URL", url), ("POKEWATCH_API_KEY", key)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    status = main(["notify", action, "--timeout", "5"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1, "notify prints exactly one line"
    return status, lines[0]


def test_health_reports_the_served_run(monkeypatch, capsys, server):
    status, line = run(monkeypatch, capsys, "health", server.url)
    assert status == 0
    assert line.startswith("api health: ok, serving run 2026-11-28")


def test_reload_switches_the_server_to_the_new_run(monkeypatch, capsys, server, runs_root):
    publish_run(runs_root, "2026-11-29", demo_model("2026-11-29"))
    status, line = run(monkeypatch, capsys, "reload", server.url, ADMIN_KEY)
    assert status == 0
    assert "now serving run 2026-11-29 (was 2026-11-28)" in line
    assert ADMIN_KEY not in line
    status, line = run(monkeypatch, capsys, "reload", server.url, ADMIN_KEY)
    assert (status, "already serving run 2026-11-29" in line) == (0, True)


def test_reload_with_a_reader_key_fails_and_says_an_admin_key_is_needed(monkeypatch, capsys, server):
    status, line = run(monkeypatch, capsys, "reload", server.url, KEY)
    assert status == 1
    assert "HTTP 403" in line and "admin role" in line and KEY not in line


def test_reload_and_health_fail_when_the_newest_run_cannot_be_served(monkeypatch, capsys, server, runs_root):
    model_file.path_in(publish_run(runs_root, "2026-11-29")).write_bytes(b"garbage")
    status, line = run(monkeypatch, capsys, "reload", server.url, ADMIN_KEY)
    assert status == 1
    assert "newest run 2026-11-29 cannot be served" in line and "serving run 2026-11-28 instead" in line
    status, line = run(monkeypatch, capsys, "health", server.url)
    assert status == 1 and "cannot be served" in line


def test_reload_with_a_wrong_key_fails(monkeypatch, capsys, server):
    status, line = run(monkeypatch, capsys, "reload", server.url, "pwk_" + "x" * 43)
    assert status == 1
    assert "HTTP 401" in line and "x" * 43 not in line


def test_reload_without_a_key_is_a_usage_error(monkeypatch, capsys, server):
    status, line = run(monkeypatch, capsys, "reload", server.url)
    assert status == 2
    assert "POKEWATCH_API_KEY is not set" in line


def test_health_fails_while_no_run_is_served(monkeypatch, capsys, tmp_path):
    with LiveServer(create_app(settings(tmp_path / "empty"))) as server:
        status, line = run(monkeypatch, capsys, "health", server.url)
    assert status == 1
    assert "HTTP 503" in line and "no good run yet" in line


def test_an_unreachable_api_fails_in_one_line(monkeypatch, capsys):
    status, line = run(monkeypatch, capsys, "health", f"http://127.0.0.1:{free_port()}")
    assert status == 1
    assert "cannot reach http://127.0.0.1:" in line


def test_a_missing_or_odd_url_is_a_usage_error(monkeypatch, capsys):
    assert run(monkeypatch, capsys, "health")[0] == 2
    status, line = run(monkeypatch, capsys, "health", "ftp://user:secret@host/")
    assert status == 2 and "secret" not in line
