//! The znode changes a history proves, by zxid, and what it leaves open.
//! Shared by the [`super::watch`], [`super::ephemeral`] and
//! [`super::lock`] checkers (independent of the server: it is built from
//! the history alone).
//!
//! - **Certain changes**: every answered, successful write is a change at
//!   its reply zxid (a create is `Created`, a setData `DataChanged`, a
//!   delete `Deleted`; a multi's sub-operations all at the multi's zxid;
//!   a failed write or multi changes nothing). An acknowledged
//!   closeSession deletes, at its zxid, every ephemeral its session owned
//!   then. An unknown write proven by a read (its unique value read back,
//!   with the `mzxid` it got) is certain too.
//! - **Open windows**: a write whose outcome is unknown may have changed
//!   its path at any zxid in `(lo, hi]`: after everything acknowledged
//!   before it was invoked, before its session's next acknowledged write
//!   or its close. A session that ended without an acknowledged close
//!   (expiry) deleted its ephemerals after the last zxid it was seen alive
//!   and, if the client saw the expiry, before the first write invoked
//!   after that. An unknown sequential create opens a window on its
//!   parent's children (its name is unknown).
//! - **Unmodelled paths**: a safety net. If a read of a path disagrees with
//!   its certain changes (which only open windows can explain), the path is
//!   reported as not modelled; the checkers stay lenient there. The
//!   linearizability checker judges such reads on its own.
//!
//! Session life: the largest reply zxid that proves a session alive (an
//! answer other than a session error), its acknowledged close, and an
//! observed expiry.
//!
//! Invariants:
//! - `by_path` lists are sorted by zxid (sub-operations of one multi keep
//!   their order);
//! - every window has `lo < hi` when `hi` is set.

use super::OpRec;
use crate::history::{Event, OpName, Ty, ROLLED_BACK, TXN_ERRORS};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Created,
    DataChanged,
    Deleted,
}

impl Kind {
    /// The watch event this change fires on its own path.
    pub fn event(self) -> &'static str {
        match self {
            Kind::Created => "NodeCreated",
            Kind::DataChanged => "NodeDataChanged",
            Kind::Deleted => "NodeDeleted",
        }
    }
}

/// A change the history proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub zxid: i64,
    pub path: String,
    pub kind: Kind,
    /// For `Created`: the ephemeral owner (0: persistent).
    pub owner: i64,
    /// History index of the completion that proves it.
    pub at: usize,
}

/// An unknown change of a path (or of a parent's children) at some zxid
/// in `(lo, hi]` (`hi = None`: unbounded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub lo: i64,
    pub hi: Option<i64>,
}

impl Window {
    /// Could the change have happened in `(a, b]` (`b = None`: unbounded)?
    pub fn meets(&self, a: i64, b: Option<i64>) -> bool {
        let below_b = b.is_none_or(|b| self.lo < b);
        let above_a = self.hi.is_none_or(|h| h > a);
        below_b && above_a
    }
}

/// What the history says about a session's life.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Life {
    /// Largest reply zxid proving the session alive.
    pub alive: i64,
    /// Zxid of its acknowledged close.
    pub closed: Option<i64>,
    /// The client saw it expire; it ended before this zxid (the first
    /// write invoked after the observation), if any.
    pub expired_before: Option<Option<i64>>,
}

impl Life {
    /// The session had certainly ended at `z` (its end is at or before `z`).
    pub fn ended_by(&self, z: i64) -> bool {
        self.closed.is_some_and(|c| c <= z)
            || matches!(self.expired_before, Some(Some(b)) if b <= z)
    }
}

/// The changes of a history. See the module docs.
#[derive(Debug, Default)]
pub struct Changes {
    by_path: BTreeMap<String, Vec<Change>>,
    /// Parent -> zxids at which a direct child was created or deleted.
    child_zxids: BTreeMap<String, Vec<i64>>,
    windows: BTreeMap<String, Vec<Window>>,
    /// Parent -> windows of unknown creates or deletes of its children
    /// (direct children's own windows are in `windows`).
    child_windows: BTreeMap<String, Vec<Window>>,
    pub unmodelled: BTreeSet<String>,
    pub sessions: BTreeMap<i64, Life>,
    /// Unknown writes the history left open, and how many a read resolved.
    pub unknown: usize,
    pub resolved: usize,
}

pub fn parent(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &p[..i],
    }
}

/// `p` itself or a descendant of `root`.
pub fn under(p: &str, root: &str) -> bool {
    p == root
        || (p.starts_with(root) && (root == "/" || p.as_bytes().get(root.len()) == Some(&b'/')))
}

/// Answers that prove the session was alive when the server made them.
fn proves_alive(d: &Event) -> bool {
    match d.ty {
        Ty::Ok => true,
        Ty::Fail => d
            .error
            .as_deref()
            .is_some_and(|e| TXN_ERRORS.contains(&e) || e == "NoWatcher"),
        _ => false,
    }
}

/// Sorted (time, zxid) pairs: "largest zxid completed before t".
struct DoneBefore(Vec<(u64, i64)>);

impl DoneBefore {
    fn new(ops: &[OpRec<'_>]) -> DoneBefore {
        let mut v: Vec<(u64, i64)> = ops
            .iter()
            .filter_map(|o| Some((o.complete_us()?, o.zxid()?)))
            .collect();
        v.sort();
        let mut m = 0;
        for d in &mut v {
            m = m.max(d.1);
            d.1 = m;
        }
        DoneBefore(v)
    }

    fn at(&self, t: u64) -> i64 {
        let i = self.0.partition_point(|d| d.0 < t);
        if i == 0 {
            0
        } else {
            self.0[i - 1].1
        }
    }
}

impl Changes {
    /// Build from a history and its paired operations.
    pub fn build(events: &[Event], ops: &[OpRec<'_>]) -> Changes {
        let mut c = Changes::default();
        let done_before = DoneBefore::new(ops);
        // Txn writes per session by invoke time, for "before its next write".
        let mut txns: BTreeMap<i64, Vec<(u64, i64)>> = BTreeMap::new();
        for o in ops.iter().filter(|o| o.is_txn()) {
            let z = o.zxid().expect("txn");
            txns.entry(o.session())
                .or_default()
                .push((o.invoke_us(), z));
        }
        for v in txns.values_mut() {
            v.sort();
        }
        let all_txns: Vec<(u64, i64)> = {
            let mut v: Vec<(u64, i64)> = txns.values().flatten().copied().collect();
            v.sort();
            v
        };
        let first_txn_after = |t: u64| {
            all_txns
                .iter()
                .filter(|(ti, _)| *ti > t)
                .map(|(_, z)| *z)
                .min()
        };
        // Session lives.
        for o in ops {
            let Some(d) = o.done else { continue };
            if o.client() == 0 && o.op() == OpName::Connect {
                continue;
            }
            if proves_alive(d) {
                let l = c.sessions.entry(o.session()).or_default();
                l.alive = l.alive.max(d.zxid.unwrap_or(0));
                if o.op() == OpName::Close && d.ty == Ty::Ok {
                    l.closed = d.zxid;
                }
            }
        }
        for e in events.iter().filter(|e| e.ty == Ty::SessionExpired) {
            if let Some(s) = e.session {
                c.sessions.entry(s).or_default().expired_before = Some(first_txn_after(e.t_us));
            }
        }
        // Values read back, to resolve unknown creates and setDatas.
        let mut read_back: BTreeMap<(&str, &str), i64> = BTreeMap::new();
        for o in ops.iter().filter(|o| o.op() == OpName::GetData) {
            if let Some(d) = o.done.filter(|d| d.ty == Ty::Ok) {
                if let (Some(v), Some(m)) = (d.value.as_deref(), d.mzxid) {
                    read_back.insert((o.path(), v), m);
                }
            }
        }
        let mut eph: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
        for o in ops {
            if o.never_sent() || o.is_rejected_write() || !o.op().is_write() {
                continue;
            }
            if o.is_determinate() {
                c.add_known(o, &mut eph);
                continue;
            }
            // Unknown outcome.
            c.unknown += 1;
            let lo = done_before.at(o.invoke_us());
            let next = txns
                .get(&o.session())
                .and_then(|v| v.iter().find(|(t, _)| *t > o.invoke_us()).map(|(_, z)| *z));
            let end = c.sessions.get(&o.session()).and_then(|l| l.closed);
            let hi = match (next, end) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let w = Window { lo, hi };
            let value = o.inv.value.as_deref().unwrap_or("");
            match o.op() {
                OpName::Create | OpName::CreateEphemeral | OpName::SetData => {
                    if let Some(&m) = read_back.get(&(o.path(), value)) {
                        c.resolved += 1;
                        let (kind, owner) = match o.op() {
                            OpName::SetData => (Kind::DataChanged, 0),
                            OpName::CreateEphemeral => (Kind::Created, o.session()),
                            _ => (Kind::Created, 0),
                        };
                        if kind == Kind::Created && owner != 0 {
                            eph.entry(owner).or_default().insert(o.path().into());
                        }
                        c.push(m, o.path(), kind, owner, o.inv_at);
                    } else {
                        if o.op() == OpName::CreateEphemeral {
                            eph.entry(o.session()).or_default().insert(o.path().into());
                        }
                        c.add_window(o.path(), w);
                    }
                }
                OpName::Delete => c.add_window(o.path(), w),
                OpName::CreateSequential | OpName::CreateEphemeralSequential => {
                    c.child_windows
                        .entry(parent(o.path()).to_string())
                        .or_default()
                        .push(w);
                }
                OpName::Multi => {
                    for s in o.inv.ops.iter().flatten() {
                        c.add_window(&s.path, w.clone());
                    }
                }
                // An unknown close: the session may have ended here.
                OpName::Close => {}
                _ => {}
            }
        }
        for v in c.by_path.values_mut() {
            v.sort_by_key(|ch| ch.zxid);
        }
        c.session_ends(&eph);
        for v in c.by_path.values_mut() {
            v.sort_by_key(|ch| ch.zxid);
        }
        for (p, v) in &c.by_path {
            let kids = c.child_zxids.entry(parent(p).to_string()).or_default();
            for ch in v.iter().filter(|ch| ch.kind != Kind::DataChanged) {
                kids.push(ch.zxid);
            }
        }
        for v in c.child_zxids.values_mut() {
            v.sort();
        }
        c.validate_reads(ops);
        c
    }

    fn push(&mut self, zxid: i64, path: &str, kind: Kind, owner: i64, at: usize) {
        self.by_path
            .entry(path.to_string())
            .or_default()
            .push(Change {
                zxid,
                path: path.to_string(),
                kind,
                owner,
                at,
            });
    }

    fn add_window(&mut self, path: &str, w: Window) {
        self.windows.entry(path.to_string()).or_default().push(w);
    }

    /// An answered write: its changes (none if it failed).
    fn add_known(&mut self, o: &OpRec<'_>, eph: &mut BTreeMap<i64, BTreeSet<String>>) {
        let d = o.done.expect("determinate");
        let at = o.done_at.unwrap_or(o.inv_at);
        let z = d.zxid.unwrap_or(0);
        if d.ty != Ty::Ok {
            return;
        }
        let path = d.path.clone().unwrap_or_else(|| o.path().to_string());
        match o.op() {
            OpName::Create | OpName::CreateSequential => self.push(z, &path, Kind::Created, 0, at),
            OpName::CreateEphemeral | OpName::CreateEphemeralSequential => {
                eph.entry(o.session()).or_default().insert(path.clone());
                self.push(z, &path, Kind::Created, o.session(), at);
            }
            OpName::SetData => self.push(z, &path, Kind::DataChanged, 0, at),
            OpName::Delete => self.push(z, &path, Kind::Deleted, 0, at),
            OpName::Multi => {
                let subs = o.inv.ops.iter().flatten();
                let results = d
                    .results
                    .iter()
                    .flatten()
                    .map(Some)
                    .chain(std::iter::repeat(None));
                for (s, r) in subs.zip(results) {
                    if r.is_some_and(|r| r.error.as_deref().is_some_and(|e| e != ROLLED_BACK)) {
                        continue;
                    }
                    let kind = match s.op {
                        OpName::Create => Kind::Created,
                        OpName::SetData => Kind::DataChanged,
                        OpName::Delete => Kind::Deleted,
                        _ => continue,
                    };
                    self.push(z, &s.path, kind, 0, at);
                }
            }
            _ => {}
        }
    }

    /// Ephemeral deletions when sessions end.
    fn session_ends(&mut self, eph: &BTreeMap<i64, BTreeSet<String>>) {
        let mut adds: Vec<(String, Option<Change>, Option<Window>)> = Vec::new();
        for (s, paths) in eph {
            let life = self.sessions.get(s).cloned().unwrap_or_default();
            for p in paths {
                let list = self.by_path.get(p).map(Vec::as_slice).unwrap_or(&[]);
                match life.closed {
                    Some(zc) => {
                        let last = list.iter().rev().find(|ch| ch.zxid < zc);
                        let owned =
                            last.is_some_and(|ch| ch.kind == Kind::Created && ch.owner == *s);
                        let from = last.map_or(0, |ch| ch.zxid);
                        let open = self
                            .windows
                            .get(p)
                            .is_some_and(|ws| ws.iter().any(|w| w.meets(from, Some(zc))));
                        if open {
                            adds.push((
                                p.clone(),
                                None,
                                Some(Window {
                                    lo: zc - 1,
                                    hi: Some(zc),
                                }),
                            ));
                        } else if owned {
                            let at = last.map_or(0, |ch| ch.at);
                            adds.push((
                                p.clone(),
                                Some(Change {
                                    zxid: zc,
                                    path: p.clone(),
                                    kind: Kind::Deleted,
                                    owner: 0,
                                    at,
                                }),
                                None,
                            ));
                        }
                    }
                    None => {
                        // Ended (or may end) at an unknown zxid.
                        let hi = life.expired_before.flatten();
                        let lo = life.alive;
                        if hi.is_none_or(|h| h > lo) {
                            adds.push((p.clone(), None, Some(Window { lo, hi })));
                        }
                    }
                }
            }
        }
        for (p, ch, w) in adds {
            if let Some(ch) = ch {
                self.by_path.entry(p.clone()).or_default().push(ch);
            }
            if let Some(w) = w {
                self.add_window(&p, w);
            }
        }
    }

    /// Mark paths whose reads the certain changes cannot explain.
    fn validate_reads(&mut self, ops: &[OpRec<'_>]) {
        for o in ops {
            if !matches!(o.op(), OpName::GetData | OpName::Exists) || !o.is_determinate() {
                continue;
            }
            let d = o.done.expect("determinate");
            let r = d.zxid.unwrap_or(0);
            let p = o.path();
            if self.uncertain(p, i64::MIN, Some(r)) {
                continue;
            }
            let present = d.ty == Ty::Ok && d.exists != Some(false);
            if d.ty == Ty::Fail && d.error.as_deref() != Some("NoNode") {
                continue;
            }
            let st = self.state_at(p, r);
            let ok = match (present, st.exists) {
                (false, false) => true,
                (true, true) => d.mzxid.is_none_or(|m| Some(m) == st.mzxid),
                _ => false,
            };
            if !ok {
                self.unmodelled.insert(p.to_string());
            }
        }
    }

    /// Certain changes of `path`, by zxid.
    pub fn of(&self, path: &str) -> &[Change] {
        self.by_path.get(path).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every path with a certain change.
    pub fn paths(&self) -> impl Iterator<Item = &String> {
        self.by_path.keys()
    }

    /// Could an unknown change of `path` have happened in `(a, b]`, or is
    /// the path unmodelled?
    pub fn uncertain(&self, path: &str, a: i64, b: Option<i64>) -> bool {
        self.unmodelled.contains(path) || self.open_between(path, a, b)
    }

    /// Could an unknown change of `path` have happened in `(a, b]`
    /// (ignoring the unmodelled safety net)?
    pub fn open_between(&self, path: &str, a: i64, b: Option<i64>) -> bool {
        self.windows
            .get(path)
            .is_some_and(|ws| ws.iter().any(|w| w.meets(a, b)))
    }

    /// The first zxid above `a` from which `path` may have changed
    /// unknowably (`Some(i64::MIN)` for an unmodelled path).
    pub fn uncertain_from(&self, path: &str, a: i64) -> Option<i64> {
        if self.unmodelled.contains(path) {
            return Some(i64::MIN);
        }
        self.windows
            .get(path)?
            .iter()
            .filter(|w| w.meets(a, None))
            .map(|w| w.lo.max(a))
            .min()
    }

    /// [`Self::uncertain_from`] for `path` or any of its direct children
    /// (child creates/deletes).
    pub fn children_uncertain_from(&self, path: &str, a: i64) -> Option<i64> {
        let own = self.uncertain_from(path, a);
        let seq = self.child_windows.get(path).and_then(|ws| {
            ws.iter()
                .filter(|w| w.meets(a, None))
                .map(|w| w.lo.max(a))
                .min()
        });
        let kids = self
            .windows
            .keys()
            .chain(self.unmodelled.iter())
            .filter(|k| parent(k) == path && k.as_str() != path)
            .filter_map(|k| self.uncertain_from(k, a))
            .min();
        [own, seq, kids].into_iter().flatten().min()
    }

    /// [`Self::uncertain_from`] for `path` or anything under it, as
    /// (path, from) pairs.
    pub fn subtree_uncertain(&self, root: &str, a: i64) -> Vec<(String, i64)> {
        let mut v: Vec<(String, i64)> = self
            .windows
            .keys()
            .chain(self.unmodelled.iter())
            .filter(|k| under(k, root))
            .filter_map(|k| Some((k.clone(), self.uncertain_from(k, a)?)))
            .collect();
        for (p, ws) in &self.child_windows {
            if under(p, root) {
                if let Some(from) = ws
                    .iter()
                    .filter(|w| w.meets(a, None))
                    .map(|w| w.lo.max(a))
                    .min()
                {
                    // Unknown children of p: every path under p.
                    v.push((format!("{p}/*"), from));
                }
            }
        }
        v
    }

    /// The state of `path` after every certain change up to `z`.
    pub fn state_at(&self, path: &str, z: i64) -> NodeAt {
        let list = self.of(path);
        let upto = &list[..list.partition_point(|c| c.zxid <= z)];
        let exists = upto.last().is_some_and(|c| c.kind != Kind::Deleted);
        let created = upto
            .iter()
            .rev()
            .find(|c| c.kind == Kind::Created)
            .map(|c| c.zxid);
        let mzxid = upto
            .iter()
            .rev()
            .find(|c| c.kind != Kind::Deleted)
            .map(|c| c.zxid);
        let kid = self.child_zxids.get(path).and_then(|v| {
            let i = v.partition_point(|x| *x <= z);
            (i > 0).then(|| v[i - 1])
        });
        let pzxid = match (created, kid) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        NodeAt {
            exists,
            mzxid: if exists { mzxid } else { None },
            pzxid: if exists { pzxid } else { None },
        }
    }

    /// Every certain change, in zxid order (stable within a zxid).
    pub fn all(&self) -> Vec<&Change> {
        let mut v: Vec<&Change> = self.by_path.values().flatten().collect();
        v.sort_by_key(|c| c.zxid);
        v
    }
}

/// A znode's state at a zxid, from the certain changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeAt {
    pub exists: bool,
    pub mzxid: Option<i64>,
    pub pzxid: Option<i64>,
}

/// Hand-written histories with every field: `t type key=value ...`
/// (`ops=` and `results=` take JSON).
#[cfg(test)]
pub(crate) mod fixture {
    use crate::history::{from_jsonl, Event};

    pub fn hx(text: &str) -> Vec<Event> {
        let mut jsonl = String::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let mut parts = line.splitn(3, ' ');
            let t: f64 = parts.next().unwrap().parse().unwrap();
            let ty = parts.next().unwrap();
            let mut obj = serde_json::json!({"t_ms": t, "type": ty});
            let m = obj.as_object_mut().unwrap();
            let rest = parts.next().unwrap_or("");
            let mut kvs: Vec<(String, String)> = Vec::new();
            for tok in rest.split(' ').filter(|s| !s.is_empty()) {
                match tok.split_once('=') {
                    Some((k, v)) if !k.contains(['"', '{', '[', ',']) => {
                        kvs.push((k.into(), v.into()))
                    }
                    // Continuation of a JSON value with spaces.
                    _ => {
                        let last = kvs.last_mut().expect("key=value");
                        last.1.push(' ');
                        last.1.push_str(tok);
                    }
                }
            }
            for (k, v) in kvs {
                let val: serde_json::Value = match k.as_str() {
                    "version" | "zxid" | "mzxid" | "client" | "fault_id" | "op_id"
                    | "last_zxid" | "conn" => v.parse::<i64>().unwrap().into(),
                    "exists" => (v == "true").into(),
                    "children" => v
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(|s| serde_json::Value::from(s.to_string()))
                        .collect::<Vec<_>>()
                        .into(),
                    "ops" | "results" => serde_json::from_str(&v).unwrap(),
                    _ => v.into(),
                };
                m.insert(k, val);
            }
            jsonl.push_str(&obj.to_string());
            jsonl.push('\n');
        }
        from_jsonl(&jsonl).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::hx;
    use super::*;
    use crate::check::pair_ops;

    #[test]
    fn certain_changes_windows_and_ephemeral_ends() {
        let ev = hx(r#"
            1 invoke client=1 session=0x1 op_id=1 op=create_ephemeral path=/e value=a
            2 ok client=1 session=0x1 op_id=1 zxid=3 path=/e
            3 invoke client=2 session=0x2 op_id=2 op=set_data path=/k value=b version=-1
            4 info client=2 session=0x2 op_id=2 error=timeout
            5 invoke client=2 session=0x2 op_id=3 op=multi ops=[{"op":"create","path":"/m","value":"x"},{"op":"check","path":"/k","version":0}]
            6 ok client=2 session=0x2 op_id=3 zxid=5 results=[{"path":"/m"},{}]
            7 invoke client=1 session=0x1 op_id=4 op=close path=/
            8 ok client=1 session=0x1 op_id=4 zxid=7
        "#);
        let (ops, p) = pair_ops(&ev);
        assert!(p.is_empty(), "{p:?}");
        let c = Changes::build(&ev, &ops);
        let e: Vec<(i64, Kind)> = c.of("/e").iter().map(|c| (c.zxid, c.kind)).collect();
        assert_eq!(e, vec![(3, Kind::Created), (7, Kind::Deleted)]);
        assert_eq!(c.of("/m")[0].kind, Kind::Created);
        assert!(c.uncertain("/k", 3, Some(4)));
        assert_eq!(c.uncertain_from("/k", 0), Some(3));
        assert!(!c.uncertain("/e", 0, None));
        assert!(c.state_at("/e", 6).exists);
        assert!(!c.state_at("/e", 7).exists);
        assert_eq!(c.state_at("/e", 6).pzxid, Some(3));
        assert!(c.sessions[&1].ended_by(7));
    }
}
