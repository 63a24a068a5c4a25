"""The session-based MCP Python SDK (mcp 1.x, protocol 2025-*) on both ends of sluice over
Streamable HTTP: stateful sessions (Mcp-Session-Id), SSE answers, the GET stream, DELETE.

usage: sdk1_http.py server RECEIVED_LOG PORT [streamable-http|sse]
       sdk1_http.py client URL [streamable-http|sse]

`sse` is the legacy HTTP+SSE transport (2024-11-05): a GET stream whose first event names the
URL to POST to, and every answer on that stream."""
import asyncio
import json
import sys

AWS = "AKIA" + "QX7ZR2M4KD5T6WYB"  # fabricated


def server(received_path, port, transport):
    from mcp.server.fastmcp import Context, FastMCP

    received = open(received_path, "a", buffering=1)
    app = FastMCP("sluice-sdk1-test", host="127.0.0.1", port=port)

    @app.tool()
    async def echo(text: str, ctx: Context) -> str:
        """Echo the text back."""
        received.write(text + "\n")
        await ctx.info("echoing " + text)  # a log notification on the same SSE answer
        return "echo: " + text

    @app.tool()
    def leak() -> str:
        """Return the deployment configuration."""
        return "aws_access_key_id=" + AWS

    app.run(transport=transport)


async def client(url, transport):
    from mcp import ClientSession
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamablehttp_client

    logs = []

    async def on_log(params):
        logs.append(params.data)

    async def call(session, name, args):
        try:
            r = await session.call_tool(name, args)
            return {"text": "".join(getattr(c, "text", "") for c in r.content), "is_error": r.isError}
        except Exception as e:
            return {"error": str(e)}

    if transport == "sse":
        connect, session_of = sse_client(url), (lambda streams: True)
    else:
        connect, session_of = streamablehttp_client(url), (lambda streams: streams[2]() is not None)
    async with connect as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write, logging_callback=on_log) as session:
            init = await session.initialize()
            tools = await session.list_tools()
            out = {
                "protocol": init.protocolVersion,
                "session": session_of(streams),
                "tools": sorted(t.name for t in tools.tools),
                "clean": await call(session, "echo", {"text": "hello"}),
                "secret_argument": await call(session, "echo", {"text": "key " + AWS}),
                "secret_result": await call(session, "leak", {}),
            }
    out["logs"] = logs
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "streamable-http")
    else:
        asyncio.run(client(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "streamable-http"))
