#!/usr/bin/env bash
# oms_bench.sh -- the OMS scenario: orders end to end through the whole
# system. Builds evstored, the oms-* services and oms-demo; then, for each
# offered rate, starts them all (scripts/oms-up.sh) on free loopback ports
# with a fresh data directory under BENCH_TMP (evstored durable: --durability
# always unless EVSTORE_DURABILITY says otherwise), runs oms-demo with N
# orders over C connections at that rate, stops everything (noting each
# program's CPU seconds) and removes the directory. Writes
#   bench/results/oms-<date>.json   every run: the demo's figures, CPU per program (the demo
#                                   too: it shares the machine), parameters
#   bench/results/oms-<date>.md     the tables (also printed); oms-latest.{json,md} copy the last run
#   bench/results/oms-<date>.log    what oms-up.sh and oms-demo printed
# and says whether the targets were met: at least 2000 orders/s end to end
# (first POST to last verdict; from the unpaced run) and p99 placed-to-completed
# under 100 ms (from the run paced at 2000 orders/s, else the unpaced one).
#
#   bench/oms_bench.sh [--orders N] [--concurrency C] [--rates R1,R2] [--mix M] [--out DIR]
#   scripts/bench.sh --oms [same flags]
#
# Defaults: 20000 orders, 32 connections, rates 0,1000,2000 (0: as fast as
# the API answers; others: orders/s offered), the demo's mix
# (success=70,declined=10,oos=10,shipfail=10). BENCH_BUILD_DIR (build-bench),
# BENCH_TMP (/tmp: put it on the disk you mean to measure). Each run is
# bounded by BENCH_OMS_LIMIT_S (600 s).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BENCH_BUILD_DIR:-$ROOT/build-bench}"
OUT="$ROOT/bench/results"
ORDERS=20000
CONCURRENCY=32
RATES="0,1000,2000"
MIX="success=70,declined=10,oos=10,shipfail=10"
LIMIT_S="${BENCH_OMS_LIMIT_S:-600}"
TARGET_PER_S=2000
TARGET_P99_MS=100

while [ $# -gt 0 ]; do
  case "$1" in
    --orders) ORDERS="${2:?}"; shift 2 ;;
    --concurrency) CONCURRENCY="${2:?}"; shift 2 ;;
    --rates|--rate) RATES="${2:?}"; shift 2 ;;
    --mix) MIX="${2:?}"; shift 2 ;;
    --out) OUT="${2:?}"; shift 2 ;;
    --help|-h) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "oms-bench: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if ! [[ "$ORDERS" =~ ^[1-9][0-9]*$ && "$CONCURRENCY" =~ ^[1-9][0-9]*$ && "$RATES" =~ ^[0-9]+(,[0-9]+)*$ ]]; then
  echo "oms-bench: --orders and --concurrency want numbers, --rates a comma list of numbers" >&2
  exit 2
fi

TARGETS=(evstored oms-demo oms-order oms-saga oms-payment oms-inventory oms-shipping
         oms-notification oms-projections)
echo "oms-bench: building ${TARGETS[*]} in $BUILD"
mkdir -p "$BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$BUILD/oms-bench-configure.log" 2>&1 ||
  { echo "oms-bench: cmake configure failed; see $BUILD/oms-bench-configure.log" >&2; exit 1; }
cmake --build "$BUILD" -j"$(nproc)" --target "${TARGETS[@]}" >"$BUILD/oms-bench-build.log" 2>&1 ||
  { echo "oms-bench: build failed; see $BUILD/oms-bench-build.log" >&2; tail -20 "$BUILD/oms-bench-build.log" >&2; exit 1; }

# Nine loopback ports nobody listens on: a random base, checked by connecting,
# below the kernel's ephemeral range (32768 and up by default), where the
# programs' own outgoing connections would otherwise take a port before the
# service that was to listen on it starts.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_ports() {
  local try base p
  for try in $(seq 1 50); do
    base=$((20000 + (RANDOM % 120) * 100))
    for p in $(seq "$base" $((base + 8))); do port_free "$p" || continue 2; done
    echo "$base"; return 0
  done
  echo "oms-bench: no 9 free loopback ports found" >&2; return 1
}
export EVSTORE_DURABILITY="${EVSTORE_DURABILITY:-always}"
DATE="$(date +%Y-%m-%d-%H%M%S)"
mkdir -p "$OUT"
LOG="$OUT/oms-$DATE.log"
: >"$LOG"
RUNS_DIR="$(mktemp -d "${BENCH_TMP:-/tmp}/oms-bench-runs.XXXXXX")"
DATA=""
cleanup() { rm -rf "$RUNS_DIR" ${DATA:+"$DATA"}; }
trap cleanup EXIT

# run_once RATE: one fresh system, one demo; its figures to RUNS_DIR/RATE.json.
run_once() {
  local rate="$1" base status=0
  base="$(pick_ports)"
  export OMS_STORE_PORT=$base OMS_STORE_METRICS_PORT=$((base + 1)) OMS_HTTP_PORT=$((base + 2))
  export OMS_SAGA_METRICS_PORT=$((base + 3)) OMS_PAYMENT_METRICS_PORT=$((base + 4))
  export OMS_INVENTORY_METRICS_PORT=$((base + 5)) OMS_SHIPPING_METRICS_PORT=$((base + 6))
  export OMS_NOTIFICATION_METRICS_PORT=$((base + 7)) OMS_PROJECTIONS_METRICS_PORT=$((base + 8))
  DATA="$(mktemp -d "${BENCH_TMP:-/tmp}/oms-bench.XXXXXX")"
  echo "oms-bench: $ORDERS orders, $CONCURRENCY connections, rate $([ "$rate" = 0 ] && echo unpaced || echo "$rate/s")," \
       "mix $MIX, evstored --durability $EVSTORE_DURABILITY, data in $DATA" | tee -a "$LOG"
  timeout --kill-after=30 "$LIMIT_S" "$ROOT/scripts/oms-up.sh" --build "$BUILD" --data "$DATA" \
    --demo "$ORDERS" --exit-after-demo -- --concurrency "$CONCURRENCY" --rate "$rate" --mix "$MIX" \
    --timeout-s 120 >"$RUNS_DIR/up.log" 2>&1 || status=$?
  cat "$RUNS_DIR/up.log" >>"$LOG"
  grep -E "^(kind|success|declined|oos|shipfail|all|placed|end to end|result|other)" "$RUNS_DIR/up.log" || true
  if [ ! -s "$DATA/logs/demo.json" ]; then
    echo "oms-bench: the demo wrote no figures (status $status); the end of each log:" >&2
    tail -n 5 "$DATA"/logs/*.log >&2 || true
    return 1
  fi
  # CPU seconds of each program, from oms-up's "stopped NAME (exit status N, cpu S s)" lines.
  { sed -n 's/^oms-up: stopped \([^ ]*\) (exit status [0-9]*, cpu \([0-9.]*\) s)$/\1 \2/p' \
      "$RUNS_DIR/up.log"
    sed -n 's/^oms-up: oms-demo ran [0-9.]* s (cpu \([0-9.]*\) s user + \([0-9.]*\) s system)$/oms-demo \1 \2/p' \
      "$RUNS_DIR/up.log" | awk '{print $1, $2 + $3}'
  } | jq -R 'split(" ") | {(.[0]): (.[1] | tonumber)}' | jq -s 'add // {}' \
    >"$RUNS_DIR/cpu.json"
  jq --argjson rate "$rate" --argjson status "$status" --slurpfile cpu "$RUNS_DIR/cpu.json" \
    '{rate: $rate, demo_exit_status: $status, cpu_s: $cpu[0], demo: .}' "$DATA/logs/demo.json" \
    >"$RUNS_DIR/run-$rate.json"
  rm -rf "$DATA"
  DATA=""
  return 0
}

status=0
IFS=, read -r -a RATE_LIST <<<"$RATES"
for rate in "${RATE_LIST[@]}"; do
  run_once "$rate" || status=1
done
if ! ls "$RUNS_DIR"/run-*.json >/dev/null 2>&1; then
  echo "oms-bench: no run produced figures; see $LOG" >&2
  exit 1
fi

# The result file: every run, what ran where, and the verdict on the targets.
jq -s --arg date "$DATE" --arg kernel "$(uname -r)" --argjson cores "$(nproc)" \
   --arg durability "$EVSTORE_DURABILITY" \
   --arg command "bench/oms_bench.sh --orders $ORDERS --concurrency $CONCURRENCY --rates $RATES --mix $MIX" \
   --argjson target_per_s "$TARGET_PER_S" --argjson target_p99_ms "$TARGET_P99_MS" '
  (map(select(.rate == 0)) | first) as $unpaced
  | ((map(select(.rate == $target_per_s)) | first) // $unpaced) as $paced
  | {date: $date, scenario: "oms-orders-end-to-end", command: $command,
     machine: {kernel: $kernel, cores: $cores}, durability: $durability, runs: .,
     targets: {end_to_end_per_s: $target_per_s, completed_p99_ms: $target_p99_ms,
               end_to_end_measured: ($unpaced.demo.end_to_end_per_s // null),
               end_to_end_met: (if $unpaced then $unpaced.demo.end_to_end_per_s >= $target_per_s else null end),
               completed_p99_rate: ($paced.rate // null),
               completed_p99_measured: ($paced.demo.kinds.success.latency_ms.p99 // null),
               completed_p99_met: (if $paced.demo.kinds.success then
                                     ($paced.demo.kinds.success.latency_ms.p99 < $target_p99_ms and $paced.demo.ok)
                                   else null end)}}' "$RUNS_DIR"/run-*.json >"$OUT/oms-$DATE.json"

jq -r '
  def f1: (. * 10 | round) / 10;
  def rate: if . == 0 then "unpaced" else "\(.)/s" end;
  def met(b): if b == null then "not measured" elif b then "**met**" else "**MISSED**" end;
  "## OMS orders end to end, \(.date)\n",
  "`\(.command)`: \(.machine.cores) cores, kernel \(.machine.kernel), evstored --durability \(.durability),",
  "every program on one machine over loopback, a fresh system per run. Latency: from just before each",
  "POST to the arrival of the order'"'"'s verdict (OrderCompleted / OrderFailed) on a $ce-order subscription;",
  "end to end: verdicts over the time from the first POST to the last verdict.\n",
  "| offered | orders | conns | placed/s | end to end orders/s | completed p50 ms | completed p99 ms | all p50 ms | all p90 ms | all p99 ms | max ms | as expected |",
  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
  (.runs[] | "| \(.rate | rate) | \(.demo.orders) | \(.demo.concurrency) | \(.demo.placed_per_s | round) | \(.demo.end_to_end_per_s | round) | \(.demo.kinds.success.latency_ms.p50 // 0 | f1) | \(.demo.kinds.success.latency_ms.p99 // 0 | f1) | \(.demo.all.latency_ms.p50 | f1) | \(.demo.all.latency_ms.p90 | f1) | \(.demo.all.latency_ms.p99 | f1) | \(.demo.all.latency_ms.max | f1) | \(if .demo.ok then "yes" else "NO" end) |"),
  "\nBy kind (p50 / p99 ms):\n",
  "| offered | kind | orders | completed | failed (by reason) | unexpected | missing | p50 ms | p99 ms |",
  "|---|---|---:|---:|---|---:|---:|---:|---:|",
  (.runs[] | .rate as $r | .demo.kinds | to_entries[] | "| \($r | rate) | \(.key) | \(.value.orders) | \(.value.completed) | \(.value.failed_by_reason | to_entries | map("\(.key)=\(.value)") | join(" ")) | \(.value.unexpected) | \(.value.missing) | \(.value.latency_ms.p50 | f1) | \(.value.latency_ms.p99 | f1) |"),
  "\nCPU seconds of each program over the run (user + system):\n",
  "| offered | \(.runs[0].cpu_s | keys_unsorted | join(" | ")) |",
  "|---|\(.runs[0].cpu_s | keys_unsorted | map("---:") | join("|"))|",
  (.runs[] | "| \(.rate | rate) | \(.cpu_s | [.[]] | map(f1 | tostring) | join(" | ")) |"),
  "\nTargets: \(.targets.end_to_end_per_s) orders/s end to end (unpaced run): \(.targets.end_to_end_measured // "n/a" | if type == "number" then round else . end) \(met(.targets.end_to_end_met));",
  "p99 placed-to-completed under \(.targets.completed_p99_ms) ms (run offered \(.targets.completed_p99_rate // 0 | rate)): \(.targets.completed_p99_measured // "n/a" | if type == "number" then f1 else . end) ms \(met(.targets.completed_p99_met))."
' "$OUT/oms-$DATE.json" >"$OUT/oms-$DATE.md"
cp "$OUT/oms-$DATE.md" "$OUT/oms-latest.md"
cp "$OUT/oms-$DATE.json" "$OUT/oms-latest.json"
echo
cat "$OUT/oms-$DATE.md"
echo
echo "oms-bench: results in $OUT/oms-$DATE.{json,md,log} (and oms-latest.{json,md})"
exit "$status"
