#!/usr/bin/env python3
"""gossip-kv behind a proxy that lies about its convergence figures, for gossip-bench's tests.

Runs the gossip-kv binary given as the first argument (the rest are its flags) and passes
every line through unchanged, except bench_figures_ok replies: each figure becomes 0 ms, earlier
than any write can have reached another replica. The runner must catch it.
"""
import json
import subprocess
import sys
import threading


def main():
    node = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def forward_input():
        for line in sys.stdin:
            node.stdin.write(line)
            node.stdin.flush()
        node.stdin.close()

    threading.Thread(target=forward_input, daemon=True).start()
    for line in node.stdout:
        if '"bench_figures_ok"' in line:
            msg = json.loads(line)
            msg["body"]["figures"] = [[ts, 0] for ts, _ in msg["body"]["figures"]]
            line = json.dumps(msg) + "\n"
        sys.stdout.write(line)
        sys.stdout.flush()
    sys.exit(node.wait())


if __name__ == "__main__":
    main()
