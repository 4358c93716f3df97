#!/usr/bin/env bash
# Formats bnorm's C and C++ sources with clang-format (style: .clang-format).
#
#   bash scripts/format.sh           rewrite the files in place
#   bash scripts/format.sh --check   change nothing; list the files that need
#                                    formatting and exit nonzero if there are any
#
# Files: every *.c, *.cc and *.h under src capi include tests bench examples;
# in a git checkout, the tracked ones plus new files git does not ignore.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mode=fix
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  *) echo "usage: bash scripts/format.sh [--check]" >&2; exit 2 ;;
esac

command -v clang-format >/dev/null || { echo "format: clang-format not found (bash scripts/install-deps.sh)" >&2; exit 1; }

dirs=(src capi include tests bench examples)
files=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  while IFS= read -r f; do
    [[ -f "$f" ]] && files+=("$f")
  done < <(git ls-files --cached --others --exclude-standard -- \
             "${dirs[@]/%//*.c}" "${dirs[@]/%//*.cc}" "${dirs[@]/%//*.h}" | sort -u)
else
  existing=()
  for d in "${dirs[@]}"; do [[ -d "$d" ]] && existing+=("$d"); done
  if ((${#existing[@]})); then
    while IFS= read -r f; do
      files+=("$f")
    done < <(find "${existing[@]}" -type f \( -name '*.c' -o -name '*.cc' -o -name '*.h' \) | sort)
  fi
fi

if ((${#files[@]} == 0)); then
  echo "format: no files found"
  exit 0
fi

if [[ $mode == fix ]]; then
  clang-format -i "${files[@]}"
  echo "format: formatted ${#files[@]} files ($(clang-format --version))"
  exit 0
fi

bad=()
for f in "${files[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if ((${#bad[@]})); then
  echo "format: ${#bad[@]} of ${#files[@]} files need clang-format (fix: bash scripts/format.sh):"
  printf '  %s\n' "${bad[@]}"
  exit 1
fi
echo "format: ${#files[@]} files clean ($(clang-format --version))"
