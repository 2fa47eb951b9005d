#!/usr/bin/env bash
# Checks that the library's modules keep to their layers (docs/architecture.md).
# Usage: scripts/check-layers.sh BUILD_DIR   (the ctest test build.layers)
#
# BUILD_DIR/cvm-layers.txt (written by lib/CMakeLists.txt) lists each module,
# its layer and the modules it declares in DEPS. For every module lib/<m>:
#  - symbols: every symbol that an object of libcvm_<m>.a leaves undefined and
#    that another module defines must come from <m>'s DEPS (transitively);
#  - includes: a quoted include in lib/<m> names a header of lib/<m> itself, or
#    "<dep>/<dep>_lib.h"-style library-internal headers (*_lib.h) of a DEPS
#    module; never another module's private *_int.h headers, never a module it
#    does not depend on. Public headers (include/cvmkit) include only each other;
#  - external crypto: no file under lib/ outside lib/crypto includes
#    <openssl/...> or <secp256k1...>.
# Prints one line per violation and exits 1 when there is any.
set -euo pipefail

build="${1:?usage: check-layers.sh BUILD_DIR}"
src="$(cd "$(dirname "$0")/.." && pwd)"
map="$build/cvm-layers.txt"
[ -f "$map" ] || {
	echo "check-layers: $map is missing: configure the build first (cmake -S . -B $build)" >&2
	exit 1
}

declare -A layer deps closure
modules=()
while read -r name lay dl; do
	[ -n "$name" ] || continue
	modules+=("$name")
	layer[$name]=$lay
	deps[$name]="${dl//,/ }"
done <"$map"

# The transitive closure of DEPS (modules are listed after their deps).
for m in "${modules[@]}"; do
	c=" $m "
	for d in ${deps[$m]}; do
		for x in ${closure[$d]}; do
			case "$c" in *" $x "*) ;; *) c+="$x " ;; esac
		done
	done
	closure[$m]="$c"
done

bad=0
fail() {
	echo "check-layers: $*"
	bad=1
}

# Symbols: which module defines each global symbol, then each module's uses.
defs="$(mktemp)"
trap 'rm -f "$defs"' EXIT
for m in "${modules[@]}"; do
	a="$build/lib/libcvm_$m.a"
	[ -f "$a" ] || {
		fail "lib/$m: $a is missing (build the project first)"
		continue
	}
	nm -g --defined-only "$a" 2>/dev/null | awk -v m="$m" 'NF == 3 { print $3, m }' >>"$defs"
done
for m in "${modules[@]}"; do
	a="$build/lib/libcvm_$m.a"
	[ -f "$a" ] || continue
	while read -r obj sym; do
		owner="$(awk -v s="$sym" '$1 == s { print $2; exit }' "$defs")"
		[ -n "$owner" ] || continue # a system or external library symbol
		case "${closure[$m]}" in
		*" $owner "*) ;;
		*) fail "lib/$m (${obj}) uses $sym of lib/$owner (layer ${layer[$owner]}), which lib/$m (layer ${layer[$m]}) does not depend on" ;;
		esac
	done < <(nm -A -u "$a" 2>/dev/null | awk '{ n = split($1, p, ":"); print p[n - 1], $NF }')
done

# Includes.
for m in "${modules[@]}"; do
	for f in "$src/lib/$m"/*.[ch]; do
		[ -f "$f" ] || continue
		rel="${f#"$src"/}"
		while IFS=: read -r line inc; do
			case "$inc" in
			*..*) fail "$rel:$line: includes \"$inc\" through a relative path" ;;
			*/*)
				d="${inc%%/*}"
				h="${inc#*/}"
				if [ "$d" = "$m" ]; then
					:
				elif [ ! -d "$src/lib/$d" ]; then
					fail "$rel:$line: includes \"$inc\", which is no module's header"
				else
					case "${closure[$m]}" in
					*" $d "*)
						case "$h" in
						*_lib.h) ;;
						*) fail "$rel:$line: includes \"$inc\", a private header of lib/$d (only *_lib.h headers are shared)" ;;
						esac
						;;
					*) fail "$rel:$line: includes \"$inc\" of lib/$d, which lib/$m does not depend on" ;;
					esac
				fi
				;;
			*)
				[ -f "$src/lib/$m/$inc" ] || fail "$rel:$line: includes \"$inc\", which is not in lib/$m"
				;;
			esac
		done < <(awk '/^[ \t]*#[ \t]*include[ \t]*"/ { s = $0; sub(/^[^"]*"/, "", s); sub(/".*/, "", s); print FNR ":" s }' "$f")
	done
done
for f in "$src"/include/cvmkit/*.h; do
	while read -r inc; do
		[ -f "$src/include/cvmkit/$inc" ] || fail "${f#"$src"/}: includes \"$inc\", which is not a public header"
	done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
done

# OpenSSL and libsecp256k1: only lib/crypto includes them (every other module
# reaches them through lib/crypto's public and *_lib.h interfaces), except
# that lib/tls, the TLS glue whose API is OpenSSL's SSL_CTX, may include
# OpenSSL's TLS, X.509, PEM/BIO and EVP_PKEY headers (never its
# algorithms). One line per offending file, naming its headers.
while IFS= read -r -d '' f; do
	rel="${f#"$src"/}"
	case "$rel" in lib/crypto/*) continue ;; esac
	hdrs="$(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*<\(openssl\/[^>]*\|secp256k1[^>]*\)>.*/\1/p' "$f" |
		tr '\n' ' ')"
	case "$rel" in lib/tls/*) hdrs="$(printf '%s' "$hdrs" | tr ' ' '\n' |
		grep -v -x -E 'openssl/(ssl|err|x509|x509_vfy|x509v3|pem|bio|evp)\.h' | tr '\n' ' ' || true)" ;; esac
	[ -z "$hdrs" ] ||
		fail "$rel: includes ${hdrs% }: only lib/crypto may include OpenSSL or libsecp256k1 (use its interfaces, include/cvmkit/crypto.h and lib/crypto/crypto_lib.h)"
done < <(find "$src/lib" -type f \( -name '*.c' -o -name '*.h' \) -print0 | sort -z)

if [ "$bad" -ne 0 ]; then
	echo "check-layers: FAILED (see docs/architecture.md for what each layer may use)"
	exit 1
fi
echo "check-layers: ${#modules[@]} modules keep to their layers"
