//! What a reload swaps: the compiled rules (on their worker pool), the engine policy and the
//! gateway controls, as one unit. A request takes the current unit once when it starts and
//! keeps it to the end, so in-flight requests finish on the policy they started with.

use std::sync::{Arc, RwLock};

use sluice_engine::{Policy, Pool};

use crate::policy::Gateway;

/// The rules, policy and gateway one request runs with.
pub struct Live {
    /// Inspection workers running the compiled rules.
    pub pool: Arc<Pool>,
    /// The engine policy.
    pub policy: Arc<Policy>,
    /// The gateway controls built from the config.
    pub gateway: Arc<Gateway>,
    /// 1 at start, +1 per successful reload.
    pub generation: u64,
}

/// The current [`Live`], shared by every front end and swapped whole on reload.
#[derive(Clone)]
pub struct LiveHandle(Arc<RwLock<Arc<Live>>>);

impl LiveHandle {
    /// A handle holding `live`.
    pub fn new(live: Live) -> LiveHandle {
        LiveHandle(Arc::new(RwLock::new(Arc::new(live))))
    }

    /// The unit in use now; a request takes it once and keeps it to the end.
    pub fn current(&self) -> Arc<Live> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Installs `live` as the next generation; returns its number.
    pub fn swap(&self, mut live: Live) -> u64 {
        let mut cur = self.0.write().unwrap_or_else(|e| e.into_inner());
        live.generation = cur.generation + 1;
        let g = live.generation;
        *cur = Arc::new(live);
        g
    }
}
