#!/usr/bin/env bash
# Build Slipway's execution environment (execution-environment.yml, ansible-builder v3) here, where nothing can be
# pulled from a registry and nothing inside a container build reaches a package index (docs/ci.md):
#
#   hack/ee-build.sh            the last line it prints is the image: slipway/ee:<content hash> (also :latest)
#   hack/ee-build.sh --tools    only step 1: ansible-builder and ansible-runner in .stack/ee/tools (no Docker)
#
# 1. tools: ansible-builder and ansible-runner (pinned below) in .stack/ee/tools;
# 2. wheels: every Python package the image needs, fetched from PyPI by pip on this host (whose Python 3.11 and
#    glibc 2.36 are the image's) into .stack/ee/files/wheels, at the versions ../requirements.txt pins; the builds install from
#    them with PIP_NO_INDEX;
# 3. the base: slipway/ee-base:bookworm = the stack's slipway/debian:bookworm + Debian's python3 and pip (apt, as
#    hack/deps-images.sh does) + ansible-core and ansible-runner from the wheels;
# 4. the collection: `ansible-galaxy collection build` of this checkout, and ansible.posix from the pinned `ansible`
#    package (ansible.cfg enables its profile_tasks callback; Galaxy is not reachable);
# 5. the image, by `ansible-builder build --container-runtime docker` with Docker's classic builder (no BuildKit
#    here), tagged by the hash of everything that goes into it: a second run with nothing changed builds nothing.
# Needs DOCKER_HOST (source .stack/env). Each step that is up to date says so and takes a second.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EE="$ROOT/.stack/ee"  # execution-environment.yml names its build files relative to the checkout: .stack/ee/files
FILES="$EE/files"
BUILDER_VERSION=3.2.0
RUNNER_VERSION=2.4.3
DUMB_INIT_VERSION=1.2.5  # the final stage of ansible-builder 3.2.0 installs it
DEBIAN_IMAGE=slipway/debian:bookworm
BASE_IMAGE=slipway/ee-base:bookworm
IMAGE=slipway/ee
export DOCKER_BUILDKIT=0  # the classic builder: this engine has no BuildKit (buildx)

say() { printf '[ee-build] %s\n' "$*" >&2; }
digest() { sha256sum | cut -c1-16; }

mkdir -p "$EE" "$FILES/wheels" "$FILES/collections" "$FILES/ansible_posix"
exec 9>"$EE/build.lock"
flock 9  # one build at a time: two would fill the same folders

# 1. tools
if [ "$("$EE/tools/bin/ansible-builder" --version 2>/dev/null || true)" != "$BUILDER_VERSION" ] ||
    ! "$EE/tools/bin/ansible-runner" --version 2>/dev/null | grep -qx "$RUNNER_VERSION"; then
  say "tools: ansible-builder $BUILDER_VERSION, ansible-runner $RUNNER_VERSION in $EE/tools"
  python3 -m venv "$EE/tools"
  "$EE/tools/bin/python" -m pip install --quiet --disable-pip-version-check -c "$ROOT/requirements.txt" \
    "ansible-builder==$BUILDER_VERSION" "ansible-runner==$RUNNER_VERSION"
fi
if [ "${1:-}" = --tools ]; then
  echo "$EE/tools/bin"
  exit 0
fi

# 2. wheels, pinned: requirements.txt, plus the three packages only the image needs
constraints="$EE/constraints.txt"
{ cat "$ROOT/requirements.txt"; echo "ansible-runner==$RUNNER_VERSION"; echo "dumb-init==$DUMB_INIT_VERSION"; } \
  > "$constraints"
wanted=(ansible-core ansible-runner "dumb-init" bindep packaging -r "$ROOT/meta/requirements.txt")
stamp="$(cat "$constraints" "$ROOT/meta/requirements.txt" | digest)"
if [ "$(cat "$FILES/wheels/.stamp" 2>/dev/null || true)" != "$stamp" ]; then
  # this host is the image's platform (Debian bookworm: Python 3.11, glibc 2.36, x86_64), so pip's own tags fit
  python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
    { say "python3 here is not 3.11, the image's Python: its wheels would not fit"; exit 1; }
  say "wheels from PyPI into $FILES/wheels"
  rm -rf "$FILES/wheels" && mkdir -p "$FILES/wheels"
  python3 -m pip download --quiet --disable-pip-version-check --dest "$FILES/wheels" --only-binary=:all: \
    -c "$constraints" "${wanted[@]}"
  echo "$stamp" > "$FILES/wheels/.stamp"
fi
say "wheels up to date: $(find "$FILES/wheels" -name '*.whl' | wc -l) files"

# 3. the base image
core="ansible-core==$(sed -n 's/^ansible-core==//p' "$ROOT/requirements.txt")"
recipe=$(cat <<RECIPE
FROM $DEBIAN_IMAGE
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
      python3 python3-pip ca-certificates >/dev/null && rm -rf /var/lib/apt/lists/*
COPY wheels /tmp/wheels
RUN python3 -m pip install --no-cache-dir --no-index --find-links /tmp/wheels --break-system-packages \\
      $core ansible-runner==$RUNNER_VERSION && rm -rf /tmp/wheels
RECIPE
)
base_hash="$( { echo "$recipe"; docker image inspect -f '{{.Id}}' "$DEBIAN_IMAGE"; } | digest)"
if [ "$(docker image inspect -f '{{index .Config.Labels "io.slipway.recipe"}}' "$BASE_IMAGE" 2>/dev/null || true)" \
    != "$base_hash" ]; then
  say "base image $BASE_IMAGE from $DEBIAN_IMAGE"
  context="$(mktemp -d)"
  trap 'rm -rf "$context"' EXIT
  cp -r "$FILES/wheels" "$context/wheels"
  printf '%s\nLABEL io.slipway.recipe=%s\n' "$recipe" "$base_hash" > "$context/Dockerfile"
  docker build -q -t "$BASE_IMAGE" "$context" >/dev/null
fi
say "base image up to date: $BASE_IMAGE"

# 4. the collection and ansible.posix
build="$(mktemp -d)"
"$ROOT/.venv/bin/ansible-galaxy" collection build "$ROOT" --output-path "$build" >/dev/null
tarball="$(ls "$build"/slipway-platform-*.tar.gz)"
collection_hash="$(tar -xOzf "$tarball" MANIFEST.json FILES.json | digest)"  # the files' checksums, not mtimes
cp "$tarball" "$FILES/collections/slipway-platform.tar.gz"
rm -rf "$build"
posix="$("$ROOT/.venv/bin/python" -c 'import importlib.util as u
print(u.find_spec("ansible_collections.ansible.posix").submodule_search_locations[0])')"
rm -rf "$FILES/ansible_posix" && cp -r "$posix" "$FILES/ansible_posix"

# 5. the image, named by its content
inputs="$(printf '%s %s\n' \
  "execution-environment.yml" "$(digest < "$ROOT/execution-environment.yml")" \
  "meta/" "$(cat "$ROOT/meta/requirements.txt" "$ROOT/meta/bindep.txt" | digest)" \
  "wheels" "$(cat "$FILES/wheels/.stamp")" \
  "ansible.posix" "$(digest < "$FILES/ansible_posix/MANIFEST.json")" \
  "collection" "$collection_hash" \
  "ansible-builder" "$BUILDER_VERSION" \
  "base" "$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE")")"
tag="$(echo "$inputs" | digest)"
if docker image inspect "$IMAGE:$tag" >/dev/null 2>&1; then
  say "image up to date: $IMAGE:$tag (nothing changed since it was built)"
else
  changed="$( { diff <(cat "$EE/inputs" 2>/dev/null || true) <(echo "$inputs") || true; } |
              sed -n 's/^> \([^ ]*\) .*/\1/p' | xargs)"
  say "image $IMAGE:$tag (changed since the last build: ${changed:-everything}): ansible-builder build"
  say "log: $EE/build.log"
  if ! (cd "$ROOT" && "$EE/tools/bin/ansible-builder" build --file execution-environment.yml \
          --context "$EE/context" --container-runtime docker --tag "$IMAGE:$tag" --tag "$IMAGE:latest" \
          --verbosity 2) > "$EE/build.log" 2>&1; then
    tail -n 40 "$EE/build.log" >&2
    say "ansible-builder build failed; the whole log is $EE/build.log"
    exit 1
  fi
fi
echo "$inputs" > "$EE/inputs"
docker tag "$IMAGE:$tag" "$IMAGE:latest"
echo "$IMAGE:$tag"
