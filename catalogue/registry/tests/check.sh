#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# The image's static checks: check.sh style | duplication | outdated | licences (run in /etc/docker/registry).
case "$1" in
style)
    sh -n start.sh && sh -n tests/unit.sh && sh -n tests/functional.sh && sh -n tests/check.sh \
        && ! grep -n '[[:space:]]$' config.yml start.sh tests/*.sh ;;
duplication)
    twice=$(grep -o '^[a-z]*:' config.yml | sort | uniq -d)
    [ -z "$twice" ] || { echo "section given twice: $twice"; exit 1; } ;;
outdated)
    reviewed=$(awk '$1 == "docker-registry" {print $2}' dependencies.txt)
    docker-registry --version 2>&1 | grep -q " $reviewed+" \
        || { echo "docker-registry is not the reviewed $reviewed"; exit 1; } ;;
licences)
    grep -q 'License: Apache-2.0' /usr/share/doc/docker-registry/copyright \
        && grep -q 'License: Apache-2.0' /usr/share/doc/apache2-utils/copyright \
        || { echo "docker-registry or htpasswd: licence is not Apache-2.0"; exit 1; } ;;
*) echo "usage: check.sh style|duplication|outdated|licences" >&2; exit 2 ;;
esac
