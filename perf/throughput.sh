#!/usr/bin/env bash
# Pipelined throughput of one node: a million requests from 16 clients (half kv_read, a quarter
# write, a quarter bench_write, 1,000 integer keys) piped in with cat; every reply checked for
# per-client order. Baseline in the same run: cat alone through the same pipe.
#
# usage: perf/throughput.sh [build-dir] [requests] [runs] [node flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}; requests=${2:-1000000}; runs=${3:-5}; shift $(( $# < 3 ? $# : 3 )) || true
node="$build/bin/gossip-kv"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
python3 perf/gen_requests.py --requests "$requests" --clients 16 > "$work/req.jsonl"
bytes=$(stat -c %s "$work/req.jsonl")

secs() { local t0 t1; t0=$(date +%s.%N); "$@"; t1=$(date +%s.%N); echo "$t1 - $t0" | bc -l; }
best_cat=999; best_node=999
for _ in $(seq "$runs"); do
  t=$(secs bash -c "cat '$work/req.jsonl' | cat > /dev/null")
  (( $(echo "$t < $best_cat" | bc -l) )) && best_cat=$t
  t=$(secs bash -c "cat '$work/req.jsonl' | '$node' $* > '$work/rep.jsonl'")
  (( $(echo "$t < $best_node" | bc -l) )) && best_node=$t
done
python3 perf/check_replies.py "$work/req.jsonl" "$work/rep.jsonl"
printf 'input: %d requests, %d bytes; best of %d runs\n' "$((requests + 2))" "$bytes" "$runs"
printf 'baseline cat|cat : %.3f s\n' "$best_cat"
printf 'cat|gossip-kv    : %.3f s = %.0f requests/s (flags: %s)\n' "$best_node" \
  "$(echo "($requests + 2) / $best_node" | bc -l)" "${*:-default}"
