#!/usr/bin/env bash
# Builds the libFuzzer targets (preset `fuzz`, clang, ASan+UBSan) and runs each
# tests/fuzz/<name>_fuzz.cpp for a while from its seed corpus tests/fuzz/corpus/<name>/ with the
# shared dictionary. New inputs go to build-fuzz/corpus/<name>/ (the checked-in seeds are not
# touched); a crash or broken invariant leaves build-fuzz/artifacts/<name>-crash-* and fails.
# Usage: scripts/fuzz.sh [seconds per target, default 45] [target name...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-45}
shift || true
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)" --target fuzz_targets
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for src in tests/fuzz/*_fuzz.cpp; do names+=("$(basename "$src" _fuzz.cpp)"); done
fi
mkdir -p build-fuzz/artifacts
for name in "${names[@]}"; do
  mkdir -p "build-fuzz/corpus/$name" "tests/fuzz/corpus/$name"
  echo "fuzz: $name for ${secs}s" >&2
  # -max_len 140000: room for the 100k-'[' line and 64 KiB values nested to the hilt.
  log="build-fuzz/artifacts/$name.log"
  rc=0
  "build-fuzz/bin/${name}_fuzz" "build-fuzz/corpus/$name" "tests/fuzz/corpus/$name" \
    -dict=tests/fuzz/gossip_kv.dict -max_total_time="$secs" -max_len=140000 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$name-" >"$log" 2>&1 || rc=$?
  grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)" "$log" >&2 || true
  if [ "$rc" -ne 0 ]; then
    tail -40 "$log" >&2
    echo "fuzz: $name FAILED (exit $rc); log $log" >&2
    exit 1
  fi
done
