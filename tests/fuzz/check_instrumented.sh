#!/usr/bin/env bash
# check_instrumented.sh LIB.a... - fails unless every object in the archives that defines code
# carries libFuzzer's coverage instrumentation (the __sancov_* sections / counters that
# -fsanitize=fuzzer-no-link adds). Run by ctest in the 'fuzz' build (FuzzCoverageInstrumented).
set -euo pipefail
objdump=$(command -v llvm-objdump-14 || command -v objdump)
bad=0 total=0
for lib in "$@"; do
  tmp=$(mktemp -d)
  (cd "$tmp" && ar x "$lib")
  for o in "$tmp"/*.o; do
    sections=$("$objdump" -h "$o")
    grep -qE ' \.text' <<<"$sections" || continue
    total=$((total + 1))
    if ! grep -q '__sancov_cntrs\|__sancov_guards' <<<"$sections"; then
      echo "not instrumented for coverage: $(basename "$lib"):$(basename "$o")"
      bad=$((bad + 1))
    fi
  done
  rm -rf "$tmp"
done
echo "$total objects checked, $bad without coverage instrumentation"
[ "$total" -gt 0 ] && [ "$bad" -eq 0 ]
