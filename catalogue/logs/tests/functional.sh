#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# The real server: a log line written through the JSON-lines insert API, with the fields the collector gives
# (namespace, pod, container), is found by a LogsQL query on them, and not by a query for another pod.
set -u
data=$(mktemp -d)
victoria-logs -storageDataPath="$data/store" -httpListenAddr=127.0.0.1:19428 -retentionPeriod=1d >"$data/log" 2>&1 &
server=$!
stop() { kill "$server"; wait "$server" 2>/dev/null; rm -rf "$data"; }
ready=""
for _ in $(seq 30); do
    wget -q -O /dev/null http://127.0.0.1:19428/health 2>/dev/null && { ready=yes; break; }
    sleep 1
done
[ -n "$ready" ] || { echo "FAIL victoria-logs never became healthy"; tail -n 20 "$data/log"; stop; exit 1; }
line="functional-$$-$(date +%s)"
fields='_stream_fields=kubernetes.pod_namespace,kubernetes.pod_name,kubernetes.container_name'
printf '{"_msg":"%s","kubernetes.pod_namespace":"shop","kubernetes.pod_name":"backend-1","kubernetes.container_name":"backend"}\n' \
    "$line" >"$data/line.json"
# busybox wget would say the body is a form, which the insert API then reads as one
wget -q -O /dev/null --header "Content-Type: application/stream+json" --post-file="$data/line.json" "http://127.0.0.1:19428/insert/jsonline?$fields" \
    || { echo "FAIL the insert API refused the line"; stop; exit 1; }
query() {  # query LOGSQL: the matching lines as JSON, one a line
    wget -q -O - --post-data="query=$1" http://127.0.0.1:19428/select/logsql/query
}
found=""
for _ in $(seq 20); do  # inserted lines become searchable within a second or so
    found=$(query "kubernetes.pod_namespace:=shop kubernetes.pod_name:=backend-1 \"$line\"")
    [ -n "$found" ] && break
    sleep 1
done
other=$(query "kubernetes.pod_name:=frontend-1 \"$line\"")
stop
case "$found" in
*"$line"*) echo "ok   the line is found by its namespace and pod" ;;
*) echo "FAIL the line was not found: $found"; exit 1 ;;
esac
case "$found" in
*'"kubernetes.container_name":"backend"'*) echo "ok   it carries its container" ;;
*) echo "FAIL the line lost its container field: $found"; exit 1 ;;
esac
[ -z "$other" ] || { echo "FAIL a query for another pod found the line: $other"; exit 1; }
echo "ok   a query for another pod does not find it"
