#!/usr/bin/env python3
"""A small independent Maelstrom node that gossips naively, for gossip-bench's foreign-node test.

Every write is kept with a version (wall-clock nanoseconds, node id) and sent at once to every
peer, one message each; the newer version wins. No anti-entropy: a lost message stays lost.
It knows nothing of gossip-bench: bench_stats and anything else it does not serve get error 10.
"""
import json
import sys
import time


def main():
    node_id, peers, store, msg_id = "n?", [], {}, 0

    def send(dest, body):
        print(json.dumps({"src": node_id, "dest": dest, "body": body}), flush=True)

    def reply(req, body):
        nonlocal msg_id
        msg_id += 1
        body.update(in_reply_to=req["body"]["msg_id"], msg_id=msg_id)
        send(req["src"], body)

    for line in sys.stdin:
        req = json.loads(line)
        body, kind = req["body"], req["body"].get("type")
        if kind == "init":
            node_id = body["node_id"]
            peers = [n for n in body["node_ids"] if n != node_id]
            reply(req, {"type": "init_ok"})
        elif kind == "write":
            version = [time.time_ns(), node_id]
            key = str(body["key"])
            if key not in store or store[key][1] < version:
                store[key] = (body["value"], version)
            reply(req, {"type": "write_ok"})
            for peer in peers:
                send(peer, {"type": "naive_gossip", "key": key, "value": body["value"], "version": version})
        elif kind == "naive_gossip":
            key = body["key"]
            if key not in store or store[key][1] < body["version"]:
                store[key] = (body["value"], body["version"])
        elif kind == "kv_read":
            key = str(body["key"])
            if key in store:
                reply(req, {"type": "kv_read_ok", "value": store[key][0]})
            else:
                reply(req, {"type": "error", "code": 20, "text": "key not found"})
        elif "msg_id" in body:
            reply(req, {"type": "error", "code": 10, "text": "not supported: " + str(kind)})


if __name__ == "__main__":
    main()
