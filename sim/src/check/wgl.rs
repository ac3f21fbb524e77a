//! Write linearizability by search, without reply zxids (Wing–Gong / Lowe,
//! with Porcupine's memoization).
//!
//! [`super::linear`] orders writes by the zxids the server put in its
//! replies. This checker trusts nothing the server says about order: it
//! looks for *some* total order of each object's writes that respects real
//! time and explains every reply, the textbook definition. The two must
//! agree on every history (`sim/tests/wgl.rs` cross-checks them on
//! generated ones); disagreement means one of them is wrong.
//!
//! - **Partitioned by object.** Linearizability is local: a history is
//!   linearizable iff each object's sub-history is. An object is a znode
//!   (create / setData / delete on one path), or a parent under which the
//!   workload creates sequential nodes (its version, cversion and child
//!   count: sequence numbers come from the cversion). A `multi` is atomic
//!   across paths, so the objects it touches are merged into one group
//!   searched together. A session end (close, expiry) deletes the session's
//!   ephemerals on several paths; it is put into each of their groups, which
//!   checks a necessary condition (as `linear` does).
//! - **Writes only.** ZooKeeper's plain reads may be stale (sequentially
//!   consistent, not linearizable), so reads are left out: demanding
//!   linearizable reads would be wrong. Write replies still observe the
//!   state: a setData's new version, BadVersion, NoNode, NodeExists, a
//!   sequential node's number, which sub-operation of a multi failed.
//! - **The search** (Lowe's just-in-time WGL as Porcupine runs it): a depth
//!   first search over "linearize one more operation next". An operation may
//!   go next if no unlinearized operation returned before it was invoked,
//!   and the model accepts its reply from the current state. Visited
//!   (linearized-set bitset, model state) pairs are memoized, so each is
//!   expanded once. Success: every determinate operation is linearized.
//! - **Indeterminate operations** (timeout, lost connection) have an
//!   infinite completion time and are optional (Porcupine's approach): they
//!   may be linearized anywhere after their invocation, with the effect they
//!   would have had, or never. ZooKeeper executes a session's requests in
//!   order, so an unknown write cannot take effect after a later write of its
//!   session, nor after the session ended; across groups that is enforced
//!   through real time (after the later write's reply, it is too late).
//! - **Session ends.** An acknowledged close is an ordinary operation. An
//!   expiry the client observed at `t` is a required operation completing
//!   at `t`; a session that owned ephemerals and was never seen to end may
//!   have expired silently (optional). Either comes after the session's
//!   acknowledged operations in the group.
//! - **Bounded.** The search stops after [`Bounds::states_max`] memoized
//!   states or [`Bounds::steps_max`] model steps on one group and reports
//!   it *undecided*, which fails the check: unknown is never a pass. Apply
//!   it to small histories (short scenarios, few clients).
//!
//! Invariants (of the search):
//! - every memoized (bitset, state) pair is reachable from the initial state
//!   by linearizing the bitset's operations in an order that respects real
//!   time, session order and every reply;
//! - the search's stack holds exactly the operations whose bits are set, in
//!   the order they were linearized.

use super::{CheckResult, OpRec};
use crate::history::{Event, OpName, Ty, ROLLED_BACK, TXN_ERRORS};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// The check's name in scenario files and reports.
pub const NAME: &str = "linearizability_search";

/// Limits on one group's search. Counted in steps, never in wall time, so
/// a verdict is a function of the history alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Memoized (linearized set, model state) pairs.
    pub states_max: usize,
    /// Model steps tried.
    pub steps_max: u64,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            states_max: 200_000,
            steps_max: 2_000_000,
        }
    }
}

/// An object: the unit of partitioning (merged into groups by multis).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    Node(String),
    /// A parent of sequential nodes (the znode and its child counter).
    Parent(String),
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Node(p) => write!(f, "znode {p}"),
            Key::Parent(p) => write!(f, "parent {p}"),
        }
    }
}

/// An operation's effect on one object.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MOp {
    Create { owner: i64 },
    CreateSeq { prefix: String },
    SetData { version: i32 },
    Delete { version: i32 },
    Check { version: i32 },
    SessionEnd { session: i64 },
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    /// No answer: may or may not have happened.
    Unknown,
    Ok {
        version: Option<i32>,
        path: Option<String>,
    },
    Err(String),
    /// Per sub-operation (version, path), when the reply lists them.
    MultiOk(Option<Vec<(Option<i32>, Option<String>)>>),
    /// The failing sub-operation, when the reply says which.
    MultiErr {
        code: String,
        at: Option<usize>,
    },
}

/// What the model answers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Ok {
        version: Option<i32>,
        path: Option<String>,
    },
    Err(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct NodeSt {
    version: i32,
    /// Session owning the node if ephemeral, else 0.
    owner: i64,
}

/// A parent of sequential nodes: its cversion numbers them. Only
/// sequential children are created under it (else it is not modelled).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ParentSt {
    version: i32,
    cversion: i32,
    children: u32,
}

/// Model state of one object. Data values are not kept: no write reply
/// depends on them, and reads are not checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum St {
    Node(Option<NodeSt>),
    Parent(Option<ParentSt>),
}

impl std::fmt::Display for St {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            St::Node(None) | St::Parent(None) => write!(f, "no node"),
            St::Node(Some(n)) if n.owner != 0 => write!(
                f,
                "version={} ephemeral of 0x{:x}",
                n.version, n.owner as u64
            ),
            St::Node(Some(n)) => write!(f, "version={}", n.version),
            St::Parent(Some(k)) => write!(
                f,
                "version={} cversion={} children={}",
                k.version, k.cversion, k.children
            ),
        }
    }
}

fn ok(version: Option<i32>) -> Answer {
    Answer::Ok {
        version,
        path: None,
    }
}

/// The model: what `mop` answers from `st` and the state after it (the
/// same state when it fails).
fn apply(st: &St, mop: &MOp) -> (St, Answer) {
    match st {
        St::Node(n) => {
            let (n2, a) = apply_node(n.as_ref(), mop);
            (St::Node(n2), a)
        }
        St::Parent(k) => {
            let (k2, a) = apply_parent(k.as_ref(), mop);
            (St::Parent(k2), a)
        }
    }
}

fn version_matches(expected: i32, cur: i32) -> bool {
    expected == -1 || expected == cur
}

fn apply_node(n: Option<&NodeSt>, mop: &MOp) -> (Option<NodeSt>, Answer) {
    let same = |a| (n.cloned(), a);
    match (mop, n) {
        (MOp::Create { owner }, None) => (
            Some(NodeSt {
                version: 0,
                owner: *owner,
            }),
            ok(Some(0)),
        ),
        (MOp::Create { .. }, Some(_)) => same(Answer::Err("NodeExists")),
        (MOp::SessionEnd { session }, Some(cur)) if cur.owner == *session => (None, ok(None)),
        (MOp::SessionEnd { .. }, _) => same(ok(None)),
        (_, None) => same(Answer::Err("NoNode")),
        (
            MOp::SetData { version } | MOp::Delete { version } | MOp::Check { version },
            Some(cur),
        ) if !version_matches(*version, cur.version) => same(Answer::Err("BadVersion")),
        (MOp::SetData { .. }, Some(cur)) => {
            let v = cur.version + 1;
            (
                Some(NodeSt {
                    version: v,
                    owner: cur.owner,
                }),
                ok(Some(v)),
            )
        }
        (MOp::Delete { .. }, Some(_)) => (None, ok(None)),
        (MOp::Check { .. }, Some(_)) => same(ok(None)),
        (MOp::CreateSeq { .. }, Some(_)) => {
            same(Answer::Err("(a sequential create on a plain znode)"))
        }
    }
}

fn apply_parent(k: Option<&ParentSt>, mop: &MOp) -> (Option<ParentSt>, Answer) {
    let same = |a| (k.cloned(), a);
    match (mop, k) {
        (MOp::Create { .. }, None) => (
            Some(ParentSt {
                version: 0,
                cversion: 0,
                children: 0,
            }),
            ok(Some(0)),
        ),
        (MOp::Create { .. }, Some(_)) => same(Answer::Err("NodeExists")),
        (MOp::SessionEnd { .. }, _) => same(ok(None)),
        (_, None) => same(Answer::Err("NoNode")),
        (
            MOp::SetData { version } | MOp::Delete { version } | MOp::Check { version },
            Some(cur),
        ) if !version_matches(*version, cur.version) => same(Answer::Err("BadVersion")),
        (MOp::Delete { .. }, Some(cur)) if cur.children > 0 => same(Answer::Err("NotEmpty")),
        (MOp::Delete { .. }, Some(_)) => (None, ok(None)),
        (MOp::SetData { .. }, Some(cur)) => {
            let next = ParentSt {
                version: cur.version + 1,
                ..cur.clone()
            };
            let v = next.version;
            (Some(next), ok(Some(v)))
        }
        (MOp::Check { .. }, Some(_)) => same(ok(None)),
        (MOp::CreateSeq { prefix }, Some(cur)) => {
            let path = format!("{prefix}{:010}", cur.cversion);
            let next = ParentSt {
                cversion: cur.cversion + 1,
                children: cur.children + 1,
                ..cur.clone()
            };
            (
                Some(next),
                Answer::Ok {
                    version: Some(0),
                    path: Some(path),
                },
            )
        }
    }
}

/// A reply's version/path against the model's (absent fields match).
fn fields_match(version: Option<i32>, path: Option<&String>, a: &Answer) -> bool {
    let Answer::Ok {
        version: av,
        path: ap,
    } = a
    else {
        return false;
    };
    let v_ok = version.is_none() || av.is_none() || version == *av;
    let p_ok = match (path, ap) {
        (Some(p), Some(q)) => p == q,
        _ => true,
    };
    v_ok && p_ok
}

/// States after an operation and its answers (per effect).
type Applied = (Vec<St>, Vec<Answer>);

/// Apply an operation's effects in order (atomically): the states after
/// them and the answers, or the first failing effect and its code.
fn run_effects(sts: &[St], effects: &[(usize, MOp)]) -> Result<Applied, (usize, &'static str)> {
    let mut next = sts.to_vec();
    let mut answers = Vec::with_capacity(effects.len());
    for (i, (k, mop)) in effects.iter().enumerate() {
        let (st, a) = apply(&next[*k], mop);
        if let Answer::Err(code) = a {
            return Err((i, code));
        }
        next[*k] = st;
        answers.push(a);
    }
    Ok((next, answers))
}

/// The group's state after `op`, or `None` if the model cannot give its
/// reply from `sts`. An unknown operation is only applied if it would
/// succeed (failing, it changes nothing, and leaving it out is at least as
/// permissive).
fn step(sts: &[St], op: &POp) -> Option<Vec<St>> {
    let run = run_effects(sts, &op.effects);
    match (&op.reply, run) {
        (Reply::Unknown, Ok((next, _))) => Some(next),
        (Reply::Ok { version, path }, Ok((next, answers))) => answers
            .iter()
            .all(|a| fields_match(*version, path.as_ref(), a))
            .then_some(next),
        (Reply::Err(c), Err((_, code))) if c == code => Some(sts.to_vec()),
        // The model does not track a plain znode's children (the
        // workloads' znodes have none): accepting NotEmpty is the safe side.
        (Reply::Err(c), Ok(_)) if c == "NotEmpty" && op.plain_delete => Some(sts.to_vec()),
        (Reply::MultiOk(results), Ok((next, answers))) => {
            let fits = match results {
                None => true,
                Some(r) => {
                    r.len() == answers.len()
                        && r.iter()
                            .zip(&answers)
                            .all(|((v, p), a)| fields_match(*v, p.as_ref(), a))
                }
            };
            fits.then_some(next)
        }
        (Reply::MultiErr { code, at }, Err((i, c))) => {
            (code == c && at.is_none_or(|a| a == i)).then(|| sts.to_vec())
        }
        _ => None,
    }
}

/// One operation of a group's sub-history.
#[derive(Debug, Clone)]
struct POp {
    /// Op id (synthetic session ends count down from `u64::MAX`).
    id: u64,
    inv: u64,
    /// `u64::MAX` for optional operations.
    ret: u64,
    /// Determinate: must be linearized. Otherwise optional.
    required: bool,
    /// (object index in the group, effect), applied in order, atomically.
    effects: Vec<(usize, MOp)>,
    reply: Reply,
    /// A single delete of a plain znode (see NotEmpty in [`step`]).
    plain_delete: bool,
    session: i64,
    /// A session end nobody requested (an expiry).
    synthetic: bool,
    desc: String,
    /// Its events in the history (for witnesses).
    at: Vec<usize>,
    /// Indices of operations that must be linearized before this one.
    preds: Vec<usize>,
    /// Optional ops: indices of operations after which it is too late.
    killers: Vec<usize>,
    /// Optional ops: too late once an operation invoked after this time is
    /// linearized (a later write of its session in another group
    /// completed, or its session ended, at this time).
    deadline: u64,
}

impl POp {
    fn is_session_end(&self) -> bool {
        self.effects
            .iter()
            .all(|(_, m)| matches!(m, MOp::SessionEnd { .. }))
    }
}

/// Fixed-size bitset over a group's operations.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] >> (i % 64) & 1 == 1
    }
    fn set(&mut self, i: usize, v: bool) {
        if v {
            self.0[i / 64] |= 1 << (i % 64);
        } else {
            self.0[i / 64] &= !(1 << (i % 64));
        }
    }
    /// Any bit set at index >= `from`?
    fn any_from(&self, from: usize) -> bool {
        let w = from / 64;
        if w >= self.0.len() {
            return false;
        }
        let first = self.0[w] >> (from % 64) != 0;
        first || self.0[w + 1..].iter().any(|x| *x != 0)
    }
}

/// The verdict on one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A linearization: op ids in order (optional operations that took
    /// effect included; synthetic session ends have ids near `u64::MAX`).
    Linearizable(Vec<u64>),
    /// No linearization exists.
    Violation(String),
    /// The search hit its bound.
    Undecided(String),
}

/// One group's search.
#[derive(Debug, Clone)]
pub struct GroupResult {
    /// Its objects (one unless a multi spans several).
    pub keys: Vec<Key>,
    pub ops: usize,
    pub optional: usize,
    pub states: usize,
    pub steps: u64,
    pub outcome: Outcome,
    /// History event indices showing a violation.
    pub witness: Vec<usize>,
}

impl GroupResult {
    fn name(&self) -> String {
        let keys: Vec<String> = self.keys.iter().map(Key::to_string).collect();
        keys.join(" + ")
    }
}

/// Everything the search found over a history.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    pub groups: Vec<GroupResult>,
    /// Reads left out (plain reads need not be linearizable).
    pub reads_skipped: usize,
    pub notes: Vec<String>,
}

impl Analysis {
    /// True iff every group has a linearization.
    pub fn linearizable(&self) -> bool {
        self.groups
            .iter()
            .all(|o| matches!(o.outcome, Outcome::Linearizable(_)))
    }

    /// The outcome of the group holding `key`.
    pub fn outcome(&self, key: &Key) -> Option<&Outcome> {
        self.groups
            .iter()
            .find(|g| g.keys.contains(key))
            .map(|g| &g.outcome)
    }
}

fn parent(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &p[..i],
    }
}

fn reply_of(o: &OpRec<'_>) -> Reply {
    let Some(d) = o.done.filter(|d| d.is_determinate()) else {
        return Reply::Unknown;
    };
    let multi = o.op() == OpName::Multi;
    match (d.ty, multi) {
        (Ty::Ok, false) => Reply::Ok {
            version: d.version,
            path: d.path.clone(),
        },
        (Ty::Ok, true) => Reply::MultiOk(
            d.results
                .as_ref()
                .map(|r| r.iter().map(|s| (s.version, s.path.clone())).collect()),
        ),
        (_, false) => Reply::Err(d.error.clone().unwrap_or_default()),
        (_, true) => {
            let failing = d.results.as_ref().and_then(|r| {
                r.iter().enumerate().find(|(_, s)| {
                    s.error
                        .as_deref()
                        .is_some_and(|e| e != ROLLED_BACK && e != "RuntimeInconsistency")
                })
            });
            match failing {
                Some((i, s)) => Reply::MultiErr {
                    code: s.error.clone().unwrap_or_default(),
                    at: Some(i),
                },
                None => Reply::MultiErr {
                    code: d.error.clone().unwrap_or_default(),
                    at: None,
                },
            }
        }
    }
}

/// Per-session facts that constrain unknown operations across groups.
#[derive(Default)]
struct SessionInfo {
    /// (invoke, return) of the session's acknowledged transactions.
    txns: Vec<(u64, u64)>,
    /// Largest invocation time of an operation answered while the session
    /// was live.
    last_answered_inv: u64,
    /// When the session ended at the latest (acknowledged close's return,
    /// or the observation of its expiry).
    ended_by: Option<u64>,
    closed: bool,
    observed_expiry: Option<u64>,
    owns_ephemerals: bool,
}

impl SessionInfo {
    /// Deadline of an unknown write invoked at `inv`: the return of the
    /// session's next acknowledged write, or the session's end.
    fn deadline(&self, inv: u64) -> u64 {
        let next = self
            .txns
            .iter()
            .filter(|(i, _)| *i > inv)
            .map(|(_, r)| *r)
            .min();
        next.into_iter()
            .chain(self.ended_by)
            .min()
            .unwrap_or(u64::MAX)
    }
}

/// A write's effects per object, or the objects it touches that are not
/// modelled.
type Routing = Result<Vec<(Key, MOp)>, Vec<Key>>;

/// Where each write goes: routing by path, built from the whole history.
struct Router<'a> {
    /// Parents under which sequential nodes are created.
    seq_parents: BTreeSet<&'a str>,
    /// Paths where ephemerals are created (session ends touch them).
    eph_paths: BTreeSet<&'a str>,
}

impl<'a> Router<'a> {
    fn new(ops: &'a [OpRec<'a>]) -> Router<'a> {
        let mut r = Router {
            seq_parents: BTreeSet::new(),
            eph_paths: BTreeSet::new(),
        };
        for o in ops {
            for (name, path) in sub_ops(o) {
                match name {
                    OpName::CreateSequential | OpName::CreateEphemeralSequential => {
                        r.seq_parents.insert(parent(path));
                    }
                    OpName::CreateEphemeral => {
                        r.eph_paths.insert(path);
                    }
                    _ => {}
                }
            }
        }
        r
    }

    fn key(&self, path: &str) -> Key {
        if self.seq_parents.contains(path) {
            Key::Parent(path.into())
        } else {
            Key::Node(path.into())
        }
    }

    /// The effects of one (sub-)operation, or `Err(objects)` when its
    /// objects are not modelled. `None`: not a write.
    fn effects(
        &self,
        name: OpName,
        path: &str,
        version: Option<i32>,
        session: i64,
    ) -> Option<Routing> {
        let version = version.unwrap_or(-1);
        let one = |mop| Some(Ok(vec![(self.key(path), mop)]));
        let seq = matches!(
            name,
            OpName::CreateSequential | OpName::CreateEphemeralSequential
        );
        if !seq
            && (name.is_write() || name == OpName::Check)
            && self.seq_parents.contains(parent(path))
        {
            // A non-sequential child of a sequential parent changes the
            // parent's cversion (create, delete) or is a node whose create
            // is not modelled (a sequential one): neither is searched.
            return Some(Err(vec![
                Key::Parent(parent(path).into()),
                Key::Node(path.into()),
            ]));
        }
        match name {
            OpName::Create => one(MOp::Create { owner: 0 }),
            OpName::CreateEphemeral => one(MOp::Create { owner: session }),
            OpName::Delete => one(MOp::Delete { version }),
            OpName::SetData => one(MOp::SetData { version }),
            OpName::Check => one(MOp::Check { version }),
            OpName::CreateSequential => Some(Ok(vec![(
                Key::Parent(parent(path).into()),
                MOp::CreateSeq {
                    prefix: path.into(),
                },
            )])),
            // Their expiry changes the parent's cversion: not modelled.
            OpName::CreateEphemeralSequential => Some(Err(vec![Key::Parent(parent(path).into())])),
            OpName::Close => Some(Ok(self
                .eph_paths
                .iter()
                .map(|p| (self.key(p), MOp::SessionEnd { session }))
                .collect())),
            n if n.is_write() => Some(Err(vec![self.key(path)])),
            _ => None,
        }
    }

    /// An operation's effects (a multi's in sub-operation order).
    fn op_effects(&self, o: &OpRec<'_>) -> Option<Routing> {
        if o.op() != OpName::Multi {
            return self.effects(o.op(), o.path(), o.inv.version, o.session());
        }
        let mut all = Vec::new();
        let mut bad = Vec::new();
        for s in o.inv.ops.iter().flatten() {
            match self.effects(s.op, &s.path, s.version, o.session()) {
                Some(Ok(e)) if e.len() == 1 => all.extend(e),
                Some(Err(k)) => bad.extend(k),
                _ => bad.push(self.key(&s.path)),
            }
        }
        if bad.is_empty() {
            Some(Ok(all))
        } else {
            bad.extend(all.into_iter().map(|(k, _)| k));
            Some(Err(bad))
        }
    }
}

/// (op name, path) of an operation or of each of a multi's sub-operations.
fn sub_ops<'a>(o: &'a OpRec<'a>) -> Vec<(OpName, &'a str)> {
    match &o.inv.ops {
        Some(subs) if o.op() == OpName::Multi => {
            subs.iter().map(|s| (s.op, s.path.as_str())).collect()
        }
        _ => vec![(o.op(), o.path())],
    }
}

/// Union-find over objects: a multi's objects form one group.
#[derive(Default)]
struct Groups {
    parent: BTreeMap<Key, Key>,
}

impl Groups {
    fn find(&mut self, k: &Key) -> Key {
        let p = self.parent.get(k).cloned().unwrap_or_else(|| k.clone());
        if p == *k {
            return p;
        }
        let root = self.find(&p);
        self.parent.insert(k.clone(), root.clone());
        root
    }

    fn union(&mut self, a: &Key, b: &Key) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            // The smaller key is the root: deterministic.
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent.insert(hi, lo);
        }
    }
}

/// One operation's routed effects, before grouping.
struct Routed<'o> {
    op: &'o OpRec<'o>,
    effects: Vec<(Key, MOp)>,
}

/// A group under construction.
#[derive(Default)]
struct Group {
    keys: Vec<Key>,
    ops: Vec<POp>,
}

/// Split the history's writes into groups of objects. Returns the groups,
/// the number of reads left out and notes.
fn partition(events: &[Event], ops: &[OpRec<'_>]) -> (Vec<Group>, usize, Vec<String>) {
    let router = Router::new(ops);
    let sessions = session_facts(events, ops);
    let mut reads = 0;
    let mut unmodelled: BTreeSet<Key> = BTreeSet::new();
    let mut routed: Vec<Routed<'_>> = Vec::new();
    let mut groups = Groups::default();
    for o in ops {
        if o.never_sent() || o.is_rejected_write() {
            continue;
        }
        match router.op_effects(o) {
            None => reads += usize::from(!matches!(o.op(), OpName::Sync | OpName::Connect)),
            Some(Err(keys)) => unmodelled.extend(keys),
            Some(Ok(effects)) => {
                if o.op() == OpName::Multi {
                    for w in effects.windows(2) {
                        groups.union(&w[0].0, &w[1].0);
                    }
                }
                routed.push(Routed { op: o, effects });
            }
        }
    }
    // Expiries nobody acknowledged, on every ephemeral path: observed ones
    // are required (done by the observation), unobserved ones of sessions
    // that owned ephemerals and never closed are optional.
    let mut expiries: Vec<POp> = Vec::new();
    let mut next_id = u64::MAX;
    for (id, s) in &sessions {
        if !s.owns_ephemerals || (s.closed && s.observed_expiry.is_none()) {
            continue;
        }
        let (ret, what) = match s.observed_expiry {
            Some(t) => (t, format!("observed at {:.3}ms", t as f64 / 1000.0)),
            None => (u64::MAX, "possible, never observed".to_string()),
        };
        expiries.push(POp {
            id: next_id,
            inv: s.last_answered_inv.min(ret),
            ret,
            required: s.observed_expiry.is_some(),
            effects: Vec::new(),
            reply: Reply::Unknown,
            plain_delete: false,
            session: *id,
            synthetic: true,
            desc: format!("expiry of session 0x{:x} ({what})", *id as u64),
            at: Vec::new(),
            preds: Vec::new(),
            killers: Vec::new(),
            deadline: u64::MAX,
        });
        next_id -= 1;
    }
    // A group with an unmodelled object is not searched.
    let bad_roots: BTreeSet<Key> = unmodelled.iter().map(|k| groups.find(k)).collect();
    let mut by_root: BTreeMap<Key, Group> = BTreeMap::new();
    let slot = |groups: &mut Groups, by_root: &mut BTreeMap<Key, Group>, k: &Key| {
        let root = groups.find(k);
        let g = by_root.entry(root.clone()).or_default();
        let i = match g.keys.iter().position(|x| x == k) {
            Some(i) => i,
            None => {
                g.keys.push(k.clone());
                g.keys.len() - 1
            }
        };
        (root, i)
    };
    for r in &routed {
        // Split by group (only a close spans several).
        let mut parts: BTreeMap<Key, Vec<(usize, MOp)>> = BTreeMap::new();
        for (k, mop) in &r.effects {
            let (root, i) = slot(&mut groups, &mut by_root, k);
            parts.entry(root).or_default().push((i, mop.clone()));
        }
        for (root, effects) in parts {
            let pop = pop_of(r.op, effects, &sessions);
            by_root.get_mut(&root).expect("slotted").ops.push(pop);
        }
    }
    for e in &expiries {
        for p in &router.eph_paths {
            let (root, i) = slot(&mut groups, &mut by_root, &router.key(p));
            let mut pop = e.clone();
            pop.effects = vec![(i, MOp::SessionEnd { session: e.session })];
            by_root.get_mut(&root).expect("slotted").ops.push(pop);
        }
    }
    let mut notes = Vec::new();
    let mut out = Vec::new();
    for (root, mut g) in by_root {
        if bad_roots.contains(&root) {
            let names: Vec<String> = g.keys.iter().map(Key::to_string).collect();
            notes.push(format!(
                "{}: not searched (non-sequential children of a sequential parent, ephemeral sequential nodes, or an unmodelled write)",
                names.join(" + ")
            ));
            continue;
        }
        link(&mut g.ops);
        out.push(g);
    }
    (out, reads, notes)
}

fn session_facts(events: &[Event], ops: &[OpRec<'_>]) -> BTreeMap<i64, SessionInfo> {
    let mut sessions: BTreeMap<i64, SessionInfo> = BTreeMap::new();
    for o in ops {
        let s = sessions.entry(o.session()).or_default();
        if sub_ops(o).iter().any(|(n, _)| {
            matches!(
                n,
                OpName::CreateEphemeral | OpName::CreateEphemeralSequential
            )
        }) {
            s.owns_ephemerals = true;
        }
        // Answered by a live session (not e.g. SessionExpired).
        let answered = o.is_determinate() && o.error().is_none_or(|c| TXN_ERRORS.contains(&c));
        if answered {
            s.last_answered_inv = s.last_answered_inv.max(o.invoke_us());
        }
        if o.is_txn() {
            let ret = o.complete_us().expect("determinate");
            s.txns.push((o.invoke_us(), ret));
            if o.op() == OpName::Close {
                s.closed = true;
                s.ended_by = Some(s.ended_by.map_or(ret, |e| e.min(ret)));
            }
        }
    }
    for e in events.iter().filter(|e| e.ty == Ty::SessionExpired) {
        let Some(id) = e.session else { continue };
        let s = sessions.entry(id).or_default();
        s.observed_expiry = Some(s.observed_expiry.map_or(e.t_us, |t| t.min(e.t_us)));
        s.ended_by = Some(s.ended_by.map_or(e.t_us, |t| t.min(e.t_us)));
    }
    sessions
}

fn pop_of(o: &OpRec<'_>, effects: Vec<(usize, MOp)>, sessions: &BTreeMap<i64, SessionInfo>) -> POp {
    let required = o.is_determinate();
    let deadline = if required {
        u64::MAX
    } else {
        sessions
            .get(&o.session())
            .map_or(u64::MAX, |s| s.deadline(o.invoke_us()))
    };
    let plain_delete = o.op() == OpName::Delete && effects.len() == 1;
    POp {
        id: o.id(),
        inv: o.invoke_us(),
        ret: if required {
            o.complete_us().expect("determinate")
        } else {
            u64::MAX
        },
        required,
        effects,
        reply: reply_of(o),
        plain_delete,
        session: o.session(),
        synthetic: false,
        desc: o.describe(),
        at: o.at().collect(),
        preds: Vec::new(),
        killers: Vec::new(),
        deadline,
    }
}

/// Sort a group's operations by invocation and fill in `preds` and
/// `killers` (session order and session ends within the group).
fn link(list: &mut [POp]) {
    list.sort_by_key(|p| (p.inv, p.id));
    let n = list.len();
    for i in 0..n {
        let (s, inv) = (list[i].session, list[i].inv);
        if list[i].is_session_end() {
            // A session ends after its acknowledged operations.
            list[i].preds = (0..n)
                .filter(|&j| j != i && list[j].session == s && list[j].required)
                .filter(|&j| !list[j].is_session_end())
                .collect();
        }
        if list[i].required || list[i].synthetic {
            continue;
        }
        // An unknown write is too late once its session's next write, or
        // its session's end, is linearized.
        list[i].killers = (0..n)
            .filter(|&j| j != i && list[j].session == s)
            .filter(|&j| list[j].is_session_end() || list[j].inv > inv)
            .collect();
    }
}

/// The search over one group.
struct Search<'a> {
    ops: &'a [POp],
    bounds: Bounds,
    /// For optional ops: the first index invoked after its deadline.
    late_from: Vec<usize>,
    required: usize,
    steps: u64,
    memo: HashSet<(Bits, Vec<St>)>,
    /// Deepest partial linearization: (required ops linearized, op order,
    /// state there, linearized set).
    best: (usize, Vec<usize>, Vec<St>, Bits),
}

/// What a search found.
enum Found {
    /// A linearization: op ids in order.
    Order(Vec<u64>),
    /// None exists.
    Nothing,
    /// The bound was hit first.
    Bound,
}

struct Frame {
    st: Vec<St>,
    /// The op linearized to reach this node.
    via: Option<usize>,
    cands: Vec<usize>,
    next: usize,
}

impl<'a> Search<'a> {
    fn new(ops: &'a [POp], init: Vec<St>, bounds: Bounds) -> Search<'a> {
        let late_from = ops
            .iter()
            .map(|o| ops.partition_point(|p| p.inv <= o.deadline))
            .collect();
        Search {
            ops,
            bounds,
            late_from,
            required: ops.iter().filter(|o| o.required).count(),
            steps: 0,
            memo: HashSet::new(),
            best: (0, Vec::new(), init, Bits::new(ops.len())),
        }
    }

    /// Operations that may be linearized next, required ones first.
    fn candidates(&self, lin: &Bits) -> Vec<usize> {
        let ops = self.ops;
        let min_ret = (0..ops.len())
            .filter(|&i| ops[i].required && !lin.get(i))
            .map(|i| ops[i].ret)
            .min()
            .unwrap_or(u64::MAX);
        let mut req = Vec::new();
        let mut opt = Vec::new();
        for (i, o) in ops.iter().enumerate() {
            if o.inv > min_ret {
                break;
            }
            if lin.get(i) || o.preds.iter().any(|&j| !lin.get(j)) {
                continue;
            }
            if o.required {
                req.push(i);
            } else if !(o.killers.iter().any(|&j| lin.get(j)) || lin.any_from(self.late_from[i])) {
                opt.push(i);
            }
        }
        req.extend(opt);
        req
    }

    fn undecided(&self) -> String {
        format!(
            "search exceeded its bound ({} states, {} steps; limits {} / {}) with at most {} of {} determinate writes linearized",
            self.memo.len(),
            self.steps,
            self.bounds.states_max,
            self.bounds.steps_max,
            self.best.0,
            self.required
        )
    }

    fn run(&mut self, init: Vec<St>) -> Found {
        let n = self.ops.len();
        let mut lin = Bits::new(n);
        let mut done_required = 0usize;
        let mut stack = vec![Frame {
            cands: self.candidates(&lin),
            st: init.clone(),
            via: None,
            next: 0,
        }];
        self.memo.insert((lin.clone(), init));
        loop {
            if done_required == self.required {
                let order = stack.iter().filter_map(|f| f.via);
                return Found::Order(order.map(|i| self.ops[i].id).collect());
            }
            let top = stack.last_mut().expect("the root is never popped here");
            let Some(&c) = top.cands.get(top.next) else {
                let f = stack.pop().expect("non-empty");
                let Some(i) = f.via else {
                    return Found::Nothing;
                };
                lin.set(i, false);
                done_required -= usize::from(self.ops[i].required);
                continue;
            };
            top.next += 1;
            self.steps += 1;
            let Some(st) = step(&top.st, &self.ops[c]) else {
                continue;
            };
            lin.set(c, true);
            if !self.memo.insert((lin.clone(), st.clone())) {
                lin.set(c, false);
                continue;
            }
            done_required += usize::from(self.ops[c].required);
            if self.memo.len() > self.bounds.states_max || self.steps > self.bounds.steps_max {
                return Found::Bound;
            }
            if done_required > self.best.0 {
                let order = stack.iter().filter_map(|f| f.via).chain([c]).collect();
                self.best = (done_required, order, st.clone(), lin.clone());
            }
            stack.push(Frame {
                cands: self.candidates(&lin),
                st,
                via: Some(c),
                next: 0,
            });
        }
    }

    /// Why no linearization exists, from the deepest partial one, and the
    /// history events that show it (the stuck op, the last ones placed).
    fn explain(&self, keys: &[Key]) -> (String, Vec<usize>) {
        let (k, order, st, lin) = &self.best;
        let ops = self.ops;
        let stuck = (0..ops.len())
            .filter(|&i| ops[i].required && !lin.get(i))
            .min_by_key(|&i| (ops[i].ret, ops[i].inv));
        let last: Vec<usize> = order.iter().rev().take(3).copied().collect();
        let names: Vec<String> = last.iter().map(|&i| format!("op {}", ops[i].id)).collect();
        let state: Vec<String> = keys
            .iter()
            .zip(st)
            .map(|(k, s)| {
                if keys.len() == 1 {
                    s.to_string()
                } else {
                    format!("{k}: {s}")
                }
            })
            .collect();
        let mut s = format!(
            "no linearization of its {} determinate writes; the deepest partial one places {k} (last: {}), leaving the model at [{}], where no pending write fits",
            self.required,
            if names.is_empty() { "none".into() } else { names.join(" <- ") },
            state.join("; ")
        );
        if let Some(i) = stuck {
            s.push_str(&format!("; first stuck: {}", ops[i].desc));
        }
        let unknown = ops.iter().filter(|o| !o.required).count();
        if unknown > 0 {
            s.push_str(&format!(" ({unknown} optional ops considered)"));
        }
        let witness = stuck
            .into_iter()
            .chain(last)
            .flat_map(|i| ops[i].at.iter().copied())
            .collect();
        (s, witness)
    }
}

/// Search every group of the history. `ops` must come from
/// [`super::pair_ops`] on `events`.
pub fn analyze(events: &[Event], ops: &[OpRec<'_>], bounds: Bounds) -> Analysis {
    let (groups, reads_skipped, notes) = partition(events, ops);
    let mut a = Analysis {
        groups: Vec::new(),
        reads_skipped,
        notes,
    };
    for g in groups {
        let init: Vec<St> = g
            .keys
            .iter()
            .map(|k| match k {
                Key::Node(_) => St::Node(None),
                Key::Parent(_) => St::Parent(None),
            })
            .collect();
        let mut s = Search::new(&g.ops, init.clone(), bounds);
        let (outcome, witness) = match s.run(init) {
            Found::Order(order) => (Outcome::Linearizable(order), Vec::new()),
            Found::Bound => (Outcome::Undecided(s.undecided()), Vec::new()),
            Found::Nothing => {
                let (why, w) = s.explain(&g.keys);
                (Outcome::Violation(why), w)
            }
        };
        a.groups.push(GroupResult {
            ops: g.ops.len(),
            optional: g.ops.iter().filter(|o| !o.required).count(),
            states: s.memo.len(),
            steps: s.steps,
            keys: g.keys,
            outcome,
            witness,
        });
    }
    a
}

/// The check with default bounds.
pub fn check(events: &[Event], ops: &[OpRec<'_>]) -> CheckResult {
    check_with(events, ops, Bounds::default())
}

/// The check: a violation per group without a linearization, and one per
/// group whose search was undecided (unknown is never a pass).
pub fn check_with(events: &[Event], ops: &[OpRec<'_>], bounds: Bounds) -> CheckResult {
    let a = analyze(events, ops, bounds);
    let mut r = CheckResult::new(NAME);
    for g in &a.groups {
        match &g.outcome {
            Outcome::Linearizable(_) => {}
            Outcome::Violation(why) => {
                r.violation_with(format!("{}: {why}", g.name()), g.witness.iter().copied())
            }
            Outcome::Undecided(why) => r.violation(format!(
                "undecided (counts as a failure: unknown is never a pass): {}: {why}; check a shorter history",
                g.name()
            )),
        }
    }
    let ops_n: usize = a.groups.iter().map(|g| g.ops).sum();
    let optional: usize = a.groups.iter().map(|g| g.optional).sum();
    let states = a.groups.iter().map(|g| g.states).max().unwrap_or(0);
    let steps: u64 = a.groups.iter().map(|g| g.steps).sum();
    let merged = a.groups.iter().filter(|g| g.keys.len() > 1).count();
    r.notes.push(format!(
        "{} groups searched without zxids ({merged} merged by multis), {ops_n} writes ({optional} unknown or unobserved session ends, optional), at most {states} states in one group (bound {}), {steps} model steps in all",
        a.groups.len(),
        bounds.states_max
    ));
    r.notes.push(format!(
        "{} plain reads not checked (ZooKeeper reads may be stale; see the linearizability and session_order checks)",
        a.reads_skipped
    ));
    r.notes.extend(a.notes);
    r
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::h;
    use super::super::{check_all, pair_ops, Verdict};
    use super::*;

    fn wgl(text: &str) -> CheckResult {
        wgl_bounded(text, Bounds::default())
    }

    fn wgl_bounded(text: &str, b: Bounds) -> CheckResult {
        let ev = h(text);
        let (ops, p) = pair_ops(&ev);
        assert!(p.is_empty(), "{p:?}");
        check_with(&ev, &ops, b)
    }

    /// The zxid checker's verdict on the same history.
    fn zxid(text: &str) -> Verdict {
        let ev = h(text);
        let (ops, _) = pair_ops(&ev);
        let m = super::super::linear::Model::run(&ev, &ops);
        super::super::linear::check(&ops, &m).verdict
    }

    /// Both checkers give `v`.
    fn both(text: &str, v: Verdict) -> CheckResult {
        let r = wgl(text);
        assert_eq!(r.verdict, v, "wgl: {r:#?}");
        assert_eq!(zxid(text), v, "the zxid checker disagrees");
        r
    }

    #[test]
    fn good_history_passes() {
        both(
            "
            1 invoke 1 0x1 1 create /k value=a
            2 invoke 2 0x2 2 set_data /k value=b version=-1
            3 ok 1 0x1 1 zxid=1 mzxid=1 version=0
            4 invoke 1 0x1 3 set_data /k value=c version=0
            5 ok 2 0x2 2 zxid=2 version=1 mzxid=2
            6 fail 1 0x1 3 zxid=3 error=BadVersion
            7 invoke 1 0x1 4 delete /k version=1
            8 ok 1 0x1 4 zxid=4
            9 invoke 2 0x2 5 delete /k version=-1
            10 fail 2 0x2 5 zxid=5 error=NoNode
        ",
            Verdict::Pass,
        );
    }

    #[test]
    fn overlapping_conditional_writes_cannot_both_win() {
        // Both setData(version=0) succeed: whichever goes second must see
        // version 1 and fail. No order explains it.
        let r = both(
            "
            1 invoke 1 0x1 1 create /k value=a
            2 ok 1 0x1 1 zxid=1 mzxid=1
            3 invoke 1 0x1 2 set_data /k value=b version=0
            4 invoke 2 0x2 3 set_data /k value=c version=0
            5 ok 1 0x1 2 zxid=2 version=1 mzxid=2
            6 ok 2 0x2 3 zxid=3 version=1 mzxid=3
        ",
            Verdict::Fail,
        );
        assert!(r.violations[0].contains("znode /k"), "{r:?}");
    }

    #[test]
    fn overlapping_writes_may_go_in_either_order() {
        let created = "
            0.1 invoke 3 0x3 9 create /k
            0.2 ok 3 0x3 9 zxid=1 mzxid=1
        ";
        // A completed first but took effect second: fine, they overlap.
        let overlapping = "
            1 invoke 1 0x1 1 set_data /k value=a version=-1
            2 invoke 2 0x2 2 set_data /k value=b version=-1
            3 ok 1 0x1 1 zxid=3 version=2 mzxid=3
            4 ok 2 0x2 2 zxid=2 version=1 mzxid=2
        ";
        both(&format!("{created}{overlapping}"), Verdict::Pass);
        // The same replies when A completed before B was invoked.
        let sequential = "
            1 invoke 1 0x1 1 set_data /k value=a version=-1
            2 ok 1 0x1 1 zxid=3 version=2 mzxid=3
            3 invoke 2 0x2 2 set_data /k value=b version=-1
            4 ok 2 0x2 2 zxid=2 version=1 mzxid=2
        ";
        both(&format!("{created}{sequential}"), Verdict::Fail);
    }

    #[test]
    fn skipped_version_is_caught() {
        let base = "
            1 invoke 1 0x1 1 create /k value=a
            2 ok 1 0x1 1 zxid=1 mzxid=1 version=0
            3 invoke 1 0x1 2 set_data /k value=b version=-1
            4 ok 1 0x1 2 zxid=2 version=1 mzxid=2
            5 invoke 2 0x2 3 set_data /k value=c version=-1
        ";
        both(
            &format!("{base}\n6 ok 2 0x2 3 zxid=3 version=2 mzxid=3"),
            Verdict::Pass,
        );
        let r = both(
            &format!("{base}\n6 ok 2 0x2 3 zxid=3 version=3 mzxid=3"),
            Verdict::Fail,
        );
        assert!(r.violations[0].contains("first stuck: op 3"), "{r:?}");
    }

    #[test]
    fn plain_reads_are_not_required_to_be_linearizable() {
        // The read started after the write completed yet returned the old
        // value: stale, which ZooKeeper allows for a plain read from another
        // session. The search ignores reads.
        let r = wgl("
            1 invoke 1 0x1 1 create /k value=a
            2 ok 1 0x1 1 zxid=1 mzxid=1
            3 invoke 1 0x1 2 set_data /k value=b version=-1
            4 ok 1 0x1 2 zxid=2 version=1 mzxid=2
            5 invoke 2 0x2 3 get_data /k
            6 ok 2 0x2 3 zxid=1 value=a version=0 mzxid=1
        ");
        assert_eq!(r.verdict, Verdict::Pass, "{r:?}");
        assert!(r.notes[1].starts_with("1 plain reads"), "{r:?}");
    }

    const UNKNOWN: &str = "
        1 invoke 1 0x1 1 create /k value=a
        2 ok 1 0x1 1 zxid=1 mzxid=1
        3 invoke 1 0x1 2 set_data /k value=b version=-1
        4 info 1 0x1 2 error=timeout
        5 invoke 2 0x2 3 set_data /k value=c version=-1
    ";

    #[test]
    fn unknown_write_that_must_have_happened() {
        both(
            &format!("{UNKNOWN}\n6 ok 2 0x2 3 zxid=3 version=2 mzxid=3"),
            Verdict::Pass,
        );
        // An unknown delete must have happened for the create to succeed.
        both(
            "
            1 invoke 1 0x1 1 create /k value=a
            2 ok 1 0x1 1 zxid=1 mzxid=1
            3 invoke 1 0x1 2 delete /k version=-1
            4 info 1 0x1 2 error=timeout
            5 invoke 2 0x2 3 create /k value=c
            6 ok 2 0x2 3 zxid=3 mzxid=3
        ",
            Verdict::Pass,
        );
    }

    #[test]
    fn unknown_write_that_did_not_happen_or_happened_once() {
        both(
            &format!("{UNKNOWN}\n6 ok 2 0x2 3 zxid=2 version=1 mzxid=2"),
            Verdict::Pass,
        );
        // At most once.
        both(
            &format!("{UNKNOWN}\n6 ok 2 0x2 3 zxid=4 version=3 mzxid=4"),
            Verdict::Fail,
        );
    }

    #[test]
    fn unknown_write_that_must_not_have_happened() {
        // Session 1's delete timed out; its next write (acknowledged) found
        // the node at version 0, so the delete had not happened by then,
        // and after that it is too late (a session's requests execute in
        // order). Client 2's create then cannot succeed.
        let text = "
            1 invoke 1 0x1 1 create /k value=a
            2 ok 1 0x1 1 zxid=1 mzxid=1
            3 invoke 1 0x1 2 delete /k version=-1
            4 info 1 0x1 2 error=timeout
            5 invoke 1 0x1 3 set_data /k value=b version=0
            6 ok 1 0x1 3 zxid=2 version=1 mzxid=2
            7 invoke 2 0x2 4 create /k value=c
        ";
        both(
            &format!("{text}\n8 fail 2 0x2 4 zxid=3 error=NodeExists"),
            Verdict::Pass,
        );
        both(
            &format!("{text}\n8 ok 2 0x2 4 zxid=3 mzxid=3"),
            Verdict::Fail,
        );
        // The same across objects: the session's next write is on another
        // path; once it returned, the delete is too late. Client 2 finds
        // the node after that, so the delete had not happened in time.
        let text = "
            1 invoke 1 0x1 1 create /k value=a
            2 ok 1 0x1 1 zxid=1 mzxid=1
            3 invoke 1 0x1 2 delete /k version=-1
            4 info 1 0x1 2 error=timeout
            5 invoke 1 0x1 3 create /other value=b
            6 ok 1 0x1 3 zxid=2 mzxid=2
            7 invoke 2 0x2 4 set_data /k value=c version=-1
            8 ok 2 0x2 4 zxid=3 version=1 mzxid=3
            9 invoke 2 0x2 5 set_data /k value=d version=-1
        ";
        both(
            &format!("{text}\n10 ok 2 0x2 5 zxid=4 version=2 mzxid=4"),
            Verdict::Pass,
        );
        both(
            &format!("{text}\n10 fail 2 0x2 5 zxid=4 error=NoNode"),
            Verdict::Fail,
        );
    }

    #[test]
    fn never_sent_did_not_happen() {
        let mut ev = h(&format!("{UNKNOWN}\n6 ok 2 0x2 3 zxid=3 version=2 mzxid=3"));
        let (ops, _) = pair_ops(&ev);
        assert_eq!(check(&ev, &ops).verdict, Verdict::Pass);
        ev[3].error = Some(format!("{}: session expired", crate::history::NOT_SENT));
        let (ops, _) = pair_ops(&ev);
        let r = check(&ev, &ops);
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
    }

    #[test]
    fn ephemerals_go_with_their_session() {
        let base = "
            1 invoke 1 0x1 1 create_ephemeral /e value=a
            2 ok 1 0x1 1 zxid=1 mzxid=1
            3 session_expired client=1 session=0x1
            4 invoke 2 0x2 2 create /e value=b
        ";
        both(
            &format!("{base}\n5 ok 2 0x2 2 zxid=3 mzxid=3"),
            Verdict::Pass,
        );
        both(
            &format!("{base}\n5 fail 2 0x2 2 zxid=3 error=NodeExists"),
            Verdict::Fail,
        );
        // Not observed: the session may or may not have expired.
        let base = "
            1 invoke 1 0x1 1 create_ephemeral /e value=a
            2 ok 1 0x1 1 zxid=1 mzxid=1
            4 invoke 2 0x2 2 create /e value=b
        ";
        both(
            &format!("{base}\n5 ok 2 0x2 2 zxid=3 mzxid=3"),
            Verdict::Pass,
        );
        both(
            &format!("{base}\n5 fail 2 0x2 2 zxid=3 error=NodeExists"),
            Verdict::Pass,
        );
        // An acknowledged close deletes it.
        let closed = "
            1 invoke 1 0x1 1 create_ephemeral /e value=a
            2 ok 1 0x1 1 zxid=1 mzxid=1
            3 invoke 1 0x1 2 close /
            4 ok 1 0x1 2 zxid=2
            5 invoke 2 0x2 3 set_data /e value=b version=-1
        ";
        both(
            &format!("{closed}\n6 fail 2 0x2 3 zxid=3 error=NoNode"),
            Verdict::Pass,
        );
        both(
            &format!("{closed}\n6 ok 2 0x2 3 zxid=3 version=1 mzxid=3"),
            Verdict::Fail,
        );
    }

    #[test]
    fn sequential_numbers_follow_the_parents_cversion() {
        let good = "
            1 invoke 0 0x9 1 create /s
            2 ok 0 0x9 1 zxid=1 mzxid=1
            3 invoke 1 0x1 2 create_sequential /s/n-
            4 invoke 2 0x2 3 create_sequential /s/n-
            5 ok 2 0x2 3 zxid=2 path=/s/n-0000000000
            6 info 1 0x1 2 error=timeout
            7 invoke 2 0x2 4 create_sequential /s/n-
            8 ok 2 0x2 4 zxid=4 path=/s/n-0000000002
        ";
        both(good, Verdict::Pass);
        both(&good.replace("n-0000000002", "n-0000000003"), Verdict::Fail);
        both(
            &good.replace("path=/s/n-0000000002", "path=/s/n-0000000000"),
            Verdict::Fail,
        );
    }

    #[test]
    fn multi_is_atomic_across_paths() {
        use crate::history::{SubOp, SubResult, ROLLED_BACK};
        let sub = |op, path: &str, version| SubOp {
            op,
            path: path.into(),
            value: None,
            version,
        };
        let res = |error: Option<&str>| SubResult {
            error: error.map(String::from),
            ..Default::default()
        };
        // Multi 2 checks /a and creates /b; multi 4 creates /c and checks
        // /a at a wrong version, so it fails and /c is not created.
        let text = "
            1 invoke 1 0x1 1 create /a
            2 ok 1 0x1 1 zxid=1 mzxid=1
            3 invoke 1 0x1 2 multi /
            4 ok 1 0x1 2 zxid=2
            5 invoke 1 0x1 4 multi /
            6 fail 1 0x1 4 zxid=3 error=BadVersion
            7 invoke 2 0x2 3 set_data /b version=-1
            8 ok 2 0x2 3 zxid=4 version=1 mzxid=4
            9 invoke 2 0x2 5 create /c
            10 ok 2 0x2 5 zxid=5 mzxid=5
        ";
        let build = |text: &str, first_fails: bool| {
            let mut ev = h(text);
            ev[2].ops = Some(vec![
                sub(OpName::Check, "/a", Some(0)),
                sub(OpName::Create, "/b", None),
            ]);
            if first_fails {
                ev[3].ty = Ty::Fail;
                ev[3].error = Some("NoNode".into());
                ev[3].results = Some(vec![res(Some("NoNode")), res(Some("RuntimeInconsistency"))]);
            } else {
                ev[3].results = Some(vec![res(None), res(None)]);
            }
            ev[4].ops = Some(vec![
                sub(OpName::Create, "/c", None),
                sub(OpName::Check, "/a", Some(3)),
            ]);
            ev[5].results = Some(vec![res(Some(ROLLED_BACK)), res(Some("BadVersion"))]);
            ev
        };
        let run = |ev: &[Event]| {
            let (ops, p) = pair_ops(ev);
            assert!(p.is_empty(), "{p:?}");
            check(ev, &ops)
        };
        let r = run(&build(text, false));
        assert_eq!(r.verdict, Verdict::Pass, "{r:?}");
        assert!(r.notes[0].contains("(1 merged by multis)"), "{r:?}");
        // The check of /a cannot have failed.
        let r = run(&build(text, true));
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
        // A failed multi leaves no trace: /c was not created.
        let r = run(&build(
            &text.replace(
                "10 ok 2 0x2 5 zxid=5 mzxid=5",
                "10 fail 2 0x2 5 zxid=5 error=NodeExists",
            ),
            false,
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
    }

    #[test]
    fn undecided_is_a_failure() {
        // Many concurrent unknown writes and a tiny bound.
        let mut text =
            String::from("0.1 invoke 9 0x9 100 create /k\n0.2 ok 9 0x9 100 zxid=1 mzxid=1\n");
        for i in 0..8 {
            text.push_str(&format!(
                "{} invoke {i} 0x{i} {i} set_data /k value=v version=-1\n",
                1 + i
            ));
        }
        for i in 0..8 {
            text.push_str(&format!("{} info {i} 0x{i} {i} error=timeout\n", 10 + i));
        }
        text.push_str("20 invoke 9 0x9 50 set_data /k value=w version=-1\n");
        text.push_str("21 ok 9 0x9 50 zxid=20 version=9 mzxid=20\n");
        assert_eq!(wgl(&text).verdict, Verdict::Pass);
        // Version 10 would need nine unknown writes: the search visits
        // every subset of the eight before it knows.
        let text = text.replace("version=9", "version=10");
        let r = wgl(&text);
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
        assert!(r.violations[0].contains("no linearization"), "{r:?}");
        let r = wgl_bounded(
            &text,
            Bounds {
                states_max: 20,
                steps_max: 1_000,
            },
        );
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
        assert!(r.violations[0].starts_with("undecided"), "{r:?}");
    }

    #[test]
    fn runs_only_when_enabled() {
        let ev = h("
            1 invoke 1 0x1 1 create /k value=a
            2 ok 1 0x1 1 zxid=1 mzxid=1
        ");
        let find = |r: Vec<CheckResult>| r.into_iter().find(|c| c.name == NAME).unwrap();
        assert_eq!(find(check_all(&ev, &[], 1000)).verdict, Verdict::Skipped);
        let on = find(check_all(&ev, &[NAME.to_string()], 1000));
        assert_eq!(on.verdict, Verdict::Pass, "{on:?}");
    }
}
