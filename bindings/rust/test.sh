#!/usr/bin/env bash
# Builds and tests the Rust binding against an installed bnorm.
#
#   BNORM_PREFIX=/path/to/prefix bash bindings/rust/test.sh
#
# BNORM_PREFIX is an install prefix holding lib/libbnorm.so and
# lib/pkgconfig/bnorm.pc (e.g. from `cmake --install build --prefix ...`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ -z "${BNORM_PREFIX:-}" ]]; then
  echo "test.sh: set BNORM_PREFIX to a bnorm install prefix (with lib/pkgconfig/bnorm.pc)" >&2
  exit 2
fi
if [[ ! -f "$BNORM_PREFIX/lib/pkgconfig/bnorm.pc" ]]; then
  echo "test.sh: $BNORM_PREFIX/lib/pkgconfig/bnorm.pc not found; is BNORM_PREFIX an install prefix?" >&2
  exit 2
fi
prefix="$(cd "$BNORM_PREFIX" && pwd)"

if command -v cargo >/dev/null 2>&1; then
  cargo="$(command -v cargo)"
elif [[ -x "${HOME:-}/.cargo/bin/cargo" ]]; then
  cargo="$HOME/.cargo/bin/cargo"
else
  echo "test.sh: cargo not found; install Debian's: apt-get install cargo" >&2
  exit 2
fi
if ! command -v pkg-config >/dev/null 2>&1; then
  echo "test.sh: pkg-config not found; install it: apt-get install pkg-config" >&2
  exit 2
fi

# build.rs asks pkg-config; the test binaries need the same library at run time.
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# BNORM_LIB_DIR would override pkg-config in build.rs; the prefix given here wins.
unset BNORM_LIB_DIR
export CARGO_TARGET_DIR="$here/target/test"

cd "$here"
echo "test.sh: $("$cargo" --version), bnorm from $prefix"
"$cargo" test --offline --locked
if "$cargo" clippy --version >/dev/null 2>&1; then
  "$cargo" clippy --offline --locked --all-targets -- -D warnings
fi
