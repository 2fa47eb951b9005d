#!/usr/bin/env bash
# Fails on any call of a banned C function in cvmkit's own sources
# (curl's checksrc idea; STYLE.md lists them):
#  - unbounded or unsafe string/number/process helpers in include/ lib/ cli/ bench/;
#  - realloc() anywhere under lib/, where a buffer may hold secrets: grow by
#    copy, wipe, free instead (cvm_wr does).
# A match is the name as a whole word followed by "(", outside comments and
# string literals (so snprintf, fgets, or a comment saying "never realloc()"
# do not match). Usage: scripts/check-banned.sh [ROOT]
set -euo pipefail

root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
cd "$root"

banned='strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol|atof|alloca|rand|tmpnam|mktemp|system|popen'
status=0

# Prints FILE with comments removed and string/char literals emptied, line
# numbers unchanged (perl-base is on every Debian system).
strip_c() {
	perl -0777 -pe '
		s{(/\*.*?\*/)|(//[^\n]*)|("(?:\\.|[^"\\\n])*")|('"'"'(?:\\.|[^'"'"'\\\n])*'"'"')}{
			defined $1 ? "\n" x ($1 =~ tr/\n//) : defined $2 ? "" : defined $3 ? "\"\"" : "0"
		}gse' "$1"
}

scan() { # scan REGEX WHAT DIR...
	local re="$1" what="$2" d f hits=""
	shift 2
	for d in "$@"; do
		[ -d "$d" ] || continue
		while IFS= read -r -d '' f; do
			hits+="$(strip_c "$f" | grep -nE "$re" | sed "s|^|$f:|" || true)"$'\n'
		done < <(find "$d" -type f \( -name '*.c' -o -name '*.h' \) -print0 | sort -z)
	done
	hits="$(printf '%s' "$hits" | sed '/^$/d')"
	if [ -n "$hits" ]; then
		echo "check-banned: $what:" >&2
		echo "$hits" >&2
		status=1
	fi
}

scan "(^|[^A-Za-z0-9_])($banned)[[:space:]]*\\(" "banned functions" include lib cli bench
scan "(^|[^A-Za-z0-9_])realloc[[:space:]]*\\(" "realloc under lib/ (may move secrets without wiping)" lib

if [ "$status" -eq 0 ]; then
	echo "check-banned: ok"
fi
exit "$status"
