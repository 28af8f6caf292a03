#!/usr/bin/env bash
# Pipelined throughput of one node against Redis on the same machine, in the same run.
#   node:  N requests (half write, half kv_read, 10,000 integer keys, 16 clients) piped in with
#          cat; every reply checked (perf/check_replies.py) on the first run.
#   redis: redis-benchmark -P 16 -c 16 -n N -r 10000 -t set,get against a redis-server on a
#          Unix socket (no persistence); its SET and GET rates combined as N+N requests over
#          the time of both.
# Runs alternate, node then Redis, RUNS times; prints each run and the medians and their ratio.
#
# usage: perf/vs_redis.sh [build-dir] [requests] [runs] [node flags...]
# Needs redis-server and redis-tools (scripts/deps.sh --bench).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}; requests=${2:-1000000}; runs=${3:-5}; shift $(( $# < 3 ? $# : 3 )) || true
node="$build/bin/gossip-kv"
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null ||
  { echo "needs redis-server and redis-benchmark: bash scripts/deps.sh --bench" >&2; exit 1; }
work=$(mktemp -d)
sock="$work/redis.sock"
redis-server --port 0 --unixsocket "$sock" --save '' --appendonly no --daemonize no \
  --dir "$work" >"$work/redis.log" 2>&1 &
redis_pid=$!
trap 'kill $redis_pid 2>/dev/null || true; wait $redis_pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done

python3 perf/gen_requests.py --requests "$requests" --clients 16 --keys 10000 --no-bench-write \
  > "$work/req.jsonl"
secs() { local t0 t1; t0=$(date +%s.%N); "$@"; t1=$(date +%s.%N); echo "$t1 - $t0" | bc -l; }
node_rates=(); redis_rates=()
for run in $(seq "$runs"); do
  t=$(secs bash -c "cat '$work/req.jsonl' | '$node' $* > '$work/rep.jsonl'")
  [ "$run" -eq 1 ] && python3 perf/check_replies.py "$work/req.jsonl" "$work/rep.jsonl" >&2
  node_rate=$(echo "($requests + 2) / $t" | bc -l)
  csv=$(redis-benchmark -s "$sock" -P 16 -c 16 -n "$requests" -r 10000 -t set,get --csv)
  set_rps=$(echo "$csv" | awk -F'"' '/^"SET"/ {print $4}')
  get_rps=$(echo "$csv" | awk -F'"' '/^"GET"/ {print $4}')
  redis_rate=$(echo "2 / (1 / $set_rps + 1 / $get_rps)" | bc -l)
  printf 'run %d: node %.0f requests/s, redis %.0f requests/s (SET %s, GET %s)\n' \
    "$run" "$node_rate" "$redis_rate" "$set_rps" "$get_rps"
  node_rates+=("$node_rate"); redis_rates+=("$redis_rate")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
node_med=$(median "${node_rates[@]}"); redis_med=$(median "${redis_rates[@]}")
printf 'median of %d: node %.0f requests/s, redis %.0f requests/s, ratio %.2f\n' "$runs" \
  "$node_med" "$redis_med" "$(echo "$node_med / $redis_med" | bc -l)"
