#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Write the users file from $REGISTRY_USERS_DIR (a file per user holding its password: the Secret's keys), then
# serve (`start.sh users` only writes the file). The passwords go to htpasswd on its standard input, never on a
# command line.
set -eu
users=${REGISTRY_USERS_DIR:-/etc/docker/registry/users}
htpasswd_file=${REGISTRY_HTPASSWD:-/run/registry/htpasswd}
# htpasswd writes through a temporary file: beside the users file, since the root filesystem is read-only.
TMPDIR=$(dirname "$htpasswd_file")
export TMPDIR
: >"$htpasswd_file"
for file in "$users"/*; do
    [ -f "$file" ] || continue
    user=$(basename "$file")
    htpasswd -iB "$htpasswd_file" "$user" <"$file" 2>"$TMPDIR/htpasswd.log" \
        || { echo "registry: htpasswd could not add $user: $(cat "$TMPDIR/htpasswd.log")" >&2; exit 1; }
done
[ -s "$htpasswd_file" ] || { echo "registry: no user in $users" >&2; exit 1; }
[ "${1:-}" != users ] || exit 0
export REGISTRY_AUTH_HTPASSWD_PATH="$htpasswd_file"
exec docker-registry serve "${REGISTRY_CONFIG:-/etc/docker/registry/config.yml}"
