"""An HTTP/3 client built on aioquic's H3Connection: POSTs JSON-RPC messages to a URL over QUIC
and prints, as one JSON object, what came back for each (status, headers, body, and when the
answer was an event stream, the time each event arrived relative to the first).

usage: h3_client.py URL CA_FILE REQUEST [REQUEST ...]
A REQUEST is a JSON-RPC body to POST, METHOD (GET, DELETE) for a request without one, or
CANCEL:BODY to POST BODY, wait for the first bytes of the answer, then reset the stream.
H3_AUTH in the environment is sent as the Authorization header."""
import asyncio
import json
import os
import sys
import time
from urllib.parse import urlparse

from aioquic.asyncio import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration


class Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.waiting = {}

    def quic_event_received(self, event):
        for e in self.h3.handle_event(event):
            stream = self.waiting.get(getattr(e, "stream_id", None))
            if stream is None:
                continue
            if isinstance(e, DataReceived) and stream.get("cancel"):
                stream["first"].set()
            if isinstance(e, HeadersReceived):
                stream["headers"] = {k.decode(): v.decode() for k, v in e.headers}
            elif isinstance(e, DataReceived):
                stream["body"] += e.data
                stream["chunks"].append(time.monotonic())
            if getattr(e, "stream_ended", False):
                stream["done"].set()

    async def send(self, url, request, session):
        u = urlparse(url)
        sid = self._quic.get_next_available_stream_id()
        st = {"headers": {}, "body": b"", "chunks": [], "done": asyncio.Event()}
        self.waiting[sid] = st
        cancel = request.startswith("CANCEL:")
        if cancel:
            request = request[len("CANCEL:"):]
            st["cancel"], st["first"] = True, asyncio.Event()
        method = request if request in ("GET", "DELETE") else "POST"
        headers = [
            (b":method", method.encode()), (b":scheme", b"https"),
            (b":authority", u.netloc.encode()), (b":path", (u.path or "/").encode()),
            (b"accept", b"application/json, text/event-stream"),
        ]
        if session:
            headers.append((b"mcp-session-id", session.encode()))
        if os.environ.get("H3_AUTH"):
            headers.append((b"authorization", os.environ["H3_AUTH"].encode()))
        if method == "POST":
            headers.append((b"content-type", b"application/json"))
            self.h3.send_headers(sid, headers)
            self.h3.send_data(sid, request.encode(), end_stream=True)
        else:
            self.h3.send_headers(sid, headers, end_stream=True)
        self.transmit()
        if cancel:
            await asyncio.wait_for(st["first"].wait(), 20)
            self._quic.reset_stream(sid, 0x10C)  # H3_REQUEST_CANCELLED
            self._quic.stop_stream(sid, 0x10C)
            self.transmit()
            await asyncio.sleep(0.2)
            return {"status": int(st["headers"].get(":status", "0")), "headers": st["headers"],
                    "body": st["body"].decode(errors="replace"), "chunks": len(st["chunks"])}
        await asyncio.wait_for(st["done"].wait(), 20)
        return {
            "status": int(st["headers"].get(":status", "0")),
            "headers": st["headers"],
            "body": st["body"].decode(errors="replace"),
            "chunks": len(st["chunks"]),
        }


async def main():
    url, ca, bodies = sys.argv[1], sys.argv[2], sys.argv[3:]
    u = urlparse(url)
    cfg = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name=u.hostname)
    cfg.load_verify_locations(ca)
    async with connect(u.hostname, u.port, configuration=cfg, create_protocol=Client) as client:
        out, session = [], None
        for b in bodies:
            r = await client.send(url, b, session)
            session = r["headers"].get("mcp-session-id", session)
            out.append(r)
    print(json.dumps(out))


asyncio.run(main())
