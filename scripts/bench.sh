#!/usr/bin/env bash
# bench.sh -- the benchmark comparison in one command: installs the peer
# servers that are missing (PostgreSQL 15, Redis, NATS, gnuplot; quietly,
# saying what it does), builds evstore-bench and evstored, runs
#   evstore-bench suite --quick|--full
# and prints where the results are (bench/results/<date>.{json,md,png},
# bench/results/latest.{md,png}). A peer that cannot be installed is skipped
# by the harness with a clear message; nothing here waits without a bound.
#
#   scripts/bench.sh            quick mode (under 2 minutes)
#   scripts/bench.sh --full     the full matrix, 3 runs per point
#   scripts/bench.sh --quick --systems evstored,postgresql   (extra flags go to the suite)
#   BENCH_NO_INSTALL=1 scripts/bench.sh    never call apt-get
#   BENCH_TMP=/path scripts/bench.sh       where data directories go (default /tmp;
#                                          pick the disk you mean to measure, not tmpfs)
#   scripts/bench.sh --oms [--orders N --concurrency C ...]
#                                          the OMS scenario instead: orders end to end through
#                                          every service (bench/oms_bench.sh; no peers needed)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "${1:-}" = "--oms" ]; then
  shift
  exec "$ROOT/bench/oms_bench.sh" "$@"
fi
BUILD="${BENCH_BUILD_DIR:-$ROOT/build-bench}"
MODE="--quick"
ARGS=()
for a in "$@"; do
  case "$a" in
    --quick|--full) MODE="$a" ;;
    *) ARGS+=("$a") ;;
  esac
done

# Packages: the client libraries are needed to compile a peer in; the servers
# to run it. Each entry: package, and a command that tells it is there.
PEERS=(
  "libpq-dev:pkg-config --exists libpq"
  "libhiredis-dev:pkg-config --exists hiredis"
  "libnats-dev:pkg-config --exists libnats"
  "postgresql-15:test -x /usr/lib/postgresql/15/bin/pg_ctl"
  "redis-server:command -v redis-server"
  "nats-server:command -v nats-server"
  "gnuplot-nox:command -v gnuplot"
)

missing=()
for entry in "${PEERS[@]}"; do
  pkg="${entry%%:*}"
  check="${entry#*:}"
  if ! bash -c "$check" >/dev/null 2>&1; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ -n "${BENCH_NO_INSTALL:-}" ]; then
    echo "bench: not installing (BENCH_NO_INSTALL set): ${missing[*]}; those peers will be skipped"
  else
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
      if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else SUDO="none"; fi
    fi
    if [ "$SUDO" = "none" ]; then
      echo "bench: not root and no sudo: cannot install ${missing[*]}; those peers will be skipped"
    else
      echo "bench: installing missing Debian packages: ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      # Packages' own service start scripts are not wanted: the harness starts
      # its private servers. policy-rc.d (if present) already refuses them.
      if timeout 300 $SUDO apt-get update -qq >/dev/null 2>&1 &&
         timeout 600 $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
        echo "bench: installed ${missing[*]}"
      else
        echo "bench: could not install some of ${missing[*]} (no network or apt sources?);" \
             "the harness skips the peers it cannot run"
      fi
    fi
  fi
fi

# The Debian packages may start their own services; the harness does not use
# them (it starts private servers on free ports), so they are left alone.

echo "bench: building evstore-bench and evstored in $BUILD"
mkdir -p "$BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$BUILD/bench-configure.log" 2>&1 ||
  { echo "bench: cmake configure failed; see $BUILD/bench-configure.log" >&2; exit 1; }
grep -E "evstore-bench:" "$BUILD/bench-configure.log" || true
cmake --build "$BUILD" -j"$(nproc)" --target evstore-bench evstored >"$BUILD/bench-build.log" 2>&1 ||
  { echo "bench: build failed; see $BUILD/bench-build.log" >&2; tail -20 "$BUILD/bench-build.log" >&2; exit 1; }

OUT="$ROOT/bench/results"
mkdir -p "$OUT"
echo "bench: running evstore-bench suite $MODE (results in $OUT)"
# The suite bounds every run itself; this outer bound only catches the unforeseen.
if [ "$MODE" = "--full" ]; then LIMIT=3600; else LIMIT=600; fi
timeout --kill-after=30 "$LIMIT" "$BUILD/bench/evstore-bench" suite "$MODE" --out "$OUT" \
  --tmp "${BENCH_TMP:-/tmp}" "${ARGS[@]+"${ARGS[@]}"}"
echo "bench: done: $OUT/latest.md, $OUT/latest.png (and the dated .json/.md/.png beside them)"
