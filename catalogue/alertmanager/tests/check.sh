#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# The image's static checks: check.sh style | duplication | outdated | licences (run in /etc/alertmanager).
case "$1" in
style)
    sh -n tests/functional.sh && sh -n tests/check.sh \
        && ! grep -n '[[:space:]]$' alertmanager.yml tests/*.sh ;;
duplication)
    twice=$(grep -o 'name: [a-z-]*' alertmanager.yml | sort | uniq -d)
    [ -z "$twice" ] || { echo "receiver declared twice: $twice"; exit 1; } ;;
outdated)
    reviewed=$(awk '$1 == "prometheus-alertmanager" {print $2}' dependencies.txt)
    prometheus-alertmanager --version 2>&1 | head -n 1 | grep -q "version $reviewed[+ ]" \
        || { echo "alertmanager is not the reviewed $reviewed"; exit 1; } ;;
licences)
    grep -q 'License: Apache-2.0' /usr/share/doc/prometheus-alertmanager/copyright \
        || { echo "alertmanager: licence is not Apache-2.0"; exit 1; } ;;
*) echo "usage: check.sh style|duplication|outdated|licences" >&2; exit 2 ;;
esac
