"""The SDK test server (sdk_server.py's tools) over Streamable HTTP.

usage: sdk_http_server.py RECEIVED_LOG PORT json|sse"""
import sys

sys.argv = [sys.argv[0], sys.argv[1]] + sys.argv[2:]
import sdk_server  # noqa: E402  (tools are registered on import)

port, mode = int(sys.argv[2]), sys.argv[3]
sdk_server.app.run(transport="streamable-http", host="127.0.0.1", port=port, json_response=(mode == "json"))
