//! Worker threads that scan, each with its own [`Inspector`] (and so its own Hyperscan
//! scratch), fed by a bounded queue that serves clients in turn. Async code awaits a oneshot.
//! A message at or under the pool's inline size is inspected at once on the calling thread
//! (with that thread's own inspector): handing a 1 KB message to another thread and back costs
//! more than scanning it, and a small call then never waits behind another client's large ones.

mod budget;
mod queue;

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;

use budget::InlineBudget;
use queue::FairQueue;

use crate::compile::CompiledRules;
use crate::inspect::{InspectError, Inspection, Inspector};
use crate::mcp::Direction;
use crate::scan::ScanError;
use crate::verdict::Policy;

type Job = Box<dyn FnOnce(&mut Inspector) + Send + 'static>;

/// Why a job could not run on the pool.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PoolError {
    /// The queue holds [`QUEUE_PER_WORKER`] jobs per worker already; the job was not queued.
    #[error("the inspection queue is full")]
    Busy,
    /// The workers are gone (the pool was dropped, or a worker panicked on this job).
    #[error("the worker pool has shut down")]
    Closed,
}

/// Jobs waiting per worker before `Busy` is returned instead of queueing more.
pub const QUEUE_PER_WORKER: usize = 256;

/// Messages up to this many bytes are inspected on the calling thread by default (about 60 us
/// of scanning at the engine's 3.5 ns per byte; a tokio task should not block much longer).
pub const DEFAULT_INLINE_MAX: usize = 16 << 10;

/// The client of a job that names none ([`Pool::run`], [`Pool::inspect`]).
pub const ANY_CLIENT: u64 = 0;

thread_local! {
    /// The calling thread's inspector for inline jobs, made on first use and again when the
    /// rules change (a reload).
    static LOCAL: RefCell<Option<Inspector>> = const { RefCell::new(None) };
}

/// A fixed set of scan worker threads sharing one bounded job queue. Dropping it closes
/// the queue and joins the workers after the queued jobs.
pub struct Pool {
    queue: Arc<FairQueue>,
    workers: Vec<JoinHandle<()>>,
    rules: Arc<CompiledRules>,
    inline_max: usize,
    /// Inline scan time each client has spent lately.
    budget: InlineBudget,
}

/// A job's result: computed already (inline), or to come from a worker.
enum Ticket<R> {
    Done(R),
    Queued(Result<futures_channel::oneshot::Receiver<R>, PoolError>),
}

impl Pool {
    /// Starts `threads` workers (at least one).
    ///
    /// Errors: [`ScanError`] when a worker's Hyperscan scratch cannot be allocated.
    /// Inline size [`DEFAULT_INLINE_MAX`].
    ///
    /// Errors: [`ScanError`] when a worker's Hyperscan scratch cannot be allocated.
    pub fn new(rules: Arc<CompiledRules>, threads: usize) -> Result<Pool, ScanError> {
        let threads = threads.max(1);
        let queue = Arc::new(FairQueue::new(threads * QUEUE_PER_WORKER, threads));
        let mut workers = Vec::with_capacity(threads);
        for n in 0..threads {
            // Allocate scratch before spawning so a failure is reported here, not lost.
            let mut inspector = Inspector::new(rules.clone())?;
            let queue = queue.clone();
            workers.push(
                std::thread::Builder::new()
                    .name(format!("sluice-scan-{n}"))
                    .spawn(move || {
                        yield_to_readers();
                        while let Some((client, job)) = queue.pop() {
                            let ran =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    job(&mut inspector)
                                }));
                            queue.done(client);
                            if let Err(panic) = ran {
                                // The job's oneshot is dropped: its caller sees `Closed`.
                                std::panic::resume_unwind(panic);
                            }
                        }
                    })
                    .expect("spawn scan worker"),
            );
        }
        Ok(Pool {
            queue,
            workers,
            rules,
            inline_max: DEFAULT_INLINE_MAX,
            budget: InlineBudget::new(),
        })
    }

    /// Sets the largest message (bytes) inspected on the calling thread; 0 sends every job
    /// to the workers.
    pub fn with_inline_max(mut self, bytes: usize) -> Pool {
        self.inline_max = bytes;
        self
    }

    /// The largest message (bytes) inspected on the calling thread.
    pub fn inline_max(&self) -> usize {
        self.inline_max
    }

    /// The compiled rules every worker runs.
    pub fn rules(&self) -> &Arc<CompiledRules> {
        &self.rules
    }

    /// The number of worker threads.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Whether every worker is still running (a panicking job ends its worker).
    pub fn is_alive(&self) -> bool {
        self.workers.iter().all(|w| !w.is_finished())
    }

    /// Runs `f` on a worker; the returned future resolves to its result.
    pub fn run<R, F>(&self, f: F) -> impl Future<Output = Result<R, PoolError>>
    where
        R: Send + 'static,
        F: FnOnce(&mut Inspector) -> R + Send + 'static,
    {
        self.run_for(ANY_CLIENT, usize::MAX, f)
    }

    /// Runs `f` for `client` (any stable number naming who sent the work: clients are served
    /// in turn) on work of `bytes` bytes: at once on this thread when `bytes` is at most the
    /// inline size and the client has not spent its inline budget (10 ms of scanning per
    /// 100 ms), else on a worker. The returned future resolves to its result.
    pub fn run_for<R, F>(
        &self,
        client: u64,
        bytes: usize,
        f: F,
    ) -> impl Future<Output = Result<R, PoolError>>
    where
        R: Send + 'static,
        F: FnOnce(&mut Inspector) -> R + Send + 'static,
    {
        let ticket = match self.inline(bytes) && self.budget.allows(client) {
            true => {
                let start = std::time::Instant::now();
                let ran = self.run_here(f);
                self.budget.charge(client, start.elapsed());
                match ran {
                    Ok(r) => Ticket::Done(r),
                    Err(f) => Ticket::Queued(self.queue(client, f)),
                }
            }
            false => Ticket::Queued(self.queue(client, f)),
        };
        async move {
            match ticket {
                Ticket::Done(r) => Ok(r),
                Ticket::Queued(rx) => rx?.await.map_err(|_| PoolError::Closed),
            }
        }
    }

    fn inline(&self, bytes: usize) -> bool {
        bytes <= self.inline_max && self.inline_max > 0
    }

    /// Runs `f` on this thread's inspector for these rules; gives `f` back if none can be
    /// made (no scratch memory), for a worker to run.
    fn run_here<R, F>(&self, f: F) -> Result<R, F>
    where
        F: FnOnce(&mut Inspector) -> R,
    {
        LOCAL.with(|cell| {
            let mut slot = cell.borrow_mut();
            let current = slot
                .as_ref()
                .is_some_and(|i| Arc::ptr_eq(i.rules(), &self.rules));
            if !current {
                match Inspector::new(self.rules.clone()) {
                    Ok(i) => *slot = Some(i),
                    Err(_) => return Err(f),
                }
            }
            let Some(inspector) = slot.as_mut() else {
                return Err(f);
            };
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(inspector))) {
                Ok(r) => Ok(r),
                Err(panic) => {
                    // An inspector a panic left half-way is not reused.
                    *slot = None;
                    std::panic::resume_unwind(panic)
                }
            }
        })
    }

    fn queue<R, F>(
        &self,
        client: u64,
        f: F,
    ) -> Result<futures_channel::oneshot::Receiver<R>, PoolError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Inspector) -> R + Send + 'static,
    {
        let (otx, orx) = futures_channel::oneshot::channel();
        let job: Job = Box::new(move |insp| {
            let _ = otx.send(f(insp));
        });
        self.queue.push(client, job)?;
        Ok(orx)
    }

    /// Inspects one message on a worker.
    pub fn inspect<M>(
        &self,
        msg: M,
        dir: Direction,
        method_hint: Option<String>,
        policy: Arc<Policy>,
    ) -> impl Future<Output = Result<Result<Inspection, InspectError>, PoolError>>
    where
        M: AsRef<[u8]> + Send + 'static,
    {
        self.run(move |insp| insp.inspect(msg.as_ref(), dir, method_hint.as_deref(), &policy))
    }

    /// Inspects one message for `client`: inline when it is small, else on a worker in the
    /// client's turn (see [`run_for`](Self::run_for)).
    pub fn inspect_for<M>(
        &self,
        client: u64,
        msg: M,
        dir: Direction,
        method_hint: Option<String>,
        policy: Arc<Policy>,
    ) -> impl Future<Output = Result<Result<Inspection, InspectError>, PoolError>>
    where
        M: AsRef<[u8]> + Send + 'static,
    {
        let bytes = msg.as_ref().len();
        self.run_for(client, bytes, move |insp| {
            insp.inspect(msg.as_ref(), dir, method_hint.as_deref(), &policy)
        })
    }
}

/// Workers scan the large messages; the threads that read and forward messages (and scan the
/// small ones inline) go first when both want a core, so a flood of large messages delays
/// small calls as little as possible. Linux: this thread becomes SCHED_BATCH (no wake-up
/// preemption of interactive threads) at nice 10 (sched(7), setpriority(2): per thread).
fn yield_to_readers() {
    #[cfg(target_os = "linux")]
    // SAFETY: both calls only change the calling thread's scheduling; failure leaves it as is.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        let _ = libc::sched_setscheduler(0, libc::SCHED_BATCH, &param);
        let _ = libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.queue.close();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
