#!/usr/bin/env bash
# Project-local PostgreSQL cluster (Debian's postgresql package), on its own loopback port.
# Usage: scripts/postgres.sh install|start|stop|status|url
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PORT="${POSTGRES_PORT:-55432}"
DATA_DIR="${POSTGRES_DATA_DIR:-$ROOT/.data/postgres}"
SUPERUSER=fte

# The server runs as the 'postgres' user, which cannot enter a checkout under a private folder
# (mktemp -d makes mode 700). Then the cluster lives under /var/tmp and .data/postgres links to it.
place_data_dir() {
  [[ -n "${POSTGRES_DATA_DIR:-}" || "$(id -u)" != 0 || -e "$DATA_DIR" ]] && return 0
  mkdir -p "$(dirname "$DATA_DIR")"
  if runuser -u postgres -- test -x "$(dirname "$DATA_DIR")"; then return 0; fi
  local outside
  outside="/var/tmp/fte-incident-response/$(printf '%s' "$ROOT" | sha256sum | cut -c1-16)/postgres"
  mkdir -p "$outside"
  chmod 755 /var/tmp/fte-incident-response "$(dirname "$outside")"
  ln -sfn "$outside" "$DATA_DIR"
}
place_data_dir
DATA_DIR="$(readlink -f "$DATA_DIR")"
CLUSTER="$DATA_DIR/cluster"
PASSWORD_FILE="$DATA_DIR/password"
LOG="$DATA_DIR/postgres.log"

pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  if [[ -z "$dir" ]]; then
    echo "postgres: no PostgreSQL server found; run 'scripts/postgres.sh install' (needs apt-get)" >&2
    exit 1
  fi
  echo "$dir"
}

# initdb and postgres refuse to run as root: run them as the package's 'postgres' user.
as_owner() {
  if [[ "$(id -u)" == 0 ]]; then
    (cd "$DATA_DIR" 2>/dev/null || cd /; runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

install() {
  if ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then return 0; fi
  if [[ "$(id -u)" != 0 ]]; then
    echo "postgres: PostgreSQL is not installed; as root run: apt-get update && apt-get install -y postgresql" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

is_up() {
  pg_isready -q -h 127.0.0.1 -p "$PORT" 2>/dev/null
}

init_cluster() {
  [[ -f "$CLUSTER/PG_VERSION" ]] && return 0
  mkdir -p "$DATA_DIR"
  if [[ ! -f "$PASSWORD_FILE" ]]; then
    (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$PASSWORD_FILE")
  fi
  [[ "$(id -u)" == 0 ]] && chown -R postgres:postgres "$DATA_DIR/"
  as_owner "$(pg_bin)/initdb" -D "$CLUSTER" -U "$SUPERUSER" --pwfile="$PASSWORD_FILE" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$DATA_DIR/initdb.log"
  # A project cluster for tests and demos: generous connection limit for parallel test files.
  cat >>"$CLUSTER/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DATA_DIR'
max_connections = 200
fsync = off
logging_collector = off
CONF
}

start() {
  if is_up; then
    echo "postgres: reusing server on 127.0.0.1:$PORT"
    return 0
  fi
  install
  init_cluster
  [[ "$(id -u)" == 0 ]] && chown -R postgres:postgres "$DATA_DIR/"
  as_owner "$(pg_bin)/pg_ctl" -D "$CLUSTER" -l "$LOG" -w -t 60 -o "-p $PORT" start >/dev/null || {
    echo "postgres: failed to start; last log lines:" >&2
    tail -n 20 "$LOG" >&2 || true
    exit 1
  }
  echo "postgres: running on 127.0.0.1:$PORT"
}

stop() {
  if [[ -f "$CLUSTER/postmaster.pid" ]]; then
    as_owner "$(pg_bin)/pg_ctl" -D "$CLUSTER" -m fast -w stop >/dev/null || true
  fi
  echo "postgres: stopped"
}

status() {
  if is_up; then
    echo "postgres: running on 127.0.0.1:$PORT"
  else
    echo "postgres: not running"
    return 1
  fi
}

url() {
  [[ -f "$PASSWORD_FILE" ]] || { echo "postgres: not initialised; run 'scripts/postgres.sh start'" >&2; exit 1; }
  echo "postgres://$SUPERUSER:$(cat "$PASSWORD_FILE")@127.0.0.1:$PORT/postgres"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  url) url ;;
  *) echo "usage: $0 install|start|stop|status|url" >&2; exit 2 ;;
esac
