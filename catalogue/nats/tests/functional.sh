#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# The real server with the shipped configuration: a client with the credentials receives what it published, and
# a wrong password is refused.
set -u
data=$(mktemp -d)
NATS_USER=functional NATS_PASSWORD=right-password \
    nats-server --config /etc/nats/nats.conf --addr 127.0.0.1 --port 14222 --http_port 18222 >"$data/log" 2>&1 &
server=$!
ready=""
for _ in $(seq 30); do
    wget -q -O /dev/null http://127.0.0.1:18222/healthz 2>/dev/null && { ready=yes; break; }
    sleep 1
done
[ -n "$ready" ] || { echo "FAIL nats-server never became healthy"; tail -n 20 "$data/log"; kill "$server"; exit 1; }
talk() {  # talk PASSWORD: connect, subscribe, publish, ping; print what the server answered
    { printf 'CONNECT {"user":"functional","pass":"%s","verbose":false}\r\n' "$1"
      printf 'SUB functional.test 1\r\nPUB functional.test 5\r\nhello\r\nPING\r\n'; sleep 1; } \
        | nc 127.0.0.1 14222 2>&1
}
good=$(talk right-password)
bad=$(talk wrong-password)
kill "$server"
case "$good" in
*"MSG functional.test 1 5"*hello*) echo "ok   a client with the credentials receives what it published" ;;
*) echo "FAIL no message back: $good"; exit 1 ;;
esac
case "$bad" in
*"Authorization Violation"*) echo "ok   a wrong password is refused" ;;
*) echo "FAIL a wrong password was not refused: $bad"; exit 1 ;;
esac
