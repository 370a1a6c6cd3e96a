# SPDX-License-Identifier: GPL-3.0-or-later
# The frontend's CGI proxy to the backend: validate the route, forward with busybox wget, map errors.

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

# respond STATUS BODY: a complete CGI answer (busybox httpd passes a full status line through).
respond() {
    printf 'HTTP/1.0 %s X\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n\r\n%s\n' "$1" "$2"
}

proxy_main() {
    path="/api${PATH_INFO:-}"
    if ! route_ok "$path" || ! query_ok "${QUERY_STRING:-}"; then
        respond 404 '{"error": "no such route"}'
        return 0
    fi
    if ! url=$(resolve_url "${BACKEND_URL:-http://backend:8080}${path}${QUERY_STRING:+?$QUERY_STRING}"); then
        respond 502 '{"error": "backend address unknown"}'
        return 0
    fi
    errors=/tmp/proxy.$$
    if [ "${REQUEST_METHOD:-GET}" = POST ]; then
        body=$(head -c "${CONTENT_LENGTH:-0}")
        out=$(timeout 10 wget -q -O - --header 'Content-Type: application/json' --post-data "$body" "$url" \
            2>"$errors")
    else
        out=$(timeout 10 wget -q -O - "$url" 2>"$errors")
    fi
    rc=$?
    detail=$(cat "$errors"); rm -f "$errors"
    if [ "$rc" -eq 0 ]; then
        respond 200 "$out"
    else
        respond "$(status_of "$detail")" '{"error": "backend request failed"}'
    fi
}
