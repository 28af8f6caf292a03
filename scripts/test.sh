#!/usr/bin/env bash
# Builds and runs every test: the Release build's full suite, then the concurrency tests again
# under ThreadSanitizer. This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
jobs=$(nproc)

cmake --preset release -DGOSSIP_KV_BUILD_TESTS=ON -DGOSSIP_KV_BUILD_BENCH=ON >/dev/null
cmake --build --preset release -j "$jobs"
ctest --preset release -j "$jobs"

# TSan: the stress and runtime tests again, with the race detector on.
cmake --preset tsan -DGOSSIP_KV_BUILD_TESTS=ON >/dev/null
cmake --build --preset tsan -j "$jobs" --target gossip-kv gossip_kv_tests
ctest --preset tsan -j "$jobs" -L unit
