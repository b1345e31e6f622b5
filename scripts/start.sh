#!/usr/bin/env bash
# `make start`: the Temporal dev server (UI on 8233) and the worker, in the foreground.
# Ctrl-C stops what this script started and keeps the data in .data/.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

export TEMPORAL_PORT="${TEMPORAL_PORT:-7233}"
export TEMPORAL_UI_PORT="${TEMPORAL_UI_PORT:-8233}"
export TEMPORAL_ADDRESS="${TEMPORAL_ADDRESS:-127.0.0.1:$TEMPORAL_PORT}"

bash scripts/deps.sh

started_temporal=0
if ! bash scripts/temporal.sh status >/dev/null 2>&1; then
  bash scripts/temporal.sh start
  started_temporal=1
fi

children=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${children[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${children[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ "$started_temporal" == 1 ]]; then bash scripts/temporal.sh stop; fi
  echo "stopped; data kept in .data/"
}
trap cleanup INT TERM EXIT

node_modules/.bin/tsx src/worker.ts &
children+=("$!")

cat <<MSG

  Temporal UI:      http://127.0.0.1:$TEMPORAL_UI_PORT
  Temporal address: $TEMPORAL_ADDRESS (namespace default, task queue incident-response)
  Press Ctrl-C to stop.

MSG

# Stop everything as soon as any child exits (a crashed worker must not look healthy).
wait -n "${children[@]}" || true
