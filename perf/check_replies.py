#!/usr/bin/env python3
"""Checks a node's output for a request stream: every request answered exactly once, replies
to each client in request order, msg_id 0,1,2,... in output order. Prints a summary; exits 1
on any violation.

usage: perf/check_replies.py requests.jsonl replies.jsonl
"""
import json
import sys


def main():
    expected = {}
    with open(sys.argv[1]) as f:
        for line in f:
            m = json.loads(line)
            expected.setdefault(m["src"], []).append(m["body"]["msg_id"])
    seen = {}
    bad = 0
    with open(sys.argv[2]) as f:
        for n, line in enumerate(f):
            m = json.loads(line)
            b = m["body"]
            if b["msg_id"] != n:
                bad += 1
            seen.setdefault(m["dest"], []).append(b["in_reply_to"])
    for src, ids in expected.items():
        if seen.get(src) != ids:
            bad += 1
            print(f"client {src}: {len(ids)} requests, replies differ", file=sys.stderr)
    total = sum(len(v) for v in expected.values())
    print(f"{total} requests, {sum(len(v) for v in seen.values())} replies, {bad} violations")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
