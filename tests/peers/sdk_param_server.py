"""An MCP server (mcp 2.x, MCPServer) over Streamable HTTP whose tool mirrors two arguments
into Mcp-Param-* headers through `x-mcp-header` (2026-07-28). The SDK checks those headers
against the body and refuses a mismatch (-32020), so a call that succeeds through sluice
proves sluice rewrote the header of the argument it redacted.

usage: sdk_param_server.py RECEIVED_LOG PORT"""
import sys
from typing import Annotated

from pydantic import Field

from mcp.server.mcpserver import MCPServer

received = open(sys.argv[1], "a", buffering=1)
app = MCPServer("sluice-param-test")


@app.tool()
def deploy(
    region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})],
    note: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Note"})],
) -> str:
    """Deploy to a region with a note."""
    received.write(f"{region} {note}\n")
    return f"deployed to {region}: {note}"


app.run(transport="streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
