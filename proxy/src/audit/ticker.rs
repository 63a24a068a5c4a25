//! A thread that runs a job every interval until stopped: the audit checkpoint's clock. A
//! thread rather than a task, because `sluice stdio` has no async runtime.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The running thread; dropping it stops the thread and waits for it.
pub(super) struct Ticker {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Runs `job` every `interval` on a thread named `name`.
    pub(super) fn start(
        name: &str,
        interval: Duration,
        job: impl Fn() + Send + 'static,
    ) -> std::io::Result<Ticker> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let (lock, wake) = &*flag;
                let mut stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                let mut next = Instant::now() + interval;
                while !*stopped {
                    let left = next.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        drop(stopped);
                        job();
                        next = Instant::now() + interval;
                        stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                        continue;
                    }
                    stopped = wake
                        .wait_timeout(stopped, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            })?;
        Ok(Ticker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        let (lock, wake) = &*self.stop;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
