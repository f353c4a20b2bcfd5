#!/bin/sh
# The libraries' symbols: libtfswa.so exports exactly the functions include/tfswa.h
# declares (no internal symbol leaks into users' namespace), with the versioned soname;
# libtfswa.a defines only tf_* / tfswa_* globals and runs no program.
# usage: tests/test_exports.sh BUILD_DIR   (prints ok/FAIL lines, then "N passed, N failed")
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CC=${CC:-cc}
pass=0; fail=0
ok() { echo "ok $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

major=$(sed -n 's/^#define TFSWA_VERSION_MAJOR \([0-9]*\).*/\1/p' "$ROOT/include/tfswa.h")
so="$BUILD/libtfswa.so"

# the public functions: every tfswa_NAME( of the preprocessed header (comments removed)
if "$CC" -E -P -x c "$ROOT/include/tfswa.h" > "$tmp/h.i" 2> "$tmp/err"; then
  grep -oE '\btfswa_[a-z0-9_]+[[:space:]]*\(' "$tmp/h.i" | sed 's/[[:space:](]//g' |
    sort -u > "$tmp/declared"
  n=$(wc -l < "$tmp/declared")
  [ "$n" -ge 10 ] && ok "header declares $n tfswa_ functions" ||
    bad "include/tfswa.h: found only $n declarations"
else
  bad "cannot preprocess include/tfswa.h: $(cat "$tmp/err")"
  : > "$tmp/declared"
fi

# shared library: exported (dynamic, defined) symbols == the declared functions
if [ -e "$so" ] && nm -D --defined-only "$so" > "$tmp/nm" 2> "$tmp/err"; then
  awk 'NF >= 3 { print $3 }' "$tmp/nm" | sed 's/@.*//' | sort -u > "$tmp/exported"
  extra=$(comm -23 "$tmp/exported" "$tmp/declared" | tr '\n' ' ')
  missing=$(comm -13 "$tmp/exported" "$tmp/declared" | tr '\n' ' ')
  [ -z "$extra" ] && ok "libtfswa.so exports no symbol outside the public API" ||
    bad "libtfswa.so exports symbols not declared in include/tfswa.h: $extra"
  [ -z "$missing" ] && ok "libtfswa.so exports every function of include/tfswa.h" ||
    bad "libtfswa.so does not export: $missing"
else
  bad "$so: missing or unreadable by nm -D"
fi

# soname and the development links
soname=$(objdump -p "$so" 2> /dev/null | awk '$1 == "SONAME" { print $2 }')
[ "$soname" = "libtfswa.so.$major" ] && ok "soname $soname" ||
  bad "soname of $so is '$soname', expected libtfswa.so.$major"
real=$(readlink -f "$so" 2> /dev/null)
case "$real" in
  */libtfswa.so.$major.[0-9]*.[0-9]*)
    [ "$(readlink -f "$BUILD/libtfswa.so.$major")" = "$real" ] &&
      ok "libtfswa.so -> libtfswa.so.$major -> $(basename "$real")" ||
      bad "$BUILD/libtfswa.so.$major does not lead to $real" ;;
  *) bad "$so does not lead to a libtfswa.so.$major.MINOR.PATCH file (got '$real')" ;;
esac

# static library: every defined global is tf_* or tfswa_* (the compiler's own names derive
# from ours: .gomp_critical_user_<name> for OpenMP named critical sections and, under
# SAN=1, __odr_asan.<global>)
if nm -g --defined-only "$BUILD/libtfswa.a" > "$tmp/nma" 2> "$tmp/err"; then
  leak=$(awk 'NF >= 3 { print $3 }' "$tmp/nma" | grep -vE '^(\.gomp_critical_user_|__odr_asan\.)?(tf_|tfswa_)' |
    sort -u | tr '\n' ' ')
  n=$(awk 'NF >= 3' "$tmp/nma" | wc -l)
  [ -z "$leak" ] && [ "$n" -gt 100 ] && ok "libtfswa.a: $n globals, all tf_ / tfswa_" ||
    bad "libtfswa.a defines unprefixed globals ($n in all): $leak"
else
  bad "$BUILD/libtfswa.a: unreadable by nm: $(cat "$tmp/err")"
fi

# the public prefix means public: every tfswa_* global of libtfswa.a is declared in
# include/tfswa.h (internal helpers of the API are tf_api_*)
if [ -s "$tmp/nma" ]; then
  awk 'NF >= 3 { print $3 }' "$tmp/nma" | grep -E '^tfswa_' | sort -u > "$tmp/pub_a"
  undeclared=$(comm -23 "$tmp/pub_a" "$tmp/declared" | tr '\n' ' ')
  [ -z "$undeclared" ] && ok "libtfswa.a: every tfswa_ global is in include/tfswa.h" ||
    bad "libtfswa.a defines tfswa_ globals that include/tfswa.h does not declare: $undeclared"
fi

# the library never runs programs (Python belongs to tests/ and tools/, e.g. the museval
# cross-check of tests/bss_check.c)
run=$(nm -u "$BUILD/libtfswa.a" 2> /dev/null | awk '{ print $2 }' | sed 's/@.*//' |
  grep -E '^(popen|system|fork|vfork|posix_spawnp?|exec[lv]p?e?)$' | sort -u | tr '\n' ' ')
[ -z "$run" ] && ok "libtfswa.a runs no program (no popen, system, fork, exec)" ||
  bad "libtfswa.a calls $run"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
