"""Every shell command in README.md and docs/*.md, and how the tests prove it works as written.

Why: the docs promise that each command works from the project root exactly as printed, and
those promises broke silently (missing ``.venv/bin/``, a missing ``logs/`` folder, card ids
the demo market does not have). tests/test_docs_commands.py extracts the commands with
:func:`extract` and checks each against :data:`REGISTRY`, which says how it is exercised:

* ``run(...)``: the docs check runs it, as written, in a throw-away clone of the working tree
  (tests/project_snapshot.py) whose runs/, store and cache are its own, with the network APIs
  pointed at the local recorded server (tests/sources_server.py) through their documented URL
  variables (``POKEWATCH_TCGCSV_URL``, ``POKEWATCH_POKEMONTCG_URL``, ``POKEWATCH_PPT_URL``).
  ``needs`` are commands run first, once per session (documented ones or set-up lines);
  ``expect`` is a regular expression the output must match, ``then`` a shell check of what
  the command left behind, ``status`` the expected exit status. ``alone`` runs it in a clone
  of its own: a run of another source publishes today's run, and the commands after it
  read ``runs/latest`` as the demo run.
* ``serve(...)``: a server the docs start in the foreground (``make serve``); the check starts
  it in the background and waits for ``/health``. The ``primary`` one keeps running for the
  commands that need it; the others are stopped once they answer. Ports are the one
  substitution the check makes, because other servers on a shared machine may hold 8000:
  each server gets a free port through ``POKEWATCH_API_PORT`` (``pokewatch serve --help``),
  a documented ``--port N`` becomes that port, and every command's ``127.0.0.1:8000`` becomes
  the primary server's port.
* ``mapped(test, why)``: an existing test runs this command; the check verifies the test exists.
* ``template(example)``: a synopsis with placeholders (``<date>``, ``DATE``); ``example`` is the
  concrete command that is run.
* ``not_run(reason)``: cannot run on this machine or from a clone (docker, cron, systemd,
  absolute deployment paths, the suite itself); the reason is stated.

Registering a new command: add one line to REGISTRY with the command exactly as the failure
message prints it. Commands are keyed by their text with runs of whitespace collapsed, comments
and line continuations removed, so reformatting a block keeps its entries; changing a command
makes it new (and its old entry stale, which also fails), so it is checked again.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO

#: The documents whose commands are checked.
DOCS = (REPO / "README.md", *sorted((REPO / "docs").glob("*.md")))
#: Fenced block languages holding shell commands; an unlabeled block contributes only the lines
#: that start like a command (it usually holds a log excerpt or a configuration file).
SHELL_LANGUAGES = {"bash", "sh", "shell", "console", "zsh"}
CRON_LANGUAGES = {"cron", "crontab"}
#: Tools that live in .venv/bin and are "command not found" when called by their bare name.
VENV_TOOLS = {"pokewatch", "papermill", "pre-commit", "ruff", "nbstripout", "pytest", "jupyter", "python",
              "python3", "pip", "pip3", "dask", "ipython", "uvicorn"}
#: Other programs whose inline mentions with arguments are commands too.
OTHER_TOOLS = {"conda", "docker", "curl", "crontab"}
#: How a line or inline code span starts when it is a command of this project.
COMMAND_START = re.compile(r"^(?:[A-Z_][A-Z0-9_]*=\S*\s+)*(?:make(?:\s|$)|scripts/\S|\.venv/bin/\S|(?:"
                           + "|".join(re.escape(t) for t in sorted(VENV_TOOLS | OTHER_TOOLS)) + r")\s)")
#: An inline crontab line: five time fields, then the command.
INLINE_CRON = re.compile(r"^(?:[\d*/,-]+\s+){5}(?P<command>\S.*)$")
_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
_HEREDOC = re.compile(r"<<-?\s*['\"]?(\w+)['\"]?")
_ASSIGNMENT = re.compile(r"^(?:export\s+)?[A-Za-z_][A-Za-z0-9_]*=(?:\$\([^)]*\)|\"[^\"]*\"|'[^']*'|\S)*$")
_CRON_TIME = re.compile(r"^\s*(?:@\w+|(?:\S+\s+){5})")
_SEGMENT_PROGRAM = re.compile(r"(?:^|[;&|(]|\$\()\s*(?:[A-Z_][A-Z0-9_]*=\S*\s+)*([\w./-]+)")


@dataclass(frozen=True)
class Command:
    """One documented command: its text as written, where it is, and the block's earlier assignments."""

    raw: str
    doc: str
    line: int
    kind: str  # "block", "cron" or "inline"
    preamble: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return normalize(self.raw)

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def normalize(text: str) -> str:
    """The registry key of a command: first line of a heredoc, continuations joined, whitespace collapsed."""
    first, *rest = text.split("\n")
    if _HEREDOC.search(first):
        return " ".join(first.split())
    return " ".join(text.replace("\\\n", " ").split())


def strip_comment(line: str) -> str:
    """``line`` without a trailing shell comment (a ``#`` after whitespace, outside quotes)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def bare_tools(text: str) -> list[str]:
    """The venv tools a command calls by bare name (``pokewatch`` rather than ``.venv/bin/pokewatch``)."""
    first = text.split("\n")[0] if _HEREDOC.search(text.split("\n")[0]) else text
    return [m.group(1) for m in _SEGMENT_PROGRAM.finditer(first) if m.group(1) in VENV_TOOLS]


def _block_commands(lines: list[str], lang: str, doc: str, first_line: int) -> list[Command]:
    commands, preamble, i = [], [], 0
    while i < len(lines):
        number, line = first_line + i, lines[i]
        i += 1
        text = strip_comment(line) if lang in SHELL_LANGUAGES | CRON_LANGUAGES else line.rstrip()
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        if lang in CRON_LANGUAGES:
            if _ASSIGNMENT.match(text.strip()):
                continue
            commands.append(Command(_CRON_TIME.sub("", text, count=1).strip(), doc, number, "cron"))
            continue
        text = text.strip().removeprefix("$ ")
        if not lang and not COMMAND_START.match(text):
            continue
        while text.endswith("\\") and i < len(lines):
            text = text + "\n" + strip_comment(lines[i]).strip()
            i += 1
        heredoc = _HEREDOC.search(text)
        if heredoc:
            while i < len(lines):
                text += "\n" + lines[i]
                i += 1
                if lines[i - 1].strip() == heredoc.group(1):
                    break
        commands.append(Command(text, doc, number, "block", tuple(preamble)))
        if _ASSIGNMENT.match(text):
            preamble.append(text)
    return commands


def extract(path: Path) -> list[Command]:
    """Every command in one Markdown document: fenced shell and cron blocks, and inline command spans.

    Args:
        path: a Markdown file.

    Returns:
        The commands in document order.
    """
    doc = str(path.relative_to(REPO))
    lines = path.read_text().splitlines()
    commands, i = [], 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence:
            lang, indent, marker = fence["lang"].lower(), len(fence["indent"]), fence["fence"]
            start, i = i + 1, i + 1
            while i < len(lines) and not lines[i].strip().startswith(marker):
                i += 1
            body = [line[indent:] if line[:indent].isspace() else line.lstrip() for line in lines[start:i]]
            if lang in SHELL_LANGUAGES | CRON_LANGUAGES or not lang:
                commands += _block_commands(body, lang, doc, start + 1)
            i += 1
            continue
        for span in re.findall(r"`([^`]+)`", lines[i]):
            cron = INLINE_CRON.match(span)
            if cron:
                commands.append(Command(cron["command"], doc, i + 1, "cron"))
            elif len(span.split()) >= 2 and COMMAND_START.match(span):
                commands.append(Command(span, doc, i + 1, "inline"))
        i += 1
    return commands


def documented_commands() -> list[Command]:
    """The commands of every document in :data:`DOCS`, in order."""
    return [command for path in DOCS for command in extract(path)]


# --- how each command is exercised -------------------------------------------------------------------

@dataclass(frozen=True)
class Handling:
    """How the tests exercise one documented command (see the module docstring)."""

    kind: str
    needs: tuple[str, ...] = ()
    expect: str = ""
    then: str = ""
    status: int = 0
    slow: bool = False
    shared: bool = False
    known_failure: str = ""
    test: str = ""
    reason: str = ""
    example: str = ""
    primary: bool = False
    alone: bool = False


def run(*needs: str, expect: str = "", then: str = "", status: int = 0, slow: bool = False, shared: bool = False,
        alone: bool = False, known_failure: str = "") -> Handling:
    """Run by the docs check as written. ``shared`` commands read ../shared and are slow and alone."""
    return Handling("run", needs=needs, expect=expect, then=then, status=status, slow=slow or shared, shared=shared,
                    alone=alone or shared, known_failure=known_failure)


def serve(*needs: str, primary: bool = False) -> Handling:
    """A server started in the background; ``primary`` is the one ``127.0.0.1:8000`` means."""
    return Handling("serve", needs=needs, primary=primary, slow=True)


def mapped(test: str, why: str) -> Handling:
    """Run by an existing test (``tests/test_x.py::test_name``)."""
    return Handling("mapped", test=test, reason=why)


def template(example: str) -> Handling:
    """A synopsis with placeholders; ``example`` is the concrete documented command that is run."""
    return Handling("template", example=example)


def not_run(reason: str) -> Handling:
    """Not runnable here; the reason says why and what covers it instead."""
    return Handling("not_run", reason=reason)


#: Lines the docs check runs to set up a command's inputs (they are not documented commands).
MY_PRICES = (".venv/bin/python -c \"import pandas as pd; from pokewatch.data.demo_market import demo_prices; "
             "t = pd.Timestamp.today().normalize(); demo_prices(t - pd.Timedelta(days=120), t, n_series=20)"
             "[['card_id', 'variant', 'date', 'market_price', 'currency', 'name']]"
             ".to_csv('my_prices.csv', index=False)\"")
RUN_2026_11_27 = "scripts/run_pipeline.sh --date 2026-11-27"
#: The set-up lines above that run a pipeline.
SLOW_SETUP = {RUN_2026_11_27}

PIPELINE = "make pipeline"
RUN_2026_01_05 = "scripts/run_pipeline.sh --date 2026-01-05"
RUN_2026_11_28 = "scripts/run_pipeline.sh --date 2026-11-28"
WATCHLIST = "cp watchlist.example.yaml watchlist.yaml"
KEYS = "mkdir -p secrets && (umask 077; .venv/bin/pokewatch keys new --role admin --quiet > secrets/api_keys)"
READER_KEYS = ".venv/bin/pokewatch keys new --count 2 --quiet >> secrets/api_keys"
SERVER = "POKEWATCH_API_KEY_FILE=secrets/api_keys make serve"
README_CRON = "tests/test_docs_commands.py::test_the_readme_cron_line_runs_under_env_i_from_the_root"
NO_CRON = "needs a cron daemon and crontab (not on this machine); the line it runs is the README cron line, tested"
DEPLOYMENT_PATH = ("an absolute deployment path (/srv/pokewatch, /backups) on a production host; the same command "
                   "from the project root is run as the README cron line")
DOCKER = "no container engine on this machine; tests/test_docker_compose.py checks the compose file and Dockerfile"
JOURNAL = "reads the systemd journal of a deployed service (no systemd here); the log format is tested by "\
          "tests/test_api_security.py and the API logging tests"

REGISTRY: dict[str, Handling] = {
    # README.md
    "make pipeline": run(expect=r"run \d{4}-\d\d-\d\d succeeded", then="test -L runs/latest", slow=True),
    "make test": not_run("the whole suite, this check included: CI runs it (.ci/run), and its parts are "
                         "make lint, tests/ and notebooks/ (each run on its own here)"),
    "make help": run(expect=r"make setup-prod .*\n(?s:.*)make lint"),
    "make pipeline ARGS='--date 2026-01-05'": run(expect="run 2026-01-05 succeeded", slow=True),
    "make lab": mapped("tests/test_lab.py::test_opening_each_notebook_in_jupyterlab_leaves_git_status_clean",
                       "test_lab runs make lab (with a token and port in its Jupyter config) and opens every notebook"),
    "make serve": serve(PIPELINE),
    "make bench": mapped("tests/test_benchmarks.py::test_the_kernel_case_times_every_pass_on_the_same_arrays_and_"
                         "the_page_shows_its_medians",
                         "the full benchmark takes about an hour of both cores; the tests run its cases' parts on a "
                         "300-series market and one real pipeline run through the shim (slow)"),
    "make lint": run(expect="All checks passed"),
    "make setup": run(then="test -x .venv/bin/pre-commit"),
    "make setup-prod": run(then="test -x .venv/bin/pokewatch"),
    "conda env create -f environment.yml && conda activate pokewatch": not_run(
        "needs conda and conda-forge (not on this machine); tests/test_environment.py keeps environment.yml in "
        "step with pyproject.toml"),
    "scripts/run_pipeline.sh --source tcgcsv --archives ../shared/data/tcgcsv-archives --backfill "
    "2025-09-21..2025-09-27": run(shared=True, expect="run 2025-09-27 succeeded"),
    "scripts/run_pipeline.sh --source tcgcsv": run(expect="succeeded", slow=True, alone=True),
    WATCHLIST: run(then="test -s watchlist.yaml"),
    "export POKEMONTCG_API_KEY=...": run(),
    "scripts/run_pipeline.sh --source pokemontcg --param watchlist=watchlist.yaml": run(
        WATCHLIST, expect="succeeded", slow=True, alone=True),
    "scripts/run_pipeline.sh --source file --param input_path=my_prices.csv --force-train": run(
        MY_PRICES, expect="succeeded", slow=True, alone=True),
    ".venv/bin/pokewatch collect --replay runs/2026-01-05": run(RUN_2026_01_05, expect="collected demo", slow=True),
    ".venv/bin/papermill --help-notebook notebooks/train.ipynb": run(expect="buy_threshold"),
    "cd /path/to/pokewatch && TQDM_DISABLE=1 scripts/run_pipeline.sh >> logs/pipeline.log 2>&1": mapped(
        README_CRON, "run under env -i from /, with /path/to/pokewatch replaced by a clone"),
    ".venv/bin/pokewatch collect --replay runs/<date>": template(
        ".venv/bin/pokewatch collect --replay runs/2026-01-05"),
    ".venv/bin/pokewatch runs": run(PIPELINE, expect="published"),
    ".venv/bin/pokewatch runs show 2026-11-28": run(RUN_2026_11_28, expect="Run 2026-11-28: published"),
    ".venv/bin/pokewatch signals --signal BUY": run(PIPELINE, expect="published demo run of"),
    ".venv/bin/pokewatch card charizard": run(PIPELINE, expect="Charizard"),
    ".venv/bin/pre-commit install": run(expect="pre-commit installed", then="test -x .git/hooks/pre-commit"),
    ".venv/bin/python -m pytest --nbval-lax notebooks/": mapped(
        "tests/test_docs_commands.py::test_nbval_over_the_notebooks_passes_by_itself_in_a_clone",
        "runs the command as written in a clone of the working tree"),
    # docs/analyst_guide.md
    ".venv/bin/papermill --help-notebook notebooks/explore.ipynb": run(expect="compare_to"),
    ".venv/bin/python -m pokewatch --help": run(expect="signals"),
    ".venv/bin/pokewatch report runs/2026-11-28": run(RUN_2026_11_28, expect="report.html",
                                                      then="test -s runs/2026-11-28/report.html"),
    ".venv/bin/pokewatch report": run(PIPELINE, expect="index.html", then="test -s runs/index.html"),
    ".venv/bin/pokewatch runs --published": run(PIPELINE, expect="published"),
    ".venv/bin/pokewatch runs show latest": run(PIPELINE, expect="published"),
    ".venv/bin/pokewatch signals": run(PIPELINE, expect="published demo run of"),
    ".venv/bin/pokewatch signals --signal BUY --limit 5": run(PIPELINE, expect="published demo run of"),
    ".venv/bin/pokewatch --version": run(expect=r"^pokewatch \d+\.\d+"),
    ".venv/bin/pokewatch runs --source demo --json": run(PIPELINE, expect='"state": "published"'),
    ".venv/bin/pokewatch signals --json": run(PIPELINE, expect='"counts"'),
    ".venv/bin/pokewatch card charizard --json": run(PIPELINE, expect='"matched_by"'),
    ".venv/bin/pokewatch --help": run(expect="runs"),
    ".venv/bin/python -m benchmarks.cli_startup": run(PIPELINE, expect="pokewatch --help", slow=True),
    ".venv/bin/python scripts/screenshots.py --out /tmp/shots": not_run(
        "needs Debian's chromium and chromium-driver, which a fresh machine does not have; the page checks it runs "
        "(no <NA>, nan or index column) run on a real report in tests/test_report.py and tests/test_cli_runs.py"),
    ".venv/bin/pokewatch signals --date 2026-11-27 --signal SELL --csv > sells.csv": run(
        RUN_2026_11_27, then="head -n 1 sells.csv | grep -q signal"),
    ".venv/bin/pokewatch card sv3pt5-169 --variant \"Reverse Holofoil\" --days 60 --out charizard.png": run(
        PIPELINE, expect="Charizard", then="test -s charizard.png"),
    "cp portfolio.example.csv portfolio.csv": run(then="test -s portfolio.csv"),
    ".venv/bin/pokewatch card NAME": template(".venv/bin/pokewatch card charizard"),
    "scripts/run_pipeline.sh --param portfolio_file=portfolio.example.csv": run(expect="succeeded", slow=True),
    "export POKEWATCH_WEBHOOK_URL=https://hooks.slack.com/services/T000/B000/XXXX": run(),
    "export POKEWATCH_WEBHOOK_URL=https://discord.com/api/webhooks/123/XXXX": run(),
    ".venv/bin/pokewatch runs show DATE": template(".venv/bin/pokewatch runs show 2026-11-28"),
    # docs/automation_guide.md
    RUN_2026_01_05: run(expect="run 2026-01-05 succeeded", slow=True),
    "scripts/run_pipeline.sh --help": run(expect="Exit status"),
    ".venv/bin/pokewatch pipeline --help": run(expect="should-train"),
    "chmod +x scripts/run_pipeline.sh": run(),
    "ls -l scripts/run_pipeline.sh": run(expect="^-rwxr-xr-x"),
    "crontab -e": not_run(NO_CRON),
    "crontab -l": not_run(NO_CRON),
    "cd /srv/pokewatch && . \"$HOME/.config/pokewatch/env\" && TQDM_DISABLE=1 scripts/run_pipeline.sh >> "
    "logs/pipeline.log 2>&1": not_run(DEPLOYMENT_PATH),
    "mkdir -p ~/.config/pokewatch": run(then="test -d ~/.config/pokewatch"),
    "cat > ~/.config/pokewatch/env <<'ENV'": run("mkdir -p ~/.config/pokewatch",
                                                 then="grep -q POKEWATCH_API_URL ~/.config/pokewatch/env"),
    "chmod 600 ~/.config/pokewatch/env": run("cat > ~/.config/pokewatch/env <<'ENV'",
                                             then='test "$(stat -c %a ~/.config/pokewatch/env)" = 600'),
    "/usr/sbin/logrotate -s $HOME/.local/state/pokewatch-logrotate.status $HOME/.config/pokewatch/logrotate.conf":
        not_run("needs logrotate and the user's configuration file (not on this machine)"),
    RUN_2026_11_28: run(expect="run 2026-11-28 succeeded", slow=True),
    "cd /srv/pokewatch && . \"$HOME/.config/pokewatch/env\" && (TQDM_DISABLE=1 scripts/run_pipeline.sh >> "
    "logs/pipeline.log 2>&1 || .venv/bin/python -c \"import os,sys; from pokewatch.analysis import alerts; "
    "alerts.post_json(os.environ['POKEWATCH_WEBHOOK_URL'], alerts.payload('PokeWatch pipeline FAILED on ' + "
    "os.uname().nodename + '; see logs/pipeline.log'))\")": not_run(
        DEPLOYMENT_PATH + "; its alert call is run against a local webhook by "
        "tests/test_docs_commands.py::test_the_failure_alert_of_the_automation_guide_posts_to_the_webhook"),
    "POKEWATCH_API_URL=http://127.0.0.1:8000 .venv/bin/pokewatch notify health": run(
        SERVER, expect="api health: ok", slow=True),
    "POKEWATCH_API_URL=http://127.0.0.1:8000 POKEWATCH_API_KEY=$(awk '$2 == \"admin\" {print $1; exit}' "
    "secrets/api_keys) .venv/bin/pokewatch notify reload": run(SERVER, expect="api reload: ok", slow=True),
    "systemctl status cron": not_run("needs systemd and a cron daemon (not on this machine)"),
    "grep CRON /var/log/syslog | tail": not_run("reads the system log of a cron host (no cron daemon here)"),
    "tail -n 20 logs/pipeline.log": mapped(README_CRON, "the cron test reads logs/pipeline.log after the run"),
    ".venv/bin/pokewatch runs --limit 5": run(PIPELINE, expect="published"),
    # docs/data_sources.md
    ".venv/bin/pokewatch collect --help": run(expect="--replay"),
    ".venv/bin/pokewatch collect --source tcgcsv --archives ../shared/data/tcgcsv-archives --backfill "
    "2025-09-21..2025-09-27": run(shared=True, expect="collected tcgcsv"),
    # docs/deployment_guide.md
    ".venv/bin/pokewatch keys new --role admin --quiet >> /etc/pokewatch/api_keys": not_run(
        DEPLOYMENT_PATH + "; the same command into secrets/api_keys runs in the quick start"),
    ".venv/bin/pokewatch notify reload": mapped(
        "tests/test_api_notify.py::test_reload_with_a_reader_key_fails_and_says_an_admin_key_is_needed",
        "the migration note's reload with a reader key, against a real server"),
    ".venv/bin/python scripts/attack.py": mapped(
        "tests/test_attack.py::test_every_attack_of_issue_11_holds_in_every_trial",
        "runs it with --quick (fewer trials of the same attacks) and checks every row held"),
    ".venv/bin/python tests/attack_api.py --quick": run(expect="held", slow=True, alone=True),
    ".venv/bin/python tests/attack_api.py": not_run(
        "about 50 s with both cores busy; the same attacks at smaller counts run as --quick here, and "
        "tests/test_api_hardening.py runs every case"),
    KEYS: run(then="grep -q ' admin$' secrets/api_keys && test \"$(stat -c %a secrets/api_keys)\" = 600"),
    READER_KEYS: run(KEYS, then="test $(wc -l < secrets/api_keys) = 3"),
    SERVER: serve(PIPELINE, KEYS, READER_KEYS, primary=True),
    "KEY=$(tail -n 1 secrets/api_keys)": run(KEYS, READER_KEYS),
    "curl -s http://127.0.0.1:8000/health": run(SERVER, expect='"status"', slow=True),
    "curl -s -H \"X-API-Key: $KEY\" \"http://127.0.0.1:8000/cards?page_size=3\"": run(
        SERVER, expect='"card_id"', slow=True),
    "curl -s -H \"X-API-Key: $KEY\" \"http://127.0.0.1:8000/fair_price?card_id=g1-81\"": run(
        SERVER, expect='"fair_price"', slow=True),
    "curl -s -H \"X-API-Key: $KEY\" \"http://127.0.0.1:8000/signals?signal=BUY\"": run(
        SERVER, expect='"signal"', slow=True),
    ".venv/bin/pokewatch keys new": run(expect="pwk_"),
    ".venv/bin/pokewatch serve --help": run(expect="--workers"),
    ".venv/bin/pokewatch serve": serve(PIPELINE),
    ".venv/bin/pokewatch keys id < secrets/api_keys": run(KEYS, expect=r"^[0-9a-f]{12}"),
    "docker compose up -d --build": not_run(DOCKER),
    "COMPOSE_PROFILES=production REDIS_URL=redis://redis:6379/0 POKEWATCH_API_WORKERS=2 docker compose up -d "
    "--build": not_run(DOCKER),
    "docker compose ps": not_run(DOCKER),
    "docker compose logs -f api": not_run(DOCKER),
    "docker inspect": not_run(DOCKER),
    "docker compose config": not_run(DOCKER),
    "docker compose logs": not_run(DOCKER),
    "docker run --rm -v pokewatch_runs:/runs -v /backups:/b alpine tar -czf /b/runs-$(date +%F).tar.gz -C /runs .":
        not_run(DOCKER),
    "make serve ARGS='--port 9000'": serve(PIPELINE),
    "tar -C /srv/pokewatch -czf /backups/pokewatch-$(date +%F).tar.gz runs data": not_run(DEPLOYMENT_PATH),
    "find /backups -name 'pokewatch-*.tar.gz' -mtime +30 -delete": not_run(DEPLOYMENT_PATH),
    "journalctl -u pokewatch-api -o cat | jq -c 'select(.request_id == \"9f2c...\")'": not_run(JOURNAL),
    "journalctl -u pokewatch-api -o cat | jq -r 'select(.status >= 500) | [.ts, .path, .request_id] | @tsv'":
        not_run(JOURNAL),
    "journalctl -u pokewatch-api -o cat | jq -r 'select(.logger == \"pokewatch.api.access\") | .key_id' | sort | "
    "uniq -c": not_run(JOURNAL),
    ".venv/bin/python scripts/load_test.py": not_run(
        "a load test: about a minute at full load of both cores, and it fails by design when other jobs hold the "
        "cores (its p95 target); run it on a quiet machine"),
    ".venv/bin/python scripts/load_test.py --backends memory --json /tmp/load.json": not_run(
        "a load test at full load of both cores (see the line above)"),
    ".venv/bin/python scripts/load_test.py --url http://127.0.0.1:8000 --key \"$KEY\"": not_run(
        "a load test against a running server (see the line above)"),
    # docs/performance.md (generated by make bench and left as it is)
    "python -m benchmarks": not_run("performance.md names the module make bench runs (make bench is mapped above)"),
    **{f"pokewatch pipeline{command}": mapped(
        "tests/test_pipeline_helpers.py::test_plan_start_should_train_and_fail_load_only_what_they_need",
        "performance.md names the helper commands run_pipeline.sh calls; this test runs plan, start, should-train "
        "and fail as the script does") for command in ("", " plan", " start", " should-train")},
    "pokewatch pipeline finish": mapped(
        "tests/test_alerts.py::test_the_webhook_secret_never_reaches_logs_manifest_or_output",
        "performance.md names the helper command; this test runs `pokewatch pipeline finish --attempt ...`"),
    "scripts/run_pipeline.sh --param workers=2 --param engine=loky": run(expect="succeeded", slow=True),
    "dask scheduler": not_run("starts a Dask scheduler on another host"),
    "dask worker tcp://scheduler-host:8786": not_run("starts a Dask worker on another host"),
    "DASK_SCHEDULER_ADDRESS=tcp://scheduler-host:8786 scripts/run_pipeline.sh --param workers=32 --param engine=dask":
        not_run("needs a Dask cluster at scheduler-host; tests/test_parallel.py runs the dask engine on a "
                "LocalCluster"),
    'make bench ARGS="--ref /work/ref"': not_run(
        "needs today's main checked out at /work/ref with its own .venv, and about an hour of both cores; "
        "tests/test_benchmarks.py runs the cases' parts (make bench is mapped above)"),
    ".venv/bin/python -m benchmarks --ref /work/ref --cases demo,rerun,backfill": not_run(
        "needs /work/ref and about half an hour (see make bench above)"),
    ".venv/bin/python -m benchmarks --ref /work/ref --cases daily,kernels --daily-scales 45000": not_run(
        "needs /work/ref, about half an hour and 10 GB for the 45,000-series collect (see make bench above)"),
    ".venv/bin/python -m benchmarks.report docs/performance.json": run(expect=r"wrote .*performance\.md"),
    ".venv/bin/python -m benchmarks.first_touch --gb 0.25 --waits 0,4": run(expect=r"\| 4 \| .* for 0\.25 GB"),
    ".venv/bin/python scripts/test_performance.py": run(PIPELINE, slow=True),
}

#: Commands that may call venv tools by bare name: they run on other hosts, or sit in a document
#: this project does not edit by hand (performance.md is generated).
BARE_ALLOWED = {"python -m benchmarks": "docs/performance.md is generated by make bench",
                **{f"pokewatch pipeline{c}": "docs/performance.md is generated by make bench"
                   for c in ("", " plan", " start", " should-train", " finish")},
                "dask scheduler": "on a Dask host, whatever its environment",
                "dask worker tcp://scheduler-host:8786": "on a Dask host, whatever its environment"}
