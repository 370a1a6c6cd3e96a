#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Unit tests of lib/proxy.sh: pure functions, no network.
. "${APP_DIR:-/app}/lib/proxy.sh"
failures=0
check() {  # check DESCRIPTION COMMAND...
    description=$1; shift
    if "$@"; then echo "ok   $description"; else echo "FAIL $description"; failures=$((failures + 1)); fi
}
refuses() { ! "$@"; }
check "products route" route_ok /api/products
check "fulfil route" route_ok /api/orders/12/fulfil
check "no traversal" refuses route_ok /api/../etc/passwd
check "no letters in ids" refuses route_ok /api/orders/1x/fulfil
check "no unknown route" refuses route_ok /api/admin
check "empty query" query_ok ""
check "status filter" query_ok status=new
check "no other query" refuses query_ok "status=new&x=1"
check "status of an HTTP error" [ "$(status_of 'wget: server returned error: HTTP/1.0 404 Not Found')" = 404 ]
check "status when unreachable" [ "$(status_of 'wget: bad address backend')" = 502 ]
check "address kept" [ "$(resolve_url http://10.0.0.1:8080/api/x?y=1)" = http://10.0.0.1:8080/api/x?y=1 ]
check "no host, no url" refuses resolve_url "ftp://backend/"
check "full status line" [ "$(respond 201 '{}' | head -n 1)" = "$(printf 'HTTP/1.0 201 X\r')" ]
check "answer names its trace" \
    [ "$(respond 200 '{}' 00-a-b-01 | sed -n 4p)" = "$(printf 'Traceparent: 00-a-b-01\r')" ]
caller=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
check "caller's trace continued" \
    [ "$(trace_context "$caller")" = "0af7651916cd43dd8448eb211c80319c b7ad6b7169203331" ]
started() { trace_context "$1" | grep -Eq '^[0-9a-f]{32} -$'; }
check "no traceparent, new trace" started ""
check "malformed traceparent, new trace" started "00-xyz-b7ad6b7169203331-01"
check "all-zero trace id, new trace" started "00-00000000000000000000000000000000-b7ad6b7169203331-01"
check "unknown version, new trace" started "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
check "clock in nanoseconds" sh -c '[ "$0" -gt 1700000000000000000 ]' "$(now_ns)"
check "one span name per route" [ "$(span_name POST /api/orders/12/fulfil)" = "POST /api/orders/{id}/fulfil" ]
trace=0af7651916cd43dd8448eb211c80319c
span=$(span_json frontend "$trace" 1111111111111111 b7ad6b7169203331 "GET /api/x" 1 2 503)
has() { printf '%s\n' "$1" | grep -qF "$2"; }
check "span with its parent" has "$span" '"parentSpanId":"b7ad6b7169203331"'
check "5xx span is an error" has "$span" '"status":{"code":2}'
root=$(span_json frontend "$trace" 1111111111111111 - "GET /api/x" 1 2 200)
check "root span has no parent" refuses has "$root" parentSpanId
sends() {  # sends ENDPOINT: whether send_span would post (it resolves the collector's address first)
    (marker=/tmp/sent.$$; rm -f "$marker"; resolve_url() { touch "$marker"; return 1; }
     OTEL_EXPORTER_OTLP_ENDPOINT=$1 send_span '{}'; wait; [ -e "$marker" ] && rm -f "$marker")
}
check "an endpoint, the span sent" sends http://tracing:4318
check "no endpoint, nothing sent" refuses sends ""
echo "unit: $failures failure(s)"
[ "$failures" -eq 0 ]
