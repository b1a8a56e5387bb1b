#!/usr/bin/env bash
# oms-up.sh -- starts the whole order management system on this machine:
# evstored, then oms-projections, oms-payment, oms-inventory, oms-shipping,
# oms-notification, oms-saga and oms-order, each in the background with its
# output in <data>/logs/<program>.log; waits for each one's ready line;
# prints the API address and where the logs are; then waits. Ctrl-C or
# SIGTERM stops everything with SIGTERM (oms-order first, then the other
# services, evstored last) and waits for each (SIGKILL after
# OMS_STOP_TIMEOUT_S).
#
#   scripts/oms-up.sh [--build DIR] [--data DIR] [--demo N [--exit-after-demo]] [-- DEMO FLAGS]
#
#   --build DIR         where the programs were built (default ./build, or OMS_BUILD):
#                       DIR/server/evstored and DIR/services/bin/oms-*
#   --data DIR          data directory (default ./data, or OMS_DATA):
#                       DIR/store (evstored's log), DIR/oms (read model, outbox),
#                       DIR/logs (each program's stdout and stderr)
#   --demo N            once everything is up, runs oms-demo with N orders against it
#                       (its table is printed; flags after -- go to oms-demo, e.g.
#                       -- --concurrency 32 --rate 500) and keeps running
#   --exit-after-demo   stops everything after the demo and exits with its status
#
# Addresses (environment; all on OMS_HOST, default 127.0.0.1):
#   OMS_STORE_PORT 7411, OMS_STORE_METRICS_PORT 7412, OMS_HTTP_PORT 8080 (API and
#   its /metrics), OMS_SAGA_METRICS_PORT 9201, OMS_PAYMENT_METRICS_PORT 9202,
#   OMS_INVENTORY_METRICS_PORT 9203, OMS_SHIPPING_METRICS_PORT 9204,
#   OMS_NOTIFICATION_METRICS_PORT 9205, OMS_PROJECTIONS_METRICS_PORT 9206.
# Bounds: OMS_READY_TIMEOUT_S (60) for each ready line, OMS_STOP_TIMEOUT_S (30)
# for each stop. evstored also reads its own EVSTORE_* variables (e.g.
# EVSTORE_DURABILITY=interval); EVSTORED_FLAGS adds flags to its command line
# (e.g. EVSTORED_FLAGS="--writes-inflight 2"), and OMS_<SERVICE>_FLAGS to one
# service's (e.g. OMS_SAGA_FLAGS="--workers 64").
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${OMS_BUILD:-./build}"
DATA="${OMS_DATA:-./data}"
DEMO_ORDERS=""
EXIT_AFTER_DEMO=0
DEMO_ARGS=()

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD="${2:?--build needs a directory}"; shift 2 ;;
    --data) DATA="${2:?--data needs a directory}"; shift 2 ;;
    --demo) DEMO_ORDERS="${2:?--demo needs a number of orders}"; shift 2 ;;
    --exit-after-demo) EXIT_AFTER_DEMO=1; shift ;;
    --help|-h) usage; exit 0 ;;
    --) shift; DEMO_ARGS=("$@"); break ;;
    *) echo "oms-up: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [ -n "$DEMO_ORDERS" ] && ! [[ "$DEMO_ORDERS" =~ ^[1-9][0-9]*$ ]]; then
  echo "oms-up: --demo wants a number of orders, got '$DEMO_ORDERS'" >&2; exit 2
fi
if [ "$EXIT_AFTER_DEMO" = 1 ] && [ -z "$DEMO_ORDERS" ]; then
  echo "oms-up: --exit-after-demo needs --demo N" >&2; exit 2
fi

HOST="${OMS_HOST:-127.0.0.1}"
STORE="$HOST:${OMS_STORE_PORT:-7411}"
STORE_METRICS="$HOST:${OMS_STORE_METRICS_PORT:-7412}"
HTTP="$HOST:${OMS_HTTP_PORT:-8080}"
READY_TIMEOUT_S="${OMS_READY_TIMEOUT_S:-60}"
STOP_TIMEOUT_S="${OMS_STOP_TIMEOUT_S:-30}"

mkdir -p "$DATA"
DATA="$(cd "$DATA" && pwd)"
BUILD="$(cd "$BUILD" 2>/dev/null && pwd || echo "$BUILD")"
BIN="$BUILD/services/bin"
LOGS="$DATA/logs"
mkdir -p "$DATA/store" "$DATA/oms" "$LOGS"

# The programs, in start order: name, metrics address (or its flag), ready
# pattern, arguments. The store first, the API last.
SERVICES=(projections payment inventory shipping notification saga)
declare -A METRICS=(
  [saga]="$HOST:${OMS_SAGA_METRICS_PORT:-9201}"
  [payment]="$HOST:${OMS_PAYMENT_METRICS_PORT:-9202}"
  [inventory]="$HOST:${OMS_INVENTORY_METRICS_PORT:-9203}"
  [shipping]="$HOST:${OMS_SHIPPING_METRICS_PORT:-9204}"
  [notification]="$HOST:${OMS_NOTIFICATION_METRICS_PORT:-9205}"
  [projections]="$HOST:${OMS_PROJECTIONS_METRICS_PORT:-9206}"
)
declare -A EXTRA=(
  [projections]="--db $DATA/oms/readmodel.db"
  [notification]="--outbox $DATA/oms/outbox.jsonl"
)
# OMS_<SERVICE>_FLAGS adds flags to one service, e.g. OMS_SAGA_FLAGS="--workers 64".
for s in "${SERVICES[@]}"; do
  var="OMS_${s^^}_FLAGS"
  EXTRA[$s]="${EXTRA[$s]:-} ${!var:-}"
done

for p in "$BUILD/server/evstored" "$BIN/oms-order" "${SERVICES[@]/#/$BIN/oms-}"; do
  if [ ! -x "$p" ]; then
    echo "oms-up: $p is missing: build first (cmake -S . -B $BUILD && cmake --build $BUILD)" >&2
    exit 1
  fi
done

NAMES=()   # started programs, in start order
PIDS=()

# The last lines of a program's log, for when it failed.
show_log() {
  echo "oms-up: the last lines of $LOGS/$1.log:" >&2
  tail -n 20 "$LOGS/$1.log" | sed 's/^/    /' >&2
}

# True while pid runs (a zombie, not reaped yet, no longer counts).
running() {
  local state
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)"
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# User + system CPU seconds of pid so far (read before stopping it: bash
# reaps its children as they exit).
TICKS="$(getconf CLK_TCK)"
cpu_seconds() {
  awk -v t="$TICKS" '{printf "%.1f", ($14 + $15) / t}' "/proc/$1/stat" 2>/dev/null || echo "?"
}

# Stops the programs at the given indexes of NAMES/PIDS together: SIGTERM,
# then waits for each (SIGKILL after STOP_TIMEOUT_S); says how each ended
# and the CPU seconds it had used.
stop_group() {
  local i deadline
  declare -A cpu
  for i in "$@"; do
    cpu[$i]="$(cpu_seconds "${PIDS[$i]}")"
    kill -TERM "${PIDS[$i]}" 2>/dev/null || true
  done
  deadline=$((SECONDS + STOP_TIMEOUT_S))
  for i in "$@"; do
    while running "${PIDS[$i]}" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    if running "${PIDS[$i]}"; then
      echo "oms-up: ${NAMES[$i]} did not stop within ${STOP_TIMEOUT_S} s: SIGKILL" >&2
      kill -KILL "${PIDS[$i]}" 2>/dev/null || true
    fi
    local status=0
    wait "${PIDS[$i]}" 2>/dev/null || status=$?
    echo "oms-up: stopped ${NAMES[$i]} (exit status $status, cpu ${cpu[$i]} s)"
  done
}

STOPPING=0
# Stops everything that was started: oms-order, then the other services
# together, then evstored.
stop_all() {
  [ "$STOPPING" = 1 ] && return
  STOPPING=1
  trap '' INT TERM
  local i api=() others=() store=()
  for i in "${!NAMES[@]}"; do
    case "${NAMES[$i]}" in
      evstored) store+=("$i") ;;
      oms-order) api+=("$i") ;;
      *) others+=("$i") ;;
    esac
  done
  [ ${#api[@]} -gt 0 ] && stop_group "${api[@]}"
  [ ${#others[@]} -gt 0 ] && stop_group "${others[@]}"
  [ ${#store[@]} -gt 0 ] && stop_group "${store[@]}"
  return 0
}

on_signal() {
  echo
  echo "oms-up: stopping (services first, evstored last)"
  stop_all
  exit 0
}
trap on_signal INT TERM

# start NAME READY_PATTERN PROGRAM ARGS...: starts it in a session of its own
# (so Ctrl-C reaches only this script, which then stops everything in
# order), its stdout and stderr to LOGS/NAME.log, and waits for the ready
# line; on failure shows the log, stops what runs and exits 1.
start() {
  local name="$1" ready="$2"
  shift 2
  : >"$LOGS/$name.log"
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  NAMES+=("$name")
  PIDS+=("$!")
  local pid=$! deadline=$((SECONDS + READY_TIMEOUT_S))
  until grep -q "$ready" "$LOGS/$name.log"; do
    if ! running "$pid"; then
      echo "oms-up: $name exited before it was ready" >&2
      show_log "$name"
      stop_all
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "oms-up: $name not ready within $READY_TIMEOUT_S s" >&2
      show_log "$name"
      stop_all
      exit 1
    fi
    sleep 0.1
  done
  echo "oms-up: $(grep -m1 "$ready" "$LOGS/$name.log")"
}

echo "oms-up: data in $DATA, logs in $LOGS"
# shellcheck disable=SC2086  # EVSTORED_FLAGS holds flags without spaces in them
start evstored "^evstored ready" "$BUILD/server/evstored" --data "$DATA/store" \
  --listen "$STORE" --metrics "$STORE_METRICS" ${EVSTORED_FLAGS:-}
for s in "${SERVICES[@]}"; do
  # shellcheck disable=SC2086  # EXTRA holds flags without spaces in them
  start "oms-$s" "^oms-$s ready" "$BIN/oms-$s" --store "$STORE" --metrics "${METRICS[$s]}" \
    ${EXTRA[$s]:-}
done
start oms-order "^oms-order ready" "$BIN/oms-order" --store "$STORE" --http "$HTTP" \
  --readmodel "$DATA/oms/readmodel.db"

cat <<MSG

oms-up: the order management system is running.
  API        http://$HTTP   (POST /orders, GET /orders/{id}, GET /orders, GET /orders/{id}/events; /openapi.json)
  evstored   $STORE   (metrics http://$STORE_METRICS/metrics)
  metrics    order http://$HTTP/metrics, saga ${METRICS[saga]}, payment ${METRICS[payment]},
             inventory ${METRICS[inventory]}, shipping ${METRICS[shipping]},
             notification ${METRICS[notification]}, projections ${METRICS[projections]}
  data       $DATA/store (the log), $DATA/oms (read model, outbox)
  logs       $LOGS/<program>.log
  Ctrl-C stops everything.
MSG

if [ -n "$DEMO_ORDERS" ]; then
  echo
  echo "oms-up: running oms-demo with $DEMO_ORDERS orders (figures also in $LOGS/demo.json)"
  demo_status=0
  TIMEFORMAT="oms-up: oms-demo ran %R s (cpu %U s user + %S s system)"
  time "$BIN/oms-demo" --http "$HTTP" --store "$STORE" --orders "$DEMO_ORDERS" \
    --json "$LOGS/demo.json" "${DEMO_ARGS[@]+"${DEMO_ARGS[@]}"}" || demo_status=$?
  if [ "$EXIT_AFTER_DEMO" = 1 ]; then
    echo "oms-up: the demo exited with status $demo_status; stopping"
    stop_all
    exit "$demo_status"
  fi
  echo "oms-up: the demo exited with status $demo_status; the system keeps running (Ctrl-C stops it)"
fi

# Wait; a program that exits on its own takes everything down with it.
while :; do
  exited=""
  status=0
  wait -n -p exited || status=$?
  [ -z "$exited" ] && continue
  for i in "${!NAMES[@]}"; do
    if [ "${PIDS[$i]}" = "$exited" ]; then
      echo "oms-up: ${NAMES[$i]} exited on its own (status $status); stopping the rest" >&2
      show_log "${NAMES[$i]}"
      unset "NAMES[$i]" "PIDS[$i]"
    fi
  done
  stop_all
  exit 1
done
