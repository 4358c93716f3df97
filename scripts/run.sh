#!/usr/bin/env bash
# bnorm's main command, as README.md gives it: installs the dependencies, builds
# in Release (build/release, shared with scripts/test.sh), runs the examples,
# then the short benchmark comparison against oneDNN, PyTorch and the
# memory-bandwidth roof (bench/compare.sh, about a minute).
#
#   bash scripts/run.sh            the short comparison
#   bash scripts/run.sh --full     the whole shape table (~7.5 min)
#
# Arguments go to bench/compare.sh (bench/compare.py --help lists them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
release_dir=build/release

echo "==== install dependencies ===="
bash scripts/install-deps.sh

echo
echo "==== Release build ($release_dir) ===="
# The same options as scripts/test.sh, so the two share one build directory;
# only the targets this script runs are built here.
cmake -S . -B "$release_dir" -DCMAKE_BUILD_TYPE=Release -DBNORM_BUILD_TESTS=ON \
  -DBNORM_BUILD_EXAMPLES=ON -DBNORM_BUILD_BENCH=ON -DBNORM_MPI=ON
examples=(correct_use feature_mismatch runtime_channels)
cmake --build "$release_dir" -j"$(nproc)" \
  --target "${examples[@]/#/example_}" bnorm_bench

for name in "${examples[@]}"; do
  echo
  echo "==== example: $name ===="
  "$release_dir/examples/example_$name"
done

echo
echo "==== benchmark comparison (bench/compare.sh $*) ===="
BNORM_BUILD_DIR="$root/$release_dir" bash bench/compare.sh "$@"
