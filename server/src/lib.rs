//! zk-server: the shell around the deterministic core. It owns sockets, the
//! disk, the clock and the configuration, and nothing else: every decision is
//! the core's (see `server/ARCHITECTURE.md`).
//!
//! The same code compiles against real tokio (`cargo real ...`) and against
//! madsim (the default build), where the simulator drives it.

pub mod clock;
pub mod config;
pub mod fourlw;
pub mod fsdisk;
pub mod net;
pub mod peer;
pub mod run;
