"""An HTTP upstream that answers every POST with a JSON-RPC result whose text is the request's
Mcp-Param-* headers and body arguments, as JSON, so a test sees exactly what reached it.

usage: echo_headers_server.py PORT"""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        seen = {
            "headers": {k.lower(): v for k, v in self.headers.items() if k.lower().startswith("mcp-param-")},
            "arguments": body.get("params", {}).get("arguments"),
        }
        out = json.dumps({"jsonrpc": "2.0", "id": body.get("id"),
                          "result": {"content": [{"type": "text", "text": json.dumps(seen)}]}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
