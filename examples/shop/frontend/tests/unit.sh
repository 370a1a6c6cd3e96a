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
echo "unit: $failures failure(s)"
[ "$failures" -eq 0 ]
