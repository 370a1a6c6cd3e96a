#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# start.sh's users file: one bcrypt entry per user file, each verifying with its own password and no other.
set -u
data=$(mktemp -d)
mkdir "$data/users"
printf 'first-secret' >"$data/users/pusher"
printf 'second-secret' >"$data/users/puller"
REGISTRY_USERS_DIR="$data/users" REGISTRY_HTPASSWD="$data/htpasswd" sh start.sh users || { echo "FAIL start.sh users"; exit 1; }
fail=0
[ "$(cut -d: -f1 "$data/htpasswd" | sort | tr '\n' ' ')" = "puller pusher " ] && echo "ok   one entry per user" \
    || { echo "FAIL entries: $(cut -d: -f1 "$data/htpasswd")"; fail=1; }
grep -qv ':\$2y\$' "$data/htpasswd" && { echo "FAIL an entry is not bcrypt"; fail=1; } || echo "ok   bcrypt entries"
htpasswd -vi "$data/htpasswd" pusher <"$data/users/pusher" 2>/dev/null && echo "ok   pusher's password verifies" \
    || { echo "FAIL pusher's password does not verify"; fail=1; }
printf 'second-secret' | htpasswd -vi "$data/htpasswd" pusher 2>/dev/null \
    && { echo "FAIL pusher verifies with puller's password"; fail=1; } || echo "ok   another password does not"
rm "$data/users/"*
REGISTRY_USERS_DIR="$data/users" REGISTRY_HTPASSWD="$data/htpasswd" sh start.sh users 2>/dev/null \
    && { echo "FAIL no user is accepted"; fail=1; } || echo "ok   no user refused"
exit "$fail"
