#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, then runs the unit
# tests and the integration tests against real servers that the tests start
# themselves on 127.0.0.1 (PostgreSQL 15 streaming replication, MariaDB 10.11
# GTID replication).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
tools/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure
