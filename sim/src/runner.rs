//! Runs one scenario for one seed inside madsim and returns its history.
//!
//! Layout of a simulated run (one fresh OS thread per seed, so std's
//! `RandomState` is seeded by madsim too):
//!
//! - `server<i>` (10.0.0.i; clients on 2181, quorum 2888, election 3888),
//!   i = 1..=N: the real server, `zkserver::run::run_with_status`, each over
//!   its own [`FaultDisk`] and [`SimClock`] that the supervisor keeps, so
//!   they outlive kills. With N > 1 each gets a quorum config (one
//!   `server.i` line per member, `myid` = i). All servers of a run publish
//!   their status (role, epoch, last zxid, tree digest) on one shared
//!   [`StatusBoard`]. No `restart_on_panic`: a panic in a server is a bug
//!   and ends the run.
//! - `client<N>` (10.0.1.N): one node per workload client, so a partition
//!   can cut one client off. Each client knows every server, in its own
//!   order (a permutation drawn from the seed, rotated by the client's
//!   number), so clients spread over the servers.
//! - `driver` (10.0.2.1): creates the workload roots before the run and
//!   reads the final state back after it.
//! - `monitor` (10.0.3.1): `srvr` probes and status board samples, for the
//!   report only ([`crate::probe`]).
//! - the supervisor (this module's `drive`): starts everything, applies the
//!   fault timeline through `NetSim` (clog/unclog) and `Handle`
//!   (kill/restart/pause/resume), resolves `leader`/`follower`/`random`
//!   targets from the board when a fault starts, records each fault in the
//!   history, and at the end waits for the servers to agree on a last zxid
//!   and records their final status (`replicas`).
//!
//! Determinism: all randomness comes from the seed (madsim's scheduler and
//! network, ChaCha8 per client, for the clients' server orders and for
//! fault choices); no wall clock, no threads, ordered maps only. The
//! history's hash is the run's fingerprint.

use crate::faultdisk::FaultDisk;
use crate::history::{Event, Recorder, Replica, Ty};
use crate::scenario::{Direction, Fault, FaultKind, Scenario, Target};
use crate::simclock::SimClock;
use crate::workload::{self, Planned, Slot};
use madsim::net::NetSim;
use madsim::runtime::{Handle, NodeHandle};
use madsim::task::NodeId;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use zkcore::disk::Disk;
use zkserver::config::{Config, HostPort, PeerRole, ServerSpec};
use zkserver::run::{Dirs, StatusBoard};

/// `server1`'s address (the only server of a standalone run).
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const CLIENT_PORT: u16 = 2181;
pub const QUORUM_PORT: u16 = 2888;
pub const ELECTION_PORT: u16 = 3888;
/// How often the supervisor looks at the board while waiting for the
/// replicas to agree.
const REPLICA_POLL_MS: u64 = 10;
const DRIVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);
const MONITOR_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 3, 1);

/// What one seed produced.
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub seed: u64,
    pub events: Vec<Event>,
    /// The simulation panicked (a bug in the server or the testbed).
    pub panic: Option<String>,
    /// Simulated time the run took.
    pub sim_ms: u64,
    pub wall: Duration,
    /// Server-side samples (`srvr` probes) for the report; not part of the
    /// history (see [`crate::probe`]).
    pub samples: Vec<crate::probe::Sample>,
    /// Status board samples (role, epoch, last zxid per server) for the
    /// report; not part of the history.
    pub board: Vec<crate::probe::BoardSample>,
    /// Coverage marks the servers hit in this run (`zkcore::cover`; every
    /// mark, 0 if not hit; empty if the run panicked).
    pub coverage: Vec<(zkcore::cover::Mark, u64)>,
}

/// Deliberate bugs, to show that the checkers catch them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sabotage {
    #[default]
    None,
    /// The server's disk acknowledges fsync without making data durable.
    LyingFsync,
    /// The server drops one watch notification (simulation-only switch
    /// `sim.bug.dropWatchEvent`, see `zkcore::bugs`): which one is drawn
    /// from the seed ([`drop_watch_event_n`]).
    DropWatchEvent,
}

impl Sabotage {
    /// Every sabotage by its CLI name (`--sabotage NAME`).
    pub const ALL: [(&'static str, Sabotage); 2] = [
        ("lying-fsync", Sabotage::LyingFsync),
        ("drop-watch-event", Sabotage::DropWatchEvent),
    ];

    /// The sabotage called `name` on the command line.
    pub fn from_name(name: &str) -> Option<Sabotage> {
        Sabotage::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| *s)
    }
}

/// Which watch notification `--sabotage drop-watch-event` drops for `seed`:
/// one of the first 64 the server sends (counted from its start).
pub fn drop_watch_event_n(seed: u64) -> u64 {
    1 + (seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58)
}

/// How to run: which sabotage (default: none, the normal run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunOptions {
    pub sabotage: Sabotage,
}

/// Run `scn` with `seed` on a fresh thread.
pub fn run_seed(scn: &Scenario, seed: u64) -> RunOutput {
    run_seed_with(scn, seed, RunOptions::default())
}

/// Run `scn` with `seed` on a fresh thread, with options.
pub fn run_seed_with(scn: &Scenario, seed: u64, opts: RunOptions) -> RunOutput {
    let scn = scn.clone();
    let log = crate::history::Log::default();
    let log2 = log.clone();
    let probes = crate::probe::Probes::default();
    let probes2 = probes.clone();
    let wall = std::time::Instant::now();
    let res = std::thread::Builder::new()
        .name(format!("sim-seed-{seed}"))
        .spawn(move || {
            let mut rt =
                madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
            let limit = scn.duration_ms + scn.liveness.heal_within_ms + 300_000;
            rt.set_time_limit(Duration::from_millis(limit));
            // A fresh thread: its coverage counters start at zero.
            let sim_ms = rt.block_on(drive(scn, seed, log2, opts, probes2));
            (sim_ms, zkcore::cover::take())
        })
        .expect("spawn simulation thread")
        .join();
    let wall = wall.elapsed();
    let events = log.events();
    let samples = probes.samples();
    let board = probes.board();
    match res {
        Ok((sim_ms, coverage)) => RunOutput {
            seed,
            events,
            panic: None,
            sim_ms,
            wall,
            samples,
            board,
            coverage,
        },
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic with a non-string payload".into());
            let sim_ms = events.last().map(|e| e.t_us / 1000).unwrap_or(0);
            RunOutput {
                seed,
                events,
                panic: Some(msg),
                sim_ms,
                wall,
                samples,
                board,
                coverage: Vec::new(),
            }
        }
    }
}

/// `server<id>`'s IP: 10.0.0.id.
pub fn server_ip(id: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, id as u8)
}

/// `server<id>`'s client address.
pub fn server_addr(id: u32) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(server_ip(id)), CLIENT_PORT)
}

/// How a server is named in the history: `server` when it is the only
/// one, `server:N` in an ensemble (as fault targets are written).
pub fn server_name(id: u32, servers: u32) -> String {
    if servers == 1 {
        "server".into()
    } else {
        format!("server:{id}")
    }
}

/// Server `id`'s configuration. One server: standalone, as a zoo.cfg with
/// no `server.N` lines. An ensemble: a quorum config with one `server.i`
/// line per member (participants, `10.0.0.i:2888:3888;10.0.0.i:2181`),
/// `initLimit`/`syncLimit` from the scenario and `myid` = `id`.
pub fn server_config(c: &crate::scenario::Cluster, id: u32) -> Config {
    let mut cfg = Config::new("data", CLIENT_PORT);
    cfg.client_port_address = IpAddr::V4(server_ip(id));
    cfg.tick_ms = c.tick_ms;
    cfg.min_session_timeout_ms = c.min_session_timeout_ms;
    cfg.max_session_timeout_ms = c.max_session_timeout_ms;
    cfg.snap_count = c.snap_count;
    if let Some([lo, hi]) = c.fsync_ms {
        cfg.extra
            .insert("sim.fsyncMs".to_string(), format!("{lo},{hi}"));
    }
    if c.servers > 1 {
        cfg.servers = (1..=c.servers)
            .map(|i| ServerSpec {
                id: i as u64,
                host: server_ip(i).to_string(),
                quorum_port: QUORUM_PORT,
                election_port: ELECTION_PORT,
                role: PeerRole::Participant,
                client: Some(HostPort {
                    host: server_ip(i).to_string(),
                    port: CLIENT_PORT,
                }),
            })
            .collect();
        cfg.init_limit = Some(c.init_limit);
        cfg.sync_limit = Some(c.sync_limit);
        cfg.apply_myid(Some(&id.to_string()), "sim")
            .expect("the simulator's quorum config is valid");
        assert!(cfg.is_quorum(), "{} servers: a quorum config", c.servers);
    }
    cfg
}

/// Create the server node (10.0.0.1:2181) over `disk`; its init task runs
/// the server, and is re-run by `Handle::restart`. A server that stops on
/// an error is recorded in `rec` (if given) as `server_exit`.
pub fn start_server(
    handle: &Handle,
    cluster: &crate::scenario::Cluster,
    disk: FaultDisk,
    rec: Option<Recorder>,
) -> NodeHandle {
    start_server_with(handle, cluster, disk, SimClock::new(), rec, &[])
}

/// [`start_server`] with extra zoo.cfg keys (`Config::extra`), e.g. the
/// simulation-only bug switches `sim.bug.*`, and the node's clock (kept by
/// the caller, like the disk, so it outlives kills and can be stalled).
pub fn start_server_with(
    handle: &Handle,
    cluster: &crate::scenario::Cluster,
    disk: FaultDisk,
    clock: SimClock,
    rec: Option<Recorder>,
    extra: &[(String, String)],
) -> NodeHandle {
    let node = ServerNode { id: 1, disk, clock };
    start_server_node(handle, cluster, &node, rec, extra, None, None)
}

/// One server's durable parts, kept by the supervisor across kills.
#[derive(Debug, Clone)]
pub struct ServerNode {
    /// 1-based id: `server<id>` at 10.0.0.id.
    pub id: u32,
    pub disk: FaultDisk,
    pub clock: SimClock,
}

/// Create `server<id>` (10.0.0.id) over its disk and clock; its init task
/// runs the server (re-run by `Handle::restart`), publishing on `board`.
/// A server that stops on an error is recorded in `rec` (if given) as
/// `server_exit`; either way its board entry goes (it is no longer
/// running).
pub fn start_server_node(
    handle: &Handle,
    cluster: &crate::scenario::Cluster,
    node: &ServerNode,
    rec: Option<Recorder>,
    extra: &[(String, String)],
    board: Option<StatusBoard>,
    monitor: Option<zkserver::run::Monitor>,
) -> NodeHandle {
    let id = node.id;
    let mut cfg = server_config(cluster, id);
    cfg.extra.extend(extra.iter().cloned());
    let disk = node.disk.clone();
    let clock = node.clock.clone();
    disk.create_dir_all("data/snap").expect("mem disk");
    disk.create_dir_all("data/log").expect("mem disk");
    let dirs = Dirs {
        snap: "data/snap".into(),
        log: "data/log".into(),
    };
    let name = server_name(id, cluster.servers);
    handle
        .create_node()
        .name(format!("server{id}"))
        .ip(IpAddr::V4(server_ip(id)))
        .init(move || {
            let (cfg, dirs, disk, rec) = (cfg.clone(), dirs.clone(), disk.clone(), rec.clone());
            let (clock, board, name) = (clock.clone(), board.clone(), name.clone());
            let monitor = monitor.clone();
            async move {
                let disk: Arc<dyn Disk> = Arc::new(disk);
                let clock = Arc::new(clock);
                let res =
                    zkserver::run::run_observed(cfg, disk, dirs, clock, board.clone(), monitor)
                        .await;
                if let Some(b) = &board {
                    b.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&(id as u64));
                }
                if let (Err(e), Some(rec)) = (res, rec) {
                    rec.push(Event {
                        ty: Ty::ServerExit,
                        target: Some(name),
                        error: Some(format!("{e:#}")),
                        ..Default::default()
                    });
                }
                // Like a real process that returns from main: every task
                // and socket of the node goes (the client listener too).
                madsim::runtime::Handle::current().kill(format!("server{id}"));
            }
        })
        .build()
}

/// One thing a fault did, to be undone at its end.
#[derive(Debug, Clone, Copy)]
enum Undo {
    /// A clogged link (src, dst).
    Link(NodeId, NodeId),
    /// A clogged node (all its links).
    Node(NodeId),
    Pause(NodeId),
    /// A killed server (by id): restart it.
    Restart(u32),
    /// A network-wide latency/loss setting, by fault id.
    Net,
    /// A stalled server clock (by id).
    Stall(u32),
    /// A skewed server clock (by id), by this much.
    Skew(u32, i64),
    /// A failing disk (server id): heal it, and restart the server if it
    /// stopped on the error.
    DiskOk(u32),
}

/// A fault in progress: what to undo at its end.
#[derive(Debug, Clone)]
struct Active {
    kind: FaultKind,
    /// The resolved targets, as recorded.
    target: String,
    undo: Vec<Undo>,
    /// Each stalled server's `clock.skipped_ticks()` at the start.
    ticks_at_start: BTreeMap<u32, u64>,
}

/// A node a fault hits, once resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    /// By id (1-based).
    Server(u32),
    /// By client number (1-based).
    Client(u32),
}

/// A server as the supervisor drives it.
struct Srv {
    node: ServerNode,
    handle: NodeId,
}

struct Cluster {
    handle: Handle,
    net: Arc<NetSim>,
    servers: Vec<Srv>,
    clients: Vec<NodeId>,
    driver: NodeId,
    board: StatusBoard,
    /// The servers' invariant monitor (also told what power failures left
    /// on each disk).
    monitor: zkserver::run::Monitor,
    /// At most this many servers down from crashes and power losses when
    /// a power loss starts (f of an ensemble; 1 with one server).
    max_power_loss: usize,
    rng: ChaCha8Rng,
    rec: Recorder,
    /// Reference counts, so overlapping faults end independently (madsim
    /// keeps clogs and pauses in sets: the first unclog would end both).
    links: BTreeMap<(NodeId, NodeId), u32>,
    nodes: BTreeMap<NodeId, u32>,
    paused: BTreeMap<NodeId, u32>,
    /// Servers (by id) killed by a crash or power loss still in progress.
    down: BTreeSet<u32>,
    /// Active latency / loss faults by id: the network runs with the worst.
    net_faults: BTreeMap<u32, (Option<[u64; 2]>, Option<f64>)>,
}

fn inc<K: Ord>(m: &mut BTreeMap<K, u32>, k: K) -> bool {
    let n = m.entry(k).or_default();
    *n += 1;
    *n == 1
}

fn dec<K: Ord>(m: &mut BTreeMap<K, u32>, k: K) -> bool {
    let n = m.get_mut(&k).expect("undo of a fault that was applied");
    *n -= 1;
    if *n == 0 {
        m.remove(&k);
        true
    } else {
        false
    }
}

/// Targets resolved to nodes, and what the resolution had to say (which
/// server was the leader, a fallback, a skip), for the fault's record.
#[derive(Debug, Default)]
struct Resolved {
    nodes: Vec<Node>,
    notes: Vec<String>,
}

impl Cluster {
    fn n(&self) -> u32 {
        self.servers.len() as u32
    }

    fn srv(&self, id: u32) -> &Srv {
        &self.servers[id as usize - 1]
    }

    fn sname(&self, id: u32) -> String {
        server_name(id, self.n())
    }

    /// Pick one of `v` from the seed (no draw when there is one choice).
    fn draw<T: Copy>(&mut self, v: &[T]) -> Option<T> {
        match v.len() {
            0 => None,
            1 => Some(v[0]),
            n => Some(v[self.rng.gen_range(0..n)]),
        }
    }

    /// Can a fault of `kind` hit server `id` now? A crash, power loss or
    /// pause needs a server that is up and not paused (kill before
    /// restart, never kill or pause twice).
    fn eligible(&self, kind: FaultKind, id: u32) -> bool {
        let process = kind.kills_server() || kind == FaultKind::Pause;
        !process || !self.down.contains(&id) && !self.paused.contains_key(&self.srv(id).handle)
    }

    /// Each server's role on the board (`-` when it has no status).
    fn board_roles(&self) -> BTreeMap<u32, Option<(String, u64)>> {
        let b = self.board.lock().unwrap_or_else(|e| e.into_inner());
        (1..=self.n())
            .map(|id| {
                let st = b
                    .get(&(id as u64))
                    .filter(|_| !self.down.contains(&id))
                    .map(|s| (s.role.to_string(), s.epoch));
                (id, st)
            })
            .collect()
    }

    fn roles_text(&self, roles: &BTreeMap<u32, Option<(String, u64)>>) -> String {
        roles
            .iter()
            .map(|(id, r)| match r {
                Some((role, epoch)) => format!("{} {role} e{epoch}", self.sname(*id)),
                None => format!("{} -", self.sname(*id)),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The server with `role` for a fault of `kind`: the leader (highest
    /// epoch, then lowest id), or a follower drawn from the seed. Without
    /// one, a server drawn from the seed, and a note saying so.
    fn pick_role(&mut self, kind: FaultKind, role: &str, r: &mut Resolved) {
        let roles = self.board_roles();
        let cands: Vec<u32> = (1..=self.n())
            .filter(|id| self.eligible(kind, *id))
            .collect();
        let mut with: Vec<(u64, u32)> = cands
            .iter()
            .filter_map(|id| match &roles[id] {
                Some((x, epoch)) if x == role => Some((*epoch, *id)),
                _ => None,
            })
            .collect();
        let pick = if role == "leader" {
            with.sort_by_key(|(epoch, id)| (std::cmp::Reverse(*epoch), *id));
            with.first().map(|(_, id)| *id)
        } else {
            let ids: Vec<u32> = with.iter().map(|(_, id)| *id).collect();
            self.draw(&ids)
        };
        if let Some(id) = pick {
            r.notes.push(format!("{role} = {}", self.sname(id)));
            r.nodes.push(Node::Server(id));
            return;
        }
        let text = self.roles_text(&roles);
        match self.draw(&cands) {
            Some(id) => {
                r.notes.push(format!(
                    "no {role} found ({text}): drew {} at random",
                    self.sname(id)
                ));
                r.nodes.push(Node::Server(id));
            }
            None => r.notes.push(format!(
                "no {role} found and no server can take a {} ({text}): skipped",
                kind.name()
            )),
        }
    }

    fn resolve(&mut self, kind: FaultKind, targets: &[Target]) -> Resolved {
        let mut r = Resolved::default();
        for t in targets {
            self.resolve_one(kind, *t, &mut r);
        }
        let mut seen = BTreeSet::new();
        r.nodes.retain(|n| seen.insert(*n));
        if kind == FaultKind::PowerLoss {
            // At most f servers lose power (or are down from a crash) at once.
            let room = self.max_power_loss.saturating_sub(self.down.len());
            let mut servers = 0;
            let mut cut = Vec::new();
            r.nodes.retain(|n| {
                servers += 1;
                let keep = servers <= room;
                if !keep {
                    cut.push(*n);
                }
                keep
            });
            for n in cut {
                if let Node::Server(id) = n {
                    r.notes.push(format!(
                        "{} spared: {} of {} servers already down, at most {} may lose power at once",
                        self.sname(id),
                        self.down.len(),
                        self.n(),
                        self.max_power_loss
                    ));
                }
            }
        }
        r
    }

    fn resolve_one(&mut self, kind: FaultKind, t: Target, r: &mut Resolved) {
        let n = self.n();
        let server = |this: &mut Self, id: u32, r: &mut Resolved| {
            if this.eligible(kind, id) {
                r.nodes.push(Node::Server(id));
            } else {
                r.notes.push(format!(
                    "{} is already down or paused: skipped",
                    this.sname(id)
                ));
            }
        };
        match t {
            Target::Client(c) => r.nodes.push(Node::Client(c)),
            Target::ServerId(id) => server(self, id, r),
            Target::Servers => (1..=n).for_each(|id| server(self, id, r)),
            Target::Server | Target::Leader if n == 1 => server(self, 1, r),
            Target::Server | Target::Leader => self.pick_role(kind, "leader", r),
            Target::Follower => self.pick_role(kind, "follower", r),
            Target::Random => {
                let servers: Vec<Node> = (1..=n)
                    .filter(|id| self.eligible(kind, *id))
                    .map(Node::Server)
                    .collect();
                let clients: Vec<Node> =
                    (1..=self.clients.len() as u32).map(Node::Client).collect();
                let pool: Vec<Node> = match kind {
                    k if k.server_only() || k.kills_server() => servers,
                    FaultKind::Partition | FaultKind::Bridge | FaultKind::Clog => clients,
                    _ => servers.into_iter().chain(clients).collect(),
                };
                match self.draw(&pool) {
                    Some(node) => r.nodes.push(node),
                    None => r.notes.push(format!(
                        "no node can take a random {}: skipped",
                        kind.name()
                    )),
                }
            }
        }
    }

    fn node(&self, n: Node) -> NodeId {
        match n {
            Node::Client(c) => self.clients[c as usize - 1],
            Node::Server(id) => self.srv(id).handle,
        }
    }

    fn node_name(&self, n: Node) -> String {
        match n {
            Node::Client(c) => format!("client:{c}"),
            Node::Server(id) => self.sname(id),
        }
    }

    fn name(&self, id: NodeId) -> String {
        if let Some(s) = self.servers.iter().find(|s| s.handle == id) {
            self.sname(s.node.id)
        } else if id == self.driver {
            "driver".into()
        } else {
            match self.clients.iter().position(|c| *c == id) {
                Some(i) => format!("client:{}", i + 1),
                None => format!("{id:?}"),
            }
        }
    }

    /// Every node a partition can separate (servers, clients, the driver;
    /// never the monitor), as (node, is a server).
    fn all_nodes(&self) -> Vec<(NodeId, bool)> {
        let mut v: Vec<(NodeId, bool)> = self.servers.iter().map(|s| (s.handle, true)).collect();
        v.extend(self.clients.iter().map(|c| (*c, false)));
        v.push((self.driver, false));
        v
    }

    fn is_server(&self, id: NodeId) -> bool {
        self.servers.iter().any(|s| s.handle == id)
    }

    fn clog_link(&mut self, a: NodeId, b: NodeId, undo: &mut Vec<Undo>) {
        if a == b
            || undo
                .iter()
                .any(|u| matches!(u, Undo::Link(x, y) if (*x, *y) == (a, b)))
        {
            return;
        }
        if inc(&mut self.links, (a, b)) {
            self.net.clog_link(a, b);
        }
        undo.push(Undo::Link(a, b));
    }

    fn apply_net_config(&self) -> String {
        let mut lat: Option<[u64; 2]> = None;
        let mut loss: f64 = 0.0;
        for (l, r) in self.net_faults.values() {
            if let Some([lo, hi]) = l {
                let [a, b] = lat.unwrap_or([0, 0]);
                lat = Some([a.max(*lo), b.max(*hi)]);
            }
            loss = loss.max(r.unwrap_or(0.0));
        }
        let range = match lat {
            Some([lo, hi]) => Duration::from_millis(lo)..Duration::from_millis(hi.max(lo + 1)),
            None => Duration::from_millis(1)..Duration::from_millis(10),
        };
        let text = format!(
            "network now: send latency {}..{} ms, packet loss {loss}",
            range.start.as_millis(),
            range.end.as_millis()
        );
        self.net.update_config(|c| {
            c.send_latency = range;
            c.packet_loss_rate = loss;
        });
        text
    }

    /// Kill server `id`: its tasks go, its board entry goes (it is no
    /// longer running), its disk loses or tears its unsynced tail.
    fn kill(&mut self, id: u32, undo: &mut Vec<Undo>) -> String {
        self.handle.kill(self.srv(id).handle);
        self.board
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(id as u64));
        self.down.insert(id);
        undo.push(Undo::Restart(id));
        self.crash_disk(id)
    }

    /// Prefix `text` with the server's name in an ensemble.
    fn about(&self, id: u32, text: String) -> String {
        if self.n() == 1 {
            text
        } else {
            format!("{}: {text}", self.sname(id))
        }
    }

    async fn start(&mut self, id: u32, f: &Fault, targets: &[Target], peers: &[Target]) -> Active {
        let kind = f.kind;
        let mut res = self.resolve(kind, targets);
        let peer_res = if matches!(kind, FaultKind::Bridge | FaultKind::Clog) {
            self.resolve(kind, peers)
        } else {
            Resolved::default()
        };
        res.notes.extend(peer_res.notes);
        let (nodes, peers_n) = (res.nodes.clone(), peer_res.nodes);
        let server_ids: Vec<u32> = nodes
            .iter()
            .filter_map(|n| match n {
                Node::Server(id) => Some(*id),
                Node::Client(_) => None,
            })
            .collect();
        let mut undo = Vec::new();
        let mut detail: Vec<String> = Vec::new();
        let mut ticks_at_start = BTreeMap::new();
        match kind {
            FaultKind::Partition => {
                // The targets on one side, every other node on the other;
                // only links with a server on one end matter.
                let side: Vec<NodeId> = nodes.iter().map(|n| self.node(*n)).collect();
                let others: Vec<(NodeId, bool)> = self
                    .all_nodes()
                    .into_iter()
                    .filter(|(n, _)| !side.contains(n))
                    .collect();
                for a in side {
                    let a_server = self.is_server(a);
                    for (o, o_server) in &others {
                        if !(a_server || *o_server) {
                            continue;
                        }
                        if f.direction() != Direction::Out {
                            self.clog_link(*o, a, &mut undo);
                        }
                        if f.direction() != Direction::In {
                            self.clog_link(a, *o, &mut undo);
                        }
                    }
                }
            }
            FaultKind::Bridge => {
                let a_side: Vec<NodeId> = nodes.iter().map(|n| self.node(*n)).collect();
                let c_side: Vec<NodeId> = peers_n.iter().map(|n| self.node(*n)).collect();
                for a in &a_side {
                    for c in &c_side {
                        if self.is_server(*a) || self.is_server(*c) {
                            self.clog_link(*a, *c, &mut undo);
                            self.clog_link(*c, *a, &mut undo);
                        }
                    }
                }
                let bridge: Vec<String> = self
                    .servers
                    .iter()
                    .map(|s| s.handle)
                    .chain(self.clients.iter().copied())
                    .filter(|n| !a_side.contains(n) && !c_side.contains(n))
                    .map(|n| self.name(n))
                    .collect();
                detail.push(format!(
                    "bridged by: {}",
                    if bridge.is_empty() {
                        "nobody".into()
                    } else {
                        bridge.join(",")
                    }
                ));
            }
            FaultKind::Clog => {
                if let (Some(a), Some(b)) = (nodes.first(), peers_n.first()) {
                    let (a, b) = (self.node(*a), self.node(*b));
                    if a == b {
                        detail.push("target and peer are the same node: nothing clogged".into());
                    }
                    self.clog_link(a, b, &mut undo);
                }
            }
            FaultKind::Isolate => {
                for n in &nodes {
                    let node = self.node(*n);
                    if inc(&mut self.nodes, node) {
                        self.net.clog_node(node);
                    }
                    undo.push(Undo::Node(node));
                }
            }
            FaultKind::Pause => {
                for n in &nodes {
                    let node = self.node(*n);
                    if inc(&mut self.paused, node) {
                        self.handle.pause(node);
                    }
                    undo.push(Undo::Pause(node));
                }
            }
            FaultKind::Latency | FaultKind::PacketLoss => {
                self.net_faults.insert(id, (f.latency_ms, f.loss_rate));
                detail.push(self.apply_net_config());
                undo.push(Undo::Net);
            }
            FaultKind::ClockStall => {
                for s in &server_ids {
                    let clock = &self.srv(*s).node.clock;
                    ticks_at_start.insert(*s, clock.skipped_ticks());
                    clock.stall();
                    undo.push(Undo::Stall(*s));
                    detail.push(format!("{}'s ticks stall", self.sname(*s)));
                }
            }
            FaultKind::DiskError => {
                for s in &server_ids {
                    self.srv(*s).node.disk.set_failing(true);
                    undo.push(Undo::DiskOk(*s));
                    detail.push(format!("{}'s disk fails every write", self.sname(*s)));
                }
            }
            FaultKind::ClockSkew => {
                let skew = f.skew_ms.unwrap_or(0);
                for s in &server_ids {
                    let clock = &self.srv(*s).node.clock;
                    clock.add_skew(skew);
                    undo.push(Undo::Skew(*s, skew));
                    detail.push(format!(
                        "{} wall clock {skew:+} ms (now {:+} ms)",
                        self.sname(*s),
                        clock.skew_ms()
                    ));
                }
            }
            FaultKind::Crash => {
                for s in &server_ids {
                    let torn = self.kill(*s, &mut undo);
                    let kept = self.check_acked_survived(*s);
                    detail.push(self.about(*s, format!("{torn}{kept}")));
                }
            }
            FaultKind::PowerLoss => {
                for s in &server_ids {
                    self.srv(*s).node.disk.arm_power_loss();
                }
                // When each disk failed its fsync (ms after arming).
                let mut tripped: BTreeMap<u32, u64> = BTreeMap::new();
                let mut waited = 0;
                loop {
                    for s in &server_ids {
                        if !tripped.contains_key(s) && self.srv(*s).node.disk.tripped() {
                            tripped.insert(*s, waited);
                        }
                    }
                    if tripped.len() == server_ids.len() || waited >= 500 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    waited += 1;
                }
                for s in &server_ids {
                    let how = match tripped.get(s) {
                        Some(ms) => format!("power failed during an fsync after {ms} ms"),
                        None => "no fsync within 500 ms: power cut while idle".into(),
                    };
                    let torn = self.kill(*s, &mut undo);
                    let kept = self.check_acked_survived(*s);
                    detail.push(self.about(*s, format!("{how}; {torn}{kept}")));
                }
            }
        }
        let links: Vec<String> = undo
            .iter()
            .filter_map(|u| match u {
                Undo::Link(a, b) => Some(format!("{}→{}", self.name(*a), self.name(*b))),
                _ => None,
            })
            .collect();
        if !links.is_empty() {
            detail.insert(0, format!("clogged {}", links.join(" ")));
        }
        for (i, n) in res.notes.iter().enumerate() {
            detail.insert(i, n.clone());
        }
        let names = |v: &[Node], spec: &[Target]| -> String {
            if v.is_empty() {
                spec.iter()
                    .map(Target::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            } else {
                v.iter()
                    .map(|n| self.node_name(*n))
                    .collect::<Vec<_>>()
                    .join(",")
            }
        };
        let target = if kind.network_wide() {
            "network".to_string()
        } else if matches!(kind, FaultKind::Bridge | FaultKind::Clog) {
            format!("{} / {}", names(&nodes, targets), names(&peers_n, peers))
        } else {
            names(&nodes, targets)
        };
        self.rec.push(Event {
            ty: Ty::FaultStart,
            fault: Some(kind.name().into()),
            fault_id: Some(id),
            target: Some(target.clone()),
            detail: (!detail.is_empty()).then(|| detail.join("; ")),
            ..Default::default()
        });
        Active {
            kind,
            target,
            undo,
            ticks_at_start,
        }
    }

    /// Drop or tear every file's unsynced tail of server `id`'s disk,
    /// chosen from the seed.
    /// After a power failure: everything server `id` acknowledged as
    /// durable must still be in its log (ZAB: a follower ACKs only what it
    /// has persisted; a leader counts only its durable log). The monitor
    /// remembers the server's last acknowledgement; the disk is read as
    /// the restart will read it. A violation goes to the monitor (the `zab`
    /// check).
    fn check_acked_survived(&mut self, id: u32) -> String {
        let acked = self
            .monitor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_acked(id as u64);
        if acked <= 0 {
            return String::new();
        }
        let disk: &dyn zkcore::disk::Disk = self.servers[id as usize - 1].node.disk.mem();
        let dirs = Dirs {
            snap: "data/snap".into(),
            log: "data/log".into(),
        };
        let on_disk = match zkserver::run::recover(disk, &dirs) {
            Ok(r) => r.tree.last_zxid(),
            Err(e) => {
                return format!("; its disk does not recover: {e:#}");
            }
        };
        if on_disk < acked {
            self.monitor
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .violation(format!(
                    "server {id} acknowledged zxid {acked:#x} as durable, but after its power failed its log ends at {on_disk:#x}"
                ));
        }
        format!("; log ends at {on_disk:#x} (acknowledged {acked:#x})")
    }

    fn crash_disk(&mut self, id: u32) -> String {
        let rng = &mut self.rng;
        let mut torn = Vec::new();
        self.servers[id as usize - 1]
            .node
            .disk
            .mem()
            .crash_with(&mut |path, len| {
                let keep = match rng.gen_range(0..3) {
                    0 => 0,
                    1 => len,
                    _ => rng.gen_range(0..=len),
                };
                torn.push(format!("{path}: kept {keep} of {len} unsynced bytes"));
                keep
            });
        if torn.is_empty() {
            "no unsynced data".into()
        } else {
            torn.join(", ")
        }
    }

    fn end(&mut self, id: u32, a: Active) {
        let mut detail: Vec<String> = Vec::new();
        for u in &a.undo {
            match *u {
                Undo::Link(x, y) => {
                    if dec(&mut self.links, (x, y)) {
                        self.net.unclog_link(x, y);
                    }
                }
                Undo::Node(n) => {
                    if dec(&mut self.nodes, n) {
                        self.net.unclog_node(n);
                    }
                }
                Undo::Pause(n) => {
                    if dec(&mut self.paused, n) {
                        self.handle.resume(n);
                    }
                }
                Undo::Restart(s) => {
                    self.srv(s).node.disk.reset();
                    self.handle.restart(self.srv(s).handle);
                    self.down.remove(&s);
                }
                Undo::Net => {
                    self.net_faults.remove(&id);
                    detail.push(self.apply_net_config());
                }
                Undo::Stall(s) => {
                    let clock = &self.srv(s).node.clock;
                    clock.unstall();
                    let n = clock.skipped_ticks() - a.ticks_at_start.get(&s).copied().unwrap_or(0);
                    detail.push(self.about(s, format!("{n} ticks skipped")));
                }
                Undo::Skew(s, ms) => {
                    self.srv(s).node.clock.add_skew(-ms);
                    detail.push(format!("{} wall clock back by {ms} ms", self.sname(s)));
                }
                Undo::DiskOk(s) => {
                    self.srv(s).node.disk.set_failing(false);
                    let running = self
                        .board
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .contains_key(&(s as u64));
                    if !running && !self.down.contains(&s) {
                        // It stopped on the I/O error, as it must: the
                        // operator replaces the disk and starts it again.
                        self.handle.restart(self.srv(s).handle);
                        detail.push(format!(
                            "{} restarted after stopping on the error",
                            self.sname(s)
                        ));
                    } else {
                        detail.push(format!("{}'s disk works again", self.sname(s)));
                    }
                }
            }
        }
        self.rec.push(Event {
            ty: Ty::FaultEnd,
            fault: Some(a.kind.name().into()),
            fault_id: Some(id),
            target: Some(a.target),
            detail: (!detail.is_empty()).then(|| detail.join("; ")),
            ..Default::default()
        });
    }
}

/// Each client's list of servers: one permutation of the servers drawn
/// from the seed, rotated by the client's number (the driver is 0), so
/// that clients start on different servers and try them all in turn.
fn server_orders(seed: u64, servers: u32) -> impl Fn(u32) -> Vec<SocketAddr> {
    let mut base: Vec<SocketAddr> = (1..=servers).map(server_addr).collect();
    if servers > 1 {
        base.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5e57_0dde));
    }
    move |client: u32| {
        let mut v = base.clone();
        let k = client as usize % v.len();
        v.rotate_left(k);
        v
    }
}

/// Wait until every running server (one with a status on the board)
/// reports the same last zxid, or `bound_ms` passes; record everyone's
/// status as the `replicas` event.
async fn record_replicas(board: &StatusBoard, servers: u32, bound_ms: u64, rec: &Recorder) {
    let started = rec.now_us();
    loop {
        let snap = board.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let running: Vec<i64> = (1..=servers)
            .filter_map(|id| snap.get(&(id as u64)).map(|s| s.last_zxid))
            .collect();
        let agreed = running
            .first()
            .is_some_and(|z| running.iter().all(|x| x == z));
        let waited_ms = (rec.now_us() - started) / 1000;
        if agreed || waited_ms >= bound_ms {
            let replicas: Vec<Replica> = (1..=servers)
                .map(|id| match snap.get(&(id as u64)) {
                    Some(s) => Replica {
                        server: id,
                        running: true,
                        role: s.role.to_string(),
                        epoch: s.epoch,
                        last_zxid: s.last_zxid,
                        digest: s.digest,
                        serving: s.serving,
                    },
                    None => Replica {
                        server: id,
                        ..Default::default()
                    },
                })
                .collect();
            let detail = if agreed {
                format!(
                    "{} of {servers} servers running, at last zxid 0x{:x} after waiting {waited_ms} ms",
                    running.len(),
                    running[0] as u64
                )
            } else {
                format!("no common last zxid after waiting {waited_ms} ms (the liveness bound)")
            };
            rec.push(Event {
                ty: Ty::Replicas,
                detail: Some(detail),
                replicas: Some(replicas),
                ..Default::default()
            });
            return;
        }
        tokio::time::sleep(Duration::from_millis(REPLICA_POLL_MS)).await;
    }
}

/// What the servers' ZAB invariant monitor saw over the whole run (the
/// `zab` check's evidence).
fn record_invariants(monitor: &zkserver::run::Monitor, servers: u32, rec: &Recorder) {
    let m = monitor.lock().unwrap_or_else(|e| e.into_inner());
    rec.push(Event {
        ty: Ty::Invariants,
        detail: Some(format!(
            "{} status reports from {servers} server(s) checked after every input; committed up to 0x{:x}",
            m.observed, m.max_committed_zxid as u64
        )),
        error: (!m.violations.is_empty()).then(|| m.violations.join("\n")),
        ..Default::default()
    });
}

/// The supervisor: returns the simulated duration in ms.
async fn drive(
    scn: Scenario,
    seed: u64,
    log: crate::history::Log,
    opts: RunOptions,
    probes: crate::probe::Probes,
) -> u64 {
    let rec = Recorder::with_log(log);
    let handle = Handle::current();
    let mut extra = Vec::new();
    if opts.sabotage == Sabotage::DropWatchEvent {
        let n = drop_watch_event_n(seed);
        extra.push(("sim.bug.dropWatchEvent".to_string(), n.to_string()));
    }
    let bugs = scn.bug_switches();
    if !bugs.is_empty() {
        let ids: Vec<&str> = bugs.iter().map(|b| b.id()).collect();
        extra.push(("sim.bugs".to_string(), ids.join(",")));
    }
    let n = scn.cluster.servers;
    let board = StatusBoard::default();
    let invariants = zkserver::run::Monitor::default();
    let mut servers = Vec::new();
    for id in 1..=n {
        let disk = FaultDisk::new(zkcore::disk::MemDisk::new());
        if opts.sabotage == Sabotage::LyingFsync {
            disk.lie_about_sync();
        }
        let node = ServerNode {
            id,
            disk,
            clock: SimClock::new(),
        };
        let h = start_server_node(
            &handle,
            &scn.cluster,
            &node,
            Some(rec.clone()),
            &extra,
            Some(board.clone()),
            Some(invariants.clone()),
        );
        servers.push(Srv {
            node,
            handle: h.id(),
        });
    }
    let order = server_orders(seed, n);
    let driver = handle
        .create_node()
        .name("driver")
        .ip(IpAddr::V4(DRIVER_IP))
        .build();
    // Report-only observer: `srvr` every few hundred ms and the status
    // board every 100 ms (crate::probe).
    let monitor = handle
        .create_node()
        .name("monitor")
        .ip(IpAddr::V4(MONITOR_IP))
        .build();
    let rec2 = rec.clone();
    monitor.spawn(crate::probe::monitor(
        (1..=n).map(server_addr).collect(),
        move || rec2.now_us(),
        probes.clone(),
    ));
    let rec2 = rec.clone();
    monitor.spawn(crate::probe::sample_board(
        board.clone(),
        n,
        move || rec2.now_us(),
        probes,
    ));
    let mut slots = Vec::new();
    let mut client_nodes: Vec<NodeHandle> = Vec::new();
    for (i, (wi, ci)) in scn.clients().into_iter().enumerate() {
        let id = i as u32 + 1;
        let w = scn.workloads[wi].clone();
        let node = handle
            .create_node()
            .name(format!("client{id}"))
            .ip(IpAddr::V4(Ipv4Addr::new(10, 0, 1, id as u8)))
            .build();
        client_nodes.push(node);
        slots.push(Slot {
            id,
            index: ci,
            end_ms: scn.workload_end_ms(&w),
            workload: w,
            seed: seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(id as u64)),
            servers: order(id),
        });
    }
    let mut cluster = Cluster {
        net: NetSim::current(),
        servers,
        clients: client_nodes.iter().map(NodeHandle::id).collect(),
        driver: driver.id(),
        board: board.clone(),
        monitor: invariants.clone(),
        max_power_loss: scn.cluster.max_power_loss(),
        rng: ChaCha8Rng::seed_from_u64(seed ^ 0xfa17_fa17),
        rec: rec.clone(),
        handle,
        links: BTreeMap::new(),
        nodes: BTreeMap::new(),
        paused: BTreeMap::new(),
        down: BTreeSet::new(),
        net_faults: BTreeMap::new(),
    };
    let (faults, swarm_kinds) = scn.faults_for(seed);

    // Workload roots (and the lock workload's nodes) exist before anything starts.
    let roots: Vec<Planned> = scn.workloads.iter().flat_map(workload::setup).collect();
    let setup = driver.spawn(driver_ops(rec.clone(), order(0), roots));
    let _ = setup.await;

    let start_us = rec.now_us();
    rec.push(Event {
        ty: Ty::Phase,
        detail: Some(format!("cluster servers={n}")),
        ..Default::default()
    });
    if let Some(kinds) = &swarm_kinds {
        let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
        rec.push(Event {
            ty: Ty::Phase,
            detail: Some(format!(
                "swarm kinds={} faults={}",
                names.join(","),
                faults.len() - scn.faults.len()
            )),
            ..Default::default()
        });
    }
    rec.push(Event {
        ty: Ty::Phase,
        detail: Some(format!("workloads clients={}", client_nodes.len())),
        ..Default::default()
    });
    let joins: Vec<_> = slots
        .into_iter()
        .zip(&client_nodes)
        .map(|(slot, node)| {
            let mut slot = slot;
            slot.end_ms += start_us / 1000;
            node.spawn(workload::run_client(slot, rec.clone()))
        })
        .collect();

    // The fault timeline (ends before starts at the same instant).
    let mut actions: Vec<(u64, bool, u32)> = Vec::new();
    for (i, f) in faults.iter().enumerate() {
        actions.push((f.at_ms, true, i as u32));
        actions.push((f.end_ms(), false, i as u32));
    }
    actions.sort_by_key(|(t, is_start, i)| (*t, *is_start, *i));
    let mut active: Vec<Option<Active>> = vec![None; faults.len()];
    for (t, is_start, i) in actions {
        let at = start_us + t * 1000;
        let now = rec.now_us();
        if at > now {
            tokio::time::sleep(Duration::from_micros(at - now)).await;
        }
        let f = &faults[i as usize];
        if is_start {
            let (targets, peers) = (scn.targets(f), scn.peers(f));
            active[i as usize] = Some(cluster.start(i + 1, f, &targets, &peers).await);
        } else if let Some(a) = active[i as usize].take() {
            cluster.end(i + 1, a);
        }
    }
    for j in joins {
        let _ = j.await;
    }

    // Read the final state back.
    rec.push(Event {
        ty: Ty::Phase,
        detail: Some("final".into()),
        ..Default::default()
    });
    let mut reads = Vec::new();
    let mut next_id = 1u32;
    for w in &scn.workloads {
        let ids: Vec<u32> = (next_id..next_id + w.clients).collect();
        next_id += w.clients;
        reads.extend(workload::final_reads(w, &ids));
    }
    let _ = driver.spawn(driver_ops(rec.clone(), order(0), reads)).await;
    // The replicas' final status (the `replicas` check's evidence).
    record_replicas(&board, n, scn.liveness.heal_within_ms, &rec).await;
    record_invariants(&invariants, n, &rec);
    rec.now_us() / 1000
}

/// Run `ops` as client 0 on one session (retrying the connection), then
/// close it. Ops that could not be sent are recorded as unknown.
async fn driver_ops(rec: Recorder, servers: Vec<SocketAddr>, ops: Vec<Planned>) {
    let mut cfg = crate::client::ClientConfig::new(servers);
    cfg.request_timeout_ms = 10_000;
    cfg.initial_connect_ms = 30_000;
    let client = crate::client::Client::connect(cfg).await.map(|(c, _)| c);
    let c = match client {
        Ok(c) => c,
        Err(e) => {
            record_unsent(&rec, &ops, &format!("driver could not connect: {e}"));
            return;
        }
    };
    for p in &ops {
        workload::exec(&rec, 0, &c, p).await;
    }
    let _ = c.close().await;
}

fn record_unsent(rec: &Recorder, ops: &[Planned], why: &str) {
    for p in ops {
        let id = rec.invoke(Event {
            client: Some(0),
            path: match p {
                Planned::GetChildren { path, .. }
                | Planned::Exists { path, .. }
                | Planned::GetData { path, .. }
                | Planned::Create { path, .. } => Some(path.clone()),
                _ => None,
            },
            op: Some(match p {
                Planned::GetChildren { .. } => crate::history::OpName::GetChildren,
                Planned::Exists { .. } => crate::history::OpName::Exists,
                Planned::Create { .. } => crate::history::OpName::Create,
                _ => crate::history::OpName::GetData,
            }),
            ..Default::default()
        });
        rec.push(Event {
            ty: Ty::Info,
            client: Some(0),
            op_id: Some(id),
            error: Some(why.into()),
            ..Default::default()
        });
    }
}
