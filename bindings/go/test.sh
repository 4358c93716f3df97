#!/usr/bin/env bash
# Vets and tests the Go binding against an installed bnorm.
#   BNORM_PREFIX=/path/to/install bash bindings/go/test.sh
# Runs offline: no module downloads. Go's caches go outside the source tree,
# in a directory made for this run and removed at exit (see below).
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

# A build cache that outlives the run would be unsafe as well as untidy: the go
# command keys cgo builds on the package's own files and the flags, not on
# headers outside the package, so after a new bnorm is installed at the same
# prefix it would go on testing code compiled against the old bnorm.h. Hence a
# fresh cache per run (about 30 s more, mostly the race-enabled standard
# library). BNORM_GO_CACHE=DIR keeps the caches in DIR across runs instead; the
# installed headers' checksum, passed in CGO_CFLAGS, then keys them on the header.
if [[ -n "${BNORM_GO_CACHE:-}" ]]; then
  mkdir -p "$BNORM_GO_CACHE"
  cache="$(cd "$BNORM_GO_CACHE" && pwd)"
  keep_cache=1
else
  cache="$(mktemp -d "${TMPDIR:-/tmp}/bnorm-go-cache.XXXXXX")"
  keep_cache=0
fi
log="$(mktemp)"
cleanup() {
  rm -f "$log"
  if [[ $keep_cache -eq 0 ]]; then
    chmod -R u+w "$cache" 2>/dev/null || true # the module cache is read-only
    rm -rf "$cache"
  fi
}
trap cleanup EXIT
export GOCACHE="$cache/build" GOPATH="$cache/gopath"
includedir="$(pkg-config --variable=includedir bnorm)"
header_sum="$(cat "$includedir"/bnorm/*.h | sha256sum | cut -c1-16)"
export CGO_CFLAGS="${CGO_CFLAGS:--g -O2} -DGOBNORM_HEADER_SHA256=$header_sum"

unformatted="$(gofmt -l .)"
if [[ -n "$unformatted" ]]; then
  echo "test.sh: gofmt would change these files:" >&2
  echo "$unformatted" >&2
  exit 1
fi

go vet ./...

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
