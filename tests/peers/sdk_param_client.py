"""Calls the `deploy` tool of sdk_param_server.py through sluice with the SDK client, which
mirrors the annotated arguments into Mcp-Param-* headers, and prints what it got as JSON.

usage: sdk_param_client.py URL"""
import asyncio
import json
import sys

from mcp import Client

from sdk_stdio_client import AWS, call


async def main():
    async with Client(sys.argv[1]) as client:
        await client.list_tools()  # the client learns which arguments to mirror
        out = {
            "clean": await call(client, "deploy", {"region": "eu-west-1", "note": "routine"}),
            "secret": await call(client, "deploy", {"region": "eu-west-1", "note": "key " + AWS}),
        }
    print(json.dumps(out))


asyncio.run(main())
