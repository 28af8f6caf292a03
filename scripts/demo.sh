#!/usr/bin/env bash
# A single-node demonstration: builds the node, pipes 200,000 requests from 16 clients through
# it, checks every reply (answered once, per-client order, msg_id in output order), and prints
# the throughput and the node's own bench_stats.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target gossip-kv >/dev/null
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
requests=${1:-200000}
python3 perf/gen_requests.py --requests "$requests" --clients 16 > "$work/req.jsonl"
echo '{"src":"c0","dest":"n1","body":{"type":"bench_stats","msg_id":2}}' >> "$work/req.jsonl"
start=$(date +%s%N)
build/bin/gossip-kv < "$work/req.jsonl" > "$work/rep.jsonl"
end=$(date +%s%N)
python3 perf/check_replies.py "$work/req.jsonl" "$work/rep.jsonl"
python3 - "$work/rep.jsonl" "$requests" "$start" "$end" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
n, t0, t1 = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
secs = (t1 - t0) / 1e9
print(f"{n} pipelined requests from 16 clients in {secs:.3f} s: {n / secs:,.0f} requests/s")
stats = json.loads(lines[-1])["body"]
for k in ("total_writes", "reads", "keys_stored", "stale_reads", "state_digest", "workers"):
    print(f"  {k:14} {stats.get(k)}")
PY
