"""Drives `sluice stdio -- python3 sdk_server.py` with the official Python SDK client
(mcp.Client) and prints what the client got as one JSON object.

usage: sdk_stdio_client.py SLUICE MODE SERVER_SCRIPT RECEIVED_LOG"""
import asyncio
import json
import sys

from mcp import Client, StdioServerParameters

AWS = "AKIA" + "QX7ZR2M4KD5T6WYB"  # fabricated


def text_of(result):
    return "".join(getattr(c, "text", "") for c in result.content)


async def call(client, name, args):
    try:
        result = await client.call_tool(name, args)
        return {"text": text_of(result), "is_error": bool(result.is_error)}
    except Exception as e:  # the SDK raises on a JSON-RPC error response
        return {"error": str(e)}


async def main():
    sluice, mode, server, log = sys.argv[1:5]
    params = StdioServerParameters(
        command=sluice, args=["stdio", "--mode", mode, "--", sys.executable, server, log]
    )
    async with Client(params) as client:
        tools = await client.list_tools()
        out = {
            "tools": sorted(t.name for t in tools.tools),
            "clean": await call(client, "echo", {"text": "hello"}),
            "secret_argument": await call(client, "echo", {"text": "key " + AWS}),
            "secret_result": await call(client, "leak", {}),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
