#!/usr/bin/env bash
# ansible-test needs the collection at .../ansible_collections/<namespace>/<name>: run it on a copy of the
# tracked (and new, unignored) files, offline, with the venv's Python.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${SLIPWAY_STACK_DIR:-$ROOT/.stack}"
COPY="$STATE/sanity/ansible_collections/slipway/platform"
PY="$ROOT/.venv/bin/python"
VERSION="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"

rm -rf "$COPY" && mkdir -p "$COPY"
git -C "$ROOT" ls-files -z --cached --others --exclude-standard | (cd "$ROOT" && xargs -0 cp --parents -t "$COPY" 2>/dev/null || true)
# ansible-test lists files through git when it can; give the copy its own throwaway repository.
git -C "$COPY" init -q && git -C "$COPY" add -A && git -C "$COPY" -c user.name=sanity -c user.email=sanity@localhost commit -qm sanity
cd "$COPY"
PATH="$ROOT/.venv/bin:$PATH" "$ROOT/.venv/bin/ansible-test" sanity --local --python "$VERSION" --color no "$@"
