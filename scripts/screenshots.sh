#!/usr/bin/env bash
# The screenshots of docs/managers.md, taken from the live product with headless Chromium, so the pictures
# follow the Temporal UI and the search attributes when either changes.
#
# Usage: scripts/screenshots.sh                 take them (writes docs/images/managers/*.png)
#        scripts/screenshots.sh install         only install Chromium if it is missing
#
# Uses a running `make start` when the Temporal UI answers at TEMPORAL_UI_URL (default
# http://127.0.0.1:8233); otherwise starts `make start` in the background (log: .data/screenshots-start.log)
# and stops it at the end. The product is put into the states the pictures show with its own commands
# (scripts/screenshots.ts says which). Chromium is Debian's `chromium`, installed with apt-get when it is
# missing and we are root. Every request goes to loopback only.
set -Eeuo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

install_chromium() {
  [[ -x "$CHROMIUM" ]] && return 0
  if [[ "$CHROMIUM" != /usr/bin/chromium ]]; then
    echo "screenshots: CHROMIUM=$CHROMIUM is not an executable" >&2
    exit 1
  fi
  if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
    echo "screenshots: Chromium is not installed; as root run: apt-get update && apt-get install -y --no-install-recommends chromium" >&2
    echo "             (or point CHROMIUM at another Chromium or Chrome binary)" >&2
    exit 1
  fi
  echo "screenshots: installing Debian's chromium (apt-get, once)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
  fi
  "$CHROMIUM" --version
}

case "${1:-}" in
  install)
    install_chromium
    exit 0
    ;;
  "") ;;
  *)
    echo "usage: scripts/screenshots.sh [install]" >&2
    exit 2
    ;;
esac

install_chromium
NODE_BIN="$(bash scripts/node.sh bin)"
export PATH="$NODE_BIN:$PATH"
export CHROMIUM
exec node --import tsx scripts/screenshots.ts
