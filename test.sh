#!/usr/bin/env bash
# test.sh -- the second README command: set up, build and run the whole test
# suite: in the normal build, again in the ASan+UBSan build, then the fuzz
# target under libFuzzer (clang) for a bounded time.
# EVSTORE_TEST_BUILDS="normal" (or "sanitize", "fuzz", any list) runs only those.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
builds="${EVSTORE_TEST_BUILDS:-normal sanitize fuzz}"
jobs="$(nproc)"
status=0
for b in $builds; do
  targets=()
  ctest_args=()
  case "$b" in
    normal)   dir=build;          flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
    sanitize) dir=build-sanitize; flags=(-DCMAKE_BUILD_TYPE=Debug -DEVSTORE_SANITIZE=ON) ;;
    fuzz)
      if ! command -v clang >/dev/null 2>&1; then
        echo "test: clang not found: the libFuzzer run is skipped (the corpus still runs in the other builds)"
        continue
      fi
      dir=build-fuzz
      flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang)
      targets=(--target fuzz_frame fuzz_frame_driver)
      ctest_args=(-L fuzz)
      ;;
    *) echo "test: unknown build '$b'" >&2; exit 2 ;;
  esac
  echo "=== test: $b build ($dir) ==="
  cmake -S . -B "$dir" "${flags[@]}" >/dev/null
  cmake --build "$dir" -j"$jobs" "${targets[@]}"
  if ! ctest --test-dir "$dir" --output-on-failure -j"$jobs" "${ctest_args[@]}"; then
    echo "test: FAILED in the $b build" >&2
    status=1
  fi
done
exit $status
