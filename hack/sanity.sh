#!/usr/bin/env bash
# ansible-test needs the collection at .../ansible_collections/<namespace>/<name>: run it on a copy of the
# tracked (and new, unignored) files, offline, with the venv's Python.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${SLIPWAY_STACK_DIR:-$ROOT/.stack}"
COPY="$STATE/sanity/ansible_collections/slipway/platform"
PY="$ROOT/.venv/bin/python"
VERSION="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"

# ansible-test downloads a pip bootstrap script for each venv it makes; that host is unreachable here. This
# stand-in does the same job offline: ensurepip, then pip installs the pip version ansible-test asks for.
PIP_VERSION="$("$PY" - <<'PYEOF'
import pathlib, re, ansible_test
text = (pathlib.Path(ansible_test.__file__).parent / "_internal/python_requirements.py").read_text()
print(re.search(r"pip='([0-9.]+)'", text).group(1))
PYEOF
)"
BOOTSTRAP="$HOME/.ansible/test/cache/get_pip_${PIP_VERSION//./_}.py"
mkdir -p "$(dirname "$BOOTSTRAP")"
cat > "$BOOTSTRAP" <<'PYEOF'
"""Offline stand-in for get-pip.py (written by Slipway's hack/sanity.sh)."""
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
wanted = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
if wanted:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--quiet", *wanted])
PYEOF

rm -rf "$COPY" && mkdir -p "$COPY"
# Only what the collection ships is sanity-tested: the stack, benchmarks, CI glue, the example and catalogue
# ecosystem are project infrastructure (galaxy.yml build_ignore leaves them out of the collection too).
git -C "$ROOT" ls-files -z --cached --others --exclude-standard \
  | grep -zvE '^(hack|bench|\.ci|examples|catalogue)/' \
  | (cd "$ROOT" && xargs -0 cp --parents -t "$COPY" 2>/dev/null || true)
# ansible-test lists files through git when it can; give the copy its own throwaway repository.
git -C "$COPY" init -q && git -C "$COPY" add -A && git -C "$COPY" -c user.name=sanity -c user.email=sanity@localhost commit -qm sanity
cd "$COPY"
PATH="$ROOT/.venv/bin:$PATH" "$ROOT/.venv/bin/ansible-test" sanity --local --python "$VERSION" --color no "$@"
