"""Rerun the attacks of issue 11 against this checkout and print a table: attack, trials, held.

Why: the issue's holes (lost rows, leaked keys, future runs pinning ``latest``, parser
crashes, a 200,000-column CSV, formula injection, leaky HTTP budgets, crash bookkeeping,
late validation, misreported cache hits, and the API's) were found by attacking a fresh
clone. This script attacks this checkout the same way, the way a user meets each
piece: the collect step with real sources against a real local HTTP server
(``tests/sources_server.py``), ``scripts/run_pipeline.sh`` and ``python -m
pokewatch pipeline``, a real ``pokewatch serve`` (``tests/attack_api.py``), the disk cache.

Everything happens in a temporary folder (runs, store, cache, raw archive, temporary
files); the repository's runs/, data/ and logs/ are never touched, and nothing reaches
the network. It prints one Markdown row per attack and exits 0 only when every trial of
every attack held; what failed is printed on stderr::

    .venv/bin/python scripts/attack.py            # about 2.5 minutes on 2 busy cores
    .venv/bin/python scripts/attack.py --quick    # fewer trials and smaller API counts
    .venv/bin/python scripts/attack.py --only cache --only dates   # attacks whose name contains a word
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import fcntl
import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the project's real local servers: sources_server, attack_api

PIPELINE = REPO / "scripts" / "run_pipeline.sh"
DAY = "2026-01-05"
KEY = ["card_id", "variant", "currency", "date"]
#: pokemontcg options of every attack: no staleness cut for the fixed DAY, no client-side rate limit.
PTCG_OPTIONS = {"stale_days": 36_500, "rate_limit_per_minute": 100_000}
#: Card names an attacker would plant (issue 11, item 7), and more of the same kind.
HOSTILE = ["=cmd|' /C calc'!A0", "+SUM(1,2)", "@SUM(A1:A9)", "-2+3+cmd|' /C calc'!A0", "\t=1+1", "\r=1+1"]


@dataclass
class Outcome:
    """One attack's row: what it was, how many trials, how many held, and what failed."""

    attack: str
    trials: int = 0
    held: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def trial(self, ok: bool, what: str) -> bool:
        """Count one trial; remember ``what`` when it did not hold."""
        self.trials += 1
        self.held += bool(ok)
        if not ok:
            self.failures.append(what)
        return ok


# -- helpers ----------------------------------------------------------------------------------------
class Scratch:
    """The temporary root every attack works in (one sub-folder per attack)."""

    root: Path

    @classmethod
    def folder(cls, name: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=cls.root))
        return path


@contextlib.contextmanager
def env(**values: str | None) -> Iterator[None]:
    """Set (or, with None, remove) environment variables for the block."""
    saved = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def stored_keys(store, source: str) -> set[tuple]:
    frame = store.load(source)
    return set(frame[KEY].itertuples(index=False, name=None)) if len(frame) else set()


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def ptcg_card(set_id: str, number: int, price: float) -> dict:
    """A pokemontcg.io v2 card in the documented shape, with one TCGplayer ``normal`` price."""
    return {"id": f"{set_id}-{number}", "name": f"Card {number}", "number": str(number), "rarity": "Rare",
            "set": {"id": set_id, "name": f"Set {set_id}"},
            "tcgplayer": {"updatedAt": DAY.replace("-", "/"),
                          "prices": {"normal": {"market": price, "low": round(price * 0.9, 2)}}}}


def ptcg_page(cards: list) -> dict:
    return {"data": cards, "page": 1, "pageSize": 250, "count": len(cards), "totalCount": len(cards)}


def route_set(server, set_id: str, *replies) -> None:
    server.route("/v2/cards", *replies, query={"q": f"set.id:{set_id}", "page": "1"})


def write_prices_csv(path: Path, rows: list[tuple]) -> str:
    path.write_text("card_id,date,price\n" + "".join(f"{c},{d},{p}\n" for c, d, p in rows))
    return str(path)


def run_cli(args: list[str], *, extra_env: dict | None = None, timeout: float = 300,
            cwd: Path = REPO) -> tuple[subprocess.CompletedProcess, float]:
    """Run a command as a user would; its result and wall seconds."""
    started = time.monotonic()
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                            env={**os.environ, **(extra_env or {})})
    return result, time.monotonic() - started


def pokewatch_cli(*args: str, extra_env: dict | None = None) -> tuple[subprocess.CompletedProcess, float]:
    return run_cli([sys.executable, "-m", "pokewatch", *args], extra_env=extra_env)


class Home:
    """A runs folder, store, cache and TMPDIR of their own for ``scripts/run_pipeline.sh``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.runs = root / "runs"
        self.data = root / "data"
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.env = {"POKEWATCH_RUNS_DIR": str(self.runs), "POKEWATCH_DATA_DIR": str(self.data),
                    "POKEWATCH_CACHE_DIR": str(root / "cache"), "TQDM_DISABLE": "1", "TMPDIR": str(self.tmp)}

    def run(self, *args: str, timeout: float = 300) -> tuple[subprocess.CompletedProcess, float]:
        return run_cli(["bash", str(PIPELINE), *args], extra_env=self.env, timeout=timeout)

    def plan_files(self) -> list[str]:
        return sorted(p.name for p in self.tmp.glob("pokewatch-plan.*"))

    def attempts(self) -> list[str]:
        folder = self.runs / "attempts"
        return sorted(p.name for p in folder.iterdir()) if folder.exists() else []

    def latest(self) -> str | None:
        link = self.runs / "latest"
        return os.readlink(link) if link.is_symlink() else None


# -- 1, 2: a stored day is merged, never truncated ------------------------------------------------
def attack_partial_recollect(quick: bool) -> Outcome:
    """pokemontcg, 10 sets of 10 cards; each trial re-collects with one set answering 500."""
    from sources_server import RecordedServer, Reply

    from pokewatch.run.collect import collect
    from pokewatch.data.store import PriceStore

    out = Outcome("partial pokemontcg re-collect (1 of 10 sets answers 500) loses stored rows")
    root = Scratch.folder("recollect")
    sets = [f"atk{i}" for i in range(10)]
    with RecordedServer() as server, env(POKEWATCH_POKEMONTCG_URL=server.url, POKEWATCH_DATA_DIR=str(root / "data")):
        store = PriceStore(root / "store")
        for set_id in sets:
            route_set(server, set_id, Reply(200, ptcg_page([ptcg_card(set_id, n, 1.0 + n) for n in range(10)])))
        options = {**PTCG_OPTIONS, "set": ",".join(sets)}
        collect("pokemontcg", DAY, DAY, root / "run-0", store=store, options=options)
        before = stored_keys(store, "pokemontcg")
        if len(before) != 100:
            out.failures.append(f"the first collect stored {len(before)} rows, not 100")
        for trial in range(5 if quick else 10):
            failing = sets[trial % len(sets)]
            price = 50.0 + trial
            for set_id in sets:
                route_set(server, set_id, Reply(200, ptcg_page([ptcg_card(set_id, n, price) for n in range(10)])))
            route_set(server, failing, Reply(500, {"error": {"message": "down", "code": 500}}))
            try:
                result = collect("pokemontcg", DAY, DAY, root / f"run-{trial + 1}", store=store, options=options)
            except Exception as exc:  # noqa: BLE001 - an attack counts every failure
                out.trial(False, f"set {failing} down: collect raised {type(exc).__name__}: {exc}")
                continue
            stored = store.load("pokemontcg").set_index("card_id")["market_price"]
            lost = before - stored_keys(store, "pokemontcg")
            merged = stored.get(f"{sets[(trial + 1) % 10]}-3") == price  # a set that answered: updated
            out.trial(not lost and len(stored) == 100 and merged and bool(result.fetch.failures),
                      f"set {failing} down: {len(lost)} stored row(s) lost, {len(stored)} stored, "
                      f"others updated: {merged}")
    return out


def attack_partial_reimport(quick: bool) -> Outcome:
    """File source: 30 stored rows; re-import 1..5 cards of one day; then --replace-day through the CLI."""
    from pokewatch.run.collect import collect
    from pokewatch.data.store import PriceStore

    out = Outcome("partial file re-import loses stored rows; --replace-day removes silently")
    root = Scratch.folder("reimport")
    data = root / "data"
    with env(POKEWATCH_DATA_DIR=str(data)):
        store = PriceStore.default()
        thirty = [(f"sv3pt5-{card}", f"2026-01-0{day}", 1.0 + card + day / 10)
                  for card in range(1, 7) for day in range(1, 6)]
        collect("file", "2026-01-01", DAY, root / "run-0", store=store,
                options={"path": write_prices_csv(root / "all.csv", thirty)})
        before = stored_keys(store, "file")
        for k in range(1, 3 if quick else 6):
            path = write_prices_csv(root / f"some-{k}.csv", [(f"sv3pt5-{c}", DAY, 90.0 + k) for c in range(1, k + 1)])
            try:
                result = collect("file", DAY, DAY, root / f"run-{k}", store=store, options={"path": path})
            except Exception as exc:  # noqa: BLE001
                out.trial(False, f"re-import of {k} card(s) raised {type(exc).__name__}: {exc}")
                continue
            lost = before - stored_keys(store, "file")
            day = store.load("file", DAY, DAY).set_index("card_id")["market_price"]
            out.trial(not lost and result.rows_removed == 0 and day.get("sv3pt5-1") == 90.0 + k,
                      f"re-import of {k} card(s): {len(lost)} stored row(s) lost")
        one = write_prices_csv(root / "one.csv", [("sv3pt5-1", DAY, 50.0)])
        stored_that_day = store.day_rows("file", DAY)
        result, _ = pokewatch_cli("collect", "--source", "file", "--date", DAY, "--param", f"input_path={one}",
                                  "--replace-day", "--run-dir", str(root / "run-replace"),
                                  extra_env={"POKEWATCH_DATA_DIR": str(data)})
        removed = stored_that_day - 1
        said = f"removed {removed} stored row(s) not fetched again (--replace-day)"
        out.trial(result.returncode == 0 and said in result.stdout and store.day_rows("file", DAY) == 1
                  and len(store.load("file")) == 30 - removed,
                  f"pokewatch collect --replace-day: exit {result.returncode}, said {said!r}: {said in result.stdout}, "
                  f"{store.day_rows('file', DAY)} row(s) left that day\n{result.stdout[-400:]}{result.stderr[-400:]}")
    return out


# -- 3, 11: the API (tests/attack_api.py) ----------------------------------------------------------
def api_attacks(quick: bool) -> list[Outcome]:
    """Each attack of tests/attack_api.py against a real ``pokewatch serve``, as one row."""
    import attack_api

    outcomes = []
    for attack in attack_api.ATTACKS:
        started = time.monotonic()
        try:
            name, trials, held = attack(quick=quick)
            outcome = Outcome(name, trials, held)
            if held < trials:
                outcome.failures.append(f"{trials - held} of {trials} trial(s) did not hold (see {attack.__name__} "
                                        "in tests/attack_api.py)")
        except Exception as exc:  # noqa: BLE001
            outcome = Outcome(attack.__name__, 1, 0, [f"raised {type(exc).__name__}: {exc}"])
        outcome.seconds = time.monotonic() - started
        outcomes.append(outcome)
    return outcomes


# -- 4, 8, 10: the pipeline, run as a user runs it -----------------------------------------------
def _hostile_inputs(folder: Path, today: dt.date, days: int) -> tuple[Path, Path]:
    """A file-source price history whose names and ids are formulas, and a portfolio likewise."""
    rng = random.Random(11)
    lines = ["card_id,name,set_name,variant,date,price"]
    for card in range(24):
        card_id = "@SUM(1+1)" if card == 0 else f"atk-{card}"
        name = HOSTILE[card % len(HOSTILE)].replace('"', '""')
        price = 10.0 + card
        for day in range(days):
            price *= 1 + rng.gauss(0, 0.03)
            lines.append(f'{card_id},"{name}","=HYPERLINK(""http://x"")",Normal,'
                         f'{today - dt.timedelta(days=days - 1 - day)},{price:.2f}')
    lines.append(f'atk-1,"=rejected()",x,Normal,{today},-5')  # one rejected row, named like a formula
    prices = folder / "hostile-prices.csv"
    prices.write_text("\n".join(lines) + "\n")
    portfolio = folder / "hostile-portfolio.csv"
    portfolio.write_text("card_id,variant,quantity,purchase_price,purchase_date\n"
                         "@SUM(1+1),Normal,1,5,2026-01-01\natk-1,Normal,2,5,2026-01-01\n"
                         "=HYPERLINK(1),Normal,x,5,\n+cmd|' /C calc'!A0,Normal,1,abc,\n")
    return prices, portfolio


class PipelineStory:
    """One pipeline home, attacked in order, shared by the dates, injection and crash rows.

    1. a run is killed with SIGKILL while its collect runs (no trap runs);
    2. stale temporary files are planted, as killed writers leave them;
    3. a stray run for a future date is published the way one was before the fix;
    4. a real run for today (file source, formula-shaped names, a hostile portfolio) follows.
    """

    _done: PipelineStory | None = None

    @classmethod
    def get(cls) -> PipelineStory:
        if cls._done is None:
            cls._done = cls()
        return cls._done

    def __init__(self) -> None:
        from pokewatch import atomic
        from pokewatch.core import checks
        from pokewatch.run import runs

        self.home = Home(Scratch.folder("pipeline"))
        home = self.home
        self.today = checks.today()
        self.future = f"{self.today + dt.timedelta(days=200):%Y-%m-%d}"
        self.problems: list[str] = []
        # 1. killed mid-collect (in a TMPDIR of its own: a SIGKILL leaves its plan file, no trap can run)
        killed_tmp = home.root / "tmp-killed"
        killed_tmp.mkdir()
        process = subprocess.Popen(["bash", str(PIPELINE), "--param", "n_series=20", "--param", "history_days=30"],
                                   env={**os.environ, **home.env, "TMPDIR": str(killed_tmp)}, cwd=REPO,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        seen = []
        for line in process.stderr:
            seen.append(line)
            if "step collect: started" in line:
                break
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        process.stderr.close()
        self.killed = home.attempts()
        if len(self.killed) != 1:
            self.problems.append(f"the killed run left {self.killed} attempts: {''.join(seen)[-500:]}")
        # 2. stale temporary files, two hours old
        home.data.joinpath("store", "file").mkdir(parents=True, exist_ok=True)
        self.planted = [home.runs / f"{atomic.TEMP_PREFIX}latest.4242{atomic.TEMP_SUFFIX}",
                        home.data / "store" / "file" / f"{atomic.TEMP_PREFIX}day.parquet.x1{atomic.TEMP_SUFFIX}"]
        if self.killed:
            self.planted.append(home.runs / "attempts" / self.killed[0] /
                                f"{atomic.TEMP_PREFIX}prices.parquet.x2{atomic.TEMP_SUFFIX}")
        old = time.time() - 2 * 3600
        for path in self.planted:
            path.write_bytes(b"half a file")
            os.utime(path, (old, old))
        # 3. a stray future run, published as the attack published one before dates were checked
        stray = runs.start_run(self.future, {"stray": True}, home.runs)
        runs.publish(stray, home.runs)
        self.latest_after_stray = home.latest()
        # 4. today's real run
        prices, portfolio = _hostile_inputs(home.root, self.today, 120)
        self.run, self.run_seconds = home.run("--source", "file", "--param", f"input_path={prices}",
                                              "--param", "history_days=120", "--param", f"portfolio_file={portfolio}")
        if self.run.returncode != 0:
            self.problems.append(f"today's run exited {self.run.returncode}: {self.run.stderr[-1500:]}")


def attack_dates(quick: bool) -> Outcome:
    """Future and out-of-range --date values exit 2 quickly, writing nothing; a future run never is latest."""
    from pokewatch.core import checks
    from pokewatch.run import runs

    out = Outcome("stray future --date pins latest; out-of-range dates run on")
    story = PipelineStory.get()
    home = story.home
    today = checks.today()
    dates = [f"{today + dt.timedelta(days=2):%Y-%m-%d}", "2027-06-01" if dt.date(2027, 6, 1) > today + dt.timedelta(1)
             else f"{today + dt.timedelta(days=400):%Y-%m-%d}", "2262-04-11", "9999-12-31", ""]
    if not quick:
        dates += [f"{today + dt.timedelta(days=30):%Y-%m-%d}", "2262-04-12", "0001-01-01", "2026-02-30", "tomorrow"]
    for date in dates:
        latest, attempts = home.latest(), home.attempts()
        store_before = folder_bytes(home.data / "store")
        result, seconds = home.run("--date", date, timeout=120)
        out.trial(result.returncode == 2 and seconds < 20 and home.latest() == latest and home.attempts() == attempts
                  and folder_bytes(home.data / "store") == store_before and not home.plan_files(),
                  f"--date {date!r}: exit {result.returncode} in {seconds:.1f}s, latest {latest}->{home.latest()}, "
                  f"new attempts {sorted(set(home.attempts()) - set(attempts))}: {result.stderr[-300:]}")
    today_text = f"{today:%Y-%m-%d}"
    out.trial(story.latest_after_stray != story.future, f"publishing a stray run for {story.future} pointed latest "
              f"at {story.latest_after_stray}")
    out.trial(story.run.returncode == 0 and home.latest() == today_text
              and runs.latest_run(home.runs) == (home.runs / today_text).resolve(),
              f"after today's run latest is {home.latest()}, not {today_text}; " + "; ".join(story.problems))
    tomorrow = f"{today + dt.timedelta(days=1):%Y-%m-%d}"  # allowed as a run date, never as latest before its day
    runs.publish(runs.start_run(tomorrow, {"tomorrow": True}, home.runs), home.runs)
    out.trial(home.latest() == today_text, f"a published run for {tomorrow} moved latest to {home.latest()}")
    listed, _ = pokewatch_cli("runs", "--runs-dir", str(home.runs), extra_env=home.env)
    out.trial(listed.returncode == 0 and story.future not in listed.stdout.split("latest")[0][-40:],
              f"pokewatch runs: exit {listed.returncode}\n{listed.stdout[-400:]}{listed.stderr[-400:]}")
    return out


def _unsafe_cells(path: Path) -> list[str]:
    """Cells of a CSV a spreadsheet would run as formulas (a plain negative number is data, not one)."""
    from pokewatch.atomic import FORMULA_PREFIXES

    unsafe = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            for cell in row:
                if cell[:1] in FORMULA_PREFIXES:
                    try:
                        float(cell)
                    except ValueError:
                        unsafe.append(cell)
    return unsafe


def attack_formula_injection(quick: bool) -> Outcome:
    """Every CSV of today's hostile run, and ``pokewatch signals --csv``, carries no live formula."""
    out = Outcome("formula injection in signals/portfolio/rejected/track-record CSV")
    story = PipelineStory.get()
    if story.run.returncode != 0:
        out.trial(False, "; ".join(story.problems))
        return out
    from pokewatch.run.folder import LATEST, RunFolder

    run = RunFolder((story.home.runs / LATEST).resolve())
    for path in (run.signals, run.track_record, run.portfolio, run.portfolio_value, run.portfolio_rejected,
                 run.rejected_rows):
        name = path.name
        if not path.exists():
            out.trial(False, f"{name} was not written")
            continue
        unsafe = _unsafe_cells(path)
        out.trial(not unsafe, f"{name}: {len(unsafe)} live formula cell(s), e.g. {unsafe[:3]}")
    text = run.signals.read_text(encoding="utf-8")
    out.trial("'=cmd|" in text and "'@SUM(1+1)" in text, "signals.csv does not carry the hostile names, prefixed "
              "(the attack did not reach it)")
    shown, _ = pokewatch_cli("signals", "--signal", "HOLD", "--signal", "BUY", "--signal", "SELL", "--csv", "--limit",
                             "0", "--runs-dir", str(story.home.runs), extra_env=story.home.env)
    path = story.home.root / "signals-stdout.csv"
    path.write_text(shown.stdout, encoding="utf-8")
    unsafe = _unsafe_cells(path)
    out.trial(shown.returncode == 0 and not unsafe and "'=cmd|" in shown.stdout,
              f"pokewatch signals --csv: exit {shown.returncode}, live formulas {unsafe[:3]} {shown.stderr[-300:]}")
    return out


def attack_crash_bookkeeping(quick: bool) -> Outcome:
    """A killed attempt is marked abandoned, stale .tmp files go, plan files never leak, --wait-lock is checked,
    and the failure handler records a truncated notebook."""
    from pokewatch.run import runs
    from pokewatch.run.folder import ATTEMPTS, RunFolder

    out = Outcome("crash bookkeeping: killed attempt, stale .tmp, plan file, --wait-lock, truncated notebook")
    story = PipelineStory.get()
    home = story.home
    for attempt in story.killed:
        manifest = runs.read_manifest(home.runs / ATTEMPTS / attempt)
        out.trial(manifest.get("status") == "abandoned" and bool(manifest.get("abandoned_at"))
                  and f"marked {attempt} abandoned" in story.run.stderr,
                  f"killed attempt {attempt} is {manifest.get('status')!r} after the next run")
    if not story.killed:
        out.trial(False, "; ".join(story.problems))
    for path in story.planted:
        out.trial(not path.exists(), f"stale temporary file {path} was not removed at start-up")
    out.trial(not home.plan_files(), f"plan files left after today's run: {home.plan_files()}")
    for value in ("abc", "-1", "", "1e9", "5s"):
        result, seconds = home.run("--wait-lock", value, timeout=60)
        out.trial(result.returncode == 2 and "--wait-lock" in result.stderr and "holds" not in result.stderr
                  and not home.plan_files(), f"--wait-lock {value!r}: exit {result.returncode}: {result.stderr[-300:]}")
    with open(home.runs / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result, _ = home.run("--date", f"{story.today:%Y-%m-%d}", timeout=60)
    out.trial(result.returncode == 75 and not home.plan_files(),
              f"lock held: exit {result.returncode}, plan files left {home.plan_files()}")
    # a disk that filled up mid-write leaves a truncated notebook: the failure handler must still record the failure
    scratch = Scratch.folder("truncated")
    attempt = runs.start_run(DAY, {}, scratch / "runs")
    notebook = RunFolder(attempt).notebook("collect")
    notebook.write_text(json.dumps({"cells": [{"outputs": [{"output_type": "stream", "text": "x" * 500}]}]})[:300])
    log = RunFolder(attempt).log("collect")
    log.write_text("OSError: [Errno 28] No space left on device\n")
    result, _ = run_cli([sys.executable, "-m", "pokewatch", "pipeline", "fail", "--attempt", str(attempt),
                         "--step", "collect", "--notebook", str(notebook), "--log", str(log), "--message",
                         "exit status 1", "--no-index"], extra_env={"POKEWATCH_RUNS_DIR": str(scratch / "runs")})
    manifest = runs.read_manifest(attempt)
    out.trial(result.returncode == 0 and manifest.get("status") == "failed"
              and "No space left" in json.dumps(manifest.get("failure")),
              f"failure handler on a truncated notebook: exit {result.returncode}, status {manifest.get('status')}: "
              f"{result.stderr[-300:]}")
    return out


def attack_plan_validation(quick: bool) -> Outcome:
    """Bad parameter values exit 2 in the plan step, naming the parameter as typed, writing nothing."""
    out = Outcome("bad parameters reach the notebooks (plan step must exit 2 naming them)")
    home = Home(Scratch.folder("plan"))
    cases = [("eval_days=999999999", "eval_days"), ('source_options={"n_series":"abc"}', "n_series"),
             ("train_days=0", "train_days"), ("top_n=abc", "top_n"), ("seed=-1", "seed")]
    if not quick:
        cases += [("source_options=n_series:-5", "n_series"), ("history_days=1e9", "history_days"),
                  ("min_completeness=2", "min_completeness"), ('source_options={"nope":1}', "nope"),
                  ("horizon_days=-3", "horizon_days"), ("buy_threshold=nan", "buy_threshold")]
    for param, named in cases:
        result, seconds = home.run("--param", param, timeout=120)
        out.trial(result.returncode == 2 and named in result.stderr and seconds < 30 and not home.attempts()
                  and not (home.data / "store").exists() and not home.plan_files(),
                  f"--param {param}: exit {result.returncode} in {seconds:.1f}s, names {named}: "
                  f"{named in result.stderr}: {result.stderr[-300:]}")
    return out


# -- 5: malformed pokemontcg cards -------------------------------------------------------------------
WEIRD = ["$12.00", ["normal", 1.0], 7, None, {}, True, 1e308, -4, "", "2026-13-45", [{"market": 1}],
         {"market": "lots"}, float("nan")]
PATHS = [("tcgplayer", "prices"), ("tcgplayer", "updatedAt"), ("tcgplayer",), ("id",), ("set",), ("set", "id"),
         ("name",), ("tcgplayer", "prices", "normal"), ("tcgplayer", "prices", "normal", "market"),
         ("cardmarket",), ("cardmarket", "prices"), ("cardmarket", "prices", "trendPrice"), ("cardmarket", "updatedAt")]


def _mutated(card: dict, rng: random.Random) -> dict:
    """``card`` with one to three fields replaced by odd values or removed."""
    card = json.loads(json.dumps(card))
    card["cardmarket"] = {"updatedAt": DAY.replace("-", "/"), "prices": {"trendPrice": 2.0, "avg7": 2.1}}
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(PATHS)
        parent = card
        for step in path[:-1]:
            if not isinstance(parent.get(step) if isinstance(parent, dict) else None, dict):
                break
            parent = parent[step]
        else:
            if rng.random() < 0.2:
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = rng.choice(WEIRD)
    return card


def attack_malformed_cards(quick: bool) -> Outcome:
    """Generated card shapes (and the issue's three), each beside a good card: no crash, malformed rows rejected
    as malformed_record, the good card stored. The parser is called directly, then all pages go through one
    real collect against the local server."""
    from sources_server import RecordedServer, Reply

    from pokewatch.run.collect import collect
    from pokewatch.core.schema import MALFORMED, validate_observations
    from pokewatch.data.sources import pokemontcg
    from pokewatch.data.store import PriceStore

    out = Outcome("malformed pokemontcg cards crash the day (must be malformed_record rows)")
    rng = random.Random(20261128)
    issue_shapes = [("prices is a string", "tcgplayer", "prices", "$12.00", True),
                    ("prices is a list", "tcgplayer", "prices", ["normal", 1.0], True),
                    ("no updatedAt", "tcgplayer", "updatedAt", None, False)]
    trials: list[tuple[str, dict, bool | None]] = []
    for label, block, key, value, malformed in issue_shapes:
        card = ptcg_card("mal0", 2, 3.0)
        if value is None:
            del card[block][key]
        else:
            card[block][key] = value
        trials.append((label, card, malformed))
    for n in range(1, (30 if quick else 60) + 1):
        trials.append((f"generated shape {n}", _mutated(ptcg_card(f"mal{n}", 2, 3.0), rng), None))
    expected_malformed = 0
    pages = []
    for number, (label, card, malformed) in enumerate(trials):
        set_id = f"mal{number}"
        good = ptcg_card(set_id, 1, 4.0)
        try:
            frame = pokemontcg.card_rows([good, card], DAY)
            result = validate_observations(frame)
        except Exception as exc:  # noqa: BLE001
            out.trial(False, f"{label}: the parser raised {type(exc).__name__}: {exc} on {card!r:.200}")
            pages.append((set_id, [good, card]))
            continue
        marked = frame[MALFORMED].notna()
        rejected_malformed = int((result.rejected["reason"] == "malformed_record").sum()) if len(result.rejected) else 0
        expected_malformed += int(marked.sum())
        good_ok = f"{set_id}-1" in set(result.valid["card_id"])
        shape_ok = malformed is None or bool(marked.any()) == malformed
        # every marked row rejected as malformed_record (none valid), every row accounted for
        out.trial(good_ok and shape_ok and rejected_malformed == int(marked.sum())
                  and len(result.valid) + len(result.rejected) == len(frame),
                  f"{label}: good card stored {good_ok}, {int(marked.sum())} marked, {rejected_malformed} rejected "
                  f"as malformed_record, expected malformed {malformed}: {card!r:.200}")
        pages.append((set_id, [good, card]))
    root = Scratch.folder("malformed")
    with RecordedServer() as server, env(POKEWATCH_POKEMONTCG_URL=server.url, POKEWATCH_DATA_DIR=str(root / "data")):
        for set_id, cards in pages:
            route_set(server, set_id, Reply(200, ptcg_page(cards)))
        store = PriceStore(root / "store")
        try:
            result = collect("pokemontcg", DAY, DAY, root / "run", store=store,
                             options={**PTCG_OPTIONS, "set": ",".join(s for s, _ in pages)})
            good = {f"{s}-1" for s, _ in pages}
            stored = set(store.load("pokemontcg")["card_id"])
            counted = result.validation.counts.get("malformed_record", 0)
            if not good <= stored or counted != expected_malformed:
                out.trial(False, f"the collect of every page stored {len(good & stored)} of {len(good)} good cards "
                          f"and counted {counted} malformed_record rows, not {expected_malformed}")
        except Exception as exc:  # noqa: BLE001
            out.trial(False, f"the collect of every page raised {type(exc).__name__}: {exc}")
    return out


# -- 6, 7: the store keeps only the schema; no silent mis-acceptance ------------------------------------
def attack_wide_file(quick: bool) -> Outcome:
    """Files with 200,000 columns: imported (or refused) in under 5 s, the store growing by its valid rows only."""
    from pokewatch.run.collect import collect
    from pokewatch.data.store import PriceStore

    out = Outcome("200,000-column file poisons the store (must be refused or trimmed in < 5 s)")
    extra = 200_000 - 3
    names = [f"c{i}" for i in range(extra)]
    rows = [(f"wide-{n}", f"{n + 1}.5", DAY) for n in range(3)]
    shapes = {
        "csv, empty extra cells": lambda p: p.write_text("id,price,date," + ",".join(names) + "\n" + "".join(
            f"{c},{v},{d}" + "," * extra + "\n" for c, v, d in rows)),
        "csv, filled extra cells": lambda p: p.write_text("id,price,date," + ",".join(names) + "\n" + "".join(
            f"{c},{v},{d}," + ",".join("x" * (1 + i % 3) for i in range(extra)) + "\n" for c, v, d in rows)),
        "tsv": lambda p: p.write_text("id\tprice\tdate\t" + "\t".join(names) + "\n" + "".join(
            f"{c}\t{v}\t{d}" + "\t" * extra + "\n" for c, v, d in rows)),
        "json records": lambda p: p.write_text(json.dumps([{"id": c, "price": float(v), "date": d,
                                                            **dict.fromkeys(names, 1)} for c, v, d in rows])),
    }
    if quick:
        shapes.pop("tsv")
        shapes.pop("json records")
    root = Scratch.folder("wide")
    with env(POKEWATCH_DATA_DIR=str(root / "data")):
        for number, (label, write) in enumerate(shapes.items()):
            store = PriceStore(root / f"store-{number}")
            collect("file", DAY, DAY, root / f"seed-{number}", store=store,
                    options={"path": write_prices_csv(root / f"seed-{number}.csv", [("seed-1", DAY, 2.0)])})
            store.compact("file")
            size_before, rows_before = folder_bytes(store.root), len(store.load("file"))
            suffix = {"tsv": ".tsv", "json records": ".json"}.get(label, ".csv")
            path = root / f"wide-{number}{suffix}"
            write(path)
            started = time.perf_counter()
            try:
                result = collect("file", DAY, DAY, root / f"run-{number}", store=store, options={"path": str(path)})
                valid = result.rows_valid
            except Exception as exc:  # noqa: BLE001 - a clear refusal is allowed
                valid, refusal = 0, f"{type(exc).__name__}: {exc}"
            else:
                refusal = None
            seconds = time.perf_counter() - started
            store.compact("file")
            load_started = time.perf_counter()
            stored = store.load("file")
            load_seconds = time.perf_counter() - load_started
            grew = len(stored) - rows_before
            growth = folder_bytes(store.root) - size_before
            out.trial(seconds < 5 and grew <= valid and len(stored.columns) < 40 and growth < 200_000
                      and load_seconds < 2 and (refusal is not None or valid == 3),
                      f"{label} ({path.stat().st_size / 1e6:.1f} MB): {seconds:.1f}s, {valid} valid, store grew by "
                      f"{grew} row(s) and {growth:,} bytes, {len(stored.columns)} columns, load {load_seconds:.2f}s"
                      + (f", refused: {refusal}" if refusal else ""))
    return out


def attack_silent_acceptance(quick: bool) -> Outcome:
    """Each input the attack saw accepted silently must now be normalised, rejected with a reason, or fail."""
    from sources_server import RecordedServer, Reply

    from pokewatch.run.collect import collect
    from pokewatch.errors import SourceError
    from pokewatch.data.store import PriceStore

    out = Outcome("silent mis-acceptance (variant spaces, id types, 1e308, duplicate keys, empty files, PPT shape)")
    root = Scratch.folder("silent")
    counter = iter(range(1000))

    def run(text: str, suffix: str, start: str = DAY, source: str = "file", options: dict | None = None):
        number = next(counter)
        store = PriceStore(root / f"store-{number}")
        path = root / f"input-{number}{suffix}"
        path.write_text(text)
        result = collect(source, start, DAY, root / f"run-{number}", store=store,
                         options=options if options is not None else {"path": str(path)})
        return result, store

    with env(POKEWATCH_DATA_DIR=str(root / "data")):
        result, store = run("id,variant,date,price\nsv3pt5-199,Holofoil ,2026-01-04,240\n"
                            " sv3pt5-199,Holofoil,2026-01-05,245\nsv3pt5-199,\tHolofoil\t,2026-01-03,238\n",
                            ".csv", "2026-01-03")
        series = store.load("file")[["card_id", "variant"]].drop_duplicates().values.tolist()
        out.trial(series == [["sv3pt5-199", "Holofoil"]], f"variants with spaces stored as series {series}")
        result, store = run(json.dumps([{"id": 123, "price": 1.5}, {"id": ["a"], "price": 2.5},
                                        {"id": {"x": 1}, "price": 3}, {"id": True, "price": 3},
                                        {"id": 1.5, "price": 3}, {"id": "sv3pt5-1", "price": 4.5}]), ".json")
        ids = sorted(store.load("file")["card_id"])
        out.trial(ids == ["123", "sv3pt5-1"] and result.validation.counts == {"malformed_record": 4},
                  f"JSON ids of other types: stored {ids}, rejected {result.validation.counts}")
        for price in ("1e308", "1e-300", "1000000.01", "0.001"):
            result, store = run(f"id,price\nsv3pt5-1,{price}\nsv3pt5-2,5\n", ".csv")
            out.trial(result.validation.counts == {"implausible_price": 1} and len(store.load("file")) == 1,
                      f"price {price}: rejected {result.validation.counts}, stored {len(store.load('file'))}")
        result, store = run('{"base1-4": {"2026-01-04": 390.0, "2026-01-05": 398.0, "2026-01-05": 401.2},'
                            ' "sv3pt5-199": {"2026-01-05": 245.1}}', ".json", "2026-01-04")
        stored = store.load("file")
        out.trial(result.validation.counts == {"malformed_record": 2} and len(stored) == 2
                  and 401.2 not in set(stored["market_price"]) and 398.0 not in set(stored["market_price"]),
                  f"duplicate date key in wide JSON: rejected {result.validation.counts}, stored {len(stored)}")
        for label, text, suffix in (("header-only CSV", "card_id,market_price,date\n", ".csv"),
                                    ("empty JSON list", "[]", ".json"), ("empty file", "", ".csv"),
                                    ("empty wide JSON", "{}", ".json")):
            try:
                result, store = run(text, suffix)
                out.trial(False, f"{label} succeeded with {result.rows_valid} row(s)")
            except SourceError:
                out.trial(True, "")
            except Exception as exc:  # noqa: BLE001 - a clear project error is what the user should get
                out.trial(type(exc).__module__.startswith("pokewatch"), f"{label}: {type(exc).__name__}: {exc}")
        with RecordedServer() as server, env(POKEWATCH_PPT_URL=f"{server.url}/api/v2",
                                             POKEMONPRICETRACKER_API_KEY="ppt-fake-key-attack"):
            for label, answer in (("renamed envelope", {"cards": []}), ("data is text", {"data": "none today"}),
                                  ("a list", [1, 2]), ("data is an object", {"data": {"x": 1}}),
                                  ("null", None)):
                server.route("/api/v2/cards", Reply(200, json.dumps(answer).encode()),
                             query={"setId": "99999", "offset": "0"})
                try:
                    result, _ = run("", ".csv", source="pokemonpricetracker", options={"set_id": "99999"})
                    out.trial(False, f"PokemonPriceTracker answering {label}: succeeded, completeness "
                              f"{result.fetch.completeness:.0%}, {result.rows_valid} rows")
                except SourceError as exc:
                    out.trial("0%" in str(exc), f"PokemonPriceTracker answering {label}: {exc}")
    return out


# -- 9: the HTTP client's budgets ----------------------------------------------------------------------
def timed_fetch(url: str, settings, raw: Path, path: str) -> tuple[Exception | None, float]:
    """One ``HttpClient.fetch`` of ``path``: the error it raised (None when it answered) and its wall time."""
    from pokewatch.data.http_client import HttpClient
    from pokewatch.data.raw_archive import RawArchive

    started = time.monotonic()
    try:
        HttpClient("attack", url, settings=settings).fetch(RawArchive(raw), "x.json", path)
        error = None
    except Exception as exc:  # noqa: BLE001
        error = exc
    return error, time.monotonic() - started


def attack_http_budgets(quick: bool) -> Outcome:
    """Slow drips stop at the deadline; oversized bodies are refused clearly, in time, against 127.0.0.1."""
    from sources_server import RecordedServer, Reply

    from pokewatch.run.collect import collect
    from pokewatch.errors import SourceError
    from pokewatch.data.http_client import BudgetExceededError, HttpSettings, ResponseTooLargeError
    from pokewatch.data.store import PriceStore

    out = Outcome("HTTP slow drip outlasts the deadline; oversized body read whole")
    root = Scratch.folder("http")
    slack = 1.5
    with RecordedServer() as server:
        server.route("/drip", Reply(200, b"[" + b"1," * 300 + b"1]", drip=0.05, drip_bytes=2))
        server.route("/drip-nolength", Reply(200, b"[" + b"1," * 300 + b"1]", drip=0.05, drip_bytes=2,
                                             content_length=False))
        server.route("/late", Reply(200, {"ok": 1}, delay=6.0))
        big = b"[" + b"1," * 2_500_000 + b"1]"  # 5 MB
        server.route("/big", Reply(200, big))
        server.route("/big-nolength", Reply(200, big, content_length=False))
        server.route("/bomb", Reply(200, gzip.compress(b" " * 20_000_000),
                                    headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}))
        budget = HttpSettings(timeout=1.0, retries=2, backoff=0.01, max_wait=2.0)
        for path in ("/drip", "/drip-nolength", "/late"):
            error, seconds = timed_fetch(server.url, budget, root / f"raw{path}", path)
            out.trial(isinstance(error, (BudgetExceededError, SourceError)) and seconds < 2.0 + slack,
                      f"GET {path} with a 2 s budget: {type(error).__name__ if error else 'answered'} after "
                      f"{seconds:.1f}s")
        capped = HttpSettings(timeout=2.0, retries=2, backoff=0.01, max_bytes=1_000_000)
        for path in ("/big", "/big-nolength", "/bomb"):
            error, seconds = timed_fetch(server.url, capped, root / f"raw{path}", path)
            out.trial(isinstance(error, ResponseTooLargeError) and "http_max_bytes" in str(error) and seconds < 5
                      and len(server.requests_to(path)) == 1,
                      f"GET {path} over a 1 MB cap: {type(error).__name__ if error else 'read whole'} after "
                      f"{seconds:.1f}s, {len(server.requests_to(path))} request(s): {error}")
        if not quick:  # the default 50 MB cap, against a 60 MB body without Content-Length
            server.route("/huge", Reply(200, b" " * 60_000_000, content_length=False))
            error, seconds = timed_fetch(server.url, HttpSettings(timeout=5.0, retries=0), root / "raw-huge", "/huge")
            out.trial(isinstance(error, ResponseTooLargeError) and seconds < 20,
                      f"GET /huge (60 MB) with the default cap: {type(error).__name__ if error else 'read whole'} "
                      f"after {seconds:.1f}s")
        # as a user meets it: a pokemontcg collect whose every page drips, with a 3 s collect budget
        sets = [f"drip{i}" for i in range(4)]
        for set_id in sets:
            body = json.dumps(ptcg_page([ptcg_card(set_id, 1, 2.0)])).encode()
            route_set(server, set_id, Reply(200, body, drip=0.05, drip_bytes=4))
        with env(POKEWATCH_POKEMONTCG_URL=server.url, POKEWATCH_DATA_DIR=str(root / "data"),
                 POKEWATCH_HTTP_TIMEOUT="1", POKEWATCH_HTTP_COLLECT_BUDGET="3", POKEWATCH_HTTP_MAX_WAIT="60"):
            started = time.monotonic()
            try:
                collect("pokemontcg", DAY, DAY, root / "run", store=PriceStore(root / "store"),
                        options={**PTCG_OPTIONS, "set": ",".join(sets)})
                error = None
            except Exception as exc:  # noqa: BLE001
                error = exc
            seconds = time.monotonic() - started
        out.trial(isinstance(error, SourceError) and seconds < 3 + slack + 1,
                  f"pokemontcg collect of dripping pages with a 3 s collect budget: "
                  f"{type(error).__name__ if error else 'succeeded'} after {seconds:.1f}s: {error}")
    return out


# -- 12: honest cache reports -----------------------------------------------------------------------
CACHE_CALLS: list[int] = []


def cached_square(x: int, cache_version: str) -> int:
    """A step for the cache attack (module-level, as ``cached_call`` requires)."""
    CACHE_CALLS.append(x)
    return x * x


def attack_cache(quick: bool) -> Outcome:
    """Damage a stored entry in each way a disk or a kill can: the next call must be a miss that recomputes."""
    from pokewatch.run import caching
    from pokewatch import config

    out = Outcome("damaged cache entry reported as a hit")
    damage: dict[str, Callable[[Path], None]] = {
        "random bytes": lambda p: p.write_bytes(os.urandom(256)),
        "empty file": lambda p: p.write_bytes(b""),
        "truncated pickle": lambda p: p.write_bytes(p.read_bytes()[: max(1, p.stat().st_size // 2)]),
        "text": lambda p: p.write_text("not a pickle"),
        "removed": lambda p: p.unlink(),
        "a folder": lambda p: (p.unlink(), p.mkdir()),
    }
    for number, (label, harm) in enumerate(damage.items()):
        x = 1000 + number
        first = caching.cached_call(cached_square, x, "attack")
        second = caching.cached_call(cached_square, x, "attack")
        outputs = [p for p in config.cache_dir().rglob("output.pkl")
                   if p.parent.joinpath("metadata.json").exists() and str(x) in p.parent.joinpath(
                       "metadata.json").read_text()]
        for path in outputs:
            harm(path)
        calls = len(CACHE_CALLS)
        try:
            third = caching.cached_call(cached_square, x, "attack")
        except Exception as exc:  # noqa: BLE001
            out.trial(False, f"{label}: cached_call raised {type(exc).__name__}: {exc}")
            continue
        fourth = caching.cached_call(cached_square, x, "attack")
        out.trial(not first.hit and second.hit and bool(outputs) and not third.hit and third.value == x * x
                  and len(CACHE_CALLS) == calls + 1 and fourth.hit,
                  f"{label}: hits {first.hit}, {second.hit}, after damage {third.hit} (value {third.value}), then "
                  f"{fourth.hit}; {len(outputs)} entr(ies) damaged")
    return out


# -- the table ---------------------------------------------------------------------------------------
ATTACKS: list[Callable[[bool], Outcome | list[Outcome]]] = [
    attack_partial_recollect, attack_partial_reimport, api_attacks, attack_dates, attack_malformed_cards,
    attack_wide_file, attack_silent_acceptance, attack_formula_injection, attack_http_budgets,
    attack_crash_bookkeeping, attack_plan_validation, attack_cache,
]


def table(outcomes: list[Outcome]) -> str:
    width = max(len("attack"), *(len(o.attack) for o in outcomes))
    held = max(len("held"), *(len(f"{o.held}/{o.trials}") for o in outcomes))
    lines = [f"| {'attack':<{width}} | trials | {'held':<{held}} |",
             f"|{'-' * (width + 2)}|--------|{'-' * (held + 2)}|"]
    lines += [f"| {o.attack:<{width}} | {o.trials:>6} | {f'{o.held}/{o.trials}':>{held}} |" for o in outcomes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rerun issue 11's attacks; print attack | trials | held.")
    parser.add_argument("--quick", action="store_true", help="fewer trials (and the API attacks' smaller counts)")
    parser.add_argument("--only", action="append", default=[], metavar="WORD",
                        help="run only the attacks whose function name contains WORD (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (its path goes to stderr)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    Scratch.root = Path(tempfile.mkdtemp(prefix="pokewatch-attack-"))
    scratch_env = {
        "POKEWATCH_RUNS_DIR": str(Scratch.root / "runs"), "POKEWATCH_DATA_DIR": str(Scratch.root / "data"),
        "POKEWATCH_CACHE_DIR": str(Scratch.root / "cache"), "TQDM_DISABLE": "1",
        "POKEWATCH_HTTP_TIMEOUT": "2", "POKEWATCH_HTTP_RETRIES": "1", "POKEWATCH_HTTP_BACKOFF": "0.01",
        "POKEWATCH_HTTP_MAX_WAIT": "20", "POKEMONTCG_API_KEY": None, "POKEWATCH_WEBHOOK_URL": None,
        "POKEWATCH_API_URL": None,
    }
    outcomes: list[Outcome] = []
    try:
        with env(**scratch_env):
            import logging

            logging.basicConfig(level=logging.ERROR)  # the attacks provoke warnings by design
            for attack in ATTACKS:
                if args.only and not any(word in attack.__name__ for word in args.only):
                    continue
                began = time.monotonic()
                try:
                    result = attack(args.quick)
                except Exception as exc:  # noqa: BLE001 - one broken attack must not hide the others
                    result = Outcome(attack.__name__, 1, 0, [f"the attack itself raised {type(exc).__name__}: {exc}"])
                for outcome in result if isinstance(result, list) else [result]:
                    if not outcome.seconds:
                        outcome.seconds = time.monotonic() - began
                    outcomes.append(outcome)
                    print(f"{outcome.attack}: {outcome.held}/{outcome.trials} held ({outcome.seconds:.1f} s)",
                          file=sys.stderr, flush=True)
                    for failure in outcome.failures:
                        print(f"  NOT HELD: {failure}", file=sys.stderr, flush=True)
    finally:
        if args.keep:
            print(f"temporary folder kept: {Scratch.root}", file=sys.stderr)
        else:
            shutil.rmtree(Scratch.root, ignore_errors=True)
    print(table(outcomes))
    print(f"\n{sum(o.held for o in outcomes)}/{sum(o.trials for o in outcomes)} trials held in "
          f"{time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0 if outcomes and all(o.trials and o.held == o.trials and not o.failures for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
