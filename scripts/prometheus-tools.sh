#!/usr/bin/env bash
# Prometheus tooling for the rules and Alertmanager config in deploy/prometheus: promtool and amtool from
# Debian's packages (prometheus, prometheus-alertmanager), unpacked project-local into .tools/prometheus
# (no service is installed or started).
#
# Usage: scripts/prometheus-tools.sh install        install if missing (idempotent)
#        scripts/prometheus-tools.sh path promtool  print the tool's absolute path (installing if needed)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="$ROOT/.tools/prometheus"
PACKAGES=(prometheus prometheus-alertmanager)
STAMP="$DIR/.installed"

installed() {
  [[ -f "$STAMP" && -x "$DIR/usr/bin/promtool" && -x "$DIR/usr/bin/amtool" ]]
}

install() {
  installed && return 0
  command -v apt-get >/dev/null || { echo "prometheus-tools: needs apt-get (Debian's packages)" >&2; exit 1; }
  local work
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  # apt-get download writes into the current directory; as root it warns that _apt cannot write there.
  if ! (cd "$work" && apt-get download "${PACKAGES[@]}" >/dev/null 2>"$work/err"); then
    apt-get update -qq >/dev/null
    (cd "$work" && apt-get download "${PACKAGES[@]}" >/dev/null 2>"$work/err") || {
      cat "$work/err" >&2
      exit 1
    }
  fi
  rm -rf "$DIR"
  mkdir -p "$DIR"
  for deb in "$work"/*.deb; do dpkg -x "$deb" "$DIR"; done
  "$DIR/usr/bin/promtool" --version 2>&1 | head -n 1 >"$STAMP"
  echo "prometheus-tools: $(cat "$STAMP"); $("$DIR/usr/bin/amtool" --version 2>&1 | head -n 1)"
}

case "${1:-}" in
  install) install ;;
  path)
    tool="${2:-}"
    [[ "$tool" == promtool || "$tool" == amtool ]] || { echo "usage: $0 path promtool|amtool" >&2; exit 2; }
    install >/dev/null
    echo "$DIR/usr/bin/$tool"
    ;;
  *) echo "usage: $0 install | path promtool|amtool" >&2; exit 2 ;;
esac
