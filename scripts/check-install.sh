#!/usr/bin/env bash
# Installs a built bnorm into a temporary prefix, checks the layout, and builds
# and runs an out-of-tree C program (tests/install) against it four ways: the
# CMake package and pkg-config, each with the shared and the static library.
# Also checks that find_package(bnorm 2.0) is refused by the version file.
#
#   bash scripts/check-install.sh [build-dir]     (default build/release)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
build=${1:-build/release}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" >/dev/null
echo "installed into a temporary prefix:"
(cd "$prefix" && find . -type f -o -type l | sort | sed 's/^/  /')

fail() { echo "check-install: FAILED: $*" >&2; exit 1; }
for f in include/bnorm/bnorm.h lib/libbnorm.so lib/libbnorm.so.1 lib/libbnorm.a \
         lib/cmake/bnorm/bnormConfig.cmake lib/cmake/bnorm/bnormConfigVersion.cmake \
         lib/pkgconfig/bnorm.pc; do
  [[ -e $prefix/$f ]] || fail "$f is missing"
done
ls "$prefix"/lib/libbnorm.so.1.*.* >/dev/null 2>&1 || fail "lib/libbnorm.so.1.x.y is missing"
soname=$(readelf -d "$prefix/lib/libbnorm.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname == libbnorm.so.1 ]] || fail "SONAME is '$soname', not libbnorm.so.1"
echo "SONAME $soname"

# run_consumer LABEL BINARY: runs it; a static build must not need libbnorm.so.
run_consumer() {
  local label=$1 binary=$2
  if [[ $label == *static* ]] && ldd "$binary" | grep -q libbnorm; then
    fail "$label: the static build loads libbnorm.so"
  fi
  "$binary" || fail "$label: the consumer failed"
  echo "  ok: $label"
}

for kind in shared static; do
  static=OFF
  [[ $kind == static ]] && static=ON
  cmake -S tests/install -B "$work/cmake-$kind" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCONSUMER_STATIC=$static >"$work/cmake-$kind.log" 2>&1 ||
    { cat "$work/cmake-$kind.log"; fail "CMake package, $kind: configure"; }
  cmake --build "$work/cmake-$kind" >>"$work/cmake-$kind.log" 2>&1 ||
    { cat "$work/cmake-$kind.log"; fail "CMake package, $kind: build"; }
  run_consumer "CMake package, $kind" "$work/cmake-$kind/consumer"
done

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
cflags=(-std=c99 -Wall -Wextra -Werror -pedantic)
# shellcheck disable=SC2046  # pkg-config output is a list of flags
cc "${cflags[@]}" tests/install/consumer.c -o "$work/pc-shared" $(pkg-config --cflags --libs bnorm) \
  -Wl,-rpath,"$prefix/lib" -lm || fail "pkg-config, shared: build"
run_consumer "pkg-config, shared" "$work/pc-shared"
# -l:libbnorm.a picks the archive where -lbnorm would pick the shared library.
# shellcheck disable=SC2046
cc "${cflags[@]}" tests/install/consumer.c -o "$work/pc-static" \
  $(pkg-config --cflags --static --libs bnorm | sed 's/-lbnorm\b/-l:libbnorm.a/') -lm ||
  fail "pkg-config, static: build"
run_consumer "pkg-config, static" "$work/pc-static"

# The version file: a request for major 2 must be refused, 1.0 accepted above.
if cmake -S tests/install -B "$work/cmake-v2" -DCMAKE_PREFIX_PATH="$prefix" -DBNORM_WANT=2.0 \
  >"$work/cmake-v2.log" 2>&1; then
  fail "find_package(bnorm 2.0) was accepted"
fi
grep -q 'not compatible\|version' "$work/cmake-v2.log" || { cat "$work/cmake-v2.log"; fail "v2 refusal unexplained"; }
echo "  ok: find_package(bnorm 2.0) refused:$(grep -A2 "not accepted" "$work/cmake-v2.log" | tail -2 | tr -s " \n" " ")"
echo "check-install: all passed"
