//! `sluice stdio -- COMMAND`: the MCP client starts sluice in place of a stdio server; sluice
//! starts the server, inspects every line in both directions, passes the server's stderr
//! through, forwards SIGINT/SIGTERM/SIGHUP, and exits with the server's exit code.
//!
//! A blocked client request is answered by sluice with a JSON-RPC error and never reaches the
//! server; a blocked server message reaches the client as an error in its place; a blocked
//! notification is dropped. A line that cannot be inspected is not forwarded (fail closed)
//! unless the policy fails open.

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

use bytes::Bytes;
use sluice_engine::{CompiledRules, Direction, Policy, Pool};

use crate::audit::AuditLog;
use crate::exchange::{Answered, Asked, Exchange, Pending, ReplyKind, Sent, Who};
use crate::live::Live;
use crate::metrics::Metrics;
use crate::policy::{Gateway, Runtime};

/// Inspection workers: one per direction, so a slow answer never holds up a request.
const WORKERS: usize = 2;

/// The stdio front end: runs an MCP server as a child process and inspects its stdin and
/// stdout (MCP spec, Basic > Transports > stdio), one JSON-RPC message per line.
pub struct StdioProxy {
    /// The compiled rules.
    pub rules: Arc<CompiledRules>,
    /// The engine policy.
    pub policy: Arc<Policy>,
    /// Where audit rows go, if anywhere.
    pub audit: Option<Arc<AuditLog>>,
    /// The server command and its arguments.
    pub command: Vec<OsString>,
    /// Gateway controls that apply without an HTTP client identity: argument constraints,
    /// sequence rules, egress, tool rates, pins. (Catalogs are per client, and approval needs
    /// the admin API of `serve`: a call that needs approval is refused here.)
    pub gateway: Arc<Gateway>,
    /// State the controls keep (rates, sessions, pins).
    pub runtime: Arc<Runtime>,
}

type Shared<W> = Arc<Mutex<W>>;

/// Writes one line and flushes it: the peer is waiting for it.
fn send(out: &Shared<impl Write>, line: &[u8]) -> io::Result<()> {
    let mut w = out.lock().unwrap_or_else(|e| e.into_inner());
    w.write_all(line)?;
    w.write_all(b"\n")?;
    w.flush()
}

/// Reads one line of at most `limit` bytes into `buf` (without the newline). `Ok(None)` at end
/// of input; `Ok(Some(false))` for a line over the limit, whose rest is skipped.
fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>, limit: usize) -> io::Result<Option<bool>> {
    buf.clear();
    let n = r.by_ref().take(limit as u64 + 1).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        return Ok(Some(true));
    }
    if buf.len() > limit {
        // Skip to the end of the oversized line without holding it.
        let mut sink = Vec::new();
        loop {
            sink.clear();
            let m = r.by_ref().take(1 << 16).read_until(b'\n', &mut sink)?;
            if m == 0 || sink.last() == Some(&b'\n') {
                break;
            }
        }
        return Ok(Some(false));
    }
    Ok(Some(true))
}

/// What both directions share: the exchange, the rules and controls, the one client, and the
/// requests waiting for answers.
struct Session {
    exchange: Exchange,
    live: Live,
    who: Who,
    pending: Pending,
}

impl StdioProxy {
    /// Runs until the server exits; returns the exit code to exit with.
    pub fn run(self) -> io::Result<i32> {
        let (program, args) = self.command.split_first().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no server command given")
        })?;
        let pool = Pool::new(self.rules.clone(), WORKERS).map_err(io::Error::other)?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot start {}: {e}", program.to_string_lossy()),
                )
            })?;
        forward_signals(child.id())?;
        let client_out: Shared<io::Stdout> = Arc::new(Mutex::new(io::stdout()));
        let server_in = child.stdin.take().expect("piped stdin");
        let server_out = child.stdout.take().expect("piped stdout");
        let server = format!(
            "stdio:{}",
            self.command
                .iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let session = Arc::new(Session {
            // No admin API here to approve a held call: such calls are refused.
            exchange: Exchange::new(
                self.runtime,
                self.audit,
                Arc::new(Metrics::default()),
                sluice_engine::sse::DEFAULT_EVENT_CAP,
                false,
            ),
            live: Live {
                pool: Arc::new(pool),
                policy: self.policy,
                gateway: self.gateway,
                generation: 1,
            },
            who: Who::stdio(server),
            pending: Pending::default(),
        });
        let c2s = Pump {
            dir: Direction::ClientToServer,
            to: Arc::new(Mutex::new(server_in)),
            back: client_out.clone(),
            session: session.clone(),
        };
        let s2c = Pump {
            dir: Direction::ServerToClient,
            to: client_out.clone(),
            back: client_out,
            session,
        };
        let c2s = thread::Builder::new()
            .name("sluice-client-to-server".into())
            // When the client closes its side, so does sluice: the server sees end of input.
            .spawn(move || c2s.run(io::stdin().lock()))?;
        let s2c = thread::Builder::new()
            .name("sluice-server-to-client".into())
            .spawn(move || s2c.run(BufReader::new(server_out)))?;
        let status = wait(&mut child)?;
        // The server is gone: its output ends, and the client side stops at the next write.
        let _ = s2c.join();
        drop(c2s);
        Ok(exit_code(status))
    }
}

/// One direction of the wrapper: each line goes through the exchange, then on to `to`, or,
/// when sluice answers in its place (a blocked or refused request, one it could not
/// inspect), back to the client.
struct Pump<T: Write, B: Write> {
    dir: Direction,
    to: Shared<T>,
    back: Shared<B>,
    session: Arc<Session>,
}

impl<T: Write, B: Write> Pump<T, B> {
    fn run(&self, mut input: impl BufRead) -> io::Result<()> {
        // Controls may wait (the egress guard resolves names): a small runtime of this
        // thread's own.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let s = &*self.session;
        let limit = s.live.policy.max_message_bytes;
        let mut line = Vec::new();
        while let Some(within_limit) = read_line(&mut input, &mut line, limit)? {
            if !within_limit {
                eprintln!(
                    "sluice: {} message over the {limit}-byte limit not forwarded",
                    self.side()
                );
                let reply = s.exchange.oversized(&s.who, self.dir, line.len(), limit);
                if self.dir == Direction::ClientToServer {
                    send(&self.back, &reply.body)?;
                }
                continue;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let bytes = Bytes::copy_from_slice(&line);
            match self.dir {
                Direction::ClientToServer => self.request(&rt, bytes)?,
                Direction::ServerToClient => self.answer(&rt, bytes)?,
            }
        }
        Ok(())
    }

    fn side(&self) -> &'static str {
        match self.dir {
            Direction::ClientToServer => "client",
            Direction::ServerToClient => "server",
        }
    }

    /// A client's message: forwarded, answered in the server's place, or dropped.
    fn request(&self, rt: &tokio::runtime::Runtime, bytes: Bytes) -> io::Result<()> {
        let s = &*self.session;
        match rt.block_on(s.exchange.request(&s.live, &s.who, bytes)) {
            Sent::Forward { bytes, asked, .. } => {
                if let (Some(id), Some(method)) = (&asked.id, &asked.method) {
                    s.pending.note(id, method);
                }
                send(&self.to, &bytes)
            }
            Sent::Reply(reply) => {
                match reply.kind {
                    ReplyKind::Denied(c) | ReplyKind::Limited(c, _) => {
                        eprintln!("sluice: refused by the {} policy", c.as_str())
                    }
                    ReplyKind::Blocked => {}
                    _ => {
                        eprintln!("sluice: client message not forwarded: it could not be inspected")
                    }
                }
                send(&self.back, &reply.body)
            }
            Sent::Drop => Ok(()),
        }
    }

    /// A server's message: an answer (inspected with its request's method as hint), a
    /// request or a notification.
    fn answer(&self, rt: &tokio::runtime::Runtime, bytes: Bytes) -> io::Result<()> {
        let s = &*self.session;
        let id = Pending::message_id(&bytes);
        let asked = Asked {
            method: id.as_ref().and_then(|id| s.pending.take(id)),
            tool: None,
            id,
        };
        match rt.block_on(s.exchange.answer(&s.live, &s.who, &asked, bytes)) {
            Answered::Send(b) if b.is_empty() => Ok(()), // a blocked notification
            Answered::Send(b) => send(&self.to, &b),
            Answered::Reply(reply) => {
                eprintln!("sluice: server message not forwarded: it could not be inspected");
                // An answer's client is waiting for it: it gets the error under its id.
                match asked.id {
                    Some(_) => send(&self.to, &reply.body),
                    None => Ok(()),
                }
            }
        }
    }
}

fn forward_signals(pid: u32) -> io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    thread::Builder::new()
        .name("sluice-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                // SAFETY: kill(2) with the child's pid and a valid signal number.
                unsafe {
                    libc::kill(pid as libc::pid_t, sig);
                }
            }
        })?;
    Ok(())
}

fn wait(child: &mut Child) -> io::Result<ExitStatus> {
    loop {
        match child.wait() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_line_bounds_memory_and_skips_oversized_lines() {
        let data = b"short\nthis line is far too long\nok\r\nlast";
        let mut r = io::BufReader::new(&data[..]);
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut r, &mut buf, 10).unwrap(), Some(true));
        assert_eq!(buf, b"short");
        assert_eq!(read_line(&mut r, &mut buf, 10).unwrap(), Some(false));
        assert_eq!(read_line(&mut r, &mut buf, 10).unwrap(), Some(true));
        assert_eq!(buf, b"ok");
        assert_eq!(read_line(&mut r, &mut buf, 10).unwrap(), Some(true));
        assert_eq!(buf, b"last");
        assert_eq!(read_line(&mut r, &mut buf, 10).unwrap(), None);
    }
}
