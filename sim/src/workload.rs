//! Workload clients: each runs one session (replaced when it expires) and
//! issues operations drawn from its own seeded RNG, recording every
//! invocation and outcome in the history, and (through the client's trace)
//! every connection, watch registration and watch event.
//!
//! Paths: workload `w` owns `/w`. Every value written is unique
//! (`<w>-c<client>-<n>`), so a read identifies the write it saw.
//!
//! - `register`: keys `/w/k<i>` shared by all its clients.
//! - `ephemeral`: client `c` owns `/w/c<c>-e<i>`.
//! - `sequential`: creates `/w/n-<seq>` and lists `/w`.
//! - `watch`: clients take roles by their number in the workload, in turn:
//!   *writer* (setData/create/delete on keys `/w/k<i>` and, one level
//!   deeper, `/w/d/k<i>`; `/w/d` always exists, so no key ever has
//!   children), *one-shot watcher* (getData/exists/getChildren with a
//!   watch, re-registered whenever it likes: intermediate changes between a
//!   firing and the next registration are not notified, as documented),
//!   *persistent watcher* (`addWatch` PERSISTENT on `/w`, `/w/d` and every
//!   key, once per session) and *recursive watcher* (`addWatch` PERSISTENT_RECURSIVE
//!   on `/w`). Watchers also read without watches.
//! - `lock`: the lock recipe under `/w/lock`: create an ephemeral-sequential
//!   `/w/lock/c<c>-a<attempt>-<seq>`, list the children, and either hold
//!   the lock (lowest sequence number) or watch the predecessor with
//!   exists and wait for its deletion. The holder reads `/w/fenced` and
//!   writes it conditionally on that version, with its fencing token (the
//!   zxid of its lock node's create) in the value
//!   (`<value>;token=<zxid>;lock=<path>`), then deletes its lock node. Any
//!   unknown outcome abandons the session (closed, so its node goes).
//! - `multi`: multis of 2–4 create/setData/delete/check sub-operations on
//!   keys `/w/k<i>` (conditional ones on a version seen or a wrong one, so
//!   some fail), and reads.
//!
//! Works the same under madsim and real tokio (it only needs the client and
//! `tokio::time`); the simulator runs each client on its own node.

use crate::client::{Client, ClientConfig, ClientEvent, TraceKind, ZkError, ZkResult};
use crate::history::{Event, OpName, Recorder, SubOp, SubResult, Ty, NOT_SENT, ROLLED_BACK};
use crate::scenario::{Ops, Workload, WorkloadKind};
use jute::request::{MultiOp, MultiResult};
use jute::{
    op, Acl, CheckVersionRequest, CreateMode, CreateRequest, DeleteRequest, ErrorCode, EventType,
    SetDataRequest, Stat,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;

/// One planned operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned {
    Create {
        path: String,
        value: String,
        mode: CreateMode,
    },
    Delete {
        path: String,
        version: i32,
    },
    Exists {
        path: String,
        watch: bool,
    },
    GetData {
        path: String,
        watch: bool,
    },
    SetData {
        path: String,
        value: String,
        version: i32,
    },
    GetChildren {
        path: String,
        watch: bool,
    },
    AddWatch {
        path: String,
        recursive: bool,
    },
    Multi {
        ops: Vec<SubOp>,
    },
    Close,
}

impl Planned {
    fn name(&self) -> OpName {
        match self {
            Planned::Create { mode, .. } if mode.is_sequential() && mode.is_ephemeral() => {
                OpName::CreateEphemeralSequential
            }
            Planned::Create { mode, .. } if mode.is_sequential() => OpName::CreateSequential,
            Planned::Create { mode, .. } if mode.is_ephemeral() => OpName::CreateEphemeral,
            Planned::Create { .. } => OpName::Create,
            Planned::Delete { .. } => OpName::Delete,
            Planned::Exists { .. } => OpName::Exists,
            Planned::GetData { .. } => OpName::GetData,
            Planned::SetData { .. } => OpName::SetData,
            Planned::GetChildren { .. } => OpName::GetChildren,
            Planned::AddWatch { .. } => OpName::AddWatch,
            Planned::Multi { .. } => OpName::Multi,
            Planned::Close => OpName::Close,
        }
    }

    fn read(path: String) -> Planned {
        Planned::GetData { path, watch: false }
    }
}

/// How an executed operation ended, as far as the workload cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok {
        version: Option<i32>,
    },
    Fail,
    Unknown,
    /// The server said the session is gone: start a new one.
    Expired,
    /// The client shut down (not sent): start a new one.
    Closed,
    /// Not sent (no connection); the session may still be fine.
    NotSent,
}

/// Run `p` on `c`, recording invoke and completion as client `client`.
pub async fn exec(rec: &Recorder, client: u32, c: &Client, p: &Planned) -> Outcome {
    exec_full(rec, client, c, p).await.0
}

/// [`exec`], also returning the recorded completion.
pub async fn exec_full(rec: &Recorder, client: u32, c: &Client, p: &Planned) -> (Outcome, Event) {
    let session = c.session_id();
    let mut inv = Event {
        client: Some(client),
        session: Some(session),
        op: Some(p.name()),
        ..Default::default()
    };
    match p {
        Planned::Create { path, value, .. } => {
            inv.path = Some(path.clone());
            inv.value = Some(value.clone());
        }
        Planned::SetData {
            path,
            value,
            version,
        } => {
            inv.path = Some(path.clone());
            inv.value = Some(value.clone());
            inv.version = Some(*version);
        }
        Planned::Delete { path, version } => {
            inv.path = Some(path.clone());
            inv.version = Some(*version);
        }
        Planned::Exists { path, watch } | Planned::GetData { path, watch } => {
            inv.path = Some(path.clone());
            inv.watch = watch.then(|| "data".into());
        }
        Planned::GetChildren { path, watch } => {
            inv.path = Some(path.clone());
            inv.watch = watch.then(|| "child".into());
        }
        Planned::AddWatch { path, recursive } => {
            inv.path = Some(path.clone());
            inv.watch = Some(if *recursive {
                "persistent_recursive".into()
            } else {
                "persistent".into()
            });
        }
        Planned::Multi { ops } => inv.ops = Some(ops.clone()),
        Planned::Close => inv.path = Some("/".into()),
    }
    let id = rec.invoke(inv);
    let mut done = Event {
        client: Some(client),
        session: Some(session),
        op_id: Some(id),
        ..Default::default()
    };
    let res = run(c, p, &mut done).await;
    let outcome = match res {
        Ok((zxid, version)) => {
            done.ty = Ty::Ok;
            done.zxid = Some(zxid);
            Outcome::Ok { version }
        }
        Err(ZkError::Server { code, zxid }) => {
            done.ty = Ty::Fail;
            done.zxid = Some(zxid);
            done.error = Some(format!("{code:?}"));
            Outcome::Fail
        }
        Err(e) if !e.is_indeterminate() => {
            // Never sent (expired, closed, timed out while disconnected):
            // definitely did not happen, but the server did not answer.
            done.ty = Ty::Info;
            done.error = Some(format!("{NOT_SENT}: {e}"));
            match e {
                ZkError::SessionExpired => Outcome::Expired,
                ZkError::Closed => Outcome::Closed,
                _ => Outcome::NotSent,
            }
        }
        Err(e) => {
            done.ty = Ty::Info;
            done.error = Some(e.to_string());
            Outcome::Unknown
        }
    };
    rec.push(done.clone());
    (outcome, done)
}

fn stat_into(e: &mut Event, s: &Stat) {
    e.version = Some(s.version);
    e.mzxid = Some(s.mzxid);
    if s.ephemeral_owner != 0 {
        e.owner = Some(s.ephemeral_owner);
    }
}

fn error_name(code: i32) -> String {
    match ErrorCode::from_code(code) {
        Some(ErrorCode::Ok) => ROLLED_BACK.into(),
        Some(c) => format!("{c:?}"),
        None => format!("error {code}"),
    }
}

fn multi_ops(ops: &[SubOp]) -> Vec<MultiOp> {
    ops.iter()
        .map(|s| {
            let path = s.path.clone();
            let version = s.version.unwrap_or(-1);
            match s.op {
                OpName::Create => MultiOp::Create {
                    op: op::CREATE2,
                    req: CreateRequest {
                        path,
                        data: s.value.as_ref().map(|v| v.as_bytes().to_vec()),
                        acl: Acl::open(),
                        flags: CreateMode::Persistent.code(),
                    },
                },
                OpName::SetData => MultiOp::SetData(SetDataRequest {
                    path,
                    data: s.value.as_ref().map(|v| v.as_bytes().to_vec()),
                    version,
                }),
                OpName::Delete => MultiOp::Delete(DeleteRequest { path, version }),
                _ => MultiOp::Check(CheckVersionRequest { path, version }),
            }
        })
        .collect()
}

fn sub_result(r: &MultiResult) -> SubResult {
    let mut s = SubResult::default();
    match r {
        MultiResult::Create(p) => s.path = Some(p.clone()),
        MultiResult::Create2(p, st) => {
            s.path = Some(p.clone());
            s.version = Some(st.version);
            s.mzxid = Some(st.mzxid);
        }
        MultiResult::SetData(st) => {
            s.version = Some(st.version);
            s.mzxid = Some(st.mzxid);
        }
        MultiResult::Error(code) => s.error = Some(error_name(*code)),
        MultiResult::Delete | MultiResult::Check => {}
        MultiResult::GetData(..) | MultiResult::GetChildren(_) => {
            s.error = Some("unexpected read result".into())
        }
    }
    s
}

/// Execute and fill the completion's result fields; returns (zxid, version).
async fn run(c: &Client, p: &Planned, done: &mut Event) -> Result<(i64, Option<i32>), ZkError> {
    fn z<T>(r: ZkResult<T>) -> Result<(T, i64), ZkError> {
        r.map(|r| (r.value, r.zxid))
    }
    match p {
        Planned::Create { path, value, mode } => {
            let ((created, stat), zx) = z(c.create(path, value.as_bytes(), *mode).await)?;
            done.path = Some(created);
            stat_into(done, &stat);
            Ok((zx, Some(stat.version)))
        }
        Planned::Delete { path, version } => {
            let ((), zx) = z(c.delete(path, *version).await)?;
            Ok((zx, None))
        }
        Planned::Exists { path, watch } => {
            let (st, zx) = z(c.exists(path, *watch).await)?;
            done.exists = Some(st.is_some());
            if let Some(s) = &st {
                stat_into(done, s);
            }
            Ok((zx, st.map(|s| s.version)))
        }
        Planned::GetData { path, watch } => {
            let ((data, stat), zx) = z(c.get_data(path, *watch).await)?;
            done.value = Some(String::from_utf8_lossy(&data.unwrap_or_default()).into_owned());
            stat_into(done, &stat);
            Ok((zx, Some(stat.version)))
        }
        Planned::SetData {
            path,
            value,
            version,
        } => {
            let (stat, zx) = z(c.set_data(path, value.as_bytes(), *version).await)?;
            stat_into(done, &stat);
            Ok((zx, Some(stat.version)))
        }
        Planned::GetChildren { path, watch } => {
            let ((mut kids, _), zx) = z(c.get_children(path, *watch).await)?;
            kids.sort();
            done.children = Some(kids);
            Ok((zx, None))
        }
        Planned::AddWatch { path, recursive } => {
            let ((), zx) = z(c.add_watch(path, *recursive).await)?;
            Ok((zx, None))
        }
        Planned::Multi { ops } => {
            let (res, zx) = z(c.multi(multi_ops(ops)).await)?;
            done.results = Some(res.iter().map(sub_result).collect());
            // The reply header says 0 even when the multi failed: the
            // first sub-result that is neither 0 (rolled back) nor
            // RuntimeInconsistency is the failure (as the Java client
            // says); the multi is recorded as `fail` with that code.
            let failed = res.iter().find_map(|r| match r {
                MultiResult::Error(c)
                    if *c != 0 && *c != ErrorCode::RuntimeInconsistency.code() =>
                {
                    Some(*c)
                }
                _ => None,
            });
            match failed {
                None => Ok((zx, None)),
                Some(c) => Err(ZkError::Server {
                    code: ErrorCode::from_code(c).unwrap_or(ErrorCode::SystemError),
                    zxid: zx,
                }),
            }
        }
        Planned::Close => {
            let ((), zx) = z(c.close().await)?;
            Ok((zx, None))
        }
    }
}

/// One workload client.
#[derive(Debug, Clone)]
pub struct Slot {
    /// Global client number (1-based; 0 is the driver).
    pub id: u32,
    /// Number within its workload (0-based).
    pub index: u32,
    pub workload: Workload,
    pub seed: u64,
    /// When to stop, in ms since the start of the run.
    pub end_ms: u64,
    pub servers: Vec<SocketAddr>,
}

impl Slot {
    pub fn client_config(&self) -> ClientConfig {
        let mut cfg = ClientConfig::new(self.servers.clone());
        cfg.session_timeout_ms = self.workload.session_timeout_ms as i32;
        cfg.request_timeout_ms = self.workload.request_timeout_ms;
        cfg.connect_timeout_ms = self.workload.request_timeout_ms.min(1_000);
        cfg.initial_connect_ms = self.workload.request_timeout_ms;
        cfg.trace = true;
        cfg
    }
}

/// The parent node a workload needs before it starts.
pub fn root(w: &Workload) -> String {
    format!("/{}", w.name)
}

/// The nodes the driver creates before the workloads start.
pub fn setup(w: &Workload) -> Vec<Planned> {
    let node = |path: String, value: &str| Planned::Create {
        path,
        value: value.into(),
        mode: CreateMode::Persistent,
    };
    let root = root(w);
    let mut v = vec![node(root.clone(), "")];
    if w.kind == WorkloadKind::Watch {
        v.push(node(format!("{root}/d"), ""));
    }
    if w.kind == WorkloadKind::Lock {
        v.push(node(format!("{root}/lock"), ""));
        v.push(node(format!("{root}/fenced"), "unfenced"));
    }
    v
}

/// A watch-workload client's role, from its number within the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Writer,
    OneShot,
    Persistent,
    Recursive,
}

fn role(index: u32) -> Role {
    match index % 4 {
        0 => Role::Writer,
        1 => Role::OneShot,
        2 => Role::Persistent,
        _ => Role::Recursive,
    }
}

struct Planner<'a> {
    slot: &'a Slot,
    rng: ChaCha8Rng,
    n: u64,
    /// Last version this client saw per path (for conditional writes).
    seen: BTreeMap<String, i32>,
    /// The session whose persistent watches are registered, and the
    /// registrations still to do in it.
    watched_session: i64,
    to_watch: Vec<Planned>,
}

impl Planner<'_> {
    fn value(&mut self) -> String {
        self.n += 1;
        format!("{}-c{}-{}", self.slot.workload.name, self.slot.id, self.n)
    }

    fn key(&mut self) -> String {
        let k = self.rng.gen_range(0..self.slot.workload.keys);
        format!("{}/k{k}", root(&self.slot.workload))
    }

    fn next(&mut self, session: i64) -> Planned {
        let w = &self.slot.workload;
        let root = root(w);
        let k = self.rng.gen_range(0..w.keys);
        let roll = self.rng.gen_range(0..100);
        match w.kind {
            WorkloadKind::Register => {
                let path = format!("{root}/k{k}");
                match roll {
                    0..30 => Planned::read(path),
                    30..45 => Planned::Exists { path, watch: false },
                    45..70 => Planned::SetData {
                        value: self.value(),
                        path,
                        version: -1,
                    },
                    70..80 => Planned::SetData {
                        value: self.value(),
                        version: self.seen.get(&path).copied().unwrap_or(0),
                        path,
                    },
                    80..92 => Planned::Create {
                        value: self.value(),
                        path,
                        mode: CreateMode::Persistent,
                    },
                    _ => Planned::Delete { path, version: -1 },
                }
            }
            WorkloadKind::Ephemeral => {
                let path = format!("{root}/c{}-e{k}", self.slot.id);
                match roll {
                    0..35 => Planned::Create {
                        value: self.value(),
                        path,
                        mode: CreateMode::Ephemeral,
                    },
                    35..55 => Planned::Exists { path, watch: false },
                    55..70 => Planned::read(path),
                    70..85 => Planned::SetData {
                        value: self.value(),
                        path,
                        version: -1,
                    },
                    _ => Planned::Delete { path, version: -1 },
                }
            }
            WorkloadKind::Sequential => match roll {
                0..70 => Planned::Create {
                    value: self.value(),
                    path: format!("{root}/n-"),
                    mode: CreateMode::PersistentSequential,
                },
                _ => Planned::GetChildren {
                    path: root,
                    watch: false,
                },
            },
            WorkloadKind::Watch => {
                let key = if self.rng.gen_range(0..10) < 7 {
                    format!("/k{k}")
                } else {
                    format!("/d/k{k}")
                };
                self.next_watch(session, root, key, roll)
            }
            WorkloadKind::Multi => self.next_multi(format!("{root}/k{k}"), roll),
            WorkloadKind::Lock => unreachable!("the lock workload has its own loop"),
        }
    }

    fn next_watch(&mut self, session: i64, root: String, key: String, roll: u32) -> Planned {
        let path = format!("{root}{key}");
        let role = role(self.slot.index);
        if matches!(role, Role::Persistent | Role::Recursive) && session != self.watched_session {
            self.watched_session = session;
            self.to_watch = if role == Role::Recursive {
                vec![Planned::AddWatch {
                    path: root.clone(),
                    recursive: true,
                }]
            } else {
                let keys = self.slot.workload.keys;
                [root.clone(), format!("{root}/d")]
                    .into_iter()
                    .chain((0..keys).map(|k| format!("{root}/k{k}")))
                    .chain((0..keys).map(|k| format!("{root}/d/k{k}")))
                    .map(|path| Planned::AddWatch {
                        path,
                        recursive: false,
                    })
                    .collect()
            };
            self.to_watch.reverse();
        }
        if let Some(p) = self.to_watch.pop() {
            return p;
        }
        match role {
            Role::Writer => match roll {
                0..60 => Planned::SetData {
                    value: self.value(),
                    path,
                    version: -1,
                },
                60..80 => Planned::Create {
                    value: self.value(),
                    path,
                    mode: CreateMode::Persistent,
                },
                _ => Planned::Delete { path, version: -1 },
            },
            Role::OneShot => match roll {
                0..30 => Planned::GetData { path, watch: true },
                30..60 => Planned::Exists { path, watch: true },
                60..70 => Planned::GetChildren {
                    path: root,
                    watch: true,
                },
                70..80 => Planned::GetChildren {
                    path: format!("{root}/d"),
                    watch: true,
                },
                80..90 => Planned::read(path),
                _ => Planned::Exists { path, watch: false },
            },
            Role::Persistent | Role::Recursive => match roll {
                0..45 => Planned::read(path),
                45..80 => Planned::Exists { path, watch: false },
                _ => Planned::GetChildren {
                    path: root,
                    watch: false,
                },
            },
        }
    }

    /// A multi that should succeed given what this client last saw
    /// (create what is absent; setData, check or delete what is present,
    /// at the version seen), except that a quarter of them get one
    /// sub-operation made to fail (a wrong version, or a create of a node
    /// that exists).
    fn next_multi(&mut self, path: String, roll: u32) -> Planned {
        if roll < 35 {
            return if roll < 25 {
                Planned::read(path)
            } else {
                Planned::Exists { path, watch: false }
            };
        }
        let n = self.rng.gen_range(2..=4);
        let spoil = self.rng.gen_range(0..4) == 0;
        let bad = self.rng.gen_range(0..n);
        // The state this client believes in, as the multi goes.
        let mut state = self.seen.clone();
        let mut ops = Vec::with_capacity(n);
        for i in 0..n {
            let path = self.key();
            let cur = state.get(&path).copied();
            let wrong = spoil && i == bad;
            let sub = match (cur, self.rng.gen_range(0..4)) {
                // Made to fail: NodeExists, or NoNode.
                (Some(_), _) if wrong => SubOp {
                    op: OpName::Create,
                    value: Some(self.value()),
                    version: None,
                    path,
                },
                (None, _) if wrong => SubOp {
                    op: OpName::SetData,
                    value: Some(self.value()),
                    version: Some(-1),
                    path,
                },
                (None, _) => {
                    state.insert(path.clone(), 0);
                    SubOp {
                        op: OpName::Create,
                        value: Some(self.value()),
                        version: None,
                        path,
                    }
                }
                (Some(v), k) => {
                    let version = if wrong { v + 7 } else { v };
                    let (op, value) = match k {
                        0 | 1 => (OpName::SetData, Some(self.value())),
                        2 => (OpName::Check, None),
                        _ => (OpName::Delete, None),
                    };
                    match op {
                        OpName::SetData => {
                            state.insert(path.clone(), v + 1);
                        }
                        OpName::Delete => {
                            state.remove(&path);
                        }
                        _ => {}
                    }
                    SubOp {
                        op,
                        value,
                        version: Some(version),
                        path,
                    }
                }
            };
            ops.push(sub);
        }
        Planned::Multi { ops }
    }

    fn saw(&mut self, p: &Planned, o: &Outcome, done: &Event) {
        if let Planned::Multi { ops } = p {
            let Some(results) = &done.results else { return };
            let ok = done.ty == Ty::Ok;
            for (s, r) in ops.iter().zip(results) {
                match (ok, s.op, r.error.as_deref()) {
                    (true, OpName::Delete, _) | (false, _, Some("NoNode")) => {
                        self.seen.remove(&s.path);
                    }
                    (true, _, _) => {
                        if let Some(v) = r.version {
                            self.seen.insert(s.path.clone(), v);
                        }
                    }
                    _ => {}
                }
            }
            return;
        }
        let path = match p {
            Planned::GetData { path, .. }
            | Planned::Exists { path, .. }
            | Planned::SetData { path, .. } => path,
            _ => return,
        };
        match o {
            Outcome::Ok { version: Some(v) } => {
                self.seen.insert(path.clone(), *v);
            }
            Outcome::Ok { version: None } if self.slot.workload.kind == WorkloadKind::Multi => {
                self.seen.remove(path);
            }
            Outcome::Fail
                if self.slot.workload.kind == WorkloadKind::Multi
                    && done.error.as_deref() == Some("NoNode") =>
            {
                self.seen.remove(path);
            }
            _ => {}
        }
    }
}

/// A session with its watch events (the client's trace goes into the
/// history as it arrives).
struct Sess {
    client: Client,
    events: mpsc::UnboundedReceiver<(EventType, String)>,
}

/// Connect; on failure, record a failed `connect` (so that a client that
/// cannot get a session shows up: liveness judges it) and wait a little.
async fn connect(slot: &Slot, rec: &Recorder) -> Option<Sess> {
    match Client::connect(slot.client_config()).await {
        Ok((c, events)) => Some(Sess {
            client: c,
            events: forward(rec.clone(), slot.id, events),
        }),
        Err(e) => {
            let id = rec.invoke(Event {
                client: Some(slot.id),
                op: Some(OpName::Connect),
                path: Some("/".into()),
                ..Default::default()
            });
            rec.push(Event {
                ty: Ty::Info,
                client: Some(slot.id),
                op_id: Some(id),
                error: Some(e.to_string()),
                ..Default::default()
            });
            tokio::time::sleep(Duration::from_millis(100)).await;
            None
        }
    }
}

/// Record the client's trace in the history as it arrives; hand watch
/// events on to the workload.
fn forward(
    rec: Recorder,
    client: u32,
    mut rx: mpsc::UnboundedReceiver<ClientEvent>,
) -> mpsc::UnboundedReceiver<(EventType, String)> {
    let (tx, out) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            match ev {
                ClientEvent::Trace(t) => rec.push(trace_event(client, t)),
                ClientEvent::Watch { event, path } => {
                    let _ = tx.send((event, path));
                }
                ClientEvent::State(_) => {}
            }
        }
    });
    out
}

/// The history event for one trace item.
pub fn trace_event(client: u32, t: crate::client::Trace) -> Event {
    let mut e = Event {
        client: Some(client),
        session: Some(t.session),
        conn: Some(t.conn),
        last_zxid: Some(t.last_zxid),
        ..Default::default()
    };
    match t.what {
        TraceKind::Connected {
            set_watches,
            server,
        } => {
            e.ty = Ty::Connected;
            e.target = Some(server);
            if set_watches {
                e.detail = Some("set_watches".into());
            }
        }
        TraceKind::Refused { server } => {
            e.ty = Ty::Refused;
            e.target = Some(server);
        }
        TraceKind::WatchAdded { kind, path, zxid } => {
            e.ty = Ty::WatchAdded;
            e.watch = Some(kind.name().into());
            e.path = Some(path);
            e.zxid = Some(zxid);
        }
        TraceKind::Event { event, path } => {
            e.ty = Ty::WatchEvent;
            e.event = Some(format!("{event:?}"));
            e.path = Some(path);
        }
        TraceKind::WatchesRestored { zxid, err } => {
            e.ty = Ty::WatchesRestored;
            e.zxid = Some(zxid);
            if err != 0 {
                e.error = Some(error_name(err));
            }
        }
    }
    e
}

/// Paces a client: `ops` as a count or a rate.
struct Pace {
    started_us: u64,
    issued: u64,
    ops: Ops,
    end_us: u64,
}

impl Pace {
    /// Wait for the next op's turn; false when the client is done.
    async fn next(&mut self, rec: &Recorder) -> bool {
        if rec.now_us() >= self.end_us {
            return false;
        }
        match self.ops {
            Ops::Count(n) if self.issued >= n => return false,
            Ops::PerSecond(r) => {
                let due = self.started_us + (self.issued as f64 * 1e6 / r) as u64;
                let now = rec.now_us();
                if due > now {
                    tokio::time::sleep(Duration::from_micros(due - now)).await;
                }
            }
            _ => {}
        }
        true
    }
}

/// Run one workload client until its end time or op budget, then close
/// its session.
pub async fn run_client(slot: Slot, rec: Recorder) {
    if slot.workload.kind == WorkloadKind::Lock {
        return run_lock(slot, rec).await;
    }
    let mut plan = Planner {
        slot: &slot,
        rng: ChaCha8Rng::seed_from_u64(slot.seed),
        n: 0,
        seen: BTreeMap::new(),
        watched_session: 0,
        to_watch: Vec::new(),
    };
    let mut pace = Pace {
        started_us: rec.now_us(),
        issued: 0,
        ops: slot.workload.ops(),
        end_us: slot.end_ms * 1000,
    };
    let mut sess: Option<Sess> = None;
    while pace.next(&rec).await {
        if sess.is_none() {
            sess = connect(&slot, &rec).await;
        }
        let Some(s) = &mut sess else { continue };
        // Watch events are in the history already (the client's trace).
        while s.events.try_recv().is_ok() {}
        let c = s.client.clone();
        let p = plan.next(c.session_id());
        let (o, done) = exec_full(&rec, slot.id, &c, &p).await;
        pace.issued += 1;
        plan.saw(&p, &o, &done);
        if let Planned::AddWatch { .. } = p {
            if !matches!(o, Outcome::Ok { .. }) {
                // Register it again (addWatch is idempotent).
                plan.to_watch.push(p.clone());
            }
        }
        if end_session(&rec, slot.id, &c, &o) {
            sess = None;
        }
        if slot.workload.think_ms > 0 {
            tokio::time::sleep(Duration::from_millis(slot.workload.think_ms)).await;
        }
    }
    if let Some(s) = sess {
        exec(&rec, slot.id, &s.client, &Planned::Close).await;
    }
}

/// After an expiry or a closed client the session is gone: true (and the
/// expiry recorded) when a new one is needed.
fn end_session(rec: &Recorder, client: u32, c: &Client, o: &Outcome) -> bool {
    match o {
        Outcome::Expired => {
            rec.push(Event {
                ty: Ty::SessionExpired,
                client: Some(client),
                session: Some(c.session_id()),
                ..Default::default()
            });
            true
        }
        Outcome::Closed => true,
        _ => false,
    }
}

/// The sequence number of a sequential node's name.
fn seq_of(name: &str) -> u64 {
    name.rsplit('-')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX)
}

/// The lock recipe, one attempt after another (module docs).
async fn run_lock(slot: Slot, rec: Recorder) {
    let w = &slot.workload;
    let dir = format!("{}/lock", root(w));
    let fenced = format!("{}/fenced", root(w));
    let mut pace = Pace {
        started_us: rec.now_us(),
        issued: 0,
        ops: w.ops(),
        end_us: slot.end_ms * 1000,
    };
    let wait = Duration::from_millis(3 * w.request_timeout_ms);
    let mut n = 0u64;
    let mut sess: Option<Sess> = None;
    let mut attempt = 0u32;
    'attempts: while pace.next(&rec).await {
        if sess.is_none() {
            sess = connect(&slot, &rec).await;
        }
        let Some(s) = &mut sess else { continue };
        let c = s.client.clone();
        let id = slot.id;
        // One step of the recipe; None: the session is abandoned.
        let step = async |p: Planned, pace: &mut Pace| -> Option<Event> {
            pace.issued += 1;
            let (o, done) = exec_full(&rec, id, &c, &p).await;
            match o {
                Outcome::Ok { .. } | Outcome::Fail => Some(done),
                _ => None,
            }
        };
        attempt += 1;
        let created = step(
            Planned::Create {
                path: format!("{dir}/c{id}-a{attempt}-"),
                value: format!("{}-c{id}-lock{attempt}", w.name),
                mode: CreateMode::EphemeralSequential,
            },
            &mut pace,
        )
        .await;
        let mine = match created {
            Some(d) if d.ty == Ty::Ok => d,
            other => {
                abandon(&rec, id, &mut sess, other.is_some()).await;
                continue;
            }
        };
        let (Some(my_path), Some(token)) = (mine.path.clone(), mine.zxid) else {
            abandon(&rec, id, &mut sess, true).await;
            continue;
        };
        let my_name = my_path.rsplit('/').next().unwrap_or("").to_string();
        loop {
            let kids = step(
                Planned::GetChildren {
                    path: dir.clone(),
                    watch: false,
                },
                &mut pace,
            )
            .await;
            let Some(mut kids) = kids.and_then(|d| d.children) else {
                abandon(&rec, id, &mut sess, true).await;
                continue 'attempts;
            };
            kids.sort_by_key(|k| seq_of(k));
            let Some(i) = kids.iter().position(|k| *k == my_name) else {
                // Our node is gone: the session expired under us.
                abandon(&rec, id, &mut sess, true).await;
                continue 'attempts;
            };
            if i == 0 {
                break;
            }
            let pred = format!("{dir}/{}", kids[i - 1]);
            let ex = step(
                Planned::Exists {
                    path: pred.clone(),
                    watch: true,
                },
                &mut pace,
            )
            .await;
            match ex.and_then(|d| d.exists) {
                Some(false) => continue,
                Some(true) => {}
                None => {
                    abandon(&rec, id, &mut sess, true).await;
                    continue 'attempts;
                }
            }
            let Some(s) = &mut sess else {
                continue 'attempts;
            };
            // Wait for the predecessor's deletion (or give up and look again).
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                match tokio::time::timeout(left, s.events.recv()).await {
                    Ok(Some((ev, path))) if path != pred || ev != EventType::NodeDeleted => {}
                    _ => break,
                }
            }
        }
        // Holding the lock: a fenced, versioned write, then release.
        let Some(read) = step(
            Planned::GetData {
                path: fenced.clone(),
                watch: false,
            },
            &mut pace,
        )
        .await
        .filter(|d| d.ty == Ty::Ok) else {
            abandon(&rec, id, &mut sess, true).await;
            continue;
        };
        n += 1;
        let write = step(
            Planned::SetData {
                path: fenced.clone(),
                value: format!("{}-c{id}-{n};token={token};lock={my_path}", w.name),
                version: read.version.unwrap_or(-1),
            },
            &mut pace,
        )
        .await;
        if write.is_none() {
            abandon(&rec, id, &mut sess, true).await;
            continue;
        }
        if w.think_ms > 0 {
            tokio::time::sleep(Duration::from_millis(w.think_ms)).await;
        }
        let released = step(
            Planned::Delete {
                path: my_path,
                version: -1,
            },
            &mut pace,
        )
        .await;
        if released.is_none_or(|d| d.ty != Ty::Ok) {
            abandon(&rec, id, &mut sess, true).await;
        }
    }
    if let Some(s) = sess {
        exec(&rec, slot.id, &s.client, &Planned::Close).await;
    }
}

/// Give up the session (closing it if it may still live, so that its lock
/// node goes with it).
async fn abandon(rec: &Recorder, client: u32, sess: &mut Option<Sess>, close: bool) {
    if let Some(s) = sess.take() {
        if close {
            let o = exec(rec, client, &s.client, &Planned::Close).await;
            end_session(rec, client, &s.client, &o);
        }
    }
}

/// The reads that capture a workload's final state.
pub fn final_reads(w: &Workload, client_ids: &[u32]) -> Vec<Planned> {
    let root = root(w);
    match w.kind {
        WorkloadKind::Register | WorkloadKind::Multi => (0..w.keys)
            .map(|k| Planned::read(format!("{root}/k{k}")))
            .collect(),
        WorkloadKind::Watch => (0..w.keys)
            .map(|k| Planned::read(format!("{root}/k{k}")))
            .chain((0..w.keys).map(|k| Planned::read(format!("{root}/d/k{k}"))))
            .collect(),
        WorkloadKind::Ephemeral => client_ids
            .iter()
            .flat_map(|c| {
                let root = root.clone();
                (0..w.keys).map(move |k| Planned::Exists {
                    path: format!("{root}/c{c}-e{k}"),
                    watch: false,
                })
            })
            .collect(),
        WorkloadKind::Sequential => vec![Planned::GetChildren {
            path: root,
            watch: false,
        }],
        WorkloadKind::Lock => vec![
            Planned::read(format!("{root}/fenced")),
            Planned::GetChildren {
                path: format!("{root}/lock"),
                watch: false,
            },
        ],
    }
}
