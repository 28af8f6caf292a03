#!/usr/bin/env bash
# Latency against offered load: gossip-loadgen (open loop) at each rate against a fresh node,
# one CSV row per rate and a plot of p50/p99/p999/max against the offered rate (both log scale).
#
# usage: perf/latency_sweep.sh [-o out-dir] [-b build-dir] [-d seconds] [-w seconds]
#                              [-r "rate rate ..."] [-- extra gossip-loadgen flags]
#   defaults: -o perf/out/latency_sweep  -b build  -d 5  -w 1
#             -r "50000 100000 200000 400000 800000 1200000"
# e.g.      perf/latency_sweep.sh -d 3 -- --bin /tmp/gossip-kv --node-args "--workers 1"
#
# Writes into out-dir: latency.csv (rate, achieved, p50_us, p99_us, p999_us, max_us, errors,
# then send_rate and send_delay_p99_us), latency.png, and per rate the loadgen's text report
# (rate-R.txt) and JSON (rate-R.json). `achieved` is replies per second in the measured phase;
# `errors` counts failed checks and unanswered requests (see perf/README.md), "setup_failed"
# when the node never became ready. A run with errors is kept and the sweep goes on.
set -euo pipefail
cd "$(dirname "$0")/.."

out=perf/out/latency_sweep; build=build; duration=5; warmup=1
rates="50000 100000 200000 400000 800000 1200000"
while getopts "o:b:d:w:r:h" opt; do
  case $opt in
    o) out=$OPTARG ;;
    b) build=$OPTARG ;;
    d) duration=$OPTARG ;;
    w) warmup=$OPTARG ;;
    r) rates=$OPTARG ;;
    *) sed -n '2,16p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[[ ${1:-} == -- ]] && shift
loadgen="$build/bin/gossip-loadgen"
[[ -x $loadgen ]] || { echo "no $loadgen: build with -DGOSSIP_KV_BUILD_BENCH=ON" >&2; exit 2; }
command -v jq > /dev/null || { echo "latency_sweep.sh needs jq" >&2; exit 2; }
mkdir -p "$out"

csv="$out/latency.csv"
echo "rate,achieved,p50_us,p99_us,p999_us,max_us,errors,send_rate,send_delay_p99_us" > "$csv"
for rate in $rates; do
  json="$out/rate-$rate.json"
  rm -f "$json"
  # Exit status 1 (failed checks) still leaves a report; anything else leaves none.
  "$loadgen" --rate "$rate" --duration "$duration" --warmup "$warmup" --json "$json" "$@" \
    2>&1 | tee "$out/rate-$rate.txt" || true
  if [[ -s $json ]]; then
    jq -r '[.offered_rate, .reply_rate, .p50_us, .p99_us, .p999_us, .max_us, .errors,
            .send_rate, .send_delay_p99_us] | map(tostring) | join(",")' "$json" >> "$csv"
  else
    echo "$rate,,,,,,setup_failed,," >> "$csv"
  fi
done

gnuplot <<EOF
set terminal pngcairo size 960,600 font ",10"
set output "$out/latency.png"
set datafile separator ","
set datafile missing ""
set title "gossip-kv latency under open-loop load (${duration} s per rate)"
set xlabel "offered rate (requests/s, log scale; a tick at each rate measured)"
set ylabel "latency from due time (us)"
set logscale xy
set autoscale xfix
set offsets graph 0.05, graph 0.05, 0, 0
set format y "10^{%L}"
set grid xtics ytics mytics
set key top left
plot "$csv" using 1:3:xtic(sprintf("%gk", \$1 / 1000)) skip 1 with linespoints title "p50", \
     "" using 1:4 skip 1 with linespoints title "p99", \
     "" using 1:5 skip 1 with linespoints title "p999", \
     "" using 1:6 skip 1 with linespoints title "max"
EOF
echo
column -s, -t < "$csv"
echo "wrote $csv and $out/latency.png"
