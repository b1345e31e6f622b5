#!/usr/bin/env bash
# `make start`: the whole product on this machine. The Temporal dev server (UI on 8233), PostgreSQL, Kafka,
# the simulated FTE platform (Kubernetes API, fte-api, status pages) as the default target, the worker, the
# Alertmanager receiver and the monitor schedules. Ctrl-C stops what this script started; data stays in .data/.
#
# To run against a real platform instead of the sandbox, set SANDBOX=off and the worker's variables
# (KUBECONFIG, PLATFORM_DATABASE_URL, LEDGER_DATABASE_URL, KAFKA_BROKERS, FTE_API_URL, ...; see README).
#
# The worker is a versioned build of the Worker Deployment TEMPORAL_DEPLOYMENT_NAME (default
# fte-incident-response): TEMPORAL_BUILD_ID defaults to this checkout's build (scripts/build-id.sh), and once
# the worker polls, this script makes that build the deployment's current version. Incidents opened on an
# earlier build stay pinned to it (docs/upgrades.md). TEMPORAL_WORKER_VERSIONING=false runs it unversioned.
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

# Worker Versioning (docs/upgrades.md): this checkout is one build of the deployment.
export TEMPORAL_DEPLOYMENT_NAME="${TEMPORAL_DEPLOYMENT_NAME:-fte-incident-response}"
if [[ "${TEMPORAL_WORKER_VERSIONING:-}" != false && -z "${TEMPORAL_BUILD_ID:-}" ]]; then
  TEMPORAL_BUILD_ID="$(bash scripts/build-id.sh)"
fi
export TEMPORAL_BUILD_ID="${TEMPORAL_BUILD_ID:-}"
versioned=false
[[ "${TEMPORAL_WORKER_VERSIONING:-}" != false && -n "$TEMPORAL_BUILD_ID" ]] && versioned=true
TEMPORAL_BIN="$(bash scripts/temporal.sh path)"

# The temporal CLI with the worker's connection (the CLI reads TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
# TEMPORAL_API_KEY, TEMPORAL_TLS and TEMPORAL_TLS_SERVER_NAME itself; the files are passed on).
temporal_cli() {
  local args=(--address "$TEMPORAL_ADDRESS" --namespace "${TEMPORAL_NAMESPACE:-default}")
  [[ -n "${TEMPORAL_TLS_CERT:-}" ]] && args+=(--tls-cert-path "$TEMPORAL_TLS_CERT" --tls-key-path "${TEMPORAL_TLS_KEY:-}")
  [[ -n "${TEMPORAL_TLS_CA:-}" ]] && args+=(--tls-ca-path "$TEMPORAL_TLS_CA")
  local key="${TEMPORAL_API_KEY:-}"
  [[ -n "${TEMPORAL_API_KEY_FILE:-}" ]] && key="$(tr -d '[:space:]' <"$TEMPORAL_API_KEY_FILE")"
  TEMPORAL_API_KEY="$key" "$TEMPORAL_BIN" --disable-config-file "$@" "${args[@]}"
}

# The server routes new workflows to a build only once it is the current version, and accepts it as such
# only once its worker polls: retry until then (the worker bundles its workflows first).
set_current_version() {
  local worker_pid="$1" out=""
  for _ in $(seq 1 180); do
    kill -0 "$worker_pid" 2>/dev/null || { echo "the worker exited before it polled" >&2; exit 1; }
    if out="$(temporal_cli worker deployment set-current-version --yes \
      --deployment-name "$TEMPORAL_DEPLOYMENT_NAME" --build-id "$TEMPORAL_BUILD_ID" 2>&1)"; then
      echo "worker: $TEMPORAL_DEPLOYMENT_NAME:$TEMPORAL_BUILD_ID is the current version"
      return 0
    fi
    sleep 1
  done
  echo "could not make $TEMPORAL_DEPLOYMENT_NAME:$TEMPORAL_BUILD_ID the current version: $out" >&2
  exit 1
}

# Open workflows pinned to other builds of the deployment wait for a worker of their build.
pinned_elsewhere() {
  temporal_cli workflow count --query "TemporalWorkerDeployment=\"$TEMPORAL_DEPLOYMENT_NAME\" \
AND TemporalWorkflowVersioningBehavior=\"Pinned\" AND ExecutionStatus=\"Running\" \
AND TemporalWorkerDeploymentVersion!=\"$TEMPORAL_DEPLOYMENT_NAME:$TEMPORAL_BUILD_ID\"" 2>/dev/null |
    sed -n 's/^Total: *//p'
}

node_modules/.bin/tsx src/worker.ts &
children+=("$!")
versioning_line="Worker:        unversioned (TEMPORAL_WORKER_VERSIONING=false)"
if [[ "$versioned" == true ]]; then
  set_current_version "${children[-1]}"
  versioning_line="Worker build:  $TEMPORAL_DEPLOYMENT_NAME:$TEMPORAL_BUILD_ID (current version; docs/upgrades.md)"
  elsewhere="$(pinned_elsewhere || true)"
  if [[ "${elsewhere:-0}" =~ ^[1-9] ]]; then
    versioning_line+="
                 $elsewhere open workflow(s) stay pinned to earlier builds and wait for a worker of theirs:
                 .tools/bin/temporal workflow list --query 'TemporalWorkerDeployment=\"$TEMPORAL_DEPLOYMENT_NAME\" AND ExecutionStatus=\"Running\"'
                 docs/upgrades.md (\"Open incidents of a build that is gone\") says how to run or move them."
  fi
fi
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
  $versioning_line
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
