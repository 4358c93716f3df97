#!/usr/bin/env bash
# Vets and tests the Go binding against an installed bnorm.
#   BNORM_PREFIX=/path/to/install bash bindings/go/test.sh
# Runs offline: no module downloads, caches under bindings/go/.cache.
set -euo pipefail

if [[ -z "${BNORM_PREFIX:-}" ]]; then
  echo "test.sh: set BNORM_PREFIX to a bnorm install prefix (the directory holding" >&2
  echo "  lib/pkgconfig/bnorm.pc), e.g. BNORM_PREFIX=/tmp/bnorm-prefix bash $0" >&2
  exit 2
fi
prefix="$(cd "$BNORM_PREFIX" && pwd)"
if [[ ! -f "$prefix/lib/pkgconfig/bnorm.pc" ]]; then
  echo "test.sh: $prefix/lib/pkgconfig/bnorm.pc not found; is BNORM_PREFIX an install prefix?" >&2
  exit 2
fi

cd "$(dirname "${BASH_SOURCE[0]}")"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CGO_ENABLED=1 GOFLAGS=-mod=mod GOPROXY=off GOSUMDB=off
export GOCACHE="$PWD/.cache/build" GOPATH="$PWD/.cache/gopath"

unformatted="$(gofmt -l .)"
if [[ -n "$unformatted" ]]; then
  echo "test.sh: gofmt would change these files:" >&2
  echo "$unformatted" >&2
  exit 1
fi

go vet ./...

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
go test -v -count=1 ./... 2>&1 | tee "$log" || status=$?
# The race detector watches Go memory only, but it checks the binding's own
# goroutine use around the C calls.
go test -race -count=1 ./... || status=$?

echo "summary: $(grep -c -- '--- PASS' "$log" || true) passed, $(grep -c -- '--- FAIL' "$log" || true) failed (go test -v); race run included"
if [[ $status -ne 0 ]]; then
  echo "test.sh: FAILED" >&2
fi
exit "$status"
