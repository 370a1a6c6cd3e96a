#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# The real server in this image: it starts with a configuration that scrapes itself, becomes ready, and a query
# for its own `up` answers 1.
set -u
data=$(mktemp -d)
cat > "$data/self.yml" <<'CONFIG'
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [/etc/prometheus/rules/*.yml]
scrape_configs:
  - job_name: self
    static_configs: [{targets: ["127.0.0.1:19090"]}]
CONFIG
prometheus --config.file="$data/self.yml" --storage.tsdb.path="$data/tsdb" \
    --web.listen-address=127.0.0.1:19090 >"$data/log" 2>&1 &
server=$!
answer=""
for _ in $(seq 60); do
    answer=$(python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())' \
        'http://127.0.0.1:19090/api/v1/query?query=up%7Bjob%3D%22self%22%7D' 2>/dev/null)
    case "$answer" in *'"value":['*',"1"]'*) break ;; esac
    sleep 1
done
kill "$server"
case "$answer" in
*'"value":['*',"1"]'*) echo "ok   prometheus scraped itself: $answer" ;;
*) echo "FAIL no up=1 from the server; last answer: ${answer:-none}"; tail -n 20 "$data/log"; exit 1 ;;
esac
