//! Wall-clock time for the server, behind a trait so the simulator can stall
//! or skew one node's clock without touching the others (madsim has a single
//! global clock).
//!
//! Wall time is used only for what ZooKeeper uses it for: ctime/mtime of
//! znodes and the seed of session ids. Intervals (ticks, timeouts) are timed
//! with `tokio::time`, which the simulator controls.

/// Milliseconds since the Unix epoch, as this node believes.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
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
