#!/usr/bin/env bash
# Installs the Debian packages the build needs (with --bench, the benchmark baselines' too). As
# root it runs apt-get; otherwise it prints the exact command and stops, so nothing is installed
# behind a user's back.
set -euo pipefail

packages=(cmake g++ make pkg-config rapidjson-dev libconcurrentqueue-dev libgtest-dev
          libbenchmark-dev libabsl-dev libxxhash-dev libcli11-dev gnuplot-nox valgrind bc python3
          # clang: the fuzz targets (libFuzzer lives in libclang-rt-dev) and the -Wthread-safety
          # build; llvm: llvm-symbolizer, for readable sanitizer and fuzzer stack traces.
          clang libclang-rt-dev llvm)
# --bench: also what the baselines in BENCHMARKS.md need (perf/vs_redis.sh).
if [ "${1:-}" = "--bench" ]; then
  packages+=(redis-server redis-tools)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "gossip-kv: missing Debian packages; run as root:" >&2
  echo "  apt-get update && $cmd" >&2
  exit 1
fi
echo "gossip-kv: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
$cmd >/dev/null
