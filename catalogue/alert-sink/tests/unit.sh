#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# The CGI scripts called as httpd calls them: a POST is kept and listed back, a GET to receive is refused.
set -u
dir=$(mktemp -d)
export ALERT_SINK_DIR="$dir"
failures=0
check() {  # check DESCRIPTION COMMAND...
    description=$1; shift
    if "$@"; then echo "ok   $description"; else echo "FAIL $description"; failures=$((failures + 1)); fi
}
body='{"status":"firing","alerts":[{"labels":{"alertname":"UnitTest"}}]}'
answer=$(printf '%s' "$body" | REQUEST_METHOD=POST CONTENT_LENGTH=${#body} sh /app/www/cgi-bin/receive 2>/dev/null)
check "a POST is acknowledged" sh -c "echo '$answer' | grep -q 'Status: 200'"
listed=$(sh /app/www/cgi-bin/alerts)
check "the notification is listed" sh -c "echo '$listed' | grep -q UnitTest"
refused=$(REQUEST_METHOD=GET sh /app/www/cgi-bin/receive)
check "a GET to receive is refused" sh -c "echo '$refused' | grep -q 'Status: 405'"
echo "unit: $failures failure(s)"
[ "$failures" -eq 0 ]
