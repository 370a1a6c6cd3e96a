# SPDX-License-Identifier: GPL-3.0-or-later
# The frontend's CGI proxy to the backend: validate the route, forward with busybox wget, map errors;
# each forwarded request is a span of the caller's trace (or of a new one), passed on to the backend
# (lib/tracing.sh).
. "${APP_DIR:-/app}/lib/tracing.sh"

# route_ok PATH: succeeds when PATH is a backend route the browser may reach.
route_ok() {
    printf '%s\n' "$1" | grep -Eq '^/api/(products|orders|orders/[0-9]{1,9}/fulfil)$'
}

# query_ok QUERY: succeeds for an empty query or a known order status filter.
query_ok() {
    [ -z "$1" ] || printf '%s\n' "$1" | grep -Eq '^status=(new|fulfilled)$'
}

# status_of WGET_STDERR: the HTTP status a failed wget saw, or 502 when the backend did not answer.
status_of() {
    code=$(printf '%s\n' "$1" | sed -n 's/.*HTTP\/1\.[01] \([1-5][0-9][0-9]\).*/\1/p' | head -n 1)
    printf '%s\n' "${code:-502}"
}

# resolve_url URL: URL with its host replaced by an address. busybox-static cannot use the libc
# resolver (no NSS modules in the image; wget crashes on names), so ask DNS with nslookup.
resolve_url() {
    host=$(printf '%s\n' "$1" | sed -n 's#^http://\([^/:]*\).*#\1#p')
    case "$host" in
    "") return 1 ;;
    *[!0-9.]*)
        address=$(nslookup "$host" 2>/dev/null | awk '/^Address/ && !/:53$/ { a = $NF } END { print a }')
        [ -n "$address" ] || return 1
        printf 'http://%s%s\n' "$address" "${1#http://"$host"}" ;;
    *) printf '%s\n' "$1" ;;
    esac
}

# respond STATUS BODY [TRACEPARENT]: a complete CGI answer (busybox httpd passes a full status line through),
# telling the caller the trace it is part of.
respond() {
    printf 'HTTP/1.0 %s X\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n' "$1"
    [ -z "${3:-}" ] || printf 'Traceparent: %s\r\n' "$3"
    printf '\r\n%s\n' "$2"
}

# span_name METHOD PATH: the route, without the order id (one name per route, not per order).
span_name() {
    printf '%s %s\n' "$1" "$(printf '%s\n' "$2" | sed 's#/[0-9][0-9]*/#/{id}/#')"
}

proxy_main() {
    path="/api${PATH_INFO:-}"
    if ! route_ok "$path" || ! query_ok "${QUERY_STRING:-}"; then
        respond 404 '{"error": "no such route"}'
        return 0
    fi
    started=$(now_ns)
    set -- $(trace_context "${HTTP_TRACEPARENT:-}")
    trace=$1 parent=$2 span=$(random_hex 8)
    traceparent="00-$trace-$span-01"
    if ! url=$(resolve_url "${BACKEND_URL:-http://backend:8080}${path}${QUERY_STRING:+?$QUERY_STRING}"); then
        status=502 out='{"error": "backend address unknown"}'
    else
        errors=/tmp/proxy.$$
        if [ "${REQUEST_METHOD:-GET}" = POST ]; then
            body=$(head -c "${CONTENT_LENGTH:-0}")
            out=$(timeout 10 wget -q -O - --header 'Content-Type: application/json' \
                --header "traceparent: $traceparent" --post-data "$body" "$url" 2>"$errors")
        else
            out=$(timeout 10 wget -q -O - --header "traceparent: $traceparent" "$url" 2>"$errors")
        fi
        rc=$?
        detail=$(cat "$errors"); rm -f "$errors"
        if [ "$rc" -eq 0 ]; then
            status=200
        else
            status=$(status_of "$detail") out='{"error": "backend request failed"}'
        fi
    fi
    respond "$status" "$out" "$traceparent"
    send_span "$(span_json "${OTEL_SERVICE_NAME:-frontend}" "$trace" "$span" "$parent" \
        "$(span_name "${REQUEST_METHOD:-GET}" "$path")" "$started" "$(now_ns)" "$status")"
}
