"""Seeds for the cargo-fuzz targets, from a labelled corpus on stdin (`sluice corpus generate`)
and the default ruleset, so the fuzzers start from real MCP shapes instead of nothing.

usage: sluice corpus generate --benign 200 | python3 fuzz/seeds.py fuzz/corpus"""
import hashlib
import json
import os
import sys

root = sys.argv[1]


def put(target, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


for line in sys.stdin:
    entry = json.loads(line)
    msg = json.dumps(entry["message"], separators=(",", ":")).encode()
    if len(msg) > 4000:
        continue
    put("inspect_message", msg)
    # One SSE event carrying the message; the first byte picks the cut.
    put("sse_chunks", bytes([len(msg) % 251]) + b"event: message\ndata: " + msg + b"\n\n")
    for string in [v for v in json.dumps(entry["message"]).split('"') if len(v) > 12][:3]:
        put("block_vs_stream", bytes([7, 19]) + string.encode())

import glob
rules = "".join(open(f).read() for f in sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "rulesets", "*.toml"))))
for block in rules.split("[[rule]]")[1:]:
    put("ruleset_load", ("[[rule]]" + block).encode())
