#!/usr/bin/env bash
# Prints the build id of this checkout, for Worker Versioning (TEMPORAL_BUILD_ID; docs/upgrades.md):
#   <commit>                   the code the worker runs (src/, package.json, package-lock.json) is committed
#   <commit>-dirty-<digest>    it has uncommitted changes; the digest covers them, so every different
#                              working tree is a build of its own (and a pinned incident never meets code
#                              it did not start on)
#   src-<digest>               not a git checkout: a digest of those files
# Used by `make start`; a release uses its image tag or commit (docker build --build-arg BUILD_ID=...).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

paths=(src package.json package-lock.json)
digest() { sha256sum | cut -c1-"$1"; }

if commit="$(git rev-parse --short=12 HEAD 2>/dev/null)"; then
  if [[ -z "$(git status --porcelain --untracked-files=all -- "${paths[@]}")" ]]; then
    echo "$commit"
  else
    changes="$(
      {
        git diff HEAD --binary -- "${paths[@]}"
        git ls-files --others --exclude-standard -z -- "${paths[@]}" | xargs -0r sha256sum
      } | digest 8
    )"
    echo "$commit-dirty-$changes"
  fi
else
  echo "src-$(find "${paths[@]}" -type f -print0 | sort -z | xargs -0 sha256sum | digest 12)"
fi
