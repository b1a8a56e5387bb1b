#!/usr/bin/env bash
# run.sh -- the first README command: set up, build, and run evstore.
# Until the server exists this runs the storage demo on ./data (or $EVSTORE_DATA).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
DATA="${EVSTORE_DATA:-data}"
echo "run: storage demo on $DATA"
exec ./build/tools/evstore-storage-demo "$DATA"
