//! The deterministic simulation testbed: runs the real server
//! (`zkserver::run::run_with_status`, one server or a 3–5 server ensemble) inside madsim with scripted faults, drives client
//! workloads through the project's own client, records a history and judges
//! it with independent checkers. See `sim/ARCHITECTURE.md`.

#[cfg(madsim)]
pub mod bugmap;
pub mod check;
pub mod client;
#[cfg(madsim)]
pub mod coverage;
pub mod failover;
pub mod faultdisk;
pub mod history;
pub mod html;
#[cfg(madsim)]
pub mod hunt;
pub mod plot;
pub mod probe;
#[cfg(madsim)]
pub mod regress;
pub mod report;
#[cfg(madsim)]
pub mod runner;
pub mod scenario;
#[cfg(madsim)]
pub mod shrink;
pub mod simclock;
#[cfg(madsim)]
pub mod sweep;
#[cfg(madsim)]
pub mod workload;
