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
set -Eeuo pipefail
# Every way this script stops says why: a command that fails under `set -e` is named before it exits.
trap 'status=$?; echo "make start: stopping: \"$BASH_COMMAND\" failed (exit $status, scripts/start.sh line $LINENO)" >&2' ERR
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

export TEMPORAL_PORT="${TEMPORAL_PORT:-7233}"
export TEMPORAL_UI_PORT="${TEMPORAL_UI_PORT:-8233}"
export TEMPORAL_ADDRESS="${TEMPORAL_ADDRESS:-127.0.0.1:$TEMPORAL_PORT}"
export TEMPORAL_UI_URL="${TEMPORAL_UI_URL:-http://127.0.0.1:$TEMPORAL_UI_PORT}"
export RECEIVER_PORT="${RECEIVER_PORT:-8088}"
export SANDBOX_CONTROL_PORT="${SANDBOX_CONTROL_PORT:-8090}"
SANDBOX="${SANDBOX:-on}"
DATA="${START_DATA_DIR:-$ROOT/.data}"
mkdir -p "$DATA" "$DATA/run"
rm -f "$DATA/run/"*.pid "$DATA/run/stopping"

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
  touch "$DATA/run/stopping"
  for pid in "${background[@]}" "${children[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  # The supervised processes themselves (a supervisor does not pass its TERM on to the running child).
  for file in "$DATA/run/"*.pid; do
    [[ -e "$file" ]] && kill -TERM "$(cat "$file")" 2>/dev/null || true
  done
  for file in "$DATA/run/"*.pid; do
    [[ -e "$file" ]] || continue
    pid="$(cat "$file")"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
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
  node --import tsx src/sandbox/main.ts &
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
RECEIVER_TOKEN_FILE_GIVEN="${RECEIVER_TOKEN_FILE:-}"
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
  local supervisor="$1" out=""
  for _ in $(seq 1 180); do
    if ! kill -0 "$supervisor" 2>/dev/null; then
      wait "$supervisor" && status=0 || status=$?
      explain_stop "$status"
      exit 1
    fi
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

# Why everything stops when a supervised process gave up (its supervisor's exit status).
explain_stop() {
  if (($1 == 2)); then
    echo "make start: stopping: fix the configuration named above and start again" >&2
  else
    echo "make start: stopping: a process kept crashing (see above)" >&2
  fi
}

# supervise NAME COMMAND...: runs the command and restarts it when it exits, after 1, 2, 4... (at most 30)
# seconds; gives up after 5 exits within 2 minutes. The pid of the running process is in $DATA/run/NAME.pid.
supervise() {
  local name="$1" delay=1 status=0
  shift
  local exits=()
  trap - ERR
  set +e
  while :; do
    "$@" &
    echo "$!" >"$DATA/run/$name.pid"
    wait "$!"
    status=$?
    [[ -e "$DATA/run/stopping" ]] && return 0
    if ((status == 2)); then
      echo "make start: the $name's configuration is invalid (message above); not restarting it" >&2
      return 2
    fi
    local now
    now="$(date +%s)"
    exits+=("$now")
    local recent=()
    for at in "${exits[@]}"; do ((now - at < 120)) && recent+=("$at"); done
    exits=("${recent[@]}")
    if ((${#exits[@]} >= 5)); then
      echo "make start: the $name exited ${#exits[@]} times within 2 minutes (last exit status $status); giving up" >&2
      return 1
    fi
    echo "make start: the $name exited (status $status); restarting it in ${delay}s" >&2
    sleep "$delay"
    delay=$((delay * 2 > 30 ? 30 : delay * 2))
  done
}

# The worker runs a workflow bundle built once here, as production workers run `npm run build`'s: it and each
# restart of it poll at once instead of running webpack first (bench/worker-start.ts: about half the start).
if [[ -z "${WORKFLOW_BUNDLE:-}" ]]; then
  echo "make start: building the workflow bundle"
  node --import tsx src/workflow-bundle.ts "$DATA/workflows.bundle.js" >/dev/null
  export WORKFLOW_BUNDLE="$DATA/workflows.bundle.js"
fi
supervise worker node --import tsx src/worker.ts &
children+=("$!")
supervisors=("$!")
for _ in $(seq 1 50); do [[ -s "$DATA/run/worker.pid" ]] && break; sleep 0.1; done
versioning_line="Worker:        unversioned (TEMPORAL_WORKER_VERSIONING=false)"
if [[ "$versioned" == true ]]; then
  set_current_version "${supervisors[0]}"
  versioning_line="Worker build:  $TEMPORAL_DEPLOYMENT_NAME:$TEMPORAL_BUILD_ID (current version; docs/upgrades.md)"
  elsewhere="$(pinned_elsewhere || true)"
  if [[ "${elsewhere:-0}" =~ ^[1-9] ]]; then
    versioning_line+="
                 $elsewhere open workflow(s) stay pinned to earlier builds and wait for a worker of theirs:
                 .tools/bin/temporal workflow list --query 'TemporalWorkerDeployment=\"$TEMPORAL_DEPLOYMENT_NAME\" AND ExecutionStatus=\"Running\"'
                 docs/upgrades.md (\"Open incidents of a build that is gone\") says how to run or move them."
  fi
fi
supervise receiver node --import tsx src/starters/receiver.ts &
children+=("$!")
supervisors+=("$!")
node bin/incidentctl.js schedules apply

# The token generated for this machine is shown so it can be pasted into Alertmanager's http_config;
# a token given through the environment is not echoed.
token_ref="\$(cat ${TOKEN_FILE#"$ROOT"/})"
if [[ -n "${RECEIVER_TOKEN:-}" ]]; then
  token_ref='$RECEIVER_TOKEN'
  token_line='token: the RECEIVER_TOKEN you set'
elif [[ -n "${RECEIVER_TOKEN_FILE_GIVEN:-}" ]]; then
  token_line="token: in $TOKEN_FILE"
else
  token_line="token (generated, also in ${TOKEN_FILE#"$ROOT"/}): $(cat "$TOKEN_FILE")"
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

# The worker and the receiver restart by themselves (supervise); everything stops when one of them keeps
# crashing, or when the sandbox exits: a product that cannot run must not look healthy.
set +e
wait -n "${children[@]}"
status=$?
if [[ ! -e "$DATA/run/stopping" ]]; then
  for pid in "${children[@]}"; do
    kill -0 "$pid" 2>/dev/null && continue
    if [[ " ${supervisors[*]} " == *" $pid "* ]]; then
      explain_stop "$status"
    else
      echo "make start: stopping: the sandbox exited (status $status; see above)" >&2
    fi
    break
  done
  exit 1
fi
