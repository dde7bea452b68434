#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, then runs the unit
# tests and the integration tests against real PostgreSQL servers that the
# tests start themselves (streaming replication on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
tools/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure
