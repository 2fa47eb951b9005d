# shellcheck shell=bash disable=SC2034 # variables for the script that sources this
# Sourced by the integration scripts: where the real vectors are, by the same
# rule as tests/common/vectors.h (tests/vectors/README.md).
#
#   VECTORS                 the repository's tests/vectors: every vector a
#                           script names is read from there, and only there
#   vectors_require REL...  exits 1, naming the vector, unless each
#                           tests/vectors/REL exists
#   vector_dirs "NEED..." KIND...
#                           sets VECTOR_DIRS to every folder KIND/<x> of
#                           tests/vectors, sorted, then to those of the extra
#                           folder whose KIND/<x> tests/vectors lacks. Each
#                           must hold every file of the space-separated NEED
#                           list. Exits 1 when tests/vectors has no KIND/<x>
#                           folder, a folder lacks a NEED file, or the extra
#                           folder is set but is no folder.
#   vector_name DIR         prints KIND/<x> for a folder vector_dirs listed
#
# The extra folder is $CVM_VECTORS_DIR (empty or unset: none); ctest passes
# the build's CMake cache variable of that name.

VECTORS="$(cd "$(dirname "${BASH_SOURCE[0]}")/../vectors" 2>/dev/null && pwd)" || {
	echo "FAIL: $(dirname "${BASH_SOURCE[0]}")/../vectors is missing: the repository's tests/vectors" \
		"holds the vectors the tests need (git checkout -- tests/vectors restores a clone)" >&2
	exit 1
}
VECTOR_DIRS=()

vectors_require() {
	local rel
	for rel in "$@"; do
		if [ ! -e "$VECTORS/$rel" ]; then
			echo "FAIL: vector $rel is missing ($VECTORS/$rel): the repository's tests/vectors must hold it" \
				"(git checkout -- tests/vectors restores a clone; tests/vectors/SOURCES.md says where each" \
				"vector comes from)" >&2
			exit 1
		fi
	done
}

vector_name() {
	printf '%s/%s\n' "$(basename "$(dirname "$1")")" "$(basename "$1")"
}

vector_dirs() {
	local need="$1" kind d f own extra="${CVM_VECTORS_DIR:-}"
	shift
	VECTOR_DIRS=()
	if [ -n "$extra" ] && [ ! -d "$extra" ]; then
		echo "FAIL: CVM_VECTORS_DIR=$extra (the extra vectors) is not a folder: name a folder in the layout" \
			"of tests/vectors, or set it empty for none" >&2
		exit 1
	fi
	for kind in "$@"; do
		own=0
		for d in "$VECTORS/$kind"/*/; do
			[ -d "$d" ] || continue # the glob matched nothing: counted below
			d="${d%/}"
			for f in $need; do
				vectors_require "$kind/$(basename "$d")/$f"
			done
			VECTOR_DIRS+=("$d")
			own=$((own + 1))
		done
		if [ "$own" -eq 0 ]; then
			echo "FAIL: $VECTORS/$kind holds no vector folder (git checkout -- tests/vectors restores a clone)" >&2
			exit 1
		fi
		[ -n "$extra" ] || continue
		for d in "$extra/$kind"/*/; do
			[ -d "$d" ] || continue # the extra folder need not have every kind
			d="${d%/}"
			[ -d "$VECTORS/$kind/$(basename "$d")" ] && continue # tests/vectors has its own copy
			for f in $need; do
				if [ ! -f "$d/$f" ]; then
					echo "FAIL: extra vector folder $d has no $f: every $kind/ folder needs one (an" \
						"extra folder follows the layout of tests/vectors)" >&2
					exit 1
				fi
			done
			VECTOR_DIRS+=("$d")
		done
	done
}
