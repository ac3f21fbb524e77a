//! The event loop that runs one standalone server: it owns the core
//! [`Server`], feeds it inputs from the network, the ticker and the disk
//! task, and executes its effects in order.
//!
//! Tasks:
//! - listener: accepts sockets and spawns [`crate::net::serve_conn`];
//! - ticker: an `Input::Tick` every half tick;
//! - disk: appends transactions and fsyncs them in batches (group commit:
//!   everything that queued up during one fsync goes into the next), then
//!   reports `Input::Persisted`; takes snapshots and purges old files;
//! - this loop: the only owner of server state. No locks around the core.

use crate::clock::Clock;
use crate::config::Config;
use crate::fourlw;
use crate::net::{ConnHandle, Out};
use anyhow::Context;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use zkcore::disk::Disk;
use zkcore::server::{Effect, Input, Server, ServerConfig};
use zkcore::storage::{self, SnapshotData, TxnLog};
use zkcore::zab::{EnsembleConfig, EpochFile, ZabRecovered};
use zkcore::ConnId;

/// Everything that reaches the event loop.
pub enum Event {
    Accepted {
        conn: ConnId,
        ip: String,
        handle: ConnHandle,
    },
    Gone {
        conn: ConnId,
        ip: String,
    },
    Input(Input),
    FourLetter {
        cmd: [u8; 4],
        /// The asking connection (ZooKeeper lists it among the clients).
        addr: std::net::SocketAddr,
        reply: oneshot::Sender<Option<String>>,
    },
    /// The disk task failed: the server must stop.
    Fatal(String),
}

enum DiskCmd {
    Append(Vec<jute::TxnRecord>),
    Snapshot(SnapshotData),
    Epoch(EpochFile, u64),
    Truncate(i64),
    Install(Box<SnapshotData>),
}

/// Where the server keeps its files, as paths for the [`Disk`].
#[derive(Debug, Clone)]
pub struct Dirs {
    pub snap: String,
    pub log: String,
}

/// Map zoo.cfg onto the core's settings.
pub fn server_config(cfg: &Config) -> ServerConfig {
    ServerConfig {
        server_id: cfg.server_id.filter(|_| cfg.is_quorum()).unwrap_or(1) as u8,
        tick_ms: cfg.tick_ms as i64,
        min_session_timeout_ms: cfg.min_session_timeout_ms as i32,
        max_session_timeout_ms: cfg.max_session_timeout_ms as i32,
        snap_count: cfg.snap_count as u64,
        skip_acl: cfg.skip_acl,
        super_digest: cfg.super_digest.clone(),
        extended_types: cfg.extended_types_enabled,
        reconfig_enabled: cfg.reconfig_enabled,
        max_cnxn_outstanding: cfg.max_cnxn_outstanding as usize,
        container_check_interval_ms: 60_000,
        ensemble: ensemble_config(cfg),
        #[cfg(madsim)]
        bugs: sim_bugs(cfg),
    }
}

/// The ensemble, if zoo.cfg asks for quorum mode (config validation has
/// already checked myid, the limits and the server lines).
fn ensemble_config(cfg: &Config) -> Option<EnsembleConfig> {
    if !cfg.is_quorum() {
        return None;
    }
    Some(EnsembleConfig {
        my_id: cfg.server_id?,
        voters: cfg
            .servers
            .iter()
            .filter(|s| s.role == crate::config::PeerRole::Participant)
            .map(|s| s.id)
            .collect(),
        init_limit: cfg.init_limit.unwrap_or(10),
        sync_limit: cfg.sync_limit.unwrap_or(5),
    })
}

/// Resolve a `server.N` host (an IP, or in the real build a name).
fn peer_addr(host: &str, port: u16) -> anyhow::Result<std::net::SocketAddr> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(std::net::SocketAddr::new(ip, port));
    }
    #[cfg(not(madsim))]
    {
        use std::net::ToSocketAddrs;
        if let Some(a) = (host, port).to_socket_addrs()?.next() {
            return Ok(a);
        }
    }
    anyhow::bail!("cannot resolve server host {host:?}")
}

/// Start the quorum mesh: listen on our quorum port, dial the others.
async fn start_mesh(
    cfg: &Config,
    events: mpsc::UnboundedSender<Event>,
) -> anyhow::Result<Option<crate::peer::Mesh>> {
    let Some(ens) = ensemble_config(cfg) else {
        return Ok(None);
    };
    let me = cfg
        .my_server()
        .context("this server's id has no server.N line")?;
    if me.role != crate::config::PeerRole::Participant {
        anyhow::bail!("observers are not supported yet (server.{} is one)", me.id);
    }
    let mut listen = peer_addr(&me.host, me.quorum_port)?;
    if cfg.quorum_listen_on_all_ips {
        listen.set_ip(std::net::Ipv4Addr::UNSPECIFIED.into());
    }
    let mut peers = BTreeMap::new();
    for s in &cfg.servers {
        if s.id != ens.my_id && ens.voters.contains(&s.id) {
            peers.insert(s.id, peer_addr(&s.host, s.quorum_port)?);
        }
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mesh = crate::peer::Mesh::start(ens.my_id, listen, peers, PEER_FRAME_MAX, tx)
        .await
        .with_context(|| format!("binding quorum port {listen}"))?;
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            let input = match ev {
                crate::peer::PeerEvent::Frame { from, bytes } => Input::Peer { from, bytes },
                crate::peer::PeerEvent::Lost { from } => Input::PeerLost { from },
            };
            if events.send(Event::Input(input)).is_err() {
                return;
            }
        }
    });
    tracing::info!(id = ens.my_id, "quorum mesh on {listen}");
    Ok(Some(mesh))
}

/// Largest message between servers (a SNAP carries the whole tree).
const PEER_FRAME_MAX: usize = 256 << 20;

/// Simulation-only fault switches from `cfg.extra` (set by the simulator,
/// never by a zoo.cfg in a real deployment: the real build has no such
/// field). `sim.bug.dropWatchEvent = N` drops the N-th watch notification;
/// `sim.bugs = ZK-335,ZK-4643` switches reintroduced ZooKeeper bugs on (the
/// simulator has checked the names; an unknown one is ignored with an error
/// in the log).
#[cfg(madsim)]
fn sim_bugs(cfg: &Config) -> zkcore::bugs::Bugs {
    let on = match cfg.extra.get("sim.bugs") {
        None => Vec::new(),
        Some(v) => zkcore::bugs::parse_list(v).unwrap_or_else(|e| {
            tracing::error!("sim.bugs: {e}");
            Vec::new()
        }),
    };
    zkcore::bugs::Bugs {
        drop_watch_event: cfg
            .extra
            .get("sim.bug.dropWatchEvent")
            .and_then(|v| v.trim().parse().ok()),
        on,
    }
}

/// Load the newest valid snapshot and replay the log after it.
pub fn recover(disk: &dyn Disk, dirs: &Dirs) -> anyhow::Result<zkcore::recovery::Recovered> {
    zkcore::recovery::recover(disk, &dirs.snap, &dirs.log).context("recovering data")
}

/// What one server looks like from outside, refreshed after every input.
/// The simulator reads it to target "leader"/"follower" faults, to draw the
/// role/epoch timeline, and to check that replicas agree on a tree digest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStatus {
    /// "standalone", "leader", "follower" or "looking".
    pub role: &'static str,
    /// The epoch this server is in (its currentEpoch; 0 when standalone).
    pub epoch: u64,
    /// The last transaction applied to the tree.
    pub last_zxid: i64,
    /// [`DataTree::digest`] of the applied tree.
    pub digest: u64,
    /// Whether client requests are being served.
    pub serving: bool,
    /// The highest zxid this server acknowledged as durable (its ACKs; a
    /// leader's own log): its disk must keep it through a power failure.
    pub acked: i64,
}

/// Status of every server of a simulation, by server id.
pub type StatusBoard = Arc<std::sync::Mutex<BTreeMap<u64, NodeStatus>>>;

/// ZAB's invariants, checked across all servers of a simulation after every
/// input any of them handles (each server reports its [`NodeStatus`]):
/// - at most one leader is established per epoch;
/// - two servers that applied up to the same zxid hold the same tree
///   (serving or not: a learner applies commits before UPTODATE, a
///   restarted server replays its log; prefixes agree);
/// - a newly established leader has applied at least every transaction
///   any serving server applied before (what a serving server applies is
///   committed, and everything acknowledged was applied first), so no
///   acknowledged write is missing from a later leader's history.
#[derive(Debug, Default)]
pub struct ZabMonitor {
    /// epoch → the server established as its leader.
    leaders: BTreeMap<u64, u64>,
    /// zxid → (digest, server) first seen.
    digests: BTreeMap<i64, (u64, u64)>,
    /// The newest zxid a serving server applied (committed).
    pub max_committed_zxid: i64,
    /// Pairs of servers already reported as diverged, and epochs already
    /// reported with two leaders (one violation each, not one per input).
    diverged: BTreeSet<(u64, u64)>,
    dual_epochs: BTreeSet<u64>,
    /// Each server's last reported acknowledgement (kept after it stops).
    acked: BTreeMap<u64, i64>,
    /// Status reports checked.
    pub observed: u64,
    pub violations: Vec<String>,
}

pub type Monitor = Arc<std::sync::Mutex<ZabMonitor>>;

impl ZabMonitor {
    /// Server `id` reports `st`; `was` is its previous report.
    pub fn observe(&mut self, id: u64, was: Option<&NodeStatus>, st: &NodeStatus) {
        self.observed += 1;
        self.acked.insert(id, st.acked);
        if st.role == "leader" && st.serving {
            let prev = *self.leaders.entry(st.epoch).or_insert(id);
            if prev != id && self.dual_epochs.insert(st.epoch) {
                self.violations.push(format!(
                    "two leaders established in epoch {}: server {prev} and server {id}",
                    st.epoch
                ));
            }
            let newly =
                was.is_none_or(|w| !(w.role == "leader" && w.serving && w.epoch == st.epoch));
            if newly && st.last_zxid < self.max_committed_zxid {
                self.violations.push(format!(
                    "server {id} established epoch {} at zxid {:#x}, missing the committed {:#x}",
                    st.epoch, st.last_zxid, self.max_committed_zxid
                ));
            }
        }
        if st.serving && st.role != "standalone" {
            self.max_committed_zxid = self.max_committed_zxid.max(st.last_zxid);
        }
        if st.role != "standalone" && st.last_zxid > 0 {
            self.applied(id, st.last_zxid, st.digest);
        }
    }

    /// The last zxid server `id` reported acknowledged as durable (0 if
    /// none); survives the server stopping.
    pub fn last_acked(&self, id: u64) -> i64 {
        self.acked.get(&id).copied().unwrap_or(0)
    }

    /// A violation found outside the status reports (the simulator's disk
    /// checks).
    pub fn violation(&mut self, v: String) {
        self.violations.push(v);
    }

    /// Server `id`'s tree had `digest` right after it applied `zxid`.
    /// Every replica, serving or not (a learner applies the leader's
    /// commits before UPTODATE; a restarted server replays its log): a zxid
    /// names one transaction and each applies in zxid order, so equal zxids
    /// mean equal trees. Checked per transaction: a divergence that a later
    /// transaction of the same input hides (an overwritten key) still shows.
    pub fn applied(&mut self, id: u64, zxid: i64, digest: u64) {
        let (d, by) = *self.digests.entry(zxid).or_insert((digest, id));
        if d != digest && self.diverged.insert((by.min(id), by.max(id))) {
            self.violations.push(format!(
                "servers {by} and {id} both applied up to zxid {zxid:#x} with different trees ({d:#x} vs {digest:#x})"
            ));
        }
    }
}

/// Run a server until a fatal error.
pub async fn run(
    cfg: Config,
    disk: Arc<dyn Disk>,
    dirs: Dirs,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<()> {
    run_with_status(cfg, disk, dirs, clock, None).await
}

/// [`run`], publishing this server's [`NodeStatus`] on `board` (under its
/// server id, 1 when standalone) after every input.
pub async fn run_with_status(
    cfg: Config,
    disk: Arc<dyn Disk>,
    dirs: Dirs,
    clock: Arc<dyn Clock>,
    board: Option<StatusBoard>,
) -> anyhow::Result<()> {
    run_observed(cfg, disk, dirs, clock, board, None).await
}

/// [`run_with_status`], also reporting every status to a [`ZabMonitor`]
/// shared by all servers of a simulation.
pub async fn run_observed(
    cfg: Config,
    disk: Arc<dyn Disk>,
    dirs: Dirs,
    clock: Arc<dyn Clock>,
    board: Option<StatusBoard>,
    monitor: Option<Monitor>,
) -> anyhow::Result<()> {
    let rec = recover(&*disk, &dirs)?;
    if let Some(t) = &rec.torn {
        tracing::warn!("truncated a torn log tail: {t:?}");
    }
    tracing::info!(zxid = rec.tree.last_zxid(), "recovered");
    let log = TxnLog::open(disk.clone(), &dirs.log, rec.tree.last_zxid())
        .context("opening the transaction log")?;
    // Sessions are timed on the monotonic clock (from 0 at start-up); the
    // wall clock only stamps znodes and seeds session ids, as in ZooKeeper.
    let started = tokio::time::Instant::now();
    let sc = server_config(&cfg);
    let ensemble = sc.ensemble.clone();
    let mut server = Server::new_at(sc, 0, clock.now_ms(), rec.tree, rec.sessions);
    if monitor.is_some() {
        server.record_applied();
    }
    if let Some(ens) = ensemble {
        server.enter_ensemble(
            ens,
            ZabRecovered {
                accepted_epoch: rec.accepted_epoch.unwrap_or(0),
                current_epoch: rec.current_epoch.unwrap_or(0),
                tail: rec.tail,
                tail_base: rec.tail_base,
            },
        );
    }
    let addr = std::net::SocketAddr::new(cfg.client_port_address, cfg.client_port);
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding client port {addr}"))?;
    tracing::info!("serving clients on {addr}");
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let (disk_tx, disk_rx) = mpsc::unbounded_channel();
    tokio::spawn(accept_loop(
        listener,
        ev_tx.clone(),
        cfg.jute_max_buffer as usize,
    ));
    // Quorum mode ticks finer: election timers are a few hundred ms.
    let tick_every = match cfg.is_quorum() {
        true => (cfg.tick_ms as u64 / 2).clamp(10, 50),
        false => (cfg.tick_ms as u64 / 2).max(10),
    };
    tokio::spawn(ticker(ev_tx.clone(), tick_every, clock.clone()));
    let mesh = start_mesh(&cfg, ev_tx.clone()).await?;
    tokio::spawn(disk_task(
        log,
        disk.clone(),
        dirs.clone(),
        cfg.autopurge_snap_retain_count as usize,
        disk_rx,
        ev_tx.clone(),
        #[cfg(madsim)]
        SimDisk::from_config(&cfg),
    ));
    #[cfg(madsim)]
    let epoch_now = sim_bugs(&cfg)
        .has(zkcore::bugs::Bug::Zk4643)
        .then(|| (disk.clone(), dirs.clone(), ev_tx.clone()));
    let first = server.take_effects();
    let mut lp = Loop {
        mesh,
        server,
        conns: BTreeMap::new(),
        per_ip: BTreeMap::new(),
        disk_tx,
        clock,
        cfg,
        started,
        board,
        monitor,
        stop: None,
        #[cfg(madsim)]
        epoch_now,
        #[cfg(madsim)]
        steps: 0,
    };
    if let Some(b) = &lp.board {
        // A restarted node computes its digest afresh.
        b.lock()
            .expect("status board")
            .remove(&lp.cfg.server_id.unwrap_or(1));
    }
    for eff in first {
        lp.execute(eff);
    }
    lp.publish();
    lp.run(ev_rx).await
}

async fn accept_loop(
    listener: TcpListener,
    events: mpsc::UnboundedSender<Event>,
    max_frame: usize,
) {
    let mut next = 1u64;
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let conn = ConnId(next);
                next += 1;
                tokio::spawn(crate::net::serve_conn(
                    stream,
                    addr,
                    conn,
                    events.clone(),
                    max_frame,
                ));
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// An `Input::Tick` every `every_ms`, unless the clock says this node's ticks
/// are stalled (simulation only; see [`Clock::ticks_stalled`]).
async fn ticker(events: mpsc::UnboundedSender<Event>, every_ms: u64, clock: Arc<dyn Clock>) {
    let every = Duration::from_millis(every_ms);
    loop {
        tokio::time::sleep(every).await;
        if clock.ticks_stalled() {
            continue;
        }
        if events.send(Event::Input(Input::Tick)).is_err() {
            return;
        }
    }
}

/// How the simulated disk behaves (simulation only): how long each batch's
/// write and fsync take.
#[cfg(madsim)]
#[derive(Debug, Clone, Copy, Default)]
struct SimDisk {
    /// Each batch takes a time drawn from `[lo, hi]` ms before it reaches
    /// the disk (`sim.fsyncMs = lo,hi`); commands queued meanwhile join
    /// the next batch (group commit). `None`: instantaneous.
    latency_ms: Option<(u64, u64)>,
    /// ZK-2247: a failed write is logged and the batch dropped; the server
    /// carries on.
    swallow_errors: bool,
}

#[cfg(madsim)]
impl SimDisk {
    fn from_config(cfg: &Config) -> SimDisk {
        let latency_ms = cfg.extra.get("sim.fsyncMs").and_then(|v| {
            let (a, b) = v.split_once(',')?;
            let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            (a <= b).then_some((a, b))
        });
        SimDisk {
            latency_ms,
            swallow_errors: sim_bugs(cfg).has(zkcore::bugs::Bug::Zk2247),
        }
    }
}

/// Group commit: take everything queued, append it, fsync once, report.
async fn disk_task(
    mut log: TxnLog,
    disk: Arc<dyn Disk>,
    dirs: Dirs,
    retain: usize,
    mut rx: mpsc::UnboundedReceiver<DiskCmd>,
    events: mpsc::UnboundedSender<Event>,
    #[cfg(madsim)] sim: SimDisk,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        #[cfg(madsim)]
        if let Some((lo, hi)) = sim.latency_ms {
            // madsim's generator: deterministic for the seed.
            use madsim::rand::Rng;
            let ms = madsim::rand::thread_rng().gen_range(lo..=hi);
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let disk2 = disk.clone();
        let dirs2 = dirs.clone();
        let (l, res) = off_loop(move || {
            let r = write_batch(&mut log, &*disk2, &dirs2, retain, batch);
            (log, r)
        })
        .await;
        log = l;
        match res {
            Ok(done) => {
                for input in done {
                    if events.send(Event::Input(input)).is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                // ZK-2247: the error is not handled; the batch is gone.
                #[cfg(madsim)]
                if sim.swallow_errors {
                    tracing::error!("transaction log write failed: {e:#}");
                    continue;
                }
                let _ = events.send(Event::Fatal(format!("{e:#}")));
                return;
            }
        }
    }
}

/// Run blocking disk work off the event loop's thread. In the simulator the
/// disk is in memory and there are no threads, so it simply runs inline.
#[cfg(madsim)]
async fn off_loop<T>(f: impl FnOnce() -> T) -> T {
    f()
}

#[cfg(not(madsim))]
async fn off_loop<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("disk work panicked")
}

/// Execute a batch of disk commands in order; returns the completions to
/// report, in order: `Persisted` for appends (once synced), and
/// `EpochWritten` after everything before it is durable.
fn write_batch(
    log: &mut TxnLog,
    disk: &dyn Disk,
    dirs: &Dirs,
    retain: usize,
    batch: Vec<DiskCmd>,
) -> anyhow::Result<Vec<Input>> {
    let mut done = Vec::new();
    let mut last = None;
    for cmd in batch {
        match cmd {
            DiskCmd::Append(records) => {
                if let Some(r) = records.last() {
                    last = Some(r.header.zxid);
                }
                log.append(&records)?;
            }
            DiskCmd::Snapshot(data) => {
                // Records appended so far must be durable before the log
                // rolls; the snapshot then covers up to its zxid.
                log.sync()?;
                log.roll()?;
                storage::write_snapshot(disk, &dirs.snap, &data)?;
                storage::purge(disk, &dirs.snap, &dirs.log, retain)?;
            }
            DiskCmd::Epoch(file, epoch) => {
                log.sync()?;
                if let Some(zxid) = last.take() {
                    done.push(Input::Persisted { zxid });
                }
                let path = format!("{}/{}", dirs.snap, file.file_name());
                storage::write_epoch(disk, &path, epoch)?;
                done.push(Input::EpochWritten { file, epoch });
            }
            DiskCmd::Truncate(zxid) => {
                log.truncate_after(zxid)?;
                last = last.filter(|l| *l <= zxid);
            }
            DiskCmd::Install(data) => {
                // The log restarts after the snapshot; no snapshot newer
                // than it may survive (it would shadow it at recovery).
                log.truncate_after(-1)?;
                last = None;
                for (zxid, file) in storage::list_snapshots(disk, &dirs.snap)? {
                    if zxid > data.last_zxid {
                        disk.remove(&file)
                            .with_context(|| format!("removing {file}"))?;
                    }
                }
                storage::write_snapshot(disk, &dirs.snap, &data)?;
            }
        }
    }
    if let Some(zxid) = last {
        log.sync()?;
        done.push(Input::Persisted { zxid });
    }
    Ok(done)
}

/// The two times every input is stamped with.
#[derive(Debug, Clone, Copy)]
struct Now {
    /// Milliseconds since start-up, monotonic.
    mono: i64,
    /// This node's wall clock.
    wall: i64,
}

struct Loop {
    mesh: Option<crate::peer::Mesh>,
    server: Server,
    conns: BTreeMap<ConnId, ConnHandle>,
    per_ip: BTreeMap<String, usize>,
    disk_tx: mpsc::UnboundedSender<DiskCmd>,
    clock: Arc<dyn Clock>,
    cfg: Config,
    started: tokio::time::Instant,
    board: Option<StatusBoard>,
    monitor: Option<Monitor>,
    /// Set by [`Effect::Stop`]: the loop ends with this error.
    stop: Option<String>,
    /// ZK-4643 (simulation only): epoch files written at once by the event
    /// loop, bypassing the disk queue, and reported written.
    #[cfg(madsim)]
    epoch_now: Option<(Arc<dyn Disk>, Dirs, mpsc::UnboundedSender<Event>)>,
    /// Inputs handled (for the simulator's periodic `validate`).
    #[cfg(madsim)]
    steps: u64,
}

/// How often (in inputs) the simulator runs the core's `validate()`.
#[cfg(madsim)]
const VALIDATE_EVERY: u64 = 256;

impl Loop {
    async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<Event>) -> anyhow::Result<()> {
        while let Some(ev) = rx.recv().await {
            let now = Now {
                mono: self.started.elapsed().as_millis() as i64,
                wall: self.clock.now_ms(),
            };
            match ev {
                Event::Accepted { conn, ip, handle } => {
                    let n = self.per_ip.entry(ip.clone()).or_default();
                    *n += 1;
                    if self.cfg.max_client_cnxns > 0 && *n > self.cfg.max_client_cnxns as usize {
                        tracing::warn!(ip, "too many connections from this address");
                        let _ = handle.tx.send(Out::Close);
                        continue;
                    }
                    self.conns.insert(conn, handle);
                    self.step(now, Input::Connected { conn, ip });
                }
                Event::Gone { conn, ip } => {
                    self.conns.remove(&conn);
                    if let Some(n) = self.per_ip.get_mut(&ip) {
                        *n -= 1;
                        if *n == 0 {
                            self.per_ip.remove(&ip);
                        }
                    }
                }
                Event::Input(input) => self.step(now, input),
                Event::FourLetter { cmd, addr, reply } => {
                    let _ = reply.send(self.four_letter(now, &cmd, addr));
                }
                Event::Fatal(msg) => anyhow::bail!("storage failure, stopping: {msg}"),
            }
            if let Some(reason) = self.stop.take() {
                anyhow::bail!("internal error, stopping: {reason}");
            }
        }
        Ok(())
    }

    fn step(&mut self, now: Now, input: Input) {
        for eff in self.server.handle_at(now.mono, now.wall, input) {
            self.execute(eff);
        }
        // In the simulator every internal invariant of the core (tree,
        // sessions, watches, ZAB state) is checked every
        // VALIDATE_EVERY inputs (a full check walks the whole tree and log,
        // too slow for every input); a violation panics the run, which the
        // testbed reports. The cross-server ZAB invariants are checked on
        // every input (ZabMonitor).
        #[cfg(madsim)]
        {
            self.steps += 1;
            if self.steps.is_multiple_of(VALIDATE_EVERY) {
                self.server.validate();
            }
        }
        self.publish();
    }

    fn publish(&mut self) {
        let applied = self.server.take_applied();
        let Some(board) = &self.board else { return };
        let tree = self.server.tree();
        let id = self.cfg.server_id.unwrap_or(1);
        let mut b = board.lock().expect("status board");
        let digest = tree.digest();
        let status = NodeStatus {
            role: self.server.role_name(),
            epoch: self.server.current_epoch(),
            last_zxid: tree.last_zxid(),
            digest,
            serving: self.server.serving(),
            acked: self.server.acked_zxid(),
        };
        if let Some(m) = &self.monitor {
            let mut m = m.lock().expect("zab monitor");
            if status.role != "standalone" {
                for (zxid, digest) in applied {
                    m.applied(id, zxid, digest);
                }
            }
            m.observe(id, b.get(&id), &status);
        }
        b.insert(id, status);
    }

    fn execute(&mut self, eff: Effect) {
        match eff {
            Effect::Send { conn, frame } => {
                if let Some(h) = self.conns.get(&conn) {
                    let _ = h.tx.send(Out::Frame(frame));
                }
            }
            Effect::Close { conn } => {
                if let Some(h) = self.conns.get(&conn) {
                    let _ = h.tx.send(Out::Close);
                }
            }
            Effect::Throttle { conn, paused } => {
                if let Some(h) = self.conns.get(&conn) {
                    let _ = h.pause.send(paused);
                }
            }
            Effect::Persist { records } => {
                let _ = self.disk_tx.send(DiskCmd::Append(records));
            }
            Effect::Snapshot { zxid } => {
                let data = self.server.disk_snapshot_data(zxid);
                let _ = self.disk_tx.send(DiskCmd::Snapshot(data));
            }
            Effect::PeerSend { to, bytes } => {
                if let Some(m) = &self.mesh {
                    m.send(to, bytes);
                }
            }
            Effect::WriteEpoch { file, epoch } => {
                // ZK-4643: the epoch file is written by another thread than
                // the log's, ahead of the appends queued before it.
                #[cfg(madsim)]
                if let Some((disk, dirs, events)) = &self.epoch_now {
                    let path = format!("{}/{}", dirs.snap, file.file_name());
                    match storage::write_epoch(&**disk, &path, epoch) {
                        Ok(()) => {
                            let _ = events.send(Event::Input(Input::EpochWritten { file, epoch }));
                        }
                        Err(e) => {
                            let _ = events.send(Event::Fatal(format!("{e:#}")));
                        }
                    }
                    return;
                }
                let _ = self.disk_tx.send(DiskCmd::Epoch(file, epoch));
            }
            Effect::Truncate { zxid } => {
                let _ = self.disk_tx.send(DiskCmd::Truncate(zxid));
            }
            Effect::InstallSnapshot(data) => {
                let _ = self.disk_tx.send(DiskCmd::Install(data));
            }
            Effect::Stop { reason } => {
                self.stop.get_or_insert(reason);
            }
        }
    }

    fn four_letter(
        &mut self,
        now: Now,
        cmd: &[u8; 4],
        asker: std::net::SocketAddr,
    ) -> Option<String> {
        let wl = &self.cfg.four_letter_whitelist;
        fourlw::command(cmd)?;
        match fourlw::side_effect(cmd, wl, true) {
            Some(fourlw::SideEffect::ResetConnectionStats) => self.server.reset_conn_stats(),
            Some(fourlw::SideEffect::ResetServerStats) => self.server.reset_stats(),
            _ => {}
        }
        let mut snap = self.snapshot_for_4lw(now);
        snap.connections.push(fourlw::ConnInfo {
            addr: fourlw::java_addr(&asker),
            interest_ops: 0,
            received: 1,
            established_ms: now.wall,
            ..Default::default()
        });
        snap.num_alive_connections += 1;
        fourlw::answer(cmd, wl, &snap)
    }

    fn snapshot_for_4lw(&self, now: Now) -> fourlw::ServerSnapshot {
        let s = &self.server;
        let tree = s.tree();
        let connections = s
            .connections()
            .into_iter()
            .map(|(id, ip, session, queued, st)| {
                let addr = self
                    .conns
                    .get(&id)
                    .map(|h| fourlw::java_addr(&h.addr))
                    .unwrap_or(ip);
                fourlw::ConnInfo {
                    addr,
                    interest_ops: 1,
                    queued: queued as u64,
                    received: st.received,
                    sent: st.sent,
                    session_id: session,
                    last_op: st.last_op,
                    established_ms: st.established_ms,
                    timeout_ms: s.sessions().get(session).map_or(0, |x| x.timeout_ms),
                    last_cxid: st.last_cxid,
                    last_zxid: st.last_zxid,
                    last_response_ms: st.last_response_ms,
                    last_latency_ms: st.latency.last_ms,
                    min_latency_ms: st.latency.min_ms,
                    avg_latency_ms: st.latency.avg_ms() as i64,
                    max_latency_ms: st.latency.max_ms,
                    ..Default::default()
                }
            })
            .collect::<Vec<_>>();
        let quorum = self.cfg.is_quorum();
        fourlw::ServerSnapshot {
            mode: match s.role_name() {
                "looking" => "follower".to_string(),
                r => r.to_string(),
            },
            serving: s.serving(),
            peer_state: quorum.then(|| match (s.role_name(), s.serving()) {
                ("leader", true) => "leading - broadcast".to_string(),
                ("leader", false) => "leading - synchronization".to_string(),
                ("follower", true) => "following - broadcast".to_string(),
                ("follower", false) => "following - synchronization".to_string(),
                _ => "looking".to_string(),
            }),
            quorum_size: quorum.then(|| self.cfg.voting_members() as u64),
            latency_min_ms: s.stats.latency.min_ms,
            latency_avg_ms: s.stats.latency.avg_ms(),
            latency_max_ms: s.stats.latency.max_ms,
            packets_received: s.stats.packets_received,
            packets_sent: s.stats.packets_sent,
            num_alive_connections: connections.len() as u64,
            outstanding_requests: s.outstanding() as u64,
            last_zxid: tree.last_zxid(),
            node_count: tree.node_count() as u64,
            watch_count: s.watches().count() as u64,
            ephemerals_count: tree.ephemerals().values().map(|v| v.len() as u64).sum(),
            approximate_data_size: tree.approximate_data_size(),
            global_sessions: s.sessions().len() as u64,
            uptime_ms: now.mono.max(0) as u64,
            connections,
            data_watches: s
                .watches()
                .data_watches()
                .into_iter()
                .map(|(c, p)| (s.session_of(c).unwrap_or(0), p))
                .collect(),
            sessions: s
                .sessions()
                .iter()
                .map(|x| fourlw::SessionInfo {
                    id: x.id,
                    timeout_ms: x.timeout_ms,
                    // Deadlines are monotonic; dump prints wall-clock dates.
                    expire_at_ms: x.deadline_ms - now.mono + now.wall,
                })
                .collect(),
            ephemerals: tree
                .ephemerals()
                .iter()
                .map(|(sid, paths)| (*sid, paths.iter().cloned().collect()))
                .collect(),
            conf_lines: self.cfg.to_conf_lines(),
            env: vec![
                ("host.name".into(), "localhost".into()),
                ("os.name".into(), std::env::consts::OS.into()),
                ("os.arch".into(), std::env::consts::ARCH.into()),
            ],
            ..Default::default()
        }
    }
}
