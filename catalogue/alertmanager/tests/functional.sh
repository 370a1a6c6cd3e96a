#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# The real server in this image: it starts with the shipped configuration, becomes ready, takes an alert through
# its API and lists it back.
set -u
data=$(mktemp -d)
prometheus-alertmanager --config.file=/etc/alertmanager/alertmanager.yml --storage.path="$data" \
    --web.listen-address=127.0.0.1:19093 --cluster.listen-address= >"$data/log" 2>&1 &
server=$!
ready=""
for _ in $(seq 30); do
    wget -q -O /dev/null http://127.0.0.1:19093/-/ready 2>/dev/null && { ready=yes; break; }
    sleep 1
done
[ -n "$ready" ] || { echo "FAIL alertmanager never became ready"; tail -n 20 "$data/log"; kill "$server"; exit 1; }
amtool --alertmanager.url=http://127.0.0.1:19093 alert add FunctionalTest namespace=test >/dev/null
listed=$(amtool --alertmanager.url=http://127.0.0.1:19093 alert query FunctionalTest 2>&1)
kill "$server"
case "$listed" in
*FunctionalTest*) echo "ok   alertmanager took an alert and lists it" ;;
*) echo "FAIL the alert is not listed: $listed"; exit 1 ;;
esac
