#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# The image's static checks: check.sh style | duplication | outdated | licences (run in /etc/victorialogs).
case "$1" in
style)
    for script in tests/*.sh; do sh -n "$script" || exit 1; done
    ! grep -n '[[:space:]]$' tests/*.sh dependencies.txt ;;
duplication)
    twice=$(awk '!/^#/ {print $1}' dependencies.txt | sort | uniq -d)
    [ -z "$twice" ] || { echo "dependency listed twice: $twice"; exit 1; } ;;
outdated)
    reviewed=$(awk '$1 == "victorialogs" {print $2}' dependencies.txt)
    for command in victoria-logs vlagent; do
        "$command" -version 2>&1 | grep -q -- "^$command-$reviewed\$" \
            || { echo "$command is not the reviewed $reviewed: $("$command" -version 2>&1 | head -n 1)"; exit 1; }
    done ;;
licences)
    grep -q 'Apache License' /usr/share/doc/victorialogs/LICENSE && grep -q 'Version 2.0' /usr/share/doc/victorialogs/LICENSE \
        || { echo "victorialogs: licence is not Apache-2.0"; exit 1; } ;;
*) echo "usage: check.sh style|duplication|outdated|licences" >&2; exit 2 ;;
esac
