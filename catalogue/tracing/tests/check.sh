#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# The image's static checks: check.sh style | duplication | outdated | licences (run in /etc/jaeger).
case "$1" in
style)
    sh -n tests/functional.sh && sh -n tests/check.sh \
        && ! grep -n '[[:space:]]$' jaeger.yaml tests/*.sh ;;
duplication)
    # a key given twice at the same indentation under one parent would be silently merged by the collector
    twice=$(awk '/^[^ #]/ { parent = $0 } /^  [a-z_]+:/ { print parent $1 }' jaeger.yaml | sort | uniq -d)
    [ -z "$twice" ] || { echo "setting given twice: $twice"; exit 1; } ;;
outdated)
    reviewed=$(awk '$1 == "jaeger" {print $2}' dependencies.txt)
    jaeger version 2>&1 | grep -q "\"gitVersion\":\"$reviewed\"" \
        || { echo "jaeger is not the reviewed $reviewed: $(jaeger version 2>&1 | head -n 3)"; exit 1; } ;;
licences)
    grep -q 'Apache License' /usr/share/doc/jaeger/LICENSE && grep -q 'Version 2.0' /usr/share/doc/jaeger/LICENSE \
        || { echo "jaeger: licence is not Apache-2.0"; exit 1; } ;;
*) echo "usage: check.sh style|duplication|outdated|licences" >&2; exit 2 ;;
esac
