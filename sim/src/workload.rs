//! Workload clients: each runs one session (replaced when it expires) and
//! issues operations drawn from its own seeded RNG, recording every
//! invocation and outcome in the history.
//!
//! Paths: workload `w` owns `/w`. `register` uses keys `/w/k<i>` shared by
//! all its clients; `ephemeral` gives client `c` its own `/w/c<c>-e<i>`;
//! `sequential` creates `/w/n-<seq>` and lists `/w`. Every value written is
//! unique (`<w>-c<client>-<n>`), so a read identifies the write it saw.
//!
//! Works the same under madsim and real tokio (it only needs the client and
//! `tokio::time`); the simulator runs each client on its own node.

use crate::client::{Client, ClientConfig, ZkError, ZkResult};
use crate::history::{Event, OpName, Recorder, Ty, NOT_SENT};
use crate::scenario::{Ops, Workload, WorkloadKind};
use jute::{CreateMode, Stat};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

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
    },
    GetData {
        path: String,
    },
    SetData {
        path: String,
        value: String,
        version: i32,
    },
    GetChildren {
        path: String,
    },
    Close,
}

impl Planned {
    fn name(&self) -> OpName {
        match self {
            Planned::Create { mode, .. } if mode.is_sequential() => OpName::CreateSequential,
            Planned::Create { mode, .. } if mode.is_ephemeral() => OpName::CreateEphemeral,
            Planned::Create { .. } => OpName::Create,
            Planned::Delete { .. } => OpName::Delete,
            Planned::Exists { .. } => OpName::Exists,
            Planned::GetData { .. } => OpName::GetData,
            Planned::SetData { .. } => OpName::SetData,
            Planned::GetChildren { .. } => OpName::GetChildren,
            Planned::Close => OpName::Close,
        }
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
        Planned::Exists { path } | Planned::GetData { path } | Planned::GetChildren { path } => {
            inv.path = Some(path.clone())
        }
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
    rec.push(done);
    outcome
}

fn stat_into(e: &mut Event, s: &Stat) {
    e.version = Some(s.version);
    e.mzxid = Some(s.mzxid);
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
        Planned::Exists { path } => {
            let (st, zx) = z(c.exists(path, false).await)?;
            done.exists = Some(st.is_some());
            if let Some(s) = &st {
                stat_into(done, s);
            }
            Ok((zx, st.map(|s| s.version)))
        }
        Planned::GetData { path } => {
            let ((data, stat), zx) = z(c.get_data(path, false).await)?;
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
        Planned::GetChildren { path } => {
            let ((mut kids, _), zx) = z(c.get_children(path, false).await)?;
            kids.sort();
            done.children = Some(kids);
            Ok((zx, None))
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
        cfg
    }
}

/// The parent node a workload needs before it starts.
pub fn root(w: &Workload) -> String {
    format!("/{}", w.name)
}

struct Planner<'a> {
    slot: &'a Slot,
    rng: ChaCha8Rng,
    n: u64,
    /// Last version this client saw per path (for conditional setData).
    seen: BTreeMap<String, i32>,
}

impl Planner<'_> {
    fn value(&mut self) -> String {
        self.n += 1;
        format!("{}-c{}-{}", self.slot.workload.name, self.slot.id, self.n)
    }

    fn next(&mut self) -> Planned {
        let w = &self.slot.workload;
        let root = root(w);
        let k = self.rng.gen_range(0..w.keys);
        let roll = self.rng.gen_range(0..100);
        match w.kind {
            WorkloadKind::Register => {
                let path = format!("{root}/k{k}");
                match roll {
                    0..30 => Planned::GetData { path },
                    30..45 => Planned::Exists { path },
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
                    35..55 => Planned::Exists { path },
                    55..70 => Planned::GetData { path },
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
                _ => Planned::GetChildren { path: root },
            },
        }
    }

    fn saw(&mut self, p: &Planned, o: &Outcome) {
        let path = match p {
            Planned::GetData { path }
            | Planned::Exists { path }
            | Planned::SetData { path, .. } => path,
            _ => return,
        };
        if let Outcome::Ok { version: Some(v) } = o {
            self.seen.insert(path.clone(), *v);
        }
    }
}

/// Run one workload client until its end time or op budget, then close
/// its session.
pub async fn run_client(slot: Slot, rec: Recorder) {
    let mut plan = Planner {
        slot: &slot,
        rng: ChaCha8Rng::seed_from_u64(slot.seed),
        n: 0,
        seen: BTreeMap::new(),
    };
    let end_us = slot.end_ms * 1000;
    let started_us = rec.now_us();
    let mut issued = 0u64;
    let mut client: Option<Client> = None;
    while rec.now_us() < end_us {
        match slot.workload.ops() {
            Ops::Count(n) if issued >= n => break,
            Ops::PerSecond(r) => {
                let due = started_us + (issued as f64 * 1e6 / r) as u64;
                let now = rec.now_us();
                if due > now {
                    tokio::time::sleep(Duration::from_micros(due - now)).await;
                }
            }
            _ => {}
        }
        let c = match &client {
            Some(c) => c.clone(),
            None => match Client::connect(slot.client_config()).await {
                Ok((c, _events)) => {
                    client = Some(c.clone());
                    c
                }
                Err(e) => {
                    // Recorded so that a client that cannot get a session
                    // shows up (liveness judges it).
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
                    continue;
                }
            },
        };
        let p = plan.next();
        let o = exec(&rec, slot.id, &c, &p).await;
        issued += 1;
        plan.saw(&p, &o);
        match o {
            Outcome::Expired => {
                rec.push(Event {
                    ty: Ty::SessionExpired,
                    client: Some(slot.id),
                    session: Some(c.session_id()),
                    ..Default::default()
                });
                client = None;
            }
            Outcome::Closed => client = None,
            _ => {}
        }
        if slot.workload.think_ms > 0 {
            tokio::time::sleep(Duration::from_millis(slot.workload.think_ms)).await;
        }
    }
    if let Some(c) = client {
        exec(&rec, slot.id, &c, &Planned::Close).await;
    }
}

/// The reads that capture a workload's final state.
pub fn final_reads(w: &Workload, client_ids: &[u32]) -> Vec<Planned> {
    let root = root(w);
    match w.kind {
        WorkloadKind::Register => (0..w.keys)
            .map(|k| Planned::GetData {
                path: format!("{root}/k{k}"),
            })
            .collect(),
        WorkloadKind::Ephemeral => client_ids
            .iter()
            .flat_map(|c| {
                let root = root.clone();
                (0..w.keys).map(move |k| Planned::Exists {
                    path: format!("{root}/c{c}-e{k}"),
                })
            })
            .collect(),
        WorkloadKind::Sequential => vec![Planned::GetChildren { path: root }],
    }
}
