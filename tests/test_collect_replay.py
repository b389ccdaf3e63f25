"""``pokewatch collect``: direct collects, ``--replay`` after a parser fix, and keys never written anywhere."""
from __future__ import annotations

import gzip
import logging
from pathlib import Path

import pandas as pd
import pytest
from sources_server import RecordedServer, Reply, fast_http, fixture, isolate_data, tcgcsv_routes

from pokewatch.cli.main import build_parser, main
from pokewatch.data.sources import tcgcsv
from pokewatch.data.store import PriceStore

DAY = "2026-01-05"
PTCG_KEY = "ptcg-FAKE-key-5f1e2d"
PPT_KEY = "ppt-FAKE-key-9a8b7c"


@pytest.fixture
def server(monkeypatch, tmp_path):
    fast_http(monkeypatch)
    isolate_data(monkeypatch, tmp_path)
    with RecordedServer() as srv:
        for name, path in (("TCGCSV", ""), ("POKEMONTCG", ""), ("PPT", "/api/v2")):
            monkeypatch.setenv(f"POKEWATCH_{name}_URL", srv.url + path)
        yield srv


def cli(*args: str) -> int:
    return main(["collect", *args])


def test_help_explains_collect_backfill_and_replay(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["collect", "--help"])
    text = capsys.readouterr().out
    for expected in ("--replay RUN_DIR", "--backfill FROM..TO", "--archives DIR_OR_URL", "pokewatch collect --replay",
                     "POKEMONTCG_API_KEY", "TQDM_DISABLE"):
        assert expected in text


def test_a_direct_collect_prints_a_summary(server, tmp_path, capsys):
    tcgcsv_routes(server)

    status = cli("--source", "tcgcsv", "--date", DAY, "--run-dir", str(tmp_path / "run"))

    out = capsys.readouterr().out
    assert status == 0
    assert "rows: 4 valid, 1 rejected {'missing_price': 1}" in out and "completeness 100% of 7 item(s)" in out


def test_replay_after_a_parser_fix_repairs_the_stored_rows_without_the_network(server, tmp_path, monkeypatch, capsys):
    tcgcsv_routes(server)
    real_price_rows = tcgcsv.price_rows
    monkeypatch.setattr(tcgcsv, "price_rows", lambda by_group, date: real_price_rows(by_group, date).head(1))
    assert cli("--source", "tcgcsv", "--date", DAY, "--run-dir", str(tmp_path / "run")) == 0
    store = PriceStore.default()
    assert len(store.load("tcgcsv")) == 1  # the buggy parser lost rows ...
    monkeypatch.setattr(tcgcsv, "price_rows", real_price_rows)  # ... the parser is fixed
    requests_before = len(server.requests)

    status = cli("--replay", str(tmp_path / "run"))

    assert status == 0 and len(server.requests) == requests_before
    assert len(store.load("tcgcsv")) == 4
    assert "collected tcgcsv 2026-01-05..2026-01-05" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--source", "tcgcsv", "--backfill", "2026-01-05"], "--backfill must be FROM..TO"),
    (["--source", "tcgcsv", "--backfill", "2026-01-05..2026-01-01"], "TO is before FROM"),
    (["--source", "file", "--param", "input_path"], "--param must be NAME=VALUE"),
    (["--date", DAY], "pass --source NAME"),
])
def test_bad_arguments_are_one_line_errors(server, args, message, capsys):
    assert cli(*args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_replay_of_a_folder_without_raw_responses_is_a_clear_error(server, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli("--replay", str(tmp_path / "empty")) == 2
    assert "holds raw responses for no source" in capsys.readouterr().err


def test_the_file_source_through_the_cli_with_the_pipeline_param_names(server, tmp_path, capsys):
    status = cli("--source", "file", "--backfill", "2026-01-03..2026-01-05", "--run-dir", str(tmp_path / "run"),
                 "--param", f"input_path={fixture_path('file/tracker.json')}")

    assert status == 0 and "rows: 5 valid" in capsys.readouterr().out


def fixture_path(relative: str) -> Path:
    return Path(__file__).resolve().parent / "fixtures" / "sources" / relative


def _all_text(root: Path) -> str:
    """Every file under ``root`` as text: gz decompressed, Parquet rendered as CSV."""
    parts = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        if path.suffix == ".parquet":
            data = pd.read_parquet(path).to_csv().encode()
        parts.append(f"--- {path}\n" + data.decode("utf-8", "replace"))
    return "\n".join(parts)


def test_no_api_key_is_ever_written_to_the_run_folder_store_or_logs(server, tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.setenv("POKEMONTCG_API_KEY", PTCG_KEY)
    monkeypatch.setenv("POKEMONPRICETRACKER_API_KEY", PPT_KEY)
    server.route("/v2/cards", Reply(200, fixture("pokemontcg/cards-base1-4.json")))
    server.route("/api/v2/cards", Reply(200, fixture("pokemonpricetracker/card-517045.json")),
                 query={"tcgPlayerId": "517045"})
    # an API that echoes the key back in an error body, and a 429 page
    server.route("/api/v2/cards", Reply(500, {"error": f"bad request from key {PPT_KEY}"}), query={"tcgPlayerId": "1"})
    server.route("/api/v2/cards", Reply(429, {"message": f"quota of {PPT_KEY} spent"}), query={"tcgPlayerId": "2"})
    caplog.set_level(logging.DEBUG)

    assert main(["-v", "collect", "--source", "pokemontcg", "--date", DAY, "--param", "q=id:base1-4",
                 "--run-dir", str(tmp_path / "runs" / "ptcg")]) == 0
    assert main(["-v", "collect", "--source", "pokemonpricetracker", "--date", DAY, "--min-completeness", "0",
                 "--param", "tcgplayer_id=517045,1,2", "--run-dir", str(tmp_path / "runs" / "ppt")]) == 0
    assert cli("--replay", str(tmp_path / "runs" / "ppt")) == 0

    assert server.requests_to("/v2/cards")[0].headers["X-Api-Key"] == PTCG_KEY  # the keys were used ...
    assert server.requests_to("/api/v2/cards")[0].headers["Authorization"] == f"Bearer {PPT_KEY}"
    output = capsys.readouterr()
    written = _all_text(tmp_path) + caplog.text + output.out + output.err
    assert "ptcg-FAKE" in PTCG_KEY and len(written) > 10_000
    for key in (PTCG_KEY, PPT_KEY):  # ... and appear nowhere
        assert key not in written
    assert "***" in written  # what was redacted is visibly marked
