#!/usr/bin/env bash
# PokeWatch daily pipeline: collect -> train (weekly) -> evaluate, as papermill notebooks,
# into a dated run folder that is published only when every step succeeded.
set -Eeuo pipefail  # -E: the ERR trap also fires inside functions

usage() {
  cat <<'USAGE'
Usage: scripts/run_pipeline.sh [options]

Runs notebooks/collect, train and evaluate headlessly with papermill into a new attempt
folder under runs/attempts/, then publishes it as runs/<date> and runs/latest.

Options:
  --date YYYY-MM-DD       trading day to run for (default: today)
  --source NAME           price source: demo (default, offline), tcgcsv, pokemontcg,
                          pokemonpricetracker, file
  --archives DIR_OR_URL   tcgcsv: folder or URL of daily prices-YYYY-MM-DD.ppmd.7z archives
  --backfill FROM..TO     collect every day FROM..TO, then train and evaluate as of TO
  --force-train           train even when it is not Monday and a model exists
  --param NAME=VALUE      set a notebook parameter (repeatable); passed to every notebook
                          that declares NAME and validated before anything runs
  --wait-lock SECONDS     wait this long for another run's lock (default 0: exit at once)
  -h, --help              show this help

Environment:
  POKEWATCH_RUNS_DIR, POKEWATCH_DATA_DIR, POKEWATCH_CACHE_DIR   move runs, store, cache
  POKEWATCH_API_URL       when set, check the API's /health and ask it to /reload after a good run
  TQDM_DISABLE=1          no progress bars (recommended for cron logs)
  API keys (POKEMONTCG_API_KEY, POKEMONPRICETRACKER_API_KEY, ...) are read from the
  environment by the sources; never pass them as --param.

Exit status: 0 success, 2 bad parameters, 75 another run holds the lock, 1 a step failed
(the failed notebook is kept in its attempt folder; runs/latest is untouched).

Examples:
  scripts/run_pipeline.sh                                   # today, demo market
  scripts/run_pipeline.sh --date 2026-01-05 --param buy_threshold=0.12
  scripts/run_pipeline.sh --source tcgcsv --archives ~/tcgcsv --backfill 2025-09-21..2025-09-27
USAGE
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${POKEWATCH_PYTHON:-$ROOT/.venv/bin/python}"
[[ -x "$PY" ]] || PY="$(command -v python3)"
PAPERMILL=("$PY" -m papermill --kernel python3 --log-level WARNING --no-progress-bar)
RUNS_DIR="${POKEWATCH_RUNS_DIR:-$ROOT/runs}"

RUN_DATE="today" SOURCE="demo" ARCHIVES="" BACKFILL="" FORCE_TRAIN=0 WAIT_LOCK=0
PARAMS=()
ATTEMPT="" CURRENT_STEP="" CURRENT_NOTEBOOK=""

log() { printf '%s pipeline: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "error: $*"; exit "${2:-2}"; }

parse_args() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --date) RUN_DATE="${2:?--date needs a value}"; shift 2 ;;
      --source) SOURCE="${2:?--source needs a value}"; shift 2 ;;
      --archives) ARCHIVES="${2:?--archives needs a value}"; shift 2 ;;
      --backfill) BACKFILL="${2:?--backfill needs FROM..TO}"; FORCE_TRAIN=1; shift 2 ;;
      --force-train) FORCE_TRAIN=1; shift ;;
      --param) PARAMS+=(--param "${2:?--param needs NAME=VALUE}"); shift 2 ;;
      --wait-lock) WAIT_LOCK="${2:?--wait-lock needs seconds}"; shift 2 ;;
      -h|--help) usage; exit 0 ;;
      *) usage >&2; die "unknown option $1" ;;
    esac
  done
}

# Runs "$@" as step $1, logging one line with its duration.
step() {
  local name="$1"; shift
  local started=$SECONDS
  CURRENT_STEP="$name"
  log "step $name: started"
  "$@"
  log "step $name: done in $((SECONDS - started))s"
}

on_failure() {
  local status=$?
  trap - ERR
  if [[ -n "$ATTEMPT" ]]; then
    "$PY" -m pokewatch.pipeline fail --attempt "$ATTEMPT" --step "$CURRENT_STEP" \
      ${CURRENT_NOTEBOOK:+--notebook "$CURRENT_NOTEBOOK"} --message "exit status $status" >&2 || true
    log "FAILED at step $CURRENT_STEP; executed notebooks kept in $ATTEMPT; runs/latest unchanged"
  fi
  exit 1
}

run_notebook() {
  local name="$1"
  CURRENT_NOTEBOOK="$ATTEMPT/$name.ipynb"
  "${PAPERMILL[@]}" -f "$ATTEMPT/params/$name.yaml" "$ROOT/notebooks/$name.ipynb" "$CURRENT_NOTEBOOK" \
    --cwd "$ROOT/notebooks"
  CURRENT_NOTEBOOK=""
}

maybe_train() {
  local decision
  if decision=$("$PY" -m pokewatch.pipeline should-train --date "$RUN_DATE" --attempt "$ATTEMPT" \
      $([[ $FORCE_TRAIN -eq 1 ]] && echo --force)); then
    log "training: $decision"
    run_notebook train
  else
    log "not training: $decision"
  fi
}

api_hooks() {
  [[ -n "${POKEWATCH_API_URL:-}" ]] || return 0
  "$PY" -m pokewatch.api.notify reload >&2 || log "warning: API reload at $POKEWATCH_API_URL failed (run is fine)"
  "$PY" -m pokewatch.api.notify health >&2 || log "warning: API health check at $POKEWATCH_API_URL failed (run is fine)"
}

main() {
  parse_args "$@"
  mkdir -p "$RUNS_DIR"
  local plan_file
  plan_file="$(mktemp "${TMPDIR:-/tmp}/pokewatch-plan.XXXXXX")"
  RUN_DATE=$("$PY" -m pokewatch.pipeline plan --date "$RUN_DATE" --source "$SOURCE" \
      --archives "$ARCHIVES" --backfill "$BACKFILL" --out "$plan_file" "${PARAMS[@]}") \
    || die "parameters rejected; nothing was run"

  exec 9>"$RUNS_DIR/.lock"
  if ! flock -w "$WAIT_LOCK" 9; then
    die "another pipeline run holds $RUNS_DIR/.lock; not starting (use --wait-lock SECONDS to wait)" 75
  fi

  ATTEMPT=$("$PY" -m pokewatch.pipeline start "$plan_file")
  rm -f "$plan_file"
  trap on_failure ERR
  log "run $RUN_DATE (source $SOURCE) in $ATTEMPT"

  step collect run_notebook collect
  step train maybe_train
  step evaluate run_notebook evaluate
  step publish "$PY" -m pokewatch.pipeline finish --attempt "$ATTEMPT"
  trap - ERR
  step api api_hooks
  log "run $RUN_DATE succeeded: $RUNS_DIR/$RUN_DATE"
}

main "$@"
