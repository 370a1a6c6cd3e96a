#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# The image's static checks: check.sh style | duplication | outdated | licences (run in /app).
scripts="www/cgi-bin/receive www/cgi-bin/alerts tests/unit.sh tests/functional.sh tests/check.sh"
case "$1" in
style)
    for f in $scripts; do sh -n "$f" || exit 1; done
    ! grep -n '[[:space:]]$' $scripts ;;
duplication)
    # a line of code (not a comment, not a shell keyword) written twice across the two CGI scripts
    ! cat www/cgi-bin/* | grep -v -e '^#' -e '^ *$' | sort | uniq -d \
        | grep -v -e '^dir=' -e '^fi$' -e '^done$' -e '^ *exit 0$' ;;
outdated)
    reviewed=$(awk '$1 == "busybox" {print $2}' dependencies.txt)
    busybox 2>&1 | head -n 1 | grep -q "v$reviewed" || { echo "busybox is not the reviewed $reviewed"; exit 1; } ;;
licences)
    missing=$(grep -L 'SPDX-License-Identifier: GPL-3.0-or-later' $scripts)
    [ -z "$missing" ] || { echo "no licence line: $missing"; exit 1; } ;;
*) echo "usage: check.sh style|duplication|outdated|licences" >&2; exit 2 ;;
esac
