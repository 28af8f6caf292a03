#!/usr/bin/env bash
# Builds and runs every test: the Release build's full suite; the unit tests again under
# ThreadSanitizer and under AddressSanitizer+UBSan; the core library with clang's
# -Wthread-safety as errors; and each libFuzzer target for a short run. This is the README's
# test command and what CI runs (15 minutes from a fresh clone on the shared 2-core VM while a
# fuzzer ran beside it; docs/FUZZING.md has the stage times).
# FUZZ_SECONDS (default 30) sets the fuzzing time per target; 0 skips fuzzing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
jobs=$(nproc)
stage() { echo "== $1 ($(date +%T))" >&2; }

stage "release: build, all tests"
cmake --preset release -DGOSSIP_KV_BUILD_TESTS=ON -DGOSSIP_KV_BUILD_BENCH=ON >/dev/null
cmake --build --preset release -j "$jobs"
ctest --preset release -j "$jobs"

# TSan: the stress and runtime tests again, with the race detector on.
stage "tsan: unit tests"
cmake --preset tsan -DGOSSIP_KV_BUILD_TESTS=ON >/dev/null
cmake --build --preset tsan -j "$jobs" --target gossip-kv gossip_kv_tests
ctest --preset tsan -j "$jobs" -L unit

# ASan+UBSan: the same tests, for memory errors and undefined behaviour (hostile input included).
stage "asan+ubsan: unit tests"
cmake --preset asan -DGOSSIP_KV_BUILD_TESTS=ON >/dev/null
cmake --build --preset asan -j "$jobs" --target gossip-kv gossip_kv_tests
ctest --preset asan -j "$jobs" -L unit

# clang's thread-safety analysis of the GOSSIP_KV_GUARDED_BY annotations (include/gossip_kv/mutex.h).
stage "clang-tsa: -Wthread-safety -Werror"
cmake --preset clang-tsa >/dev/null
cmake --build --preset clang-tsa -j "$jobs" --target gossip_kv_core

# Each fuzz target briefly (the hour-long runs are in docs/FUZZING.md).
if [ "${FUZZ_SECONDS:-30}" -gt 0 ]; then
  stage "fuzz: ${FUZZ_SECONDS:-30} s per target"
  bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
fi
stage "all green"
