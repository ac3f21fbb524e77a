//! Scenario files: TOML that composes a cluster, named workloads, faults on a
//! timeline and the checks to run (schema documented in
//! `scenarios/README.md`).
//!
//! Parsing is strict: unknown keys are rejected, and every error names the
//! file, the line and the key (`file:line: key: message`). Syntax and type
//! errors take their line from the TOML parser's span; semantic errors
//! (a fault outside the run, an unknown target) locate the key in the text.
//!
//! Invariants of a parsed [`Scenario`] (checked by [`Scenario::parse`]):
//! - `[cluster] servers` is 1, 3 or 5;
//! - every fault lies inside `[0, duration_ms]` and names a target that exists
//!   (`follower` only in an ensemble, `server:N` up to `servers`);
//! - crashes, power losses and pauses of one server do not overlap (with one
//!   server: of the server; with an ensemble: of a server named by id;
//!   `leader`/`follower`/`random` are resolved at run time among the
//!   servers that are up);
//! - with liveness enabled, every workload runs at least `heal_within_ms`
//!   past the end of the last fault, so "recovered in time" is observable.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

/// A scenario error. Display: `file:line: key: message` — the same shape as
/// a zoo.cfg error, so it is the same type.
pub use zkserver::config::ConfigError as ScenarioError;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Filled from the file name, not from the TOML.
    #[serde(skip)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Simulated length of the workload phase (faults and workloads live in it).
    pub duration_ms: u64,
    #[serde(default)]
    pub cluster: Cluster,
    #[serde(default, rename = "workload", skip_serializing_if = "Vec::is_empty")]
    pub workloads: Vec<Workload>,
    #[serde(default, rename = "fault", skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
    /// Faults drawn from the seed, on top of the scripted ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm: Option<Swarm>,
    #[serde(default)]
    pub check: Checks,
    #[serde(default)]
    pub liveness: Liveness,
    /// Reintroduced ZooKeeper bugs switched on in every server
    /// (`zkcore::bugs::Bug`, simulated build only).
    #[serde(default, skip_serializing_if = "BugSwitches::is_empty")]
    pub bugs: BugSwitches,
    /// A regression-corpus entry (`scenarios/regressions/`): the seed that
    /// once failed and the checks that caught it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regression: Option<Regression>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BugSwitches {
    /// Bug ids: `ZK-335` or `ZOOKEEPER-335`.
    #[serde(default)]
    pub enable: Vec<String>,
}

impl BugSwitches {
    pub fn is_empty(&self) -> bool {
        self.enable.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Regression {
    /// The seed that failed with `[bugs]` on.
    pub seed: u64,
    /// Checks that failed on it (at least one must fail again).
    pub caught_by: Vec<String>,
    /// Where it came from (free text: the original scenario, how it was
    /// found, how much it was shrunk).
    #[serde(default)]
    pub origin: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// 1 (standalone), 3 or 5 (a ZAB ensemble: `server<i>` at 10.0.0.i).
    #[serde(default = "one")]
    pub servers: u32,
    #[serde(default = "d_tick")]
    pub tick_ms: u32,
    #[serde(default = "d_min_st")]
    pub min_session_timeout_ms: u32,
    #[serde(default = "d_max_st")]
    pub max_session_timeout_ms: u32,
    /// Transactions between snapshots (small values exercise snapshot + log roll).
    #[serde(default = "d_snap")]
    pub snap_count: u32,
    /// `initLimit` (ticks): how long a follower may take to connect and
    /// sync to a leader. Ensembles only.
    #[serde(default = "d_init_limit")]
    pub init_limit: u32,
    /// `syncLimit` (ticks): how far a follower may fall behind the leader
    /// before it is dropped. Ensembles only.
    #[serde(default = "d_sync_limit")]
    pub sync_limit: u32,
    /// `[lo, hi]` ms: each disk batch (appends + fsync, epoch files,
    /// snapshots) takes a time drawn from this range, and commands queued
    /// meanwhile join the next batch. Absent: the disk is instantaneous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fsync_ms: Option<[u64; 2]>,
}

impl Cluster {
    /// How many servers may lose power at once: f = (N-1)/2 of an
    /// ensemble (at least 1, so that a single server can lose power).
    pub fn max_power_loss(&self) -> usize {
        ((self.servers as usize).saturating_sub(1) / 2).max(1)
    }
}

fn one() -> u32 {
    1
}
fn d_tick() -> u32 {
    500
}
fn d_min_st() -> u32 {
    1_000
}
fn d_max_st() -> u32 {
    20_000
}
fn d_snap() -> u32 {
    10_000
}
fn d_init_limit() -> u32 {
    10
}
fn d_sync_limit() -> u32 {
    5
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            servers: 1,
            tick_ms: d_tick(),
            min_session_timeout_ms: d_min_st(),
            max_session_timeout_ms: d_max_st(),
            snap_count: d_snap(),
            init_limit: d_init_limit(),
            sync_limit: d_sync_limit(),
            fsync_ms: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadKind {
    /// get/set/cas/create/delete/exists on shared keys.
    Register,
    /// Each client creates, reads and deletes its own ephemeral nodes.
    Ephemeral,
    /// Persistent-sequential creates under one parent, and getChildren.
    Sequential,
    /// Writers change shared keys; watchers set one-shot, persistent and
    /// persistent-recursive watches on them; every registration and event
    /// is recorded.
    Watch,
    /// The lock recipe (ephemeral-sequential nodes, watch the predecessor)
    /// with a fenced, versioned write by each holder.
    Lock,
    /// Multi transactions of create/setData/delete/check on a few keys,
    /// some designed to fail, plus reads.
    Multi,
}

/// `ops = 200` (per client) or `ops = "20/s"` (per client per second).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum OpsSpec {
    Count(u64),
    Rate(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ops {
    /// Stop after this many operations per client.
    Count(u64),
    /// Pace each client at this many operations per second.
    PerSecond(f64),
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    pub name: String,
    pub kind: WorkloadKind,
    #[serde(default = "one")]
    pub clients: u32,
    #[serde(default = "d_keys")]
    pub keys: u32,
    pub ops: OpsSpec,
    #[serde(default)]
    pub think_ms: u64,
    /// Defaults to the scenario's `duration_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default = "d_session_timeout")]
    pub session_timeout_ms: u32,
    #[serde(default = "d_request_timeout")]
    pub request_timeout_ms: u64,
}

fn d_keys() -> u32 {
    4
}
fn d_session_timeout() -> u32 {
    4_000
}
fn d_request_timeout() -> u64 {
    2_000
}

impl Workload {
    pub fn ops(&self) -> Ops {
        match &self.ops {
            OpsSpec::Count(n) => Ops::Count(*n),
            OpsSpec::Rate(s) => Ops::PerSecond(parse_rate(s).unwrap_or(1.0)),
        }
    }
}

fn parse_rate(s: &str) -> Option<f64> {
    let n = s.trim().strip_suffix("/s")?.trim().parse::<f64>().ok()?;
    (n.is_finite() && n > 0.0).then_some(n)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Clog the links between the target and the server (a client:
    /// that client's links; the server: every client's), both ways or
    /// one way (`direction`).
    Partition,
    /// Clog every link of the target node.
    Isolate,
    /// Non-transitive partition: the `target` side is cut from the `peer`
    /// side (both ways); every other node still reaches both sides.
    Bridge,
    /// Clog one link, one way: `target` → `peer`.
    Clog,
    /// Network-wide packet latency (`latency_ms = [lo, hi]`, uniform).
    Latency,
    /// Network-wide packet loss (`loss_rate`); under madsim TCP data is
    /// delayed and retried rather than lost, and connects fail.
    PacketLoss,
    /// Kill the server; unsynced writes vanish or are torn; restart after.
    Crash,
    /// Power fails during the server's next fsync (which fails); the
    /// server dies; unsynced writes vanish or are torn; restart after.
    PowerLoss,
    /// Stop scheduling the target's tasks; resume after.
    Pause,
    /// The server's ticks stall (a GC-like pause of its timers): no
    /// session expires until the stall ends.
    ClockStall,
    /// The server's wall clock jumps by `skew_ms` (ctime/mtime and the
    /// core's "now"), and back at the end.
    ClockSkew,
    /// The server's disk fails every write and fsync with an I/O error
    /// (the power stays on) until the end; a server that stopped on the
    /// error is restarted then.
    DiskError,
}

impl FaultKind {
    pub const ALL: [FaultKind; 12] = [
        FaultKind::Partition,
        FaultKind::Isolate,
        FaultKind::Bridge,
        FaultKind::Clog,
        FaultKind::Latency,
        FaultKind::PacketLoss,
        FaultKind::Crash,
        FaultKind::PowerLoss,
        FaultKind::Pause,
        FaultKind::ClockStall,
        FaultKind::ClockSkew,
        FaultKind::DiskError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Isolate => "isolate",
            FaultKind::Bridge => "bridge",
            FaultKind::Clog => "clog",
            FaultKind::Latency => "latency",
            FaultKind::PacketLoss => "packet_loss",
            FaultKind::Crash => "crash",
            FaultKind::PowerLoss => "power_loss",
            FaultKind::Pause => "pause",
            FaultKind::ClockStall => "clock_stall",
            FaultKind::ClockSkew => "clock_skew",
            FaultKind::DiskError => "disk_error",
        }
    }
    /// Faults that hit the server (a random target means the server).
    pub fn server_only(self) -> bool {
        matches!(
            self,
            FaultKind::Crash
                | FaultKind::PowerLoss
                | FaultKind::ClockStall
                | FaultKind::ClockSkew
                | FaultKind::DiskError
        )
    }
    /// Faults that kill the server process (they must not overlap).
    pub fn kills_server(self) -> bool {
        matches!(self, FaultKind::Crash | FaultKind::PowerLoss)
    }
    /// Faults on the whole network (no target).
    pub fn network_wide(self) -> bool {
        matches!(self, FaultKind::Latency | FaultKind::PacketLoss)
    }
}

/// What a fault hits, as the scenario names it (`workload:NAME` and lists
/// are expanded). `Server`, `Leader`, `Follower` and `Random` are resolved
/// to nodes when the fault starts (see `runner`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// `"server"`: with one server, that server; with an ensemble, the
    /// leader (the same as `Leader`).
    Server,
    /// `"leader"`: the server whose status says "leader" when the fault
    /// starts (with one server: the server).
    Leader,
    /// `"follower"`: a server whose status says "follower", drawn from the
    /// seed (ensembles only).
    Follower,
    /// `"server:N"`: server N (1-based; `server<N>` at 10.0.0.N).
    ServerId(u32),
    /// `"servers"`: every server.
    Servers,
    /// 1-based index over all workload clients, in file order.
    Client(u32),
    /// Drawn from the seed among the targets the kind allows.
    Random,
}

impl Target {
    /// Names one or more servers (rather than clients or `random`).
    pub fn is_server(self) -> bool {
        matches!(
            self,
            Target::Server
                | Target::Leader
                | Target::Follower
                | Target::ServerId(_)
                | Target::Servers
        )
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Server => write!(f, "server"),
            Target::Leader => write!(f, "leader"),
            Target::Follower => write!(f, "follower"),
            Target::ServerId(n) => write!(f, "server:{n}"),
            Target::Servers => write!(f, "servers"),
            Target::Client(n) => write!(f, "client:{n}"),
            Target::Random => write!(f, "random"),
        }
    }
}

/// `target = "client:1"` or `target = ["client:1", "workload:reg"]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TargetSpec {
    One(String),
    Many(Vec<String>),
}

impl TargetSpec {
    fn items(&self) -> Vec<&str> {
        match self {
            TargetSpec::One(s) => vec![s.as_str()],
            TargetSpec::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// Which way a partition cuts, seen from its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Nothing passes either way.
    Both,
    /// Packets *to* the target are held (it still sends: its requests
    /// reach the server, the replies do not come back).
    In,
    /// Packets *from* the target are held.
    Out,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub at_ms: u64,
    pub duration_ms: u64,
    pub kind: FaultKind,
    /// Default: the server (none for network-wide kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetSpec>,
    /// `bridge`: the side cut off from `target`; `clog`: the link's
    /// receiving end (default: the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<TargetSpec>,
    /// `partition` only; default both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// `latency` only: `[lo, hi]`, each packet's delay drawn uniformly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<[u64; 2]>,
    /// `packet_loss` only: probability in (0, 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_rate: Option<f64>,
    /// `clock_skew` only: how far the server's wall clock jumps (+/-).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skew_ms: Option<i64>,
}

impl Fault {
    pub fn end_ms(&self) -> u64 {
        self.at_ms + self.duration_ms
    }
    pub fn direction(&self) -> Direction {
        self.direction.unwrap_or(Direction::Both)
    }
    /// A fault of `kind` with every optional key unset.
    pub fn new(at_ms: u64, duration_ms: u64, kind: FaultKind) -> Fault {
        Fault {
            at_ms,
            duration_ms,
            kind,
            target: None,
            peer: None,
            direction: None,
            latency_ms: None,
            loss_rate: None,
            skew_ms: None,
        }
    }
}

/// Faults drawn from the seed (swarm testing): which kinds are on for a
/// run, when, how long, and against what, all from the seed. After
/// `end_ms` the run is quiet, for the liveness check.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Swarm {
    /// The candidate kinds.
    pub kinds: Vec<FaultKind>,
    /// Enable each candidate kind with probability 1/2 per seed (at least
    /// one), so that runs differ in *which* faults interact; false: all.
    #[serde(default = "yes")]
    pub subset: bool,
    /// How many faults: a count (12) or a rate over the swarm phase ("0.5/s").
    pub faults: OpsSpec,
    #[serde(default)]
    pub start_ms: u64,
    /// End of the swarm phase: every drawn fault has healed by then.
    pub end_ms: u64,
    #[serde(default = "d_swarm_min")]
    pub min_duration_ms: u64,
    pub max_duration_ms: u64,
    /// A latency fault's upper bound is drawn from this range.
    #[serde(default = "d_swarm_latency")]
    pub latency_ms: [u64; 2],
    /// A packet-loss fault's rate is drawn from (0, loss_rate].
    #[serde(default = "d_swarm_loss")]
    pub loss_rate: f64,
    /// A clock skew is drawn from [-skew_ms, skew_ms].
    #[serde(default = "d_swarm_skew")]
    pub skew_ms: i64,
}

fn yes() -> bool {
    true
}
fn d_swarm_min() -> u64 {
    200
}
fn d_swarm_latency() -> [u64; 2] {
    [20, 300]
}
fn d_swarm_loss() -> f64 {
    0.2
}
fn d_swarm_skew() -> i64 {
    5_000
}

/// What the swarm drew for one seed.
#[derive(Debug, Clone, PartialEq)]
pub struct SwarmPlan {
    pub kinds: Vec<FaultKind>,
    pub faults: Vec<Fault>,
}

impl Swarm {
    fn count(&self) -> u64 {
        match &self.faults {
            OpsSpec::Count(n) => *n,
            OpsSpec::Rate(r) => {
                let per_s = parse_rate(r).unwrap_or(1.0);
                ((per_s * (self.end_ms - self.start_ms) as f64 / 1000.0).round() as u64).max(1)
            }
        }
    }

    /// Draw the faults for `seed` with `clients` workload clients and
    /// `servers` servers. With one server, its process faults (crash,
    /// power loss, pause of the server) never overlap each other; with an
    /// ensemble they name `leader`, `follower` or a `random` server and may
    /// overlap (the runner resolves them among the servers that are up, and
    /// lets at most f lose power at once). Everything else may overlap.
    pub fn plan(&self, seed: u64, clients: u32, servers: u32) -> SwarmPlan {
        use rand::{Rng, SeedableRng};
        type Rng8 = rand_chacha::ChaCha8Rng;
        let mut rng = Rng8::seed_from_u64(seed ^ 0x5357_4152_4d21);
        let mut kinds: Vec<FaultKind> = if self.subset {
            self.kinds
                .iter()
                .copied()
                .filter(|_| rng.gen_bool(0.5))
                .collect()
        } else {
            self.kinds.clone()
        };
        if kinds.is_empty() {
            kinds.push(self.kinds[rng.gen_range(0..self.kinds.len())]);
        }
        kinds.sort();
        kinds.dedup();
        let last_start = self.end_ms - self.min_duration_ms;
        let mut starts: Vec<u64> = (0..self.count())
            .map(|_| rng.gen_range(self.start_ms..=last_start))
            .collect();
        starts.sort();
        let ensemble = servers > 1;
        let mut server_busy_until = 0u64;
        let mut faults = Vec::new();
        for at in starts {
            let mut kind = kinds[rng.gen_range(0..kinds.len())];
            let dur = rng.gen_range(self.min_duration_ms..=self.max_duration_ms);
            let mut f = Fault::new(at, dur.min(self.end_ms - at), kind);
            let client = |rng: &mut Rng8| format!("client:{}", rng.gen_range(1..=clients.max(1)));
            // One server of an ensemble, named by role or drawn.
            let ensemble_server = |rng: &mut Rng8, random_ok: bool| -> String {
                let n = if random_ok { 3 } else { 2 };
                ["leader", "follower", "random"][rng.gen_range(0..n)].to_string()
            };
            // Two distinct servers of an ensemble, by id.
            let two_servers = |rng: &mut Rng8| {
                let a = rng.gen_range(1..=servers);
                let b = (a + rng.gen_range(1..servers) - 1) % servers + 1;
                (format!("server:{a}"), format!("server:{b}"))
            };
            let server = |rng: &mut Rng8| {
                if ensemble {
                    ensemble_server(rng, true)
                } else {
                    "server".to_string()
                }
            };
            if kind == FaultKind::Pause && clients > 0 && rng.gen_bool(0.5) {
                f.target = Some(TargetSpec::One(client(&mut rng)));
            } else if ensemble && (kind == FaultKind::Pause || kind.kills_server()) {
                // "random" would let a pause pick a client: name a role.
                let random_ok = kind != FaultKind::Pause;
                f.target = Some(TargetSpec::One(ensemble_server(&mut rng, random_ok)));
            } else if kind == FaultKind::Pause || kind.kills_server() {
                if at < server_busy_until {
                    if kind != FaultKind::Pause || clients == 0 {
                        continue;
                    }
                    f.target = Some(TargetSpec::One(client(&mut rng)));
                } else {
                    server_busy_until = f.end_ms() + 100;
                    f.target = Some(TargetSpec::One("server".into()));
                }
            }
            match kind {
                FaultKind::Partition | FaultKind::Isolate if clients == 0 => {
                    kind = FaultKind::Isolate;
                    f.kind = kind;
                    f.target = Some(TargetSpec::One(server(&mut rng)));
                }
                FaultKind::Partition => {
                    let who = if ensemble {
                        match rng.gen_range(0..20) {
                            0..=2 => "leader".to_string(),
                            3..=4 => "follower".to_string(),
                            _ => client(&mut rng),
                        }
                    } else if rng.gen_bool(0.2) {
                        "server".into()
                    } else {
                        client(&mut rng)
                    };
                    f.target = Some(TargetSpec::One(who));
                    f.direction = Some(match rng.gen_range(0..3) {
                        0 => Direction::Both,
                        1 => Direction::In,
                        _ => Direction::Out,
                    });
                }
                FaultKind::Isolate => {
                    f.target = Some(TargetSpec::One("random".into()));
                }
                FaultKind::Bridge if ensemble && rng.gen_bool(0.5) => {
                    // Two servers cannot talk; the others reach both.
                    let (a, b) = two_servers(&mut rng);
                    f.target = Some(TargetSpec::One(a));
                    f.peer = Some(TargetSpec::One(b));
                }
                FaultKind::Bridge | FaultKind::Clog if clients == 0 => continue,
                FaultKind::Bridge => {
                    let mut side: Vec<String> = (1..=clients)
                        .filter(|_| rng.gen_bool(0.5))
                        .map(|c| format!("client:{c}"))
                        .collect();
                    if side.is_empty() {
                        side.push(client(&mut rng));
                    }
                    f.target = Some(TargetSpec::Many(side));
                    f.peer = Some(TargetSpec::One("server".into()));
                }
                FaultKind::Clog => {
                    let (a, b) = if ensemble && rng.gen_bool(0.3) {
                        two_servers(&mut rng)
                    } else {
                        let c = client(&mut rng);
                        if rng.gen_bool(0.5) {
                            (c, "server".to_string())
                        } else {
                            ("server".to_string(), c)
                        }
                    };
                    f.target = Some(TargetSpec::One(a));
                    f.peer = Some(TargetSpec::One(b));
                }
                FaultKind::Latency => {
                    let hi = rng.gen_range(self.latency_ms[0]..=self.latency_ms[1]);
                    f.latency_ms = Some([(hi / 4).max(1), hi.max(1)]);
                }
                FaultKind::PacketLoss => {
                    f.loss_rate = Some(rng.gen_range(0.01..=self.loss_rate.max(0.01)));
                }
                FaultKind::ClockSkew => {
                    let mut skew = rng.gen_range(-self.skew_ms..=self.skew_ms);
                    if skew == 0 {
                        skew = 1;
                    }
                    f.skew_ms = Some(skew);
                    f.target = Some(TargetSpec::One(server(&mut rng)));
                }
                FaultKind::ClockStall | FaultKind::DiskError => {
                    f.target = Some(TargetSpec::One(server(&mut rng)))
                }
                FaultKind::Crash | FaultKind::PowerLoss | FaultKind::Pause => {}
            }
            faults.push(f);
        }
        SwarmPlan { kinds, faults }
    }
}

pub const CHECKS: [&str; 9] = [
    "linearizability",
    "session_order",
    "durability",
    "liveness",
    "watch",
    "ephemeral",
    "lock",
    crate::check::replica::NAME,
    crate::check::zab::NAME,
];
/// Checks that run only when `[check] enable` names them (not by default).
pub const OPT_IN_CHECKS: [&str; 1] = [crate::check::wgl::NAME];
/// Checks that always run, whatever `[check] enable` says (a
/// `[regression] caught_by` may name them).
pub const ALWAYS_CHECKS: [&str; 2] = ["well_formed", "server_health"];

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Checks {
    #[serde(default = "all_checks")]
    pub enable: Vec<String>,
}

fn all_checks() -> Vec<String> {
    CHECKS.iter().map(|s| s.to_string()).collect()
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            enable: all_checks(),
        }
    }
}

impl Checks {
    pub fn enabled(&self, name: &str) -> bool {
        self.enable.iter().any(|c| c == name)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Liveness {
    #[serde(default = "d_heal")]
    pub heal_within_ms: u64,
}

fn d_heal() -> u64 {
    8_000
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            heal_within_ms: d_heal(),
        }
    }
}

impl Scenario {
    /// Read and parse a scenario file; its name is the file stem.
    /// The same scenario on `n` servers (the CLI's `--servers`): 1, 3 or
    /// 5, and every fault's targets must still make sense.
    pub fn with_servers(mut self, n: u32) -> Result<Scenario, String> {
        if ![1, 3, 5].contains(&n) {
            return Err(format!("--servers {n}: expected 1, 3 or 5"));
        }
        self.cluster.servers = n;
        for (i, f) in self.faults.iter().enumerate() {
            for spec in [&f.target, &f.peer].into_iter().flatten() {
                self.parse_targets(spec)
                    .map_err(|e| format!("--servers {n}: fault {}: {e}", i + 1))?;
            }
        }
        Ok(self)
    }

    pub fn load(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: file.clone(),
            line: None,
            key: None,
            message: format!("cannot read: {e}"),
        })?;
        let mut s = Scenario::parse(&text, &file)?;
        s.name = path
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".into());
        Ok(s)
    }

    /// The scenario as TOML that [`Scenario::parse`] reads back to an equal
    /// scenario (every key explicit, defaults included; the name is not
    /// part of the text).
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string(self).map_err(|e| format!("cannot write {} as TOML: {e}", self.name))
    }

    /// Parse and validate scenario text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
        let mut s: Scenario = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|sp| line_of(text, sp.start));
            ScenarioError {
                file: file.into(),
                line,
                key: None,
                message: e.message().trim().to_string(),
            }
        })?;
        s.name = "scenario".into();
        s.validate()
            .map_err(|(table, key, message)| ScenarioError {
                file: file.into(),
                line: locate(text, table, &key),
                key: Some(match table {
                    Some((t, i)) if is_array(t) => format!("{t}[{}].{key}", i + 1),
                    Some((t, _)) => format!("{t}.{key}"),
                    None => key.clone(),
                }),
                message,
            })?;
        Ok(s)
    }

    /// Every workload client, in order: (workload index, client number within it).
    pub fn clients(&self) -> Vec<(usize, u32)> {
        let mut v = Vec::new();
        for (i, w) in self.workloads.iter().enumerate() {
            for c in 0..w.clients {
                v.push((i, c));
            }
        }
        v
    }

    pub fn workload_end_ms(&self, w: &Workload) -> u64 {
        w.duration_ms
            .unwrap_or(self.duration_ms)
            .min(self.duration_ms)
    }

    /// When the last fault ends at the latest (0 without faults); a
    /// swarm's faults all end by its `end_ms`.
    pub fn last_heal_ms(&self) -> u64 {
        let swarm = self.swarm.as_ref().map_or(0, |s| s.end_ms);
        self.faults
            .iter()
            .map(Fault::end_ms)
            .max()
            .unwrap_or(0)
            .max(swarm)
    }

    /// The faults of a run with `seed`: the scripted ones, then the swarm's
    /// (numbered after them), and the kinds the swarm enabled.
    pub fn faults_for(&self, seed: u64) -> (Vec<Fault>, Option<Vec<FaultKind>>) {
        let mut faults = self.faults.clone();
        let kinds = self.swarm.as_ref().map(|sw| {
            let plan = sw.plan(seed, self.clients().len() as u32, self.cluster.servers);
            faults.extend(plan.faults);
            plan.kinds
        });
        (faults, kinds)
    }

    /// The nodes `spec` names: `server`, `leader`, `follower` (ensembles),
    /// `server:N`, `servers`, `client:N`, `workload:NAME` (its clients),
    /// `random`, or a list.
    pub fn parse_targets(&self, spec: &TargetSpec) -> Result<Vec<Target>, String> {
        let n_clients = self.clients().len() as u32;
        let n_servers = self.cluster.servers;
        let mut out = Vec::new();
        let items = spec.items();
        if items.is_empty() {
            return Err("an empty list names no node".into());
        }
        for item in &items {
            match *item {
                "server" => out.push(Target::Server),
                "leader" => out.push(Target::Leader),
                "servers" => out.push(Target::Servers),
                "follower" if n_servers > 1 => out.push(Target::Follower),
                "follower" => {
                    return Err(format!(
                        "\"follower\": this cluster has no follower (servers = {n_servers}: the one server is the leader; followers come with ensembles)"
                    ))
                }
                "random" if items.len() == 1 => out.push(Target::Random),
                "random" => return Err("\"random\" cannot be part of a list".into()),
                s => {
                    if let Some(n) = s.strip_prefix("server:") {
                        match n.parse::<u32>() {
                            Ok(i) if i >= 1 && i <= n_servers => out.push(Target::ServerId(i)),
                            _ => {
                                return Err(format!(
                                    "server:{n}: the cluster has {n_servers} server(s), server:1..server:{n_servers}"
                                ))
                            }
                        }
                        continue;
                    }
                    if let Some(name) = s.strip_prefix("workload:") {
                        let mut first = 1u32;
                        let mut found = false;
                        for w in &self.workloads {
                            if w.name == name {
                                out.extend((first..first + w.clients).map(Target::Client));
                                found = true;
                            }
                            first += w.clients;
                        }
                        if !found {
                            return Err(format!("{s:?}: no workload named {name:?}"));
                        }
                        continue;
                    }
                    let n: Option<u32> = s.strip_prefix("client:").and_then(|n| n.parse().ok());
                    match n {
                        Some(n) if n >= 1 && n <= n_clients => out.push(Target::Client(n)),
                        Some(n) if n >= 1 => {
                            return Err(format!(
                                "client:{n}, but the workloads have {n_clients} clients"
                            ))
                        }
                        _ => {
                            return Err(format!(
                                "{s:?}: expected \"server\", \"leader\", \"follower\", \"server:N\", \"servers\", \"client:N\", \"workload:NAME\", \"random\" or a list of them"
                            ))
                        }
                    }
                }
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(d) = out.iter().find(|t| !seen.insert(**t)) {
            return Err(format!("{d} is named twice"));
        }
        Ok(out)
    }

    /// A validated fault's targets (default: the server; none for
    /// network-wide kinds).
    pub fn targets(&self, f: &Fault) -> Vec<Target> {
        match &f.target {
            Some(t) => self.parse_targets(t).expect("validated"),
            None if f.kind.network_wide() => Vec::new(),
            None => vec![Target::Server],
        }
    }

    /// A validated fault's `peer` (default: the server).
    pub fn peers(&self, f: &Fault) -> Vec<Target> {
        match &f.peer {
            Some(t) => self.parse_targets(t).expect("validated"),
            None => vec![Target::Server],
        }
    }

    fn validate(&self) -> Result<(), Invalid> {
        let top = |k: &str, m: String| Err((None, k.to_string(), m));
        let cl = |k: &str, m: String| Err((Some(("cluster", 0)), k.to_string(), m));
        if self.duration_ms == 0 || self.duration_ms > 24 * 3600 * 1000 {
            return top("duration_ms", "must be between 1 and 86400000".into());
        }
        let c = &self.cluster;
        if ![1, 3, 5].contains(&c.servers) {
            return cl(
                "servers",
                format!(
                    "{} servers: must be 1 (standalone), 3 or 5 (an ensemble)",
                    c.servers
                ),
            );
        }
        if c.init_limit == 0 || c.init_limit > 10_000 {
            return cl("init_limit", "must be between 1 and 10000 ticks".into());
        }
        if let Some([lo, hi]) = c.fsync_ms {
            if lo > hi || hi > 10_000 {
                return cl(
                    "fsync_ms",
                    format!("[{lo}, {hi}]: expected [lo, hi] with lo <= hi <= 10000"),
                );
            }
        }
        if c.sync_limit == 0 || c.sync_limit > 10_000 {
            return cl("sync_limit", "must be between 1 and 10000 ticks".into());
        }
        if c.tick_ms == 0 {
            return cl("tick_ms", "must be > 0".into());
        }
        if c.min_session_timeout_ms > c.max_session_timeout_ms {
            return cl(
                "min_session_timeout_ms",
                "must not exceed max_session_timeout_ms".into(),
            );
        }
        if c.snap_count < 2 {
            return cl("snap_count", "must be >= 2".into());
        }
        self.validate_workloads()?;
        self.validate_faults()?;
        for name in &self.check.enable {
            if !CHECKS.contains(&name.as_str()) && !OPT_IN_CHECKS.contains(&name.as_str()) {
                return Err((
                    Some(("check", 0)),
                    "enable".into(),
                    format!(
                        "unknown check {name:?}; known: {}, {}",
                        CHECKS.join(", "),
                        OPT_IN_CHECKS.join(", ")
                    ),
                ));
            }
        }
        self.validate_bugs()?;
        if self.liveness.heal_within_ms == 0 {
            return Err((
                Some(("liveness", 0)),
                "heal_within_ms".into(),
                "must be > 0".into(),
            ));
        }
        if self.check.enabled("liveness") {
            let need = self.last_heal_ms() + self.liveness.heal_within_ms;
            for w in &self.workloads {
                if self.workload_end_ms(w) < need {
                    return Err((
                        Some(("liveness", 0)),
                        "heal_within_ms".into(),
                        format!(
                            "workload {:?} ends at {} ms, before the last fault's end + heal_within_ms ({need} ms): liveness could not be observed",
                            w.name,
                            self.workload_end_ms(w)
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_bugs(&self) -> Result<(), Invalid> {
        let e = |t: &'static str, k: &str, m: String| Err((Some((t, 0)), k.to_string(), m));
        #[cfg(madsim)]
        for id in &self.bugs.enable {
            if zkcore::bugs::Bug::from_id(id).is_none() {
                let known: Vec<&str> = zkcore::bugs::Bug::ALL.iter().map(|b| b.id()).collect();
                return e(
                    "bugs",
                    "enable",
                    format!("unknown bug switch {id:?}; known: {}", known.join(", ")),
                );
            }
        }
        #[cfg(not(madsim))]
        if let Some(id) = self.bugs.enable.first() {
            return e(
                "bugs",
                "enable",
                format!("{id}: bug switches exist only in the simulated build"),
            );
        }
        if let Some(r) = &self.regression {
            if r.caught_by.is_empty() {
                return e("regression", "caught_by", "name at least one check".into());
            }
            for c in &r.caught_by {
                if ALWAYS_CHECKS.contains(&c.as_str()) {
                    continue;
                }
                if !CHECKS.contains(&c.as_str()) && !OPT_IN_CHECKS.contains(&c.as_str()) {
                    return e("regression", "caught_by", format!("unknown check {c:?}"));
                }
                if !self.check.enabled(c) {
                    return e(
                        "regression",
                        "caught_by",
                        format!("check {c:?} is not enabled"),
                    );
                }
            }
        }
        Ok(())
    }

    /// The bug switches that are on (validated at parse time).
    #[cfg(madsim)]
    pub fn bug_switches(&self) -> Vec<zkcore::bugs::Bug> {
        self.bugs
            .enable
            .iter()
            .filter_map(|id| zkcore::bugs::Bug::from_id(id))
            .collect()
    }

    fn validate_workloads(&self) -> Result<(), Invalid> {
        let mut names = std::collections::BTreeSet::new();
        for (i, w) in self.workloads.iter().enumerate() {
            let e = |k: &str, m: String| Err((Some(("workload", i)), k.to_string(), m));
            let ok_name = !w.name.is_empty()
                && w.name.len() <= 32
                && w.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok_name {
                return e("name", "1-32 characters of [A-Za-z0-9_-]".into());
            }
            if !names.insert(w.name.clone()) {
                return e("name", format!("duplicate workload name {:?}", w.name));
            }
            if w.clients == 0 || w.clients > 200 {
                return e("clients", "must be between 1 and 200".into());
            }
            if w.keys == 0 || w.keys > 1000 {
                return e("keys", "must be between 1 and 1000".into());
            }
            match &w.ops {
                OpsSpec::Count(0) => return e("ops", "must be > 0".into()),
                OpsSpec::Rate(r) if parse_rate(r).is_none() => {
                    return e(
                        "ops",
                        format!("{r:?}: expected a count (200) or a rate (\"20/s\")"),
                    )
                }
                _ => {}
            }
            if let Some(d) = w.duration_ms {
                if d == 0 || d > self.duration_ms {
                    return e(
                        "duration_ms",
                        "must be between 1 and the scenario's duration_ms".into(),
                    );
                }
            }
            if w.session_timeout_ms == 0 {
                return e("session_timeout_ms", "must be > 0".into());
            }
            if w.request_timeout_ms == 0 {
                return e("request_timeout_ms", "must be > 0".into());
            }
        }
        Ok(())
    }

    fn validate_faults(&self) -> Result<(), Invalid> {
        for (i, f) in self.faults.iter().enumerate() {
            self.validate_fault(f)
                .map_err(|(k, m)| (Some(("fault", i)), k.to_string(), m))?;
        }
        // Process faults on one server must not overlap (kill before
        // restart; no kill of a paused node). With one server every
        // crash, power loss and pause of it counts; with an ensemble, those
        // that name the same server by id (`leader`, `follower` and
        // `random` are resolved when they start, among the servers up).
        let mut crashes: Vec<(usize, &Fault, Vec<u32>)> = self
            .faults
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let ids = self.process_fault_servers(f);
                (!ids.is_empty()).then_some((i, f, ids))
            })
            .collect();
        crashes.sort_by_key(|(_, f, _)| f.at_ms);
        for (j, (i, f, ids)) in crashes.iter().enumerate() {
            let clash = crashes[..j]
                .iter()
                .find(|(_, g, gids)| f.at_ms < g.end_ms() && gids.iter().any(|s| ids.contains(s)));
            if let Some((gi, g, _)) = clash {
                return Err((
                    Some(("fault", *i)),
                    "at_ms".into(),
                    format!(
                        "overlaps fault {} ({} until {} ms): crashes, power losses and pauses of a server must not overlap",
                        gi + 1,
                        g.kind.name(),
                        g.end_ms()
                    ),
                ));
            }
        }
        if let Some(sw) = &self.swarm {
            self.validate_swarm(sw)
                .map_err(|(k, m)| (Some(("swarm", 0)), k.to_string(), m))?;
        }
        Ok(())
    }

    /// The servers (by id) a crash, power loss or pause is statically known
    /// to hit, for the overlap rule: with one server, the server if the
    /// fault may hit it; with an ensemble, the servers it names by id
    /// (`server:N`, `servers`). Empty for other faults.
    fn process_fault_servers(&self, f: &Fault) -> Vec<u32> {
        let targets = self.targets(f);
        let named = |t: &Target| t.is_server() || f.kind.kills_server();
        if !(f.kind.kills_server() || f.kind == FaultKind::Pause) {
            return Vec::new();
        }
        if self.cluster.servers == 1 {
            return if targets.iter().any(named) {
                vec![1]
            } else {
                Vec::new()
            };
        }
        let mut ids = Vec::new();
        for t in &targets {
            match t {
                Target::ServerId(i) => ids.push(*i),
                Target::Servers => ids.extend(1..=self.cluster.servers),
                _ => {}
            }
        }
        ids
    }

    /// One fault: (key, message) on error.
    fn validate_fault(&self, f: &Fault) -> Result<(), (&'static str, String)> {
        let kind = f.kind.name();
        if f.duration_ms == 0 {
            return Err(("duration_ms", "must be > 0".into()));
        }
        if f.end_ms() > self.duration_ms {
            return Err((
                "duration_ms",
                format!(
                    "fault ends at {} ms, after the scenario's duration_ms ({})",
                    f.end_ms(),
                    self.duration_ms
                ),
            ));
        }
        let only = |key: &'static str, set: bool, ok: bool, which: &str| {
            if set && !ok {
                Err((key, format!("applies to {which} faults only, not {kind}")))
            } else {
                Ok(())
            }
        };
        only(
            "direction",
            f.direction.is_some(),
            f.kind == FaultKind::Partition,
            "partition",
        )?;
        let peer_ok = matches!(f.kind, FaultKind::Bridge | FaultKind::Clog);
        only("peer", f.peer.is_some(), peer_ok, "bridge and clog")?;
        only(
            "latency_ms",
            f.latency_ms.is_some(),
            f.kind == FaultKind::Latency,
            "latency",
        )?;
        let loss_ok = f.kind == FaultKind::PacketLoss;
        only("loss_rate", f.loss_rate.is_some(), loss_ok, "packet_loss")?;
        only(
            "skew_ms",
            f.skew_ms.is_some(),
            f.kind == FaultKind::ClockSkew,
            "clock_skew",
        )?;
        match f.kind {
            FaultKind::Latency => match f.latency_ms {
                None => return Err(("latency_ms", "required: [lo, hi] in ms".into())),
                Some([lo, hi]) if lo > hi || hi == 0 || hi > 60_000 => {
                    return Err(("latency_ms", "need 0 <= lo <= hi, 0 < hi <= 60000".into()))
                }
                _ => {}
            },
            FaultKind::PacketLoss => match f.loss_rate {
                Some(r) if r > 0.0 && r < 1.0 => {}
                _ => return Err(("loss_rate", "required, in (0, 1)".into())),
            },
            FaultKind::ClockSkew => match f.skew_ms {
                Some(s) if s != 0 && s.abs() <= 86_400_000 => {}
                _ => return Err(("skew_ms", "required, non-zero, at most a day".into())),
            },
            _ => {}
        }
        if f.kind.network_wide() {
            if f.target.is_some() {
                return Err((
                    "target",
                    format!("a {kind} fault hits the whole network: no target"),
                ));
            }
            return Ok(());
        }
        let targets = match &f.target {
            Some(t) => self.parse_targets(t).map_err(|m| ("target", m))?,
            None => vec![Target::Server],
        };
        let has_client = targets.iter().any(|t| matches!(t, Target::Client(_)));
        if f.kind.server_only() && has_client {
            return Err((
                "target",
                format!("a {kind} fault hits servers, not clients"),
            ));
        }
        let n_clients = self.clients().len();
        let needs_client = matches!(
            f.kind,
            FaultKind::Partition | FaultKind::Bridge | FaultKind::Clog
        );
        if needs_client && targets == [Target::Random] && n_clients == 0 {
            return Err(("target", format!("a random {kind} needs a client")));
        }
        if peer_ok {
            let peers = match &f.peer {
                Some(t) => self.parse_targets(t).map_err(|m| ("peer", m))?,
                None => vec![Target::Server],
            };
            if peers.contains(&Target::Random) || targets.contains(&Target::Random) {
                return Err((
                    "peer",
                    format!("a {kind} needs named nodes on both sides, not random"),
                ));
            }
            if let Some(t) = peers.iter().find(|p| targets.contains(p)) {
                return Err(("peer", format!("{t} is on both sides")));
            }
            let one = self.cluster.servers == 1;
            if one && targets.iter().any(|t| t.is_server()) && peers.iter().any(|t| t.is_server()) {
                return Err(("peer", "the server is on both sides".into()));
            }
            let single = |v: &[Target]| v.len() == 1 && v[0] != Target::Servers;
            if f.kind == FaultKind::Clog && !(single(&targets) && single(&peers)) {
                return Err(("peer", "a clog cuts one link: one target, one peer".into()));
            }
            if f.kind == FaultKind::Bridge
                && !targets.iter().any(|t| t.is_server())
                && !peers.iter().any(|t| t.is_server())
            {
                return Err((
                    "peer",
                    "a bridge needs a server on one side (clients never talk to each other)".into(),
                ));
            }
        }
        Ok(())
    }

    fn validate_swarm(&self, sw: &Swarm) -> Result<(), (&'static str, String)> {
        if sw.kinds.is_empty() {
            return Err(("kinds", "name at least one fault kind".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(k) = sw.kinds.iter().find(|k| !seen.insert(**k)) {
            return Err(("kinds", format!("{} is listed twice", k.name())));
        }
        let n_clients = self.clients().len();
        if n_clients == 0 {
            if let Some(k) = sw
                .kinds
                .iter()
                .find(|k| matches!(k, FaultKind::Bridge | FaultKind::Clog))
            {
                return Err(("kinds", format!("{} needs a client", k.name())));
            }
        }
        if sw.end_ms > self.duration_ms || sw.start_ms >= sw.end_ms {
            return Err((
                "end_ms",
                "need start_ms < end_ms <= the scenario's duration_ms".into(),
            ));
        }
        if sw.min_duration_ms == 0 || sw.min_duration_ms > sw.max_duration_ms {
            return Err((
                "min_duration_ms",
                "need 0 < min_duration_ms <= max_duration_ms".into(),
            ));
        }
        if sw.max_duration_ms > sw.end_ms - sw.start_ms {
            return Err((
                "max_duration_ms",
                "longer than the swarm phase (end_ms - start_ms)".into(),
            ));
        }
        match &sw.faults {
            OpsSpec::Count(n) if *n == 0 || *n > 1000 => {
                return Err(("faults", "a count must be between 1 and 1000".into()))
            }
            OpsSpec::Rate(r) if parse_rate(r).is_none() => {
                return Err((
                    "faults",
                    format!("{r:?}: expected a count (12) or a rate (\"0.5/s\")"),
                ))
            }
            _ => {}
        }
        if sw.count() > 1000 {
            return Err(("faults", "more than 1000 faults".into()));
        }
        let [lo, hi] = sw.latency_ms;
        if lo > hi || hi == 0 || hi > 60_000 {
            return Err(("latency_ms", "need 0 <= lo <= hi, 0 < hi <= 60000".into()));
        }
        if !(sw.loss_rate > 0.0 && sw.loss_rate < 1.0) {
            return Err(("loss_rate", "must be in (0, 1)".into()));
        }
        if sw.skew_ms <= 0 || sw.skew_ms > 86_400_000 {
            return Err(("skew_ms", "must be in 1..=86400000".into()));
        }
        Ok(())
    }
}

/// A validation failure: (table and its index, key, message).
type Invalid = (Option<(&'static str, usize)>, String, String);

fn is_array(t: &str) -> bool {
    matches!(t, "workload" | "fault")
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Line of `key` in the top level (`table = None`), in `[table]`, or in the
/// `i`-th `[[table]]`. Best effort: the key's line, else the table header's.
fn locate(text: &str, table: Option<(&str, usize)>, key: &str) -> Option<usize> {
    let mut in_scope = table.is_none();
    let mut seen = 0usize;
    let mut header_line = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') {
            let name = line.trim_matches(|c| c == '[' || c == ']').trim();
            in_scope = match table {
                None => false,
                Some((t, i)) if is_array(t) => {
                    let hit = line.starts_with("[[") && name == t;
                    if hit {
                        seen += 1;
                    }
                    hit && seen == i + 1
                }
                Some((t, _)) => !line.starts_with("[[") && name == t,
            };
            if in_scope {
                header_line = Some(n + 1);
            }
            continue;
        }
        if in_scope {
            let k = line.split('=').next().unwrap_or("").trim();
            if k == key && line.contains('=') {
                return Some(n + 1);
            }
        }
    }
    header_line
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
duration_ms = 20000

[cluster]
tick_ms = 200

[[workload]]
name = "reg"
kind = "register"
clients = 3
ops = "20/s"

[[fault]]
at_ms = 2000
duration_ms = 3000
kind = "partition"
target = "client:2"

[liveness]
heal_within_ms = 5000
"#;

    #[test]
    fn parses_a_good_scenario() {
        let s = Scenario::parse(GOOD, "good.toml").unwrap();
        assert_eq!(s.cluster.tick_ms, 200);
        assert_eq!(s.workloads[0].ops(), Ops::PerSecond(20.0));
        assert_eq!(s.targets(&s.faults[0]), vec![Target::Client(2)]);
        assert_eq!(s.clients().len(), 3);
        assert!(s.check.enabled("durability"));
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let text = GOOD.replace("tick_ms = 200", "tick_ms = 200\ntick = 3");
        let e = Scenario::parse(&text, "f.toml").unwrap_err();
        assert_eq!(e.line, Some(6), "{e}");
        assert!(e.message.contains("unknown field `tick`"), "{e}");
        assert!(e.to_string().starts_with("f.toml:6: "), "{e}");
    }

    #[test]
    fn semantic_errors_name_the_key_and_line() {
        let text = GOOD.replace("client:2", "client:9");
        let e = Scenario::parse(&text, "f.toml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("fault[1].target"));
        assert_eq!(e.line, Some(17), "{e}");
        let text = GOOD.replace("\"20/s\"", "\"fast\"");
        let e = Scenario::parse(&text, "f.toml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("workload[1].ops"), "{e}");
        assert_eq!(e.line, Some(11), "{e}");
        let text = GOOD.replace("heal_within_ms = 5000", "heal_within_ms = 50000");
        let e = Scenario::parse(&text, "f.toml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("liveness.heal_within_ms"), "{e}");
    }

    #[test]
    fn cluster_sizes_and_overlapping_crashes() {
        for n in [2, 4, 7] {
            let text = GOOD.replace("tick_ms = 200", &format!("tick_ms = 200\nservers = {n}"));
            let e = Scenario::parse(&text, "f.toml").unwrap_err();
            assert_eq!(e.key.as_deref(), Some("cluster.servers"), "{e}");
            assert_eq!(e.line, Some(6), "{e}");
            assert!(e.message.contains("must be 1"), "{e}");
        }
        let text = GOOD.replace(
            "tick_ms = 200",
            "tick_ms = 200\nservers = 3\ninit_limit = 0",
        );
        let e = Scenario::parse(&text, "f.toml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("cluster.init_limit"), "{e}");
        assert_eq!(e.line, Some(7), "{e}");
        let s = Scenario::parse(
            &GOOD.replace("tick_ms = 200", "tick_ms = 200\nservers = 5"),
            "f",
        )
        .unwrap();
        assert_eq!(
            (
                s.cluster.servers,
                s.cluster.init_limit,
                s.cluster.sync_limit
            ),
            (5, 10, 5)
        );
        assert_eq!(s.cluster.max_power_loss(), 2);
        let crashes = |servers: u32, a: &str, b: &str| {
            let text = format!(
                "{}\n[[fault]]\nat_ms = 1000\nduration_ms = 500\nkind = \"crash\"\ntarget = \"{a}\"\n\n[[fault]]\nat_ms = 1200\nduration_ms = 500\nkind = \"power_loss\"\ntarget = \"{b}\"\n",
                GOOD.replace("tick_ms = 200", &format!("tick_ms = 200\nservers = {servers}"))
            );
            Scenario::parse(&text, "f.toml")
        };
        let e = crashes(1, "server", "leader").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("fault[3].at_ms"), "{e}");
        // An ensemble: the same server by id clashes; roles resolve at run time.
        let e = crashes(3, "server:2", "servers").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("fault[3].at_ms"), "{e}");
        crashes(3, "server:2", "server:3").unwrap();
        crashes(3, "leader", "follower").unwrap();
        crashes(3, "leader", "leader").unwrap();
    }

    #[test]
    fn ensemble_targets() {
        let three = GOOD.replace("tick_ms = 200", "tick_ms = 200\nservers = 3");
        let with = |extra: &str| {
            let text = format!("{three}\n[[fault]]\nat_ms = 1000\nduration_ms = 500\n{extra}\n");
            Scenario::parse(&text, "f.toml")
        };
        let s = with("kind = \"pause\"\ntarget = \"follower\"").unwrap();
        assert_eq!(s.targets(&s.faults[1]), vec![Target::Follower]);
        let s = with("kind = \"partition\"\ntarget = [\"server:1\", \"client:2\"]").unwrap();
        assert_eq!(
            s.targets(&s.faults[1]),
            vec![Target::ServerId(1), Target::Client(2)]
        );
        let s = with("kind = \"bridge\"\ntarget = \"server:1\"\npeer = \"server:2\"").unwrap();
        assert_eq!(s.peers(&s.faults[1]), vec![Target::ServerId(2)]);
        let e = with("kind = \"crash\"\ntarget = \"server:4\"").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("fault[2].target"), "{e}");
        assert!(e.message.contains("3 server(s)"), "{e}");
        let e = with("kind = \"clog\"\ntarget = \"servers\"\npeer = \"client:1\"").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("fault[2].peer"), "{e}");
        let e = with("kind = \"bridge\"\ntarget = \"client:1\"\npeer = \"client:2\"").unwrap_err();
        assert!(e.message.contains("needs a server"), "{e}");
        // With one server, "server" and "leader" are the same node.
        let e = Scenario::parse(
            &format!("{GOOD}\n[[fault]]\nat_ms = 1000\nduration_ms = 500\nkind = \"bridge\"\ntarget = \"server\"\npeer = \"leader\"\n"),
            "f.toml",
        )
        .unwrap_err();
        assert!(e.message.contains("both sides"), "{e}");
    }

    #[test]
    fn wrong_type_has_a_line() {
        let text = GOOD.replace("clients = 3", "clients = \"three\"");
        let e = Scenario::parse(&text, "f.toml").unwrap_err();
        assert_eq!(e.line, Some(10), "{e}");
    }

    #[test]
    fn new_fault_keys_are_checked_with_file_line_and_key() {
        let err = |extra: &str| {
            let text = format!("{GOOD}\n[[fault]]\nat_ms = 1000\nduration_ms = 500\n{extra}\n");
            Scenario::parse(&text, "f.toml").unwrap_err()
        };
        let e = err("kind = \"pause\"\ntarget = \"follower\"");
        assert_eq!(e.key.as_deref(), Some("fault[2].target"), "{e}");
        assert_eq!(e.line, Some(26), "{e}");
        assert!(
            e.to_string().starts_with(
                "f.toml:26: fault[2].target: \"follower\": this cluster has no follower"
            ),
            "{e}"
        );
        let e = err("kind = \"crash\"\ndirection = \"in\"");
        assert_eq!(e.key.as_deref(), Some("fault[2].direction"), "{e}");
        let e = err("kind = \"latency\"");
        assert_eq!(e.key.as_deref(), Some("fault[2].latency_ms"), "{e}");
        let e = err("kind = \"latency\"\nlatency_ms = [5, 50]\ntarget = \"server\"");
        assert_eq!(e.key.as_deref(), Some("fault[2].target"), "{e}");
        let e = err("kind = \"bridge\"\ntarget = \"client:1\"\npeer = \"client:2\"");
        assert_eq!(e.key.as_deref(), Some("fault[2].peer"), "{e}");
        let e = err("kind = \"clock_stall\"\ntarget = \"client:1\"");
        assert_eq!(e.key.as_deref(), Some("fault[2].target"), "{e}");
        let e = err("kind = \"partition\"\ntarget = [\"client:1\", \"workload:nope\"]");
        assert!(e.message.contains("no workload named"), "{e}");
        let ok = format!("{GOOD}\n[[fault]]\nat_ms = 1000\nduration_ms = 500\nkind = \"partition\"\ntarget = [\"workload:reg\"]\ndirection = \"out\"\n");
        let s = Scenario::parse(&ok, "f.toml").unwrap();
        assert_eq!(s.targets(&s.faults[1]).len(), 3);
        let e = Scenario::parse(&format!("{GOOD}\n[swarm]\nkinds = [\"crash\"]\nfaults = 3\nend_ms = 9000\nmax_duration_ms = 500\nrate = 2\n"), "f.toml").unwrap_err();
        assert!(e.message.contains("unknown field `rate`"), "{e}");
        let e = Scenario::parse(&format!("{GOOD}\n[swarm]\nkinds = [\"crash\"]\nfaults = 3\nend_ms = 90000\nmax_duration_ms = 500\n"), "f.toml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("swarm.end_ms"), "{e}");
    }
}
