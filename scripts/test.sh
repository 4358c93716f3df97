#!/usr/bin/env bash
# bnorm's full check, as README.md gives it and CI runs it (.ci/run):
#
#   install the Debian packages          scripts/install-deps.sh
#   Release build and tests              build/release; ctest: unit tests, examples
#                                        (also under valgrind), header and struct_size
#   install and consume                  scripts/check-install.sh: CMake package and
#                                        pkg-config, shared and static
#   ABI                                  scripts/check-abi.sh: exports, abidiff vs abi/
#   bindings                             Python, Rust, Go against build/prefix
#   ASan/UBSan build and tests           build/asan
#   ThreadSanitizer                      scripts/tsan.sh (build/tsan)
#   fuzzing, 60 s                        scripts/fuzz.sh (build/fuzz)
#   benchmark peer check                 bnorm and oneDNN vs a reference
#   a tensor of 2^31+ values             when 12 GiB are free (BNORM_TEST_LARGE=1)
#   format check                         clang-format, no changes made
#
# Works from any directory. A failing step does not stop the later ones that do
# not depend on it, so one run shows every problem; the exit status is nonzero
# if any step failed. A timed summary comes last.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

jobs=$(nproc 2>/dev/null || echo 2)
# Tests run two at a time: the machine has two cores and several tests are
# OpenMP-parallel themselves.
test_jobs=2
release_dir=build/release
asan_dir=build/asan
# Keep in step with scripts/run.sh, which shares build/release.
release_options=(-DCMAKE_BUILD_TYPE=Release -DBNORM_BUILD_TESTS=ON -DBNORM_BUILD_EXAMPLES=ON
                 -DBNORM_BUILD_BENCH=ON -DBNORM_MPI=ON)
# Line tables only (-g1): the sanitizers' reports keep file:line, and the
# kernels, compiled for every target and element type, build in 40% less time.
asan_options=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DBNORM_SANITIZE=ON -DBNORM_BUILD_TESTS=ON
              -DBNORM_BUILD_EXAMPLES=ON -DBNORM_BUILD_BENCH=OFF
              "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
              "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG")

names=() results=() seconds=()
failed=0
step_number=0
total_steps=16

# run_step NAME FUNCTION: runs FUNCTION in a subshell with errexit in force and
# records its result and duration.
run_step() {
  local name=$1 fn=$2 start rc
  step_number=$((step_number + 1))
  printf '\n==== [%d/%d] %s ====\n' "$step_number" "$total_steps" "$name"
  start=$(date +%s)
  set +e
  (set -euo pipefail; "$fn")
  rc=$?
  set -e
  names+=("$name")
  seconds+=($(($(date +%s) - start)))
  if ((rc == 0)); then
    results+=(ok)
  else
    results+=("FAILED (exit $rc)")
    failed=1
  fi
  return 0
}

skip_step() {
  local name=$1 reason=$2
  step_number=$((step_number + 1))
  printf '\n==== [%d/%d] %s ====\nskipped: %s\n' "$step_number" "$total_steps" "$name" "$reason"
  names+=("$name")
  seconds+=(0)
  results+=("skipped: $reason")
}

last_ok() { [[ ${results[${#results[@]} - 1]} == ok ]]; }

install_deps() { bash scripts/install-deps.sh; }

release_build() {
  cmake -S . -B "$release_dir" "${release_options[@]}"
  cmake --build "$release_dir" -j"$jobs"
}

release_tests() {
  ctest --test-dir "$release_dir" --output-on-failure --no-tests=error -j"$test_jobs"
}

asan_build() {
  cmake -S . -B "$asan_dir" "${asan_options[@]}"
  cmake --build "$asan_dir" -j"$jobs"
}

# LeakSanitizer stops the process with a fatal error instead of checking when it
# runs under ptrace (a debugger, strace, some container sandboxes). Find out
# first with a program that leaks on purpose, so that leak checking is only
# turned off with a stated reason, never silently.
leak_detection_works() {
  local probe_dir out
  probe_dir=$(mktemp -d)
  printf '#include <stdlib.h>\nint main(void) { void* volatile p = malloc(7); p = 0; return 0; }\n' \
    >"$probe_dir/leak.c"
  if ! cc -fsanitize=address -g "$probe_dir/leak.c" -o "$probe_dir/leak" 2>"$probe_dir/cc.log"; then
    lsan_reason="could not build the LeakSanitizer probe: $(head -c 300 "$probe_dir/cc.log")"
    rm -rf "$probe_dir"
    return 1
  fi
  out=$(ASAN_OPTIONS=detect_leaks=1 "$probe_dir/leak" 2>&1 || true)
  rm -rf "$probe_dir"
  if grep -q 'detected memory leaks' <<<"$out"; then
    return 0
  fi
  if grep -qi 'ptrace' <<<"$out"; then
    lsan_reason="LeakSanitizer does not work under ptrace (TracerPid $(awk '/TracerPid/ {print $2}' /proc/self/status)): this process is being traced, e.g. by a debugger, strace or the container's sandbox"
  else
    lsan_reason="a program that leaks on purpose was not reported: $(head -c 300 <<<"$out")"
  fi
  return 1
}

asan_tests() {
  local leaks=1
  lsan_reason=""
  if ! leak_detection_works; then
    leaks=0
    echo "WARNING: leak detection is OFF for this run."
    echo "WARNING: reason: $lsan_reason"
    echo "WARNING: AddressSanitizer and UBSan still check everything else."
  else
    echo "LeakSanitizer works here: leak detection is on."
  fi
  # allocator_may_return_null=1: bnorm answers a failed scratch allocation with
  # BNORM_ERR_OUT_OF_MEMORY, and a test checks that with a huge request; by
  # default ASan would abort the process on that request instead of returning NULL.
  ASAN_OPTIONS="detect_leaks=$leaks:allocator_may_return_null=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    ctest --test-dir "$asan_dir" --output-on-failure --no-tests=error -j"$test_jobs"
}

install_check() { bash scripts/check-install.sh "$release_dir"; }
abi_check() { bash scripts/check-abi.sh "$release_dir/libbnorm.so.1"; }

# The bindings build and test against an installed library, as their users do.
prefix_dir=build/prefix
install_prefix() {
  rm -rf "$prefix_dir"
  cmake --install "$release_dir" --prefix "$prefix_dir" >/dev/null
  echo "installed into $prefix_dir"
}
binding_tests() { BNORM_PREFIX="$root/$prefix_dir" bash "bindings/$1/test.sh"; }
python_tests() { binding_tests python; }
rust_tests() { binding_tests rust; }
go_tests() { binding_tests go; }

tsan_check() { bash scripts/tsan.sh; }
fuzz_check() { bash scripts/fuzz.sh; }

# 8 GiB a buffer: runs when the memory is free, else says why not.
large_memory_kib=$((12 * 1024 * 1024))
large_tensor() {
  BNORM_TEST_LARGE=1 "$release_dir/tests/large/large_tensor_test"
}

peer_check() {
  "$release_dir/bench/bnorm_bench" --check
}

format_check() { bash scripts/format.sh --check; }

total_start=$(date +%s)
echo "bnorm test: $root, $(nproc) cores, $(uname -m)"

run_step "install dependencies" install_deps
if ! last_ok; then
  echo "test: dependencies are missing; nothing else can run" >&2
  exit 1
fi

run_step "Release build ($release_dir)" release_build
release_ok=0
if last_ok; then
  release_ok=1
  run_step "Release tests (ctest -j$test_jobs)" release_tests
else
  skip_step "Release tests" "the Release build failed"
fi

if ((release_ok)); then
  run_step "install and consume (CMake, pkg-config)" install_check
  run_step "ABI: exports and abidiff" abi_check
  run_step "install into $prefix_dir" install_prefix
  if last_ok; then
    run_step "Python binding (pytest)" python_tests
    run_step "Rust binding (cargo test)" rust_tests
    run_step "Go binding (go vet, go test)" go_tests
  else
    for b in Python Rust Go; do skip_step "$b binding" "the install into $prefix_dir failed"; done
  fi
else
  for s in "install and consume" "ABI" "install into $prefix_dir" "Python binding" \
           "Rust binding" "Go binding"; do
    skip_step "$s" "the Release build failed"
  done
fi

run_step "ASan/UBSan build ($asan_dir)" asan_build
if last_ok; then
  run_step "ASan/UBSan tests (ctest -j$test_jobs)" asan_tests
else
  skip_step "ASan/UBSan tests" "the sanitizer build failed"
fi

if [[ -x $release_dir/bench/bnorm_bench ]]; then
  run_step "benchmark peer check (bnorm_bench --check)" peer_check
else
  skip_step "benchmark peer check" "$release_dir/bench/bnorm_bench was not built"
fi

run_step "ThreadSanitizer (scripts/tsan.sh)" tsan_check
run_step "fuzzing, 60 s (scripts/fuzz.sh)" fuzz_check

available_kib=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
if [[ ! -x $release_dir/tests/large/large_tensor_test ]]; then
  skip_step "tensor of 2^31+ values" "the Release build failed"
elif ((available_kib < large_memory_kib)); then
  skip_step "tensor of 2^31+ values" \
    "$((available_kib / 1024 / 1024)) GiB available, 12 needed (run it with BNORM_TEST_LARGE=1)"
else
  run_step "tensor of 2^31+ values (in place, 8 GiB)" large_tensor
fi

run_step "format check (clang-format)" format_check

printf '\n==== summary ====\n'
for i in "${!names[@]}"; do
  printf '  %-46s %4ds  %s\n' "${names[$i]}" "${seconds[$i]}" "${results[$i]}"
done
printf '  %-46s %4ds\n' "total" "$(($(date +%s) - total_start))"
if ((failed)); then
  echo "test: FAILED"
  exit 1
fi
echo "test: all steps passed"
