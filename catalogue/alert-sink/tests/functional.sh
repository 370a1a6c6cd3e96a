#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# The real server: httpd runs the CGI, a POSTed notification comes back from GET /cgi-bin/alerts.
set -u
export ALERT_SINK_DIR="$(mktemp -d)"
httpd -f -p 127.0.0.1:18080 -h /app/www &
server=$!
sleep 1
wget -q -O - --post-data='{"status":"firing","alerts":[{"labels":{"alertname":"Functional"}}]}' \
    http://127.0.0.1:18080/cgi-bin/receive >/dev/null
listed=$(wget -q -O - http://127.0.0.1:18080/cgi-bin/alerts)
kill "$server"
case "$listed" in
*Functional*) echo "ok   a notification went in and came back" ;;
*) echo "FAIL not listed: $listed"; exit 1 ;;
esac
