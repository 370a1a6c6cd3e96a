#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Static checks the frontend runs inside its own image (busybox only):
#   check.sh style | duplication | outdated | licences
# One line per finding; exit 1 when there is any.
cd "${APP_DIR:-/app}" || exit 2
sources() { find lib tests tools www -type f ! -name healthz | sort; }
scripts() { sources | while read -r f; do head -n 1 "$f" | grep -q '^#!/bin/sh' && echo "$f"; done; }
findings=/tmp/findings.$$
: > "$findings"

case "$1" in
style)
    for f in $(scripts); do sh -n "$f" 2>>"$findings" || echo "$f: shell syntax error" >>"$findings"; done
    for f in $(sources); do
        awk -v f="$f" 'length($0) > 110 { print f ":" NR ": line longer than 110" }
            /[ \t]$/ { print f ":" NR ": trailing whitespace" }
            /\t/ { print f ":" NR ": tab character" }' "$f" >>"$findings"
        [ -z "$(tail -c 1 "$f")" ] || echo "$f: no newline at end of file" >>"$findings"
    done ;;
duplication)
    # Six consecutive non-blank, non-comment lines that stand again elsewhere.
    for f in $(sources); do
        awk -v f="$f" '{ sub(/^[ \t]+/, ""); sub(/[ \t]+$/, "") }
            $0 != "" && $0 !~ /^(#|\/\/)/ { n++; line[n] = $0; where[n] = NR }
            END { for (i = 1; i + 5 <= n; i++) {
                      key = line[i]; for (j = i + 1; j <= i + 5; j++) key = key "\034" line[j]
                      print key "\035" f ":" where[i] } }' "$f"
    done | awk -F '\035' 'seen[$1] != "" && index(seen[$1], "\036" substr($2, 1, index($2, ":"))) == 0 {
            print $2 ": six lines repeat " substr(seen[$1], 2) } seen[$1] == "" { seen[$1] = "\036" $2 }' \
        >>"$findings" ;;
outdated)
    grep -v '^#' dependencies.txt | while read -r name reviewed _licence; do
        [ -n "$name" ] || continue
        installed=$("$name" 2>&1 | head -n 1 | sed -n 's/.* v\([0-9][0-9.]*\).*/\1/p')
        [ -n "$installed" ] || { echo "$name: not installed" >>"$findings"; continue; }
        newer=$(printf '%s\n%s\n' "$installed" "$reviewed" | sort -t . -k1,1n -k2,2n -k3,3n | tail -n 1)
        [ "$newer" = "$installed" ] ||
            echo "$name: installed $installed, $reviewed reviewed and available" >>"$findings"
    done ;;
licences)
    allowed=" GPL-2.0-only GPL-2.0-or-later GPL-3.0-or-later MIT Apache-2.0 "
    grep -v '^#' dependencies.txt | while read -r name _reviewed licence; do
        [ -n "$name" ] || continue
        case "$allowed" in
        *" $licence "*) ;;
        *) echo "$name: licence $licence is not allowed" >>"$findings" ;;
        esac
    done
    for f in $(sources); do
        id=$(head -n 3 "$f" | sed -n 's/.*SPDX-License-Identifier: \([A-Za-z0-9.+-]*\).*/\1/p')
        case "$allowed" in
        *" ${id:-none} "*) ;;
        *) echo "$f: licence ${id:-header missing} is not allowed" >>"$findings" ;;
        esac
    done ;;
*)
    echo "usage: check.sh style|duplication|outdated|licences" >&2; exit 2 ;;
esac
cat "$findings"
count=$(wc -l < "$findings"); rm -f "$findings"
echo "$1: $count finding(s)"
[ "$count" -eq 0 ]
