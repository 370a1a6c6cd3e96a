#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# The real collector with the shipped configuration: a span posted as OTLP/HTTP JSON is found by its trace id
# through the query API, and a malformed post is refused.
set -u
log=$(mktemp)
jaeger --config /etc/jaeger/jaeger.yaml >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null' EXIT
ready=""
for _ in $(seq 60); do
    wget -q -O /dev/null http://127.0.0.1:13133/status 2>/dev/null && { ready=yes; break; }
    sleep 1
done
[ -n "$ready" ] || { echo "FAIL jaeger never became healthy"; tail -n 30 "$log"; exit 1; }
echo "ok   healthy on :13133/status"

trace=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
span=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
now=$(date +%s)
body=$(printf '{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"%s"}}]},
"scopeSpans":[{"spans":[{"traceId":"%s","spanId":"%s","name":"%s","kind":2,
"startTimeUnixNano":"%s000000000","endTimeUnixNano":"%s500000000"}]}]}]}' \
    functional "$trace" "$span" "GET /functional" "$now" "$now")
wget -q -O /dev/null --header 'Content-Type: application/json' --post-data "$body" http://127.0.0.1:4318/v1/traces \
    || { echo "FAIL the OTLP/HTTP receiver refused a span"; exit 1; }
echo "ok   a span posted as OTLP/HTTP JSON"

found=""
for _ in $(seq 20); do
    found=$(wget -q -O - "http://127.0.0.1:16686/api/traces/$trace" 2>/dev/null)
    case "$found" in *'"operationName":"GET /functional"'*) break ;; esac
    sleep 1
done
case "$found" in
*'"operationName":"GET /functional"'*'"serviceName":"functional"'*) echo "ok   found by its trace id" ;;
*) echo "FAIL trace $trace not found: $found"; tail -n 30 "$log"; exit 1 ;;
esac

if wget -q -O /dev/null --header 'Content-Type: application/json' --post-data '{"resourceSpans": 1}' \
        http://127.0.0.1:4318/v1/traces 2>/dev/null; then
    echo "FAIL a malformed post was accepted"; exit 1
fi
echo "ok   a malformed post refused"
