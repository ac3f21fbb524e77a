//! Wall-clock time for the server, behind a trait so the simulator can stall
//! or skew one node's clock without touching the others (madsim has a single
//! global clock).
//!
//! Wall time is used for ctime/mtime of znodes, the seed of session ids and
//! the core's notion of "now" (session deadlines). Intervals (the ticker)
//! are timed with `tokio::time`, which the simulator controls; the ticker
//! asks the clock whether this node's ticks are stalled, so the simulator
//! can freeze one node's timers like a long GC pause (no `Input::Tick`
//! reaches the core: nobody is expired until the stall ends, then the
//! overdue sessions expire in a burst). A real clock never stalls.

/// Milliseconds since the Unix epoch, as this node believes.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;

    /// True while this node's ticks are stalled: the ticker skips its
    /// `Input::Tick`s. Only simulated clocks stall.
    fn ticks_stalled(&self) -> bool {
        false
    }
}

/// The process clock. Under madsim the runtime intercepts it, so it is
/// simulated time there too.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::UNIX_EPOCH
            .elapsed()
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}
