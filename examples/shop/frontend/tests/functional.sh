#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# The frontend over HTTP, in front of the real backend that docker-compose.yml starts ($BACKEND_URL).
port=18080
httpd -p "127.0.0.1:$port" -h /app/www
trap 'kill "$(pidof httpd)" 2>/dev/null' EXIT
base="http://127.0.0.1:$port"
failures=0
expect() {  # expect DESCRIPTION PATTERN OUTPUT
    if printf '%s\n' "$3" | grep -q "$2"; then
        echo "ok   $1"
    else
        echo "FAIL $1: $3"; failures=$((failures + 1))
    fi
}
for _ in 1 2 3 4 5 6 7 8 9 10; do wget -q -O /dev/null "$base/healthz" && break; sleep 0.2; done
expect "static health" '^ok$' "$(wget -q -O - "$base/healthz" 2>&1)"
expect "index page" 'Slipway shop' "$(wget -q -O - "$base/" 2>&1)"
expect "products through the proxy" '"sku": "tea"' "$(wget -q -O - "$base/cgi-bin/api/products" 2>&1)"
order=$(wget -q -O - --post-data '{"items": [{"sku": "tea", "qty": 2}]}' "$base/cgi-bin/api/orders" 2>&1)
expect "order through the proxy" '"total_cents": 900' "$order"
empty=$(wget -q -O - --post-data '{"items": []}' "$base/cgi-bin/api/orders" 2>&1)
expect "backend error passed on" '400' "$empty"
expect "unknown route refused" '404' "$(wget -q -O - "$base/cgi-bin/api/admin" 2>&1)"
caller=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
traced=$(wget -S -q -O /dev/null --header "traceparent: $caller" "$base/cgi-bin/api/products" 2>&1)
expect "the caller's trace continued" 'Traceparent: 00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]\{16\}-01' \
    "$traced"
echo "functional: $failures failure(s)"
[ "$failures" -eq 0 ]
