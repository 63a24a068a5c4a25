//! Open client connections over TCP: how many each client address holds, which are idle, and
//! when one is closed. A connection that has sent no request within the header timeout of
//! opening, or none within the idle timeout after its last answer, is closed; so is one whose
//! client has not taken the next piece of an answer within the send timeout (nginx's
//! `send_timeout`: an HTTP/2 client that opens no flow-control window, or an HTTP/1.1 client
//! that stops reading, would otherwise hold its answer, and its slot, forever). When every
//! slot is taken, the longest-idle connection is closed for the next client (nginx does the
//! same with its keep-alive connections), or failing that the one whose client has left an
//! answer untaken longest, so neither idle nor stalled sockets can lock callers out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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
    /// When the connection last became idle (given its slot, or its last answer finished).
    idle_since: Mutex<Instant>,
    /// Whether it holds a slot: one still waiting for its slot is neither timed nor evicted.
    admitted: AtomicBool,
    /// Whether a request was ever served: the first one has the header timeout to arrive.
    served: AtomicBool,
    /// Set when the registry closes this connection for a waiting client.
    evicted: AtomicBool,
    /// Answers whose last piece waits for the client to take it, by answer id, since when.
    untaken: Mutex<HashMap<u64, Instant>>,
    /// The next answer id.
    next_answer: AtomicU64,
    /// Woken on every change the watchdog must see.
    changed: Notify,
}

/// Why a connection's watchdog says it must close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Close {
    /// No request within the header timeout of opening, or none within the idle timeout.
    Idle,
    /// Chosen by the registry to make room for a new client.
    Evicted,
    /// The client has not taken a piece of an answer within the send timeout.
    Stalled,
}

/// The watchdog's timeouts.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    /// Before the first request.
    pub first: Duration,
    /// With no request in flight, after one.
    pub idle: Duration,
    /// For the client to take the next piece of an answer.
    pub send: Duration,
}

impl Timeouts {
    /// The `[limits]` that bound a client connection.
    pub fn of(limits: &crate::config::Limits) -> Self {
        Timeouts {
            first: limits.client_header_timeout,
            idle: limits.client_idle_timeout,
            send: limits.client_send_timeout,
        }
    }
}

/// An answer left untaken this long may be closed for a new client when no connection is
/// idle: long enough that a client reading at any pace has taken something.
const EVICT_UNTAKEN_AFTER: Duration = Duration::from_secs(1);

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
            admitted: AtomicBool::new(false),
            served: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            untaken: Mutex::new(HashMap::new()),
            next_answer: AtomicU64::new(0),
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

    /// Asks one connection other than `waiting` (the one that needs the room) to close: the
    /// longest idle, else the one whose client has left an answer untaken longest (at least
    /// [`EVICT_UNTAKEN_AFTER`]); false when every other connection is busy and reading.
    pub fn evict_idle(&self, waiting: &Registration) -> bool {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let oldest = inner
            .open
            .iter()
            .filter(|(id, _)| **id != waiting.id)
            .filter_map(|(_, a)| a.upgrade())
            .filter(|a| a.admitted.load(Ordering::Acquire) && !a.evicted.load(Ordering::Acquire))
            .filter_map(|a| {
                let rank = if a.in_flight.load(Ordering::Acquire) == 0 {
                    (0, *a.idle_since.lock().unwrap_or_else(|p| p.into_inner()))
                } else {
                    let since = a.oldest_untaken()?;
                    (now.duration_since(since) >= EVICT_UNTAKEN_AFTER).then_some((1, since))?
                };
                Some((rank, a))
            })
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, a)| a);
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
    /// The connection got its slot: its time to send a first request counts from now, not
    /// from when it was accepted and waited for room.
    pub fn admit(&self) {
        *self.idle_since.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.admitted.store(true, Ordering::Release);
        self.changed.notify_one();
    }

    /// Marks a request as being served until the returned guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.served.store(true, Ordering::Release);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_one();
        InFlight(self.clone())
    }

    /// Whether a request is being served.
    pub fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }

    /// Whether a piece of an answer waits for the client to take it.
    pub fn untaken(&self) -> bool {
        self.oldest_untaken().is_some()
    }

    /// Since when the longest-untaken answer piece has waited for the client, if one does.
    fn oldest_untaken(&self) -> Option<Instant> {
        let untaken = self.untaken.lock().unwrap_or_else(|p| p.into_inner());
        untaken.values().min().copied()
    }

    /// Resolves when the connection should close, and why: evicted, idle past its timeout
    /// (`first` before any request, `idle` after one), or an answer untaken for `send`.
    pub async fn expired(&self, t: Timeouts) -> Close {
        loop {
            let changed = self.changed.notified();
            if self.evicted.load(Ordering::Acquire) {
                return Close::Evicted;
            }
            let (deadline, why) = if self.busy() {
                match self.oldest_untaken() {
                    Some(since) => (since + t.send, Close::Stalled),
                    None => {
                        changed.await;
                        continue;
                    }
                }
            } else {
                let limit = if self.served.load(Ordering::Acquire) {
                    t.idle
                } else {
                    t.first
                };
                let since = *self.idle_since.lock().unwrap_or_else(|p| p.into_inner());
                (since + limit, Close::Idle)
            };
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {
                    let still = match why {
                        Close::Stalled => self
                            .oldest_untaken()
                            .is_some_and(|since| since + t.send <= Instant::now()),
                        _ => !self.busy(),
                    };
                    if still {
                        return why;
                    }
                }
                _ = changed => {}
            }
        }
    }

    /// A new answer on this connection, whose first piece waits for the client from now.
    fn answer(self: &Arc<Self>) -> u64 {
        let id = self.next_answer.fetch_add(1, Ordering::Relaxed);
        self.set_untaken(id, true);
        id
    }

    /// Records that answer `id` has a piece waiting for the client (or no longer has).
    fn set_untaken(&self, id: u64, waiting: bool) {
        let mut untaken = self.untaken.lock().unwrap_or_else(|p| p.into_inner());
        if waiting {
            let first = untaken.is_empty();
            untaken.insert(id, Instant::now());
            drop(untaken);
            if first {
                self.changed.notify_one();
            }
        } else {
            untaken.remove(&id);
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

/// An answer's body that keeps its request in flight until it is sent or dropped, and tells
/// the watchdog when a piece of it waits for the client (from when it was produced until
/// hyper asks for the next: hyper asks only once the client has room for more). Its size and
/// end pass through, so a known length still goes out as `Content-Length`.
pub(super) struct Held {
    body: super::respond::Body,
    in_flight: InFlight,
    /// This answer's id in the connection's untaken set.
    id: u64,
    /// Whether a piece (or the head) waits for the client.
    untaken: bool,
}

impl Held {
    /// `body`, holding `in_flight` as long as it lives; its head waits for the client now.
    pub fn new(body: super::respond::Body, in_flight: InFlight) -> Self {
        let id = in_flight.0.answer();
        Held {
            body,
            in_flight,
            id,
            untaken: true,
        }
    }

    fn set_untaken(&mut self, waiting: bool) {
        if self.untaken != waiting {
            self.untaken = waiting;
            self.in_flight.0.set_untaken(self.id, waiting);
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.set_untaken(false);
    }
}

impl hyper::body::Body for Held {
    type Data = bytes::Bytes;
    type Error = super::respond::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        self.set_untaken(false);
        let polled = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(_))) = &polled {
            self.set_untaken(true);
        }
        polled
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

    fn timeouts(first: u64, idle: u64, send: u64) -> Timeouts {
        Timeouts {
            first: Duration::from_secs(first),
            idle: Duration::from_secs(idle),
            send: Duration::from_secs(send),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn idle_connection_expires_after_its_timeout_but_not_while_serving() {
        let conns = Conns::new(0);
        let r = conns.register(LOCAL).unwrap();
        let a = r.activity.clone();
        let t = Instant::now();
        assert_eq!(a.expired(timeouts(10, 60, 5)).await, Close::Idle);
        assert_eq!(
            t.elapsed(),
            Duration::from_secs(10),
            "first request timeout"
        );
        let serving = a.begin();
        let waiting = tokio::spawn({
            let a = a.clone();
            async move { a.expired(timeouts(10, 60, 5)).await }
        });
        tokio::time::sleep(Duration::from_secs(300)).await;
        assert!(!waiting.is_finished(), "a request in flight keeps it open");
        let done = Instant::now();
        drop(serving);
        assert_eq!(waiting.await.unwrap(), Close::Idle);
        assert_eq!(
            done.elapsed(),
            Duration::from_secs(60),
            "idle timeout after a request"
        );
    }

    /// Polls `held` once, as hyper does when the client has room for more.
    fn take(held: &mut Held) -> bool {
        use hyper::body::Body as _;
        let mut cx = std::task::Context::from_waker(futures_util::task::noop_waker_ref());
        matches!(
            std::pin::Pin::new(held).poll_frame(&mut cx),
            std::task::Poll::Ready(Some(Ok(_)))
        )
    }

    fn streaming_body() -> (tokio::sync::mpsc::Sender<bytes::Bytes>, Held, Arc<Activity>) {
        let conns = Conns::new(0);
        let r = conns.register(LOCAL).unwrap();
        let a = r.activity.clone();
        let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(4);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            let b = rx.recv().await?;
            Some((Ok::<_, std::io::Error>(hyper::body::Frame::data(b)), rx))
        });
        let body = super::super::respond::boxed(http_body_util::StreamBody::new(stream));
        let held = Held::new(body, a.begin());
        std::mem::forget(r);
        (tx, held, a)
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_the_client_does_not_take_closes_after_the_send_timeout() {
        let (tx, mut held, a) = streaming_body();
        let t = Instant::now();
        assert_eq!(a.expired(timeouts(10, 60, 5)).await, Close::Stalled);
        assert_eq!(t.elapsed(), Duration::from_secs(5), "head never taken");

        // Taken: waiting on the upstream is not the client's fault, however long.
        assert!(!take(&mut held));
        let waiting = tokio::spawn({
            let a = a.clone();
            async move { a.expired(timeouts(10, 60, 5)).await }
        });
        tokio::time::sleep(Duration::from_secs(300)).await;
        assert!(!waiting.is_finished(), "an answer waiting on its upstream");
        tx.send(bytes::Bytes::from_static(b"data: 1\n\n"))
            .await
            .unwrap();
        assert!(
            take(&mut held),
            "a piece is produced and waits for the client"
        );
        let produced = Instant::now();
        assert_eq!(waiting.await.unwrap(), Close::Stalled);
        assert_eq!(produced.elapsed(), Duration::from_secs(5));
        drop(held);
        assert!(
            a.oldest_untaken().is_none(),
            "a dropped answer waits for nobody"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_keeps_taking_is_never_stalled() {
        let (tx, mut held, a) = streaming_body();
        let waiting = tokio::spawn({
            let a = a.clone();
            async move { a.expired(timeouts(10, 60, 5)).await }
        });
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_secs(3)).await;
            take(&mut held);
            tx.send(bytes::Bytes::from_static(b"x")).await.unwrap();
        }
        assert!(
            !waiting.is_finished(),
            "each piece taken within the send timeout"
        );
    }

    #[tokio::test]
    async fn eviction_picks_the_longest_idle_and_skips_busy_ones() {
        let conns = Conns::new(0);
        let busy = admitted(&conns);
        let _serving = busy.activity.begin();
        let old = admitted(&conns);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let young = admitted(&conns);
        let waiting = conns.register(LOCAL).unwrap();
        assert!(conns.evict_idle(&waiting));
        let long = timeouts(3600, 3600, 3600);
        let why = tokio::time::timeout(Duration::from_secs(1), old.activity.expired(long))
            .await
            .expect("the oldest idle connection is told to close");
        assert_eq!(why, Close::Evicted);
        assert!(!young.activity.evicted.load(Ordering::Acquire));
        assert!(!busy.activity.evicted.load(Ordering::Acquire));
        assert!(conns.evict_idle(&waiting), "the younger idle one is next");
        assert!(
            !conns.evict_idle(&waiting),
            "only a busy connection is left"
        );
        assert!(!waiting.activity.evicted.load(Ordering::Acquire));
        // One that still waits for its slot is not idle: it has not had a chance to ask.
        let newer = conns.register(LOCAL).unwrap();
        drop(young);
        assert!(
            !conns.evict_idle(&newer),
            "a waiting connection is not evicted"
        );
        assert!(!waiting.activity.evicted.load(Ordering::Acquire));
    }

    /// A connection that holds its slot.
    fn admitted(conns: &Arc<Conns>) -> Registration {
        let r = conns.register(LOCAL).unwrap();
        r.activity.admit();
        r
    }

    #[tokio::test(start_paused = true)]
    async fn with_none_idle_an_answer_left_untaken_is_evicted() {
        let conns = Conns::new(0);
        let reading = admitted(&conns);
        let _serving = reading.activity.begin();
        let stalled = admitted(&conns);
        let held = Held::new(super::super::respond::full("x"), stalled.activity.begin());
        let waiting = conns.register(LOCAL).unwrap();
        let _w = waiting.activity.begin();
        assert!(
            !conns.evict_idle(&waiting),
            "untaken for less than a second"
        );
        tokio::time::sleep(EVICT_UNTAKEN_AFTER).await;
        assert!(conns.evict_idle(&waiting));
        assert!(stalled.activity.evicted.load(Ordering::Acquire));
        assert!(!reading.activity.evicted.load(Ordering::Acquire));
        drop(held);
    }
}
