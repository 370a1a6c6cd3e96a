#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# The image's static checks: check.sh style | duplication | outdated | licences (run in /etc/prometheus).
case "$1" in
style)
    promtool check config --syntax-only prometheus.yml && promtool check rules --lint=all --lint-fatal rules/*.yml \
        && python3 -m pyflakes kube_sd tests ;;
duplication)
    promtool check rules --lint=duplicate-rules --lint-fatal rules/*.yml ;;
outdated)
    reviewed=$(awk '$1 == "prometheus" {print $2}' dependencies.txt)
    prometheus --version 2>&1 | head -n 1 | grep -q "version $reviewed[+ ]" \
        || { echo "prometheus is not the reviewed $reviewed"; exit 1; } ;;
licences)
    grep -q 'License: Apache-2.0' /usr/share/doc/prometheus/copyright \
        || { echo "prometheus: licence is not Apache-2.0"; exit 1; }
    missing=$(grep -L 'SPDX-License-Identifier: GPL-3.0-or-later' kube_sd/*.py tests/*.py tests/*.sh)
    [ -z "$missing" ] || { echo "no licence line: $missing"; exit 1; } ;;
*) echo "usage: check.sh style|duplication|outdated|licences" >&2; exit 2 ;;
esac
