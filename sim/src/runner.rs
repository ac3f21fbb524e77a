//! Runs one scenario for one seed inside madsim and returns its history.
//!
//! Layout of a simulated run (one fresh OS thread per seed, so std's
//! `RandomState` is seeded by madsim too):
//!
//! - `server1` (10.0.0.1:2181): the real server, `zkserver::run::run`,
//!   over a [`FaultDisk`] the driver keeps, so the disk outlives kills.
//!   No `restart_on_panic`: a panic in the server is a bug and ends the run.
//! - `client<N>` (10.0.1.N): one node per workload client, so a partition
//!   can cut one client off.
//! - `driver` (10.0.2.1): creates the workload roots before the run and
//!   reads the final state back after it.
//! - the supervisor (this module's `drive`): starts everything, applies the
//!   fault timeline through `NetSim` (clog/unclog) and `Handle`
//!   (kill/restart/pause/resume), records each fault in the history.
//!
//! Determinism: all randomness comes from the seed (madsim's scheduler and
//! network, ChaCha8 per client and for fault choices); no wall clock, no
//! threads, ordered maps only. The history's hash is the run's fingerprint.

use crate::faultdisk::FaultDisk;
use crate::history::{Event, Recorder, Ty};
use crate::scenario::{Direction, Fault, FaultKind, Scenario, Target};
use crate::simclock::SimClock;
use crate::workload::{self, Planned, Slot};
use madsim::net::NetSim;
use madsim::runtime::{Handle, NodeHandle};
use madsim::task::NodeId;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use zkcore::disk::Disk;
use zkserver::config::Config;
use zkserver::run::Dirs;

pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const CLIENT_PORT: u16 = 2181;
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
            rt.set_time_limit(Duration::from_millis(scn.duration_ms + 300_000));
            rt.block_on(drive(scn, seed, log2, opts, probes2))
        })
        .expect("spawn simulation thread")
        .join();
    let wall = wall.elapsed();
    let events = log.events();
    let samples = probes.samples();
    match res {
        Ok(sim_ms) => RunOutput {
            seed,
            events,
            panic: None,
            sim_ms,
            wall,
            samples,
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
            }
        }
    }
}

fn server_config(c: &crate::scenario::Cluster) -> Config {
    let mut cfg = Config::new("data", CLIENT_PORT);
    cfg.client_port_address = IpAddr::V4(SERVER_IP);
    cfg.tick_ms = c.tick_ms;
    cfg.min_session_timeout_ms = c.min_session_timeout_ms;
    cfg.max_session_timeout_ms = c.max_session_timeout_ms;
    cfg.snap_count = c.snap_count;
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
    let mut cfg = server_config(cluster);
    cfg.extra.extend(extra.iter().cloned());
    disk.create_dir_all("data/snap").expect("mem disk");
    disk.create_dir_all("data/log").expect("mem disk");
    let dirs = Dirs {
        snap: "data/snap".into(),
        log: "data/log".into(),
    };
    handle
        .create_node()
        .name("server1")
        .ip(IpAddr::V4(SERVER_IP))
        .init(move || {
            let (cfg, dirs, disk, rec) = (cfg.clone(), dirs.clone(), disk.clone(), rec.clone());
            let clock = clock.clone();
            async move {
                let disk: Arc<dyn Disk> = Arc::new(disk);
                let clock = Arc::new(clock);
                let res = zkserver::run::run(cfg, disk, dirs, clock).await;
                if let (Err(e), Some(rec)) = (res, rec) {
                    rec.push(Event {
                        ty: Ty::ServerExit,
                        target: Some("server".into()),
                        error: Some(format!("{e:#}")),
                        ..Default::default()
                    });
                }
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
    /// A killed server: restart it.
    Restart(NodeId),
    /// A network-wide latency/loss setting, by fault id.
    Net,
    Stall,
    Skew(i64),
}

/// A fault in progress: what to undo at its end.
#[derive(Debug, Clone)]
struct Active {
    kind: FaultKind,
    /// The resolved targets, as recorded.
    target: String,
    undo: Vec<Undo>,
    /// `clock.skipped_ticks()` at the start (clock stalls).
    ticks_at_start: u64,
}

struct Cluster {
    handle: Handle,
    net: Arc<NetSim>,
    server: NodeId,
    clients: Vec<NodeId>,
    driver: NodeId,
    disk: FaultDisk,
    clock: SimClock,
    rng: ChaCha8Rng,
    rec: Recorder,
    /// Reference counts, so overlapping faults end independently (madsim
    /// keeps clogs and pauses in sets: the first unclog would end both).
    links: BTreeMap<(NodeId, NodeId), u32>,
    nodes: BTreeMap<NodeId, u32>,
    paused: BTreeMap<NodeId, u32>,
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

impl Cluster {
    fn resolve(&mut self, kind: FaultKind, t: Target) -> Target {
        if t != Target::Random {
            return t;
        }
        let n = self.clients.len() as u32;
        match kind {
            k if k.server_only() => Target::Server,
            FaultKind::Partition | FaultKind::Bridge | FaultKind::Clog => {
                Target::Client(self.rng.gen_range(1..=n))
            }
            _ => {
                let i = self.rng.gen_range(0..=n);
                if i == 0 {
                    Target::Server
                } else {
                    Target::Client(i)
                }
            }
        }
    }

    fn node(&self, t: Target) -> NodeId {
        match t {
            Target::Client(n) => self.clients[n as usize - 1],
            _ => self.server,
        }
    }

    fn name(&self, id: NodeId) -> String {
        if id == self.server {
            "server".into()
        } else if id == self.driver {
            "driver".into()
        } else {
            match self.clients.iter().position(|c| *c == id) {
                Some(i) => format!("client:{}", i + 1),
                None => format!("{id:?}"),
            }
        }
    }

    /// The peers a partition of `t` cuts it from: the server for a client,
    /// every client (and the driver) for the server.
    fn partition_others(&self, t: Target) -> Vec<NodeId> {
        match t {
            Target::Client(_) => vec![self.server],
            _ => {
                let mut v = self.clients.clone();
                v.push(self.driver);
                v
            }
        }
    }

    fn clog_link(&mut self, a: NodeId, b: NodeId, undo: &mut Vec<Undo>) {
        if undo
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

    async fn start(&mut self, id: u32, f: &Fault, targets: &[Target], peers: &[Target]) -> Active {
        let kind = f.kind;
        let targets: Vec<Target> = targets.iter().map(|t| self.resolve(kind, *t)).collect();
        let peers: Vec<Target> = peers.iter().map(|t| self.resolve(kind, *t)).collect();
        let mut undo = Vec::new();
        let mut detail = None;
        let ticks_at_start = self.clock.skipped_ticks();
        match kind {
            FaultKind::Partition => {
                for t in &targets {
                    let node = self.node(*t);
                    for o in self.partition_others(*t) {
                        if f.direction() != Direction::Out {
                            self.clog_link(o, node, &mut undo);
                        }
                        if f.direction() != Direction::In {
                            self.clog_link(node, o, &mut undo);
                        }
                    }
                }
            }
            FaultKind::Bridge => {
                for a in targets.iter().map(|t| self.node(*t)).collect::<Vec<_>>() {
                    for c in peers.iter().map(|t| self.node(*t)).collect::<Vec<_>>() {
                        self.clog_link(a, c, &mut undo);
                        self.clog_link(c, a, &mut undo);
                    }
                }
                let mut bridge: Vec<NodeId> = self.clients.clone();
                bridge.push(self.server);
                let sides: Vec<NodeId> = targets
                    .iter()
                    .chain(&peers)
                    .map(|t| self.node(*t))
                    .collect();
                bridge.retain(|n| !sides.contains(n));
                let names: Vec<String> = bridge.iter().map(|n| self.name(*n)).collect();
                detail = Some(format!(
                    "bridged by: {}",
                    if names.is_empty() {
                        "nobody".into()
                    } else {
                        names.join(",")
                    }
                ));
            }
            FaultKind::Clog => {
                let (a, b) = (self.node(targets[0]), self.node(peers[0]));
                self.clog_link(a, b, &mut undo);
            }
            FaultKind::Isolate => {
                for t in &targets {
                    let node = self.node(*t);
                    if inc(&mut self.nodes, node) {
                        self.net.clog_node(node);
                    }
                    undo.push(Undo::Node(node));
                }
            }
            FaultKind::Pause => {
                for t in &targets {
                    let node = self.node(*t);
                    if inc(&mut self.paused, node) {
                        self.handle.pause(node);
                    }
                    undo.push(Undo::Pause(node));
                }
            }
            FaultKind::Latency | FaultKind::PacketLoss => {
                self.net_faults.insert(id, (f.latency_ms, f.loss_rate));
                detail = Some(self.apply_net_config());
                undo.push(Undo::Net);
            }
            FaultKind::ClockStall => {
                self.clock.stall();
                undo.push(Undo::Stall);
                detail = Some("the server's ticks stall".into());
            }
            FaultKind::ClockSkew => {
                let skew = f.skew_ms.unwrap_or(0);
                self.clock.add_skew(skew);
                undo.push(Undo::Skew(skew));
                detail = Some(format!(
                    "server wall clock {skew:+} ms (now {:+} ms)",
                    self.clock.skew_ms()
                ));
            }
            FaultKind::Crash => {
                self.handle.kill(self.server);
                detail = Some(self.crash_disk());
                undo.push(Undo::Restart(self.server));
            }
            FaultKind::PowerLoss => {
                self.disk.arm_power_loss();
                let mut waited = 0;
                while !self.disk.tripped() && waited < 500 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    waited += 1;
                }
                let how = if self.disk.tripped() {
                    format!("power failed during an fsync after {waited} ms")
                } else {
                    "no fsync within 500 ms: power cut while idle".into()
                };
                self.handle.kill(self.server);
                detail = Some(format!("{how}; {}", self.crash_disk()));
                undo.push(Undo::Restart(self.server));
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
            let l = format!("clogged {}", links.join(" "));
            detail = Some(match detail {
                Some(d) => format!("{l}; {d}"),
                None => l,
            });
        }
        let mut target: Vec<String> = targets.iter().map(Target::to_string).collect();
        if !peers.is_empty() && matches!(kind, FaultKind::Bridge | FaultKind::Clog) {
            target = vec![format!(
                "{} / {}",
                target.join(","),
                peers
                    .iter()
                    .map(Target::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            )];
        }
        let target = if kind.network_wide() {
            "network".to_string()
        } else {
            target.join(",")
        };
        self.rec.push(Event {
            ty: Ty::FaultStart,
            fault: Some(kind.name().into()),
            fault_id: Some(id),
            target: Some(target.clone()),
            detail,
            ..Default::default()
        });
        Active {
            kind,
            target,
            undo,
            ticks_at_start,
        }
    }

    /// Drop or tear every file's unsynced tail, chosen from the seed.
    fn crash_disk(&mut self) -> String {
        let rng = &mut self.rng;
        let mut torn = Vec::new();
        self.disk.mem().crash_with(&mut |path, len| {
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
        let mut detail = None;
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
                Undo::Restart(n) => {
                    self.disk.reset();
                    self.handle.restart(n);
                }
                Undo::Net => {
                    self.net_faults.remove(&id);
                    detail = Some(self.apply_net_config());
                }
                Undo::Stall => {
                    self.clock.unstall();
                    detail = Some(format!(
                        "{} ticks skipped",
                        self.clock.skipped_ticks() - a.ticks_at_start
                    ));
                }
                Undo::Skew(ms) => {
                    self.clock.add_skew(-ms);
                    detail = Some(format!("server wall clock back by {ms} ms"));
                }
            }
        }
        self.rec.push(Event {
            ty: Ty::FaultEnd,
            fault: Some(a.kind.name().into()),
            fault_id: Some(id),
            target: Some(a.target),
            detail,
            ..Default::default()
        });
    }
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
    let disk = FaultDisk::new(zkcore::disk::MemDisk::new());
    if opts.sabotage == Sabotage::LyingFsync {
        disk.lie_about_sync();
    }
    let mut extra = Vec::new();
    if opts.sabotage == Sabotage::DropWatchEvent {
        let n = drop_watch_event_n(seed);
        extra.push(("sim.bug.dropWatchEvent".to_string(), n.to_string()));
    }
    let clock = SimClock::new();
    let server = start_server_with(
        &handle,
        &scn.cluster,
        disk.clone(),
        clock.clone(),
        Some(rec.clone()),
        &extra,
    );
    let servers = vec![SocketAddr::new(IpAddr::V4(SERVER_IP), CLIENT_PORT)];
    let driver = handle
        .create_node()
        .name("driver")
        .ip(IpAddr::V4(DRIVER_IP))
        .build();
    // Report-only observer: `srvr` every few hundred ms (crate::probe).
    let monitor = handle
        .create_node()
        .name("monitor")
        .ip(IpAddr::V4(MONITOR_IP))
        .build();
    let rec2 = rec.clone();
    monitor.spawn(crate::probe::monitor(
        servers.clone(),
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
            servers: servers.clone(),
        });
    }
    let mut cluster = Cluster {
        net: NetSim::current(),
        server: server.id(),
        clients: client_nodes.iter().map(NodeHandle::id).collect(),
        driver: driver.id(),
        disk,
        clock,
        rng: ChaCha8Rng::seed_from_u64(seed ^ 0xfa17_fa17),
        rec: rec.clone(),
        handle,
        links: BTreeMap::new(),
        nodes: BTreeMap::new(),
        paused: BTreeMap::new(),
        net_faults: BTreeMap::new(),
    };
    let (faults, swarm_kinds) = scn.faults_for(seed);

    // Workload roots (and the lock workload's nodes) exist before anything starts.
    let roots: Vec<Planned> = scn.workloads.iter().flat_map(workload::setup).collect();
    let setup = driver.spawn(driver_ops(rec.clone(), servers.clone(), roots));
    let _ = setup.await;

    let start_us = rec.now_us();
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
    let _ = driver.spawn(driver_ops(rec.clone(), servers, reads)).await;
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
