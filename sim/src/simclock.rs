//! A per-node clock the simulator can stall and skew (madsim has one global
//! clock, so per-node time lives here, outside the node: it survives kills).
//!
//! - **Tick stall** (`clock_stall`): while the stall count is above zero the
//!   server's ticker skips its `Input::Tick`s (see
//!   `zkserver::clock::Clock::ticks_stalled`), like a node whose timer
//!   thread is stuck in a long GC pause while its network threads still
//!   run. A stalled server expires no session; when the stall ends, the
//!   overdue ones expire in a burst at the next tick.
//! - **Skew** (`clock_skew`): an offset added to the node's wall clock
//!   (ctime/mtime, and the core's "now").
//!
//! Invariants: stalls nest (a count, so overlapping stall faults end
//! independently); skews add up; `skipped_ticks` only grows.

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use zkserver::clock::{Clock, SystemClock};

#[derive(Debug, Default)]
struct State {
    stalls: AtomicU32,
    skew_ms: AtomicI64,
    skipped_ticks: AtomicU64,
}

/// Shared handle: the server node holds one clone, the supervisor another.
#[derive(Debug, Default, Clone)]
pub struct SimClock {
    state: Arc<State>,
}

impl SimClock {
    pub fn new() -> SimClock {
        SimClock::default()
    }

    /// Start a tick stall (nests).
    pub fn stall(&self) {
        self.state.stalls.fetch_add(1, Ordering::SeqCst);
    }

    /// End one tick stall.
    pub fn unstall(&self) {
        let prev = self.state.stalls.fetch_sub(1, Ordering::SeqCst);
        assert!(prev > 0, "unstall without a stall");
    }

    /// Move this node's wall clock by `ms` (negative: back).
    pub fn add_skew(&self, ms: i64) {
        self.state.skew_ms.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn skew_ms(&self) -> i64 {
        self.state.skew_ms.load(Ordering::SeqCst)
    }

    /// Ticks the server's ticker skipped because of stalls, so far.
    pub fn skipped_ticks(&self) -> u64 {
        self.state.skipped_ticks.load(Ordering::SeqCst)
    }
}

impl Clock for SimClock {
    fn now_ms(&self) -> i64 {
        SystemClock.now_ms() + self.skew_ms()
    }

    fn ticks_stalled(&self) -> bool {
        let stalled = self.state.stalls.load(Ordering::SeqCst) > 0;
        if stalled {
            self.state.skipped_ticks.fetch_add(1, Ordering::SeqCst);
        }
        stalled
    }
}
