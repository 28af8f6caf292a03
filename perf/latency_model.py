#!/usr/bin/env python3
"""A model of dissemination under Maelstrom-like exponential latency (issue 11, item 6).

Not a measurement of gossip-kv: an idealised cluster that sends only pushes (no
acknowledgements, no anti-entropy, no chains), to tell whether `fast`'s normal-network targets
(p50 <= 250 ms, max <= 400 ms, <= 10 msgs/op) are reachable at all under
`--latency-dist exponential`, and by which shape of design. Each write is followed from its
origin until the last of N replicas holds it; every message's delay is drawn from an
exponential distribution with the given mean. Writes are Poisson over the run, on random nodes; the load goes on for
--tail-ms after it, so that the last writes measured have later writes to ride on, as they
would in a longer run (a write the model never spreads to every replica prints max "inf").

Designs:
  one-hop     the origin sends each write at once to every peer (N-1 messages a write).
  periodic    every node sends one message every T ms to a random peer, carrying every write it
              came to hold in the last W ms.
  on-write    a write's origin sends one message at once to k random peers, carrying the write
              and every write it came to hold in the last W ms (the other nodes' writes ride
              along: paths for free).

msgs/op counts a client operation as the benchmark does (reads included).

  python3 perf/latency_model.py --design on-write --fanout 20 --window-ms 600
"""
import argparse
import bisect
import heapq
import math
import random


def simulate(a):
    rng = random.Random(a.seed)
    n = a.nodes
    write_rate = a.rate * (1 - a.read_fraction) / 1000.0  # writes per ms, cluster-wide
    writes, t = [], 0.0
    while True:
        t += rng.expovariate(write_rate)
        if t > a.duration_ms + a.tail_ms:
            break
        writes.append((t, rng.randrange(n)))
    own = [[] for _ in range(n)]  # each node's write times: when an on-write node sends
    for wt, node in writes:
        own[node].append(wt)
    phase = [rng.uniform(0, a.interval_ms) for _ in range(n)]

    def delay():
        return rng.expovariate(1.0 / a.latency_ms)

    def others(node, k):
        peers = [p for p in range(n) if p != node]
        return peers if k >= len(peers) else rng.sample(peers, k)

    spreads = []
    for t0, origin in writes:
        if t0 > a.duration_ms:
            break
        held = [math.inf] * n
        held[origin] = t0
        events = []  # (arrival time, node)

        def sends_of(node, since):
            """The messages `node` sends carrying this write, holding it from `since`."""
            if a.design == "one-hop":
                if node == origin:
                    for p in others(node, n - 1):
                        heapq.heappush(events, (since + delay(), p))
            elif a.design == "periodic":
                s = phase[node] + math.ceil((since - phase[node]) / a.interval_ms) * a.interval_ms
                while s < since + a.window_ms:
                    (p,) = others(node, 1)
                    heapq.heappush(events, (s + delay(), p))
                    s += a.interval_ms
            else:  # on-write
                times = own[node]
                i = bisect.bisect_left(times, since)
                while i < len(times) and times[i] < since + a.window_ms:
                    for p in others(node, a.fanout):
                        heapq.heappush(events, (times[i] + delay(), p))
                    i += 1

        sends_of(origin, t0)
        while events:
            at, p = heapq.heappop(events)
            if at < held[p]:
                first = held[p] == math.inf
                held[p] = at
                if first:
                    sends_of(p, at)
        spreads.append(max(held) - t0)

    ops = len(spreads) / (1 - a.read_fraction)  # the writes measured, and their share of reads
    if a.design == "one-hop":
        msgs = len(spreads) * (n - 1)
    elif a.design == "periodic":
        msgs = n * a.duration_ms / a.interval_ms
    else:
        msgs = len(spreads) * min(a.fanout, n - 1)
    spreads.sort()
    pick = lambda q: spreads[min(len(spreads) - 1, int(q * len(spreads)))]
    return msgs / ops, pick(0.5), pick(0.95), spreads[-1], len(spreads)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--design", choices=["one-hop", "periodic", "on-write"], default="on-write")
    p.add_argument("--nodes", type=int, default=25)
    p.add_argument("--latency-ms", type=float, default=100, help="mean of the exponential delay")
    p.add_argument("--rate", type=float, default=100, help="client operations per second")
    p.add_argument("--read-fraction", type=float, default=0.5)
    p.add_argument("--duration-ms", type=float, default=20000)
    p.add_argument("--fanout", type=int, default=20, help="on-write: peers per write")
    p.add_argument("--interval-ms", type=float, default=25, help="periodic: ms between sends")
    p.add_argument("--window-ms", type=float, default=600, help="how long a write rides along")
    p.add_argument("--tail-ms", type=float, default=None,
                   help="load after the measured run (default: the window + 2000 ms)")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    if a.tail_ms is None:
        a.tail_ms = a.window_ms + 2000
    per_op, p50, p95, worst, count = simulate(a)
    print(f"{a.design}: {per_op:.2f} msgs/op, spread to every replica p50 / p95 / max "
          f"{p50:.0f} / {p95:.0f} / {worst:.0f} ms over {count} writes")


if __name__ == "__main__":
    main()
