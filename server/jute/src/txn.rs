//! Transactions: the state changes the server logs, replicates and applies.
//!
//! A transaction is a [`TxnHeader`] plus a [`Txn`] body. Every write request,
//! successful or not, becomes exactly one transaction with its own zxid
//! (a failed write becomes [`Txn::Error`]), so replaying the log in zxid order
//! rebuilds the tree exactly, including the stored child counters.
//!
//! The layout is this project's own (clients never see it): a `Create` carries
//! the final `ephemeral_owner` encoding (session id, container or TTL marker)
//! and the parent's new child counter, so that replay is idempotent as
//! ZooKeeper's CreateTxn is.

use crate::codec::{write_buffer, write_i32, Reader, Record};
use crate::codes::op;
use crate::records::Acl;
use crate::{record, JuteError, Result};

record!(
    /// Per-transaction metadata; `op` is the opcode of the body.
    TxnHeader {
        session_id: i64 = long,
        cxid: i32 = int,
        zxid: i64 = long,
        time_ms: i64 = long,
        op: i32 = int,
    }
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Txn {
    /// Any create. `ephemeral_owner` is the stored (not client-visible)
    /// owner: a session id, [`CONTAINER_OWNER`], a TTL encoding, or 0.
    Create {
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        ephemeral_owner: i64,
        parent_cversion: i32,
    },
    Delete {
        path: String,
    },
    /// Deletion by the container/TTL reaper (opcode 20).
    DeleteContainer {
        path: String,
    },
    /// `version` is the node's new version.
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        version: i32,
    },
    /// `version` is the node's new aversion.
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
    CreateSession {
        timeout_ms: i32,
    },
    CloseSession,
    Error {
        err: i32,
    },
    Multi(Vec<Txn>),
}

/// Stored ephemeral owner of a container node.
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// High byte marking a TTL node's stored ephemeral owner; the low 40 bits hold the TTL.
pub const TTL_MARKER: i64 = 0xFF00_0000_0000_0000u64 as i64;
/// Largest TTL accepted (2^40 - 1 ms).
pub const TTL_MAX_MS: i64 = 0xFF_FFFF_FFFF;

impl Txn {
    pub fn op(&self) -> i32 {
        match self {
            Txn::Create { .. } => op::CREATE,
            Txn::Delete { .. } => op::DELETE,
            Txn::DeleteContainer { .. } => op::DELETE_CONTAINER,
            Txn::SetData { .. } => op::SET_DATA,
            Txn::SetAcl { .. } => op::SET_ACL,
            Txn::Check { .. } => op::CHECK,
            Txn::CreateSession { .. } => op::CREATE_SESSION,
            Txn::CloseSession => op::CLOSE_SESSION,
            Txn::Error { .. } => op::ERROR,
            Txn::Multi(_) => op::MULTI,
        }
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        use crate::codec::{write_i64, write_nbuffer, write_string, write_vec};
        match self {
            Txn::Create {
                path,
                data,
                acl,
                ephemeral_owner,
                parent_cversion,
            } => {
                write_string(out, path);
                write_nbuffer(out, data);
                write_vec(out, acl);
                write_i64(out, *ephemeral_owner);
                write_i32(out, *parent_cversion);
            }
            Txn::Delete { path } | Txn::DeleteContainer { path } => write_string(out, path),
            Txn::SetData {
                path,
                data,
                version,
            } => {
                write_string(out, path);
                write_nbuffer(out, data);
                write_i32(out, *version);
            }
            Txn::SetAcl { path, acl, version } => {
                write_string(out, path);
                write_vec(out, acl);
                write_i32(out, *version);
            }
            Txn::Check { path, version } => {
                write_string(out, path);
                write_i32(out, *version);
            }
            Txn::CreateSession { timeout_ms } => write_i32(out, *timeout_ms),
            Txn::CloseSession => {}
            Txn::Error { err } => write_i32(out, *err),
            Txn::Multi(txns) => {
                write_i32(out, txns.len() as i32);
                for t in txns {
                    write_i32(out, t.op());
                    let mut body = Vec::new();
                    t.write(&mut body);
                    write_buffer(out, &body);
                }
            }
        }
    }

    pub fn read(opcode: i32, r: &mut Reader<'_>) -> Result<Txn> {
        Ok(match opcode {
            op::CREATE => Txn::Create {
                path: r.read_string()?,
                data: r.read_nbuffer()?,
                acl: r.read_vec()?,
                ephemeral_owner: r.read_i64()?,
                parent_cversion: r.read_i32()?,
            },
            op::DELETE => Txn::Delete {
                path: r.read_string()?,
            },
            op::DELETE_CONTAINER => Txn::DeleteContainer {
                path: r.read_string()?,
            },
            op::SET_DATA => Txn::SetData {
                path: r.read_string()?,
                data: r.read_nbuffer()?,
                version: r.read_i32()?,
            },
            op::SET_ACL => Txn::SetAcl {
                path: r.read_string()?,
                acl: r.read_vec()?,
                version: r.read_i32()?,
            },
            op::CHECK => Txn::Check {
                path: r.read_string()?,
                version: r.read_i32()?,
            },
            op::CREATE_SESSION => Txn::CreateSession {
                timeout_ms: r.read_i32()?,
            },
            op::CLOSE_SESSION => Txn::CloseSession,
            op::ERROR => Txn::Error { err: r.read_i32()? },
            op::MULTI => {
                let n = r.read_i32()?;
                if n < 0 || n as usize > r.remaining() / 8 {
                    return Err(JuteError::BadLength(n as i64));
                }
                let mut txns = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let sub_op = r.read_i32()?;
                    if sub_op == op::MULTI {
                        return Err(JuteError::Multi("nested multi txn"));
                    }
                    let body = r.read_buffer()?;
                    let mut br = Reader::new(&body);
                    txns.push(Txn::read(sub_op, &mut br)?);
                    br.finish()?;
                }
                Txn::Multi(txns)
            }
            other => {
                return Err(JuteError::Unknown {
                    what: "txn type",
                    value: other,
                })
            }
        })
    }
}

/// A whole transaction as logged and replicated: header + body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    pub header: TxnHeader,
    pub txn: Txn,
}

impl Record for TxnRecord {
    fn write(&self, out: &mut Vec<u8>) {
        debug_assert_eq!(self.header.op, self.txn.op());
        self.header.write(out);
        self.txn.write(out);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let header = TxnHeader::read(r)?;
        let txn = Txn::read(header.op, r)?;
        Ok(TxnRecord { header, txn })
    }
}
