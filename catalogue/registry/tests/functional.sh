#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# The real server as start.sh runs it: both users are let in, a wrong password and anonymous access are refused,
# and the health endpoint answers.
set -u
data=$(mktemp -d)
mkdir -p "$data/users" "$data/store"
printf 'push-secret' >"$data/users/pusher"
printf 'pull-secret' >"$data/users/puller"
REGISTRY_USERS_DIR="$data/users" REGISTRY_HTPASSWD="$data/htpasswd" REGISTRY_HTTP_SECRET=functional \
    REGISTRY_HTTP_ADDR=127.0.0.1:15000 REGISTRY_HTTP_DEBUG_ADDR=127.0.0.1:15001 \
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="$data/store" sh start.sh >"$data/log" 2>&1 &
server=$!
ready=""
for _ in $(seq 30); do
    wget -q -O /dev/null http://127.0.0.1:15001/debug/health 2>/dev/null && { ready=yes; break; }
    sleep 1
done
[ -n "$ready" ] || { echo "FAIL the registry never became healthy"; tail -n 20 "$data/log"; kill "$server"; exit 1; }
status() {  # status [user:password]: the HTTP status of GET /v2/
    if [ -n "${1:-}" ]; then
        wget -S -q -O /dev/null --header "Authorization: Basic $(printf %s "$1" | base64)" \
            http://127.0.0.1:15000/v2/ 2>&1 | grep -o 'HTTP/1\.[01] [0-9]*' | tail -n 1 | cut -d' ' -f2
    else
        wget -S -q -O /dev/null http://127.0.0.1:15000/v2/ 2>&1 | grep -o 'HTTP/1\.[01] [0-9]*' | tail -n 1 | cut -d' ' -f2
    fi
}
pusher=$(status pusher:push-secret)
puller=$(status puller:pull-secret)
wrong=$(status pusher:pull-secret)
anonymous=$(status)
kill "$server"
fail=0
[ "$pusher" = 200 ] && echo "ok   pusher is let in" || { echo "FAIL pusher: HTTP $pusher"; fail=1; }
[ "$puller" = 200 ] && echo "ok   puller is let in" || { echo "FAIL puller: HTTP $puller"; fail=1; }
[ "$wrong" = 401 ] && echo "ok   a wrong password is refused" || { echo "FAIL wrong password: HTTP $wrong"; fail=1; }
[ "$anonymous" = 401 ] && echo "ok   anonymous access is refused" || { echo "FAIL anonymous: HTTP $anonymous"; fail=1; }
exit "$fail"
