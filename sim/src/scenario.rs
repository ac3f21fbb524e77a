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
//! - every fault lies inside `[0, duration_ms]` and names a target that exists;
//! - crash/power-loss faults on the server do not overlap;
//! - with liveness enabled, every workload runs at least `heal_within_ms`
//!   past the end of the last fault, so "recovered in time" is observable.

use serde::Deserialize;
use std::fmt;
use std::path::Path;

/// A scenario error. Display: `file:line: key: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: String,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(k) = &self.key {
            write!(f, ": {k}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Filled from the file name, not from the TOML.
    #[serde(skip)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Simulated length of the workload phase (faults and workloads live in it).
    pub duration_ms: u64,
    #[serde(default)]
    pub cluster: Cluster,
    #[serde(default, rename = "workload")]
    pub workloads: Vec<Workload>,
    #[serde(default, rename = "fault")]
    pub faults: Vec<Fault>,
    #[serde(default)]
    pub check: Checks,
    #[serde(default)]
    pub liveness: Liveness,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
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

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            servers: 1,
            tick_ms: d_tick(),
            min_session_timeout_ms: d_min_st(),
            max_session_timeout_ms: d_max_st(),
            snap_count: d_snap(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Deserialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Clog the links between the target and the server (a client:
    /// that client's links; the server: every client's).
    Partition,
    /// Clog every link of the target node.
    Isolate,
    /// Kill the server; unsynced writes vanish or are torn; restart after.
    Crash,
    /// Power fails during the server's next fsync (which fails); the
    /// server dies; unsynced writes vanish or are torn; restart after.
    PowerLoss,
    /// Stop scheduling the target's tasks; resume after.
    Pause,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Isolate => "isolate",
            FaultKind::Crash => "crash",
            FaultKind::PowerLoss => "power_loss",
            FaultKind::Pause => "pause",
        }
    }
    fn server_only(self) -> bool {
        matches!(self, FaultKind::Crash | FaultKind::PowerLoss)
    }
}

/// What a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Server,
    /// 1-based index over all workload clients, in file order.
    Client(u32),
    /// Drawn from the seed among the targets the kind allows.
    Random,
}

impl Target {
    pub fn parse(s: &str) -> Option<Target> {
        match s {
            "server" | "server:1" => Some(Target::Server),
            "random" => Some(Target::Random),
            _ => {
                let n: u32 = s.strip_prefix("client:")?.parse().ok()?;
                (n >= 1).then_some(Target::Client(n))
            }
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Server => write!(f, "server"),
            Target::Client(n) => write!(f, "client:{n}"),
            Target::Random => write!(f, "random"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub at_ms: u64,
    pub duration_ms: u64,
    pub kind: FaultKind,
    #[serde(default = "d_target")]
    pub target: String,
}

fn d_target() -> String {
    "server".into()
}

impl Fault {
    pub fn target(&self) -> Target {
        Target::parse(&self.target).unwrap_or(Target::Server)
    }
    pub fn end_ms(&self) -> u64 {
        self.at_ms + self.duration_ms
    }
}

pub const CHECKS: [&str; 7] = [
    "linearizability",
    "session_order",
    "durability",
    "liveness",
    "watch",
    "ephemeral",
    "lock",
];
/// Checks that run only when `[check] enable` names them (not by default).
pub const OPT_IN_CHECKS: [&str; 1] = [crate::check::wgl::NAME];

#[derive(Debug, Clone, PartialEq, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Deserialize)]
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

    /// When the last fault ends (0 without faults).
    pub fn last_heal_ms(&self) -> u64 {
        self.faults.iter().map(Fault::end_ms).max().unwrap_or(0)
    }

    fn validate(&self) -> Result<(), Invalid> {
        let top = |k: &str, m: String| Err((None, k.to_string(), m));
        let cl = |k: &str, m: String| Err((Some(("cluster", 0)), k.to_string(), m));
        if self.duration_ms == 0 || self.duration_ms > 24 * 3600 * 1000 {
            return top("duration_ms", "must be between 1 and 86400000".into());
        }
        let c = &self.cluster;
        if c.servers != 1 {
            return cl(
                "servers",
                format!(
                    "{} servers: only servers = 1 is supported so far (ensembles come with ZAB)",
                    c.servers
                ),
            );
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
        let n_clients = self.clients().len() as u32;
        for (i, f) in self.faults.iter().enumerate() {
            let e = |k: &str, m: String| Err((Some(("fault", i)), k.to_string(), m));
            if f.duration_ms == 0 {
                return e("duration_ms", "must be > 0".into());
            }
            if f.end_ms() > self.duration_ms {
                return e(
                    "duration_ms",
                    format!(
                        "fault ends at {} ms, after the scenario's duration_ms ({})",
                        f.end_ms(),
                        self.duration_ms
                    ),
                );
            }
            let Some(t) = Target::parse(&f.target) else {
                return e(
                    "target",
                    format!(
                        "{:?}: expected \"server\", \"client:N\" or \"random\"",
                        f.target
                    ),
                );
            };
            if let Target::Client(n) = t {
                if n > n_clients {
                    return e(
                        "target",
                        format!("client:{n}, but the workloads have {n_clients} clients"),
                    );
                }
                if f.kind.server_only() {
                    return e(
                        "target",
                        format!("a {} fault hits the server, not a client", f.kind.name()),
                    );
                }
            }
            if f.kind == FaultKind::Partition && t == Target::Random && n_clients == 0 {
                return e("target", "random partition needs a client".into());
            }
        }
        // Crashes of the one server must not overlap (kill before restart).
        let mut crashes: Vec<(usize, &Fault)> = self
            .faults
            .iter()
            .enumerate()
            .filter(|(_, f)| f.kind.server_only())
            .collect();
        crashes.sort_by_key(|(_, f)| f.at_ms);
        for w in crashes.windows(2) {
            if w[1].1.at_ms < w[0].1.end_ms() {
                return Err((
                    Some(("fault", w[1].0)),
                    "at_ms".into(),
                    format!(
                        "overlaps fault {} ({} until {} ms): server crashes must not overlap",
                        w[0].0 + 1,
                        w[0].1.kind.name(),
                        w[0].1.end_ms()
                    ),
                ));
            }
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
        assert_eq!(s.faults[0].target(), Target::Client(2));
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
    fn rejects_ensembles_and_overlapping_crashes() {
        let text = GOOD.replace("tick_ms = 200", "tick_ms = 200\nservers = 3");
        let e = Scenario::parse(&text, "f.toml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("cluster.servers"));
        let text = format!(
            "{GOOD}\n[[fault]]\nat_ms = 1000\nduration_ms = 500\nkind = \"crash\"\n\n[[fault]]\nat_ms = 1200\nduration_ms = 500\nkind = \"power_loss\"\n"
        );
        let e = Scenario::parse(&text, "f.toml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("fault[3].at_ms"), "{e}");
    }

    #[test]
    fn wrong_type_has_a_line() {
        let text = GOOD.replace("clients = 3", "clients = \"three\"");
        let e = Scenario::parse(&text, "f.toml").unwrap_err();
        assert_eq!(e.line, Some(10), "{e}");
    }
}
