//! The standalone server as a state machine: the request pipeline of
//! ZooKeeper (prep → sync → final) without threads or sockets.
//!
//! The shell feeds [`Input`]s (a connection opened, a frame arrived, a tick,
//! the log is durable up to zxid N) and executes the returned [`Effect`]s in
//! order (send a frame, close a connection, persist these transactions, take
//! a snapshot).
//!
//! Pipeline and guarantees:
//! - A write is prepared at once against the tree plus pending changes
//!   ([`crate::prep`]), gets the next zxid, and is handed to the shell to
//!   persist. Failed writes become error transactions with their own zxid,
//!   exactly like ZooKeeper.
//! - Only when the shell reports the transaction durable is it applied to
//!   the tree, its watches fired, and its reply produced. Nothing a client can
//!   observe ever depends on a non-durable write.
//! - Each connection has a FIFO of outstanding requests. Replies leave in
//!   request order; a read waits behind its session's earlier writes (so a
//!   session reads its own writes), and watch notifications are sent while
//!   applying, before any reply that could show the new state.
//! - Session expiry is driven by ticks; an expired or closed session's
//!   ephemerals are deleted by one closeSession transaction.

use crate::acl::{self, AuthInfo, AuthOutcome};
use crate::prep::{self, Ctx, Overlay};
use crate::session::{self, SessionTracker};
use crate::tree::{DataTree, Trigger};
use crate::watch::{Table, WatchManager, WatchMode};
use crate::zab::SessionCheck;
use crate::ConnId;
use jute::request::{write_multi_results, MultiOp, MultiResult};
use jute::txn::TxnRecord;
use jute::*;
use std::collections::{BTreeMap, VecDeque};
use std::result::Result;

/// Server settings the core needs (the shell maps zoo.cfg onto this).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub server_id: u8,
    pub tick_ms: i64,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub snap_count: u64,
    pub skip_acl: bool,
    pub super_digest: Option<String>,
    pub extended_types: bool,
    pub reconfig_enabled: bool,
    /// Outstanding requests per connection before reads are paused.
    pub max_cnxn_outstanding: usize,
    pub container_check_interval_ms: i64,
    /// Quorum mode (`None`: standalone).
    pub ensemble: Option<crate::zab::EnsembleConfig>,
    /// Simulation-only fault switches; absent from the real build.
    #[cfg(madsim)]
    pub bugs: crate::bugs::Bugs,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            server_id: 1,
            tick_ms: 2000,
            min_session_timeout_ms: 4000,
            max_session_timeout_ms: 40000,
            snap_count: 100_000,
            skip_acl: false,
            super_digest: None,
            extended_types: false,
            reconfig_enabled: false,
            max_cnxn_outstanding: 1000,
            container_check_interval_ms: 60_000,
            ensemble: None,
            #[cfg(madsim)]
            bugs: crate::bugs::Bugs::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A client connected from `ip`.
    Connected { conn: ConnId, ip: String },
    /// One frame (without its length prefix).
    Frame { conn: ConnId, bytes: Vec<u8> },
    /// The client's socket closed.
    Disconnected { conn: ConnId },
    /// Time passed (the shell sends one at least every tick).
    Tick,
    /// Every transaction up to and including `zxid` is durable.
    Persisted { zxid: i64 },
    /// A message from ensemble member `from` (quorum mode).
    Peer { from: u64, bytes: Vec<u8> },
    /// The connection from ensemble member `from` broke (it crashed or
    /// restarted): a follower of it looks for a new leader at once.
    PeerLost { from: u64 },
    /// An epoch file asked for by [`Effect::WriteEpoch`] is durable, and so
    /// is every transaction persisted before it was asked for.
    EpochWritten {
        file: crate::zab::EpochFile,
        epoch: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send one frame (the shell adds the length prefix).
    Send { conn: ConnId, frame: Vec<u8> },
    /// Close after everything sent before.
    Close { conn: ConnId },
    /// Stop (true) or resume (false) reading from a connection.
    Throttle { conn: ConnId, paused: bool },
    /// Append these transactions to the log and make them durable, then
    /// report [`Input::Persisted`].
    Persist { records: Vec<TxnRecord> },
    /// Take a snapshot of the tree as of `zxid` (roll the log first).
    Snapshot { zxid: i64 },
    /// Send a message to ensemble member `to` (may be lost).
    PeerSend { to: u64, bytes: Vec<u8> },
    /// Durably write an epoch file, in order with the other disk effects,
    /// then report [`Input::EpochWritten`].
    WriteEpoch {
        file: crate::zab::EpochFile,
        epoch: u64,
    },
    /// ZAB TRUNC: durably drop every logged transaction after `zxid`, in
    /// order with the other disk effects.
    Truncate { zxid: i64 },
    /// ZAB SNAP: the state was replaced by this snapshot; drop the whole
    /// log and write the snapshot durably, in order with the other disk
    /// effects; later transactions append after it.
    InstallSnapshot(Box<crate::storage::SnapshotData>),
    /// The server hit a state it cannot continue from: stop it (the shell
    /// exits with `reason`).
    Stop { reason: String },
}

/// ZK-3145: how many transactions a fuzzy snapshot's serializer runs
/// behind (simulation only).
#[cfg(madsim)]
const FUZZY_WINDOW: u64 = 3;

/// What to reply once a transaction is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReplyKind {
    Create(i32),
    Delete,
    SetData,
    SetAcl,
    Multi(Vec<i32>),
    Plain,
    CloseSession,
    Connect { read_only: Option<bool> },
}

#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub(crate) conn: ConnId,
    pub(crate) xid: i32,
    pub(crate) kind: ReplyKind,
    /// Names this request's `Entry::Write` in its connection's queue.
    pub(crate) token: u64,
}

#[derive(Debug, Clone)]
pub(crate) enum Entry {
    /// A read (or ping/sync/watch op) executed when it reaches the head.
    Read(i32, Request),
    /// A write (named by its origin's token) waiting for its transaction
    /// to apply.
    Write(u64),
    /// A `sync` in quorum mode (by token), waiting until the leader's
    /// commits as of the request have been applied here.
    Wait(u64),
    /// A reply ready to go; `close` closes the connection after it.
    Done { frame: Vec<u8>, close: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConnState {
    /// Waiting for the ConnectRequest.
    Handshake,
    /// createSession transaction in flight; frames are buffered.
    Establishing,
    Open,
}

impl Conn {
    pub(crate) fn push(&mut self, e: Entry, now_ms: i64) {
        self.queue.push_back(e);
        self.arrivals.push_back(now_ms);
    }
}

#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) ip: String,
    pub(crate) auth: AuthInfo,
    pub(crate) session: Option<i64>,
    pub(crate) state: ConnState,
    pub(crate) queue: VecDeque<Entry>,
    /// Arrival time of each queued entry (parallel to `queue`).
    pub(crate) arrivals: VecDeque<i64>,
    pub(crate) buffered: VecDeque<Vec<u8>>,
    pub(crate) paused: bool,
    pub(crate) stats: ConnStats,
}

/// Per-connection counters for the `cons`/`stat` words.
#[derive(Debug, Clone, Default)]
pub struct ConnStats {
    pub received: u64,
    pub sent: u64,
    pub established_ms: i64,
    pub last_op: String,
    pub last_cxid: i64,
    pub last_zxid: i64,
    pub last_response_ms: i64,
    pub latency: Latency,
}

/// Request latency (receipt to reply) in ms, as srvr/cons print it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    pub count: u64,
    pub total_ms: i64,
    pub min_ms: i64,
    pub max_ms: i64,
    pub last_ms: i64,
}

impl Latency {
    fn record(&mut self, ms: i64) {
        if self.count == 0 || ms < self.min_ms {
            self.min_ms = ms;
        }
        self.max_ms = self.max_ms.max(ms);
        self.total_ms += ms;
        self.count += 1;
        self.last_ms = ms;
    }

    pub fn avg_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.total_ms as f64 / self.count as f64
        }
    }
}

/// Server-wide counters for the four-letter words.
#[derive(Debug, Clone, Default)]
pub struct ServerStats {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub txns_applied: u64,
    pub latency: Latency,
}

#[derive(Debug, Clone)]
pub(crate) struct InFlight {
    pub(crate) record: TxnRecord,
    pub(crate) origin: Option<Origin>,
}

/// The standalone ZooKeeper server core.
///
/// Invariants:
/// - `inflight` holds prepared transactions in strictly increasing zxid
///   order, all greater than the tree's last applied zxid, and `next_zxid`
///   is one past the newest;
/// - every `Entry::Write(z)` in a connection queue has an in-flight
///   transaction `z` whose origin is that connection;
/// - `session_conn` maps each session to at most one open connection, and
///   that connection's `session` points back.
pub struct Server {
    pub(crate) cfg: ServerConfig,
    pub(crate) tree: DataTree,
    pub(crate) sessions: SessionTracker,
    pub(crate) watches: WatchManager,
    pub(crate) overlay: Overlay,
    pub(crate) conns: BTreeMap<ConnId, Conn>,
    pub(crate) session_conn: BTreeMap<i64, ConnId>,
    pub(crate) inflight: VecDeque<InFlight>,
    pub(crate) next_zxid: i64,
    /// Monotonic time: session deadlines, latency, the reaper's interval.
    pub(crate) now_ms: i64,
    /// Wall-clock time: znode ctime/mtime (txn time), TTL expiry, what the
    /// four-letter words print. A skewed wall clock must not expire sessions.
    pub(crate) wall_ms: i64,
    pub(crate) since_snapshot: u64,
    /// (zxid, tree digest) after each applied transaction, kept only when
    /// [`Server::record_applied`] asked for it (the simulator's monitor).
    applied_log: Option<Vec<(i64, u64)>>,
    /// ZK-3145 (simulation only): the parents as the fuzzy serializer saw
    /// them a few transactions before the snapshot point, and that zxid.
    #[cfg(madsim)]
    fuzzy_early: Option<(i64, Vec<crate::storage::NodeRecord>)>,
    pub(crate) last_reap_ms: i64,
    pub stats: ServerStats,
    /// Quorum-mode state (`None`: standalone).
    pub(crate) zab: Option<Box<crate::zab::Zab>>,
    pub(crate) next_token: u64,
    pub(crate) out: Vec<Effect>,
    /// Watch notifications produced so far (for `Bugs::drop_watch_event`).
    #[cfg(madsim)]
    pub(crate) notifications: u64,
}

pub(crate) fn frame(xid: i32, zxid: i64, err: i32, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(16 + body.len());
    ReplyHeader { xid, zxid, err }.write(&mut f);
    f.extend_from_slice(body);
    f
}

pub(crate) fn rec_bytes<R: Record>(r: &R) -> Vec<u8> {
    to_bytes(r)
}

impl Server {
    /// A server over a recovered (or fresh) tree and session table, with one
    /// time used as both monotonic and wall-clock time.
    pub fn new(
        cfg: ServerConfig,
        now_ms: i64,
        tree: DataTree,
        sessions: Vec<(i64, i32)>,
    ) -> Server {
        Server::new_at(cfg, now_ms, now_ms, tree, sessions)
    }

    /// A server starting at monotonic time `now_ms` and wall-clock time
    /// `wall_ms` (session ids are seeded from the wall clock, as ZooKeeper's).
    pub fn new_at(
        cfg: ServerConfig,
        now_ms: i64,
        wall_ms: i64,
        tree: DataTree,
        sessions: Vec<(i64, i32)>,
    ) -> Server {
        let mut tracker = SessionTracker::new(wall_ms, cfg.server_id, cfg.tick_ms);
        for (id, timeout) in sessions {
            tracker.add(id, timeout, now_ms);
        }
        let next_zxid = tree.last_zxid() + 1;
        Server {
            cfg,
            tree,
            sessions: tracker,
            watches: WatchManager::default(),
            overlay: Overlay::default(),
            conns: BTreeMap::new(),
            session_conn: BTreeMap::new(),
            inflight: VecDeque::new(),
            next_zxid,
            now_ms,
            wall_ms,
            since_snapshot: 0,
            applied_log: None,
            #[cfg(madsim)]
            fuzzy_early: None,
            last_reap_ms: now_ms,
            stats: ServerStats::default(),
            zab: None,
            next_token: 1,
            out: Vec::new(),
            #[cfg(madsim)]
            notifications: 0,
        }
    }

    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    pub fn sessions(&self) -> &SessionTracker {
        &self.sessions
    }

    pub fn watches(&self) -> &WatchManager {
        &self.watches
    }

    pub fn config(&self) -> &ServerConfig {
        &self.cfg
    }

    pub fn outstanding(&self) -> usize {
        self.conns.values().map(|c| c.queue.len()).sum()
    }

    /// Connections: (id, ip, session, queued, stats).
    pub fn connections(&self) -> Vec<(ConnId, String, i64, usize, ConnStats)> {
        self.conns
            .iter()
            .map(|(id, c)| {
                (
                    *id,
                    c.ip.clone(),
                    c.session.unwrap_or(0),
                    c.queue.len(),
                    c.stats.clone(),
                )
            })
            .collect()
    }

    /// The monotonic time of the last input (session deadlines use it).
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    pub fn session_of(&self, conn: ConnId) -> Option<i64> {
        self.conns.get(&conn).and_then(|c| c.session)
    }

    /// Handle one input at time `now_ms`, used as both the monotonic and the
    /// wall-clock time; returns the effects in order.
    pub fn handle(&mut self, now_ms: i64, input: Input) -> Vec<Effect> {
        self.handle_at(now_ms, now_ms, input)
    }

    /// Handle one input at monotonic time `mono_ms` and wall-clock time
    /// `wall_ms` (which may jump or be skewed); returns the effects in order.
    pub fn handle_at(&mut self, mono_ms: i64, wall_ms: i64, input: Input) -> Vec<Effect> {
        if mono_ms > self.now_ms {
            self.now_ms = mono_ms;
        }
        self.wall_ms = wall_ms;
        match input {
            Input::Connected { conn, ip } => self.on_connected(conn, ip),
            Input::Frame { conn, bytes } => self.on_frame(conn, bytes),
            Input::Disconnected { conn } => self.drop_conn(conn),
            Input::Tick if self.zab.is_some() => self.zab_tick(),
            Input::Tick => self.on_tick(),
            Input::Persisted { zxid } if self.zab.is_some() => self.zab_persisted(zxid),
            Input::Persisted { zxid } => self.on_persisted(zxid),
            Input::Peer { from, bytes } => self.on_peer(from, &bytes),
            Input::PeerLost { from } => self.on_peer_lost(from),
            Input::EpochWritten { file, epoch } => self.on_epoch_written(file, epoch),
        }
        std::mem::take(&mut self.out)
    }

    pub(crate) fn send(&mut self, conn: ConnId, f: Vec<u8>) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.stats.sent += 1;
            c.stats.last_response_ms = self.wall_ms;
            self.stats.packets_sent += 1;
            self.out.push(Effect::Send { conn, frame: f });
        }
    }

    pub(crate) fn close(&mut self, conn: ConnId) {
        if self.conns.contains_key(&conn) {
            self.out.push(Effect::Close { conn });
            self.drop_conn(conn);
        }
    }

    fn drop_conn(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            self.watches.remove_conn(conn);
            if let Some(s) = c.session {
                if self.session_conn.get(&s) == Some(&conn) {
                    self.session_conn.remove(&s);
                }
            }
        }
    }

    fn record_latency(&mut self, conn: ConnId, arrived_ms: i64) {
        let ms = (self.now_ms - arrived_ms).max(0);
        self.stats.latency.record(ms);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.stats.latency.record(ms);
        }
    }

    /// `srst`: reset server-wide statistics.
    pub fn reset_stats(&mut self) {
        self.stats = ServerStats::default();
    }

    /// `crst`: reset every connection's statistics.
    pub fn reset_conn_stats(&mut self) {
        for c in self.conns.values_mut() {
            c.stats.received = 0;
            c.stats.sent = 0;
            c.stats.latency = Latency::default();
        }
    }

    fn on_connected(&mut self, conn: ConnId, ip: String) {
        self.conns.insert(
            conn,
            Conn {
                auth: AuthInfo::for_ip(&ip),
                ip,
                session: None,
                state: ConnState::Handshake,
                queue: VecDeque::new(),
                arrivals: VecDeque::new(),
                buffered: VecDeque::new(),
                paused: false,
                stats: ConnStats {
                    established_ms: self.wall_ms,
                    ..Default::default()
                },
            },
        );
    }

    fn on_frame(&mut self, conn: ConnId, bytes: Vec<u8>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.stats.received += 1;
        self.stats.packets_received += 1;
        match c.state {
            ConnState::Handshake => self.on_connect_request(conn, &bytes),
            ConnState::Establishing => c.buffered.push_back(bytes),
            ConnState::Open => self.on_request(conn, &bytes),
        }
    }

    fn negotiate(&self, requested: i32) -> i32 {
        requested
            .max(self.cfg.min_session_timeout_ms)
            .min(self.cfg.max_session_timeout_ms)
    }

    fn on_connect_request(&mut self, conn: ConnId, bytes: &[u8]) {
        let Ok(req) = from_bytes::<ConnectRequest>(bytes) else {
            return self.close(conn);
        };
        if !self.serving() {
            // Like ZooKeeper while it has no quorum: not running, go away
            // (the client tries another server).
            return self.close(conn);
        }
        if req.last_zxid_seen > self.tree.last_zxid() {
            // The client has seen a newer state than ours: it must try
            // another server. No response.
            return self.close(conn);
        }
        let timeout = self.negotiate(req.timeout_ms);
        if req.session_id == 0 {
            let id = self.sessions.next_session_id();
            let c = self.conns.get_mut(&conn).expect("conn exists");
            c.state = ConnState::Establishing;
            let origin = Origin {
                conn,
                xid: 0,
                kind: ReplyKind::Connect {
                    read_only: req.read_only.map(|_| false),
                },
                token: 0,
            };
            if self.is_follower() {
                return self.forward_create_session(id, timeout, origin);
            }
            self.claim_session(id);
            self.propose(
                id,
                0,
                Txn::CreateSession {
                    timeout_ms: timeout,
                },
                Some(origin),
            );
            return;
        }
        let ro = req.read_only.map(|_| false);
        if req.passwd != session::password(req.session_id) {
            return self.refuse_session(conn, ro);
        }
        if self.is_follower() {
            // Only the leader knows whether a global session still lives:
            // a follower's table may lag behind a close or a creation.
            return self.forward_revalidate(conn, req.session_id, timeout, ro);
        }
        match self.session_check(req.session_id) {
            SessionCheck::Valid => {
                if let Some(old) = self.session_conn.get(&req.session_id).copied() {
                    if old != conn {
                        self.close(old);
                    }
                }
                self.claim_session(req.session_id);
                self.sessions
                    .set_timeout(req.session_id, timeout, self.now_ms);
                self.establish(conn, req.session_id, timeout, ro);
            }
            SessionCheck::Expired => self.refuse_session(conn, ro),
            // No answer: the client tries again, elsewhere or later.
            SessionCheck::Unsure => self.close(conn),
        }
    }

    /// Whether a session may be re-attached, as far as this server (a
    /// standalone server or a leader) can tell. A session whose
    /// closeSession is still in flight is not yet expired (that
    /// transaction may never commit, e.g. when this leader was cut off and
    /// a new one took over); a session this server does not know is
    /// expired only if this server is sure its view is current.
    pub(crate) fn session_check(&self, session: i64) -> SessionCheck {
        if self.sessions.is_live(session) {
            SessionCheck::Valid
        } else if self.sessions.get(session).is_some() {
            crate::cover::hit(crate::cover::Mark::ReattachUnsure);
            SessionCheck::Unsure
        } else if self.zab.is_none() || self.leader_vouches() {
            SessionCheck::Expired
        } else {
            crate::cover::hit(crate::cover::Mark::ReattachUnsure);
            SessionCheck::Unsure
        }
    }

    /// Tell a client its session is gone (a ConnectResponse with timeout
    /// 0) and close the connection.
    pub(crate) fn refuse_session(&mut self, conn: ConnId, read_only: Option<bool>) {
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout_ms: 0,
            session_id: 0,
            passwd: vec![0; 16],
            read_only,
        };
        self.send(conn, rec_bytes(&resp));
        self.close(conn);
    }

    pub(crate) fn establish(&mut self, conn: ConnId, session: i64, timeout: i32, ro: Option<bool>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.session = Some(session);
        c.state = ConnState::Open;
        self.session_conn.insert(session, conn);
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout_ms: timeout,
            session_id: session,
            passwd: session::password(session),
            read_only: ro,
        };
        self.send(conn, rec_bytes(&resp));
        while let Some(f) = self
            .conns
            .get_mut(&conn)
            .filter(|c| c.state == ConnState::Open)
            .and_then(|c| c.buffered.pop_front())
        {
            self.on_request(conn, &f);
        }
    }

    /// Keep (zxid, digest) after every applied transaction for
    /// [`Server::take_applied`] (a monitor comparing replicas at every
    /// zxid, not only where an input ended).
    pub fn record_applied(&mut self) {
        self.applied_log.get_or_insert_with(Vec::new);
    }

    /// The (zxid, digest) pairs applied since the last call.
    pub fn take_applied(&mut self) -> Vec<(i64, u64)> {
        self.applied_log
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Whether a reintroduced bug is switched on (simulation only).
    #[cfg(madsim)]
    pub(crate) fn bug(&self, b: crate::bugs::Bug) -> bool {
        self.cfg.bugs.has(b)
    }

    /// Assign the next zxid to a transaction and hand it to the shell.
    pub(crate) fn propose(
        &mut self,
        session: i64,
        cxid: i32,
        txn: Txn,
        origin: Option<Origin>,
    ) -> i64 {
        let zxid = self.next_zxid;
        self.next_zxid += 1;
        let record = TxnRecord {
            header: TxnHeader {
                session_id: session,
                cxid,
                zxid,
                time_ms: self.wall_ms,
                op: txn.op(),
            },
            txn,
        };
        if let Some(o) = &origin {
            if let Some(c) = self.conns.get_mut(&o.conn) {
                // A connect waits in ConnState::Establishing, not in the queue.
                if !matches!(o.kind, ReplyKind::Connect { .. }) {
                    c.push(Entry::Write(o.token), self.now_ms);
                }
            }
        }
        self.out.push(Effect::Persist {
            records: vec![record.clone()],
        });
        if self.zab.is_some() {
            self.zab_proposed(&record);
        }
        self.inflight.push_back(InFlight { record, origin });
        zxid
    }

    fn on_request(&mut self, conn: ConnId, bytes: &[u8]) {
        let mut r = Reader::new(bytes);
        let Ok(hdr) = RequestHeader::read(&mut r) else {
            return self.close(conn);
        };
        let body_at = r.position();
        let req = match Request::decode(hdr.op, &mut r) {
            Ok(req) => req,
            Err(JuteError::Unknown { .. }) => {
                let f = frame(hdr.xid, -1, ErrorCode::Unimplemented.code(), &[]);
                self.enqueue_done(conn, f, true);
                return;
            }
            Err(_) => {
                let z = self.tree.last_zxid();
                // ZooKeeper answers an undecodable body with MarshallingError
                // and keeps the connection.
                let f = frame(hdr.xid, z, ErrorCode::MarshallingError.code(), &[]);
                self.enqueue_done(conn, f, false);
                return;
            }
        };
        let session = self.conns[&conn].session.expect("open conn has a session");
        {
            let c = self.conns.get_mut(&conn).expect("conn");
            c.stats.last_op = op_name(hdr.op).into();
            if hdr.xid > 0 {
                c.stats.last_cxid = hdr.xid as i64;
            }
        }
        if let Request::Auth(a) = &req {
            return self.on_auth(conn, hdr.xid, a);
        }
        if !self.sessions.touch(session, self.now_ms) {
            let z = self.tree.last_zxid();
            let f = frame(hdr.xid, z, ErrorCode::SessionExpired.code(), &[]);
            return self.enqueue_done(conn, f, false);
        }
        if let Some(z) = self.zab.as_mut() {
            z.touched.insert(session);
        }
        if req.is_write() && self.is_follower() {
            let body = bytes[body_at..].to_vec();
            self.forward_write(conn, session, hdr.xid, hdr.op, req, body);
        } else if req.is_write() {
            self.prep_write(conn, session, hdr.xid, req);
        } else if matches!(req, Request::Sync(_)) && self.zab.is_some() {
            self.zab_sync(conn, hdr.xid, req);
        } else {
            let now = self.now_ms;
            let c = self.conns.get_mut(&conn).expect("conn");
            c.push(Entry::Read(hdr.xid, req), now);
        }
        self.drain(conn);
        self.update_throttle(conn);
    }

    pub(crate) fn update_throttle(&mut self, conn: ConnId) {
        let max = self.cfg.max_cnxn_outstanding;
        if let Some(c) = self.conns.get_mut(&conn) {
            let want = c.queue.len() >= max;
            if want != c.paused {
                c.paused = want;
                self.out.push(Effect::Throttle { conn, paused: want });
            }
        }
    }

    pub(crate) fn enqueue_done(&mut self, conn: ConnId, f: Vec<u8>, close: bool) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.push(Entry::Done { frame: f, close }, self.now_ms);
            self.drain(conn);
        }
    }

    /// Auth is handled on receipt, not queued. The reply echoes the request
    /// xid (kazoo and Java send -4, the Rust client a normal xid).
    fn on_auth(&mut self, conn: ConnId, xid: i32, a: &AuthPacket) {
        match acl::authenticate(&a.scheme, &a.auth, self.cfg.super_digest.as_deref()) {
            AuthOutcome::Ok(ids) => {
                let c = self.conns.get_mut(&conn).expect("conn");
                for id in ids {
                    c.auth.add(id);
                }
                self.send(conn, frame(xid, 0, 0, &[]));
            }
            AuthOutcome::Failed => {
                let f = frame(xid, 0, ErrorCode::AuthFailed.code(), &[]);
                self.send(conn, f);
                self.close(conn);
            }
        }
    }

    fn ctx<'a>(&'a self, auth: &'a AuthInfo, session: i64) -> Ctx<'a> {
        Ctx {
            tree: &self.tree,
            auth,
            session,
            zxid: self.next_zxid,
            skip_acl: self.cfg.skip_acl,
            extended_types: self.cfg.extended_types,
        }
    }

    fn prep_write(&mut self, conn: ConnId, session: i64, xid: i32, req: Request) {
        let auth = self.conns[&conn].auth.clone();
        let token = self.new_token();
        let (txn, kind) = match self.session_moved(session, self.my_id()) {
            true => (
                Txn::Error {
                    err: ErrorCode::SessionMoved.code(),
                },
                reply_kind(&req),
            ),
            false => self.prep_txn(&auth, session, req),
        };
        let origin = Origin {
            conn,
            xid,
            kind,
            token,
        };
        self.propose(session, xid, txn, Some(origin));
    }

    pub(crate) fn new_token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    /// Prepare a write against the tree plus pending changes: the
    /// transaction to propose (an error transaction if it fails) and what
    /// its reply will look like.
    pub(crate) fn prep_txn(
        &mut self,
        auth: &AuthInfo,
        session: i64,
        req: Request,
    ) -> (Txn, ReplyKind) {
        let mut ov = std::mem::take(&mut self.overlay);
        let ctx = self.ctx(auth, session);
        let (result, kind) = match &req {
            Request::Create { op, req } => (
                prep::create(
                    &mut ov, &ctx, *op, &req.path, &req.data, &req.acl, req.flags, -1,
                ),
                ReplyKind::Create(*op),
            ),
            Request::CreateTtl(r) => (
                prep::create(
                    &mut ov,
                    &ctx,
                    op::CREATE_TTL,
                    &r.path,
                    &r.data,
                    &r.acl,
                    r.flags,
                    r.ttl,
                ),
                ReplyKind::Create(op::CREATE_TTL),
            ),
            Request::Delete(r) => (
                prep::delete(&mut ov, &ctx, &r.path, r.version),
                ReplyKind::Delete,
            ),
            Request::SetData(r) => (
                prep::set_data(&mut ov, &ctx, &r.path, &r.data, r.version),
                ReplyKind::SetData,
            ),
            Request::SetAcl(r) => (
                prep::set_acl(&mut ov, &ctx, &r.path, &r.acl, r.version),
                ReplyKind::SetAcl,
            ),
            Request::Multi(ops) => (
                Ok(prep::multi(&mut ov, &ctx, ops)),
                ReplyKind::Multi(ops.iter().map(MultiOp::op).collect()),
            ),
            Request::Reconfig(_) => {
                let code = if self.cfg.reconfig_enabled {
                    ErrorCode::Unimplemented
                } else {
                    ErrorCode::ReconfigDisabled
                };
                (Err(code), ReplyKind::Plain)
            }
            Request::CloseSession => {
                let t = prep::close_session(&mut ov, &ctx);
                (Ok(t), ReplyKind::CloseSession)
            }
            other => unreachable!("not a write: {other:?}"),
        };
        self.overlay = ov;
        if kind == ReplyKind::CloseSession {
            self.sessions.set_closing(session);
        }
        let txn = result.unwrap_or_else(|e| Txn::Error { err: e.code() });
        (txn, kind)
    }

    fn on_persisted(&mut self, zxid: i64) {
        self.apply_upto(zxid);
    }

    /// Apply every in-flight transaction up to `zxid` (committed).
    pub(crate) fn apply_upto(&mut self, zxid: i64) {
        while self
            .inflight
            .front()
            .is_some_and(|f| f.record.header.zxid <= zxid)
        {
            let f = self.inflight.pop_front().expect("checked");
            self.apply(f);
        }
    }

    fn notify(&mut self, triggers: Vec<Trigger>) {
        for t in triggers {
            for conn in self.watches.trigger(&t.path, t.event) {
                self.send_event(conn, t.event, &t.path);
            }
        }
    }

    fn send_event(&mut self, conn: ConnId, event: EventType, path: &str) {
        #[cfg(madsim)]
        {
            self.notifications += 1;
            if self.cfg.bugs.drop_watch_event == Some(self.notifications) {
                return;
            }
        }
        let ev = WatcherEvent {
            event_type: event.code(),
            state: KeeperState::SyncConnected.code(),
            path: path.to_string(),
        };
        self.send(conn, frame(xid::NOTIFICATION, -1, 0, &rec_bytes(&ev)));
    }

    fn apply(&mut self, f: InFlight) {
        let InFlight { record, origin } = f;
        let origin = origin.or_else(|| self.forwarded_origin(&record.header));
        let hdr = &record.header;
        let (triggers, sub_stats) = self.apply_txn(hdr, &record.txn);
        if let Some(log) = &mut self.applied_log {
            log.push((hdr.zxid, self.tree.digest()));
        }
        self.overlay.applied(hdr.zxid);
        self.stats.txns_applied += 1;
        self.notify(triggers);
        match &record.txn {
            Txn::CreateSession { timeout_ms } => {
                self.sessions.add(hdr.session_id, *timeout_ms, self.now_ms)
            }
            Txn::CloseSession => {
                if self.is_follower() && !self.serving() {
                    crate::cover::hit(crate::cover::Mark::SessionClosedDuringSync);
                }
                self.sessions.remove(hdr.session_id);
                let is_origin = origin.as_ref().is_some_and(|o| {
                    self.conns.get(&o.conn).and_then(|c| c.session) == Some(hdr.session_id)
                });
                if !is_origin {
                    if let Some(c) = self.session_conn.get(&hdr.session_id).copied() {
                        self.close(c);
                    }
                }
            }
            _ => {}
        }
        if let Some(o) = origin {
            self.reply_applied(o, &record, &sub_stats);
        }
        if self.zab.is_some() {
            self.zab_applied();
        }
        self.since_snapshot += 1;
        // ZK-3145: the fuzzy serializer starts FUZZY_WINDOW transactions
        // before the snapshot point and reaches the parents first.
        #[cfg(madsim)]
        if self.bug(crate::bugs::Bug::Zk3145)
            && self.since_snapshot + FUZZY_WINDOW == self.cfg.snap_count.max(2)
        {
            let early = self.tree.last_zxid();
            let parents = self
                .node_records()
                .filter(|(n, _)| !n.children.is_empty())
                .map(|(_, r)| r)
                .collect();
            self.fuzzy_early = Some((early, parents));
        }
        if self.since_snapshot >= self.cfg.snap_count.max(2) {
            self.since_snapshot = 0;
            self.out.push(Effect::Snapshot {
                zxid: self.tree.last_zxid(),
            });
        }
    }

    /// Apply a transaction to the tree. For a successful multi it also
    /// returns each sub-op's node stat as of right after that sub-op, which
    /// is what ZooKeeper's per-op results carry (DataTree.processTxn).
    fn apply_txn(&mut self, hdr: &TxnHeader, txn: &Txn) -> (Vec<Trigger>, Vec<Stat>) {
        // ZK-2355: a closeSession applied during a learner's sync leaves
        // the session's ephemerals.
        #[cfg(madsim)]
        if matches!(txn, Txn::CloseSession)
            && self.bug(crate::bugs::Bug::Zk2355)
            && self.is_follower()
            && !self.serving()
        {
            return (Vec::new(), Vec::new());
        }
        match txn {
            Txn::Multi(txns) if !txns.is_empty() && !prep::multi_failed(txns) => {
                let mut triggers = Vec::new();
                let mut stats = Vec::with_capacity(txns.len());
                for t in txns {
                    triggers.extend(self.tree.apply(hdr, t));
                    stats.push(match t {
                        Txn::Create { path, .. } | Txn::SetData { path, .. } => self.stat_of(path),
                        _ => Stat::default(),
                    });
                }
                (triggers, stats)
            }
            _ => (self.tree.apply(hdr, txn), Vec::new()),
        }
    }

    fn reply_applied(&mut self, o: Origin, record: &TxnRecord, sub_stats: &[Stat]) {
        let zxid = record.header.zxid;
        if let ReplyKind::Connect { read_only } = o.kind {
            let timeout = match record.txn {
                Txn::CreateSession { timeout_ms } => timeout_ms,
                _ => unreachable!("connect origin on a createSession txn"),
            };
            return self.establish(o.conn, record.header.session_id, timeout, read_only);
        }
        let (err, body) = self.write_reply(&o.kind, &record.txn, sub_stats);
        let close = o.kind == ReplyKind::CloseSession;
        let f = frame(o.xid, zxid, err, &body);
        let Some(c) = self.conns.get_mut(&o.conn) else {
            return;
        };
        c.stats.last_zxid = zxid;
        if let Some(e) = c
            .queue
            .iter_mut()
            .find(|e| matches!(e, Entry::Write(t) if *t == o.token))
        {
            *e = Entry::Done { frame: f, close };
        }
        self.drain(o.conn);
        self.update_throttle(o.conn);
    }

    fn stat_of(&self, path: &str) -> Stat {
        self.tree.get(path).map(|n| n.stat()).unwrap_or_default()
    }

    fn write_reply(&self, kind: &ReplyKind, txn: &Txn, sub_stats: &[Stat]) -> (i32, Vec<u8>) {
        if let Txn::Error { err } = txn {
            return (*err, Vec::new());
        }
        let body = match (kind, txn) {
            (ReplyKind::Create(opc), Txn::Create { path, .. }) => {
                if *opc == op::CREATE {
                    rec_bytes(&CreateResponse { path: path.clone() })
                } else {
                    rec_bytes(&Create2Response {
                        path: path.clone(),
                        stat: self.stat_of(path),
                    })
                }
            }
            (ReplyKind::SetData, Txn::SetData { path, .. })
            | (ReplyKind::SetAcl, Txn::SetAcl { path, .. }) => rec_bytes(&StatResponse {
                stat: self.stat_of(path),
            }),
            (ReplyKind::Multi(ops), Txn::Multi(txns)) => {
                let results = self.multi_results(ops, txns, sub_stats);
                let mut b = Vec::new();
                write_multi_results(&results, &mut b);
                b
            }
            _ => Vec::new(),
        };
        (0, body)
    }

    fn multi_results(&self, ops: &[i32], txns: &[Txn], stats: &[Stat]) -> Vec<MultiResult> {
        if prep::multi_failed(txns) {
            return txns
                .iter()
                .map(|t| match t {
                    Txn::Error { err } => MultiResult::Error(*err),
                    _ => MultiResult::Error(0),
                })
                .collect();
        }
        ops.iter()
            .zip(txns)
            .zip(stats)
            .map(|((opc, t), stat)| match t {
                Txn::Create { path, .. } if *opc == op::CREATE => MultiResult::Create(path.clone()),
                Txn::Create { path, .. } => MultiResult::Create2(path.clone(), stat.clone()),
                Txn::Delete { .. } => MultiResult::Delete,
                Txn::SetData { .. } => MultiResult::SetData(stat.clone()),
                _ => MultiResult::Check,
            })
            .collect()
    }

    /// Send every finished reply at the head of a connection's queue,
    /// executing reads as they reach the head.
    pub(crate) fn drain(&mut self, conn: ConnId) {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            match c.queue.front() {
                Some(Entry::Done { .. }) => {
                    let Some(Entry::Done { frame, close }) = c.queue.pop_front() else {
                        unreachable!()
                    };
                    let arrived = c.arrivals.pop_front().unwrap_or(self.now_ms);
                    self.record_latency(conn, arrived);
                    self.send(conn, frame);
                    if close {
                        return self.close(conn);
                    }
                }
                Some(Entry::Read(..)) => {
                    let Some(Entry::Read(xid, req)) = c.queue.pop_front() else {
                        unreachable!()
                    };
                    let arrived = c.arrivals.pop_front().unwrap_or(self.now_ms);
                    let session = c.session.unwrap_or(0);
                    let f = self.read(conn, session, xid, &req);
                    self.record_latency(conn, arrived);
                    self.send(conn, f);
                }
                Some(Entry::Write(_)) | Some(Entry::Wait(_)) | None => return,
            }
        }
    }

    /// Execute a read-side request against the current tree.
    fn read(&mut self, conn: ConnId, session: i64, xid: i32, req: &Request) -> Vec<u8> {
        let z = self.tree.last_zxid();
        let (xid, z) = match req {
            Request::Ping => (xid::PING, z),
            _ => (xid, z),
        };
        match self.read_body(conn, session, z, req) {
            Ok(body) => frame(xid, z, 0, &body),
            Err(e) => frame(xid, z, e.code(), &[]),
        }
    }

    fn perm(&self, conn: ConnId, acl: &[Acl], perm: i32) -> Result<(), ErrorCode> {
        let auth = &self.conns[&conn].auth;
        if acl::check(acl, perm, auth, self.cfg.skip_acl) {
            Ok(())
        } else {
            Err(ErrorCode::NoAuth)
        }
    }

    fn read_body(
        &mut self,
        conn: ConnId,
        session: i64,
        last_zxid: i64,
        req: &Request,
    ) -> Result<Vec<u8>, ErrorCode> {
        match req {
            Request::Ping | Request::SetWatches { .. } => {
                if let Request::SetWatches { req, .. } = req {
                    self.set_watches(conn, req);
                }
                Ok(Vec::new())
            }
            Request::Exists(r) => {
                if r.path.contains('\0') {
                    return Err(ErrorCode::BadArguments);
                }
                let node = self.tree.get(&r.path).map(|n| (n.acl.clone(), n.stat()));
                if let Some((acl, _)) = &node {
                    self.perm(conn, acl, perms::READ)?;
                }
                if r.watch {
                    self.watches
                        .add(conn, &r.path, Table::Data, WatchMode::Standard);
                }
                let (_, stat) = node.ok_or(ErrorCode::NoNode)?;
                Ok(rec_bytes(&StatResponse { stat }))
            }
            Request::GetData(r) => {
                let n = self.tree.get(&r.path).ok_or(ErrorCode::NoNode)?;
                let resp = GetDataResponse {
                    data: n.data.clone(),
                    stat: n.stat(),
                };
                let acl = n.acl.clone();
                self.perm(conn, &acl, perms::READ)?;
                if r.watch {
                    self.watches
                        .add(conn, &r.path, Table::Data, WatchMode::Standard);
                }
                Ok(rec_bytes(&resp))
            }
            Request::GetChildren { with_stat, req: r } => {
                let n = self.tree.get(&r.path).ok_or(ErrorCode::NoNode)?;
                let children: Vec<String> = n.children.iter().cloned().collect();
                let stat = n.stat();
                let acl = n.acl.clone();
                self.perm(conn, &acl, perms::READ)?;
                if r.watch {
                    self.watches
                        .add(conn, &r.path, Table::Child, WatchMode::Standard);
                }
                Ok(if *with_stat {
                    rec_bytes(&GetChildren2Response { children, stat })
                } else {
                    rec_bytes(&GetChildrenResponse { children })
                })
            }
            Request::GetAcl(r) => {
                let n = self.tree.get(&r.path).ok_or(ErrorCode::NoNode)?;
                let (acl, stat) = (n.acl.clone(), n.stat());
                if self.perm(conn, &acl, perms::ADMIN).is_ok() {
                    Ok(rec_bytes(&GetAclResponse { acl, stat }))
                } else {
                    self.perm(conn, &acl, perms::READ)?;
                    let acl = acl::mask_digests(&acl);
                    Ok(rec_bytes(&GetAclResponse { acl, stat }))
                }
            }
            Request::GetAllChildrenNumber(r) => {
                let n = self.tree.get(&r.path).ok_or(ErrorCode::NoNode)?;
                let acl = n.acl.clone();
                self.perm(conn, &acl, perms::READ)?;
                let total_number = self.tree.descendant_count(&r.path) as i32;
                Ok(rec_bytes(&GetAllChildrenNumberResponse { total_number }))
            }
            Request::GetEphemerals(r) => {
                let prefix = if r.path.is_empty() { "/" } else { &r.path };
                let ephemerals = self
                    .tree
                    .ephemerals_of(session)
                    .filter(|p| p.starts_with(prefix))
                    .cloned()
                    .collect();
                Ok(rec_bytes(&GetEphemeralsResponse { ephemerals }))
            }
            Request::Sync(r) => Ok(rec_bytes(&SyncResponse {
                path: r.path.clone(),
            })),
            Request::MultiRead(ops) => {
                let results: Vec<MultiResult> =
                    ops.iter().map(|o| self.multi_read_op(conn, o)).collect();
                let mut b = Vec::new();
                write_multi_results(&results, &mut b);
                Ok(b)
            }
            Request::WhoAmI => {
                let c = &self.conns[&conn];
                // Apache lists authenticated ids before the connection's ip id.
                let (ip, other): (Vec<&Id>, Vec<&Id>) =
                    c.auth.ids.iter().partition(|i| i.scheme == "ip");
                let client_info = other
                    .into_iter()
                    .chain(ip)
                    .map(|id| ClientInfo {
                        auth_scheme: id.scheme.clone(),
                        user: match id.scheme.as_str() {
                            "digest" => id.id.split(':').next().unwrap_or("").to_string(),
                            _ => id.id.clone(),
                        },
                    })
                    .collect();
                Ok(rec_bytes(&WhoAmIResponse { client_info }))
            }
            Request::CheckWatches(r) | Request::RemoveWatches(r) => {
                let remove = matches!(req, Request::RemoveWatches(_));
                let tables: &[Table] = match WatcherType::from_code(r.watcher_type) {
                    Some(WatcherType::Children) => &[Table::Child],
                    Some(WatcherType::Data) => &[Table::Data],
                    Some(WatcherType::Any) => &[Table::Data, Table::Child],
                    None => return Err(ErrorCode::BadArguments),
                };
                let mut found = false;
                for t in tables {
                    found |= if remove {
                        self.watches.remove(conn, &r.path, *t)
                    } else {
                        self.watches.contains(conn, &r.path, *t)
                    };
                }
                if found {
                    Ok(Vec::new())
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            }
            Request::AddWatch(r) => {
                let mode = match AddWatchMode::from_code(r.mode) {
                    Some(AddWatchMode::Persistent) => WatchMode::Persistent,
                    Some(AddWatchMode::PersistentRecursive) => WatchMode::PersistentRecursive,
                    None => return Err(ErrorCode::BadArguments),
                };
                self.watches.add(conn, &r.path, Table::Data, mode);
                self.watches.add(conn, &r.path, Table::Child, mode);
                Ok(rec_bytes(&ErrorResponse { err: 0 }))
            }
            Request::Sasl(_) => Err(ErrorCode::Unimplemented),
            _ => {
                let _ = last_zxid;
                Err(ErrorCode::Unimplemented)
            }
        }
    }

    fn multi_read_op(&mut self, conn: ConnId, o: &MultiOp) -> MultiResult {
        let res = match o {
            MultiOp::GetData(r) => self.tree.get(&r.path).map(|n| {
                (
                    n.acl.clone(),
                    MultiResult::GetData(n.data.clone(), n.stat()),
                )
            }),
            MultiOp::GetChildren(r) => self.tree.get(&r.path).map(|n| {
                (
                    n.acl.clone(),
                    MultiResult::GetChildren(n.children.iter().cloned().collect()),
                )
            }),
            _ => return MultiResult::Error(ErrorCode::BadArguments.code()),
        };
        match res {
            None => MultiResult::Error(ErrorCode::NoNode.code()),
            Some((acl, r)) => match self.perm(conn, &acl, perms::READ) {
                Ok(()) => r,
                Err(e) => MultiResult::Error(e.code()),
            },
        }
    }

    /// SetWatches replay (DataTree.setWatches): missed events are sent now,
    /// the rest re-registered.
    fn set_watches(&mut self, conn: ConnId, r: &SetWatches2) {
        let rel = r.relative_zxid;
        for p in &r.data_watches {
            match self.tree.get(p).map(|n| n.mzxid) {
                None => self.send_event(conn, EventType::NodeDeleted, p),
                Some(m) if m > rel => self.send_event(conn, EventType::NodeDataChanged, p),
                Some(_) => self.watches.add(conn, p, Table::Data, WatchMode::Standard),
            }
        }
        for p in &r.exist_watches {
            if self.tree.get(p).is_some() {
                self.send_event(conn, EventType::NodeCreated, p);
            } else {
                self.watches.add(conn, p, Table::Data, WatchMode::Standard);
            }
        }
        for p in &r.child_watches {
            match self.tree.get(p).map(|n| n.pzxid) {
                None => self.send_event(conn, EventType::NodeDeleted, p),
                Some(z) if z > rel => self.send_event(conn, EventType::NodeChildrenChanged, p),
                Some(_) => self.watches.add(conn, p, Table::Child, WatchMode::Standard),
            }
        }
        for (list, mode) in [
            (&r.persistent_watches, WatchMode::Persistent),
            (
                &r.persistent_recursive_watches,
                WatchMode::PersistentRecursive,
            ),
        ] {
            for p in list {
                self.watches.add(conn, p, Table::Data, mode);
                self.watches.add(conn, p, Table::Child, mode);
            }
        }
    }

    pub(crate) fn on_tick(&mut self) {
        for id in self.sessions.expire(self.now_ms) {
            let auth = AuthInfo::default();
            let mut ov = std::mem::take(&mut self.overlay);
            let txn = prep::close_session(&mut ov, &self.ctx(&auth, id));
            self.overlay = ov;
            self.propose(id, 0, txn, None);
        }
        if self.now_ms - self.last_reap_ms >= self.cfg.container_check_interval_ms {
            self.last_reap_ms = self.now_ms;
            self.reap_containers();
        }
    }

    /// ContainerManager: delete empty containers that once had children and
    /// TTL nodes idle past their TTL.
    fn reap_containers(&mut self) {
        let mut victims: Vec<String> = Vec::new();
        for p in self.tree.containers() {
            let n = &self.tree.get(p).expect("indexed");
            if n.children.is_empty() && n.cversion > 0 {
                victims.push(p.clone());
            }
        }
        for p in self.tree.ttls() {
            let n = &self.tree.get(p).expect("indexed");
            if let crate::tree::OwnerKind::Ttl(ttl) = crate::tree::owner_kind(n.ephemeral_owner) {
                if n.children.is_empty() && self.wall_ms - n.mtime > ttl {
                    victims.push(p.clone());
                }
            }
        }
        for p in victims {
            let auth = AuthInfo::default();
            let mut ov = std::mem::take(&mut self.overlay);
            let res = prep::delete_container(&mut ov, &self.ctx(&auth, 0), &p);
            self.overlay = ov;
            if let Ok(txn) = res {
                self.propose(0, 0, txn, None);
            }
        }
    }

    /// A consistent snapshot of the tree and sessions as of `zxid` (the
    /// tree's last applied zxid).
    pub fn snapshot_data(&self, zxid: i64) -> crate::storage::SnapshotData {
        crate::storage::SnapshotData {
            last_zxid: zxid,
            sessions: self.sessions.iter().map(|s| (s.id, s.timeout_ms)).collect(),
            nodes: self.node_records().map(|(_, r)| r).collect(),
        }
    }

    /// The snapshot to write to this server's own disk at `zxid` (the
    /// shell's `Effect::Snapshot`); the same as [`Server::snapshot_data`]
    /// unless a simulated bug makes it fuzzy.
    pub fn disk_snapshot_data(&mut self, zxid: i64) -> crate::storage::SnapshotData {
        #[allow(unused_mut)]
        let mut data = self.snapshot_data(zxid);
        // ZK-3145: stamped with the zxid from when serialization began,
        // parents as they were then.
        #[cfg(madsim)]
        if let Some((early, parents)) = self.fuzzy_early.take() {
            let old: BTreeMap<String, crate::storage::NodeRecord> =
                parents.into_iter().map(|r| (r.path.clone(), r)).collect();
            for r in data.nodes.iter_mut() {
                if let Some(o) = old.get(&r.path) {
                    *r = o.clone();
                }
            }
            data.last_zxid = early;
        }
        data
    }

    fn node_records(
        &self,
    ) -> impl Iterator<Item = (&crate::tree::Node, crate::storage::NodeRecord)> {
        self.tree.nodes().map(|(p, n)| {
            (
                n,
                crate::storage::NodeRecord {
                    path: p.clone(),
                    data: n.data.clone(),
                    acl: n.acl.clone(),
                    czxid: n.czxid,
                    mzxid: n.mzxid,
                    ctime: n.ctime,
                    mtime: n.mtime,
                    version: n.version,
                    cversion: n.cversion,
                    aversion: n.aversion,
                    ephemeral_owner: n.ephemeral_owner,
                    pzxid: n.pzxid,
                },
            )
        })
    }

    /// Run every invariant check (tests and the simulator call this after
    /// each step).
    pub fn validate(&self) {
        self.tree.validate();
        self.watches.validate();
        self.sessions.validate();
        let mut prev = self.tree.last_zxid();
        for f in &self.inflight {
            assert!(f.record.header.zxid > prev, "in-flight zxids out of order");
            prev = f.record.header.zxid;
        }
        match &self.zab {
            None => assert_eq!(self.next_zxid, prev + 1, "next_zxid not one past newest"),
            // A new epoch starts its counter at 1.
            Some(z) if z.is_established_leader() => {
                assert!(self.next_zxid > prev, "next_zxid not past newest")
            }
            Some(_) => {}
        }
        for (s, c) in &self.session_conn {
            assert_eq!(self.conns[c].session, Some(*s), "session_conn out of sync");
        }
        for (id, c) in &self.conns {
            for e in &c.queue {
                if let Entry::Write(t) = e {
                    let ours = |o: &Origin| o.conn == *id && o.token == *t;
                    assert!(
                        self.inflight
                            .iter()
                            .any(|f| f.origin.as_ref().is_some_and(ours))
                            || self.zab.as_ref().is_some_and(|z| z.has_forwarded(ours)),
                        "queued write {t} has no in-flight txn"
                    );
                }
            }
        }
        if let Some(z) = &self.zab {
            z.validate(&self.tree, &self.inflight);
        }
    }
}

/// What the reply to a write request will look like.
pub(crate) fn reply_kind(req: &Request) -> ReplyKind {
    match req {
        Request::Create { op, .. } => ReplyKind::Create(*op),
        Request::CreateTtl(_) => ReplyKind::Create(op::CREATE_TTL),
        Request::Delete(_) => ReplyKind::Delete,
        Request::SetData(_) => ReplyKind::SetData,
        Request::SetAcl(_) => ReplyKind::SetAcl,
        Request::Multi(ops) => ReplyKind::Multi(ops.iter().map(MultiOp::op).collect()),
        Request::CloseSession => ReplyKind::CloseSession,
        _ => ReplyKind::Plain,
    }
}

/// Short op names for `cons` (lop=).
pub fn op_name(opcode: i32) -> &'static str {
    match opcode {
        op::CREATE | op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => "CREA",
        op::DELETE => "DELE",
        op::EXISTS => "EXIS",
        op::GET_DATA => "GETD",
        op::SET_DATA => "SETD",
        op::GET_ACL => "GETA",
        op::SET_ACL => "SETA",
        op::GET_CHILDREN => "GETC",
        op::GET_CHILDREN2 => "GETC",
        op::SYNC => "SYNC",
        op::PING => "PING",
        op::MULTI => "MULT",
        op::MULTI_READ => "MLTR",
        op::SET_WATCHES | op::SET_WATCHES2 => "SETW",
        op::CLOSE_SESSION => "CLOS",
        _ => "NA",
    }
}
