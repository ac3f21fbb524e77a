//! Helpers shared by the core's integration tests: building client frames,
//! decoding server frames, and printing protocol values readably.

#![allow(dead_code)]

use jute::txn::{Txn, TxnRecord};
use jute::*;
use zkcore::server::ServerConfig;

/// A request frame: `RequestHeader{xid, op}` + body (no length prefix).
pub fn request_frame(xid: i32, req: &Request) -> Vec<u8> {
    let mut f = to_bytes(&RequestHeader { xid, op: req.op() });
    req.write_body(&mut f);
    f
}

/// A ConnectRequest frame as modern clients send it (readOnly byte present).
pub fn connect_frame(session_id: i64, passwd: Vec<u8>, timeout_ms: i32, last_zxid: i64) -> Vec<u8> {
    to_bytes(&ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: last_zxid,
        timeout_ms,
        session_id,
        passwd,
        read_only: Some(false),
    })
}

/// Split a server frame into its reply header and body.
pub fn split_reply(frame: &[u8]) -> (ReplyHeader, &[u8]) {
    let mut r = Reader::new(frame);
    let h = ReplyHeader::read(&mut r).expect("reply header");
    (h, r.rest())
}

/// Decode a record that must span the whole body.
pub fn decode<R: Record>(body: &[u8]) -> R {
    from_bytes::<R>(body).unwrap_or_else(|e| panic!("bad body {body:02x?}: {e}"))
}

/// The configuration the tests use unless they say otherwise.
pub fn test_config() -> ServerConfig {
    ServerConfig {
        tick_ms: 2000,
        min_session_timeout_ms: 4000,
        max_session_timeout_ms: 40000,
        ..ServerConfig::default()
    }
}

pub fn err_name(code: i32) -> String {
    match ErrorCode::from_code(code) {
        Some(ErrorCode::Ok) => "0".into(),
        Some(e) => format!("{code}({e:?})"),
        None => format!("{code}(?)"),
    }
}

pub fn event_name(code: i32) -> String {
    match EventType::from_code(code) {
        Some(e) => format!("{e:?}"),
        None => format!("event{code}"),
    }
}

pub fn hex(z: i64) -> String {
    if z < 0 {
        format!("{z}")
    } else {
        format!("0x{z:x}")
    }
}

pub fn data_str(d: &Option<Vec<u8>>) -> String {
    match d {
        None => "null".into(),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => format!("{s:?}"),
            Err(_) => format!("{b:02x?}"),
        },
    }
}

pub fn stat_str(s: &Stat) -> String {
    format!(
        "Stat{{czxid={} mzxid={} pzxid={} ctime={} mtime={} version={} cversion={} aversion={} ephemeralOwner={} dataLength={} numChildren={}}}",
        hex(s.czxid),
        hex(s.mzxid),
        hex(s.pzxid),
        s.ctime,
        s.mtime,
        s.version,
        s.cversion,
        s.aversion,
        hex(s.ephemeral_owner),
        s.data_length,
        s.num_children
    )
}

pub fn acl_str(acl: &[Acl]) -> String {
    let v: Vec<String> = acl
        .iter()
        .map(|a| format!("{}:{}:{}", a.id.scheme, a.id.id, a.perms))
        .collect();
    format!("[{}]", v.join(","))
}

pub fn multi_result_str(r: &MultiResult) -> String {
    match r {
        MultiResult::Create(p) => format!("create {p}"),
        MultiResult::Create2(p, s) => format!("create2 {p} {}", stat_str(s)),
        MultiResult::Delete => "delete".into(),
        MultiResult::SetData(s) => format!("setData {}", stat_str(s)),
        MultiResult::Check => "check".into(),
        MultiResult::GetData(d, s) => format!("getData {} {}", data_str(d), stat_str(s)),
        MultiResult::GetChildren(c) => format!("getChildren [{}]", c.join(",")),
        MultiResult::Error(c) => format!("error {}", err_name(*c)),
    }
}

/// A stored ephemeral owner: a session id, or the container / TTL markers.
pub fn owner_str(owner: i64) -> String {
    if owner == jute::txn::CONTAINER_OWNER {
        "container".into()
    } else if (owner as u64) >> 56 == 0xFF {
        format!("ttl({})", owner & jute::txn::TTL_MAX_MS)
    } else {
        hex(owner)
    }
}

/// One line describing a logged transaction.
pub fn txn_str(t: &Txn) -> String {
    match t {
        Txn::Create {
            path,
            data,
            acl,
            ephemeral_owner,
            parent_cversion,
        } => format!(
            "Create {path} {} acl={} owner={} parentCversion={parent_cversion}",
            data_str(data),
            acl_str(acl),
            owner_str(*ephemeral_owner)
        ),
        Txn::Delete { path } => format!("Delete {path}"),
        Txn::DeleteContainer { path } => format!("DeleteContainer {path}"),
        Txn::SetData {
            path,
            data,
            version,
        } => format!("SetData {path} {} version={version}", data_str(data)),
        Txn::SetAcl { path, acl, version } => {
            format!("SetAcl {path} {} aversion={version}", acl_str(acl))
        }
        Txn::Check { path, version } => format!("Check {path} version={version}"),
        Txn::CreateSession { timeout_ms } => format!("CreateSession timeout={timeout_ms}"),
        Txn::CloseSession => "CloseSession".into(),
        Txn::Error { err } => format!("Error {}", err_name(*err)),
        Txn::Multi(ts) => {
            let v: Vec<String> = ts.iter().map(txn_str).collect();
            format!("Multi [{}]", v.join("; "))
        }
    }
}

pub fn record_str(r: &TxnRecord) -> String {
    format!(
        "persist zxid={} session={} cxid={} time={} {}",
        hex(r.header.zxid),
        hex(r.header.session_id),
        r.header.cxid,
        r.header.time_ms,
        txn_str(&r.txn)
    )
}
