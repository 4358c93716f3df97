#!/usr/bin/env bash
# Installs the Debian 12 packages bnorm needs to build, test and benchmark.
# Idempotent: packages already present are not touched, and apt is skipped when
# nothing is missing. Runs as root, or through sudo when it is available.
set -euo pipefail

packages=(
  cmake g++ make pkg-config git
  libhwy-dev            # Highway 1.0.3: SIMD kernels with runtime dispatch
  libgtest-dev libgmock-dev
  libbenchmark-dev
  libdnnl-dev           # oneDNN 2.6: benchmark peer and test oracle
  ocl-icd-opencl-dev    # OpenCL headers and libOpenCL.so: Debian's dnnl CMake config requires them
  python3 python3-numpy python3-pytest python3-torch
  clang-format
  valgrind              # memcheck of the examples
  abigail-tools         # abidw/abidiff: the ABI check against abi/libbnorm.so.1.abi
  clang libclang-rt-14-dev libomp-14-dev  # libFuzzer harness (tests/fuzz), ThreadSanitizer
  golang-go             # the Go binding
  openmpi-bin libopenmpi-dev  # MPI: examples/syncbn_mpi.c, the split phases over a real exchange
)
# The Rust binding builds with any cargo from 1.63 (Debian 12's) on: a rustup
# toolchain already on the machine is used as it is.
if ! command -v cargo >/dev/null && [[ ! -x ${HOME:-/root}/.cargo/bin/cargo ]]; then
  packages+=(cargo)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
