#!/usr/bin/env bash
# Runs bnorm's concurrency tests under ThreadSanitizer: builds the library and
# two tests with -fsanitize=thread in build/tsan, then runs
#
#   thread_stress_test   8 threads calling at once, OpenMP inside each call,
#                        while another thread moves the SIMD target cap
#   determinism_test     OpenMP teams of 1 to 3 threads on large tensors
#
#   bash scripts/tsan.sh
#
# Exits nonzero on any TSan report or test failure. About a minute on two
# cores, most of it building the kernels once per SIMD target.
#
# The OpenMP setting, and why. GCC's OpenMP runtime, libgomp, is not built with
# TSan, so TSan never sees how its barriers and thread pool order memory and
# reports races that are not there (built with g++, determinism_test stops at
# once: scratch freed after a parallel region "races" with an OpenMP thread's
# writes to it). Turning OpenMP off (OMP_NUM_THREADS=1) instead would leave the
# kernels' own threading unchecked. So this build uses clang-14 with LLVM's OpenMP runtime, libomp,
# and loads Archer, LLVM's OpenMP tool for TSan:
#
#   CC=clang-14 CXX=clang++-14            (FindOpenMP then picks -fopenmp=libomp)
#   OMP_TOOL_LIBRARIES=/usr/lib/llvm-14/lib/libarcher.so
#   TSAN_OPTIONS=ignore_noninstrumented_modules=1:halt_on_error=1:exitcode=66
#
# Archer hears of every parallel region, barrier, task and lock through OMPT and
# tells TSan the order they impose, so the accesses of bnorm's OpenMP threads
# within one call are checked for real, as are those of the callers' threads
# (target selection, the last-error message). ignore_noninstrumented_modules=1,
# which Archer asks for, leaves out accesses made inside libraries not built
# with TSan (libomp itself, Highway's runtime, libstdc++, GoogleTest); all of
# bnorm and the tests is instrumented. Without Archer, determinism_test gets
# false reports: TSan misses the end of a parallel region, which orders an
# OpenMP thread's reads of the caller's stack before the caller's next call
# writes there. Before the tests run, two small OpenMP programs check the
# setting here: Archer must load, a race inside a parallel region must be
# reported and a barrier-ordered exchange must not be.
#
# Not covered: libgomp, which Release builds use, and GCC's code generation;
# the same OpenMP constructs run on libomp instead.
#
# One more build setting, only for this build:
# - -Wl,-z,undefs after libbnorm.so's own -Wl,--no-undefined: clang links the
#   TSan runtime into executables only, and the library's __tsan_* calls are
#   resolved from the test executable when it loads. (clang's shared runtime,
#   -shared-libsan, crashes at startup on this machine.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_dir=build/tsan
tests=(thread_stress_test determinism_test)
archer=/usr/lib/llvm-14/lib/libarcher.so
packages=(clang-14 libclang-rt-14-dev libomp-14-dev)
start=$(date +%s)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "tsan: installing ${missing[*]}"
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

export OMP_TOOL_LIBRARIES=$archer
export TSAN_OPTIONS="ignore_noninstrumented_modules=1:halt_on_error=1:exitcode=66:second_deadlock_stack=1"

# Some kernels place memory where LLVM 14's TSan does not expect it; it then
# stops at once, and runs fine without address randomization.
run=()
probe_dir=$(mktemp -d)
trap 'rm -rf "$probe_dir"' EXIT
printf 'int main(void) { return 0; }\n' >"$probe_dir/empty.c"
clang-14 -fsanitize=thread "$probe_dir/empty.c" -o "$probe_dir/empty"
if ! "$probe_dir/empty" >"$probe_dir/empty.log" 2>&1; then
  if setarch "$(uname -m)" -R "$probe_dir/empty"; then
    echo "tsan: TSan needs address randomization off here: $(head -c 200 "$probe_dir/empty.log")"
    run=(setarch "$(uname -m)" -R)
  else
    echo "tsan: TSan programs do not start here: $(head -c 300 "$probe_dir/empty.log")" >&2
    exit 1
  fi
fi

echo "==== probe: TSan with Archer on two small OpenMP programs ===="
cat >"$probe_dir/race.c" <<'EOF'
#include <omp.h>
int main(void) {
  int shared = 0;
#pragma omp parallel num_threads(2)
  shared += omp_get_thread_num() + 1;
  return shared > 3;
}
EOF
cat >"$probe_dir/barrier.c" <<'EOF'
#include <omp.h>
int main(void) {
  int value[2] = {0, 0}, sum = 0;
#pragma omp parallel num_threads(2)
  {
    value[omp_get_thread_num()] = omp_get_thread_num() + 1;
#pragma omp barrier
    if (omp_get_thread_num() == 0) sum = value[0] + value[1];
  }
  return sum != 3;
}
EOF
for probe in race barrier; do
  clang-14 -fsanitize=thread -fopenmp=libomp -g "$probe_dir/$probe.c" -o "$probe_dir/$probe"
done
set +e
"${run[@]}" "$probe_dir/race" >"$probe_dir/race.log" 2>&1
race_rc=$?
ARCHER_OPTIONS=verbose=1 "${run[@]}" "$probe_dir/barrier" >"$probe_dir/barrier.log" 2>&1
barrier_rc=$?
set -e
if ((race_rc != 66)) || ! grep -q 'WARNING: ThreadSanitizer: data race' "$probe_dir/race.log"; then
  echo "tsan: a race inside a parallel region went unreported (exit $race_rc):" >&2
  cat "$probe_dir/race.log" >&2
  exit 1
fi
if ((barrier_rc != 0)) || ! grep -q 'Archer detected' "$probe_dir/barrier.log"; then
  echo "tsan: Archer did not load, or a barrier-ordered exchange was reported (exit $barrier_rc):" >&2
  cat "$probe_dir/barrier.log" >&2
  exit 1
fi
echo "Archer is loaded, a race is reported and a barrier-ordered exchange is not"

echo
# Line tables only (-g1): reports keep file:line at much less build time.
echo "==== build ($build_dir, clang-14, -fsanitize=thread) ===="
CC=clang-14 CXX=clang++-14 cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBNORM_BUILD_TESTS=ON -DBNORM_BUILD_BENCH=OFF -DBNORM_BUILD_EXAMPLES=OFF \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
  -DCMAKE_C_FLAGS="-fsanitize=thread" \
  -DCMAKE_CXX_FLAGS="-fsanitize=thread" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=thread" \
  -DCMAKE_CXX_STANDARD_LIBRARIES="-Wl,-z,undefs"
grep -q 'OpenMP_CXX_FLAGS:.*=-fopenmp=libomp' "$build_dir/CMakeCache.txt" ||
  { echo "tsan: the build did not pick LLVM's libomp" >&2; exit 1; }
cmake --build "$build_dir" -j"$(nproc 2>/dev/null || echo 2)" --target "${tests[@]}"

failed=()
for t in "${tests[@]}"; do
  echo
  echo "==== $t under TSan ===="
  log=$build_dir/$t.log
  set +e
  "${run[@]}" "$build_dir/tests/$t" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  if ((rc != 0)) || grep -q 'ThreadSanitizer' "$log"; then
    failed+=("$t (exit $rc, log $log)")
  fi
done

echo
echo "tsan: $(($(date +%s) - start)) s"
if ((${#failed[@]})); then
  printf 'tsan: FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "tsan: no reports, all tests passed"
