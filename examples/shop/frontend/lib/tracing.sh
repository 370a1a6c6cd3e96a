# SPDX-License-Identifier: GPL-3.0-or-later
# W3C trace context for the CGI proxy: continue the caller's trace (its traceparent header) or start
# one, and send the proxy's span to the tracing collector as OTLP/HTTP JSON in the background
# ($OTEL_EXPORTER_OTLP_ENDPOINT, the collector's base URL). No endpoint: no span, no delay.

# random_hex BYTES: that many random bytes in lowercase hex.
random_hex() {
    head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'
}

# now_ns: the wall clock in nanoseconds. busybox date has no %N; adjtimex reads the clock to the microsecond.
now_ns() {
    now=$(adjtimex 2>/dev/null | awk '$1 == "time.tv_sec:" { s = $2 }
        $1 == "time.tv_usec:" { u = $2 } END { if (s != "") printf "%d%06d000\n", s, u }')
    printf '%s\n' "${now:-$(date +%s)000000000}"
}

# trace_context TRACEPARENT: "TRACE_ID PARENT_SPAN_ID" of a valid version-00 traceparent; otherwise a
# new trace id and "-" (no parent: this span is the trace's root).
trace_context() {
    if printf '%s\n' "$1" | grep -Eq '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' \
            && ! printf '%s\n' "$1" | grep -Eq '^00-0{32}-|-0{16}-'; then
        printf '%s\n' "$1" | awk -F- '{ print $2, $3 }'
    else
        printf '%s -\n' "$(random_hex 16)"
    fi
}

# span_json SERVICE TRACE SPAN PARENT NAME START_NS END_NS HTTP_STATUS: one server span as an OTLP/HTTP JSON
# export request; PARENT "-" for a root span; a 5xx status marks the span as an error.
span_json() {
    parent=""
    [ "$4" = - ] || parent=",\"parentSpanId\":\"$4\""
    code=0
    [ "$8" -lt 500 ] || code=2
    printf '{"resourceSpans":[{"resource":{"attributes":'
    printf '[{"key":"service.name","value":{"stringValue":"%s"}}]},' "$1"
    printf '"scopeSpans":[{"scope":{"name":"shop-frontend"},"spans":[{"traceId":"%s","spanId":"%s"%s,' \
        "$2" "$3" "$parent"
    printf '"name":"%s","kind":2,"startTimeUnixNano":"%s","endTimeUnixNano":"%s",' "$5" "$6" "$7"
    printf '"attributes":[{"key":"http.response.status_code","value":{"intValue":"%s"}}],' "$8"
    printf '"status":{"code":%s}}]}]}]}\n' "$code"
}

# send_span JSON: post it to the collector in the background (the answer never waits for it); nothing without
# an endpoint. resolve_url comes from proxy.sh.
send_span() {
    [ -n "${OTEL_EXPORTER_OTLP_ENDPOINT:-}" ] || return 0
    (
        url=$(resolve_url "${OTEL_EXPORTER_OTLP_ENDPOINT%/}/v1/traces") || exit 0
        timeout 5 wget -q -O /dev/null --header 'Content-Type: application/json' --post-data "$1" "$url"
    ) >/dev/null 2>&1 </dev/null &
}
