#!/usr/bin/env bash
# test.sh -- the second README command: set up, build and run the whole test
# suite: in the normal build, again in the ASan+UBSan build, then the clang
# build (everything compiled, then the fuzz target under libFuzzer for a
# bounded time), then the gcc Release build (compiled only). Every build
# treats compiler warnings as errors (EVSTORE_WERROR=ON).
#
#   EVSTORE_TEST_BUILDS="normal sanitize clang release" (any list) picks builds.
#   EVSTORE_TEST_REPEAT=N  stress mode: only the suites labelled "stress" (those
#                          that kill, wait or race), each run up to N times and
#                          stopped at its first failure (ctest --repeat
#                          until-fail:N); builds default to "normal sanitize".
#   EVSTORE_TEST_BUSY=K    keep K busy-loop processes running while the tests
#                          run (the machine "under load"); they end with the
#                          script, and after EVSTORE_TEST_BUSY_S seconds at most.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh

repeat="${EVSTORE_TEST_REPEAT:-}"
if [ -n "$repeat" ] && ! [[ "$repeat" =~ ^[1-9][0-9]*$ ]]; then
  echo "test: EVSTORE_TEST_REPEAT must be a positive number, not '$repeat'" >&2
  exit 2
fi
if [ -n "$repeat" ]; then
  builds="${EVSTORE_TEST_BUILDS:-normal sanitize}"
else
  builds="${EVSTORE_TEST_BUILDS:-normal sanitize clang release}"
fi
busy="${EVSTORE_TEST_BUSY:-0}"
busy_s="${EVSTORE_TEST_BUSY_S:-7200}"
if ! [[ "$busy" =~ ^[0-9]+$ && "$busy_s" =~ ^[1-9][0-9]*$ ]]; then
  echo "test: EVSTORE_TEST_BUSY and EVSTORE_TEST_BUSY_S must be numbers" >&2
  exit 2
fi
jobs="$(nproc)"

busy_pids=()
busy_stop() {
  if [ ${#busy_pids[@]} -gt 0 ]; then
    kill "${busy_pids[@]}" 2>/dev/null || true
    wait "${busy_pids[@]}" 2>/dev/null || true
  fi
}
trap busy_stop EXIT
for _ in $(seq 1 "$busy"); do
  timeout "$busy_s" sh -c 'while :; do :; done' &
  busy_pids+=($!)
done
if [ "$busy" -gt 0 ]; then
  echo "test: $busy busy loops hold the cores while the tests run"
fi

status=0
for b in $builds; do
  ctest_args=()
  run_tests=yes
  case "$b" in
    normal)   dir=build;          flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
    sanitize) dir=build-sanitize; flags=(-DCMAKE_BUILD_TYPE=Debug -DEVSTORE_SANITIZE=ON) ;;
    clang|fuzz)
      if ! command -v clang >/dev/null 2>&1; then
        echo "test: clang not found: the clang build and libFuzzer run are skipped"
        continue
      fi
      dir=build-clang
      flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang)
      ctest_args=(-L fuzz)
      ;;
    release)  dir=build-release;  flags=(-DCMAKE_BUILD_TYPE=Release); run_tests=no ;;
    *) echo "test: unknown build '$b'" >&2; exit 2 ;;
  esac
  if [ -n "$repeat" ]; then
    ctest_args=(-L stress --repeat "until-fail:$repeat")
  fi
  echo "=== test: $b build ($dir) ==="
  cmake -S . -B "$dir" "${flags[@]}" -DEVSTORE_WERROR=ON >/dev/null
  cmake --build "$dir" -j"$jobs"
  if [ "$run_tests" = no ]; then
    echo "test: $b build compiled warning-free (its tests run in the other builds)"
    continue
  fi
  if ! ctest --test-dir "$dir" --output-on-failure -j"$jobs" "${ctest_args[@]}"; then
    echo "test: FAILED in the $b build" >&2
    status=1
  fi
done
exit $status
