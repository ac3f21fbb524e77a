//! An in-memory ensemble: N servers (the real core), a message queue per
//! directed link, a crash-model disk per server, and clients speaking the
//! wire protocol. No network, no runtime: a test drives every delivery,
//! disk flush, tick, crash and partition, and checks ZAB's invariants after
//! every step:
//! - at most one established leader per epoch;
//! - one zxid names one transaction on every server, and servers that
//!   applied up to a point applied the same zxids (committed prefixes agree);
//! - every acknowledged write is in the newest established leader's tree;
//! - after healing, all servers converge on one tree digest.

use jute::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use zkcore::server::{Effect, Input, Server, ServerConfig};
use zkcore::storage::SnapshotData;
use zkcore::tree::DataTree;
use zkcore::zab::{EnsembleConfig, EpochFile, Msg, ZabRecovered};
use zkcore::ConnId;

const TICK_MS: i64 = 100;

#[derive(Debug)]
enum Op {
    Append(Vec<TxnRecord>),
    Epoch(EpochFile, u64),
    Trunc(i64),
    Install(Box<SnapshotData>),
}

/// What survives a crash: the synced log, snapshot and epochs.
#[derive(Debug, Default)]
struct Disk {
    log: Vec<TxnRecord>,
    snap: Option<SnapshotData>,
    accepted: u64,
    current: u64,
    pending: VecDeque<Op>,
}

#[derive(Debug)]
struct Client {
    node: usize,
    open: bool,
    session: i64,
    /// Every reply after the handshake: (xid, zxid, err).
    replies: Vec<(i32, i64, i32)>,
    xid: i32,
    /// xid → path of outstanding creates.
    outstanding: BTreeMap<i32, String>,
}

pub struct Cluster {
    n: usize,
    nodes: Vec<Option<Server>>,
    disks: Vec<Disk>,
    links: BTreeMap<(usize, usize), VecDeque<Vec<u8>>>,
    cut: BTreeSet<(usize, usize)>,
    now: i64,
    pub sent: BTreeMap<&'static str, u64>,
    clients: BTreeMap<ConnId, Client>,
    /// Handshakes answered "session expired".
    refused: BTreeSet<ConnId>,
    next_conn: u64,
    next_key: u64,
    /// Acknowledged creates: path → zxid.
    pub acked: BTreeMap<String, i64>,
    /// Servers whose clients got acknowledgements.
    pub acked_via: BTreeSet<usize>,
    /// zxid → the one transaction it names.
    named: BTreeMap<i64, TxnRecord>,
    leaders: BTreeMap<u64, u64>,
    rng: ChaCha8Rng,
    /// Every message and disk effect, one line each (golden tests).
    pub trace: Option<Vec<String>>,
    /// Reintroduced bugs switched on in servers started from now on
    /// (simulated build only).
    #[cfg(madsim)]
    pub bugs: Vec<zkcore::bugs::Bug>,
}

fn server_cfg(id: usize, n: usize) -> ServerConfig {
    ServerConfig {
        server_id: id as u8,
        tick_ms: TICK_MS,
        min_session_timeout_ms: 2 * TICK_MS as i32,
        max_session_timeout_ms: 100 * TICK_MS as i32,
        ensemble: Some(EnsembleConfig {
            my_id: id as u64,
            voters: (1..=n as u64).collect(),
            init_limit: 10,
            sync_limit: 5,
        }),
        ..ServerConfig::default()
    }
}

impl Cluster {
    pub fn new(n: usize, seed: u64) -> Cluster {
        let mut c = Cluster {
            n,
            nodes: (0..n).map(|_| None).collect(),
            disks: (0..n).map(|_| Disk::default()).collect(),
            links: BTreeMap::new(),
            cut: BTreeSet::new(),
            now: 1_000,
            sent: BTreeMap::new(),
            clients: BTreeMap::new(),
            refused: BTreeSet::new(),
            next_conn: 1,
            next_key: 0,
            acked: BTreeMap::new(),
            acked_via: BTreeSet::new(),
            named: BTreeMap::new(),
            leaders: BTreeMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            trace: None,
            #[cfg(madsim)]
            bugs: Vec::new(),
        };
        for i in 0..n {
            c.start(i);
        }
        c
    }

    /// Boot (or reboot) server `i` from what its disk kept.
    fn start(&mut self, i: usize) {
        let d = &self.disks[i];
        let (mut tree, base, mut sessions) = match &d.snap {
            Some(s) => (
                zkcore::recovery::tree_from_records(&s.nodes, s.last_zxid),
                s.last_zxid,
                s.sessions.iter().copied().collect::<BTreeMap<_, _>>(),
            ),
            None => (DataTree::new(), 0, BTreeMap::new()),
        };
        let tail: Vec<TxnRecord> = d
            .log
            .iter()
            .filter(|r| r.header.zxid > base)
            .cloned()
            .collect();
        for r in &tail {
            tree.apply(&r.header, &r.txn);
            match r.txn {
                Txn::CreateSession { timeout_ms } => {
                    sessions.insert(r.header.session_id, timeout_ms);
                }
                Txn::CloseSession => {
                    sessions.remove(&r.header.session_id);
                }
                _ => {}
            }
        }
        #[allow(unused_mut)]
        let mut cfg = server_cfg(i + 1, self.n);
        #[cfg(madsim)]
        {
            cfg.bugs.on = self.bugs.clone();
        }
        let ens = cfg.ensemble.clone().expect("quorum");
        let mut s = Server::new(cfg, self.now, tree, sessions.into_iter().collect());
        s.enter_ensemble(
            ens,
            ZabRecovered {
                accepted_epoch: d.accepted,
                current_epoch: d.current,
                tail,
                tail_base: base,
            },
        );
        let effs = s.take_effects();
        self.nodes[i] = Some(s);
        self.effects(i, effs);
    }

    fn crash(&mut self, i: usize) {
        self.nodes[i] = None;
        self.disks[i].pending.clear();
        self.links.retain(|(a, b), _| *a != i && *b != i);
        self.clients.retain(|_, c| c.node != i);
    }

    fn up(&self) -> Vec<usize> {
        (0..self.n).filter(|i| self.nodes[*i].is_some()).collect()
    }

    pub fn server(&self, i: usize) -> Option<&Server> {
        self.nodes[i].as_ref()
    }

    fn input(&mut self, i: usize, input: Input) {
        let Some(s) = self.nodes[i].as_mut() else {
            return;
        };
        let effs = s.handle(self.now, input);
        self.effects(i, effs);
    }

    fn note(&mut self, line: String) {
        if let Some(t) = self.trace.as_mut() {
            t.push(line);
        }
    }

    fn effects(&mut self, i: usize, effs: Vec<Effect>) {
        for e in effs {
            if self.trace.is_some() {
                if let Some(line) = describe_effect(&e) {
                    self.note(format!("s{} {line}", i + 1));
                }
            }
            match e {
                Effect::Send { conn, frame } => self.on_reply(conn, &frame),
                Effect::Close { conn } => {
                    self.clients.remove(&conn);
                }
                Effect::Throttle { .. } | Effect::Snapshot { .. } => {}
                Effect::Persist { records } => self.disks[i].pending.push_back(Op::Append(records)),
                Effect::WriteEpoch { file, epoch } => {
                    self.disks[i].pending.push_back(Op::Epoch(file, epoch))
                }
                Effect::Truncate { zxid } => self.disks[i].pending.push_back(Op::Trunc(zxid)),
                Effect::InstallSnapshot(s) => self.disks[i].pending.push_back(Op::Install(s)),
                Effect::Stop { reason } => panic!("server {} stopped: {reason}", i + 1),
                Effect::PeerSend { to, bytes } => {
                    let to = to as usize - 1;
                    let m = Msg::decode(&bytes).expect("servers send valid messages");
                    *self.sent.entry(m.name()).or_default() += 1;
                    if !self.cut.contains(&(i, to)) && self.nodes[to].is_some() {
                        self.links.entry((i, to)).or_default().push_back(bytes);
                    }
                }
            }
        }
    }

    /// Make server `i`'s pending disk work durable and report it.
    fn flush(&mut self, i: usize) {
        let mut done = Vec::new();
        let mut last = None;
        let d = &mut self.disks[i];
        while let Some(op) = d.pending.pop_front() {
            match op {
                Op::Append(rs) => {
                    last = rs.last().map(|r| r.header.zxid).or(last);
                    d.log.extend(rs);
                }
                Op::Epoch(f, e) => {
                    if let Some(z) = last.take() {
                        done.push(Input::Persisted { zxid: z });
                    }
                    match f {
                        EpochFile::Accepted => d.accepted = e,
                        EpochFile::Current => d.current = e,
                    }
                    done.push(Input::EpochWritten { file: f, epoch: e });
                }
                Op::Trunc(z) => {
                    d.log.retain(|r| r.header.zxid <= z);
                    last = last.filter(|l| *l <= z);
                }
                Op::Install(s) => {
                    d.log.clear();
                    d.snap = Some(*s);
                    last = None;
                }
            }
        }
        if let Some(z) = last {
            done.push(Input::Persisted { zxid: z });
        }
        for inp in done {
            self.input(i, inp);
        }
    }

    fn deliver(&mut self, link: (usize, usize)) {
        let Some(bytes) = self.links.get_mut(&link).and_then(|q| q.pop_front()) else {
            return;
        };
        self.input(
            link.1,
            Input::Peer {
                from: link.0 as u64 + 1,
                bytes,
            },
        );
    }

    fn tick(&mut self) {
        self.now += TICK_MS / 2;
        for i in self.up() {
            self.input(i, Input::Tick);
        }
    }

    /// Open a client on server `i` (if it has none) or send it a create.
    fn client_op(&mut self, i: usize) {
        if self.nodes[i].as_ref().is_none_or(|s| !s.serving()) {
            return;
        }
        let existing = self
            .clients
            .iter()
            .find(|(_, c)| c.node == i)
            .map(|(id, c)| (*id, c.open));
        match existing {
            None => {
                let conn = ConnId(self.next_conn);
                self.next_conn += 1;
                self.clients.insert(
                    conn,
                    Client {
                        node: i,
                        open: false,
                        session: 0,
                        replies: Vec::new(),
                        xid: 0,
                        outstanding: BTreeMap::new(),
                    },
                );
                self.input(
                    i,
                    Input::Connected {
                        conn,
                        ip: "10.0.0.9".into(),
                    },
                );
                let req = ConnectRequest {
                    protocol_version: 0,
                    last_zxid_seen: 0,
                    timeout_ms: 30_000,
                    session_id: 0,
                    passwd: vec![0; 16],
                    read_only: Some(false),
                };
                self.input(
                    i,
                    Input::Frame {
                        conn,
                        bytes: to_bytes(&req),
                    },
                );
            }
            Some((_, false)) => {}
            Some((conn, true)) => {
                let path = format!("/k{}", self.next_key);
                self.next_key += 1;
                let c = self.clients.get_mut(&conn).expect("client");
                c.xid += 1;
                let xid = c.xid;
                c.outstanding.insert(xid, path.clone());
                let mut f = Vec::new();
                RequestHeader {
                    xid,
                    op: op::CREATE,
                }
                .write(&mut f);
                Request::Create {
                    op: op::CREATE,
                    req: CreateRequest {
                        path,
                        data: Some(b"v".to_vec()),
                        acl: Acl::open(),
                        flags: 0,
                    },
                }
                .write_body(&mut f);
                self.input(i, Input::Frame { conn, bytes: f });
            }
        }
    }

    fn on_reply(&mut self, conn: ConnId, frame: &[u8]) {
        let Some(c) = self.clients.get_mut(&conn) else {
            return;
        };
        if !c.open {
            let r = from_bytes::<ConnectResponse>(frame).expect("connect response");
            c.open = r.timeout_ms > 0;
            if r.timeout_ms <= 0 {
                self.refused.insert(conn);
            }
            c.session = r.session_id;
            return;
        }
        let mut r = Reader::new(frame);
        let h = ReplyHeader::read(&mut r).expect("reply header");
        c.replies.push((h.xid, h.zxid, h.err));
        if let Some(path) = c.outstanding.remove(&h.xid) {
            if h.err == 0 {
                self.acked.insert(path, h.zxid);
                self.acked_via.insert(c.node);
            }
        }
    }

    /// A client of server `i` (re)attaching to `session` (0: a new one),
    /// driven until the handshake is answered.
    pub fn attach(&mut self, i: usize, session: i64, timeout_ms: i32) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.clients.insert(
            conn,
            Client {
                node: i,
                open: false,
                session: 0,
                replies: Vec::new(),
                xid: 1000,
                outstanding: BTreeMap::new(),
            },
        );
        let ip = "10.0.0.9".to_string();
        self.input(i, Input::Connected { conn, ip });
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms,
            session_id: session,
            passwd: zkcore::session::password(session),
            read_only: Some(false),
        };
        let bytes = to_bytes(&req);
        self.input(i, Input::Frame { conn, bytes });
        self.settle();
        conn
    }

    /// Send a request on a client connection and settle; the reply's
    /// error code (None: no reply, e.g. the connection is gone).
    pub fn request(&mut self, conn: ConnId, req: Request) -> Option<i32> {
        let c = self.clients.get_mut(&conn)?;
        c.xid += 1;
        let (xid, node) = (c.xid, c.node);
        let mut f = Vec::new();
        RequestHeader { xid, op: req.op() }.write(&mut f);
        req.write_body(&mut f);
        self.input(node, Input::Frame { conn, bytes: f });
        self.settle();
        let c = self.clients.get(&conn)?;
        c.replies.iter().find(|r| r.0 == xid).map(|r| r.2)
    }

    pub fn session_of(&self, conn: ConnId) -> i64 {
        self.clients[&conn].session
    }

    /// (handshake answered with a session, answered "expired").
    pub fn handshake(&self, conn: ConnId) -> (bool, bool) {
        let open = self.clients.get(&conn).is_some_and(|c| c.open);
        (open, self.refused.contains(&conn))
    }

    /// Deliver everything and flush every disk until nothing moves.
    pub fn settle(&mut self) {
        for _ in 0..50 {
            self.deliver_all();
            for i in self.up() {
                self.flush(i);
            }
            self.check();
            if self.links.values().all(|q| q.is_empty())
                && self.disks.iter().all(|d| d.pending.is_empty())
            {
                return;
            }
        }
    }

    /// Let `ms` of time pass (ticks, fairly delivered).
    pub fn wait(&mut self, ms: i64) {
        let until = self.now + ms;
        while self.now < until {
            self.tick();
            self.settle();
        }
    }

    /// ZAB's invariants, checked after every step.
    fn check(&mut self) {
        let mut newest: Option<(u64, usize)> = None;
        for i in self.up() {
            let s = self.nodes[i].as_ref().expect("up");
            s.validate();
            if s.commit_zxid().is_some() {
                let e = s.current_epoch();
                let id = i as u64 + 1;
                let prev = *self.leaders.entry(e).or_insert(id);
                assert_eq!(prev, id, "two established leaders in epoch {e}");
                if newest.is_none_or(|(ne, _)| e > ne) {
                    newest = Some((e, i));
                }
            }
            for r in s.history() {
                let z = r.header.zxid;
                let known = self.named.entry(z).or_insert_with(|| r.clone());
                assert_eq!(known, r, "zxid {z:#x} names two transactions");
            }
        }
        // Only serving servers: a restarted server replays its whole log,
        // uncommitted tail included, until a leader syncs it.
        let applied: Vec<(usize, BTreeSet<i64>, i64, i64)> = self
            .up()
            .into_iter()
            .filter(|i| self.nodes[*i].as_ref().is_some_and(|s| s.serving()))
            .map(|i| {
                let s = self.nodes[i].as_ref().expect("up");
                let last = s.tree().last_zxid();
                let zs: BTreeSet<i64> = s
                    .history()
                    .map(|r| r.header.zxid)
                    .filter(|z| *z <= last)
                    .collect();
                // Compare only after the point the history starts from.
                let base = s.history().next().map_or(last, |r| r.header.zxid - 1);
                (i, zs, base, last)
            })
            .collect();
        for a in &applied {
            for b in &applied {
                let lo = a.2.max(b.2);
                let hi = a.3.min(b.3);
                if lo >= hi {
                    continue;
                }
                let pa: Vec<_> = a.1.range(lo + 1..=hi).collect();
                let pb: Vec<_> = b.1.range(lo + 1..=hi).collect();
                assert_eq!(
                    pa,
                    pb,
                    "servers {} and {} applied different prefixes",
                    a.0 + 1,
                    b.0 + 1
                );
            }
        }
        if let Some((_, i)) = newest {
            let tree = self.nodes[i].as_ref().expect("up").tree();
            for (p, z) in &self.acked {
                assert!(
                    tree.get(p).is_some(),
                    "acknowledged {p} (zxid {z:#x}) missing on the newest leader {}",
                    i + 1
                );
            }
        }
    }

    /// One random step.
    pub fn step(&mut self, faults: bool) {
        let roll = self.rng.gen_range(0..100);
        let up = self.up();
        let f = (self.n - 1) / 2;
        match roll {
            0..=44 => {
                let links: Vec<(usize, usize)> = self
                    .links
                    .iter()
                    .filter(|(_, q)| !q.is_empty())
                    .map(|(l, _)| *l)
                    .collect();
                if !links.is_empty() {
                    let l = links[self.rng.gen_range(0..links.len())];
                    self.deliver(l);
                }
            }
            45..=64 => {
                let i = up[self.rng.gen_range(0..up.len())];
                self.flush(i);
            }
            65..=79 => self.tick(),
            80..=94 => {
                let i = up[self.rng.gen_range(0..up.len())];
                self.client_op(i);
            }
            95 if faults && self.n - up.len() < f => {
                let i = up[self.rng.gen_range(0..up.len())];
                self.crash(i);
            }
            96 if faults => {
                let down: Vec<usize> = (0..self.n).filter(|i| self.nodes[*i].is_none()).collect();
                if !down.is_empty() {
                    let i = down[self.rng.gen_range(0..down.len())];
                    self.start(i);
                }
            }
            97 if faults && self.cut.is_empty() => {
                let i = self.rng.gen_range(0..self.n);
                self.isolate(i);
            }
            98 if faults => self.heal(),
            _ => self.tick(),
        }
        self.check();
    }

    pub fn isolate(&mut self, i: usize) {
        for j in 0..self.n {
            if j != i {
                self.cut.insert((i, j));
                self.cut.insert((j, i));
                self.links.remove(&(i, j));
                self.links.remove(&(j, i));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Deliver every queued message, link by link, checking after each.
    fn deliver_all(&mut self) {
        let links: Vec<(usize, usize)> = self.links.keys().copied().collect();
        for l in links {
            while self.links.get(&l).is_some_and(|q| !q.is_empty()) {
                self.deliver(l);
                self.check();
            }
        }
    }

    /// Heal, restart everyone, and run fairly until one leader serves and
    /// every server has the same tree; panics if that takes too long.
    pub fn converge(&mut self) {
        self.heal();
        for i in 0..self.n {
            if self.nodes[i].is_none() {
                self.start(i);
            }
        }
        for round in 0..2_000 {
            self.deliver_all();
            for i in 0..self.n {
                self.flush(i);
                self.check();
            }
            self.tick();
            self.check();
            if round % 10 == 9 && self.converged() {
                return;
            }
        }
        let states: Vec<String> = (0..self.n)
            .map(|i| {
                let s = self.nodes[i].as_ref().expect("up");
                format!(
                    "{}: {} epoch {} zxid {:#x} serving {}",
                    i + 1,
                    s.role_name(),
                    s.current_epoch(),
                    s.tree().last_zxid(),
                    s.serving()
                )
            })
            .collect();
        panic!("no convergence:\n{}", states.join("\n"));
    }

    fn converged(&self) -> bool {
        let ss: Vec<&Server> = self.nodes.iter().flatten().collect();
        ss.iter().all(|s| s.serving())
            && ss.iter().filter(|s| s.role_name() == "leader").count() == 1
            && ss
                .iter()
                .all(|s| s.tree().digest() == ss[0].tree().digest())
            && ss
                .iter()
                .all(|s| s.tree().last_zxid() == ss[0].tree().last_zxid())
    }

    pub fn leader(&self) -> Option<usize> {
        (0..self.n).find(|i| {
            self.nodes[*i]
                .as_ref()
                .is_some_and(|s| s.commit_zxid().is_some())
        })
    }

    /// Run fairly (no faults) for `rounds` rounds, with client writes.
    pub fn run_writes(&mut self, rounds: usize) {
        for _ in 0..rounds {
            for i in self.up() {
                self.client_op(i);
            }
            self.deliver_all();
            for i in self.up() {
                self.flush(i);
                self.check();
            }
            self.tick();
            self.check();
        }
    }
}

#[test]
fn zab_three_servers_elect_replicate_and_agree() {
    let mut c = Cluster::new(3, 1);
    c.converge();
    c.run_writes(30);
    c.converge();
    assert!(
        c.acked.len() >= 20,
        "only {} writes acknowledged",
        c.acked.len()
    );
    for i in 0..3 {
        for p in c.acked.keys() {
            assert!(c.server(i).unwrap().tree().get(p).is_some());
        }
    }
    assert!(c.sent.get("DIFF").copied().unwrap_or(0) >= 2);
    assert_eq!(
        c.acked_via.len(),
        3,
        "writes through followers are answered too"
    );
}

/// Cut the leader off and let its client write: logged on the leader,
/// never committed. Returns the old leader.
fn isolate_leader_with_uncommitted_writes(c: &mut Cluster) -> usize {
    let old = c.leader().expect("a leader");
    c.isolate(old);
    for _ in 0..5 {
        c.client_op(old);
        c.flush(old);
    }
    old
}

/// Run (without faults) until a server other than `old` leads.
fn elect_another(c: &mut Cluster, old: usize) {
    for _ in 0..400 {
        c.step(false);
        if c.leader().is_some_and(|l| l != old) {
            break;
        }
    }
}

#[test]
fn zab_isolated_leader_with_an_uncommitted_tail_is_truncated() {
    let mut c = Cluster::new(3, 2);
    c.converge();
    c.run_writes(10);
    let old = isolate_leader_with_uncommitted_writes(&mut c);
    let lost_zxid = c.server(old).unwrap().logged_zxid();
    // The others elect a new leader and go on.
    elect_another(&mut c, old);
    c.run_writes(10);
    c.converge();
    assert!(
        c.sent.get("TRUNC").copied().unwrap_or(0) >= 1,
        "{:?}",
        c.sent
    );
    let s = c.server(old).unwrap();
    assert!(s
        .history()
        .all(|r| r.header.zxid != lost_zxid || s.tree().last_zxid() >= lost_zxid));
}

#[test]
fn zab_restarted_leader_that_applied_its_tail_gets_a_snapshot() {
    let mut c = Cluster::new(3, 3);
    c.converge();
    c.run_writes(10);
    let old = isolate_leader_with_uncommitted_writes(&mut c);
    // A crash and restart replays the whole log into the tree.
    c.crash(old);
    c.start(old);
    c.isolate(old);
    elect_another(&mut c, old);
    c.run_writes(10);
    c.converge();
    assert!(
        c.sent.get("SNAP").copied().unwrap_or(0) >= 1,
        "{:?}",
        c.sent
    );
}

#[test]
fn zab_random_schedules_keep_the_invariants() {
    for seed in 0..40 {
        for n in [3, 5] {
            let mut c = Cluster::new(n, seed);
            c.converge();
            for _ in 0..1_500 {
                c.step(true);
            }
            c.converge();
        }
    }
}

fn hex(z: i64) -> String {
    format!("{:#x}", z)
}

/// One line for a peer message or disk effect (client frames are left out).
fn describe_effect(e: &Effect) -> Option<String> {
    Some(match e {
        Effect::PeerSend { to, bytes } => {
            let m = Msg::decode(bytes).expect("valid");
            let what = match &m {
                Msg::Notification {
                    state,
                    vote,
                    election_epoch,
                } => format!(
                    "{state:?} vote s{} {} e{} round {election_epoch}",
                    vote.leader,
                    hex(vote.zxid),
                    vote.peer_epoch
                ),
                Msg::FollowerInfo {
                    accepted_epoch,
                    last_zxid,
                    applied_zxid,
                } => format!(
                    "accepted {accepted_epoch} last {} applied {}",
                    hex(*last_zxid),
                    hex(*applied_zxid)
                ),
                Msg::LeaderInfo { epoch } | Msg::NewLeader { epoch } => format!("epoch {epoch}"),
                Msg::AckEpoch {
                    current_epoch,
                    last_zxid,
                    ..
                } => format!("current {current_epoch} last {}", hex(*last_zxid)),
                Msg::Diff { zxid } | Msg::Trunc { zxid } | Msg::Commit { zxid } => hex(*zxid),
                Msg::Snap(s) => format!("{} ({} nodes)", hex(s.last_zxid), s.nodes.len()),
                Msg::Proposal(r) => format!("{} {}", hex(r.header.zxid), op_name(r.header.op)),
                Msg::Ack { zxid, newleader } => {
                    format!(
                        "{}{}",
                        hex(*zxid),
                        if *newleader { " newleader" } else { "" }
                    )
                }
                Msg::Ping { .. } | Msg::PingReply { .. } => return None,
                Msg::Request {
                    session, cxid, op, ..
                } => {
                    format!("{} cxid {cxid} {}", hex(*session), op_name(*op))
                }
                other => format!("{other:?}"),
            };
            format!("-> s{to} {} {what}", m.name())
        }
        Effect::Persist { records } => {
            let zs: Vec<String> = records.iter().map(|r| hex(r.header.zxid)).collect();
            format!("log {}", zs.join(" "))
        }
        Effect::WriteEpoch { file, epoch } => format!("write {} {epoch}", file.file_name()),
        Effect::Truncate { zxid } => format!("truncate after {}", hex(*zxid)),
        Effect::InstallSnapshot(s) => format!("install snapshot {}", hex(s.last_zxid)),
        Effect::Stop { reason } => format!("stop: {reason}"),
        _ => return None,
    })
}

fn op_name(op: i32) -> &'static str {
    zkcore::server::op_name(op)
}

#[test]
fn zab_golden_failover_trace() {
    // A fixed schedule (no randomness): three servers elect, take writes
    // through every server, lose the leader to isolation while it logs a
    // write it cannot commit, elect another, and heal (the old leader is
    // truncated). Every message and disk effect is compared with the
    // reviewed trace; UPDATE_GOLDEN=1 rewrites it.
    let mut c = Cluster::new(3, 0);
    c.trace = Some(Vec::new());
    c.converge();
    c.note("== writes".into());
    c.run_writes(2);
    let old = c.leader().expect("leader");
    c.note(format!("== isolate s{}", old + 1));
    c.isolate(old);
    c.client_op(old);
    c.flush(old);
    c.wait(2_000);
    c.note("== heal".into());
    c.converge();
    c.note("== writes".into());
    c.run_writes(1);
    c.converge();
    let got = c.trace.take().unwrap().join("\n") + "\n";
    let path = format!(
        "{}/tests/zab_golden/failover.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(std::path::Path::new(&path).parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    if want != got {
        let line = want
            .lines()
            .zip(got.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(got.lines().count()));
        panic!(
            "trace differs from {path} at line {} (UPDATE_GOLDEN=1 to rewrite, then review):\nwant: {:?}\ngot:  {:?}",
            line + 1,
            want.lines().nth(line),
            got.lines().nth(line)
        );
    }
    assert!(got.contains("TRUNC"), "the old leader was truncated");
}

fn create(path: &str, flags: i32) -> Request {
    Request::Create {
        op: op::CREATE,
        req: CreateRequest {
            path: path.into(),
            data: Some(b"v".to_vec()),
            acl: Acl::open(),
            flags,
        },
    }
}

fn follower_of(c: &Cluster, n: usize) -> Vec<usize> {
    (0..n)
        .filter(|i| c.server(*i).is_some_and(|s| s.role_name() == "follower"))
        .collect()
}

#[test]
fn zab_session_moves_between_servers_and_the_old_connection_gets_session_moved() {
    let mut c = Cluster::new(3, 4);
    c.converge();
    let f = follower_of(&c, 3);
    let (a, b) = (f[0], f[1]);
    let old = c.attach(a, 0, 6_000);
    let session = c.session_of(old);
    assert_ne!(session, 0);
    assert_eq!(
        c.request(old, create("/e", 1)),
        Some(0),
        "ephemeral via a follower"
    );
    // The client re-attaches to another follower (its old connection is
    // still open on the first one).
    let new = c.attach(b, session, 6_000);
    assert_eq!(c.session_of(new), session, "the session survives the move");
    assert_eq!(c.request(new, create("/x", 0)), Some(0));
    assert_eq!(
        c.request(old, create("/y", 0)),
        Some(ErrorCode::SessionMoved.code()),
        "a write through the old server after the move"
    );
    for i in 0..3 {
        let t = c.server(i).unwrap().tree();
        assert!(t.get("/x").is_some() && t.get("/y").is_none());
        assert_eq!(t.get("/e").unwrap().ephemeral_owner, session);
    }
}

#[test]
fn zab_leader_expires_a_followers_session_and_its_ephemerals_vanish_everywhere() {
    let mut c = Cluster::new(3, 5);
    c.converge();
    let f = follower_of(&c, 3)[0];
    let conn = c.attach(f, 0, 2_000);
    let session = c.session_of(conn);
    assert_eq!(c.request(conn, create("/eph", 1)), Some(0));
    assert_eq!(
        c.request(
            conn,
            Request::Exists(ExistsRequest {
                path: "/eph".into(),
                watch: false
            })
        ),
        Some(0)
    );
    // Pings keep it alive: the follower reports them to the leader.
    for _ in 0..10 {
        c.wait(500);
        let exists = Request::Exists(ExistsRequest {
            path: "/eph".into(),
            watch: false,
        });
        assert_eq!(c.request(conn, exists), Some(0));
    }
    assert!((0..3).all(|i| c.server(i).unwrap().tree().get("/eph").is_some()));
    // Silence: the leader expires it, and the follower closes the
    // client's connection.
    c.wait(4_000);
    assert_eq!(c.request(conn, Request::Ping), None, "connection closed");
    for i in 0..3 {
        let s = c.server(i).unwrap();
        assert!(
            s.tree().get("/eph").is_none(),
            "server {} kept the ephemeral",
            i + 1
        );
        assert!(s.sessions().get(session).is_none());
    }
}

#[test]
fn zab_sync_on_a_follower_waits_for_the_leaders_commits() {
    let mut c = Cluster::new(3, 6);
    c.converge();
    let f = follower_of(&c, 3)[0];
    let conn = c.attach(f, 0, 6_000);
    let r = c.request(conn, Request::Sync(SyncRequest { path: "/".into() }));
    assert_eq!(r, Some(0));
}

/// A 3-server cluster whose leader, holding a client's session (with an
/// ephemeral `/eph`), is cut off and silent past the session's timeout:
/// it has marked the session closing, and its closeSession cannot commit.
/// (the cluster, the old leader, the session)
fn leader_cut_off_while_expiring_a_session() -> (Cluster, usize, i64) {
    let mut c = Cluster::new(3, 7);
    c.converge();
    let l = c.leader().expect("a leader");
    let conn = c.attach(l, 0, 3 * TICK_MS as i32);
    let session = c.session_of(conn);
    assert_eq!(c.request(conn, create("/eph", 1)), Some(0));
    c.isolate(l);
    c.wait(4 * TICK_MS);
    let s = c.server(l).unwrap();
    assert_eq!(
        s.role_name(),
        "leader",
        "still leading (syncLimit not over)"
    );
    assert!(s.sessions().get(session).is_some_and(|x| x.closing));
    (c, l, session)
}

/// Step until a server other than `old` is an established leader (one
/// that has committed); that server.
fn await_established_leader_other_than(c: &mut Cluster, old: usize) -> usize {
    let new_leader = |c: &Cluster| {
        (0..c.n).find(|&x| {
            x != old
                && c.server(x)
                    .is_some_and(|s| s.role_name() == "leader" && s.commit_zxid().is_some())
        })
    };
    for _ in 0..4000 {
        if new_leader(c).is_some() {
            break;
        }
        c.step(false);
    }
    let roles: Vec<_> = (0..c.n)
        .map(|x| c.server(x).map(|s| (s.role_name(), s.commit_zxid())))
        .collect();
    new_leader(c).unwrap_or_else(|| panic!("a new leader: {roles:?} old {old}"))
}

/// Found by the simulator (swarm, 3 servers, seed 182): a leader expired a
/// session and was cut off before its closeSession could commit; a new
/// leader kept the session alive. The old leader must not tell the client
/// that the session expired (the client would give it up, and its
/// ephemerals would outlive what it was told).
#[test]
fn zab_a_leader_whose_close_of_a_session_may_not_commit_does_not_refuse_it() {
    let (mut c, l, session) = leader_cut_off_while_expiring_a_session();
    let again = c.attach(l, session, 3 * TICK_MS as i32);
    assert_eq!(c.handshake(again), (false, false), "no answer, not expired");
    // The others elect a leader that still holds the session.
    let n = await_established_leader_other_than(&mut c, l);
    let f = (0..3)
        .find(|&x| x != l && x != n)
        .expect("the third server");
    c.settle();
    assert!(c.server(f).unwrap().serving());
    let moved = c.attach(f, session, 3 * TICK_MS as i32);
    assert_eq!(
        c.handshake(moved),
        (true, false),
        "re-attached via {}",
        f + 1
    );
}

/// Found by the simulator (swarm, 3 servers, seed 411): a leader expired
/// sessions while it was cut off (its closeSession proposals never
/// committed), lost its quorum and came back as a follower of a leader
/// that kept those sessions. Its closing marks stayed, so it answered
/// every request of those sessions with SessionExpired, on connections it
/// had accepted, while the sessions were alive everywhere else.
#[test]
fn zab_a_demoted_leader_forgets_the_closes_that_never_committed() {
    let (mut c, l, session) = leader_cut_off_while_expiring_a_session();
    // The others elect a leader that keeps the session (the client moves
    // to the third server and reads there).
    let n = await_established_leader_other_than(&mut c, l);
    let f = (0..3).find(|&x| x != l && x != n).expect("the third");
    c.settle();
    let moved = c.attach(f, session, 3 * TICK_MS as i32);
    assert_eq!(c.handshake(moved), (true, false));
    let exists = || {
        Request::Exists(ExistsRequest {
            path: "/eph".into(),
            watch: false,
        })
    };
    // Healed, the old leader follows the new one.
    c.heal();
    for i in 0..4000 {
        if c.server(l)
            .is_some_and(|s| s.role_name() == "follower" && s.serving())
        {
            break;
        }
        if i % 5 == 0 {
            assert_eq!(
                c.request(moved, exists()),
                Some(0),
                "kept alive via {}",
                f + 1
            );
        }
        c.step(false);
    }
    c.settle();
    let s = c.server(l).unwrap();
    assert_eq!(s.role_name(), "follower");
    assert!(s.serving());
    assert!(
        s.sessions().get(session).is_some_and(|x| !x.closing),
        "the session lives on, not closing: {:?}",
        s.sessions().get(session)
    );
    // Its client comes back to it, and is served.
    let again = c.attach(l, session, 3 * TICK_MS as i32);
    assert_eq!(c.handshake(again), (true, false));
    assert_eq!(
        c.request(again, exists()),
        Some(0),
        "served, not SessionExpired"
    );
}

/// A cluster where every server runs with `bug` (restarted to take it).
#[cfg(madsim)]
fn with_bug(n: usize, seed: u64, bug: zkcore::bugs::Bug) -> Cluster {
    let mut c = Cluster::new(n, seed);
    c.bugs = vec![bug];
    for i in 0..n {
        c.crash(i);
        c.start(i);
    }
    c
}

/// The switch's mechanism, checked where it acts: with ZK-5010 a leader
/// answers a learner with an uncommitted tail by DIFF, and the invariants
/// (equal trees at equal zxids) catch the stale tail being applied.
#[cfg(madsim)]
#[test]
fn bug_zk5010_diff_instead_of_trunc_is_caught() {
    let r = std::panic::catch_unwind(|| {
        let mut c = with_bug(3, 2, zkcore::bugs::Bug::Zk5010);
        c.converge();
        c.run_writes(10);
        let old = isolate_leader_with_uncommitted_writes(&mut c);
        elect_another(&mut c, old);
        c.run_writes(10);
        c.converge();
        c.sent.clone()
    });
    assert!(r.is_err(), "not caught: {:?}", r.ok());
}

/// ZK-1732's mechanism in the in-memory cluster: a restarted server whose
/// election epoch differs from the ensemble's never joins it (without the
/// switch it does).
#[cfg(madsim)]
#[test]
fn bug_zk1732_a_restarted_server_in_another_election_epoch_never_joins() {
    let run = |bug: Option<zkcore::bugs::Bug>| {
        let mut c = match bug {
            Some(b) => with_bug(3, 4, b),
            None => Cluster::new(3, 4),
        };
        c.converge();
        let l = c.leader().expect("a leader");
        c.crash(l);
        for _ in 0..300 {
            c.step(false);
        }
        c.start(l);
        for _ in 0..600 {
            c.step(false);
        }
        c.server(l).expect("running").role_name()
    };
    assert_eq!(run(None), "follower");
    assert_eq!(run(Some(zkcore::bugs::Bug::Zk1732)), "looking");
}
