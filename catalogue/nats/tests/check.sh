#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# The image's static checks: check.sh style | duplication | outdated | licences (run in /etc/nats).
case "$1" in
style)
    sh -n tests/functional.sh && sh -n tests/check.sh \
        && ! grep -n '[[:space:]]$' nats.conf tests/*.sh ;;
duplication)
    twice=$(grep -o '^ *[a-z_]*:' nats.conf | tr -d ' ' | sort | uniq -d)
    [ -z "$twice" ] || { echo "setting given twice: $twice"; exit 1; } ;;
outdated)
    reviewed=$(awk '$1 == "nats-server" {print $2}' dependencies.txt)
    nats-server --version 2>&1 | grep -q "v$reviewed\$" \
        || { echo "nats-server is not the reviewed $reviewed"; exit 1; } ;;
licences)
    grep -q 'License: Apache-2.0' /usr/share/doc/nats-server/copyright \
        || { echo "nats-server: licence is not Apache-2.0"; exit 1; } ;;
*) echo "usage: check.sh style|duplication|outdated|licences" >&2; exit 2 ;;
esac
