#!/usr/bin/env python3
"""A deliberately faulty single-replica Maelstrom node for gossip-bench's end-to-end tests.

It answers init, write, kv_read and bench_stats like a one-node gossip-kv, except:
  --final-read-error   the runner's own reads (from c0) get error 13 instead of an answer
  --exit-after N       exits with status 3 after reading N lines
"""
import json
import sys
import time


def main():
    final_read_error = "--final-read-error" in sys.argv
    exit_after = int(sys.argv[sys.argv.index("--exit-after") + 1]) if "--exit-after" in sys.argv else None
    node_id, store, msg_id, writes, lines = "n?", {}, 0, 0, 0

    def reply(req, body):
        nonlocal msg_id
        body.update(in_reply_to=req["body"]["msg_id"], msg_id=msg_id)
        msg_id += 1
        print(json.dumps({"src": node_id, "dest": req["src"], "body": body}), flush=True)

    for line in sys.stdin:
        lines += 1
        if exit_after is not None and lines > exit_after:
            sys.exit(3)
        req = json.loads(line)
        body, kind = req["body"], req["body"]["type"]
        if kind == "init":
            node_id = body["node_id"]
            reply(req, {"type": "init_ok"})
        elif kind in ("write", "bench_write"):
            ts = time.time()
            store[body["key"]] = (body["value"], ts)
            writes += 1
            reply(req, {"type": "write_ok", "ts": ts} if kind == "write" else {"type": "bench_write_ok", "write_id": writes})
        elif kind == "kv_read" and final_read_error and req["src"] == "c0":
            reply(req, {"type": "error", "code": 13, "text": "crash"})
        elif kind == "kv_read":
            if body["key"] in store:
                value, ts = store[body["key"]]
                reply(req, {"type": "kv_read_ok", "key": body["key"], "value": value, "ts": ts})
            else:
                reply(req, {"type": "error", "code": 20, "text": "Key not found"})
        elif kind == "bench_stats":
            reply(req, {"type": "bench_stats_ok", "total_writes": writes, "total_gossip_msgs": 0,
                        "state_digest": "one", "stale_reads": 0, "reads": 0,
                        "convergence_ms": {"count": writes, "pending": 0, "p50": 0, "p95": 0, "p99": 0,
                                           "max": 0, "histogram": [[0, writes]] if writes else []}})
        else:
            reply(req, {"type": "error", "code": 10, "text": "not supported"})


if __name__ == "__main__":
    main()
