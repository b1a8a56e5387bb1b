#!/usr/bin/env bash
# test.sh -- the second README command: set up, build and run the whole test
# suite, in the normal build and again in the ASan+UBSan build.
# EVSTORE_TEST_BUILDS="normal" (or "sanitize") runs only one of them.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
builds="${EVSTORE_TEST_BUILDS:-normal sanitize}"
jobs="$(nproc)"
status=0
for b in $builds; do
  case "$b" in
    normal)   dir=build;          flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
    sanitize) dir=build-sanitize; flags=(-DCMAKE_BUILD_TYPE=Debug -DEVSTORE_SANITIZE=ON) ;;
    *) echo "test: unknown build '$b'" >&2; exit 2 ;;
  esac
  echo "=== test: $b build ($dir) ==="
  cmake -S . -B "$dir" "${flags[@]}" >/dev/null
  cmake --build "$dir" -j"$jobs"
  if ! ctest --test-dir "$dir" --output-on-failure -j"$jobs"; then
    echo "test: FAILED in the $b build" >&2
    status=1
  fi
done
exit $status
