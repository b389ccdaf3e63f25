"""Switching the served run: POST /reload, workers following runs/latest, and traffic meanwhile."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from api_fixtures import ADMIN_KEY, KEY, LiveServer, demo_model, make_client, publish_run, settings, some_card

from pokewatch.api.app import create_app
from pokewatch.run.folder import RunFolder

AUTH = {"X-API-Key": KEY}
ADMIN = {"X-API-Key": ADMIN_KEY}
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
        assert client.post("/reload", headers=ADMIN).json()["status"] == "unchanged"
        publish_run(runs_root, NEXT_DAY, demo_model(NEXT_DAY))
        answer = client.post("/reload", headers=ADMIN)
        assert answer.status_code == 200
        assert answer.json() == {"status": "reloaded", "run_date": NEXT_DAY,
                                 "previous_run_date": "2026-11-28", "newest_run_unreadable": None}
        assert client.get("/health").json()["fitted_through"] == NEXT_DAY


def test_reload_without_any_run_is_503(tmp_path):
    with make_client(create_app(settings(tmp_path))) as client:
        answer = client.post("/reload", headers=ADMIN)
        assert answer.status_code == 503
        assert answer.json()["error"] == "no_run"


def break_model(run_dir, garbage: bytes = b"not a pickle") -> None:
    RunFolder(run_dir).model.write_bytes(garbage)


def test_a_garbage_newest_model_is_skipped_on_reload_and_health_says_so(runs_root):
    with make_client(create_app(unlimited(runs_root))) as client:
        broken = publish_run(runs_root, NEXT_DAY)
        break_model(broken)
        answer = client.post("/reload", headers=ADMIN)
        assert answer.status_code == 200
        assert answer.json()["status"] == "unchanged" and answer.json()["run_date"] == "2026-11-28"
        skipped = answer.json()["newest_run_unreadable"]
        assert skipped["run_date"] == NEXT_DAY and skipped["run"] == broken.name
        assert "cannot be read" in skipped["detail"] and "re-run the pipeline" in skipped["detail"]
        health = client.get("/health").json()
        assert health["status"] == "degraded" and health["run_date"] == "2026-11-28"
        assert health["newest_run_unreadable"] == skipped
        assert client.get("/fair_price", params={"card_id": some_card()["card_id"]},
                          headers=AUTH).status_code == 200


def test_the_server_starts_on_the_newest_readable_run_when_the_newest_is_garbage(runs_root):
    break_model(publish_run(runs_root, NEXT_DAY))
    with make_client(create_app(unlimited(runs_root))) as client:
        health = client.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "degraded" and health.json()["run_date"] == "2026-11-28"
        assert health.json()["newest_run_unreadable"]["run_date"] == NEXT_DAY


@pytest.mark.parametrize("garbage", [b"", b"\x80\x04\x95garbage", b"PK\x03\x04" + bytes(100)])
def test_the_fallback_skips_every_unreadable_run_newest_first(tmp_path, garbage):
    publish_run(tmp_path, "2026-11-27")
    break_model(publish_run(tmp_path, "2026-11-28"), garbage)
    break_model(publish_run(tmp_path, NEXT_DAY), garbage)
    with make_client(create_app(unlimited(tmp_path))) as client:
        health = client.get("/health").json()
        assert (health["status"], health["run_date"]) == ("degraded", "2026-11-27")
        assert health["newest_run_unreadable"]["run_date"] == NEXT_DAY


def test_a_model_of_the_wrong_type_counts_as_unreadable(runs_root):
    import joblib

    joblib.dump({"not": "a model"}, RunFolder(publish_run(runs_root, NEXT_DAY)).model)
    with make_client(create_app(unlimited(runs_root))) as client:
        health = client.get("/health").json()
        assert health["run_date"] == "2026-11-28"
        assert "not a fitted FairValueModel" in health["newest_run_unreadable"]["detail"]


def test_runs_dated_after_latest_are_never_a_fallback(tmp_path):
    """A stray future run (published, but not 'latest') is not served when latest is garbage."""
    from pokewatch.run import runs

    publish_run(tmp_path, "2026-11-27")
    publish_run(tmp_path, "2026-12-30", demo_model(NEXT_DAY))
    break_model(publish_run(tmp_path, "2026-11-28"))
    runs._swap_symlink(tmp_path / runs.LATEST, "2026-11-28")   # what runs' future-date fix will do
    with make_client(create_app(unlimited(tmp_path))) as client:
        assert client.get("/health").json()["run_date"] == "2026-11-27"


def test_when_no_run_loads_health_says_unservable_not_no_run(tmp_path):
    break_model(publish_run(tmp_path))
    with make_client(create_app(unlimited(tmp_path))) as client:
        health = client.get("/health")
        assert health.status_code == 503
        assert health.json()["error"] == "run_unservable"
        assert "cannot be read" in health.json()["detail"] and "no older run" in health.json()["detail"]
        answer = client.get("/cards", headers=AUTH)
        assert (answer.status_code, answer.json()["error"]) == (503, "run_unservable")


def test_a_repaired_newest_run_is_served_after_reload(runs_root):
    with make_client(create_app(unlimited(runs_root))) as client:
        broken = publish_run(runs_root, NEXT_DAY, demo_model(NEXT_DAY))
        break_model(broken)
        assert client.post("/reload", headers=ADMIN).json()["newest_run_unreadable"] is not None
        import joblib

        joblib.dump(demo_model(NEXT_DAY), RunFolder(broken).model)
        answer = client.post("/reload", headers=ADMIN).json()
        assert answer["run_date"] == NEXT_DAY and answer["newest_run_unreadable"] is None
        assert client.get("/health").json()["status"] == "ok"


def test_a_reader_key_may_not_reload(runs_root):
    with make_client(create_app(unlimited(runs_root))) as client:
        answer = client.post("/reload", headers=AUTH)
        assert answer.status_code == 403
        assert answer.json()["error"] == "forbidden"
        assert "admin role" in answer.json()["detail"] and "POKEWATCH_API_ADMIN_KEYS" in answer.json()["detail"]
        assert client.post("/reload", headers=ADMIN).status_code == 200


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
                first = http.post("/reload", headers=ADMIN)
                time.sleep(0.2)
                second = http.post("/reload", headers=ADMIN)
            time.sleep(0.3)
            stop.set()

    assert first.status_code == second.status_code == 200
    assert first.json()["run_date"] == NEXT_DAY
    statuses = {status for status, _ in seen}
    assert statuses == {200}, f"failed requests during reload: {statuses}"
    dates = [run_date for _, run_date in seen]
    assert dates[0] == "2026-11-28" and dates[-1] == NEXT_DAY
    assert len(seen) > 50
