#!/usr/bin/env python3
"""Writes a pipelined Maelstrom request stream for throughput runs: an init, then N requests
from K clients round-robin (writes, kv_reads and bench_writes on integer keys), then a
bench_report. Deterministic for a given seed.

usage: perf/gen_requests.py [--requests 1000000] [--clients 16] [--keys 1000]
                            [--read-fraction 0.5] [--no-bench-write] [--seed 1] > requests.jsonl

Writes are half write, half bench_write; --no-bench-write makes them all write.
"""
import argparse
import random
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--keys", type=int, default=1000)
    ap.add_argument("--read-fraction", type=float, default=0.5)
    ap.add_argument("--no-bench-write", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    out = sys.stdout
    out.write('{"src":"c0","dest":"n1","body":{"type":"init","msg_id":0,'
              '"node_id":"n1","node_ids":["n1"]}}\n')
    msg_ids = [0] * (a.clients + 1)
    lines = []
    for i in range(a.requests):
        c = 1 + i % a.clients
        msg_ids[c] += 1
        k = rng.randrange(a.keys)
        r = rng.random()
        if r < a.read_fraction:
            body = f'"type":"kv_read","msg_id":{msg_ids[c]},"key":{k}'
        elif a.no_bench_write or r < a.read_fraction + (1 - a.read_fraction) / 2:
            body = f'"type":"write","msg_id":{msg_ids[c]},"key":{k},"value":{i}'
        else:
            body = f'"type":"bench_write","msg_id":{msg_ids[c]},"key":{k},"value":"v{i}"'
        lines.append(f'{{"src":"c{c}","dest":"n1","body":{{{body}}}}}\n')
        if len(lines) >= 4096:
            out.write("".join(lines))
            lines.clear()
    out.write("".join(lines))
    out.write('{"src":"c0","dest":"n1","body":{"type":"bench_report","msg_id":1}}\n')


if __name__ == "__main__":
    main()
