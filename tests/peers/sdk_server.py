"""An MCP server built with the official Python SDK (mcp 2.x, MCPServer), run over stdio for
sluice's end-to-end tests. Tool arguments it receives are appended to the file named by its
first argument, so a test can assert what reached the server."""
import sys

from mcp.server.mcpserver import MCPServer

received = open(sys.argv[1], "a", buffering=1)
AWS = "AKIA" + "QX7ZR2M4KD5T6WYB"  # fabricated, assembled so this file holds no key literal

app = MCPServer("sluice-sdk-test")


@app.tool()
def echo(text: str) -> str:
    """Echo the text back."""
    received.write(text + "\n")
    return "echo: " + text


@app.tool()
def leak() -> str:
    """Return the deployment configuration."""
    return "aws_access_key_id=" + AWS


if __name__ == "__main__":
    app.run()
