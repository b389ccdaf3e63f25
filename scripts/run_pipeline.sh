#!/usr/bin/env bash
# PokeWatch daily pipeline: collect -> train (weekly) -> evaluate, as papermill notebooks,
# into a dated run folder that is published only when every step succeeded.
set -Eeuo pipefail  # -E: the ERR trap also fires inside functions

usage() {
  cat <<'USAGE'
Usage: scripts/run_pipeline.sh [options]

Runs notebooks/collect, train and evaluate headlessly with papermill into a new attempt
folder under runs/attempts/, then publishes it as runs/<date> and runs/latest. Each
notebook's kernel starts and imports ahead of its turn; its cells run in turn.

Options:
  --date YYYY-MM-DD       trading day to run for (default: today; at most
                          POKEWATCH_MAX_FUTURE_DAYS, default 1, after today)
  --source NAME           price source: demo (default, offline), tcgcsv, pokemontcg,
                          pokemonpricetracker, file
  --archives DIR_OR_URL   tcgcsv: folder or URL of daily prices-YYYY-MM-DD.ppmd.7z archives
  --backfill FROM..TO     collect every day FROM..TO, then train and evaluate as of TO
  --force-train           train even when it is not Monday and a model exists
  --param NAME=VALUE      set a notebook parameter (repeatable); passed to every notebook
                          that declares NAME and validated before anything runs
  --wait-lock SECONDS     wait this long for another run's lock (default 0: exit at once)
  -h, --help              show this help

Relative paths (--archives, input_path, watchlist, portfolio_file) are relative to the
directory you run this from.

Environment:
  POKEWATCH_RUNS_DIR, POKEWATCH_DATA_DIR, POKEWATCH_CACHE_DIR   move runs, store, cache
  POKEWATCH_API_URL       when set, check the API's /health and ask it to /reload after a good run
  TQDM_DISABLE=1          no progress bars (recommended for cron logs)
  API keys (POKEMONTCG_API_KEY, POKEMONPRICETRACKER_API_KEY, ...) are read from the
  environment by the sources; never pass them as --param.

Output: one time-stamped line per step, the kernels' progress lines and the summary; each
step's full output (papermill, kernel) is kept in <attempt>/logs/<step>.log.

Exit status: 0 success, 2 bad parameters, 75 another run holds the lock, 1 a step failed
or the run was interrupted (the failed notebook is kept in its attempt folder, marked
failed in its manifest; runs/latest is untouched).

Examples:
  scripts/run_pipeline.sh                                   # today, demo market
  scripts/run_pipeline.sh --date 2026-01-05 --param buy_threshold=0.12
  scripts/run_pipeline.sh --source tcgcsv --archives ~/tcgcsv --backfill 2025-09-21..2025-09-27
USAGE
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${POKEWATCH_PYTHON:-$ROOT/.venv/bin/python}"
[[ -x "$PY" ]] || PY="$(command -v python3)"
# -P: never put the caller's directory on sys.path (run from another checkout, "-m" would
# import that checkout's pokewatch and miss this one's papermill engine)
PY=("$PY" -P)
# --engine pokewatch: kernels over IPC, not unencrypted TCP (pokewatch/run/kernel_engine.py);
# python3 is the one kernel name the notebooks, JupyterLab and this script use.
# pokewatch.run.papermill_cli is papermill's own CLI minus two imports it never uses
# here (1.8 s of start-up per notebook; see that module).
PAPERMILL=("${PY[@]}" -m pokewatch.run.papermill_cli --engine pokewatch --kernel python3 --log-level WARNING --no-progress-bar)
RUNS_DIR="${POKEWATCH_RUNS_DIR:-$ROOT/runs}"
# A kernel's progress lines, as pokewatch.run.context writes them: "<UTC time> <step>: ..."
PROGRESS_LINE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z [a-z]+: '

RUN_DATE="today" SOURCE="demo" ARCHIVES="" BACKFILL="" FORCE_TRAIN=0 WAIT_LOCK=0
PARAMS=() WALL=()
ATTEMPT="" PLAN_FILE="" CURRENT_STEP="" CURRENT_NOTEBOOK="" NOTEBOOK_STARTED=""
TRAIN=0 TRAINING_REASON="" RELEASE_DIR=""
declare -A AHEAD=()  # notebook -> its papermill job, started ahead of its turn (start_ahead)

stamp() { printf '%s pipeline: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }
log() { stamp "$@" >&2; }
die() { log "error: $1"; exit "${2:-2}"; }
stamped() { local line; while IFS= read -r line || [[ -n "$line" ]]; do log "$line"; done; }
cleanup() {
  stop_ahead
  [[ -z "$PLAN_FILE" ]] || rm -f "$PLAN_FILE"
  [[ -z "$RELEASE_DIR" ]] || rm -rf "$RELEASE_DIR"
}
trap cleanup EXIT

# Microseconds since the epoch, and seconds (one decimal) since such a time.
now_us() { local t=$EPOCHREALTIME; echo "${t//[.,]/}"; }
seconds_since() { local d=$(( $(now_us) - $1 )); printf '%d.%d' $((d / 1000000)) $((d % 1000000 / 100000)); }

parse_args() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --date|--source|--archives|--backfill|--param|--wait-lock)
        [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)" ;;
    esac
    case "$1" in
      --date) RUN_DATE="$2"; shift 2 ;;
      --source) SOURCE="$2"; shift 2 ;;
      --archives) ARCHIVES="$2"; shift 2 ;;
      --backfill) BACKFILL="$2"; FORCE_TRAIN=1; shift 2 ;;
      --force-train) FORCE_TRAIN=1; shift ;;
      --param) PARAMS+=(--param "$2"); shift 2 ;;
      --wait-lock) WAIT_LOCK="$2"; shift 2 ;;
      -h|--help) usage; exit 0 ;;
      *) usage >&2; die "unknown option $1" ;;
    esac
  done
  [[ "$WAIT_LOCK" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--wait-lock must be a number of seconds, 0 or more, got '$WAIT_LOCK'"
}

# Runs "$@" as step $1, logging one line when it starts and one with its duration.
step() {
  local name="$1" started; shift
  started=$(now_us)
  CURRENT_STEP="$name"
  log "step $name: started"
  "$@"
  log "step $name: done in $(seconds_since "$started")s"
}

# Keeps a step's whole output in its log file; passes the kernel's progress lines on.
progress_lines() {
  local line
  while IFS= read -r line || [[ -n "$line" ]]; do
    printf '%s\n' "$line" >>"$1"
    if [[ "$line" =~ $PROGRESS_LINE ]]; then printf '%s\n' "$line" >&2; fi
  done
}

# Starts notebook $1's papermill process now, before its turn and even before the run folder
# exists: it starts its kernel and loads the notebook's imports while the steps before it
# run, then waits for its command line (give_arguments) and its turn (release_notebook).
# See pokewatch/run/head_start.py. Its output goes to a log of its own until the run folder
# exists (keep_log). With $2 = idle it waits at idle CPU priority, taking only CPU time the
# running step leaves free: evaluate's, which has collect and train to warm up beside
# (train's, released right after collect, would not be ready in time; make bench measured
# both). Train's and evaluate's launchers also ask for the stored history to be read into the
# page cache meanwhile (pokewatch/data/read_ahead.py).
start_ahead() {
  local name="$1" idle=0 read_ahead=""
  [[ "${2:-}" == idle ]] && idle=1
  [[ "$name" == collect ]] || read_ahead="$SOURCE"  # train and evaluate read the whole history
  (
    trap - ERR INT TERM HUP
    POKEWATCH_STEP="$name" POKEWATCH_NOTEBOOK="$ROOT/notebooks/$name.ipynb" POKEWATCH_READ_AHEAD="$read_ahead" \
      POKEWATCH_ARGS_FILE="$RELEASE_DIR/$name.args" POKEWATCH_RELEASE="$RELEASE_DIR/$name" \
      POKEWATCH_RELEASE_OWNER=$$ POKEWATCH_RELEASE_IDLE=$idle "${PAPERMILL[@]}" --cwd "$ROOT/notebooks" 2>&1 \
      | progress_lines "$RELEASE_DIR/$name.log"
  ) &
  AHEAD[$name]=$!
}

# Writes its command line (parameters file, notebook, executed notebook) for every notebook
# started ahead that has none yet, once the attempt folder exists.
give_arguments() {
  local name file
  for name in "${!AHEAD[@]}"; do
    file="$RELEASE_DIR/$name.args"
    [[ -e "$file" ]] && continue
    printf '%s\0' -f "$ATTEMPT/params/$name.yaml" "$ROOT/notebooks/$name.ipynb" "$ATTEMPT/$name.ipynb" \
      >"$file.tmp" && mv -f "$file.tmp" "$file"
  done
}

# Tells notebook $1's waiting process to "run" or "skip" (once; a later call changes nothing).
release_notebook() {
  local file="$RELEASE_DIR/$1"
  [[ -e "$file" ]] || { printf '%s\n' "$2" >"$file.tmp" && mv -f "$file.tmp" "$file"; }
}

released() { [[ "$(cat "$RELEASE_DIR/$1" 2>/dev/null)" == run ]]; }

# Appends what notebook $1's process said so far to its log in the attempt folder.
keep_log() {
  [[ -n "$ATTEMPT" && -d "$ATTEMPT/logs" ]] || return 0
  touch "$ATTEMPT/logs/$1.log"
  [[ ! -e "$RELEASE_DIR/$1.log" ]] || { cat "$RELEASE_DIR/$1.log" >>"$ATTEMPT/logs/$1.log"; rm -f "$RELEASE_DIR/$1.log"; }
}

# Ends every notebook process started ahead: one still waiting is told to skip (it stops its
# kernel and exits; a signal could catch it halfway through starting that kernel), one
# running is interrupted. A notebook that never ran leaves no notebook and no log.
stop_ahead() {
  local name pid
  for name in "${!AHEAD[@]}"; do
    release_notebook "$name" skip 2>/dev/null || true
    if released "$name" && pid="$(cat "$RELEASE_DIR/$name.pid" 2>/dev/null)" && [[ -n "$pid" ]]; then
      kill -INT "$pid" 2>/dev/null || true
    fi
  done
  for name in "${!AHEAD[@]}"; do
    wait "${AHEAD[$name]}" 2>/dev/null || true
    if released "$name"; then keep_log "$name"; fi
  done
  AHEAD=()
}

# Marks the attempt failed (naming the notebook, cell and log); the helper also regenerates the index.
record_failure() {
  trap - ERR INT TERM HUP
  stop_ahead
  [[ -n "$ATTEMPT" ]] || return 0
  local step_log="$ATTEMPT/logs/${CURRENT_STEP:-start}.log"
  [[ -z "$NOTEBOOK_STARTED" ]] || WALL+=(--wall "$CURRENT_STEP=$(seconds_since "$NOTEBOOK_STARTED")")
  log "$("${PY[@]}" -m pokewatch pipeline fail --attempt "$ATTEMPT" --step "${CURRENT_STEP:-start}" \
    ${CURRENT_NOTEBOOK:+--notebook "$CURRENT_NOTEBOOK"} --log "$step_log" --message "$1" "${WALL[@]}" \
    2>>"$step_log" || echo "could not record the failure in $ATTEMPT/manifest.json")"
  log "FAILED at step ${CURRENT_STEP:-start}; executed notebooks kept in $ATTEMPT; runs/latest unchanged"
}

on_failure() { record_failure "exit status $?"; exit 1; }
on_signal() { log "interrupted by SIG$1"; record_failure "interrupted by SIG$1"; exit 1; }

run_notebook() {
  local name="$1" status=0
  CURRENT_NOTEBOOK="$ATTEMPT/$name.ipynb"
  NOTEBOOK_STARTED=$(now_us)
  if [[ -n "${AHEAD[$name]:-}" ]]; then
    release_notebook "$name" run
    wait "${AHEAD[$name]}" || status=$?
    unset "AHEAD[$name]"
    keep_log "$name"
    [[ $status -eq 0 ]] || return "$status"
  else
    : >"$ATTEMPT/logs/$name.log"
    POKEWATCH_STEP="$name" "${PAPERMILL[@]}" -f "$ATTEMPT/params/$name.yaml" "$ROOT/notebooks/$name.ipynb" \
      "$CURRENT_NOTEBOOK" --cwd "$ROOT/notebooks" 2>&1 | progress_lines "$ATTEMPT/logs/$name.log"
  fi
  WALL+=(--wall "$name=$(seconds_since "$NOTEBOOK_STARTED")")
  CURRENT_NOTEBOOK="" NOTEBOOK_STARTED=""
}

# Whether this run trains (it depends on the models of earlier runs, not on today's collect).
decide_training() {
  if TRAINING_REASON=$("${PY[@]}" -m pokewatch pipeline should-train --date "$RUN_DATE" --source "$SOURCE" \
      --attempt "$ATTEMPT" \
      $([[ $FORCE_TRAIN -eq 1 ]] && echo --force)); then
    TRAIN=1
  fi
}

maybe_train() {
  if [[ $TRAIN -eq 1 ]]; then
    log "training: $TRAINING_REASON"
    run_notebook train
  else
    log "not training: $TRAINING_REASON"
  fi
}

api_hooks() {
  "${PY[@]}" -m pokewatch notify reload 2>&1 | stamped \
    || log "warning: API reload at $POKEWATCH_API_URL failed (run is fine)"
  "${PY[@]}" -m pokewatch notify health 2>&1 | stamped \
    || log "warning: API health check at $POKEWATCH_API_URL failed (run is fine)"
}

main() {
  parse_args "$@"
  mkdir -p "$RUNS_DIR"
  # Collect's notebook starts now, beside the helpers, and train's (when it runs) and
  # evaluate's once the run folder exists: each kernel starts and imports beside the steps
  # before it (pokewatch/run/head_start.py).
  RELEASE_DIR="$(mktemp -d "${TMPDIR:-/tmp}/pokewatch-release.XXXXXX")"
  start_ahead collect
  PLAN_FILE="$(mktemp "${TMPDIR:-/tmp}/pokewatch-plan.XXXXXX")"
  RUN_DATE=$("${PY[@]}" -m pokewatch pipeline plan --date "$RUN_DATE" --source "$SOURCE" \
      --archives "$ARCHIVES" --backfill "$BACKFILL" --out "$PLAN_FILE" "${PARAMS[@]}") \
    || die "parameters rejected; nothing was run"

  exec 9>"$RUNS_DIR/.lock"
  if ! flock -w "$WAIT_LOCK" 9; then
    die "another pipeline run holds $RUNS_DIR/.lock; not starting (use --wait-lock SECONDS to wait)" 75
  fi

  ATTEMPT=$("${PY[@]}" -m pokewatch pipeline start "$PLAN_FILE" --pid $$) \
    || die "could not create the attempt folder in $RUNS_DIR/attempts; nothing was run" 1
  trap on_failure ERR
  trap 'on_signal INT' INT
  trap 'on_signal TERM' TERM
  trap 'on_signal HUP' HUP
  log "run $RUN_DATE (source $SOURCE) in $ATTEMPT"

  decide_training
  if [[ $TRAIN -eq 1 ]]; then start_ahead train; fi
  start_ahead evaluate idle
  give_arguments
  step collect run_notebook collect
  step train maybe_train
  step evaluate run_notebook evaluate
  step publish "${PY[@]}" -m pokewatch pipeline finish --attempt "$ATTEMPT" "${WALL[@]}"
  trap - ERR INT TERM HUP
  if [[ -n "${POKEWATCH_API_URL:-}" ]]; then step api api_hooks; fi
  log "run $RUN_DATE succeeded: $RUNS_DIR/$RUN_DATE"
}

main "$@"
