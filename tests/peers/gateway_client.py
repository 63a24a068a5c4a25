"""Runs a script of MCP operations through sluice with the official SDK client (mcp 2.x) and
prints one JSON list with what each step got.

usage: gateway_client.py URL KEY STEPS_JSON
  KEY: the Bearer credential to send ("-" for none)
  STEPS_JSON: [["list"], ["call", "tool", {"arg": 1}], ["resources"], ["read", "uri"],
               ["prompts"], ["prompt", "name", {"arg": "v"}], ...]"""
import asyncio
import json
import sys

from mcp import Client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client


async def main():
    url, key, steps = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    headers = {} if key == "-" else {"Authorization": "Bearer " + key}
    transport = streamable_http_client(url, http_client=create_mcp_http_client(headers=headers))
    out = []
    async with Client(transport, cache=None) as client:
        for step in steps:
            try:
                if step[0] == "resources":
                    r = await client.list_resources()
                    out.append({"resources": sorted(str(x.uri) for x in r.resources)})
                elif step[0] == "read":
                    r = await client.read_resource(step[1])
                    out.append({"text": "".join(getattr(c, "text", "") for c in r.contents)})
                elif step[0] == "prompts":
                    r = await client.list_prompts()
                    out.append({"prompts": sorted(p.name for p in r.prompts)})
                elif step[0] == "prompt":
                    r = await client.get_prompt(step[1], step[2])
                    out.append({"messages": len(r.messages)})
                elif step[0] == "list":
                    tools = await client.list_tools()
                    out.append({
                        "tools": sorted(t.name for t in tools.tools),
                        "descriptions": {t.name: t.description for t in tools.tools},
                    })
                else:
                    r = await client.call_tool(step[1], step[2])
                    text = "".join(getattr(c, "text", "") for c in r.content)
                    out.append({"text": text, "is_error": bool(r.is_error)})
            except Exception as e:  # the SDK raises on a JSON-RPC error answer
                out.append({"error": str(e)})
    print(json.dumps(out))


asyncio.run(main())
