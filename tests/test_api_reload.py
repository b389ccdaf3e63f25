"""Switching the served run: POST /reload, workers following runs/latest, and traffic meanwhile."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from api_fixtures import KEY, LiveServer, demo_model, make_client, publish_run, settings, some_card

from pokewatch.api.app import create_app

AUTH = {"X-API-Key": KEY}
NEXT_DAY = "2026-11-29"


@pytest.fixture
def runs_root(tmp_path):
    publish_run(tmp_path)
    return tmp_path


def unlimited(runs_root, **overrides):
    return settings(runs_root, rate_limit_per_minute=10_000_000, rate_limit_burst=1_000_000, **overrides)


def test_reload_switches_to_the_newest_good_run(runs_root):
    with make_client(create_app(unlimited(runs_root))) as client:
        assert client.get("/health").json()["run_date"] == "2026-11-28"
        assert client.post("/reload", headers=AUTH).json()["status"] == "unchanged"
        publish_run(runs_root, NEXT_DAY, demo_model(NEXT_DAY))
        answer = client.post("/reload", headers=AUTH)
        assert answer.status_code == 200
        assert answer.json() == {"status": "reloaded", "run_date": NEXT_DAY,
                                 "previous_run_date": "2026-11-28"}
        assert client.get("/health").json()["fitted_through"] == NEXT_DAY


def test_reload_without_any_run_is_503(tmp_path):
    with make_client(create_app(settings(tmp_path))) as client:
        answer = client.post("/reload", headers=AUTH)
        assert answer.status_code == 503
        assert answer.json()["error"] == "no_run"


def test_an_unreadable_newest_run_keeps_the_current_one_served(runs_root):
    with make_client(create_app(unlimited(runs_root))) as client:
        broken = publish_run(runs_root, NEXT_DAY)
        (broken / "model.joblib").write_bytes(b"not a pickle")
        answer = client.post("/reload", headers=AUTH)
        assert answer.status_code == 503
        assert answer.json()["error"] == "run_unservable"
        assert "cannot be read" in answer.json()["detail"]
        assert client.get("/health").json()["run_date"] == "2026-11-28"
        assert client.get("/fair_price", params={"card_id": some_card()["card_id"]},
                          headers=AUTH).status_code == 200


def test_workers_follow_runs_latest_without_a_reload_call(runs_root):
    with make_client(create_app(unlimited(runs_root, reload_check_seconds=0.1))) as client:
        publish_run(runs_root, NEXT_DAY, demo_model(NEXT_DAY))
        deadline = time.monotonic() + 5
        while client.get("/health").json()["run_date"] != NEXT_DAY:
            assert time.monotonic() < deadline, "the worker did not pick up the new run"
            time.sleep(0.05)


def test_reload_during_traffic_drops_no_request(runs_root, monkeypatch):
    """Eight clients hammer a real uvicorn server while the run is switched twice."""
    from pokewatch.api import model_holder

    slow_load = model_holder.LoadedRun.from_folder

    def from_folder(folder):   # a slower disk: loading overlaps many requests
        time.sleep(0.3)
        return slow_load(folder)

    monkeypatch.setattr(model_holder.LoadedRun, "from_folder", staticmethod(from_folder))
    card = some_card()["card_id"]
    seen: list[tuple[int, str | None]] = []
    stop = threading.Event()

    with LiveServer(create_app(unlimited(runs_root))) as server:
        def hammer() -> None:
            with httpx.Client(base_url=server.url, headers=AUTH, timeout=10) as http:
                while not stop.is_set():
                    answer = http.get("/fair_price", params={"card_id": card})
                    seen.append((answer.status_code, answer.json().get("run_date")))

        with ThreadPoolExecutor(8) as pool:
            for _ in range(8):
                pool.submit(hammer)
            time.sleep(0.3)
            publish_run(runs_root, NEXT_DAY, demo_model(NEXT_DAY))
            with httpx.Client(base_url=server.url, headers=AUTH, timeout=10) as http:
                first = http.post("/reload")
                time.sleep(0.2)
                second = http.post("/reload")
            time.sleep(0.3)
            stop.set()

    assert first.status_code == second.status_code == 200
    assert first.json()["run_date"] == NEXT_DAY
    statuses = {status for status, _ in seen}
    assert statuses == {200}, f"failed requests during reload: {statuses}"
    dates = [run_date for _, run_date in seen]
    assert dates[0] == "2026-11-28" and dates[-1] == NEXT_DAY
    assert len(seen) > 50
