//! Write linearizability from reply zxids, in near-linear time.
//!
//! ZooKeeper orders every write by its zxid (a failed write is an error
//! transaction with its own zxid), and a read's reply zxid is the last
//! transaction applied where it was served. So instead of searching for a
//! linearization, the checker replays the history in zxid order:
//!
//! 1. **Model replay.** Operations are split by *object*: a znode
//!    (create/setData/delete/getData/exists on one path) or the child list of
//!    a parent under which the workload creates sequential nodes
//!    (create-sequential and getChildren). Each object's determinate events
//!    are replayed in zxid order (writes before reads at equal zxid) against
//!    a simple model: `Option<(value, version, mzxid, ephemeral owner)>` for
//!    a znode, `Option<(cversion, children)>` for a child list. Every reply
//!    must be exactly what the model predicts: the version a setData returns,
//!    BadVersion/NoNode/NodeExists when due, the value/version/mzxid a read
//!    returns (= the latest write with zxid <= the read's zxid), the sequence
//!    number of a sequential create, the child set of getChildren.
//! 2. **Indeterminate operations** (timeouts, lost connections) may or may
//!    not have happened. The model keeps a small set of *possible worlds*;
//!    before each event every pending unknown write may be applied (at most
//!    once per world). An unknown write can only take effect after the
//!    largest zxid acknowledged before it was invoked, and before the next
//!    write its own session got acknowledged (a session's requests execute in
//!    order). Session ends (close, expiry) delete the session's ephemerals; an
//!    expiry the client observed must have happened before any write invoked
//!    after that observation. A world survives an event only if it predicts
//!    the observed reply; no surviving world is a violation. A search that
//!    exceeds [`WORLDS_MAX`] is inconclusive, which fails the check.
//!    Unknown ops take effect only before the first event at a zxid (one
//!    applied after an event at zxid z has a zxid above z).
//!    An unknown **multi** is all-or-nothing: the objects it touches are
//!    replayed together as one group (each world holds a state per
//!    object), and the multi is one optional event applying all its
//!    sub-operations at one zxid, or none when any would fail. A session
//!    end in a group deletes its ephemerals there at once. Objects no
//!    unknown multi links are replayed alone.
//! 3. **Real-time order.** A write invoked after another operation completed
//!    must have a larger zxid; determinate writes have distinct zxids.
//! 4. **Create replies.** Where the history records the reply's Stat
//!    (Create2, a multi's create sub-result): version 0, mzxid = the zxid,
//!    ephemeralOwner = the creating session for an ephemeral, else 0.
//!
//! Plain reads are *not* required to be linearizable (ZooKeeper does not
//! promise it): a read is checked against the state at its own reply zxid,
//! and per-session monotonicity is the session checker's job.
//!
//! Invariants:
//! - every world in the set is consistent with every event replayed so far;
//! - a world's `applied` set only names unknown operations still pending;
//! - a world has one state per object of its group, in the group's order.

use super::{CheckResult, OpRec};
use crate::history::{Event, OpName, Ty};
use std::collections::{BTreeMap, BTreeSet};

/// Bound on possible worlds per object (or group of objects an unknown
/// multi links) before the check gives up.
pub const WORLDS_MAX: usize = 4096;

/// A violation's witness: at most this many earlier acknowledged writes on
/// the object and this many unknown ones.
const WITNESS_WRITES: usize = 3;
const WITNESS_UNKNOWN: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Node(String),
    Children(String),
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Node(p) => write!(f, "znode {p}"),
            Key::Children(p) => write!(f, "children of {p}"),
        }
    }
}

/// The modelled effect of an operation on one object.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MOp {
    Create {
        value: Option<String>,
        owner: i64,
    },
    CreateSeq {
        prefix: String,
    },
    SetData {
        value: Option<String>,
        version: i32,
    },
    Delete {
        version: i32,
    },
    GetData,
    Exists,
    GetChildren,
    SessionEnd {
        session: i64,
    },
    /// A multi sub-operation: fails with NoNode/BadVersion, changes nothing.
    Check {
        version: i32,
    },
    /// A multi's sub-operations on this object, in order, each with what
    /// the server said of it; all take effect at the multi's zxid, or (a
    /// failed multi) none does.
    Multi {
        steps: Vec<(MOp, SubObs)>,
        failed: bool,
    },
}

/// The server's result for one sub-operation of a multi.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SubObs {
    /// Succeeded, or (in a failed multi) would have: rolled back.
    Ok(Obs),
    /// The sub-operation that failed the multi.
    Failed(Obs),
    /// After the failing one: not evaluated (RuntimeInconsistency).
    NotReached,
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Obs {
    Ok {
        path: Option<String>,
        value: Option<String>,
        version: Option<i32>,
        mzxid: Option<i64>,
        exists: Option<bool>,
        children: Option<Vec<String>>,
        /// `stat.ephemeralOwner`, when the reply's Stat was recorded (the
        /// history omits an owner of 0).
        owner: Option<i64>,
    },
    Err(String),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct NodeSt {
    value: Option<String>,
    version: i32,
    /// `None` when set by an unknown operation (its zxid is not known).
    mzxid: Option<i64>,
    owner: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct KidsSt {
    cversion: i32,
    children: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum St {
    Node(Option<NodeSt>),
    Kids(Option<KidsSt>),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct World {
    /// One state per object of the replayed group.
    st: Vec<St>,
    applied: BTreeSet<u64>,
    ended: BTreeSet<i64>,
}

/// A determinate event on one object.
#[derive(Debug, Clone)]
struct Det {
    /// The object, as its index in the replayed group.
    key: usize,
    zxid: i64,
    write: bool,
    mop: MOp,
    obs: Obs,
    session: i64,
    final_read: bool,
    desc: String,
    /// Op id, for witnesses.
    id: u64,
}

/// An operation that may or may not have happened.
#[derive(Debug, Clone)]
struct Unk {
    id: u64,
    /// Its effect on each object it touches (index in the replayed group),
    /// all at one zxid, or none of them: a multi is all-or-nothing, a
    /// session end deletes all its ephemerals at once.
    parts: Vec<(usize, MOp)>,
    session: i64,
    /// Can only take effect at a zxid greater than this.
    after: i64,
    /// Must have taken effect (if at all) before this zxid.
    before: Option<i64>,
    /// Must have happened by `before` (an observed session expiry).
    forced: bool,
    /// Invocation time; a session's operations take effect in this order
    /// (session ends: `u64::MAX`, after everything of theirs).
    invoke_us: u64,
}

/// Everything the replay found; shared by the linearizability and
/// durability checks.
#[derive(Debug, Default, Clone)]
pub struct Model {
    /// (found on a final read-back, message).
    pub violations: Vec<(bool, String)>,
    /// Per violation (same index): the op ids that prove it — the
    /// offending op, the last acknowledged writes on its object before it,
    /// and the unknown writes the model considered.
    pub witnesses: Vec<Vec<u64>>,
    pub inconclusive: Vec<String>,
    pub notes: Vec<String>,
    pub objects: usize,
    pub determinate: usize,
    pub unknown_writes: usize,
    pub max_worlds: usize,
}

fn parent(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &p[..i],
    }
}

/// Sorted (time, zxid) pairs answering "largest zxid before t" and
/// "smallest zxid after t".
struct Timeline {
    /// By completion time, with running max of zxid.
    done: Vec<(u64, i64)>,
    /// Txn writes by invoke time, with suffix min of zxid.
    writes: Vec<(u64, i64)>,
}

impl Timeline {
    fn new(ops: &[&OpRec<'_>]) -> Timeline {
        let mut done: Vec<(u64, i64)> = ops
            .iter()
            .filter_map(|o| Some((o.complete_us()?, o.zxid()?)))
            .collect();
        done.sort();
        let mut m = i64::MIN;
        for d in &mut done {
            m = m.max(d.1);
            d.1 = m;
        }
        let mut writes: Vec<(u64, i64)> = ops
            .iter()
            .filter(|o| o.is_txn())
            .filter_map(|o| Some((o.invoke_us(), o.zxid()?)))
            .collect();
        writes.sort();
        let mut m = i64::MAX;
        for w in writes.iter_mut().rev() {
            m = m.min(w.1);
            w.1 = m;
        }
        Timeline { done, writes }
    }

    /// Largest zxid of an operation that completed strictly before `t`.
    fn max_done_before(&self, t: u64) -> i64 {
        let i = self.done.partition_point(|d| d.0 < t);
        if i == 0 {
            0
        } else {
            self.done[i - 1].1
        }
    }

    /// Smallest zxid of a txn write invoked strictly after `t`.
    fn min_write_after(&self, t: u64) -> Option<i64> {
        let i = self.writes.partition_point(|w| w.0 <= t);
        self.writes.get(i).map(|w| w.1)
    }
}

/// A multi's sub-operations grouped by znode, in order, with the server's
/// sub-results (none for an unknown outcome).
fn multi_targets(o: &OpRec<'_>) -> Vec<(String, MOp)> {
    let subs = o.inv.ops.clone().unwrap_or_default();
    let results = o.done.filter(|d| d.is_determinate()).map(|d| {
        d.results
            .clone()
            .unwrap_or_else(|| vec![Default::default(); subs.len()])
    });
    let failed = o.error().is_some();
    let mut by_path: BTreeMap<String, Vec<(MOp, SubObs)>> = BTreeMap::new();
    for (i, s) in subs.iter().enumerate() {
        let mop = match s.op {
            OpName::Create => MOp::Create {
                value: s.value.clone(),
                owner: 0,
            },
            OpName::SetData => MOp::SetData {
                value: s.value.clone(),
                version: s.version.unwrap_or(-1),
            },
            OpName::Delete => MOp::Delete {
                version: s.version.unwrap_or(-1),
            },
            _ => MOp::Check {
                version: s.version.unwrap_or(-1),
            },
        };
        let sub = match results.as_ref().and_then(|r| r.get(i)) {
            None => SubObs::NotReached,
            Some(r) => match r.error.as_deref() {
                None => SubObs::Ok(Obs::Ok {
                    path: r.path.clone(),
                    value: None,
                    version: r.version,
                    mzxid: r.mzxid,
                    exists: None,
                    children: None,
                    owner: None,
                }),
                Some(crate::history::ROLLED_BACK) => SubObs::Ok(Obs::Ok {
                    path: None,
                    value: None,
                    version: None,
                    mzxid: None,
                    exists: None,
                    children: None,
                    owner: None,
                }),
                Some("RuntimeInconsistency") => SubObs::NotReached,
                Some(code) => SubObs::Failed(Obs::Err(code.to_string())),
            },
        };
        by_path.entry(s.path.clone()).or_default().push((mop, sub));
    }
    by_path
        .into_iter()
        .map(|(p, steps)| (p, MOp::Multi { steps, failed }))
        .collect()
}

fn obs_of(o: &OpRec<'_>) -> Obs {
    let d = o.done.expect("determinate op has a completion");
    if d.ty == Ty::Fail {
        return Obs::Err(d.error.clone().unwrap_or_default());
    }
    Obs::Ok {
        path: d.path.clone(),
        value: d.value.clone(),
        version: d.version,
        mzxid: d.mzxid,
        exists: d.exists,
        children: d.children.clone(),
        // A recorded Stat (its version is there) with no owner: owner 0.
        owner: d.owner.or(d.version.map(|_| 0)),
    }
}

impl Model {
    /// Replay the history. `ops` must come from [`super::pair_ops`] on `events`.
    pub fn run(events: &[Event], ops: &[OpRec<'_>]) -> Model {
        let mut model = Model::default();
        let final_us = super::final_phase_us(events);
        let is_final = |o: &OpRec<'_>| final_us.is_some_and(|t| o.invoke_us() >= t);
        let seq_parents: BTreeSet<String> = ops
            .iter()
            .filter(|o| {
                matches!(
                    o.op(),
                    OpName::CreateSequential | OpName::CreateEphemeralSequential
                )
            })
            .map(|o| parent(o.path()).to_string())
            .collect();
        // Sequential nodes whose name is known (their create was answered):
        // only these can be modelled as znodes.
        let seq_created: BTreeSet<String> = ops
            .iter()
            .filter(|o| {
                matches!(
                    o.op(),
                    OpName::CreateSequential | OpName::CreateEphemeralSequential
                ) && o.is_determinate()
            })
            .filter_map(|o| o.done.and_then(|d| d.path.clone()))
            .collect();
        let eph_paths: BTreeSet<String> = ops
            .iter()
            .filter_map(|o| match o.op() {
                OpName::CreateEphemeral => Some(o.path().to_string()),
                OpName::CreateEphemeralSequential if o.is_determinate() => {
                    o.done.and_then(|d| d.path.clone())
                }
                _ => None,
            })
            .collect();
        let all: Vec<&OpRec<'_>> = ops.iter().collect();
        let tl = Timeline::new(&all);
        let mut per_session: BTreeMap<i64, Vec<&OpRec<'_>>> = BTreeMap::new();
        for o in ops {
            per_session.entry(o.session()).or_default().push(o);
        }
        let session_tl: BTreeMap<i64, Timeline> = per_session
            .iter()
            .map(|(s, v)| (*s, Timeline::new(v)))
            .collect();

        // A session's operations cannot take effect after the session ended:
        // at its acknowledged close, or before the first write invoked after
        // the client saw it expire.
        let mut session_end: BTreeMap<i64, i64> = BTreeMap::new();
        for o in ops.iter().filter(|o| o.op() == OpName::Close && o.is_txn()) {
            session_end.insert(o.session(), o.zxid().expect("txn"));
        }
        for e in events.iter().filter(|e| e.ty == Ty::SessionExpired) {
            if let (Some(s), Some(z)) = (e.session, tl.min_write_after(e.t_us)) {
                let b = session_end.entry(s).or_insert(z);
                *b = (*b).min(z);
            }
        }
        let mut dets: BTreeMap<Key, Vec<Det>> = BTreeMap::new();
        // Per object, the unknown ops on it (one part each, at index 0).
        let mut unks: BTreeMap<Key, Vec<Unk>> = BTreeMap::new();
        // The objects of each unknown multi: replayed together.
        let mut links: Vec<Vec<Key>> = Vec::new();
        let mut unmodelled: BTreeSet<String> = BTreeSet::new();
        let mut unchecked_children = 0usize;
        let mut closed: BTreeSet<i64> = BTreeSet::new();
        let mut eph_sessions: BTreeSet<i64> = BTreeSet::new();

        for o in ops {
            let path = o.path().to_string();
            let inv = o.inv;
            let mut targets: Vec<(Key, MOp)> = Vec::new();
            match o.op() {
                OpName::Create | OpName::CreateEphemeral => {
                    let owner = if o.op() == OpName::CreateEphemeral {
                        eph_sessions.insert(o.session());
                        o.session()
                    } else {
                        0
                    };
                    let mop = MOp::Create {
                        value: inv.value.clone(),
                        owner,
                    };
                    targets.push((Key::Node(path.clone()), mop.clone()));
                    if seq_parents.contains(&path) {
                        targets.push((Key::Children(path.clone()), mop));
                    }
                    if seq_parents.contains(parent(&path)) {
                        unmodelled.insert(parent(&path).to_string());
                    }
                }
                OpName::CreateSequential | OpName::CreateEphemeralSequential => {
                    let owner = if o.op() == OpName::CreateEphemeralSequential {
                        eph_sessions.insert(o.session());
                        o.session()
                    } else {
                        0
                    };
                    targets.push((
                        Key::Children(parent(&path).to_string()),
                        MOp::CreateSeq {
                            prefix: path.clone(),
                        },
                    ));
                    if let Some(created) = o.done.and_then(|d| d.path.clone()) {
                        if o.is_determinate() {
                            let mop = MOp::Create {
                                value: inv.value.clone(),
                                owner,
                            };
                            targets.push((Key::Node(created), mop));
                        }
                    }
                }
                OpName::Multi => {
                    for (p, mop) in multi_targets(o) {
                        if seq_parents.contains(parent(&p)) || seq_parents.contains(&p) {
                            unmodelled.insert(parent(&p).to_string());
                            unmodelled.insert(p.clone());
                        }
                        targets.push((Key::Node(p), mop));
                    }
                }
                OpName::AddWatch | OpName::Check => {}
                OpName::Delete => {
                    let mop = MOp::Delete {
                        version: inv.version.unwrap_or(-1),
                    };
                    targets.push((Key::Node(path.clone()), mop.clone()));
                    if seq_parents.contains(&path) {
                        targets.push((Key::Children(path.clone()), mop));
                    }
                    if seq_parents.contains(parent(&path)) {
                        unmodelled.insert(parent(&path).to_string());
                    }
                }
                OpName::SetData => targets.push((
                    Key::Node(path.clone()),
                    MOp::SetData {
                        value: inv.value.clone(),
                        version: inv.version.unwrap_or(-1),
                    },
                )),
                OpName::GetData => targets.push((Key::Node(path.clone()), MOp::GetData)),
                OpName::Exists => targets.push((Key::Node(path.clone()), MOp::Exists)),
                OpName::GetChildren => {
                    if seq_parents.contains(&path) {
                        targets.push((Key::Children(path.clone()), MOp::GetChildren));
                    } else if o.is_determinate() {
                        unchecked_children += 1;
                    }
                }
                OpName::Sync | OpName::Connect => {}
                OpName::Close => {
                    let mop = MOp::SessionEnd {
                        session: o.session(),
                    };
                    for p in &eph_paths {
                        targets.push((Key::Node(p.clone()), mop.clone()));
                    }
                    if o.is_txn() {
                        closed.insert(o.session());
                    }
                }
            }
            if targets.is_empty() || o.is_rejected_write() || o.never_sent() {
                continue;
            }
            if o.is_determinate() {
                model.determinate += 1;
                let det = Det {
                    key: 0,
                    zxid: o.zxid().unwrap_or(0),
                    write: o.op().is_write(),
                    mop: MOp::GetData,
                    obs: obs_of(o),
                    session: o.session(),
                    final_read: is_final(o),
                    desc: o.describe(),
                    id: o.id(),
                };
                for (k, mop) in targets {
                    dets.entry(k).or_default().push(Det { mop, ..det.clone() });
                }
            } else if o.op().is_write() {
                model.unknown_writes += 1;
                let next_write = session_tl
                    .get(&o.session())
                    .and_then(|t| t.min_write_after(o.invoke_us()));
                let before = match (next_write, session_end.get(&o.session())) {
                    (Some(a), Some(b)) => Some(a.min(*b)),
                    (a, b) => a.or(b.copied()),
                };
                if o.op() == OpName::Multi && targets.len() > 1 {
                    links.push(targets.iter().map(|(k, _)| k.clone()).collect());
                }
                for (k, mop) in targets {
                    unks.entry(k).or_default().push(Unk {
                        id: o.id(),
                        parts: vec![(0, mop)],
                        session: o.session(),
                        after: tl.max_done_before(o.invoke_us()),
                        before,
                        forced: false,
                        invoke_us: o.invoke_us(),
                    });
                }
            }
        }

        // Session ends nobody acknowledged: observed expiries (forced by the
        // next write invoked after the observation) and, for sessions that
        // owned ephemerals and were not closed, a possible silent expiry.
        let mut observed: BTreeSet<i64> = BTreeSet::new();
        let mut next_id = u64::MAX;
        for e in events.iter().filter(|e| e.ty == Ty::SessionExpired) {
            let Some(s) = e.session else { continue };
            observed.insert(s);
            if !eph_sessions.contains(&s) {
                continue;
            }
            let after = per_session
                .get(&s)
                .map(|v| v.iter().filter_map(|o| o.zxid()).max().unwrap_or(0))
                .unwrap_or(0);
            for p in &eph_paths {
                unks.entry(Key::Node(p.clone())).or_default().push(Unk {
                    id: next_id,
                    parts: vec![(0, MOp::SessionEnd { session: s })],
                    session: s,
                    after,
                    before: tl.min_write_after(e.t_us),
                    forced: true,
                    invoke_us: u64::MAX,
                });
            }
            next_id -= 1;
        }
        for s in &eph_sessions {
            if closed.contains(s) || observed.contains(s) {
                continue;
            }
            let after = per_session
                .get(s)
                .map(|v| v.iter().filter_map(|o| o.zxid()).max().unwrap_or(0))
                .unwrap_or(0);
            for p in &eph_paths {
                unks.entry(Key::Node(p.clone())).or_default().push(Unk {
                    id: next_id,
                    parts: vec![(0, MOp::SessionEnd { session: *s })],
                    session: *s,
                    after,
                    before: None,
                    forced: false,
                    invoke_us: u64::MAX,
                });
            }
            next_id -= 1;
        }

        for p in &unmodelled {
            model.notes.push(format!(
                "children of {p}: non-sequential children are created or deleted there; getChildren not checked"
            ));
        }
        if unchecked_children > 0 {
            model.notes.push(format!(
                "{unchecked_children} getChildren replies on parents without sequential children were not checked"
            ));
        }
        // Objects not modelled: children of a parent where non-sequential
        // children come and go, and sequential znodes no answered create
        // named (created by an unknown sequential create).
        let excluded = |k: &Key| match k {
            Key::Children(p) => unmodelled.contains(p),
            Key::Node(p) => seq_parents.contains(parent(p)) && !seq_created.contains(p),
        };
        let unnamed = dets
            .keys()
            .filter(|k| matches!(k, Key::Node(_)) && excluded(k))
            .count();
        let groups = groups(
            dets.keys().filter(|k| !excluded(k)).cloned().collect(),
            links
                .into_iter()
                .map(|l| l.into_iter().filter(|k| !excluded(k)).collect())
                .collect(),
        );
        let mut merged = 0usize;
        for keys in groups {
            let mut list: Vec<Det> = Vec::new();
            let mut pend: BTreeMap<u64, Unk> = BTreeMap::new();
            for (i, k) in keys.iter().enumerate() {
                list.extend(
                    dets.remove(k)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|d| Det { key: i, ..d }),
                );
                for u in unks.remove(k).unwrap_or_default() {
                    let parts = u.parts.into_iter().map(|(_, m)| (i, m));
                    match pend.entry(u.id) {
                        std::collections::btree_map::Entry::Vacant(e) => {
                            e.insert(Unk {
                                parts: parts.collect(),
                                ..u
                            });
                        }
                        std::collections::btree_map::Entry::Occupied(mut e) => {
                            e.get_mut().parts.extend(parts)
                        }
                    }
                }
            }
            if list.is_empty() {
                continue;
            }
            model.objects += keys.len();
            if keys.len() > 1 {
                merged += 1;
            }
            // In zxid order, writes before reads at one zxid, and the parts
            // of one operation together.
            list.sort_by_key(|d| (d.zxid, !d.write, d.id));
            model.replay(&keys, &list, pend.into_values().collect());
        }
        if merged > 0 {
            model.notes.push(format!(
                "{merged} groups of znodes replayed together: unknown multis span them (all-or-nothing)"
            ));
        }
        if unnamed > 0 {
            model.notes.push(format!(
                "{unnamed} sequential znodes whose create got no answer were not modelled"
            ));
        }
        model
    }

    /// Replay one group of objects (one object, unless unknown multis
    /// span several): `dets` sorted by zxid, `unks` with parts indexed
    /// into `keys`.
    fn replay(&mut self, keys: &[Key], dets: &[Det], unks: Vec<Unk>) {
        let init = keys
            .iter()
            .map(|k| match k {
                Key::Node(_) => St::Node(None),
                Key::Children(_) => St::Kids(None),
            })
            .collect();
        let group = keys
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" + ");
        let mut worlds: BTreeSet<World> = BTreeSet::new();
        worlds.insert(World {
            st: init,
            applied: BTreeSet::new(),
            ended: BTreeSet::new(),
        });
        let mut pending: Vec<Unk> = unks;
        for (i, d) in dets.iter().enumerate() {
            let key = &keys[d.key];
            // 1. Let pending unknown ops take effect before this event
            //    (including those whose window closes at or before it),
            //    if it is the first at its zxid: one applied after an event
            //    at zxid z has a zxid above z, so it cannot come before
            //    another event at z (the state a read at z sees is the
            //    state after txn z; a multi's or a close's parts on several
            //    objects happen together).
            let first_at_zxid = i == 0 || dets[i - 1].zxid < d.zxid;
            let avail: Vec<&Unk> = pending.iter().filter(|u| u.after < d.zxid).collect();
            if first_at_zxid && !avail.is_empty() && !expand(&mut worlds, &avail) {
                self.inconclusive.push(format!(
                    "{group}: more than {WORLDS_MAX} possible worlds before {}",
                    d.desc
                ));
                return;
            }
            // 2. Retire those whose window has closed: a forced one (an
            //    observed expiry) happened in every world.
            let (due, rest): (Vec<Unk>, Vec<Unk>) = pending
                .into_iter()
                .partition(|u| u.before.is_some_and(|b| b <= d.zxid));
            pending = rest;
            for u in &due {
                worlds = worlds
                    .into_iter()
                    .map(|mut w| {
                        if u.forced && !w.applied.contains(&u.id) {
                            if let Some(st) = apply_unknown(&w.st, u) {
                                if let Some(session) = ends(u) {
                                    if st != w.st {
                                        w.ended.insert(session);
                                    }
                                }
                                w.st = st;
                            }
                        }
                        w.applied.remove(&u.id);
                        w
                    })
                    .collect();
            }
            self.max_worlds = self.max_worlds.max(worlds.len());
            // 3. Keep the worlds that predict this reply.
            let mut next = BTreeSet::new();
            let mut why = BTreeSet::new();
            for w in &worlds {
                if w.ended.contains(&d.session) && !matches!(d.mop, MOp::SessionEnd { .. }) {
                    why.insert(format!("session 0x{:x} had ended", d.session as u64));
                    continue;
                }
                match step(&w.st[d.key], &d.mop, Some(d.zxid), Some(&d.obs)) {
                    Ok(st) => {
                        let mut w2 = w.clone();
                        if let MOp::SessionEnd { session } = d.mop {
                            if st != w.st[d.key] {
                                w2.ended.insert(session);
                            }
                        }
                        w2.st[d.key] = st;
                        next.insert(w2);
                    }
                    Err(e) => {
                        why.insert(e);
                    }
                }
            }
            if next.is_empty() {
                let why: Vec<String> = why.into_iter().take(3).collect();
                let pend = pending.iter().filter(|u| u.after < d.zxid).count();
                self.violations.push((
                    d.final_read,
                    format!(
                        "{key}: {} — model expected: {}{}",
                        d.desc,
                        why.join("; or "),
                        if pend > 0 {
                            format!(" ({pend} unknown ops considered)")
                        } else {
                            String::new()
                        }
                    ),
                ));
                let prior = dets[..i]
                    .iter()
                    .rev()
                    .filter(|p| p.write && p.id != d.id)
                    .take(WITNESS_WRITES);
                let unknown = pending
                    .iter()
                    .filter(|u| u.after < d.zxid)
                    .take(WITNESS_UNKNOWN);
                let ids = std::iter::once(d.id)
                    .chain(prior.map(|p| p.id))
                    .chain(unknown.map(|u| u.id));
                self.witnesses.push(ids.collect());
                return;
            }
            worlds = next;
        }
    }
}

/// The groups of objects replayed together: each object alone, except
/// that the objects of one unknown multi go together (transitively).
/// Each group's objects are sorted; groups come in order of their first.
fn groups(objects: BTreeSet<Key>, links: Vec<Vec<Key>>) -> Vec<Vec<Key>> {
    let all: BTreeSet<Key> = objects
        .into_iter()
        .chain(links.iter().flatten().cloned())
        .collect();
    let ix: BTreeMap<&Key, usize> = all.iter().enumerate().map(|(i, k)| (k, i)).collect();
    let mut up: Vec<usize> = (0..all.len()).collect();
    fn root(up: &mut [usize], mut i: usize) -> usize {
        while up[i] != i {
            up[i] = up[up[i]];
            i = up[i];
        }
        i
    }
    for l in &links {
        for pair in l.windows(2) {
            let (a, b) = (root(&mut up, ix[&pair[0]]), root(&mut up, ix[&pair[1]]));
            up[a.max(b)] = a.min(b);
        }
    }
    let mut out: BTreeMap<usize, Vec<Key>> = BTreeMap::new();
    for (i, k) in all.iter().enumerate() {
        out.entry(root(&mut up, i)).or_default().push(k.clone());
    }
    out.into_values().collect()
}

/// The session an unknown op ends, if it is a session end.
fn ends(u: &Unk) -> Option<i64> {
    match u.parts.first() {
        Some((_, MOp::SessionEnd { session })) => Some(*session),
        _ => None,
    }
}

/// An unknown op's effect on a world's objects: all its parts, or `None`
/// when one of them would fail (then it changes nothing, as if it had not
/// happened: a failed multi is rolled back).
fn apply_unknown(st: &[St], u: &Unk) -> Option<Vec<St>> {
    let mut next = st.to_vec();
    for (k, mop) in &u.parts {
        next[*k] = step(&next[*k], mop, None, None).ok()?;
    }
    Some(next)
}

/// Close `worlds` under applying any available unknown op once. False if
/// the set grew past [`WORLDS_MAX`].
fn expand(worlds: &mut BTreeSet<World>, avail: &[&Unk]) -> bool {
    let order: BTreeMap<u64, (i64, u64)> = avail
        .iter()
        .map(|u| (u.id, (u.session, u.invoke_us)))
        .collect();
    // Did `w` already apply an op of `u`'s session invoked after `u`?
    let overtaken = |w: &World, u: &Unk| {
        w.applied.iter().any(|id| {
            order
                .get(id)
                .is_some_and(|(s, t)| *s == u.session && *t > u.invoke_us)
        })
    };
    let mut frontier: Vec<World> = worlds.iter().cloned().collect();
    while !frontier.is_empty() {
        let mut new = Vec::new();
        for w in &frontier {
            for u in avail {
                if w.applied.contains(&u.id) || w.ended.contains(&u.session) || overtaken(w, u) {
                    continue;
                }
                let Some(st) = apply_unknown(&w.st, u) else {
                    continue;
                };
                let end = ends(u);
                if st == w.st && end.is_some() {
                    // Ending a session that owns nothing here changes nothing.
                    continue;
                }
                let mut w2 = w.clone();
                w2.st = st;
                w2.applied.insert(u.id);
                if let Some(session) = end {
                    w2.ended.insert(session);
                }
                if worlds.insert(w2.clone()) {
                    new.push(w2);
                }
                if worlds.len() > WORLDS_MAX {
                    return false;
                }
            }
        }
        frontier = new;
    }
    true
}

fn code(obs: Option<&Obs>) -> Option<&str> {
    match obs {
        Some(Obs::Err(c)) => Some(c),
        _ => None,
    }
}

/// Apply `mop` to `st`. `obs = None`: an unknown op, applied only if it
/// would succeed. Otherwise the reply must be what the model predicts;
/// `Err` says what it predicted instead.
fn step(st: &St, mop: &MOp, zxid: Option<i64>, obs: Option<&Obs>) -> Result<St, String> {
    match st {
        St::Node(n) => step_node(n.as_ref(), mop, zxid, obs).map(St::Node),
        St::Kids(k) => step_kids(k.as_ref(), mop, obs).map(St::Kids),
    }
}

fn fmt_node(n: Option<&NodeSt>) -> String {
    match n {
        None => "no node".into(),
        Some(n) => format!(
            "value={:?} version={}{}",
            n.value.as_deref().unwrap_or(""),
            n.version,
            n.mzxid.map(|z| format!(" mzxid={z}")).unwrap_or_default()
        ),
    }
}

fn check_mzxid(obs: Option<&Obs>, zxid: Option<i64>) -> Result<(), String> {
    if let (Some(Obs::Ok { mzxid: Some(m), .. }), Some(z)) = (obs, zxid) {
        if *m != z {
            return Err(format!("stat.mzxid {z} (the reply's zxid), not {m}"));
        }
    }
    Ok(())
}

/// A create's reply Stat (Create2, or a multi's create sub-result), where
/// the history recorded it: a new node is at version 0, owned by the
/// creating session if ephemeral (else 0).
fn check_created_stat(obs: Option<&Obs>, owner: i64) -> Result<(), String> {
    let Some(Obs::Ok {
        version, owner: o, ..
    }) = obs
    else {
        return Ok(());
    };
    if version.is_some_and(|v| v != 0) {
        return Err("a new node at version 0".into());
    }
    if o.is_some_and(|o| o != owner) {
        return Err(format!(
            "a new node with ephemeralOwner 0x{:x}",
            owner as u64
        ));
    }
    Ok(())
}

fn step_node(
    n: Option<&NodeSt>,
    mop: &MOp,
    zxid: Option<i64>,
    obs: Option<&Obs>,
) -> Result<Option<NodeSt>, String> {
    let state = || fmt_node(n);
    let err = code(obs);
    match mop {
        MOp::Create { value, owner } => match (n, err) {
            (None, None) => {
                check_mzxid(obs, zxid)?;
                check_created_stat(obs, *owner)?;
                Ok(Some(NodeSt {
                    value: value.clone(),
                    version: 0,
                    mzxid: zxid,
                    owner: *owner,
                }))
            }
            (Some(_), Some("NodeExists")) => Ok(n.cloned()),
            (None, _) => Err("create to succeed (no node)".into()),
            (Some(_), _) => Err(format!("NodeExists ({})", state())),
        },
        MOp::SetData { value, version } => match (n, err) {
            (None, Some("NoNode")) => Ok(None),
            (None, _) => Err("NoNode".into()),
            (Some(cur), _) => {
                let matches = *version == -1 || *version == cur.version;
                match (matches, err) {
                    (true, None) => {
                        if let Some(Obs::Ok {
                            version: Some(v), ..
                        }) = obs
                        {
                            if *v != cur.version + 1 {
                                return Err(format!(
                                    "new version {} ({})",
                                    cur.version + 1,
                                    state()
                                ));
                            }
                        }
                        check_mzxid(obs, zxid)?;
                        Ok(Some(NodeSt {
                            value: value.clone(),
                            version: cur.version + 1,
                            mzxid: zxid,
                            owner: cur.owner,
                        }))
                    }
                    (false, Some("BadVersion")) => Ok(n.cloned()),
                    (true, _) => Err(format!("setData to succeed ({})", state())),
                    (false, _) => Err(format!("BadVersion ({})", state())),
                }
            }
        },
        MOp::Delete { version } => match (n, err) {
            (None, Some("NoNode")) => Ok(None),
            (None, _) => Err("NoNode".into()),
            (Some(cur), _) => {
                let matches = *version == -1 || *version == cur.version;
                match (matches, err) {
                    (true, None) => Ok(None),
                    (false, Some("BadVersion")) => Ok(n.cloned()),
                    (true, _) => Err(format!("delete to succeed ({})", state())),
                    (false, _) => Err(format!("BadVersion ({})", state())),
                }
            }
        },
        MOp::GetData | MOp::Exists => {
            let Some(o) = obs else {
                return Ok(n.cloned());
            };
            let (present, value, version, mzxid) = match o {
                Obs::Err(c) if c == "NoNode" => (false, None, None, None),
                Obs::Err(c) => return Err(format!("no error but {c} ({})", state())),
                Obs::Ok {
                    exists: Some(false),
                    ..
                } => (false, None, None, None),
                Obs::Ok {
                    value,
                    version,
                    mzxid,
                    ..
                } => (true, value.as_ref(), *version, *mzxid),
            };
            match n {
                None if !present => Ok(None),
                None => Err("no node".into()),
                Some(_) if !present => Err(state()),
                Some(cur) => {
                    let value_ok = *mop == MOp::Exists || value == cur.value.as_ref();
                    let version_ok = version.is_none_or(|v| v == cur.version);
                    let mzxid_ok = match (mzxid, cur.mzxid) {
                        (Some(a), Some(b)) => a == b,
                        _ => true,
                    };
                    if value_ok && version_ok && mzxid_ok {
                        Ok(n.cloned())
                    } else {
                        Err(state())
                    }
                }
            }
        }
        MOp::SessionEnd { session } => match n {
            Some(cur) if cur.owner == *session => Ok(None),
            _ => Ok(n.cloned()),
        },
        MOp::Check { version } => match (n, err) {
            (None, Some("NoNode")) => Ok(None),
            (None, _) => Err("NoNode".into()),
            (Some(cur), _) => match (*version == -1 || *version == cur.version, err) {
                (true, None) => Ok(n.cloned()),
                (false, Some("BadVersion")) => Ok(n.cloned()),
                (true, _) => Err(format!("check to succeed ({})", state())),
                (false, _) => Err(format!("BadVersion ({})", state())),
            },
        },
        MOp::Multi { steps, failed } => step_multi(n, steps, *failed, zxid, obs.is_some()),
        MOp::CreateSeq { .. } | MOp::GetChildren => {
            Err("(internal) child-list op on a znode object".into())
        }
    }
}

/// A multi's steps on one znode at one zxid. `known`: the outcome was
/// answered (check each step against its sub-result); otherwise the steps
/// apply only if they all succeed here. A failed multi changes nothing.
fn step_multi(
    n: Option<&NodeSt>,
    steps: &[(MOp, SubObs)],
    failed: bool,
    zxid: Option<i64>,
    known: bool,
) -> Result<Option<NodeSt>, String> {
    let mut cur = n.cloned();
    for (i, (m, sub)) in steps.iter().enumerate() {
        let o = match (known, sub) {
            (false, _) => None,
            (true, SubObs::Ok(o) | SubObs::Failed(o)) => Some(o),
            (true, SubObs::NotReached) => break,
        };
        cur = step_node(cur.as_ref(), m, zxid, o)
            .map_err(|e| format!("multi sub-operation {} ({m:?}): {e}", i + 1))?;
        if known && matches!(sub, SubObs::Failed(_)) {
            break;
        }
    }
    if known && failed {
        Ok(n.cloned())
    } else {
        Ok(cur)
    }
}

fn fmt_kids(k: Option<&KidsSt>) -> String {
    match k {
        None => "no parent node".into(),
        Some(k) => format!("cversion={} children={:?}", k.cversion, k.children),
    }
}

fn step_kids(k: Option<&KidsSt>, mop: &MOp, obs: Option<&Obs>) -> Result<Option<KidsSt>, String> {
    let err = code(obs);
    match mop {
        MOp::Create { .. } => match (k, err) {
            (None, None) => Ok(Some(KidsSt {
                cversion: 0,
                children: BTreeSet::new(),
            })),
            (Some(_), Some("NodeExists")) => Ok(k.cloned()),
            (None, _) => Err("create of the parent to succeed".into()),
            (Some(_), _) => Err("NodeExists for the parent".into()),
        },
        MOp::Delete { .. } => match (k, err) {
            (None, Some("NoNode")) => Ok(None),
            (None, _) => Err("NoNode for the parent".into()),
            (Some(cur), None) if cur.children.is_empty() => Ok(None),
            (Some(cur), Some("NotEmpty")) if !cur.children.is_empty() => Ok(k.cloned()),
            (Some(_), Some("BadVersion")) => Ok(k.cloned()),
            (Some(_), _) => Err(format!("a different delete outcome ({})", fmt_kids(k))),
        },
        MOp::CreateSeq { prefix } => match (k, err) {
            (None, Some("NoNode")) => Ok(None),
            (None, _) => Err("NoNode (no parent)".into()),
            (Some(cur), _) => {
                let expected = format!("{prefix}{:010}", cur.cversion);
                let name = expected.rsplit('/').next().unwrap_or("").to_string();
                match obs {
                    None => {}
                    Some(Obs::Ok { path: Some(p), .. }) if *p == expected => {}
                    Some(_) => return Err(format!("sequential node {expected} ({})", fmt_kids(k))),
                }
                let mut next = cur.clone();
                next.cversion += 1;
                next.children.insert(name);
                Ok(Some(next))
            }
        },
        MOp::GetChildren => {
            let Some(o) = obs else {
                return Ok(k.cloned());
            };
            match (k, o) {
                (None, Obs::Err(c)) if c == "NoNode" => Ok(None),
                (
                    Some(cur),
                    Obs::Ok {
                        children: Some(c), ..
                    },
                ) if c.iter().cloned().collect::<BTreeSet<_>>() == cur.children
                    && c.len() == cur.children.len() =>
                {
                    Ok(k.cloned())
                }
                _ => Err(fmt_kids(k)),
            }
        }
        MOp::SessionEnd { .. } => Ok(k.cloned()),
        MOp::SetData { .. }
        | MOp::GetData
        | MOp::Exists
        | MOp::Check { .. }
        | MOp::Multi { .. } => Err("(internal) znode op on a child-list object".into()),
    }
}

/// The linearizability verdict: model violations on the workload's own
/// operations, inconclusive searches, and real-time order.
pub fn check(ops: &[OpRec<'_>], model: &Model) -> CheckResult {
    let mut r = CheckResult::new("linearizability");
    let at: BTreeMap<u64, &OpRec<'_>> = ops.iter().map(|o| (o.id(), o)).collect();
    for (i, (final_read, v)) in model.violations.iter().enumerate() {
        if !final_read {
            let ids = model.witnesses.get(i).into_iter().flatten();
            r.violation_with(
                v.clone(),
                ids.filter_map(|id| at.get(id)).flat_map(|o| o.at()),
            );
        }
    }
    for v in &model.inconclusive {
        r.violation(format!("inconclusive: {v}"));
    }
    real_time(ops, &mut r);
    r.notes.push(format!(
        "{} objects, {} determinate ops replayed, {} unknown writes modelled as may-or-may-not, at most {} possible worlds",
        model.objects, model.determinate, model.unknown_writes, model.max_worlds
    ));
    r.notes.extend(model.notes.iter().cloned());
    r
}

/// Writes are ordered by zxid consistently with real time: a write invoked
/// after any operation completed has a larger zxid; two writes never share one.
fn real_time(ops: &[OpRec<'_>], r: &mut CheckResult) {
    let mut done: Vec<(u64, i64, &OpRec<'_>)> = ops
        .iter()
        .filter_map(|o| Some((o.complete_us()?, o.zxid()?, o)))
        .collect();
    done.sort_by_key(|d| (d.0, d.1));
    // best[i]: the largest zxid among done[..=i], and where it is.
    let mut best: Vec<(i64, usize)> = Vec::with_capacity(done.len());
    let mut cur: Option<(i64, usize)> = None;
    for (i, d) in done.iter().enumerate() {
        if cur.is_none_or(|(z, _)| d.1 > z) {
            cur = Some((d.1, i));
        }
        best.push(cur.expect("set above"));
    }
    let mut seen: BTreeMap<i64, &OpRec<'_>> = BTreeMap::new();
    for o in ops.iter().filter(|o| o.is_txn()) {
        let z = o.zxid().expect("txn has a zxid");
        if let Some(other) = seen.insert(z, o) {
            r.violation_with(
                format!(
                    "two writes acknowledged with zxid {z}: op {} and {}",
                    other.id(),
                    o.describe()
                ),
                other.at().chain(o.at()),
            );
        }
        let i = done.partition_point(|d| d.0 < o.invoke_us());
        if i == 0 {
            continue;
        }
        let (maxz, at) = best[i - 1];
        if maxz >= z {
            r.violation_with(
                format!(
                    "real-time order: {} got zxid {z}, but {} had completed before it was invoked",
                    o.describe(),
                    done[at].2.describe()
                ),
                o.at().chain(done[at].2.at()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::h;
    use super::super::{check_all, pair_ops, Verdict};
    use super::*;

    fn lin(text: &str) -> CheckResult {
        let ev = h(text);
        let (ops, p) = pair_ops(&ev);
        assert!(p.is_empty(), "{p:?}");
        let m = Model::run(&ev, &ops);
        check(&ops, &m)
    }

    const GOOD: &str = "
        1 invoke 1 0x1 1 create /k value=a
        2 ok 1 0x1 1 zxid=5 mzxid=5
        3 invoke 2 0x2 2 set_data /k value=b version=-1
        4 ok 2 0x2 2 zxid=6 version=1 mzxid=6
        5 invoke 1 0x1 3 get_data /k
        6 ok 1 0x1 3 zxid=6 value=b version=1 mzxid=6
        7 invoke 2 0x2 4 set_data /k value=c version=0
        8 fail 2 0x2 4 zxid=7 error=BadVersion
        9 invoke 1 0x1 5 exists /k
        10 ok 1 0x1 5 zxid=7 exists=true version=1 mzxid=6
        11 invoke 1 0x1 6 delete /k version=-1
        12 ok 1 0x1 6 zxid=8
        13 invoke 2 0x2 7 get_data /k
        14 fail 2 0x2 7 zxid=8 error=NoNode
        15 invoke 2 0x2 8 create /k value=d
        16 ok 2 0x2 8 zxid=9 mzxid=9
    ";

    #[test]
    fn good_register_history_passes() {
        let r = lin(GOOD);
        assert_eq!(r.verdict, Verdict::Pass, "{r:?}");
    }

    #[test]
    fn stale_read_at_its_zxid_is_caught() {
        // The read claims zxid 6 but returns the value before write 6.
        let r = lin(&GOOD.replace(
            "ok 1 0x1 3 zxid=6 value=b version=1 mzxid=6",
            "ok 1 0x1 3 zxid=6 value=a version=0 mzxid=5",
        ));
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.violations[0].contains("znode /k"), "{r:?}");
    }

    #[test]
    fn wrong_version_and_missing_bad_version_are_caught() {
        let r = lin(&GOOD.replace("zxid=6 version=1 mzxid=6", "zxid=6 version=2 mzxid=6"));
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
        let r = lin(&GOOD.replace(
            "8 fail 2 0x2 4 zxid=7 error=BadVersion",
            "8 ok 2 0x2 4 zxid=7 version=2 mzxid=7",
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
        assert!(r.violations[0].contains("BadVersion"), "{r:?}");
    }

    #[test]
    fn lost_write_is_caught() {
        // Deleted at zxid 8, yet a later read still finds it.
        let r = lin(&GOOD.replace(
            "14 fail 2 0x2 7 zxid=8 error=NoNode",
            "14 ok 2 0x2 7 zxid=8 value=b version=1 mzxid=6",
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
    }

    #[test]
    fn real_time_violation_is_caught() {
        // The delete completed at t=12, then a create invoked at t=15 gets a
        // smaller zxid.
        let r = lin(&GOOD.replace(
            "16 ok 2 0x2 8 zxid=9 mzxid=9",
            "16 ok 2 0x2 8 zxid=4 mzxid=4",
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
        assert!(
            r.violations.iter().any(|v| v.contains("real-time")),
            "{r:?}"
        );
    }

    #[test]
    fn unknown_write_may_or_may_not_have_happened() {
        let base = "
            1 invoke 1 0x1 1 create /k value=a
            2 ok 1 0x1 1 zxid=1 mzxid=1
            3 invoke 1 0x1 2 set_data /k value=b version=-1
            4 info 1 0x1 2 error=timeout
            5 invoke 2 0x2 3 get_data /k
        ";
        // Happened:
        let r = lin(&format!(
            "{base}\n6 ok 2 0x2 3 zxid=2 value=b version=1 mzxid=2"
        ));
        assert_eq!(r.verdict, Verdict::Pass, "{r:?}");
        // Did not happen:
        let r = lin(&format!(
            "{base}\n6 ok 2 0x2 3 zxid=1 value=a version=0 mzxid=1"
        ));
        assert_eq!(r.verdict, Verdict::Pass, "{r:?}");
        // Neither explains this:
        let r = lin(&format!(
            "{base}\n6 ok 2 0x2 3 zxid=2 value=zzz version=1 mzxid=2"
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
        // Nor can it happen twice:
        let r = lin(&format!(
            "{base}\n6 ok 2 0x2 3 zxid=3 value=b version=2 mzxid=3"
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
        // Nor between two reads at one zxid: both see the state after txn 2.
        let r = lin(&format!(
            "{base}\n6 ok 2 0x2 3 zxid=2 value=a version=0 mzxid=1\n7 invoke 3 0x3 4 get_data /k\n8 ok 3 0x3 4 zxid=2 value=b version=1"
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
    }

    #[test]
    fn unknown_write_cannot_take_effect_after_its_sessions_next_write() {
        let r = lin("
            1 invoke 1 0x1 1 create /k value=a
            2 ok 1 0x1 1 zxid=1 mzxid=1
            3 invoke 1 0x1 2 set_data /k value=b version=-1
            4 info 1 0x1 2 error=timeout
            5 invoke 1 0x1 3 create /other value=x
            6 ok 1 0x1 3 zxid=2 mzxid=2
            7 invoke 2 0x2 4 get_data /k
            8 ok 2 0x2 4 zxid=3 value=b version=1
        ");
        // b could only have been written before zxid 2, so the read at
        // zxid 3 may see it: pass.
        assert_eq!(r.verdict, Verdict::Pass, "{r:?}");
        // But a read at zxid 1 that sees b while the value was a at zxid 1:
        // the unknown write would have to come before... it is after zxid 1.
        let r = lin("
            1 invoke 1 0x1 1 create /k value=a
            2 ok 1 0x1 1 zxid=1 mzxid=1
            3 invoke 1 0x1 2 set_data /k value=b version=-1
            4 info 1 0x1 2 error=timeout
            5 invoke 2 0x2 4 get_data /k
            6 ok 2 0x2 4 zxid=1 value=b version=1
        ");
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
    }

    #[test]
    fn sequential_creates_and_children() {
        let good = "
            1 invoke 0 0x9 1 create /s
            2 ok 0 0x9 1 zxid=1 mzxid=1
            3 invoke 1 0x1 2 create_sequential /s/n-
            4 ok 1 0x1 2 zxid=2 path=/s/n-0000000000
            5 invoke 2 0x2 3 create_sequential /s/n-
            6 info 2 0x2 3 error=timeout
            7 invoke 1 0x1 4 create_sequential /s/n-
            8 ok 1 0x1 4 zxid=4 path=/s/n-0000000002
            9 invoke 2 0x3 5 get_children /s
            10 ok 2 0x3 5 zxid=4 children=n-0000000000,n-0000000001,n-0000000002
        ";
        assert_eq!(lin(good).verdict, Verdict::Pass);
        // Duplicate sequence number.
        let bad = good.replace("path=/s/n-0000000002", "path=/s/n-0000000000");
        assert_eq!(lin(&bad).verdict, Verdict::Fail);
        // A child that no create explains.
        let bad = good.replace(
            "n-0000000001,n-0000000002",
            "n-0000000001,n-0000000002,n-0000000007",
        );
        assert_eq!(lin(&bad).verdict, Verdict::Fail);
    }

    #[test]
    fn ephemerals_vanish_with_their_session() {
        let base = "
            1 invoke 1 0x1 1 create_ephemeral /e value=a
            2 ok 1 0x1 1 zxid=1 mzxid=1
            3 invoke 1 0x1 2 close /
            4 ok 1 0x1 2 zxid=2
            5 invoke 2 0x2 3 exists /e
        ";
        assert_eq!(
            lin(&format!("{base}\n6 ok 2 0x2 3 zxid=2 exists=false")).verdict,
            Verdict::Pass
        );
        let r = lin(&format!(
            "{base}\n6 ok 2 0x2 3 zxid=2 exists=true version=0 mzxid=1"
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
        // An observed expiry forces the delete before the next write.
        let expired = "
            1 invoke 1 0x1 1 create_ephemeral /e value=a
            2 ok 1 0x1 1 zxid=1 mzxid=1
            3 session_expired client=1 session=0x1
            4 invoke 1 0x2 2 create /x value=b
            5 ok 1 0x2 2 zxid=3 mzxid=3
            6 invoke 2 0x3 3 exists /e
        ";
        assert_eq!(
            lin(&format!("{expired}\n7 ok 2 0x3 3 zxid=3 exists=false")).verdict,
            Verdict::Pass
        );
        let r = lin(&format!(
            "{expired}\n7 ok 2 0x3 3 zxid=3 exists=true version=0 mzxid=1"
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
    }

    fn lin_x(text: &str) -> CheckResult {
        let ev = crate::check::changes::fixture::hx(text);
        let (ops, p) = pair_ops(&ev);
        assert!(p.is_empty(), "{p:?}");
        let m = Model::run(&ev, &ops);
        check(&ops, &m)
    }

    /// A successful multi (create /a, set /b, check /b) at zxid 3, a failed
    /// one (set /a at version 0 rolled back, delete /c fails NoNode) at
    /// zxid 4, then reads.
    const MULTI: &str = r#"
        1 invoke client=1 session=0x1 op_id=1 op=create path=/b value=b0
        2 ok client=1 session=0x1 op_id=1 zxid=2 mzxid=2
        3 invoke client=1 session=0x1 op_id=2 op=multi ops=[{"op":"create","path":"/a","value":"a0"},{"op":"set_data","path":"/b","value":"b1","version":0},{"op":"check","path":"/b","version":1}]
        4 ok client=1 session=0x1 op_id=2 zxid=3 results=[{"path":"/a","version":0,"mzxid":3},{"version":1,"mzxid":3},{}]
        5 invoke client=2 session=0x2 op_id=3 op=multi ops=[{"op":"set_data","path":"/a","value":"a1","version":0},{"op":"delete","path":"/c","version":-1},{"op":"check","path":"/b","version":1}]
        6 fail client=2 session=0x2 op_id=3 zxid=4 error=NoNode results=[{"error":"RolledBack"},{"error":"NoNode"},{"error":"RuntimeInconsistency"}]
        7 invoke client=2 session=0x2 op_id=4 op=get_data path=/a
        8 ok client=2 session=0x2 op_id=4 zxid=4 value=a0 version=0 mzxid=3
        9 invoke client=2 session=0x2 op_id=5 op=get_data path=/b
        10 ok client=2 session=0x2 op_id=5 zxid=4 value=b1 version=1 mzxid=3
    "#;

    #[test]
    fn multi_is_all_or_nothing() {
        let r = lin_x(MULTI);
        assert_eq!(r.verdict, Verdict::Pass, "{r:#?}");
        // The failed multi's rolled-back setData must not show.
        let r = lin_x(&MULTI.replace(
            "ok client=2 session=0x2 op_id=4 zxid=4 value=a0 version=0 mzxid=3",
            "ok client=2 session=0x2 op_id=4 zxid=4 value=a1 version=1 mzxid=4",
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
        // A successful multi applies every sub-operation.
        let r = lin_x(&MULTI.replace(
            "ok client=2 session=0x2 op_id=5 zxid=4 value=b1 version=1 mzxid=3",
            "ok client=2 session=0x2 op_id=5 zxid=4 value=b0 version=0 mzxid=2",
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
    }

    #[test]
    fn multi_sub_results_must_be_explained() {
        // The failing sub-op must be one the model says fails.
        let r = lin_x(&MULTI.replace(
            r#"{"op":"delete","path":"/c","version":-1}"#,
            r#"{"op":"delete","path":"/b","version":-1}"#,
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
        // A rolled-back sub-op must be one that would have succeeded.
        let r = lin_x(&MULTI.replace(
            r#"{"op":"set_data","path":"/a","value":"a1","version":0}"#,
            r#"{"op":"set_data","path":"/a","value":"a1","version":5}"#,
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
        // A check at the wrong version cannot succeed.
        let r = lin_x(&MULTI.replace(
            r#"{"op":"check","path":"/b","version":1}]
        4"#,
            r#"{"op":"check","path":"/b","version":0}]
        4"#,
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
        // Sub-results carry the multi's zxid.
        let r = lin_x(&MULTI.replace(r#"{"version":1,"mzxid":3}"#, r#"{"version":1,"mzxid":2}"#));
        assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
    }

    /// /b exists at version 0; client 1's multi (create /a, set /b) times
    /// out; client 2 then reads /a, then /b.
    const UNKNOWN_MULTI: &str = r#"
        1 invoke client=1 session=0x1 op_id=1 op=create path=/b value=b0
        2 ok client=1 session=0x1 op_id=1 zxid=1 mzxid=1 version=0
        3 invoke client=1 session=0x1 op_id=2 op=multi ops=[{"op":"create","path":"/a","value":"a0"},{"op":"set_data","path":"/b","value":"b1","version":0}]
        4 info client=1 session=0x1 op_id=2 error=timeout
        5 invoke client=2 session=0x2 op_id=3 op=get_data path=/a
    "#;

    fn unknown_multi(read_a: &str, read_b: &str) -> CheckResult {
        lin_x(&format!(
            "{UNKNOWN_MULTI}\n6 ok client=2 session=0x2 op_id=3 {read_a}\n7 invoke client=2 session=0x2 op_id=4 op=get_data path=/b\n8 ok client=2 session=0x2 op_id=4 {read_b}"
        ))
    }

    #[test]
    fn unknown_multi_happened_entirely_or_not_at_all() {
        // Happened: both of its effects show.
        let r = unknown_multi("zxid=2 value=a0 version=0", "zxid=2 value=b1 version=1");
        assert_eq!(r.verdict, Verdict::Pass, "{r:#?}");
        // Did not happen (yet): neither shows.
        let r = lin_x(&format!(
            "{UNKNOWN_MULTI}\n6 fail client=2 session=0x2 op_id=3 zxid=1 error=NoNode\n7 invoke client=2 session=0x2 op_id=4 op=get_data path=/b\n8 ok client=2 session=0x2 op_id=4 zxid=1 value=b0 version=0 mzxid=1"
        ));
        assert_eq!(r.verdict, Verdict::Pass, "{r:#?}");
        // Half of it: /a was created at zxid 2 but /b was not set by then.
        let r = unknown_multi(
            "zxid=2 value=a0 version=0",
            "zxid=2 value=b0 version=0 mzxid=1",
        );
        assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
        assert!(r.violations[0].contains("znode /b"), "{r:#?}");
        // Nor the other half: /b set at zxid 2 and /a absent then.
        let r = lin_x(&format!(
            "{UNKNOWN_MULTI}\n6 fail client=2 session=0x2 op_id=3 zxid=2 error=NoNode\n7 invoke client=2 session=0x2 op_id=4 op=get_data path=/b\n8 ok client=2 session=0x2 op_id=4 zxid=2 value=b1 version=1"
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
        assert!(
            r.notes.iter().any(|n| n.contains("replayed together")),
            "{r:#?}"
        );
    }

    #[test]
    fn unknown_multi_that_cannot_succeed_changes_nothing() {
        // The multi checks /j (which never exists) and deletes /k: it
        // cannot have succeeded, so /k was never deleted and the second
        // create of /k must fail.
        let base = r#"
            1 invoke client=1 session=0x1 op_id=1 op=multi ops=[{"op":"check","path":"/j","version":0},{"op":"delete","path":"/k","version":-1}]
            2 invoke client=2 session=0x2 op_id=2 op=create path=/k value=v2
            3 info client=1 session=0x1 op_id=1 error=timeout
            4 ok client=2 session=0x2 op_id=2 zxid=2 version=0 mzxid=2
            5 invoke client=2 session=0x2 op_id=3 op=create path=/k value=v3
        "#;
        let r = lin_x(&format!(
            "{base}\n6 fail client=2 session=0x2 op_id=3 zxid=3 error=NodeExists"
        ));
        assert_eq!(r.verdict, Verdict::Pass, "{r:#?}");
        let r = lin_x(&format!(
            "{base}\n6 ok client=2 session=0x2 op_id=3 zxid=3 version=0 mzxid=3"
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
        // With /j at version 0 it could have: then the create may succeed.
        let with_j = base.replace(
            "1 invoke client=1",
            "0.5 invoke client=3 session=0x3 op_id=9 op=create path=/j value=j\n0.6 ok client=3 session=0x3 op_id=9 zxid=1 version=0 mzxid=1\n1 invoke client=1",
        );
        let r = lin_x(&format!(
            "{with_j}\n6 ok client=2 session=0x2 op_id=3 zxid=4 version=0 mzxid=4"
        ));
        assert_eq!(r.verdict, Verdict::Pass, "{r:#?}");
    }

    #[test]
    fn create_reply_stat_is_checked() {
        // GOOD's first create, with its Stat recorded.
        let good = GOOD.replace(
            "2 ok 1 0x1 1 zxid=5 mzxid=5",
            "2 ok 1 0x1 1 zxid=5 mzxid=5 version=0",
        );
        assert_eq!(lin(&good).verdict, Verdict::Pass);
        // A new node is at version 0.
        let r = lin(&good.replace("zxid=5 mzxid=5 version=0", "zxid=5 mzxid=5 version=1"));
        assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
        assert!(r.violations[0].contains("version 0"), "{r:#?}");
        // A persistent node has no owner.
        let r = lin(&good.replace(
            "zxid=5 mzxid=5 version=0",
            "zxid=5 mzxid=5 version=0 owner=0x1",
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
        // An ephemeral one is owned by its creator (a recorded Stat without
        // an owner says 0).
        let eph = "
            1 invoke 1 0x1 1 create_ephemeral /e value=a
            2 ok 1 0x1 1 zxid=1 mzxid=1 version=0 owner=0x1
        ";
        assert_eq!(lin(eph).verdict, Verdict::Pass);
        for bad in ["version=0 owner=0x2", "version=0"] {
            let r = lin(&eph.replace("version=0 owner=0x1", bad));
            assert_eq!(r.verdict, Verdict::Fail, "{bad}: {r:#?}");
            assert!(r.violations[0].contains("ephemeralOwner 0x1"), "{r:#?}");
        }
        // (Without a recorded Stat there is nothing to check.)
        assert_eq!(
            lin(&eph.replace(" version=0 owner=0x1", "")).verdict,
            Verdict::Pass
        );
        // A sequential create's node too.
        let seq = "
            1 invoke 0 0x9 1 create /s
            2 ok 0 0x9 1 zxid=1 mzxid=1 version=0
            3 invoke 1 0x1 2 create_ephemeral_sequential /s/n-
            4 ok 1 0x1 2 zxid=2 mzxid=2 path=/s/n-0000000000 version=0 owner=0x1
        ";
        assert_eq!(lin(seq).verdict, Verdict::Pass);
        let r = lin(&seq.replace("n-0000000000 version=0", "n-0000000000 version=3"));
        assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
        // A multi's create sub-result (Create2) as well.
        assert_eq!(lin_x(MULTI).verdict, Verdict::Pass);
        let r = lin_x(&MULTI.replace(
            r#"{"path":"/a","version":0,"mzxid":3}"#,
            r#"{"path":"/a","version":1,"mzxid":3}"#,
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
    }

    #[test]
    fn check_all_runs_everything() {
        let text = format!("{GOOD}\n17 phase detail=final");
        let r = check_all(&h(&text), &crate::scenario::CHECKS.map(String::from), 1000);
        for c in &r {
            assert_ne!(c.verdict, Verdict::Fail, "{c:?}");
        }
    }
}
