//! Simulation-only fault switches; absent from the real build.
//!
//! The simulator (`sim --sabotage ...`) turns these on to prove that its
//! checkers catch a broken server. Each switch is a deliberate bug. The
//! module exists only under `cfg(madsim)`, so a real server cannot carry
//! one by accident: the field in [`crate::server::ServerConfig`] and every
//! use of it are gated the same way. With every switch off (the default)
//! the server behaves exactly as the real build.

/// Deliberate bugs, all off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bugs {
    /// Drop the N-th watch notification (1-based, counted since the server
    /// started, SetWatches replays included) instead of sending it.
    pub drop_watch_event: Option<u64>,
}
