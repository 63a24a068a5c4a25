"""The SDK test server (sdk_server.py's tools) over Streamable HTTP.

usage: sdk_http_server.py RECEIVED_LOG PORT json|sse [gzip]

With `gzip`, the app sits behind Starlette's GZipMiddleware set to compress every answer,
SSE included, whenever the client's Accept-Encoding allows it."""
import sys

sys.argv = [sys.argv[0], sys.argv[1]] + sys.argv[2:]
import sdk_server  # noqa: E402  (tools are registered on import)

port, mode = int(sys.argv[2]), sys.argv[3]
if sys.argv[4:] == ["gzip"]:
    import uvicorn
    from starlette.middleware.gzip import GZipMiddleware

    app = sdk_server.app.streamable_http_app(json_response=(mode == "json"))
    uvicorn.run(
        GZipMiddleware(app, minimum_size=0, exclude_content_types=()),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
else:
    sdk_server.app.run(transport="streamable-http", host="127.0.0.1", port=port, json_response=(mode == "json"))
