#!/usr/bin/env python3
"""Feeds a node a burst of large requests and reports its memory once every reply is in.

Reproduces issue 10's memory figures (BENCHMARKS.md, "Memory under hostile input"):
  writes64k  N writes of one 64 KiB value to one key        (default N = 20,000)
  merge4096  N kv_merge lines of 4,096 tiny entries          (default N = 20,000)
  init4096   N second inits naming 4,096 ids of 64 bytes     (default N = 3,000)
  reads64k   one write of a 64 KiB value, then N kv_reads of it (default N = 20,000)
Prints VmRSS (resident now, after the burst, with the node idle and stdin still open) and
VmHWM (the peak), in MiB. Usage: memory_probe.py <node binary> <case> [N]
"""
import os, subprocess, sys, threading, time

def lines(case, n):
    yield b'{"src":"c0","dest":"n1","body":{"type":"init","msg_id":0,"node_id":"n1","node_ids":["n1"]}}'
    if case == "writes64k":
        value = b'"' + b"v" * (64 * 1024 - 2) + b'"'
        for i in range(n):
            yield b'{"src":"c1","dest":"n1","body":{"type":"write","msg_id":%d,"key":"k","value":%s}}' % (i + 1, value)
    elif case == "merge4096":
        entries = b"{" + b",".join(b'"k%d":{"value":%d,"ts":1.5}' % (j, j) for j in range(4096)) + b"}"
        for i in range(n):
            yield b'{"src":"c1","dest":"n1","body":{"type":"kv_merge","msg_id":%d,"entries":%s}}' % (i + 1, entries)
    elif case == "init4096":
        ids = b"[" + b",".join(b'"%s"' % (b"n%063d" % j) for j in range(4096)) + b"]"
        for i in range(n):
            yield b'{"src":"c0","dest":"n1","body":{"type":"init","msg_id":%d,"node_id":"n1","node_ids":%s}}' % (i + 1, ids)
    elif case == "reads64k":
        value = b'"' + b"v" * (64 * 1024 - 2) + b'"'
        yield b'{"src":"c1","dest":"n1","body":{"type":"write","msg_id":1,"key":"k","value":%s}}' % value
        for i in range(n - 1):
            yield b'{"src":"c1","dest":"n1","body":{"type":"kv_read","msg_id":%d,"key":"k"}}' % (i + 2)
    else:
        sys.exit("unknown case " + case)

def status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                k, v = line.split(":")
                out[k] = int(v.split()[0]) // 1024
    return out

def main():
    binary, case = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else (3000 if case == "init4096" else 20000)
    p = subprocess.Popen([binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, bufsize=1 << 20)
    def feed():
        buf = []
        size = 0
        for line in lines(case, n):
            buf.append(line + b"\n")
            size += len(line) + 1
            if size >= 1 << 20:
                p.stdin.write(b"".join(buf))
                buf, size = [], 0
        p.stdin.write(b"".join(buf))
        p.stdin.flush()
    t = threading.Thread(target=feed)
    start = time.time()
    t.start()
    replies = 0
    for _ in p.stdout:
        replies += 1
        if replies == n + 1:
            break
    t.join()
    time.sleep(1.0)
    st = status(p.pid)
    p.stdin.close()
    p.wait()
    print("%s n=%d replies=%d VmRSS_after_MiB=%d VmHWM_peak_MiB=%d seconds=%.1f"
          % (case, n, replies, st["VmRSS"], st["VmHWM"], time.time() - start))

main()
