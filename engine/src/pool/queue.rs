//! The pool's job queue: one FIFO per client, served in turn, so a client that queues many
//! expensive messages delays another client's by at most one job per worker, not by its
//! whole backlog (round robin over clients, as in fair queueing with a quantum of one job).

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex};

use super::{Job, PoolError};

/// Jobs per client, the order in which clients with waiting jobs are served, and how many
/// workers each client occupies.
pub(super) struct FairQueue {
    state: Mutex<State>,
    ready: Condvar,
    /// Jobs waiting in all, beyond which `push` answers `Busy`.
    capacity: usize,
    /// Workers one client may occupy while another client's job waits.
    per_client: usize,
}

#[derive(Default)]
struct State {
    waiting: HashMap<u64, VecDeque<Job>>,
    turn: VecDeque<u64>,
    running: HashMap<u64, usize>,
    queued: usize,
    closed: bool,
}

impl FairQueue {
    /// A queue of at most `capacity` waiting jobs for `workers` workers.
    pub fn new(capacity: usize, workers: usize) -> Self {
        FairQueue {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
            capacity,
            per_client: workers.saturating_sub(1).max(1),
        }
    }

    /// Queues `job` for `client`. Errors: `Busy` when full, `Closed` after [`close`](Self::close).
    pub fn push(&self, client: u64, job: Job) -> Result<(), PoolError> {
        let mut s = self.lock();
        if s.closed {
            return Err(PoolError::Closed);
        }
        if s.queued >= self.capacity {
            return Err(PoolError::Busy);
        }
        let jobs = s.waiting.entry(client).or_default();
        jobs.push_back(job);
        if jobs.len() == 1 {
            s.turn.push_back(client);
        }
        s.queued += 1;
        drop(s);
        self.ready.notify_one();
        Ok(())
    }

    /// The next job for a worker and the client it runs for, waiting while there is none;
    /// `None` once closed and drained. The worker reports the job's end with
    /// [`done`](Self::done).
    pub fn pop(&self) -> Option<(u64, Job)> {
        let mut s = self.lock();
        loop {
            if let Some(picked) = self.pick(&mut s) {
                return Some(picked);
            }
            if s.closed {
                return None;
            }
            s = self.ready.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The first client in turn below its share of the workers, else the first in turn (no
    /// worker stays idle while a job waits).
    fn pick(&self, s: &mut State) -> Option<(u64, Job)> {
        let below = s
            .turn
            .iter()
            .position(|c| s.running.get(c).copied().unwrap_or(0) < self.per_client);
        let at = below.or(if s.turn.is_empty() { None } else { Some(0) })?;
        let client = s.turn.remove(at)?;
        let jobs = s.waiting.get_mut(&client)?;
        let job = jobs.pop_front()?;
        if jobs.is_empty() {
            s.waiting.remove(&client);
        } else {
            s.turn.push_back(client);
        }
        s.queued -= 1;
        *s.running.entry(client).or_default() += 1;
        Some((client, job))
    }

    /// A worker finished a job of `client`.
    pub fn done(&self, client: u64) {
        let mut s = self.lock();
        if let Some(n) = s.running.get_mut(&client) {
            *n -= 1;
            if *n == 0 {
                s.running.remove(&client);
            }
        }
        let waiting = !s.turn.is_empty();
        drop(s);
        if waiting {
            // A job skipped while its client was at its share may run now.
            self.ready.notify_one();
        }
    }

    /// No more jobs are accepted; workers finish what is queued, then stop.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn job(log: &Arc<Mutex<Vec<&'static str>>>, name: &'static str) -> Job {
        let log = log.clone();
        Box::new(move |_| log.lock().unwrap().push(name))
    }

    #[test]
    fn clients_are_served_in_turn_not_in_arrival_order() {
        let q = FairQueue::new(100, 1);
        let log = Arc::new(Mutex::new(Vec::new()));
        for name in ["a1", "a2", "a3"] {
            q.push(1, job(&log, name)).unwrap();
        }
        q.push(2, job(&log, "b1")).unwrap();
        q.push(2, job(&log, "b2")).unwrap();
        let order: Vec<u64> = (0..5)
            .map(|_| {
                let (c, _) = q.pop().unwrap();
                q.done(c);
                c
            })
            .collect();
        assert_eq!(order, [1, 2, 1, 2, 1]);
    }

    #[test]
    fn a_busy_client_leaves_a_worker_for_others() {
        // Two workers: client 1 holds one; its next job waits behind client 2's.
        let q = FairQueue::new(100, 2);
        let log = Arc::new(Mutex::new(Vec::new()));
        q.push(1, job(&log, "a1")).unwrap();
        q.push(1, job(&log, "a2")).unwrap();
        let (first, _) = q.pop().unwrap();
        assert_eq!(first, 1);
        q.push(2, job(&log, "b1")).unwrap();
        let (second, _) = q.pop().unwrap();
        assert_eq!(second, 2, "client 1 is at its share of the workers");
        // Alone, a client may still use every worker.
        let (third, _) = q.pop().unwrap();
        assert_eq!(third, 1);
    }

    #[test]
    fn full_and_closed_queues_refuse_jobs() {
        let q = FairQueue::new(1, 1);
        let log = Arc::new(Mutex::new(Vec::new()));
        q.push(1, job(&log, "a")).unwrap();
        assert_eq!(q.push(2, job(&log, "b")).unwrap_err(), PoolError::Busy);
        q.close();
        assert_eq!(q.push(3, job(&log, "c")).unwrap_err(), PoolError::Closed);
        assert!(q.pop().is_some(), "queued jobs are still served");
        assert!(q.pop().is_none());
    }
}
