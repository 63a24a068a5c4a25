//! `sluice stdio -- COMMAND`: the MCP client starts sluice in place of a stdio server; sluice
//! starts the server, inspects every line in both directions, passes the server's stderr
//! through, forwards SIGINT/SIGTERM/SIGHUP, and exits with the server's exit code.
//!
//! A blocked client request is answered by sluice with a JSON-RPC error and never reaches the
//! server; a blocked server message reaches the client as an error in its place; a blocked
//! notification is dropped. A line that cannot be inspected is not forwarded (fail closed)
//! unless the policy fails open.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use sluice_engine::mcp::JsonRpcId;
use sluice_engine::verdict::error_response;
use sluice_engine::{CompiledRules, Direction, InspectError, Inspector, Policy, Verdict};

use crate::audit::{AuditLog, Origin};
use crate::policy::{Caller, Gateway, Runtime};

const STDIO: Origin<'static> = Origin {
    client: Some("stdio"),
    session: None,
    identity: None,
};

pub struct StdioProxy {
    pub rules: Arc<CompiledRules>,
    pub policy: Arc<Policy>,
    pub audit: Option<Arc<AuditLog>>,
    /// The server command and its arguments.
    pub command: Vec<OsString>,
    /// Gateway controls that apply without an HTTP client identity: argument constraints,
    /// sequence rules, egress, tool rates, pins. (Catalogs are per client, and approval needs
    /// the admin API of `serve`: a call that needs approval is refused here.)
    pub gateway: Arc<Gateway>,
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

impl StdioProxy {
    /// Runs until the server exits; returns the exit code to exit with.
    pub fn run(self) -> io::Result<i32> {
        let (program, args) = self.command.split_first().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no server command given")
        })?;
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

        let gate = Arc::new(Gate {
            gateway: self.gateway.clone(),
            runtime: self.runtime.clone(),
            server: format!(
                "stdio:{}",
                self.command
                    .iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            list_requests: Mutex::new(HashMap::new()),
        });
        let c2s = Pump {
            dir: Direction::ClientToServer,
            to: Arc::new(Mutex::new(server_in)),
            back: client_out.clone(),
            policy: self.policy.clone(),
            audit: self.audit.clone(),
            gate: gate.clone(),
        };
        let s2c = Pump {
            dir: Direction::ServerToClient,
            to: client_out.clone(),
            back: client_out,
            policy: self.policy.clone(),
            audit: self.audit,
            gate,
        };
        let rules = self.rules.clone();
        let c2s = thread::Builder::new()
            .name("sluice-client-to-server".into())
            // When the client closes its side, so does sluice: the server sees end of input.
            .spawn(move || c2s.run(io::stdin().lock(), rules))?;
        let rules = self.rules;
        let s2c = thread::Builder::new()
            .name("sluice-server-to-client".into())
            .spawn(move || s2c.run(BufReader::new(server_out), rules))?;
        let status = wait(&mut child)?;
        // The server is gone: its output ends, and the client side stops at the next write.
        let _ = s2c.join();
        drop(c2s);
        Ok(exit_code(status))
    }
}

/// One direction of the wrapper: each line is inspected, then sent on to `to`, or, when sluice
/// answers in its place (a blocked request, a request it could not inspect), to `back`.
struct Pump<T: Write, B: Write> {
    dir: Direction,
    to: Shared<T>,
    back: Shared<B>,
    policy: Arc<Policy>,
    audit: Option<Arc<AuditLog>>,
    gate: Arc<Gate>,
}

/// The gateway controls on the stdio wrapper, shared by both directions.
struct Gate {
    gateway: Arc<Gateway>,
    runtime: Arc<Runtime>,
    /// The key the server's tools are pinned under.
    server: String,
    /// Ids of list requests in flight, so their answers can be filtered and pinned.
    list_requests: Mutex<HashMap<String, String>>,
}

impl Gate {
    fn caller(&self) -> Caller<'_> {
        Caller {
            identity: None,
            key: "stdio",
            session: "stdio",
            upstream: usize::MAX,
            upstream_url: &self.server,
        }
    }

    /// The controls on a client message that passed inspection: `Err` with the JSON-RPC
    /// error to answer in its place.
    fn admit(
        &self,
        rt: &tokio::runtime::Runtime,
        forwarded: &[u8],
        audit: Option<&AuditLog>,
    ) -> Result<(), String> {
        // Without per-message controls, pins or quarantined tools, only a tools/list request
        // matters (its answer may need quarantining): everything else skips the parse.
        let relevant = self.gateway.inspects_messages()
            || self.runtime.pins.is_some()
            || self.runtime.has_quarantine()
            || memchr::memmem::find(forwarded, b"tools/list").is_some();
        if !relevant {
            return Ok(());
        }
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(forwarded) else {
            return Ok(());
        };
        let messages: Vec<&serde_json::Value> = match &v {
            serde_json::Value::Array(a) => a.iter().collect(),
            one => vec![one],
        };
        let caller = self.caller();
        let mut marks = Vec::new();
        for m in &messages {
            let method = m.get("method").and_then(|x| x.as_str()).unwrap_or("");
            if crate::policy::catalog::Kind::of_list(method).is_some() {
                if let Some(id) = m.get("id") {
                    let mut lists = self.list_requests.lock().unwrap_or_else(|e| e.into_inner());
                    if lists.len() < 1024 {
                        lists.insert(id.to_string(), method.to_string());
                    }
                }
            }
            let refused = match rt.block_on(self.gateway.admit(&self.runtime, &caller, m)) {
                Ok(a) if a.hold.is_some() => Some(crate::policy::Denial {
                    control: "approval",
                    message: "this call needs human approval, which `sluice stdio` cannot ask for (run the server behind `sluice serve` with [admin])".into(),
                    retry_after: None,
                }),
                Ok(a) => {
                    marks.extend(a.marks);
                    None
                }
                Err(d) => Some(d),
            };
            if let Some(d) = refused {
                let tool = m.pointer("/params/name").and_then(|x| x.as_str());
                eprintln!("sluice: refused by the {} policy: {}", d.control, d.message);
                if let Some(a) = audit {
                    a.event(
                        "denied",
                        "stdio",
                        STDIO,
                        serde_json::json!({"control": d.control, "reason": d.message, "method": method, "tool": tool}),
                    );
                }
                let id = if messages.len() == 1 {
                    crate::policy::jsonrpc_id(m.get("id"))
                } else {
                    JsonRpcId::Null
                };
                return Err(error_response(
                    &id,
                    d.code(),
                    &format!("{} (sluice {} policy)", d.message, d.control),
                    &[],
                ));
            }
        }
        self.runtime
            .sessions
            .mark("stdio", marks.iter().map(String::as_str));
        Ok(())
    }

    /// What a server message teaches the controls; the replacement when a list was filtered.
    fn learn(
        &self,
        original: &[u8],
        forwarded: &[u8],
        categories: &[&str],
        audit: Option<&AuditLog>,
    ) -> Option<Vec<u8>> {
        let marks = self.gateway.finding_marks(categories.iter().copied());
        self.runtime
            .sessions
            .mark("stdio", marks.iter().map(String::as_str));
        #[derive(serde::Deserialize)]
        struct IdOnly {
            id: Option<serde_json::Value>,
        }
        let id = serde_json::from_slice::<IdOnly>(forwarded).ok()?.id?;
        let method = self
            .list_requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id.to_string())?;
        if method == "tools/list" {
            self.runtime
                .note_tool_list(&self.server, original, forwarded);
        }
        let (out, removed) =
            self.gateway
                .filter_list(&self.runtime, &self.caller(), &method, forwarded)?;
        if let Some(a) = audit {
            let names: Vec<&str> = removed.iter().map(|(n, _)| n.as_str()).collect();
            a.event(
                "filtered",
                "stdio",
                STDIO,
                serde_json::json!({"method": method, "changed_since_approval": names}),
            );
        }
        Some(out)
    }
}

impl<T: Write, B: Write> Pump<T, B> {
    fn run(&self, mut input: impl BufRead, rules: Arc<CompiledRules>) -> io::Result<()> {
        let mut insp = Inspector::new(rules).map_err(io::Error::other)?;
        // The egress guard resolves names: a small runtime of this thread's own.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let policy = &self.policy;
        let mut line = Vec::new();
        while let Some(within_limit) = read_line(&mut input, &mut line, policy.max_message_bytes)? {
            if within_limit && line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let t = Instant::now();
            let result = if within_limit {
                insp.inspect(&line, self.dir, None, policy)
            } else {
                Err(InspectError::TooLarge {
                    size: line.len(),
                    limit: policy.max_message_bytes,
                })
            };
            match result {
                Ok(res) => {
                    if let Some(a) = &self.audit {
                        a.record("stdio", STDIO, self.dir, line.len(), t.elapsed(), &res);
                    }
                    let out: Option<&[u8]> = match &res.verdict {
                        Verdict::Forward => Some(&line),
                        Verdict::Redacted(b) => Some(b),
                        _ => None,
                    };
                    if let Some(out) = out {
                        let audit = self.audit.as_deref();
                        if self.dir == Direction::ClientToServer {
                            match self.gate.admit(&rt, out, audit) {
                                Ok(()) => send(&self.to, out)?,
                                Err(refusal) => send(&self.back, refusal.as_bytes())?,
                            }
                        } else {
                            let cats: Vec<&str> =
                                res.findings.iter().map(|f| f.category.as_str()).collect();
                            match self.gate.learn(&line, out, &cats, audit) {
                                Some(filtered) => send(&self.to, &filtered)?,
                                None => send(&self.to, out)?,
                            }
                        }
                        continue;
                    }
                    match &res.verdict {
                        Verdict::Forward | Verdict::Redacted(_) => {}
                        // A blocked request never reaches the server; the client hears why.
                        // A blocked server message reaches the client as the error.
                        Verdict::Block {
                            response: Some(err),
                        } => send(&self.back, err)?,
                        Verdict::Block { response: None } => {}
                    }
                }
                Err(e) => self.refuse(&line, within_limit, &e)?,
            }
        }
        Ok(())
    }

    /// A line that could not be inspected: forwarded only if the policy fails open (never when
    /// over the size limit); a client's request is answered with the error.
    fn refuse(&self, line: &[u8], within_limit: bool, e: &InspectError) -> io::Result<()> {
        let forward = self.policy.fail_open && within_limit && e.may_fail_open();
        let side = match self.dir {
            Direction::ClientToServer => "client",
            Direction::ServerToClient => "server",
        };
        eprintln!("sluice: {side} message not forwarded: {e}");
        if let Some(a) = &self.audit {
            a.error(
                "stdio",
                STDIO,
                self.dir,
                line.len(),
                &e.to_string(),
                forward,
            );
        }
        if forward {
            send(&self.to, line)
        } else if self.dir == Direction::ClientToServer {
            let msg = format!("sluice could not inspect the message: {e}");
            let err = error_response(&JsonRpcId::Null, e.jsonrpc_code(), &msg, &[]);
            send(&self.back, err.as_bytes())
        } else {
            Ok(())
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
