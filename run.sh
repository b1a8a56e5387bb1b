#!/usr/bin/env bash
# run.sh -- the first README command: set up, build, and run evstore.
# Starts evstored on 127.0.0.1:7411 (metrics on :7412) with its data in ./data
# (EVSTORE_DATA overrides; other EVSTORE_* variables and evstored flags pass
# through: ./run.sh --durability interval). Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
export EVSTORE_DATA="${EVSTORE_DATA:-data}"
cat <<MSG
run: starting evstored with data in $EVSTORE_DATA (Ctrl-C stops it).
     try, from another terminal:
       ./build/tools/cli/evstore append order-1 '{"total":42}' --type OrderPlaced
       ./build/tools/cli/evstore read order-1
       curl -s http://127.0.0.1:7412/metrics | head
MSG
exec ./build/server/evstored "$@"
