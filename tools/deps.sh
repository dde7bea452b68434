#!/usr/bin/env bash
# Installs the Debian 12 packages shardgate needs to build, test and benchmark,
# when any of them is missing. Safe to run again: it does nothing when all are there.
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang-format
  libboost1.81-dev libssl-dev libpq-dev libyaml-cpp-dev
  libprotobuf-dev protobuf-compiler librocksdb-dev libxxhash-dev libjemalloc-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  default-libmysqlclient-dev
  postgresql-15 postgresql-client-15
  mariadb-server mariadb-client sysbench
  pgbouncer haproxy curl procps iproute2 openssl
  nftables  # the failover drill's network partition (shardctl drill --partition)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "shardgate: installing missing packages: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "shardgate: run as root (or install sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# policy-rc.d keeps the packaged services (postgresql, mariadb, pgbouncer, haproxy) from
# starting on their default ports: shardgate starts its own instances.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
