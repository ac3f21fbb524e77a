//! A decoded client request body, keyed by opcode, and the `multi` encoding.
//!
//! `multi` (14) and `multiRead` (22) bodies are a sequence of
//! `MultiHeader(type, done=false, err=-1)` + sub-request, ended by
//! `MultiHeader(-1, true, -1)`. Results use the same framing with one
//! [`MultiResult`] per sub-op.

use crate::codec::{write_string, Reader, Record};
use crate::codes::op;
use crate::records::*;
use crate::{JuteError, Result};

/// Upper bound on sub-ops in one multi; bounded by the frame size anyway,
/// but a tiny sub-op is 9 bytes so this keeps per-request work modest.
pub const MULTI_OPS_MAX: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// create (1), create2 (15) or createContainer (19); `op` says which.
    Create {
        op: i32,
        req: CreateRequest,
    },
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    Exists(ExistsRequest),
    GetData(GetDataRequest),
    SetData(SetDataRequest),
    GetAcl(GetAclRequest),
    SetAcl(SetAclRequest),
    /// getChildren (8) or getChildren2 (12); `with_stat` is true for 12.
    GetChildren {
        with_stat: bool,
        req: GetChildrenRequest,
    },
    Sync(SyncRequest),
    Ping,
    Multi(Vec<MultiOp>),
    MultiRead(Vec<MultiOp>),
    Reconfig(ReconfigRequest),
    CheckWatches(RemoveWatchesRequest),
    RemoveWatches(RemoveWatchesRequest),
    Auth(AuthPacket),
    /// setWatches (101) is normalised into the SetWatches2 shape; `v2` records
    /// which opcode carried it.
    SetWatches {
        v2: bool,
        req: SetWatches2,
    },
    Sasl(Vec<u8>),
    GetEphemerals(PathRequest),
    GetAllChildrenNumber(PathRequest),
    AddWatch(AddWatchRequest),
    WhoAmI,
    CloseSession,
}

/// One sub-operation of `multi` / `multiRead`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    /// `op` is create (1), create2 (15) or createContainer (19).
    Create {
        op: i32,
        req: CreateRequest,
    },
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
    GetData(GetDataRequest),
    GetChildren(GetChildrenRequest),
}

/// One sub-result of a multi reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    Create(String),
    Create2(String, Stat),
    Delete,
    SetData(Stat),
    Check,
    GetData(Option<Vec<u8>>, Stat),
    GetChildren(Vec<String>),
    /// Error result: the code appears in the header and again in the body.
    Error(i32),
}

impl MultiOp {
    pub fn op(&self) -> i32 {
        match self {
            MultiOp::Create { op, .. } => *op,
            MultiOp::CreateTtl(_) => op::CREATE_TTL,
            MultiOp::Delete(_) => op::DELETE,
            MultiOp::SetData(_) => op::SET_DATA,
            MultiOp::Check(_) => op::CHECK,
            MultiOp::GetData(_) => op::GET_DATA,
            MultiOp::GetChildren(_) => op::GET_CHILDREN,
        }
    }

    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create { req, .. } => &req.path,
            MultiOp::CreateTtl(r) => &r.path,
            MultiOp::Delete(r) => &r.path,
            MultiOp::SetData(r) => &r.path,
            MultiOp::Check(r) => &r.path,
            MultiOp::GetData(r) => &r.path,
            MultiOp::GetChildren(r) => &r.path,
        }
    }

    fn write_body(&self, out: &mut Vec<u8>) {
        match self {
            MultiOp::Create { req, .. } => req.write(out),
            MultiOp::CreateTtl(r) => r.write(out),
            MultiOp::Delete(r) => r.write(out),
            MultiOp::SetData(r) => r.write(out),
            MultiOp::Check(r) => r.write(out),
            MultiOp::GetData(r) => r.write(out),
            MultiOp::GetChildren(r) => r.write(out),
        }
    }

    fn read_body(opcode: i32, r: &mut Reader<'_>) -> Result<MultiOp> {
        Ok(match opcode {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER => MultiOp::Create {
                op: opcode,
                req: CreateRequest::read(r)?,
            },
            op::CREATE_TTL => MultiOp::CreateTtl(CreateTtlRequest::read(r)?),
            op::DELETE => MultiOp::Delete(DeleteRequest::read(r)?),
            op::SET_DATA => MultiOp::SetData(SetDataRequest::read(r)?),
            op::CHECK => MultiOp::Check(CheckVersionRequest::read(r)?),
            op::GET_DATA => MultiOp::GetData(GetDataRequest::read(r)?),
            op::GET_CHILDREN => MultiOp::GetChildren(GetChildrenRequest::read(r)?),
            _ => return Err(JuteError::Multi("unknown sub-op type")),
        })
    }

    fn is_read(&self) -> bool {
        matches!(self, MultiOp::GetData(_) | MultiOp::GetChildren(_))
    }
}

const DONE: MultiHeader = MultiHeader {
    op: -1,
    done: true,
    err: -1,
};

/// Encode a multi request body.
pub fn write_multi(ops: &[MultiOp], out: &mut Vec<u8>) {
    for o in ops {
        MultiHeader {
            op: o.op(),
            done: false,
            err: -1,
        }
        .write(out);
        o.write_body(out);
    }
    DONE.write(out);
}

/// Decode a multi request body; `read_ops` selects multiRead (only reads
/// allowed) versus multi (only writes allowed).
pub fn read_multi(r: &mut Reader<'_>, read_ops: bool) -> Result<Vec<MultiOp>> {
    let mut ops = Vec::new();
    loop {
        let h = MultiHeader::read(r)?;
        if h.done {
            return Ok(ops);
        }
        if ops.len() >= MULTI_OPS_MAX {
            return Err(JuteError::Multi("too many sub-ops"));
        }
        let o = MultiOp::read_body(h.op, r)?;
        if o.is_read() != read_ops {
            return Err(JuteError::Multi("read and write sub-ops mixed"));
        }
        ops.push(o);
    }
}

impl MultiResult {
    fn header_op(&self) -> i32 {
        match self {
            MultiResult::Create(_) => op::CREATE,
            MultiResult::Create2(..) => op::CREATE2,
            MultiResult::Delete => op::DELETE,
            MultiResult::SetData(_) => op::SET_DATA,
            MultiResult::Check => op::CHECK,
            MultiResult::GetData(..) => op::GET_DATA,
            MultiResult::GetChildren(_) => op::GET_CHILDREN,
            MultiResult::Error(_) => op::ERROR,
        }
    }
}

/// Encode a multi response body.
pub fn write_multi_results(results: &[MultiResult], out: &mut Vec<u8>) {
    for res in results {
        let err = if let MultiResult::Error(c) = res {
            *c
        } else {
            0
        };
        MultiHeader {
            op: res.header_op(),
            done: false,
            err,
        }
        .write(out);
        match res {
            MultiResult::Create(p) => write_string(out, p),
            MultiResult::Create2(p, s) => {
                write_string(out, p);
                s.write(out)
            }
            MultiResult::Delete | MultiResult::Check => {}
            MultiResult::SetData(s) => s.write(out),
            MultiResult::GetData(d, s) => GetDataResponse {
                data: d.clone(),
                stat: s.clone(),
            }
            .write(out),
            MultiResult::GetChildren(c) => crate::codec::write_vec(out, c),
            MultiResult::Error(c) => ErrorResponse { err: *c }.write(out),
        }
    }
    DONE.write(out);
}

/// Decode a multi response body (used by clients and tests).
pub fn read_multi_results(r: &mut Reader<'_>) -> Result<Vec<MultiResult>> {
    let mut out = Vec::new();
    loop {
        let h = MultiHeader::read(r)?;
        if h.done {
            return Ok(out);
        }
        out.push(match h.op {
            op::CREATE => MultiResult::Create(r.read_string()?),
            op::CREATE2 => MultiResult::Create2(r.read_string()?, Stat::read(r)?),
            op::DELETE => MultiResult::Delete,
            op::SET_DATA => MultiResult::SetData(Stat::read(r)?),
            op::CHECK => MultiResult::Check,
            op::GET_DATA => {
                let g = GetDataResponse::read(r)?;
                MultiResult::GetData(g.data, g.stat)
            }
            op::GET_CHILDREN => MultiResult::GetChildren(r.read_vec()?),
            op::ERROR => MultiResult::Error(ErrorResponse::read(r)?.err),
            _ => return Err(JuteError::Multi("unknown result type")),
        });
    }
}

impl Request {
    /// The opcode this request is sent with.
    pub fn op(&self) -> i32 {
        match self {
            Request::Create { op, .. } => *op,
            Request::CreateTtl(_) => op::CREATE_TTL,
            Request::Delete(_) => op::DELETE,
            Request::Exists(_) => op::EXISTS,
            Request::GetData(_) => op::GET_DATA,
            Request::SetData(_) => op::SET_DATA,
            Request::GetAcl(_) => op::GET_ACL,
            Request::SetAcl(_) => op::SET_ACL,
            Request::GetChildren { with_stat, .. } => {
                if *with_stat {
                    op::GET_CHILDREN2
                } else {
                    op::GET_CHILDREN
                }
            }
            Request::Sync(_) => op::SYNC,
            Request::Ping => op::PING,
            Request::Multi(_) => op::MULTI,
            Request::MultiRead(_) => op::MULTI_READ,
            Request::Reconfig(_) => op::RECONFIG,
            Request::CheckWatches(_) => op::CHECK_WATCHES,
            Request::RemoveWatches(_) => op::REMOVE_WATCHES,
            Request::Auth(_) => op::AUTH,
            Request::SetWatches { v2, .. } => {
                if *v2 {
                    op::SET_WATCHES2
                } else {
                    op::SET_WATCHES
                }
            }
            Request::Sasl(_) => op::SASL,
            Request::GetEphemerals(_) => op::GET_EPHEMERALS,
            Request::GetAllChildrenNumber(_) => op::GET_ALL_CHILDREN_NUMBER,
            Request::AddWatch(_) => op::ADD_WATCH,
            Request::WhoAmI => op::WHO_AM_I,
            Request::CloseSession => op::CLOSE_SESSION,
        }
    }

    /// True for requests that change the tree (and so become transactions).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::Create { .. }
                | Request::CreateTtl(_)
                | Request::Delete(_)
                | Request::SetData(_)
                | Request::SetAcl(_)
                | Request::Multi(_)
                | Request::Reconfig(_)
                | Request::CloseSession
        )
    }

    /// Decode the body that follows a `RequestHeader` with opcode `opcode`.
    /// Unknown opcodes give `JuteError::Unknown { what: "opcode", .. }`.
    pub fn decode(opcode: i32, r: &mut Reader<'_>) -> Result<Request> {
        let req = match opcode {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER => Request::Create {
                op: opcode,
                req: CreateRequest::read(r)?,
            },
            op::CREATE_TTL => Request::CreateTtl(CreateTtlRequest::read(r)?),
            op::DELETE => Request::Delete(DeleteRequest::read(r)?),
            op::EXISTS => Request::Exists(ExistsRequest::read(r)?),
            op::GET_DATA => Request::GetData(GetDataRequest::read(r)?),
            op::SET_DATA => Request::SetData(SetDataRequest::read(r)?),
            op::GET_ACL => Request::GetAcl(GetAclRequest::read(r)?),
            op::SET_ACL => Request::SetAcl(SetAclRequest::read(r)?),
            op::GET_CHILDREN | op::GET_CHILDREN2 => Request::GetChildren {
                with_stat: opcode == op::GET_CHILDREN2,
                req: GetChildrenRequest::read(r)?,
            },
            op::SYNC => Request::Sync(SyncRequest::read(r)?),
            op::PING => Request::Ping,
            op::MULTI => Request::Multi(read_multi(r, false)?),
            op::MULTI_READ => Request::MultiRead(read_multi(r, true)?),
            op::RECONFIG => Request::Reconfig(ReconfigRequest::read(r)?),
            op::CHECK_WATCHES => Request::CheckWatches(RemoveWatchesRequest::read(r)?),
            op::REMOVE_WATCHES => Request::RemoveWatches(RemoveWatchesRequest::read(r)?),
            op::AUTH => Request::Auth(AuthPacket::read(r)?),
            op::SET_WATCHES => {
                let s = SetWatches::read(r)?;
                Request::SetWatches {
                    v2: false,
                    req: SetWatches2 {
                        relative_zxid: s.relative_zxid,
                        data_watches: s.data_watches,
                        exist_watches: s.exist_watches,
                        child_watches: s.child_watches,
                        ..Default::default()
                    },
                }
            }
            op::SET_WATCHES2 => Request::SetWatches {
                v2: true,
                req: SetWatches2::read(r)?,
            },
            op::SASL => Request::Sasl(r.read_buffer()?),
            op::GET_EPHEMERALS => Request::GetEphemerals(PathRequest::read(r)?),
            op::GET_ALL_CHILDREN_NUMBER => Request::GetAllChildrenNumber(PathRequest::read(r)?),
            op::ADD_WATCH => Request::AddWatch(AddWatchRequest::read(r)?),
            op::WHO_AM_I => Request::WhoAmI,
            op::CLOSE_SESSION => Request::CloseSession,
            // 0 (notification), 13 (top-level check) and everything else
            // take ZooKeeper's "unimplemented" path.
            other => {
                return Err(JuteError::Unknown {
                    what: "opcode",
                    value: other,
                })
            }
        };
        Ok(req)
    }

    /// Encode the body (what follows the `RequestHeader`).
    pub fn write_body(&self, out: &mut Vec<u8>) {
        match self {
            Request::Create { req, .. } => req.write(out),
            Request::CreateTtl(r) => r.write(out),
            Request::Delete(r) => r.write(out),
            Request::Exists(r) => r.write(out),
            Request::GetData(r) => r.write(out),
            Request::SetData(r) => r.write(out),
            Request::GetAcl(r) => r.write(out),
            Request::SetAcl(r) => r.write(out),
            Request::GetChildren { req, .. } => req.write(out),
            Request::Sync(r) => r.write(out),
            Request::Ping | Request::WhoAmI | Request::CloseSession => {}
            Request::Multi(ops) | Request::MultiRead(ops) => write_multi(ops, out),
            Request::Reconfig(r) => r.write(out),
            Request::CheckWatches(r) | Request::RemoveWatches(r) => r.write(out),
            Request::Auth(r) => r.write(out),
            Request::SetWatches { v2, req } => {
                if *v2 {
                    req.write(out)
                } else {
                    SetWatches {
                        relative_zxid: req.relative_zxid,
                        data_watches: req.data_watches.clone(),
                        exist_watches: req.exist_watches.clone(),
                        child_watches: req.child_watches.clone(),
                    }
                    .write(out)
                }
            }
            Request::Sasl(b) => crate::codec::write_buffer(out, b),
            Request::GetEphemerals(r) | Request::GetAllChildrenNumber(r) => r.write(out),
            Request::AddWatch(r) => r.write(out),
        }
    }
}
