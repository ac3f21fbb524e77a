//! zk-core: the deterministic heart of the server. No sockets, no clock, no
//! runtime: time arrives as ticks, bytes arrive as inputs, and everything the
//! server must do comes out as effects for the shell to execute in order.

pub mod disk;
pub mod storage;
