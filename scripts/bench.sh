#!/usr/bin/env bash
# The README's first command: builds and runs the cluster benchmark with its defaults
# (gossip-bench), or, in a checkout without the runner, the single-node demonstration.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f src/gossip_bench/CMakeLists.txt ]; then
  bash scripts/deps.sh
  cmake --preset release >/dev/null
  cmake --build --preset release -j "$(nproc)" --target gossip-kv gossip-bench
  exec build/bin/gossip-bench "$@"
fi
exec bash scripts/demo.sh "$@"
