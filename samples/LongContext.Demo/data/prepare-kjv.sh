#!/usr/bin/env bash
# Extracts the King James Version text shipped in this folder (kjv.txt) from Debian's bible-kjv packages.
#   sudo apt-get install -y bible-kjv bible-kjv-text   # Debian 12: bible-kjv 4.38
#   bash samples/LongContext.Demo/data/prepare-kjv.sh
# One verse a line, "<book><chapter>:<verse> <text>" as the package's `bible -f` prints it (31,102 verses,
# Genesis 1:1 to Revelation 22:21). The output is byte-for-byte reproducible from the package.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v bible >/dev/null || { echo "bible not found: apt-get install -y bible-kjv bible-kjv-text" >&2; exit 1; }
tmp="$(mktemp "$here/kjv.txt.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
bible -f Ge1:1-Re22:21 > "$tmp"
verses=$(wc -l < "$tmp")
[ "$verses" -eq 31102 ] || { echo "expected 31102 verses, got $verses" >&2; exit 1; }
mv "$tmp" "$here/kjv.txt"
trap - EXIT
echo "wrote $here/kjv.txt ($verses verses, $(wc -c < "$here/kjv.txt") bytes)"
