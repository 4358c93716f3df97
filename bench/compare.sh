#!/bin/bash
# bnorm vs oneDNN vs PyTorch vs the memory-bandwidth roof, as one table.
#
#   bench/compare.sh          two shapes (the residual block and bf16/f16 rows for
#                             one), about a minute
#   bench/compare.sh --full   the whole shape table, the residual block, bf16/f16,
#                             naive and per-target rows (~7.5 min before the residual
#                             rows, which add 65% more benchmark rows; bf16/f16 add
#                             70% more timed rows again)
#
# Uses the build in $BNORM_BUILD_DIR (default build/release in the repository); it does not
# build (scripts/run.sh does). Other options: bench/compare.py --help.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build_dir="${BNORM_BUILD_DIR:-$here/../build/release}"
if [[ ! -x "$build_dir/bench/bnorm_bench" ]]; then
  echo "compare.sh: $build_dir/bench/bnorm_bench not found: build first" \
       "(scripts/run.sh), or point BNORM_BUILD_DIR at a build" >&2
  exit 1
fi
exec /usr/bin/python3 "$here/compare.py" --build-dir "$build_dir" "$@"
