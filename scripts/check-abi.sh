#!/usr/bin/env bash
# Checks the shared library's exported interface against v1:
#   1. the dynamic symbol table defines only bnorm_* symbols (no Highway, C++
#      standard library or OpenMP symbols leak);
#   2. abidiff against the committed baseline abi/libbnorm.so.1.abi: removing or
#      changing a function, an enum value or a struct field fails; additions
#      (new functions, new enumerators, struct fields appended at the end) pass.
#
#   bash scripts/check-abi.sh [path/to/libbnorm.so.1]   (default build/release)
#   bash scripts/check-abi.sh --update [lib]            rewrite the baseline
#
# The baseline changes only with a deliberate, compatible addition; update it
# in the same commit and say so.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
update=0
if [[ ${1:-} == --update ]]; then
  update=1
  shift
fi
lib=${1:-build/release/libbnorm.so.1}
baseline=abi/libbnorm.so.1.abi
fail() { echo "check-abi: FAILED: $*" >&2; exit 1; }
[[ -e $lib ]] || fail "$lib does not exist (build first)"

# abidw sees the public types through the C API layer's debug information; the
# options keep build paths out, so the output depends on the sources only.
dump() {
  abidw --headers-dir include/bnorm --drop-private-types --no-corpus-path --no-comp-dir-path \
    --no-show-locs "$1"
}
if ((update)); then
  dump "$lib" >"$baseline"
  echo "check-abi: wrote $baseline"
  exit 0
fi

exported=$(nm -D --defined-only "$lib" | awk '{print $3}' | sed 's/@.*//' | sort)
echo "exported symbols ($(wc -l <<<"$exported")):"
sed 's/^/  /' <<<"$exported"
leaked=$(grep -v '^bnorm_' <<<"$exported" || true)
[[ -z $leaked ]] || fail "symbols other than bnorm_* are exported: $(tr '\n' ' ' <<<"$leaked")"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dump "$lib" >"$work/current.abi"
set +e
abidiff "$baseline" "$work/current.abi" >"$work/report" 2>&1
rc=$?
set -e
# abidiff's status is a bit set: 1 error, 2 usage error, 4 some change, 8 an
# incompatible change (a removed symbol). Changes it calls compatible still
# include changed types, so the report is read for anything but additions.
if ((rc & 3)); then
  cat "$work/report"
  fail "abidiff could not compare (status $rc)"
fi
# A struct grown at the end reports its new size and a member insertion; any
# other change names what moved, changed or went.
breaking='Removed|removed|deletion|offset changed|name changed|enumerator change|data member change|type of .* changed|was added|return type changed'
if ((rc & 8)) || grep -v 'changes summary' "$work/report" | grep -Eq "$breaking"; then
  cat "$work/report"
  fail "the ABI differs incompatibly from $baseline (abidiff status $rc)"
fi
if ((rc & 4)); then
  echo "compatible additions since the baseline:"
  sed 's/^/  /' "$work/report"
else
  echo "no ABI change since the baseline"
fi
echo "check-abi: passed"
