#!/usr/bin/env python3
"""An upstream MCP server for the gateway tests, built with the official MCP
Python SDK (`mcp.server.mcpserver.MCPServer`, FastMCP's name since mcp 2).

    mcp_upstream.py PORT [--record FILE] [--path /mcp] [--json-response] [--stateless]

Serves the Streamable HTTP transport on 127.0.0.1:PORT at `--path` (default
`/mcp`; `/` works too). PORT 0 picks a free port. Once the socket listens it
prints `LISTENING <port>` on stdout (flushed), so a test can read the port;
connections made from then on wait in the backlog until the app is up.

Tools: `echo(text) -> text`, `add(a, b) -> a + b`, and `delete_repo(repo)`,
the one a gateway policy is meant to forbid (it answers `deleted <repo>`, so a
call that got through is plain to see). One resource, `config://upstream`
(the text `upstream config`), and one prompt, `greet(name)`.

`--record FILE` (or $MCP_UPSTREAM_RECORD) appends one JSON line per HTTP
request received, written when the response starts (or when the request ends
without one):
    {"method", "path", "query", "headers": {lowercased name: value, ...},
     "status", "body"}
`headers` keeps every header as received (repeated ones joined with ", "), so
a test can check that the agent's `Authorization` was replaced by the upstream
credential. `body` is the request body parsed as JSON when it is JSON (the
JSON-RPC message or batch), else the text, else null; bodies over 64 KiB are
left out (`"body_bytes": N` instead).

`--json-response` answers POSTs with `application/json` instead of an SSE
stream (the SDK's default). `--stateless` issues no `Mcp-Session-Id`
(every request stands alone); the default is the SDK's stateful mode, where
the gateway has to carry `Mcp-Session-Id` both ways. DNS-rebinding protection
(the SDK turns it on for 127.0.0.1 and would refuse a Host header other than
127.0.0.1:*/localhost:*) is off, so a proxy may forward any Host.
"""

import argparse
import asyncio
import json
import os
import socket
import sys

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

MAX_RECORDED_BODY = 64 * 1024

mcp = MCPServer("mandate-interop-upstream", version="1.0.0")


@mcp.tool()
def echo(text: str) -> str:
    """Returns the text unchanged."""
    return text


@mcp.tool()
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


@mcp.tool()
def delete_repo(repo: str) -> str:
    """Deletes a repository (pretend): the tool a policy forbids."""
    return f"deleted {repo}"


@mcp.resource("config://upstream", name="upstream-config", mime_type="text/plain")
def upstream_config() -> str:
    """A fixed text resource."""
    return "upstream config"


@mcp.prompt()
def greet(name: str) -> str:
    """A one-line prompt."""
    return f"Say hello to {name}."


class Recorder:
    """ASGI middleware: one JSON line per HTTP request, appended to `path`."""

    def __init__(self, app, path):
        self.app = app
        self.path = path

    def _write(self, record):
        line = json.dumps(record, separators=(",", ":")) + "\n"
        # One write per line on a file opened for append: lines from
        # concurrent requests do not interleave.
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {}
        for name, value in scope["headers"]:
            k, v = name.decode("latin-1").lower(), value.decode("latin-1")
            headers[k] = f"{headers[k]}, {v}" if k in headers else v
        record = {
            "method": scope["method"],
            "path": scope["path"],
            "query": scope.get("query_string", b"").decode("latin-1"),
            "headers": headers,
            "status": None,
        }
        chunks = []
        written = False

        def finish():
            nonlocal written
            if written:
                return
            written = True
            body = b"".join(chunks)
            if len(body) > MAX_RECORDED_BODY:
                record["body"] = None
                record["body_bytes"] = len(body)
            elif not body:
                record["body"] = None
            else:
                try:
                    record["body"] = json.loads(body)
                except ValueError:
                    record["body"] = body.decode("utf-8", "replace")
            self._write(record)

        async def recv():
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        async def snd(message):
            if message["type"] == "http.response.start":
                record["status"] = message["status"]
                finish()
            await send(message)

        try:
            await self.app(scope, recv, snd)
        finally:
            finish()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("port", type=int)
    p.add_argument("--record", default=os.environ.get("MCP_UPSTREAM_RECORD"))
    p.add_argument("--path", default="/mcp", help="the MCP endpoint's path (default /mcp)")
    p.add_argument("--json-response", action="store_true")
    p.add_argument("--stateless", action="store_true")
    p.add_argument("--log-level", default="warning")
    args = p.parse_args()

    app = mcp.streamable_http_app(
        streamable_http_path=args.path,
        json_response=args.json_response,
        stateless_http=args.stateless,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    if args.record:
        app = Recorder(app, args.record)

    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on the accepted
    # sockets only then (without it a keep-alive answer waits 40 ms on Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    print(f"LISTENING {sock.getsockname()[1]}", flush=True)

    config = uvicorn.Config(app, log_level=args.log_level, lifespan="on", access_log=False)
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


if __name__ == "__main__":
    sys.exit(main())
