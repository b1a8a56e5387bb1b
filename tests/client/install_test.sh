#!/bin/sh
# install_test.sh BUILD_DIR SOURCE_DIR CC [EVSTORED] [EXTRA_CFLAGS]
# ($EVSTORED, when set, overrides the server binary, as in server_fixture.c.)
# Installs libevstore from BUILD_DIR into a temporary prefix, builds
# docs/example-producer/producer.c against it with pkg-config (as a user
# would), and, when EVSTORED is given, runs it against a fresh server.
set -eu
build=$1 src=$2 cc=$3 evstored=${EVSTORED:-${4:-}} extra=${5:-}
tmp=$(mktemp -d "${EVSTORE_TEST_TMPDIR:-/tmp}/install-XXXXXX")
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

cmake --install "$build" --prefix "$tmp/prefix" --component libevstore >/dev/null
for f in include/evstore.h lib/pkgconfig/evstore.pc; do
  test -f "$tmp/prefix/$f" || { echo "install: $f missing" >&2; exit 1; }
done
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
echo "pkg-config --cflags --libs evstore: $(pkg-config --cflags --libs evstore)"
pkg-config --static --libs evstore | grep -q -- -lprotobuf-c || {
  echo "install: protobuf-c missing from the static link line" >&2; exit 1; }
# shellcheck disable=SC2046,SC2086
"$cc" -std=c17 -Wall -Wextra -Werror $extra -o "$tmp/producer" \
  "$src/docs/example-producer/producer.c" $(pkg-config --cflags --libs evstore)
echo "install: example producer built against the installed library"

[ -n "$evstored" ] || { echo "install: no evstored, not running the producer"; exit 0; }
mkfifo "$tmp/ready"
"$evstored" --data "$tmp/data" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 \
  --durability none >"$tmp/ready" &
server_pid=$!
exec 3<"$tmp/ready" # kept open: the server may write to stdout again
read -r line <&3
port=$(echo "$line" | sed -n 's/.*listen=[^ ]*:\([0-9][0-9]*\).*/\1/p')
[ -n "$port" ] || { echo "install: no port in '$line'" >&2; exit 1; }
LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/producer" --port "$port" --count 2000 --batch 10
