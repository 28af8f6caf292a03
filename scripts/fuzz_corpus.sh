#!/usr/bin/env bash
# Regenerates the fuzz targets' seed corpora from the request lines of the end-to-end tests:
# runs them with GOSSIP_KV_DUMP_INPUT (tests/node_process.h appends every input line there),
# then keeps distinct lines up to 16 KiB as tests/fuzz/corpus/line_decoder/<sha1>, and the
# `entries` member of each kv_merge line as tests/fuzz/corpus/merge_entries/<sha1>.
# Usage: scripts/fuzz_corpus.sh [build dir with bin/gossip_kv_tests, default build]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
dump=$(mktemp)
trap 'rm -f "$dump"' EXIT
GOSSIP_KV_DUMP_INPUT="$dump" "$build/bin/gossip_kv_tests" \
  --gtest_filter='SampleCase.*:Envelope.*:Kv.*:KvMerge.*:Errors.*:Bench.*:Hardening*' >/dev/null
python3 - "$dump" <<'PY'
import hashlib, json, os, sys
lines = open(sys.argv[1], 'rb').read().split(b'\n')
def put(folder, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, hashlib.sha1(data).hexdigest()), 'wb') as f:
        f.write(data)
seen = set()
for line in lines:
    if not line or len(line) > 16384 or line in seen:
        continue
    seen.add(line)
    put('tests/fuzz/corpus/line_decoder', line)
    try:
        body = json.loads(line).get('body', {})
    except Exception:
        continue
    if isinstance(body, dict) and body.get('type') == 'kv_merge' and 'entries' in body:
        put('tests/fuzz/corpus/merge_entries',
            json.dumps(body['entries']).encode())
PY
echo "line_decoder: $(ls tests/fuzz/corpus/line_decoder | wc -l) seeds," \
     "merge_entries: $(ls tests/fuzz/corpus/merge_entries | wc -l) seeds"
