"""Drives a Streamable HTTP MCP server through sluice with the official SDK client and prints
what the client got as one JSON object.

usage: sdk_http_client.py URL"""
import asyncio
import json
import sys

from mcp import Client

from sdk_stdio_client import AWS, call


async def main():
    async with Client(sys.argv[1]) as client:
        tools = await client.list_tools()
        out = {
            "tools": sorted(t.name for t in tools.tools),
            "clean": await call(client, "echo", {"text": "hello"}),
            "secret_argument": await call(client, "echo", {"text": "key " + AWS}),
            "secret_result": await call(client, "leak", {}),
        }
    print(json.dumps(out))


asyncio.run(main())
