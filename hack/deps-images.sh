#!/usr/bin/env bash
# Build the local images that service templates use as real dependencies and runtimes, from Debian
# packages only, because nothing can be pulled from a registry here:
#
#   slipway/postgres:15       PostgreSQL 15 server + client; applies /fixtures/*.sql at every start
#   slipway/redis:7           Redis 7 server; applies /fixtures/*.redis at every start
#   slipway/python:bookworm   Python 3 with the drivers the backend and worker templates use
#                             (psycopg2, redis) and pyflakes for their style test
#
# Each image is a debootstrapped minbase tree with the packages included, then `docker import`ed: the
# host fetches the .deb files (so builds need no network inside a container), and one package cache is
# shared between the three trees. An image built from the same recipe is kept (a label records it); pass
# --force to rebuild anyway. Needs root (debootstrap) and DOCKER_HOST pointing at the engine; a cold build takes
# a few minutes per image and says which debootstrap stage it is in, a cached one a second. Concurrent runs (make
# deps-images, the integration tests) take turns instead of sharing a build tree.
#
#   hack/deps-images.sh [--force] [postgres|redis|python ...]      (make deps-images runs it after make up)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${SLIPWAY_STACK_DIR:-$ROOT/.stack}"
BUILD="$STATE/build/deps"
CACHE="$STATE/build/apt-cache"
LOG="$STATE/logs/deps-images.log"
SUITE=bookworm

say() { printf '[deps-images] %s\n' "$*"; }

force=false
wanted=()
for arg in "$@"; do
  case "$arg" in
    --force) force=true ;;
    postgres|redis|python) wanted+=("$arg") ;;
    *) echo "usage: $0 [--force] [postgres|redis|python ...]" >&2; exit 2 ;;
  esac
done
[ ${#wanted[@]} -gt 0 ] || wanted=(postgres redis python)

# The mirror apt is configured with (the stack's debian base image is made from the same one).
mirror() {
  local uri
  uri="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -n1 || true)"
  [ -n "$uri" ] || uri="$(awk '/^deb / && !/security/ {for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) {print $i; exit}}' /etc/apt/sources.list 2>/dev/null || true)"
  echo "${uri:-http://deb.debian.org/debian}"
}

# unmount_below TREE: what debootstrap left mounted there (seen: its /proc), deepest first; archived, a mounted
# /proc fails the import, and rm -rf must not walk into it.
unmount_below() {
  local tree
  tree="$(realpath -m "$1")"
  awk -v p="$tree/" 'index($2, p) == 1 { print length($2), $2 }' /proc/self/mounts | sort -rn | cut -d' ' -f2- |
    while read -r point; do umount --lazy "$point" || true; done
}

# debootstrap_stages REF: one line per debootstrap stage read on stdin (the full output goes to the log), so a
# cold build of several minutes shows where it is.
debootstrap_stages() {
  awk -v ref="$1" '
    BEGIN { names["Retrieving"] = "downloading packages"; names["Extracting"] = "extracting"
            names["Installing"] = "installing core packages"; names["Unpacking"] = "unpacking"
            names["Configuring"] = "configuring" }
    $1 == "I:" && $2 == "Retrieving" && ++fetched % 50 == 0 { printf "[deps-images] %s: %d downloaded\n", ref, fetched }
    $1 == "I:" && ($2 in names) && !seen[$2]++ { printf "[deps-images] %s: %s\n", ref, names[$2] }
    { fflush() }'
}

# build_image REF PACKAGES IMPORT-CHANGES... : debootstrap, run the image's setup hook, import.
build_image() {
  local ref="$1" packages="$2" name="$3"; shift 3
  # The recipe (packages, image settings, setup hook) is hashed into a label: an image built from an older
  # recipe is rebuilt, an image from this one is kept.
  local recipe
  recipe="$( { printf '%s\n' "$ref" "$packages" "$@"; declare -f "setup_$name"; } | sha256sum | cut -c1-16)"
  if ! $force && [ "$(docker image inspect -f '{{ index .Config.Labels "org.slipway.recipe" }}' "$ref" 2>/dev/null)" = "$recipe" ]; then
    say "$ref: cached (recipe $recipe)"
    return
  fi
  local tree="$BUILD/$name" started=$SECONDS
  unmount_below "$tree"
  rm -rf "$tree"
  mkdir -p "$tree" "$CACHE" "$(dirname "$LOG")"
  say "$ref: debootstrap --include=$packages (log: $LOG)"
  if ! debootstrap --variant=minbase --cache-dir="$CACHE" --include="$packages" "$SUITE" "$tree" "$(mirror)" 2>&1 |
      tee -a "$LOG" | debootstrap_stages "$ref"; then
    say "$ref: debootstrap failed; the end of $LOG:"
    tail -n 20 "$LOG" >&2
    exit 1
  fi
  unmount_below "$tree"
  "setup_$name" "$tree"
  # Trim what a container never reads; copyright files stay (licence checks read them).
  rm -rf "$tree"/usr/share/man/* "$tree"/usr/share/info/* "$tree"/usr/share/locale/* \
    "$tree"/var/lib/apt/lists/* "$tree"/var/cache/apt/*.bin "$tree"/var/cache/debconf/*-old
  local changes=()
  for change in "$@"; do changes+=(--change "$change"); done
  tar -C "$tree" --one-file-system -c . | docker import "${changes[@]}" \
    --change "LABEL org.opencontainers.image.description=\"$name from Debian $SUITE packages: $packages\"" \
    --change "LABEL org.slipway.recipe=$recipe" \
    - "$ref" >>"$LOG"
  rm -rf "$tree"
  say "$ref: built in $((SECONDS - started)) s"
}

setup_postgres() {
  local tree="$1"
  # The package's postinst made a default cluster under /etc and /var/lib; the entrypoint makes its own.
  rm -rf "$tree"/etc/postgresql/15 "$tree"/var/lib/postgresql/15
  install -d -o "$(chroot "$tree" id -u postgres)" -g "$(chroot "$tree" id -g postgres)" -m 0700 \
    "$tree/var/lib/postgresql/data"
  install -d -o "$(chroot "$tree" id -u postgres)" -g "$(chroot "$tree" id -g postgres)" -m 0775 \
    "$tree/var/run/postgresql" "$tree/docker-entrypoint-initdb.d"
  cat > "$tree/usr/local/bin/postgres-entrypoint" <<'SH'
#!/bin/sh
# Initialise the cluster on first start (POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB, then every
# /docker-entrypoint-initdb.d/*.sql once), apply every /fixtures/*.sql on *every* start (fixtures must be
# idempotent), then run the server in the foreground on every interface of the container. The setup runs
# on a server that listens on its Unix socket only, so a TCP client (or `pg_isready -h 127.0.0.1`) can
# never see a database without its fixtures.
set -eu
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
BIN=/usr/lib/postgresql/15/bin
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
sql() { psql -q -v ON_ERROR_STOP=1 -U "$user" "$@"; }
first_start=false
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  first_start=true
  pwfile="$(mktemp)"
  printf '%s\n' "${POSTGRES_PASSWORD:-postgres}" > "$pwfile"
  "$BIN/initdb" -D "$PGDATA" -U "$user" --pwfile="$pwfile" -E UTF8 --locale=C \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
fi
"$BIN/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
if $first_start; then
  [ "$db" = postgres ] || sql -d postgres -c "CREATE DATABASE \"$db\""
  for script in /docker-entrypoint-initdb.d/*.sql; do
    [ -e "$script" ] && { echo "postgres-entrypoint: init $script"; sql -d "$db" -f "$script"; }
  done
fi
for script in /fixtures/*.sql; do
  [ -e "$script" ] && { echo "postgres-entrypoint: fixtures $script"; sql -d "$db" -f "$script"; }
done
"$BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
exec "$BIN/postgres" -D "$PGDATA" -c listen_addresses='*' "$@"
SH
  chmod 0755 "$tree/usr/local/bin/postgres-entrypoint"
}

setup_redis() {
  local tree="$1"
  install -d -o "$(chroot "$tree" id -u redis)" -g "$(chroot "$tree" id -g redis)" -m 0750 "$tree/data"
  cat > "$tree/usr/local/bin/redis-entrypoint" <<'SH'
#!/bin/sh
# Run redis-server (arguments are appended to the defaults), apply every /fixtures/*.redis (redis-cli
# syntax, idempotent) on every start, then mark the container ready for `redis-ready`, its health check:
# clients that wait for health never see Redis without its fixtures.
set -eu
rm -f /tmp/redis-ready
redis-server --bind 0.0.0.0 --protected-mode no --dir /data --save "" "$@" &
server=$!
trap 'kill -TERM "$server"' TERM INT
until redis-cli ping >/dev/null 2>&1; do
  kill -0 "$server" 2>/dev/null || exit 1
  sleep 0.1
done
for script in /fixtures/*.redis; do
  [ -e "$script" ] || continue
  echo "redis-entrypoint: fixtures $script"
  redis-cli < "$script" >/dev/null
done
touch /tmp/redis-ready
wait "$server"
SH
  cat > "$tree/usr/local/bin/redis-ready" <<'SH'
#!/bin/sh
# Health check: Redis answers and the entrypoint has applied the fixtures.
[ -e /tmp/redis-ready ] && [ "$(redis-cli ping)" = PONG ]
SH
  chmod 0755 "$tree/usr/local/bin/redis-entrypoint" "$tree/usr/local/bin/redis-ready"
}

setup_python() {
  local tree="$1"
  # The same unprivileged user as slipway/busybox, so templates share one USER line.
  chroot "$tree" groupadd --gid 10001 app
  chroot "$tree" useradd --uid 10001 --gid 10001 --create-home --shell /bin/sh app
}

# One build at a time per state folder: two runs would remove and fill the same trees under $BUILD.
mkdir -p "$BUILD"
exec 9>"$BUILD/deps-images.lock"
if ! flock -n 9; then
  say "another deps-images.sh is building in $STATE; waiting for it to finish"
  flock 9
fi

for name in "${wanted[@]}"; do
  case "$name" in
    postgres)
      build_image slipway/postgres:15 postgresql postgres \
        'USER postgres' 'ENV PGDATA=/var/lib/postgresql/data' \
        'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        'EXPOSE 5432' 'HEALTHCHECK --interval=1s --retries=60 CMD ["pg_isready", "-q", "-h", "127.0.0.1"]' \
        'ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]' 'CMD []' ;;
    redis)
      build_image slipway/redis:7 redis-server redis \
        'USER redis' 'WORKDIR /data' 'EXPOSE 6379' 'HEALTHCHECK --interval=1s --retries=30 CMD ["redis-ready"]' \
        'ENTRYPOINT ["/usr/local/bin/redis-entrypoint"]' 'CMD []' ;;
    python)
      build_image slipway/python:bookworm python3,python3-psycopg2,python3-redis,python3-pyflakes python \
        'ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1' 'CMD ["python3"]' ;;
  esac
done
