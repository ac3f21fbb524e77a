//! Property tests of the core against an independent model.
//!
//! Random operation sequences (creates of every mode under random existing or
//! missing parents, deletes and setData/setACL with right and wrong versions,
//! multis that succeed and fail, reads with watches, explicit closeSession,
//! reattaching sessions on new connections, ticks that expire sessions and
//! reap containers/TTL nodes) are driven through [`Server`] exactly as the
//! shell would: frames in, effects out, `Persisted` delivered for the
//! persisted transactions in random batches. After every step the server's
//! `validate()` runs, and every reply and notification is checked against a
//! model written from the reference (zookeeper-3.8.md §1.9, §1.11, §2.3,
//! §2.4, §2.12), not from the core:
//!
//! - replies come in request order per connection, writes carry their own
//!   zxid, zxids are contiguous, reads see their session's earlier writes
//!   and never go back in time;
//! - every error code and every returned Stat field (version, cversion as
//!   `2 * creates - numChildren`, aversion, dataLength, numChildren,
//!   ephemeralOwner, czxid/mzxid/pzxid, ctime/mtime) matches the model;
//! - one-shot watches fire exactly for the changes the model predicts, once,
//!   with a transaction's events before any reply that shows its effects;
//! - replaying the persisted log on a fresh tree rebuilds the server's tree,
//!   and so does replaying every record twice.

mod common;

use common::*;
use jute::request::read_multi_results;
use jute::txn::{Txn, TxnRecord, TTL_MAX_MS};
use jute::*;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::result::Result;
use zkcore::server::{Effect, Input, Server, ServerConfig};
use zkcore::tree::DataTree;
use zkcore::ConnId;

const SLOTS: usize = 3;
const NAMES: [&str; 4] = ["a", "b", "c", "s-"];
const TIMEOUT_MS: i32 = 10_000;
const IP: &str = "127.0.0.1";

// ---------------------------------------------------------------------------
// Generated operations
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Mode {
    Persistent,
    Ephemeral,
    PersistentSeq,
    EphemeralSeq,
    Container,
    Ttl {
        seq: bool,
        ttl: i64,
    },
    /// A TTL flag through plain create: BadArguments.
    TtlViaCreate,
    BadFlags,
}

#[derive(Debug, Clone)]
struct CreateOp {
    target: usize,
    name: usize,
    mode: Mode,
    create2: bool,
    data: Option<Vec<u8>>,
    acl: usize,
}

#[derive(Debug, Clone)]
enum SubOp {
    Create(CreateOp),
    Delete {
        target: usize,
        version: i32,
    },
    SetData {
        target: usize,
        data: Option<Vec<u8>>,
        version: i32,
    },
    Check {
        target: usize,
        version: i32,
    },
}

#[derive(Debug, Clone, Copy)]
enum ReadKind {
    GetData,
    Exists,
    Children { with_stat: bool },
}

#[derive(Debug, Clone, Copy)]
enum Persist {
    All,
    Upto(usize),
}

#[derive(Debug, Clone)]
enum Op {
    Create {
        slot: usize,
        c: CreateOp,
    },
    Delete {
        slot: usize,
        target: usize,
        version: i32,
    },
    SetData {
        slot: usize,
        target: usize,
        data: Option<Vec<u8>>,
        version: i32,
    },
    SetAcl {
        slot: usize,
        target: usize,
        acl: usize,
        version: i32,
    },
    Read {
        slot: usize,
        kind: ReadKind,
        target: usize,
        watch: bool,
    },
    MultiRead {
        slot: usize,
        targets: Vec<(usize, bool)>,
    },
    Multi {
        slot: usize,
        subs: Vec<SubOp>,
    },
    Close {
        slot: usize,
    },
    Reattach {
        slot: usize,
        disconnect_first: bool,
    },
    Tick {
        advance_ms: i64,
    },
    Persist(Persist),
}

fn version() -> impl Strategy<Value = i32> {
    prop_oneof![3 => Just(-1), 2 => 0..3i32]
}

fn data() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        1 => Just(None),
        5 => prop::collection::vec(b'a'..=b'z', 0..4).prop_map(Some),
    ]
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![
        5 => Just(Mode::Persistent),
        3 => Just(Mode::Ephemeral),
        2 => Just(Mode::PersistentSeq),
        2 => Just(Mode::EphemeralSeq),
        1 => Just(Mode::Container),
        1 => (any::<bool>(), prop_oneof![4 => 1..8i64, 1 => Just(0i64), 1 => Just(TTL_MAX_MS + 1)])
            .prop_map(|(seq, ttl)| Mode::Ttl { seq, ttl }),
        1 => Just(Mode::TtlViaCreate),
        1 => Just(Mode::BadFlags),
    ]
}

fn create_op() -> impl Strategy<Value = CreateOp> {
    (
        0..64usize,
        0..NAMES.len(),
        mode(),
        any::<bool>(),
        data(),
        prop_oneof![6 => Just(0usize), 4 => 0..10usize],
    )
        .prop_map(|(target, name, mode, create2, data, acl)| CreateOp {
            target,
            name,
            mode,
            create2,
            data,
            acl,
        })
}

fn sub_op() -> impl Strategy<Value = SubOp> {
    prop_oneof![
        3 => create_op().prop_map(SubOp::Create),
        2 => (0..64usize, version()).prop_map(|(target, version)| SubOp::Delete { target, version }),
        2 => (0..64usize, data(), version())
            .prop_map(|(target, data, version)| SubOp::SetData { target, data, version }),
        1 => (0..64usize, version()).prop_map(|(target, version)| SubOp::Check { target, version }),
    ]
}

fn read_kind() -> impl Strategy<Value = ReadKind> {
    prop_oneof![
        Just(ReadKind::GetData),
        Just(ReadKind::Exists),
        any::<bool>().prop_map(|with_stat| ReadKind::Children { with_stat }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    prop_oneof![
        6 => (slot.clone(), create_op()).prop_map(|(slot, c)| Op::Create { slot, c }),
        3 => (slot.clone(), 0..64usize, version())
            .prop_map(|(slot, target, version)| Op::Delete { slot, target, version }),
        3 => (slot.clone(), 0..64usize, data(), version())
            .prop_map(|(slot, target, data, version)| Op::SetData { slot, target, data, version }),
        1 => (slot.clone(), 0..64usize, 0..10usize, version())
            .prop_map(|(slot, target, acl, version)| Op::SetAcl { slot, target, acl, version }),
        5 => (slot.clone(), read_kind(), 0..64usize, any::<bool>())
            .prop_map(|(slot, kind, target, watch)| Op::Read { slot, kind, target, watch }),
        1 => (slot.clone(), prop::collection::vec((0..64usize, any::<bool>()), 0..4))
            .prop_map(|(slot, targets)| Op::MultiRead { slot, targets }),
        2 => (slot.clone(), prop::collection::vec(sub_op(), 0..5))
            .prop_map(|(slot, subs)| Op::Multi { slot, subs }),
        1 => slot.clone().prop_map(|slot| Op::Close { slot }),
        1 => (slot, any::<bool>())
            .prop_map(|(slot, disconnect_first)| Op::Reattach { slot, disconnect_first }),
        // Mostly short ticks (TTL nodes and empty containers get reaped);
        // sometimes long enough for every idle session to expire.
        2 => prop_oneof![8 => 0..4000i64, 1 => Just(12_000i64)]
            .prop_map(|advance_ms| Op::Tick { advance_ms }),
        4 => prop_oneof![Just(Persist::All), (0..6usize).prop_map(Persist::Upto)].prop_map(Op::Persist),
    ]
}

fn acl_choice(i: usize) -> Vec<Acl> {
    let world = |p| Acl::new(p, "world", "anyone");
    match i % 10 {
        0 | 1 => Acl::open(),
        2 => vec![world(perms::ALL), world(perms::ALL)],
        3 => vec![world(perms::READ)],
        4 => vec![world(perms::READ | perms::CREATE | perms::DELETE)],
        5 => vec![world(perms::READ | perms::WRITE | perms::ADMIN)],
        6 => vec![world(perms::CREATE | perms::DELETE | perms::WRITE)],
        7 => vec![Acl::new(perms::ALL, "ip", "10.0.0.0/8")],
        8 => vec![],
        _ => vec![Acl::new(perms::ALL, "world", "someone")],
    }
}

// ---------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    None,
    Session(i64),
    Container,
    Ttl,
}

#[derive(Debug, Clone)]
struct MNode {
    data: Option<Vec<u8>>,
    acl: Vec<Acl>,
    version: i32,
    aversion: i32,
    /// Child creations ever made under this node (the stored cversion).
    creates: i32,
    owner: Owner,
    czxid: i64,
    mzxid: i64,
    pzxid: i64,
    ctime: i64,
    mtime: i64,
}

impl MNode {
    /// A system node: empty data (§2.3/§2.10; ZooKeeper's `new byte[0]`).
    fn new(acl: Vec<Acl>) -> MNode {
        MNode {
            data: Some(Vec::new()),
            acl,
            version: 0,
            aversion: 0,
            creates: 0,
            owner: Owner::None,
            czxid: 0,
            mzxid: 0,
            pzxid: 0,
            ctime: 0,
            mtime: 0,
        }
    }
}

type Nodes = BTreeMap<String, MNode>;
type Triggers = Vec<(String, EventType)>;

fn parent_of(p: &str) -> Option<String> {
    if p == "/" {
        return None;
    }
    let i = p.rfind('/')?;
    Some(if i == 0 { "/".into() } else { p[..i].into() })
}

fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

fn children(nodes: &Nodes, p: &str) -> Vec<String> {
    nodes
        .keys()
        .filter(|k| parent_of(k).as_deref() == Some(p))
        .map(|k| k[k.rfind('/').unwrap() + 1..].to_string())
        .collect()
}

fn stat(nodes: &Nodes, p: &str) -> Stat {
    let n = &nodes[p];
    let kids = children(nodes, p).len() as i32;
    Stat {
        czxid: n.czxid,
        mzxid: n.mzxid,
        ctime: n.ctime,
        mtime: n.mtime,
        version: n.version,
        cversion: 2 * n.creates - kids,
        aversion: n.aversion,
        ephemeral_owner: match n.owner {
            Owner::Session(s) => s,
            _ => 0,
        },
        data_length: n.data.as_ref().map_or(0, |d| d.len() as i32),
        num_children: kids,
        pzxid: n.pzxid,
    }
}

fn allowed(acl: &[Acl], perm: i32) -> bool {
    // Test connections hold only ip:127.0.0.1, which no generated ACL names.
    acl.is_empty()
        || acl
            .iter()
            .any(|a| a.perms & perm != 0 && a.id.scheme == "world" && a.id.id == "anyone")
}

fn fixup(acl: &[Acl]) -> Result<Vec<Acl>, i32> {
    if acl.is_empty() {
        return Err(-114);
    }
    let mut out: Vec<Acl> = Vec::new();
    for a in acl {
        let ok = (a.id.scheme == "world" && a.id.id == "anyone") || a.id.scheme == "ip";
        if !ok {
            return Err(-114);
        }
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    Ok(out)
}

fn is_system(p: &str) -> bool {
    matches!(
        p,
        "/" | "/zookeeper" | "/zookeeper/quota" | "/zookeeper/config"
    )
}

fn fresh_nodes() -> Nodes {
    let mut n = Nodes::new();
    n.insert("/".into(), MNode::new(Acl::open()));
    n.insert("/zookeeper".into(), MNode::new(Acl::open()));
    n.insert("/zookeeper/quota".into(), MNode::new(Acl::open()));
    let mut config = MNode::new(vec![Acl::new(perms::READ, "world", "anyone")]);
    config.aversion = -1;
    n.insert("/zookeeper/config".into(), config);
    n
}

/// Who and when: the transaction context of a model step.
struct Cx {
    session: i64,
    zxid: i64,
    time: i64,
}

fn code(e: ErrorCode) -> i32 {
    e.code()
}

struct CreateArgs<'a> {
    opcode: i32,
    path: &'a str,
    data: &'a Option<Vec<u8>>,
    acl: &'a [Acl],
    flags: i32,
    ttl: i64,
}

/// Create per §1.8, §1.11, §2.3 and the check order of §2.12.
fn m_create(
    nodes: &mut Nodes,
    cx: &Cx,
    a: &CreateArgs,
    trig: &mut Triggers,
) -> Result<String, i32> {
    let (seq, owner) = match a.flags {
        0 => (false, Owner::None),
        1 => (false, Owner::Session(cx.session)),
        2 => (true, Owner::None),
        3 => (true, Owner::Session(cx.session)),
        4 => (false, Owner::Container),
        5 => (false, Owner::Ttl),
        6 => (true, Owner::Ttl),
        _ => return Err(code(ErrorCode::BadArguments)),
    };
    if (owner == Owner::Ttl || a.opcode == op::CREATE_TTL)
        && (a.opcode != op::CREATE_TTL || owner != Owner::Ttl || a.ttl <= 0 || a.ttl > TTL_MAX_MS)
    {
        return Err(code(ErrorCode::BadArguments));
    }
    let acl = fixup(a.acl)?;
    let parent = match &a.path[..a.path.rfind('/').expect("generated paths have /")] {
        "" => "/".to_string(),
        p => p.to_string(),
    };
    let pnode = nodes.get(&parent).ok_or(code(ErrorCode::NoNode))?;
    if !allowed(&pnode.acl, perms::CREATE) {
        return Err(code(ErrorCode::NoAuth));
    }
    let path = if seq {
        format!("{}{:010}", a.path, pnode.creates)
    } else {
        a.path.to_string()
    };
    if nodes.contains_key(&path) {
        return Err(code(ErrorCode::NodeExists));
    }
    if let Owner::Session(_) = pnode.owner {
        return Err(code(ErrorCode::NoChildrenForEphemerals));
    }
    let p = nodes.get_mut(&parent).expect("checked");
    p.creates += 1;
    p.pzxid = cx.zxid;
    nodes.insert(
        path.clone(),
        MNode {
            data: a.data.clone(),
            acl,
            version: 0,
            aversion: 0,
            creates: 0,
            owner,
            czxid: cx.zxid,
            mzxid: cx.zxid,
            pzxid: cx.zxid,
            ctime: cx.time,
            mtime: cx.time,
        },
    );
    trig.push((path.clone(), EventType::NodeCreated));
    trig.push((parent, EventType::NodeChildrenChanged));
    Ok(path)
}

fn remove_node(nodes: &mut Nodes, cx: &Cx, path: &str, trig: &mut Triggers) {
    nodes.remove(path);
    let parent = parent_of(path).expect("not the root");
    let p = nodes.get_mut(&parent).expect("parent exists");
    p.pzxid = p.pzxid.max(cx.zxid);
    trig.push((path.to_string(), EventType::NodeDeleted));
    trig.push((parent, EventType::NodeChildrenChanged));
}

fn m_delete(
    nodes: &mut Nodes,
    cx: &Cx,
    path: &str,
    version: i32,
    trig: &mut Triggers,
) -> Result<(), i32> {
    if is_system(path) {
        return Err(code(ErrorCode::BadArguments));
    }
    let parent = parent_of(path).expect("not the root");
    let pnode = nodes.get(&parent).ok_or(code(ErrorCode::NoNode))?;
    if !allowed(&pnode.acl, perms::DELETE) {
        return Err(code(ErrorCode::NoAuth));
    }
    let node = nodes.get(path).ok_or(code(ErrorCode::NoNode))?;
    if version != -1 && version != node.version {
        return Err(code(ErrorCode::BadVersion));
    }
    if !children(nodes, path).is_empty() {
        return Err(code(ErrorCode::NotEmpty));
    }
    remove_node(nodes, cx, path, trig);
    Ok(())
}

fn m_set_data(
    nodes: &mut Nodes,
    cx: &Cx,
    path: &str,
    data: &Option<Vec<u8>>,
    version: i32,
    trig: &mut Triggers,
) -> Result<Stat, i32> {
    let n = nodes.get_mut(path).ok_or(code(ErrorCode::NoNode))?;
    if !allowed(&n.acl, perms::WRITE) {
        return Err(code(ErrorCode::NoAuth));
    }
    if version != -1 && version != n.version {
        return Err(code(ErrorCode::BadVersion));
    }
    n.data = data.clone();
    n.version += 1;
    n.mzxid = cx.zxid;
    n.mtime = cx.time;
    trig.push((path.to_string(), EventType::NodeDataChanged));
    Ok(stat(nodes, path))
}

/// setACL in PrepRequestProcessor's order: path, ACL fix-up, node, ADMIN,
/// aversion.
fn m_set_acl(nodes: &mut Nodes, path: &str, acl: &[Acl], version: i32) -> Result<Stat, i32> {
    let acl = fixup(acl)?;
    let n = nodes.get_mut(path).ok_or(code(ErrorCode::NoNode))?;
    if !allowed(&n.acl, perms::ADMIN) {
        return Err(code(ErrorCode::NoAuth));
    }
    if version != -1 && version != n.aversion {
        return Err(code(ErrorCode::BadVersion));
    }
    n.acl = acl;
    n.aversion += 1;
    Ok(stat(nodes, path))
}

fn m_check(nodes: &Nodes, path: &str, version: i32) -> Result<(), i32> {
    let n = nodes.get(path).ok_or(code(ErrorCode::NoNode))?;
    if !allowed(&n.acl, perms::READ) {
        return Err(code(ErrorCode::NoAuth));
    }
    if version != -1 && version != n.version {
        return Err(code(ErrorCode::BadVersion));
    }
    Ok(())
}

fn m_close_session(nodes: &mut Nodes, cx: &Cx, trig: &mut Triggers) {
    let mine: Vec<String> = nodes
        .iter()
        .filter(|(_, n)| n.owner == Owner::Session(cx.session))
        .map(|(p, _)| p.clone())
        .collect();
    for p in mine {
        remove_node(nodes, cx, &p, trig);
    }
}

/// §1.9: all sub-ops or none; each result reflects the tree right after
/// its own sub-op.
fn m_multi(nodes: &mut Nodes, cx: &Cx, ops: &[MultiOp], trig: &mut Triggers) -> Vec<MultiResult> {
    let mut staged = nodes.clone();
    let mut t = Triggers::new();
    let mut results = Vec::new();
    for (i, o) in ops.iter().enumerate() {
        let r = match o {
            MultiOp::Create { op: opc, req } => m_create(
                &mut staged,
                cx,
                &CreateArgs {
                    opcode: *opc,
                    path: &req.path,
                    data: &req.data,
                    acl: &req.acl,
                    flags: req.flags,
                    ttl: -1,
                },
                &mut t,
            )
            .map(|p| {
                if *opc == op::CREATE {
                    MultiResult::Create(p)
                } else {
                    let s = stat(&staged, &p);
                    MultiResult::Create2(p, s)
                }
            }),
            MultiOp::CreateTtl(r) => m_create(
                &mut staged,
                cx,
                &CreateArgs {
                    opcode: op::CREATE_TTL,
                    path: &r.path,
                    data: &r.data,
                    acl: &r.acl,
                    flags: r.flags,
                    ttl: r.ttl,
                },
                &mut t,
            )
            .map(|p| {
                let s = stat(&staged, &p);
                MultiResult::Create2(p, s)
            }),
            MultiOp::Delete(r) => {
                m_delete(&mut staged, cx, &r.path, r.version, &mut t).map(|_| MultiResult::Delete)
            }
            MultiOp::SetData(r) => m_set_data(&mut staged, cx, &r.path, &r.data, r.version, &mut t)
                .map(MultiResult::SetData),
            MultiOp::Check(r) => m_check(&staged, &r.path, r.version).map(|_| MultiResult::Check),
            MultiOp::GetData(_) | MultiOp::GetChildren(_) => unreachable!("not generated"),
        };
        match r {
            Ok(res) => results.push(res),
            Err(c) => {
                return (0..ops.len())
                    .map(|j| match j.cmp(&i) {
                        std::cmp::Ordering::Less => MultiResult::Error(0),
                        std::cmp::Ordering::Equal => MultiResult::Error(c),
                        std::cmp::Ordering::Greater => {
                            MultiResult::Error(ErrorCode::RuntimeInconsistency.code())
                        }
                    })
                    .collect();
            }
        }
    }
    *nodes = staged;
    trig.extend(t);
    results
}

/// What a reply body should hold.
#[derive(Debug, Clone, PartialEq)]
enum Body {
    Empty,
    Path(String),
    PathStat(String, Stat),
    Stat(Stat),
    Data(Option<Vec<u8>>, Stat),
    Children(Vec<String>, Option<Stat>),
    Multi(Vec<MultiResult>),
}

type Outcome = Result<Body, i32>;

/// Execute a write request on the model.
fn m_write(nodes: &mut Nodes, cx: &Cx, req: &Request, trig: &mut Triggers) -> Outcome {
    match req {
        Request::Create { op: opc, req: r } => m_create(
            nodes,
            cx,
            &CreateArgs {
                opcode: *opc,
                path: &r.path,
                data: &r.data,
                acl: &r.acl,
                flags: r.flags,
                ttl: -1,
            },
            trig,
        )
        .map(|p| {
            if *opc == op::CREATE {
                Body::Path(p)
            } else {
                let s = stat(nodes, &p);
                Body::PathStat(p, s)
            }
        }),
        Request::CreateTtl(r) => m_create(
            nodes,
            cx,
            &CreateArgs {
                opcode: op::CREATE_TTL,
                path: &r.path,
                data: &r.data,
                acl: &r.acl,
                flags: r.flags,
                ttl: r.ttl,
            },
            trig,
        )
        .map(|p| {
            let s = stat(nodes, &p);
            Body::PathStat(p, s)
        }),
        Request::Delete(r) => m_delete(nodes, cx, &r.path, r.version, trig).map(|_| Body::Empty),
        Request::SetData(r) => {
            m_set_data(nodes, cx, &r.path, &r.data, r.version, trig).map(Body::Stat)
        }
        Request::SetAcl(r) => m_set_acl(nodes, &r.path, &r.acl, r.version).map(Body::Stat),
        Request::Multi(ops) => Ok(Body::Multi(m_multi(nodes, cx, ops, trig))),
        Request::CloseSession => {
            m_close_session(nodes, cx, trig);
            Ok(Body::Empty)
        }
        other => unreachable!("not a write: {other:?}"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Table {
    Data,
    Child,
}

/// Execute a read request on a model state; also says which one-shot watch
/// it leaves behind.
fn m_read(nodes: &Nodes, req: &Request) -> (Outcome, Option<(String, Table)>) {
    let read_ok = |p: &str| -> Result<(), i32> {
        let n = nodes.get(p).ok_or(code(ErrorCode::NoNode))?;
        if allowed(&n.acl, perms::READ) {
            Ok(())
        } else {
            Err(code(ErrorCode::NoAuth))
        }
    };
    match req {
        Request::GetData(r) => match read_ok(&r.path) {
            Ok(()) => (
                Ok(Body::Data(
                    nodes[&r.path].data.clone(),
                    stat(nodes, &r.path),
                )),
                r.watch.then(|| (r.path.clone(), Table::Data)),
            ),
            Err(e) => (Err(e), None),
        },
        Request::Exists(r) => match read_ok(&r.path) {
            Ok(()) => (
                Ok(Body::Stat(stat(nodes, &r.path))),
                r.watch.then(|| (r.path.clone(), Table::Data)),
            ),
            // exists registers on a missing node (§2.4).
            Err(-101) => (Err(-101), r.watch.then(|| (r.path.clone(), Table::Data))),
            Err(e) => (Err(e), None),
        },
        Request::GetChildren { with_stat, req: r } => match read_ok(&r.path) {
            Ok(()) => (
                Ok(Body::Children(
                    children(nodes, &r.path),
                    with_stat.then(|| stat(nodes, &r.path)),
                )),
                r.watch.then(|| (r.path.clone(), Table::Child)),
            ),
            Err(e) => (Err(e), None),
        },
        Request::MultiRead(ops) => {
            let results = ops
                .iter()
                .map(|o| {
                    let p = o.path();
                    match read_ok(p) {
                        Err(e) => MultiResult::Error(e),
                        Ok(()) => match o {
                            MultiOp::GetData(_) => {
                                MultiResult::GetData(nodes[p].data.clone(), stat(nodes, p))
                            }
                            _ => MultiResult::GetChildren(children(nodes, p)),
                        },
                    }
                })
                .collect();
            (Ok(Body::Multi(results)), None)
        }
        other => unreachable!("not a read: {other:?}"),
    }
}

/// Decode a reply body the way a client that sent `req` would.
fn decode_body(req: &Request, body: &[u8]) -> Body {
    match req {
        Request::Create { op: opc, .. } if *opc == op::CREATE => {
            Body::Path(decode::<CreateResponse>(body).path)
        }
        Request::Create { .. } | Request::CreateTtl(_) => {
            let r = decode::<Create2Response>(body);
            Body::PathStat(r.path, r.stat)
        }
        Request::SetData(_) | Request::SetAcl(_) | Request::Exists(_) => {
            Body::Stat(decode::<StatResponse>(body).stat)
        }
        Request::GetData(_) => {
            let r = decode::<GetDataResponse>(body);
            Body::Data(r.data, r.stat)
        }
        Request::GetChildren {
            with_stat: true, ..
        } => {
            let r = decode::<GetChildren2Response>(body);
            Body::Children(r.children, Some(r.stat))
        }
        Request::GetChildren { .. } => {
            Body::Children(decode::<GetChildrenResponse>(body).children, None)
        }
        Request::Multi(_) | Request::MultiRead(_) => {
            let mut r = Reader::new(body);
            let res = read_multi_results(&mut r).expect("multi results");
            r.finish().expect("nothing after the multi results");
            Body::Multi(res)
        }
        _ => {
            assert!(body.is_empty(), "unexpected body {body:02x?}");
            Body::Empty
        }
    }
}

/// Children lists are sets: ZooKeeper promises no order.
fn normalise(b: Body) -> Body {
    match b {
        Body::Children(mut c, s) => {
            c.sort();
            Body::Children(c, s)
        }
        Body::Multi(rs) => Body::Multi(
            rs.into_iter()
                .map(|r| match r {
                    MultiResult::GetChildren(mut c) => {
                        c.sort();
                        MultiResult::GetChildren(c)
                    }
                    r => r,
                })
                .collect(),
        ),
        b => b,
    }
}

// ---------------------------------------------------------------------------
// The driver
// ---------------------------------------------------------------------------

struct ConnTrack {
    /// Xids sent and not yet answered, in order.
    fifo: VecDeque<i32>,
    /// The next frame is the ConnectResponse; `Some(id)` for a reattach.
    awaiting_connect: Option<Option<i64>>,
    /// Highest zxid seen in a reply on this connection.
    last_zxid: i64,
    open: bool,
    /// Session and password once the ConnectResponse arrived.
    session: Option<(i64, Vec<u8>)>,
}

struct Slot {
    conn: Option<ConnId>,
    closing: bool,
}

struct ExpectedWrite {
    zxid: i64,
    outcome: Outcome,
}

struct Driver {
    server: Server,
    now: i64,
    next_conn: u64,
    next_xid: i32,
    slots: Vec<Slot>,
    conns: BTreeMap<ConnId, ConnTrack>,
    requests: BTreeMap<i32, (ConnId, Request)>,
    /// Records handed out by Persist effects and not yet reported durable.
    pending: Vec<TxnRecord>,
    log: Vec<TxnRecord>,
    /// Model state after each zxid (0 = fresh).
    states: BTreeMap<i64, Nodes>,
    model_zxid: i64,
    /// Sessions whose closeSession transaction has been logged.
    ended_sessions: BTreeSet<i64>,
    expected_writes: BTreeMap<i32, ExpectedWrite>,
    triggers: BTreeMap<i64, Triggers>,
    watches: BTreeSet<(String, Table, ConnId)>,
    /// Last zxid the server has applied, as far as the driver knows.
    applied: i64,
    /// Highest zxid allowed to be applied during the current step.
    limit: i64,
    ev_cursor: i64,
    ev_pending: Vec<(ConnId, EventType, String)>,
    /// Every path ever seen, in first-seen order: ops pick targets here.
    universe: Vec<String>,
    /// What the run exercised (printed by the long runs, asserted on).
    seen: BTreeMap<String, usize>,
}

impl Driver {
    fn new() -> Driver {
        let cfg = ServerConfig {
            extended_types: true,
            container_check_interval_ms: 0,
            ..test_config()
        };
        let mut universe: Vec<String> =
            vec!["/".into(), "/zookeeper".into(), "/zookeeper/config".into()];
        for a in ["a", "b"] {
            universe.push(format!("/{a}"));
            for b in ["a", "b"] {
                universe.push(format!("/{a}/{b}"));
            }
        }
        let mut states = BTreeMap::new();
        states.insert(0, fresh_nodes());
        Driver {
            server: Server::new(cfg, 0, DataTree::new(), vec![]),
            now: 0,
            next_conn: 1,
            next_xid: 1,
            slots: (0..SLOTS)
                .map(|_| Slot {
                    conn: None,
                    closing: false,
                })
                .collect(),
            conns: BTreeMap::new(),
            requests: BTreeMap::new(),
            pending: Vec::new(),
            log: Vec::new(),
            states,
            model_zxid: 0,
            ended_sessions: BTreeSet::new(),
            expected_writes: BTreeMap::new(),
            triggers: BTreeMap::new(),
            watches: BTreeSet::new(),
            applied: 0,
            limit: 0,
            ev_cursor: 0,
            ev_pending: Vec::new(),
            universe,
            seen: BTreeMap::new(),
        }
    }

    /// Mostly a node that exists (as of every logged txn), sometimes any
    /// path ever seen (often missing).
    fn target(&self, i: usize) -> String {
        let live = &self.states[&self.model_zxid];
        if i % 8 < 5 {
            let k = (i / 8) % live.len();
            live.keys().nth(k).expect("in range").clone()
        } else {
            self.universe[(i / 8) % self.universe.len()].clone()
        }
    }

    fn learn_path(&mut self, p: &str) {
        if !self.universe.iter().any(|u| u == p) {
            self.universe.push(p.to_string());
        }
    }

    // ---- inputs ----

    fn step(&mut self, input: Input) {
        self.limit = match &input {
            Input::Persisted { zxid } => self
                .pending
                .iter()
                .map(|r| r.header.zxid)
                .filter(|z| z <= zxid)
                .max()
                .unwrap_or(self.applied)
                .max(self.applied),
            _ => self.applied,
        };
        let effects = self.server.handle(self.now, input);
        self.server.validate();
        for e in effects {
            self.effect(e);
        }
        self.advance_events(self.limit);
        self.applied = self.limit;
        self.pending.retain(|r| r.header.zxid > self.applied);
        assert_eq!(self.server.tree().last_zxid(), self.applied, "applied zxid");
    }

    fn connect(&mut self, slot: usize, reattach: Option<(i64, Vec<u8>)>) {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let last_zxid = self.slots[slot]
            .conn
            .and_then(|c| self.conns.get(&c))
            .map_or(0, |c| c.last_zxid);
        self.conns.insert(
            conn,
            ConnTrack {
                fifo: VecDeque::new(),
                awaiting_connect: Some(reattach.as_ref().map(|(s, _)| *s)),
                last_zxid,
                open: true,
                session: None,
            },
        );
        let s = &mut self.slots[slot];
        s.conn = Some(conn);
        s.closing = false;
        let frame = match reattach {
            Some((id, pw)) => connect_frame(id, pw, TIMEOUT_MS, last_zxid),
            None => connect_frame(0, vec![0; 16], TIMEOUT_MS, 0),
        };
        self.step(Input::Connected {
            conn,
            ip: IP.into(),
        });
        self.step(Input::Frame { conn, bytes: frame });
    }

    /// The slot's connection, opening a fresh session if it has none usable.
    fn slot_conn(&mut self, slot: usize) -> ConnId {
        let s = &self.slots[slot];
        let usable = match s.conn.map(|c| &self.conns[&c]) {
            Some(c) => {
                c.open
                    && !s.closing
                    && c.session
                        .as_ref()
                        .is_none_or(|(id, _)| !self.ended_sessions.contains(id))
            }
            None => false,
        };
        if !usable {
            self.connect(slot, None);
        }
        self.slots[slot].conn.expect("connected")
    }

    fn send(&mut self, slot: usize, req: Request) {
        let conn = self.slot_conn(slot);
        let xid = self.next_xid;
        self.next_xid += 1;
        let frame = request_frame(xid, &req);
        if matches!(req, Request::CloseSession) {
            self.slots[slot].closing = true;
        }
        self.requests.insert(xid, (conn, req));
        self.conns.get_mut(&conn).expect("conn").fifo.push_back(xid);
        self.step(Input::Frame { conn, bytes: frame });
    }

    fn persist(&mut self, how: Persist) {
        let z = match how {
            Persist::All => self.pending.last().map(|r| r.header.zxid),
            Persist::Upto(i) => {
                if self.pending.is_empty() {
                    None
                } else {
                    Some(self.pending[i % self.pending.len()].header.zxid)
                }
            }
        };
        if let Some(zxid) = z {
            self.step(Input::Persisted { zxid });
        }
    }

    fn reattach(&mut self, slot: usize, disconnect_first: bool) {
        let s = &self.slots[slot];
        let Some((id, pw)) = s.conn.and_then(|c| self.conns[&c].session.clone()) else {
            return;
        };
        if s.closing || self.ended_sessions.contains(&id) {
            return;
        }
        if disconnect_first {
            if let Some(old) = s.conn {
                if self.conns[&old].open {
                    self.conn_gone(old);
                    self.step(Input::Disconnected { conn: old });
                }
            }
        }
        self.connect(slot, Some((id, pw)));
    }

    fn run(&mut self, o: &Op) {
        match o.clone() {
            Op::Create { slot, c } => {
                let req = self.create_request(&c);
                self.send(slot, req)
            }
            Op::Delete {
                slot,
                target,
                version,
            } => {
                let path = self.target(target);
                self.send(slot, Request::Delete(DeleteRequest { path, version }))
            }
            Op::SetData {
                slot,
                target,
                data,
                version,
            } => {
                let path = self.target(target);
                self.send(
                    slot,
                    Request::SetData(SetDataRequest {
                        path,
                        data,
                        version,
                    }),
                )
            }
            Op::SetAcl {
                slot,
                target,
                acl,
                version,
            } => {
                let path = self.target(target);
                let acl = acl_choice(acl);
                self.send(slot, Request::SetAcl(SetAclRequest { path, acl, version }))
            }
            Op::Read {
                slot,
                kind,
                target,
                watch,
            } => {
                let path = self.target(target);
                let req = match kind {
                    ReadKind::GetData => Request::GetData(GetDataRequest { path, watch }),
                    ReadKind::Exists => Request::Exists(ExistsRequest { path, watch }),
                    ReadKind::Children { with_stat } => Request::GetChildren {
                        with_stat,
                        req: GetChildrenRequest { path, watch },
                    },
                };
                self.send(slot, req)
            }
            Op::MultiRead { slot, targets } => {
                let ops = targets
                    .iter()
                    .map(|(t, data)| {
                        let path = self.target(*t);
                        if *data {
                            MultiOp::GetData(GetDataRequest { path, watch: false })
                        } else {
                            MultiOp::GetChildren(GetChildrenRequest { path, watch: false })
                        }
                    })
                    .collect();
                self.send(slot, Request::MultiRead(ops))
            }
            Op::Multi { slot, subs } => {
                let ops = subs.iter().map(|s| self.sub_op(s)).collect();
                self.send(slot, Request::Multi(ops))
            }
            Op::Close { slot } => {
                if self.slots[slot].conn.is_some() {
                    self.send(slot, Request::CloseSession)
                }
            }
            Op::Reattach {
                slot,
                disconnect_first,
            } => self.reattach(slot, disconnect_first),
            Op::Tick { advance_ms } => {
                self.now += advance_ms;
                self.step(Input::Tick)
            }
            Op::Persist(how) => self.persist(how),
        }
    }

    fn create_parts(&self, c: &CreateOp) -> (i32, CreateRequest, i64) {
        let path = join(&self.target(c.target), NAMES[c.name]);
        let (flags, opcode, ttl) = match c.mode {
            Mode::Persistent => (0, None, -1),
            Mode::Ephemeral => (1, None, -1),
            Mode::PersistentSeq => (2, None, -1),
            Mode::EphemeralSeq => (3, None, -1),
            Mode::Container => (4, Some(op::CREATE_CONTAINER), -1),
            Mode::Ttl { seq, ttl } => (if seq { 6 } else { 5 }, Some(op::CREATE_TTL), ttl),
            Mode::TtlViaCreate => (5, None, -1),
            Mode::BadFlags => (9, None, -1),
        };
        let opcode = opcode.unwrap_or(if c.create2 { op::CREATE2 } else { op::CREATE });
        let req = CreateRequest {
            path,
            data: c.data.clone(),
            acl: acl_choice(c.acl),
            flags,
        };
        (opcode, req, ttl)
    }

    fn create_request(&self, c: &CreateOp) -> Request {
        match self.create_parts(c) {
            (op::CREATE_TTL, r, ttl) => Request::CreateTtl(CreateTtlRequest {
                path: r.path,
                data: r.data,
                acl: r.acl,
                flags: r.flags,
                ttl,
            }),
            (opcode, req, _) => Request::Create { op: opcode, req },
        }
    }

    fn sub_op(&self, s: &SubOp) -> MultiOp {
        match s {
            SubOp::Create(c) => match self.create_request(c) {
                Request::CreateTtl(r) => MultiOp::CreateTtl(r),
                Request::Create { op, req } => MultiOp::Create { op, req },
                _ => unreachable!(),
            },
            SubOp::Delete { target, version } => MultiOp::Delete(DeleteRequest {
                path: self.target(*target),
                version: *version,
            }),
            SubOp::SetData {
                target,
                data,
                version,
            } => MultiOp::SetData(SetDataRequest {
                path: self.target(*target),
                data: data.clone(),
                version: *version,
            }),
            SubOp::Check { target, version } => MultiOp::Check(CheckVersionRequest {
                path: self.target(*target),
                version: *version,
            }),
        }
    }

    // ---- effects ----

    fn effect(&mut self, e: Effect) {
        match e {
            Effect::Persist { records } => {
                for r in records {
                    self.model_apply(&r);
                    self.pending.push(r.clone());
                    self.log.push(r);
                }
            }
            Effect::Send { conn, frame } => self.on_send(conn, &frame),
            Effect::Close { conn } => {
                assert!(
                    !self.ev_pending.iter().any(|(c, ..)| *c == conn),
                    "{conn:?} closed before its events arrived"
                );
                self.conn_gone(conn);
            }
            Effect::Throttle { .. } => panic!("no connection reaches the outstanding limit"),
            Effect::Snapshot { .. } => {}
            other => panic!("a standalone server never asks for {other:?}"),
        }
    }

    fn conn_gone(&mut self, conn: ConnId) {
        let c = self.conns.get_mut(&conn).expect("known conn");
        assert!(c.open, "{conn:?} closed twice");
        c.open = false;
        c.fifo.clear();
        self.watches.retain(|(_, _, c)| *c != conn);
    }

    /// Apply one logged transaction to the model, in zxid order, and note
    /// what its reply and its watch triggers must be.
    fn model_apply(&mut self, r: &TxnRecord) {
        let h = &r.header;
        assert_eq!(h.zxid, self.model_zxid + 1, "zxids are contiguous");
        assert_eq!(h.op, r.txn.op(), "header op matches the body");
        assert_eq!(h.time_ms, self.now, "txn time is the time it was proposed");
        let mut nodes = self.states[&self.model_zxid].clone();
        let cx = Cx {
            session: h.session_id,
            zxid: h.zxid,
            time: h.time_ms,
        };
        let mut trig = Triggers::new();
        *self.seen.entry(format!("txn {}", r.txn.op())).or_default() += 1;
        if h.cxid == 0 {
            match &r.txn {
                Txn::CreateSession { timeout_ms } => assert_eq!(*timeout_ms, TIMEOUT_MS),
                Txn::CloseSession => {
                    // Expiry.
                    assert!(
                        self.ended_sessions.insert(h.session_id),
                        "session closed twice"
                    );
                    m_close_session(&mut nodes, &cx, &mut trig);
                }
                Txn::DeleteContainer { path } => {
                    // The reaper picks candidates from the applied tree; prep
                    // re-checks only what ZooKeeper's does (§2.8): the node
                    // as it will be exists, has no children and is not a
                    // session ephemeral. So a container deleted and
                    // re-created as a plain node while both writes were
                    // pending is reaped too, exactly as in ZooKeeper.
                    let n = nodes.get(path).expect("reaped node exists");
                    assert!(
                        !matches!(n.owner, Owner::Session(_)),
                        "reaped {path} is not a session ephemeral"
                    );
                    assert!(
                        children(&nodes, path).is_empty(),
                        "reaped {path} has no children"
                    );
                    let what = match n.owner {
                        Owner::Container => {
                            assert!(n.creates > 0, "reaped container {path} never had a child");
                            "container"
                        }
                        Owner::Ttl => "ttl",
                        _ => "re-created plain node",
                    };
                    *self.seen.entry(format!("reaped {what}")).or_default() += 1;
                    remove_node(&mut nodes, &cx, path, &mut trig);
                }
                other => panic!("unexpected server-originated txn {other:?}"),
            }
        } else {
            let (conn, req) = self
                .requests
                .get(&h.cxid)
                .expect("txn for a request sent")
                .clone();
            assert!(req.is_write(), "only writes become txns");
            let outcome = m_write(&mut nodes, &cx, &req, &mut trig);
            if matches!(req, Request::CloseSession) {
                assert!(
                    self.ended_sessions.insert(h.session_id),
                    "session closed twice"
                );
            }
            if let Some((id, _)) = &self.conns[&conn].session {
                assert_eq!(*id, h.session_id, "txn logged under the sender's session");
            }
            if let Ok(Body::Path(p) | Body::PathStat(p, _)) = &outcome {
                self.learn_path(p);
            }
            if let Ok(Body::Multi(rs)) = &outcome {
                for r in rs {
                    if let MultiResult::Create(p) | MultiResult::Create2(p, _) = r {
                        self.learn_path(p);
                    }
                }
            }
            self.expected_writes.insert(
                h.cxid,
                ExpectedWrite {
                    zxid: h.zxid,
                    outcome,
                },
            );
        }
        self.model_zxid = h.zxid;
        self.states.insert(h.zxid, nodes);
        self.triggers.insert(h.zxid, trig);
    }

    fn on_send(&mut self, conn: ConnId, frame: &[u8]) {
        let track = self.conns.get_mut(&conn).expect("known conn");
        assert!(track.open, "frame to a closed connection");
        if let Some(expect) = track.awaiting_connect.take() {
            let resp: ConnectResponse = decode(frame);
            assert_eq!(resp.read_only, Some(false));
            assert_eq!(resp.timeout_ms, TIMEOUT_MS, "session accepted");
            if let Some(id) = expect {
                assert_eq!(resp.session_id, id, "reattach keeps the session id");
            }
            assert_eq!(resp.passwd.len(), 16);
            track.session = Some((resp.session_id, resp.passwd));
            return;
        }
        let (h, body) = split_reply(frame);
        if h.xid == xid::NOTIFICATION {
            assert_eq!(h.zxid, -1, "notifications carry zxid -1");
            assert_eq!(h.err, 0);
            let ev: WatcherEvent = decode(body);
            assert_eq!(ev.state, KeeperState::SyncConnected.code());
            let t = EventType::from_code(ev.event_type).expect("known event type");
            return self.on_event(conn, t, ev.path);
        }
        let next = track.fifo.pop_front();
        assert_eq!(next, Some(h.xid), "replies in request order on {conn:?}");
        assert!(
            h.zxid >= track.last_zxid,
            "zxids never go back on a connection"
        );
        track.last_zxid = h.zxid;
        let (_, req) = self.requests[&h.xid].clone();
        *self
            .seen
            .entry(format!("{} {}", op_name(&req), err_name(h.err)))
            .or_default() += 1;
        if let (Request::Multi(_), 0) = (&req, h.err) {
            let failed = matches!(normalise(decode_body(&req, body)), Body::Multi(rs) if rs.iter().any(|r| matches!(r, MultiResult::Error(_))));
            *self
                .seen
                .entry(format!("multi failed={failed}"))
                .or_default() += 1;
        }
        let got = if h.err == 0 {
            Ok(normalise(decode_body(&req, body)))
        } else {
            assert!(body.is_empty(), "error replies have no body");
            Err(h.err)
        };
        self.advance_events(h.zxid);
        if req.is_write() {
            let exp = self
                .expected_writes
                .remove(&h.xid)
                .expect("a write is answered after its txn is logged");
            assert_eq!(h.zxid, exp.zxid, "a write's reply carries its own zxid");
            assert_eq!(got, exp.outcome.map(normalise), "reply to {req:?}");
        } else {
            assert!(h.zxid <= self.limit, "reads see only applied state");
            let (exp, watch) = m_read(&self.states[&h.zxid], &req);
            assert_eq!(
                got,
                exp.map(normalise),
                "reply to {req:?} at {}",
                hex(h.zxid)
            );
            if let Some((p, t)) = watch {
                self.watches.insert((p, t, conn));
            }
        }
    }

    // ---- watches ----

    /// Fire the model's one-shot watches for one transaction.
    fn fire(&mut self, zxid: i64) -> Vec<(ConnId, EventType, String)> {
        let mut out = Vec::new();
        for (path, ev) in self.triggers.get(&zxid).cloned().unwrap_or_default() {
            let tables: &[Table] = match ev {
                EventType::NodeCreated | EventType::NodeDataChanged => &[Table::Data],
                EventType::NodeDeleted => &[Table::Data, Table::Child],
                _ => &[Table::Child],
            };
            let mut hit = BTreeSet::new();
            for t in tables {
                let conns: Vec<ConnId> = self
                    .watches
                    .iter()
                    .filter(|(p, tt, _)| *p == path && tt == t)
                    .map(|(_, _, c)| *c)
                    .collect();
                for c in conns {
                    self.watches.remove(&(path.clone(), *t, c));
                    hit.insert(c);
                }
            }
            out.extend(hit.into_iter().map(|c| (c, ev, path.clone())));
        }
        out
    }

    /// Every event of transactions up to `zxid` has been delivered.
    fn advance_events(&mut self, zxid: i64) {
        while self.ev_cursor < zxid {
            assert!(
                self.ev_pending.is_empty(),
                "events of {} missing: {:?}",
                hex(self.ev_cursor),
                self.ev_pending
            );
            self.ev_cursor += 1;
            assert!(self.ev_cursor <= self.limit, "event for an unapplied txn");
            self.ev_pending = self.fire(self.ev_cursor);
        }
        assert!(
            self.ev_pending.is_empty(),
            "events of {} missing: {:?}",
            hex(self.ev_cursor),
            self.ev_pending
        );
    }

    fn on_event(&mut self, conn: ConnId, ev: EventType, path: String) {
        loop {
            if let Some(i) = self.ev_pending.iter().position(|(c, ..)| *c == conn) {
                *self.seen.entry(format!("event {ev:?}")).or_default() += 1;
                let want = self.ev_pending.remove(i);
                assert_eq!(want, (conn, ev, path), "event order");
                return;
            }
            assert!(
                self.ev_pending.is_empty(),
                "unexpected {ev:?} {path} to {conn:?} while {:?} pending",
                self.ev_pending
            );
            assert!(
                self.ev_cursor < self.limit,
                "unexpected {ev:?} {path} to {conn:?}"
            );
            self.ev_cursor += 1;
            self.ev_pending = self.fire(self.ev_cursor);
        }
    }

    // ---- the end ----

    fn finish(&mut self) {
        while !self.pending.is_empty() {
            self.persist(Persist::All);
        }
        for (id, c) in &self.conns {
            assert!(
                !c.open || c.fifo.is_empty(),
                "{id:?} still waits for {:?}",
                c.fifo
            );
        }
        self.check_replay();
    }

    /// The log rebuilds the tree: once, and with every record applied twice.
    fn check_replay(&self) {
        let tree = self.server.tree();
        let mut once = DataTree::new();
        let mut twice = DataTree::new();
        let mut zxid = 0;
        for r in &self.log {
            assert!(r.header.zxid > zxid, "log in zxid order");
            zxid = r.header.zxid;
            let bytes = to_bytes(r);
            let r: TxnRecord = from_bytes(&bytes).expect("logged records decode");
            once.apply(&r.header, &r.txn);
            twice.apply(&r.header, &r.txn);
            twice.apply(&r.header, &r.txn);
        }
        once.validate();
        twice.validate();
        assert_eq!(once.digest(), tree.digest(), "replay digest");
        assert_eq!(&once, tree, "replay rebuilds the tree");
        assert_eq!(twice.digest(), tree.digest(), "double replay digest");
        assert_eq!(&twice, tree, "double replay rebuilds the tree");
        // And the model agrees with the final tree, node for node.
        let model = &self.states[&self.model_zxid];
        let paths: Vec<&String> = tree.nodes().map(|(p, _)| p).collect();
        let mpaths: Vec<&String> = model.keys().collect();
        assert_eq!(paths, mpaths, "final node set");
        for (p, n) in tree.nodes() {
            assert_eq!(n.stat(), stat(model, p), "final stat of {p}");
            assert_eq!(n.data, model[p].data, "final data of {p}");
            assert_eq!(n.acl, model[p].acl, "final acl of {p}");
        }
    }
}

fn op_name(r: &Request) -> String {
    match r {
        Request::Multi(ops) if ops.len() > 1 => "multi(n>1)".into(),
        Request::Multi(ops) => format!("multi(n={})", ops.len()),
        r => zkcore::server::op_name(r.op()).into(),
    }
}

fn run(ops: &[Op]) -> BTreeMap<String, usize> {
    let mut d = Driver::new();
    for slot in 0..SLOTS {
        d.connect(slot, None);
    }
    for o in ops {
        d.run(o);
    }
    d.finish();
    d.seen
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        rng_seed: RngSeed::Fixed(0x5eed_2024),
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    })]

    #[test]
    fn server_agrees_with_model(ops in prop::collection::vec(op(), 1..120)) {
        run(&ops);
    }
}

/// Long runs with mostly immediate persistence reach deeper trees.
#[test]
fn long_deterministic_runs() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRng, TestRunner};
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for seed in 0..8u64 {
        let mut runner = TestRunner::new_with_rng(
            Config::default(),
            TestRng::from_seed(
                proptest::test_runner::RngAlgorithm::ChaCha,
                &[seed as u8; 32],
            ),
        );
        let ops = prop::collection::vec(op(), 400..401)
            .new_tree(&mut runner)
            .expect("generate")
            .current();
        for (k, v) in run(&ops) {
            *seen.entry(k).or_default() += v;
        }
    }
    println!("{seen:#?}");
    // Guard against the generator drifting into trivial runs.
    for key in [
        "CREA 0",
        "CREA -110(NodeExists)",
        "CREA -108(NoChildrenForEphemerals)",
        "DELE -103(BadVersion)",
        "DELE -111(NotEmpty)",
        "SETA -114(InvalidAcl)",
        "SETD -102(NoAuth)",
        "multi failed=false",
        "multi failed=true",
        "event NodeCreated",
        "event NodeDeleted",
        "event NodeDataChanged",
        "event NodeChildrenChanged",
        "reaped ttl",
        "txn -11",
    ] {
        assert!(seen.contains_key(key), "runs never produced {key}");
    }
}
