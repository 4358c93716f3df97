#!/usr/bin/env bash
# Builds bnorm's libFuzzer harness (tests/fuzz) with clang-14 under ASan and
# UBSan into build/fuzz, then fuzzes the C API, starting from a copy of the
# committed seed corpus tests/fuzz/corpus (which is never changed).
#
#   bash scripts/fuzz.sh               fuzz for about 60 s (the test suite's run)
#   bash scripts/fuzz.sh --seconds N   fuzz for N seconds
#   --build-dir DIR                    build and fuzz in DIR instead of build/fuzz
#                                      (e.g. beside another checkout's run)
#
# Prints the executions per second and the total executions at the end. Exits
# nonzero on any crash, sanitizer report, contract violation, leak or timeout;
# the failing input is then in build/fuzz/artifacts/ and the full log in
# build/fuzz/fuzz.log. tests/fuzz/README.md says how to reproduce it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=60
build=build/fuzz
while (($#)); do
  case "$1" in
    --seconds)
      [[ "${2:-}" =~ ^[0-9]+$ ]] || { echo "fuzz: --seconds needs a number" >&2; exit 2; }
      seconds=$2
      shift 2
      ;;
    --build-dir)
      [[ -n "${2:-}" ]] || { echo "fuzz: --build-dir needs a directory" >&2; exit 2; }
      build=$2
      shift 2
      ;;
    *) echo "usage: bash scripts/fuzz.sh [--seconds N] [--build-dir DIR]" >&2; exit 2 ;;
  esac
done

for tool in clang-14 clang++-14 cmake; do
  command -v "$tool" >/dev/null || { echo "fuzz: $tool not found" >&2; exit 1; }
done

generator=()
command -v ninja >/dev/null && [[ ! -f $build/CMakeCache.txt ]] && generator=(-G Ninja)
CC=clang-14 CXX=clang++-14 cmake -S tests/fuzz -B "$build" "${generator[@]}" >/dev/null
cmake --build "$build" --target bnorm_fuzz -j "$(nproc)" >/dev/null

rm -rf "$build/corpus" "$build/artifacts"
mkdir -p "$build/artifacts"
cp -r tests/fuzz/corpus "$build/corpus"

log=$build/fuzz.log
echo "fuzz: ${seconds}s on $(find "$build/corpus" -type f | wc -l) seed inputs (log: $log)"
status=0
# allocator_may_return_null: the library answers a failed allocation with
# BNORM_ERR_OUT_OF_MEMORY rather than dying (the harness keeps shapes small,
# so this is a safety net). lsan.supp: libomp's own blocks at exit. The
# timeout is per input.
ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1 \
LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp \
UBSAN_OPTIONS=print_stacktrace=1 \
OMP_NUM_THREADS=2 \
  "$build/bnorm_fuzz" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -max_len=1024 \
  -print_final_stats=1 -artifact_prefix="$build/artifacts/" "$build/corpus" >"$log" 2>&1 ||
  status=$?

if ((status != 0)); then
  tail -n 60 "$log"
  echo "fuzz: FAILED (exit $status); input: $(find "$build/artifacts" -type f | head -n 1)"
  exit "$status"
fi
grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true
awk '/stat::number_of_executed_units/ {runs = $2}
     /stat::average_exec_per_sec/ {rate = $2}
     /stat::peak_rss_mb/ {rss = $2}
     END {printf "fuzz: OK: %d executions, %d exec/s, peak RSS %d MB\n", runs, rate, rss}' "$log"
