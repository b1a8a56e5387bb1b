#!/usr/bin/env bash
# setup.sh -- installs the Debian packages evstore needs to build and test,
# only those that are missing, and says what it does. Safe to run again.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  liburing-dev libxxhash-dev liblz4-dev
  libprotobuf-c-dev protobuf-c-compiler
  check libjansson-dev libcurl4-openssl-dev
  libmicrohttpd-dev libsqlite3-dev prometheus
  clang libclang-rt-14-dev
  libpq-dev libhiredis-dev libnats-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} required Debian packages are installed."
  exit 0
fi

echo "setup: installing missing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "setup: FAILED: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update -qq; then
  echo "setup: FAILED: apt-get update did not succeed (network or apt sources?)" >&2
  exit 1
fi
if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
  echo "setup: FAILED: apt-get install ${missing[*]} did not succeed" >&2
  exit 1
fi
echo "setup: installed ${missing[*]}"
