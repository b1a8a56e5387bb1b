#!/usr/bin/env bash
# run.sh -- the first README command: set up, build, and run the order
# management system (evstored and every oms-* service) with its data in
# ./data; Ctrl-C stops it all cleanly.
#
#   ./run.sh                    everything (scripts/oms-up.sh); the API on http://127.0.0.1:8080
#   ./run.sh --demo 1000        ... and place 1000 demo orders once it is up (keeps running)
#   ./run.sh --demo 1000 --exit-after-demo    ... then stop, with the demo's exit status
#   ./run.sh --store-only [evstored flags]    evstored alone, as before the OMS: data in ./data
#                               (EVSTORE_DATA overrides; other EVSTORE_* variables and
#                               evstored flags pass through: ./run.sh --store-only --durability interval)
#
# Every other argument goes to scripts/oms-up.sh (see scripts/oms-up.sh --help:
# --data DIR, ports by environment, -- DEMO FLAGS).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"

if [ "${1:-}" = "--store-only" ]; then
  shift
  export EVSTORE_DATA="${EVSTORE_DATA:-data}"
  cat <<MSG
run: starting evstored with data in $EVSTORE_DATA (Ctrl-C stops it).
     try, from another terminal:
       ./build/tools/cli/evstore append order-1 '{"total":42}' --type OrderPlaced
       ./build/tools/cli/evstore read order-1
       curl -s http://127.0.0.1:7412/metrics | head
MSG
  exec ./build/server/evstored "$@"
fi

cat <<MSG
run: starting the order management system with data in ${OMS_DATA:-./data} (Ctrl-C stops it).
     try, from another terminal:
       curl -s -X POST http://127.0.0.1:8080/orders -H 'Content-Type: application/json' \\
         -d '{"customer_id":"cust-1","currency":"EUR","payment_token":"tok_visa",
              "items":[{"sku":"sku-0001","quantity":1,"unit_price_cents":1299}],
              "shipping_address":{"name":"Ada","line1":"Main St 1","city":"Berlin",
                                  "postal_code":"10115","country":"DE"}}'
       curl -s http://127.0.0.1:8080/orders/<order_id>
       ./build/services/bin/oms-demo --orders 1000 --concurrency 16
MSG
exec scripts/oms-up.sh --build build "$@"
