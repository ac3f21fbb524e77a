//! zk-core: the deterministic heart of the server. No sockets, no clock, no
//! runtime: time arrives as ticks, bytes arrive as inputs, and everything the
//! server must do comes out as effects for the shell to execute in order.
//!
//! - [`tree`]: the data tree and transaction application.
//! - [`prep`]: request → transaction, against pending changes.
//! - [`session`], [`watch`], [`acl`], [`path`]: the rules each names.
//! - [`server`]: the standalone server state machine tying them together.
//! - [`disk`], [`storage`]: the disk contract, the transaction log,
//!   snapshots and recovery.

pub mod acl;
#[cfg(madsim)]
pub mod bugs;
pub mod cover;
pub mod disk;
pub mod path;
pub mod prep;
pub mod recovery;
pub mod server;
pub mod session;
pub mod storage;
pub mod tree;
pub mod watch;
pub mod zab;

/// A client connection, numbered by the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);
