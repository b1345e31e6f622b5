#!/usr/bin/env bash
# `make start`: the whole product on this machine. The Temporal dev server (UI on 8233), PostgreSQL, Kafka,
# the simulated FTE platform (Kubernetes API, fte-api, status pages) as the default target, the worker, the
# Alertmanager receiver and the monitor schedules. Ctrl-C stops what this script started; data stays in .data/.
#
# To run against a real platform instead of the sandbox, set SANDBOX=off and the worker's variables
# (KUBECONFIG, PLATFORM_DATABASE_URL, LEDGER_DATABASE_URL, KAFKA_BROKERS, FTE_API_URL, ...; see README).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

export TEMPORAL_PORT="${TEMPORAL_PORT:-7233}"
export TEMPORAL_UI_PORT="${TEMPORAL_UI_PORT:-8233}"
export TEMPORAL_ADDRESS="${TEMPORAL_ADDRESS:-127.0.0.1:$TEMPORAL_PORT}"
export TEMPORAL_UI_URL="${TEMPORAL_UI_URL:-http://127.0.0.1:$TEMPORAL_UI_PORT}"
export RECEIVER_PORT="${RECEIVER_PORT:-8088}"
export SANDBOX_CONTROL_PORT="${SANDBOX_CONTROL_PORT:-8090}"
SANDBOX="${SANDBOX:-on}"
DATA="$ROOT/.data"
mkdir -p "$DATA"

bash scripts/deps.sh

started=()
children=()
background=()
cleanup() {
  # Ctrl-C also reaches a pager or tee reading our output: keep stopping even if writing fails.
  trap - INT TERM EXIT
  trap '' PIPE
  echo
  echo "stopping..."
  for pid in "${background[@]}" "${children[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${children[@]}"; do wait "$pid" 2>/dev/null || true; done
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do bash "scripts/${started[$i]}.sh" stop >/dev/null 2>&1 || true; done
  echo "stopped; data kept in .data/"
}
trap cleanup INT TERM EXIT

service() {
  if ! bash "scripts/$1.sh" status >/dev/null 2>&1; then
    bash "scripts/$1.sh" start
    started+=("$1")
  fi
}

service temporal
if [[ "$SANDBOX" == on ]]; then
  service postgres
  service kafka
  # The sandbox's workloads run on a real Kubernetes control plane. Built once from the Go module proxy
  # (about 15 minutes on 2 cores): on a fresh machine the build runs in the background and the sandbox joins
  # the control plane when it is up; Kubernetes probes answer "unknown" until then.
  if bash scripts/kube-build.sh --check; then
    service kube
  elif ! bash scripts/kube.sh status >/dev/null 2>&1; then
    echo "make start: building the Kubernetes control plane in the background (first start only, about 15 minutes;"
    echo "            progress in .data/kube-build.log). Everything else starts now."
    (bash scripts/kube.sh start >"$DATA/kube-build.log" 2>&1 || echo "make start: the control plane did not start; see .data/kube-build.log" >&2) &
    background+=("$!")
    started+=(kube)
  fi
  export POSTGRES_ADMIN_URL KAFKA_BROKERS SANDBOX_ENV_FILE SANDBOX_DATA_DIR
  POSTGRES_ADMIN_URL="$(bash scripts/postgres.sh url)"
  KAFKA_BROKERS="127.0.0.1:${KAFKA_PORT:-19092}"
  SANDBOX_ENV_FILE="$DATA/sandbox/env"
  SANDBOX_DATA_DIR="$DATA/sandbox"
  mkdir -p "$DATA/sandbox"
  rm -f "$SANDBOX_ENV_FILE"
  node_modules/.bin/tsx src/sandbox/main.ts &
  children+=("$!")
  for _ in $(seq 1 120); do
    [[ -s "$SANDBOX_ENV_FILE" ]] && break
    kill -0 "${children[-1]}" 2>/dev/null || { echo "the sandbox failed to start" >&2; exit 1; }
    sleep 0.5
  done
  [[ -s "$SANDBOX_ENV_FILE" ]] || { echo "the sandbox did not come up within 60 s" >&2; exit 1; }
  set -a
  # shellcheck disable=SC1090
  source "$SANDBOX_ENV_FILE"
  set +a
fi

# The receiver's token: generated once, kept in .data (git-ignored), readable only by this user.
TOKEN_FILE="${RECEIVER_TOKEN_FILE:-$DATA/receiver-token}"
if [[ -z "${RECEIVER_TOKEN:-}" && ! -s "$TOKEN_FILE" ]]; then
  (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$TOKEN_FILE")
fi
[[ -n "${RECEIVER_TOKEN:-}" ]] || export RECEIVER_TOKEN_FILE="$TOKEN_FILE"

node_modules/.bin/tsx src/worker.ts &
children+=("$!")
node_modules/.bin/tsx src/starters/receiver.ts &
children+=("$!")
node bin/incidentctl.js schedules apply

# The token generated for this machine is shown so it can be pasted into Alertmanager's http_config;
# a token given through the environment is not echoed.
token_ref="\$(cat ${TOKEN_FILE#"$ROOT"/})"
token_line="token (generated, also in .data/receiver-token): $(cat "$TOKEN_FILE" 2>/dev/null)"
if [[ -n "${RECEIVER_TOKEN:-}" ]]; then
  token_ref='$RECEIVER_TOKEN'
  token_line='token: the RECEIVER_TOKEN you set'
elif [[ "$TOKEN_FILE" != "$DATA/receiver-token" ]]; then
  token_line="token: in $TOKEN_FILE"
fi
cat <<MSG

  Temporal UI:   $TEMPORAL_UI_URL
  Receiver:      http://127.0.0.1:$RECEIVER_PORT/webhooks/alertmanager
                 $token_line
  Operator CLI:  npx incidentctl list

  Break the simulated platform, then fire the alert Alertmanager would send:
    curl -X POST http://127.0.0.1:$SANDBOX_CONTROL_PORT/scenarios/api-down
    curl -H "Authorization: Bearer $token_ref" -H 'Content-Type: application/json' \\
      --data @docs/examples/alertmanager-all-channels-down.json http://127.0.0.1:$RECEIVER_PORT/webhooks/alertmanager
  Then: npx incidentctl show all-channels-down   and   npx incidentctl approve all-channels-down restart-api --as carol

  Every scenario (what it breaks, which runbook answers):  curl http://127.0.0.1:$SANDBOX_CONTROL_PORT/scenarios
  Rehearse one end to end:   npx incidentctl drill whatsapp-down --approve-as erin --complete-tasks-as erin
  The platform on Kubernetes: .tools/kube/bin/kubectl --kubeconfig .data/sandbox/kubeconfig get pods -n customer-success-fte

  Press Ctrl-C to stop.

MSG

# Stop everything as soon as any child exits: a crashed worker must not look healthy.
wait -n "${children[@]}" || true
