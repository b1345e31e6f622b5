#!/usr/bin/env bash
# Builds the real Kubernetes control plane into .tools/kube/bin from the Go module proxy:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok and metrics-server. The versions are the
# build modules in scripts/kube/build/*/go.mod (go.sum pins every dependency); a binary is rebuilt
# only when its module changed. The first build takes about 15 minutes on 2 cores; later ones reuse
# Go's module and build caches.
#
#   scripts/kube-build.sh          build what is missing or stale (progress on stderr)
#   scripts/kube-build.sh --check  exit 0 when every binary is built and current, else 1
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$ROOT/scripts/kube/build"
BIN="$ROOT/.tools/kube/bin"
K8S_VERSION=v1.37.2

export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -trimpath" CGO_ENABLED=0

die() { echo "kube-build: $*" >&2; exit 1; }

# module dir, binary name, package
TARGETS=(
  "etcd etcd go.etcd.io/etcd/server/v3"
  "kubernetes kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver"
  "kubernetes kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager"
  "kubernetes kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler"
  "kubernetes kubectl k8s.io/kubernetes/cmd/kubectl"
  "kwok kwok sigs.k8s.io/kwok/cmd/kwok"
  "metrics-server metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server"
)

stamp_of() { cat "$BUILD/$1/go.mod" "$BUILD/$1/go.sum" | sha256sum | cut -d' ' -f1; }

current() { [[ -x "$BIN/$2" && -f "$BIN/.$2.stamp" && "$(cat "$BIN/.$2.stamp")" == "$(stamp_of "$1")" ]]; }

all_current() {
  local t
  for t in "${TARGETS[@]}"; do
    # shellcheck disable=SC2086
    current $t || return 1
  done
}

ldflags_for() {
  case "$1" in
    kubernetes)
      local major=${K8S_VERSION#v}
      major=${major%%.*}
      local minor=${K8S_VERSION#v*.}
      minor=${minor%%.*}
      local p=k8s.io/component-base/version
      echo "-s -w -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
      ;;
    kwok) echo "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=0.8.0" ;;
    metrics-server)
      local version
      version="$(sed -n 's/^[[:space:]]*sigs\.k8s\.io\/metrics-server \(v[^ ]*\).*/\1/p' "$BUILD/metrics-server/go.mod")"
      echo "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$version -X k8s.io/client-go/pkg/version.gitTreeState=clean"
      ;;
    *) echo "-s -w" ;;
  esac
}

build() {
  command -v go >/dev/null || die "go not found (the machine's Go toolchain builds the control plane)"
  mkdir -p "$BIN"
  exec 7>"$BIN/.build.lock"
  flock 7
  local t dir name pkg n=0 total=${#TARGETS[@]} started
  for t in "${TARGETS[@]}"; do
    read -r dir name pkg <<<"$t"
    n=$((n + 1))
    if current "$dir" "$name"; then
      echo "kube-build: [$n/$total] $name is current" >&2
      continue
    fi
    echo "kube-build: [$n/$total] building $name ($pkg); the first build of the control plane takes about 15 minutes on 2 cores" >&2
    started=$SECONDS
    (
      cd "$BUILD/$dir"
      go build -ldflags "$(ldflags_for "$dir")" -o "$BIN/$name.tmp" "$pkg"
    ) || die "building $name failed"
    mv -f "$BIN/$name.tmp" "$BIN/$name"
    stamp_of "$dir" >"$BIN/.$name.stamp"
    echo "kube-build: [$n/$total] $name built in $((SECONDS - started)) s" >&2
  done
  exec 7>&-
}

case "${1:-}" in
  --check) all_current ;;
  "") build ;;
  *)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac
