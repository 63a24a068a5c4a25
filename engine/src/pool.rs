//! Worker threads that scan, each with its own [`Inspector`] (and so its own Hyperscan
//! scratch), fed through a bounded crossbeam channel. Async code awaits a oneshot, so the
//! proxy's I/O threads never scan.

use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Sender, TrySendError};

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

/// A fixed set of scan worker threads sharing one bounded job queue. Dropping it closes
/// the queue and joins the workers after the queued jobs.
pub struct Pool {
    tx: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    rules: Arc<CompiledRules>,
}

impl Pool {
    /// Starts `threads` workers (at least one).
    ///
    /// Errors: [`ScanError`] when a worker's Hyperscan scratch cannot be allocated.
    pub fn new(rules: Arc<CompiledRules>, threads: usize) -> Result<Pool, ScanError> {
        let threads = threads.max(1);
        let (tx, rx) = bounded::<Job>(threads * QUEUE_PER_WORKER);
        let mut workers = Vec::with_capacity(threads);
        for n in 0..threads {
            // Allocate scratch before spawning so a failure is reported here, not lost.
            let mut inspector = Inspector::new(rules.clone())?;
            let rx = rx.clone();
            workers.push(
                std::thread::Builder::new()
                    .name(format!("sluice-scan-{n}"))
                    .spawn(move || {
                        for job in rx.iter() {
                            job(&mut inspector);
                        }
                    })
                    .expect("spawn scan worker"),
            );
        }
        Ok(Pool {
            tx: Some(tx),
            workers,
            rules,
        })
    }

    /// The compiled rules every worker runs.
    pub fn rules(&self) -> &Arc<CompiledRules> {
        &self.rules
    }

    /// The number of worker threads.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Whether every worker is still running (a panicking job would end its worker).
    pub fn is_alive(&self) -> bool {
        self.tx.is_some() && self.workers.iter().all(|w| !w.is_finished())
    }

    /// Runs `f` on a worker; the returned future resolves to its result.
    pub fn run<R, F>(&self, f: F) -> impl Future<Output = Result<R, PoolError>>
    where
        R: Send + 'static,
        F: FnOnce(&mut Inspector) -> R + Send + 'static,
    {
        let (otx, orx) = futures_channel::oneshot::channel();
        let job: Job = Box::new(move |insp| {
            let _ = otx.send(f(insp));
        });
        let sent = match &self.tx {
            Some(tx) => match tx.try_send(job) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(_)) => Err(PoolError::Busy),
                Err(TrySendError::Disconnected(_)) => Err(PoolError::Closed),
            },
            None => Err(PoolError::Closed),
        };
        async move {
            sent?;
            orx.await.map_err(|_| PoolError::Closed)
        }
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
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.tx.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
