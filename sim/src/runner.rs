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
use crate::scenario::{FaultKind, Scenario, Target};
use crate::workload::{self, Planned, Slot};
use madsim::net::NetSim;
use madsim::runtime::{Handle, NodeHandle};
use madsim::task::NodeId;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use zkcore::disk::Disk;
use zkserver::clock::SystemClock;
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
    start_server_with(handle, cluster, disk, rec, &[])
}

/// [`start_server`] with extra zoo.cfg keys (`Config::extra`), e.g. the
/// simulation-only bug switches `sim.bug.*`.
pub fn start_server_with(
    handle: &Handle,
    cluster: &crate::scenario::Cluster,
    disk: FaultDisk,
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
            async move {
                let disk: Arc<dyn Disk> = Arc::new(disk);
                let clock = Arc::new(SystemClock);
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

/// A fault in progress: what to undo at its end.
#[derive(Debug, Clone, Copy)]
struct Active {
    kind: FaultKind,
    node: NodeId,
    /// For partitions: the client nodes cut off from the server.
    target: Target,
}

struct Cluster {
    handle: Handle,
    net: Arc<NetSim>,
    server: NodeId,
    clients: Vec<NodeId>,
    driver: NodeId,
    disk: FaultDisk,
    rng: ChaCha8Rng,
    rec: Recorder,
}

impl Cluster {
    fn resolve(&mut self, kind: FaultKind, t: Target) -> Target {
        if t != Target::Random {
            return t;
        }
        let n = self.clients.len() as u32;
        match kind {
            FaultKind::Crash | FaultKind::PowerLoss => Target::Server,
            FaultKind::Partition => Target::Client(self.rng.gen_range(1..=n)),
            FaultKind::Isolate | FaultKind::Pause => {
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

    /// Nodes a partition of `t` cuts off from the server.
    fn cut_off(&self, t: Target) -> Vec<NodeId> {
        match t {
            Target::Client(_) => vec![self.node(t)],
            _ => {
                let mut v = self.clients.clone();
                v.push(self.driver);
                v
            }
        }
    }

    async fn start(&mut self, id: u32, kind: FaultKind, t: Target) -> Active {
        let target = self.resolve(kind, t);
        let node = self.node(target);
        let mut detail = None;
        match kind {
            FaultKind::Partition => {
                for c in self.cut_off(target) {
                    self.net.clog_link(c, self.server);
                    self.net.clog_link(self.server, c);
                }
            }
            FaultKind::Isolate => self.net.clog_node(node),
            FaultKind::Pause => self.handle.pause(node),
            FaultKind::Crash => {
                self.handle.kill(node);
                detail = Some(self.crash_disk());
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
                self.handle.kill(node);
                detail = Some(format!("{how}; {}", self.crash_disk()));
            }
        }
        self.rec.push(Event {
            ty: Ty::FaultStart,
            fault: Some(kind.name().into()),
            fault_id: Some(id),
            target: Some(target.to_string()),
            detail,
            ..Default::default()
        });
        Active { kind, node, target }
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
        match a.kind {
            FaultKind::Partition => {
                for c in self.cut_off(a.target) {
                    self.net.unclog_link(c, self.server);
                    self.net.unclog_link(self.server, c);
                }
            }
            FaultKind::Isolate => self.net.unclog_node(a.node),
            FaultKind::Pause => self.handle.resume(a.node),
            FaultKind::Crash | FaultKind::PowerLoss => {
                self.disk.reset();
                self.handle.restart(a.node);
            }
        }
        self.rec.push(Event {
            ty: Ty::FaultEnd,
            fault: Some(a.kind.name().into()),
            fault_id: Some(id),
            target: Some(a.target.to_string()),
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
    let server = start_server_with(
        &handle,
        &scn.cluster,
        disk.clone(),
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
    let clock = rec.clone();
    monitor.spawn(crate::probe::monitor(
        servers.clone(),
        move || clock.now_us(),
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
        rng: ChaCha8Rng::seed_from_u64(seed ^ 0xfa17_fa17),
        rec: rec.clone(),
        handle,
    };

    // Workload roots (and the lock workload's nodes) exist before anything starts.
    let roots: Vec<Planned> = scn.workloads.iter().flat_map(workload::setup).collect();
    let setup = driver.spawn(driver_ops(rec.clone(), servers.clone(), roots));
    let _ = setup.await;

    let start_us = rec.now_us();
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
    for (i, f) in scn.faults.iter().enumerate() {
        actions.push((f.at_ms, true, i as u32));
        actions.push((f.end_ms(), false, i as u32));
    }
    actions.sort_by_key(|(t, is_start, i)| (*t, *is_start, *i));
    let mut active: Vec<Option<Active>> = vec![None; scn.faults.len()];
    for (t, is_start, i) in actions {
        let at = start_us + t * 1000;
        let now = rec.now_us();
        if at > now {
            tokio::time::sleep(Duration::from_micros(at - now)).await;
        }
        let f = &scn.faults[i as usize];
        if is_start {
            active[i as usize] = Some(cluster.start(i + 1, f.kind, f.target()).await);
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
