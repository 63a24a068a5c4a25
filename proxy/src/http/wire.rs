//! Which HTTP version a connection speaks, decided before hyper reads from it: over TLS from
//! ALPN, over plain TCP by peeking at the first bytes for the HTTP/2 connection preface
//! (RFC 9113 section 3.4) without taking them off the socket.
//!
//! hyper-util's automatic detection reads those bytes itself and hands them to the HTTP/1.1
//! parser separately, which makes the parser grow its read buffer from 8 to 16 KiB on every
//! plain HTTP/1.1 connection, for as long as the connection stays open: an eighth of the
//! memory of an idle SSE stream.

use tokio::net::TcpStream;

/// The HTTP version of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wire {
    Http1,
    Http2,
}

/// What the first bytes of a plain TCP connection say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sniffed {
    /// They are (or are not) the HTTP/2 preface.
    Speaks(Wire),
    /// They are the start of the preface and no more: hyper-util reads on until it can tell.
    Unsure,
    /// The client closed (or the socket failed) before sending a byte.
    Closed,
}

/// The client preface every HTTP/2 connection without TLS starts with (prior knowledge).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What a plain TCP connection speaks, from the bytes queued when its first ones arrive (one
/// peek: a peek returns at once while any byte is queued, so it cannot wait for more). Waits
/// for as long as the client sends nothing: the caller bounds it with the connection's
/// first-request timeout.
pub(super) async fn sniff(stream: &TcpStream) -> Sniffed {
    let mut first = [0u8; PREFACE.len()];
    match stream.peek(&mut first).await {
        Ok(0) | Err(_) => Sniffed::Closed,
        Ok(n) if first[..n] != PREFACE[..n] => Sniffed::Speaks(Wire::Http1),
        Ok(n) if n == PREFACE.len() => Sniffed::Speaks(Wire::Http2),
        Ok(_) => Sniffed::Unsure,
    }
}

/// The version ALPN settled on a TLS connection; `None` when the client offered none (then
/// the first bytes decide, as without TLS).
pub(super) fn alpn(protocol: Option<&[u8]>) -> Option<Wire> {
    match protocol? {
        b"h2" => Some(Wire::Http2),
        b"http/1.1" => Some(Wire::Http1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    /// Sniffs a connection whose client sent `sent` and then stopped (or closed, when empty).
    async fn sniffed(sent: &[u8]) -> Sniffed {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        if sent.is_empty() {
            client.shutdown().await.unwrap();
        } else {
            client.write_all(sent).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let got = sniff(&server).await;
        if !sent.is_empty() {
            // Nothing was taken off the socket.
            let mut left = vec![0u8; sent.len() + 1];
            assert_eq!(server.peek(&mut left).await.unwrap(), sent.len());
        }
        got
    }

    #[tokio::test]
    async fn http1_request_is_http1() {
        let got = sniffed(b"POST /mcp HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(got, Sniffed::Speaks(Wire::Http1));
        assert_eq!(sniffed(b"P").await, Sniffed::Unsure);
        assert_eq!(sniffed(b"PO").await, Sniffed::Speaks(Wire::Http1));
    }

    #[tokio::test]
    async fn preface_is_http2() {
        let mut sent = PREFACE.to_vec();
        sent.extend_from_slice(b"\0\0\0\x04\0\0\0\0\0");
        assert_eq!(sniffed(&sent).await, Sniffed::Speaks(Wire::Http2));
    }

    #[tokio::test]
    async fn start_of_preface_is_unsure() {
        assert_eq!(sniffed(b"PRI * HTTP/2").await, Sniffed::Unsure);
    }

    #[tokio::test]
    async fn close_before_a_byte_is_closed() {
        assert_eq!(sniffed(b"").await, Sniffed::Closed);
    }

    #[test]
    fn alpn_names() {
        assert_eq!(alpn(Some(b"h2")), Some(Wire::Http2));
        assert_eq!(alpn(Some(b"http/1.1")), Some(Wire::Http1));
        assert_eq!(alpn(None), None);
    }
}
