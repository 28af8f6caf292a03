#!/usr/bin/env python3
"""Resident memory per stored key of a gossip-kv cluster (issue 12), optionally next to Redis.

Starts N nodes (n1..nN) as one cluster, this script routing every peer message between their
stdin/stdout pipes, and reads each node's VmRSS (/proc/<pid>/status) once init is done and the
node has idled 1 s (the baseline). Then writes K distinct keys ("key%08d", small integer values)
with `write` requests, key i to node i % N, checks that all K come back `write_ok`, waits until
every node's `bench_stats` shows keys_stored == K and one common state_digest (full
replication), idles 2 s and reads VmRSS again. (after - baseline) / K is the memory per key of
one replica, replication metadata (versions, gossip state) included; VmHWM is the peak.
With --redis, the same K keys go to a redis-server (Unix socket, no persistence) through
`redis-cli --pipe`; its INFO used_memory delta / K and VmRSS delta / K are printed beside.
Target: <= 72 B/key at 1,000,000 keys in a 3-node cluster, or below Redis's figure.

usage: perf/memory_per_key.py [--bin build/bin/gossip-kv] [--keys 1000000] [--nodes 3]
                              [--redis] [--node-args="..."] [--timeout 300]
"""
import argparse, json, os, queue, shlex, shutil, subprocess, sys, tempfile, threading, time

def proc_status(pid):
    """VmRSS and VmHWM of a process, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(l.split(":", 1) for l in f if l.startswith(("VmRSS", "VmHWM")))
    return {k: int(v.split()[0]) * 1024 for k, v in fields.items()}

def dest_of(line):
    """The envelope's dest. Nodes write compact JSON, src, dest, body in that order: an unescaped
    "dest":" before "body" can only be the envelope's own key. Anything else: parse it all."""
    i, b = line.find(b'"dest":"', 0, 256), line.find(b'"body"', 0, 256)
    if i < 0 or 0 <= b < i:
        return json.loads(line)["dest"].encode()
    return line[i + 8:line.index(b'"', i + 8)]

class Node:
    """One node process. Its stdin has a single writer thread fed by a queue (peer lines from
    every router, request chunks from the load thread), so lines never interleave and no router
    ever blocks on a full pipe (which could deadlock two nodes writing to each other)."""
    def __init__(self, idx, argv):
        self.id, self.out, self.replies = f"n{idx}", queue.Queue(), queue.Queue()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, bufsize=1 << 20)
        self.acked, self.bad, self.failed = 0, [], None

    def start(self, nodes):
        threading.Thread(target=self._read, args=(nodes,), daemon=True).start()
        threading.Thread(target=self._write, daemon=True).start()

    def send(self, data):
        self.out.put(data)

    def _write(self):
        stdin, closing = self.proc.stdin, False
        while not closing:
            parts = [self.out.get()]
            while len(parts) < 512 and not self.out.empty():  # batch what is already queued
                parts.append(self.out.get_nowait())
            if None in parts:
                closing = True
                parts = parts[:parts.index(None)]
            try:
                stdin.write(b"".join(parts))
                stdin.flush()
            except (BrokenPipeError, ValueError) as e:
                self.failed = f"{self.id} stdin: {e!r}"
                return
        stdin.close()

    def _read(self, nodes):
        for line in self.proc.stdout:
            try:
                dest = dest_of(line)
                if dest[:1] == b"n":
                    if dest in nodes:
                        nodes[dest].send(line)
                elif dest == b"c1":
                    if b'"type":"write_ok"' in line:
                        self.acked += 1
                    else:
                        self.bad.append(line)
                else:
                    self.replies.put(json.loads(line)["body"])
            except (ValueError, KeyError) as e:  # keep draining: a stalled reader blocks the node
                self.failed = f"{self.id} wrote an unusable line {line[:200]!r}: {e!r}"

    def ask(self, body, timeout=30):
        self.send(json.dumps({"src": "c9" if body["type"] != "init" else "c0",
                              "dest": self.id, "body": body}).encode() + b"\n")
        for _ in range(timeout * 10):
            try:
                return self.replies.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None or self.failed:
                    sys.exit(f"{self.id} failed: {self.failed or f'exit status {self.proc.returncode}'}")
        sys.exit(f"{self.id}: no reply to {body['type']} in {timeout} s")

def run_nodes(args):
    argv = [args.bin] + shlex.split(args.node_args)
    n, k = args.nodes, args.keys
    nodes = {f"n{i}".encode(): Node(i, argv) for i in range(1, n + 1)}
    ids, order = [f"n{i}" for i in range(1, n + 1)], list(nodes.values())
    def check():
        if any(nd.failed or nd.proc.poll() is not None for nd in order):
            sys.exit(f"a node failed: {[nd.failed or nd.proc.returncode for nd in order]}")
    try:
        for node in order:
            node.start(nodes)
        for node in order:
            r = node.ask({"type": "init", "msg_id": 1, "node_id": node.id, "node_ids": ids})
            assert r["type"] == "init_ok", r
        time.sleep(1)
        base = [proc_status(nd.proc.pid) for nd in order]
        t0, msg_id, block = time.time(), 2, 30000
        for start in range(0, k, block):
            chunks = [[] for _ in order]
            for i in range(start, min(k, start + block)):
                chunks[i % n].append(b'{"src":"c1","dest":"%s","body":{"type":"write","msg_id":%d,'
                                     b'"key":"key%08d","value":%d}}\n' % (ids[i % n].encode(), msg_id, i, i % 1000000))
                msg_id += 1
            for nd, c in zip(order, chunks):
                nd.send(b"".join(c))
            while start - sum(nd.acked for nd in order) > 200000:  # bound what is in flight
                check()
                time.sleep(0.01)
        while sum(nd.acked for nd in order) + sum(len(nd.bad) for nd in order) < k:
            check()
            time.sleep(0.01)
        bad = [l for nd in order for l in nd.bad]
        if bad:
            sys.exit(f"{len(bad)} writes not answered write_ok, e.g. {bad[0][:300]!r}")
        t_load = time.time() - t0
        print(f"loaded {k} keys in {t_load:.1f} s ({k / t_load:.0f} writes/s)")
        while True:
            stats = [nd.ask({"type": "bench_stats", "msg_id": msg_id}) for nd in order]
            msg_id += 1
            if all(s["keys_stored"] == k for s in stats) and len({s["state_digest"] for s in stats}) == 1:
                break
            check()
            if time.time() - t0 > t_load + args.timeout:
                sys.exit(f"no convergence after {args.timeout} s: keys_stored "
                         f"{[s['keys_stored'] for s in stats]}, digests {[s['state_digest'] for s in stats]}")
            time.sleep(1)
        print(f"converged {time.time() - t0 - t_load:.1f} s after the last write_ok, "
              f"digest {stats[0]['state_digest']}")
        time.sleep(2)
        after = [proc_status(nd.proc.pid) for nd in order]
        per_key = []
        for nd, b, a in zip(order, base, after):
            per_key.append((a["VmRSS"] - b["VmRSS"]) / k)
            print(f"{nd.id}: RSS {b['VmRSS'] / 2**20:.1f} -> {a['VmRSS'] / 2**20:.1f} MiB, "
                  f"{per_key[-1]:.1f} B/key; peak (VmHWM) {a['VmHWM'] / 2**20:.1f} MiB")
        mean = sum(per_key) / n
        print(f"nodes: mean {mean:.1f} B/key RSS over {n} nodes")
        return mean
    finally:
        for nd in order:
            nd.send(None)
        for nd in order:
            try:
                nd.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                print(f"{nd.id} did not exit after stdin closed: killed", file=sys.stderr)
                nd.proc.kill()
                nd.proc.wait()

def run_redis(k):
    if not shutil.which("redis-server") or not shutil.which("redis-cli"):
        print("redis-server/redis-cli not found: skipping Redis (bash scripts/deps.sh --bench)")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "redis.sock")
        proc = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", sock, "--save", "",
                                 "--appendonly", "no", "--dir", tmp],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cli = ["redis-cli", "-s", sock]
        def used_memory():
            info = subprocess.run(cli + ["info", "memory"], capture_output=True, text=True, check=True).stdout
            return int(next(l.split(":")[1] for l in info.splitlines() if l.startswith("used_memory:")))
        try:
            for _ in range(100):
                if os.path.exists(sock) and subprocess.run(cli + ["ping"], capture_output=True).returncode == 0:
                    break
                time.sleep(0.05)
            time.sleep(1)
            m0, r0 = used_memory(), proc_status(proc.pid)["VmRSS"]
            resp = b"".join(b"*3\r\n$3\r\nSET\r\n$11\r\nkey%08d\r\n$%d\r\n%s\r\n" % (i, len(v), v)
                            for i in range(k) for v in [b"%d" % (i % 1000000)])
            out = subprocess.run(cli + ["--pipe"], input=resp, capture_output=True, check=True).stdout.decode()
            if f"errors: 0, replies: {k}" not in out:
                sys.exit(f"redis-cli --pipe: {out.strip()}")
            time.sleep(2)
            m1, st = used_memory(), proc_status(proc.pid)
            um, rss = (m1 - m0) / k, (st["VmRSS"] - r0) / k
            print(f"redis: used_memory {m0 / 2**20:.1f} -> {m1 / 2**20:.1f} MiB, {um:.1f} B/key; "
                  f"RSS {r0 / 2**20:.1f} -> {st['VmRSS'] / 2**20:.1f} MiB, {rss:.1f} B/key; "
                  f"peak (VmHWM) {st['VmHWM'] / 2**20:.1f} MiB")
            return um, rss
        finally:
            proc.kill()
            proc.wait()

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default="build/bin/gossip-kv")
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--redis", action="store_true", help="measure redis-server with the same keys")
    ap.add_argument("--node-args", default="", help='extra flags for every node (write --node-args="--flag")')
    ap.add_argument("--timeout", type=float, default=300, help="seconds to wait for convergence")
    args = ap.parse_args()
    mean = run_nodes(args)
    line = f"memory per key: nodes (mean of {args.nodes}) {mean:.1f} B/key RSS"
    if args.redis:
        r = run_redis(args.keys)
        if r:
            line += f"; redis {r[0]:.1f} B/key used_memory, {r[1]:.1f} B/key RSS"
    print(line)

if __name__ == "__main__":
    main()
