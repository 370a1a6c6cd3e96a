#!/usr/bin/env bash
# Client-only install: what running Slipway's playbooks against a remote context needs (docs/ci.md), without root,
# Docker or Go. A CI agent runs it first in every job:
#   hack/client-install.sh [DIR]        (default .slipway; `make client` does the same)
# DIR becomes a virtual environment with the pinned runtime tools (ansible and meta/requirements.txt, at the versions
# requirements.txt pins), the collection built with `ansible-galaxy collection build` and installed from that tarball
# into DIR/collections, and DIR/env, which a step sources: PATH (ansible-playbook, slipway-ci) and
# ANSIBLE_COLLECTIONS_PATH (the installed collection, not this checkout). Running it again reuses the environment.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${1:-.slipway}
mkdir -p "$target"
target=$(cd "$target" && pwd)
python=${PYTHON:-python3}

say() { echo "client-install: $*"; }

if [ ! -x "$target/bin/python" ]; then
    say "virtual environment $target"
    "$python" -m venv "$target"
fi
say "pinned runtime tools (ansible, meta/requirements.txt)"
"$target/bin/python" -m pip install --quiet --disable-pip-version-check \
    -c "$root/requirements.txt" ansible -r "$root/meta/requirements.txt"

build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
say "collection slipway.platform: ansible-galaxy collection build, then install from the tarball"
"$target/bin/ansible-galaxy" collection build "$root" --output-path "$build" >/dev/null
tarball=$(ls "$build"/slipway-platform-*.tar.gz)
ANSIBLE_COLLECTIONS_PATH="$target/collections" \
    "$target/bin/ansible-galaxy" collection install "$tarball" -p "$target/collections" --force >/dev/null

installed="$target/collections/ansible_collections/slipway/platform"
cat > "$target/bin/slipway-ci" <<LAUNCHER
#!/bin/sh
exec "$target/bin/python" "$installed/bin/slipway-ci" "\$@"
LAUNCHER
chmod 0755 "$target/bin/slipway-ci"

cat > "$target/env" <<ENV
# Source this (. $target/env) to run Slipway's playbooks with this client install.
export PATH="$target/bin:\$PATH"
export ANSIBLE_COLLECTIONS_PATH="$target/collections"
ENV
say "done: . $target/env && slipway-ci -- -i inventories/<context> playbooks/deliver.yml --check"
