#!/usr/bin/env bash
# Runs the Python binding's tests against an installed bnorm.
#   BNORM_PREFIX=/path/to/prefix bash bindings/python/test.sh [pytest args...]
# BNORM_PREFIX is the install prefix holding lib/libbnorm.so.1. Works from any
# directory; exits nonzero if a test fails.
set -euo pipefail

if [[ -z "${BNORM_PREFIX:-}" ]]; then
  echo "test.sh: BNORM_PREFIX is not set; set it to a bnorm install prefix" \
       "(the directory holding lib/libbnorm.so.1), e.g. BNORM_PREFIX=/tmp/bnorm-prefix" >&2
  exit 2
fi
library="$BNORM_PREFIX/lib/libbnorm.so.1"
if [[ ! -e "$library" ]]; then
  echo "test.sh: $library does not exist; is BNORM_PREFIX=$BNORM_PREFIX an install prefix?" >&2
  exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export BNORM_LIBRARY="$library"
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
# Bytecode and pytest's cache stay out of the source tree.
export PYTHONDONTWRITEBYTECODE=1

cd "$here"
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider "$@" tests
