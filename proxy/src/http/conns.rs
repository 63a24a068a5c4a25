//! Open client connections over TCP: how many each client address holds, which are idle, and
//! when an idle one is closed. A connection that has sent no request within the header timeout
//! of opening, or none within the idle timeout after its last answer, is closed; when every slot
//! is taken, the longest-idle connection is closed for the next client (nginx does the same with
//! its keep-alive connections), so idle sockets cannot lock callers out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Every open connection, by id, and the count per client address.
pub(super) struct Conns {
    /// Connections one client address may hold at once; 0 is no limit.
    per_client: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    open: HashMap<u64, Weak<Activity>>,
    per_ip: HashMap<IpAddr, usize>,
}

/// What the registry and a connection's watchdog share about one connection.
pub(super) struct Activity {
    /// Requests being served, counted until their answer's body is done.
    in_flight: AtomicUsize,
    /// When the connection last became idle (opened, or its last answer finished).
    idle_since: Mutex<Instant>,
    /// Whether a request was ever served: the first one has the header timeout to arrive.
    served: AtomicBool,
    /// Set when the registry closes this connection for a waiting client.
    evicted: AtomicBool,
    /// Woken on every change the watchdog must see.
    changed: Notify,
}

/// A connection's place in the registry; dropping it frees the place.
pub(super) struct Registration {
    conns: Arc<Conns>,
    id: u64,
    ip: IpAddr,
    /// The connection's activity, for its requests and its watchdog.
    pub activity: Arc<Activity>,
}

impl Conns {
    /// A registry allowing `per_client` connections per address (0: no limit).
    pub fn new(per_client: usize) -> Arc<Self> {
        Arc::new(Conns {
            per_client,
            inner: Mutex::new(Inner::default()),
        })
    }

    /// Registers a connection from `ip`, or `None` when that address holds its limit.
    pub fn register(self: &Arc<Self>, ip: IpAddr) -> Option<Registration> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let held = inner.per_ip.get(&ip).copied().unwrap_or(0);
        if self.per_client > 0 && held >= self.per_client {
            return None;
        }
        let activity = Arc::new(Activity {
            in_flight: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            served: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            changed: Notify::new(),
        });
        let id = inner.next;
        inner.next += 1;
        inner.open.insert(id, Arc::downgrade(&activity));
        inner.per_ip.insert(ip, held + 1);
        Some(Registration {
            conns: self.clone(),
            id,
            ip,
            activity,
        })
    }

    /// Asks the longest-idle connection other than `waiting` (the one that needs the room)
    /// to close; false when every other connection is busy.
    pub fn evict_idle(&self, waiting: &Registration) -> bool {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let oldest = inner
            .open
            .iter()
            .filter(|(id, _)| **id != waiting.id)
            .filter_map(|(_, a)| a.upgrade())
            .filter(|a| {
                a.in_flight.load(Ordering::Acquire) == 0 && !a.evicted.load(Ordering::Acquire)
            })
            .min_by_key(|a| *a.idle_since.lock().unwrap_or_else(|p| p.into_inner()));
        match oldest {
            Some(a) => {
                a.evicted.store(true, Ordering::Release);
                a.changed.notify_one();
                true
            }
            None => false,
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut inner = self.conns.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.open.remove(&self.id);
        if let Some(n) = inner.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                inner.per_ip.remove(&self.ip);
            }
        }
    }
}

/// Held while one request is served (until its answer's body ends or is dropped).
pub(super) struct InFlight(Arc<Activity>);

impl Activity {
    /// Marks a request as being served until the returned guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.served.store(true, Ordering::Release);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_one();
        InFlight(self.clone())
    }

    /// Resolves when the connection should close: evicted, or idle past its timeout
    /// (`first` before any request, `idle` after one).
    pub async fn expired(&self, first: Duration, idle: Duration) {
        loop {
            let changed = self.changed.notified();
            if self.evicted.load(Ordering::Acquire) {
                return;
            }
            if self.in_flight.load(Ordering::Acquire) > 0 {
                changed.await;
                continue;
            }
            let limit = if self.served.load(Ordering::Acquire) {
                idle
            } else {
                first
            };
            let since = *self.idle_since.lock().unwrap_or_else(|p| p.into_inner());
            tokio::select! {
                _ = tokio::time::sleep_until(since + limit) => {
                    if self.in_flight.load(Ordering::Acquire) == 0 {
                        return;
                    }
                }
                _ = changed => {}
            }
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            *self.0.idle_since.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        }
        self.0.changed.notify_one();
    }
}

/// An answer's body that keeps its request in flight until it is sent or dropped; its size
/// and end pass through, so a known length still goes out as `Content-Length`.
pub(super) struct Held {
    body: super::respond::Body,
    _in_flight: InFlight,
}

impl Held {
    /// `body`, holding `in_flight` as long as it lives.
    pub fn new(body: super::respond::Body, in_flight: InFlight) -> Self {
        Held {
            body,
            _in_flight: in_flight,
        }
    }
}

impl hyper::body::Body for Held {
    type Data = bytes::Bytes;
    type Error = super::respond::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn per_client_limit_counts_open_connections() {
        let conns = Conns::new(2);
        let a = conns.register(LOCAL).unwrap();
        let _b = conns.register(LOCAL).unwrap();
        assert!(conns.register(LOCAL).is_none());
        let other = "192.0.2.1".parse().unwrap();
        assert!(conns.register(other).is_some());
        drop(a);
        assert!(conns.register(LOCAL).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn idle_connection_expires_after_its_timeout_but_not_while_serving() {
        let conns = Conns::new(0);
        let r = conns.register(LOCAL).unwrap();
        let a = r.activity.clone();
        let t = Instant::now();
        a.expired(Duration::from_secs(10), Duration::from_secs(60))
            .await;
        assert_eq!(
            t.elapsed(),
            Duration::from_secs(10),
            "first request timeout"
        );
        let serving = a.begin();
        let waiting = tokio::spawn({
            let a = a.clone();
            async move {
                a.expired(Duration::from_secs(10), Duration::from_secs(60))
                    .await
            }
        });
        tokio::time::sleep(Duration::from_secs(300)).await;
        assert!(!waiting.is_finished(), "a request in flight keeps it open");
        let done = Instant::now();
        drop(serving);
        waiting.await.unwrap();
        assert_eq!(
            done.elapsed(),
            Duration::from_secs(60),
            "idle timeout after a request"
        );
    }

    #[tokio::test]
    async fn eviction_picks_the_longest_idle_and_skips_busy_ones() {
        let conns = Conns::new(0);
        let busy = conns.register(LOCAL).unwrap();
        let _serving = busy.activity.begin();
        let old = conns.register(LOCAL).unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let young = conns.register(LOCAL).unwrap();
        let waiting = conns.register(LOCAL).unwrap();
        assert!(conns.evict_idle(&waiting));
        let long = Duration::from_secs(3600);
        tokio::time::timeout(Duration::from_secs(1), old.activity.expired(long, long))
            .await
            .expect("the oldest idle connection is told to close");
        assert!(!young.activity.evicted.load(Ordering::Acquire));
        assert!(!busy.activity.evicted.load(Ordering::Acquire));
        assert!(conns.evict_idle(&waiting), "the younger idle one is next");
        assert!(
            !conns.evict_idle(&waiting),
            "only a busy connection is left"
        );
        assert!(!waiting.activity.evicted.load(Ordering::Acquire));
    }
}
