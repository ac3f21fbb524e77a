//! The history of a run: one [`Event`] per line of `history.jsonl`.
//!
//! An operation is an `invoke` followed by exactly one completion: `ok`,
//! `fail` (the server answered with an error code: a definite outcome) or
//! `info` (timeout, lost connection: the operation may or may not have
//! happened). Events share an `op_id`. Faults appear as `fault_start` /
//! `fault_end`; `session_expired` records that a client learnt its session
//! is gone; `phase` marks the cluster size (`cluster servers=N`), the swarm's
//! draw, the start of the workloads and of the final read-back (`final`); `server_exit`
//! records a server that stopped on an error; `replicas` (the last event of
//! a run that reached its end) is every server's final status, read from
//! the servers' status board once they agreed on a last zxid or the
//! liveness bound ran out (the evidence of the `replicas` check).
//!
//! What a client's session task saw, in the order it saw it (the client's
//! trace, [`crate::client::Trace`]): `connected` (a new connection of the
//! session, numbered `conn`, with the `last_zxid` it sent), `watch_added`
//! (a watch the client registered, with its kind `watch` and the reply
//! `zxid`), `watch_event` (a notification: `event`, `path`, and the
//! client's `last_zxid` when it arrived) and `watches_restored` (the reply
//! to SetWatches, with its `zxid`). Per session these are in arrival order;
//! against op completions only their `last_zxid`/`zxid` stamps order them.
//!
//! Times are simulated milliseconds since the start of the run (microsecond
//! precision). Session ids are written as hex strings (they do not fit a
//! JSON double). Nothing here depends on tracing output or wall time, so the
//! JSONL bytes of a run are a deterministic function of the seed and their
//! FNV-1a hash is the run's fingerprint.
//!
//! Invariants of a recorded history:
//! - `op_id`s are unique; each invoke has at most one completion, after it;
//! - events are in the order they happened (non-decreasing `t_ms`).

use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Ty {
    #[default]
    Invoke,
    Ok,
    Fail,
    Info,
    FaultStart,
    FaultEnd,
    SessionExpired,
    Phase,
    ServerExit,
    Connected,
    /// A server refused to re-attach a session (trace events; `target` is
    /// the server's address). The client then reports `session_expired`.
    Refused,
    WatchAdded,
    WatchEvent,
    WatchesRestored,
    Replicas,
    /// The servers' own invariant monitor at the end of the run (ZAB's
    /// invariants checked after every input; `error` lists violations).
    Invariants,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpName {
    Create,
    CreateEphemeral,
    CreateSequential,
    CreateEphemeralSequential,
    Delete,
    Exists,
    GetData,
    SetData,
    GetChildren,
    Sync,
    Close,
    /// A failed attempt to establish a session (recorded as `info`).
    Connect,
    /// `addWatch` (the invoke's `watch` is the mode).
    AddWatch,
    /// A transaction of sub-operations (`ops`; the reply's `results`).
    Multi,
    /// A version check: only as a sub-operation of a multi.
    Check,
}

impl OpName {
    /// Operations that become transactions when the server accepts them.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            OpName::Create
                | OpName::CreateEphemeral
                | OpName::CreateSequential
                | OpName::CreateEphemeralSequential
                | OpName::Delete
                | OpName::SetData
                | OpName::Close
                | OpName::Multi
        )
    }
}

/// Error codes the server turns into error *transactions* (they consume a
/// zxid, as in ZooKeeper's PrepRequestProcessor). Other codes (e.g.
/// SessionExpired) are answered without a transaction.
pub const TXN_ERRORS: [&str; 7] = [
    "NoNode",
    "NodeExists",
    "BadVersion",
    "NotEmpty",
    "NoChildrenForEphemerals",
    "NoAuth",
    "BadArguments",
];

/// Prefix of the `error` of an `info` completion for a request the client
/// never sent (session expired or closed first, or its caller gave up while
/// disconnected): it definitely did not happen.
pub const NOT_SENT: &str = "not sent";

/// One line of `history.jsonl`. Fields that do not apply are omitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Simulated time in microseconds; written as `t_ms` (float).
    #[serde(rename = "t_ms", with = "ms")]
    pub t_us: u64,
    #[serde(rename = "type")]
    pub ty: Ty,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex")]
    pub session: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<OpName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Data written (invoke) or read (ok).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Expected version (invoke) or the node's version (ok).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
    /// `stat.mzxid` of a read or write reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mzxid: Option<i64>,
    /// `exists` result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<String>>,
    /// Reply header zxid (ok and fail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zxid: Option<i64>,
    /// Error code name (fail) or reason (info, server_exit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Free text: what a fault did (torn bytes...), or a phase name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// `stat.ephemeralOwner` of a read or create reply, when not 0.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex")]
    pub owner: Option<i64>,
    /// A watch: on a read's invoke, that it sets one (`data`, `child`);
    /// on `add_watch`, the mode (`persistent`, `persistent_recursive`); on
    /// `watch_added`, what the client registered (also `exist`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<String>,
    /// Watch event type (`NodeCreated`, `NodeDeleted`, `NodeDataChanged`,
    /// `NodeChildrenChanged`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The client's last zxid seen (trace events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_zxid: Option<i64>,
    /// Connection number within the session, from 1 (trace events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn: Option<u32>,
    /// Sub-operations of a multi (invoke).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops: Option<Vec<SubOp>>,
    /// Per sub-operation results of a multi (completion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<SubResult>>,
    /// Every server's final status (`replicas`), by server id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<Vec<Replica>>,
}

/// One server's status at the end of a run, as it published it on the
/// status board (`zkserver::run::NodeStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Replica {
    /// 1-based server id (`server<N>` at 10.0.0.N).
    pub server: u32,
    /// Whether the server was running (it had published a status since
    /// its last start). The fields below are meaningless when not.
    pub running: bool,
    /// "standalone", "leader", "follower" or "looking".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
    #[serde(default)]
    pub epoch: u64,
    /// The last transaction applied to its tree.
    #[serde(default)]
    pub last_zxid: i64,
    /// Digest of its applied tree (hex: it does not fit a JSON double).
    #[serde(default, with = "hex_u64")]
    pub digest: u64,
    #[serde(default)]
    pub serving: bool,
}

impl Replica {
    /// `server:2 leader epoch 1 zxid 0x100000005 digest 0x1f…`.
    pub fn describe(&self) -> String {
        if !self.running {
            return format!("server:{} not running", self.server);
        }
        format!(
            "server:{} {} epoch {} zxid 0x{:x} digest 0x{:016x}{}",
            self.server,
            self.role,
            self.epoch,
            self.last_zxid as u64,
            self.digest,
            if self.serving { "" } else { " (not serving)" }
        )
    }
}

/// One sub-operation of a multi: `create`, `set_data`, `delete`, `check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubOp {
    pub op: OpName,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
}

/// The server's result for one sub-operation. A multi that failed reports
/// `RolledBack` for the sub-operations before the failing one, the failing
/// one's own code, and `RuntimeInconsistency` for those after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SubResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Created path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mzxid: Option<i64>,
}

/// Sub-result code of the operations before the failing one of a failed
/// multi (ZooKeeper sends 0; kazoo calls it RolledBackError).
pub const ROLLED_BACK: &str = "RolledBack";

mod ms {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(us: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(*us as f64 / 1000.0)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let v = f64::deserialize(d)?;
        if !(v.is_finite() && v >= 0.0) {
            return Err(serde::de::Error::custom(
                "t_ms must be a non-negative number",
            ));
        }
        Ok((v * 1000.0).round() as u64)
    }
}

/// A u64 as a `0x...` string (a tree digest).
mod hex_u64 {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{v:016x}"))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let s = String::deserialize(d)?;
        let digits = s.strip_prefix("0x").unwrap_or(&s);
        u64::from_str_radix(digits, 16)
            .map_err(|_| serde::de::Error::custom(format!("bad hex value {s:?}")))
    }
}

mod hex {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(x) => s.serialize_str(&format!("0x{:x}", *x as u64)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        let Some(s) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let digits = s.strip_prefix("0x").unwrap_or(&s);
        u64::from_str_radix(digits, 16)
            .map(|x| Some(x as i64))
            .map_err(|_| serde::de::Error::custom(format!("bad session id {s:?}")))
    }
}

impl Event {
    pub fn t_ms(&self) -> f64 {
        self.t_us as f64 / 1000.0
    }

    /// A definite completion that carries a zxid.
    pub fn is_determinate(&self) -> bool {
        matches!(self.ty, Ty::Ok | Ty::Fail)
    }
}

/// Render events as JSON lines.
pub fn to_jsonl(events: &[Event]) -> String {
    let mut out = String::new();
    for e in events {
        out.push_str(&serde_json::to_string(e).expect("events serialize"));
        out.push('\n');
    }
    out
}

/// Parse JSON lines (blank lines ignored); errors name the line.
pub fn from_jsonl(text: &str) -> Result<Vec<Event>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// FNV-1a 64 of the history's JSONL bytes: the run's fingerprint.
pub fn fingerprint(events: &[Event]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in to_jsonl(events).bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The append-only event store of one run. Clones share it; it can be
/// created outside the simulation and read after it (even after a panic).
#[derive(Debug, Clone, Default)]
pub struct Log(Arc<Mutex<Inner>>);

#[derive(Debug, Default)]
struct Inner {
    events: Vec<Event>,
    next_op: u64,
}

impl Log {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn events(&self) -> Vec<Event> {
        self.lock().events.clone()
    }
}

/// Appends to a [`Log`], stamping events with the (simulated) time since
/// the recorder was made. Clones share the log and the time origin.
#[derive(Debug, Clone)]
pub struct Recorder {
    start: tokio::time::Instant,
    log: Log,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder::with_log(Log::default())
    }

    pub fn with_log(log: Log) -> Recorder {
        Recorder {
            start: tokio::time::Instant::now(),
            log,
        }
    }

    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// Append `e`, stamping the current time.
    pub fn push(&self, mut e: Event) {
        e.t_us = self.now_us();
        self.log.lock().events.push(e);
    }

    /// Record an invocation; returns its op id.
    pub fn invoke(&self, mut e: Event) -> u64 {
        let t = self.now_us();
        let mut g = self.log.lock();
        g.next_op += 1;
        let id = g.next_op;
        e.ty = Ty::Invoke;
        e.op_id = Some(id);
        e.t_us = t;
        g.events.push(e);
        id
    }

    pub fn events(&self) -> Vec<Event> {
        self.log.events()
    }
}
