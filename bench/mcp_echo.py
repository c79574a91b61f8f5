#!/usr/bin/env python3
"""Times MCP `tools/call` of `echo` over Streamable HTTP, one request at a time.

    mcp_echo.py URL [--requests N] [--warmup N] [--token TOKEN]

POSTs the JSON-RPC `tools/call` {"name": "echo", "arguments": {"text": "hello"}}
N times on one keep-alive connection, each as a stand-alone request at
protocol 2025-06-18 (no session: the upstream runs `--stateless
--json-response`), with `Authorization: Bearer TOKEN` when given. Every answer
must be 200 with the JSON-RPC result `hello`. Prints one line:
    requests/s R  p50 X ms  p90 X ms  p99 X ms  requests N  errors E
(the first few failures go to stderr). Sequential on purpose: the figure is
the per-call latency a proxy adds, not a throughput; the Python client's own
time is in it and is the same on both sides of the comparison.
"""

import argparse
import http.client
import json
import socket
import sys
import time
from urllib.parse import urlsplit

BODY = json.dumps(
    {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hello"}}}
).encode()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--token")
    args = p.parse_args()

    u = urlsplit(args.url)
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-06-18",
        "Mcp-Method": "tools/call",
        "Mcp-Name": "echo",
    }
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=30)
    conn.connect()
    # Headers and body leave in one write, but without TCP_NODELAY a delayed
    # ACK can still hold a segment for 40 ms.
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    path = u.path or "/"

    def once():
        conn.request("POST", path, body=BODY, headers=headers)
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            return f"HTTP {r.status} {data[:200]!r}"
        text = data.decode()
        if r.getheader("content-type", "").startswith("text/event-stream"):
            text = next((line[5:] for line in text.splitlines() if line.startswith("data:")), "")
        try:
            msg = json.loads(text)
            if msg["result"]["content"][0]["text"] != "hello":
                return f"unexpected result {text[:200]}"
        except (ValueError, KeyError, IndexError, TypeError):
            return f"not a tools/call result: {text[:200]}"
        return None

    for _ in range(args.warmup):
        once()
    times, errors = [], 0
    start = time.perf_counter()
    for _ in range(args.requests):
        t0 = time.perf_counter()
        err = once()
        times.append(time.perf_counter() - t0)
        if err:
            errors += 1
            if errors <= 3:
                print(err, file=sys.stderr)
    total = time.perf_counter() - start
    times.sort()

    def pct(q):
        return times[min(len(times) - 1, int(q / 100 * len(times)))] * 1000

    print(
        f"requests/s {len(times) / total:.0f}  p50 {pct(50):.2f} ms  p90 {pct(90):.2f} ms  "
        f"p99 {pct(99):.2f} ms  requests {len(times)}  errors {errors}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
