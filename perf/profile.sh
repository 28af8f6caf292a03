#!/usr/bin/env bash
# Profiles the node on a pipelined request stream.
#   perf/profile.sh callgrind [requests]   instruction counts per function (stable on a noisy box)
#   perf/profile.sh perf [requests]        perf record with the software cpu-clock event
# Output lands in perf/out/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-callgrind}; requests=${2:-100000}
node=build/bin/gossip-kv
[ -x "$node" ] || { echo "build the node first: cmake --preset release && cmake --build build" >&2; exit 1; }
mkdir -p perf/out
python3 perf/gen_requests.py --requests "$requests" > perf/out/requests.jsonl
case "$mode" in
  callgrind)
    valgrind --tool=callgrind --callgrind-out-file=perf/out/callgrind.out \
      "$node" --workers 1 < perf/out/requests.jsonl > /dev/null 2> perf/out/callgrind.log
    grep Collected perf/out/callgrind.log
    echo "per request: $(( $(grep -oP 'Collected : \K[0-9]+' perf/out/callgrind.log) / requests )) instructions"
    callgrind_annotate perf/out/callgrind.out | sed -n '/file:function/,+15p'
    ;;
  perf)
    perf record -e cpu-clock -g -o perf/out/perf.data -- \
      "$node" < perf/out/requests.jsonl > /dev/null
    perf report -i perf/out/perf.data --stdio --no-children | head -60
    ;;
  *) echo "usage: $0 callgrind|perf [requests]" >&2; exit 2 ;;
esac
