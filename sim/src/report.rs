//! Verdicts and reports: `reports/<scenario>/<seed>/summary.json` (verdict
//! per check, fault counts, op outcomes, throughput, latency, the replay
//! command, the servers' final status, the fail-overs), `history.jsonl` (the raw history,
//! see [`crate::history`]), `servers.jsonl` (the `srvr` samples) and
//! `board.jsonl` (the status board samples, see [`crate::probe`]) and
//! `report.html` (all of it on one page with plots, see [`crate::html`]).
//!
//! Wall-clock numbers (speed) go into the summary only; the fingerprint
//! (`history_hash`) covers the history alone, so it is a pure function of
//! the scenario, the seed and the code.

use crate::check::{self, CheckResult, Verdict};
use crate::failover::{self, Failover};
use crate::history::{fingerprint, to_jsonl, Event, Replica, Ty};
use crate::probe::{BoardSample, Sample};
use crate::scenario::Scenario;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize)]
pub struct OpCounts {
    pub ok: u64,
    pub fail: u64,
    pub unknown: u64,
    pub total: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub scenario: String,
    /// The scenario's `description`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub seed: u64,
    pub commit: String,
    /// Servers in the cluster.
    pub servers: u32,
    pub verdict: Verdict,
    pub checks: Vec<CheckResult>,
    pub faults: BTreeMap<String, u64>,
    pub ops: OpCounts,
    pub throughput_ops_per_s: f64,
    pub latency: Latency,
    pub sim_duration_ms: u64,
    pub wall_ms: u64,
    pub sim_s_per_wall_s: f64,
    pub history_hash: String,
    pub replay: String,
    /// Every server's final status (role, epoch, last zxid, tree digest),
    /// from the history's `replicas` event; empty if the run did not reach
    /// its end.
    pub replicas: Vec<Replica>,
    /// Each fault of the leader: how long until a new leader served and
    /// writes succeeded again ([`crate::failover`]; report only, never
    /// evidence). Measured from the history alone by [`summarize`] (no
    /// election times), with the status board by [`add_failover`] and
    /// [`write_report`].
    pub failover: Vec<Failover>,
    /// Coverage marks hit in this run (`zkcore::cover`), by name; only
    /// marks hit at least once.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub coverage: BTreeMap<String, u64>,
}

/// The checks, plus `server_health`: the simulation must not panic, and the
/// server must not stop on an error except when power fails under it.
pub fn judge(scn: &Scenario, events: &[Event], panic: Option<&str>) -> Vec<CheckResult> {
    let mut checks = check::check_all(events, &scn.check.enable, scn.liveness.heal_within_ms);
    checks.push(server_health(events, panic));
    checks
}

/// (servers hit, from, to) of each fault of `kind`, its window opened
/// `lead_us` before the fault's start event.
fn fault_windows<'a>(
    events: &'a [Event],
    kind: &str,
    lead_us: u64,
) -> Vec<(Vec<&'a str>, u64, u64)> {
    events
        .iter()
        .filter(|e| e.ty == Ty::FaultStart && e.fault.as_deref() == Some(kind))
        .map(|s| {
            let end = events
                .iter()
                .find(|e| e.ty == Ty::FaultEnd && e.fault_id == s.fault_id)
                .map_or(u64::MAX, |e| e.t_us);
            let hit: Vec<&str> = s.target.as_deref().unwrap_or("").split(',').collect();
            (hit, s.t_us.saturating_sub(lead_us), end)
        })
        .collect()
}

fn server_health(events: &[Event], panic: Option<&str>) -> CheckResult {
    let mut r = CheckResult::new("server_health");
    if let Some(p) = panic {
        r.violation(format!("the simulation panicked: {p}"));
    }
    // The server stops on the failed fsync just before a power loss is
    // recorded as started; a failing disk stops it inside the window.
    let power_off = fault_windows(events, "power_loss", 600_000);
    let disk_failed = fault_windows(events, "disk_error", 0);
    for e in events.iter().filter(|e| e.ty == Ty::ServerExit) {
        let why = e.error.as_deref().unwrap_or("");
        let who = e.target.as_deref().unwrap_or("server");
        let powered_off = power_off
            .iter()
            .any(|(hit, a, b)| hit.contains(&who) && (*a..=*b).contains(&e.t_us));
        let disk_error = disk_failed
            .iter()
            .any(|(hit, a, b)| hit.contains(&who) && (*a..=*b).contains(&e.t_us));
        if powered_off {
            r.notes.push(format!(
                "{who} stopped at {:.0} ms when power failed: {why}",
                e.t_ms()
            ));
        } else if disk_error {
            r.notes.push(format!(
                "{who} stopped at {:.0} ms on its failing disk: {why}",
                e.t_ms()
            ));
        } else {
            r.violation(format!("{who} stopped at {:.0} ms: {why}", e.t_ms()));
        }
    }
    r
}

pub fn overall(checks: &[CheckResult]) -> Verdict {
    if checks.iter().any(|c| c.verdict == Verdict::Fail) {
        Verdict::Fail
    } else {
        Verdict::Pass
    }
}

/// The command that reproduces a run (`extra`: flags that changed the run,
/// e.g. `--sabotage lying-fsync`; empty for a normal run).
pub fn replay_command(scenario_path: &str, seed: u64, extra: &str) -> String {
    let mut s = format!("cargo run -p sim -- {scenario_path} --seed {seed}");
    if !extra.is_empty() {
        s.push(' ');
        s.push_str(extra);
    }
    s
}

/// `git rev-parse --short HEAD` (+ `-dirty`), or "unknown". Runs outside
/// the simulation.
pub fn git_commit() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "--short", "HEAD"]) {
        None => "unknown".into(),
        Some(c) => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{c}-dirty")
            } else {
                c
            }
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[allow(clippy::too_many_arguments)]
pub fn summarize(
    scn: &Scenario,
    scenario_path: &str,
    extra_flags: &str,
    seed: u64,
    events: &[Event],
    checks: Vec<CheckResult>,
    sim_ms: u64,
    wall_ms: u64,
    commit: &str,
) -> Summary {
    let (ops, _) = check::pair_ops(events);
    let mut counts = OpCounts {
        ok: 0,
        fail: 0,
        unknown: 0,
        total: 0,
    };
    let mut lat = Vec::new();
    for o in ops.iter().filter(|o| o.client() != 0) {
        counts.total += 1;
        match o.done.map(|d| d.ty) {
            Some(Ty::Ok) => counts.ok += 1,
            Some(Ty::Fail) => counts.fail += 1,
            _ => counts.unknown += 1,
        }
        if o.is_determinate() {
            let d = o.complete_us().expect("determinate") - o.invoke_us();
            lat.push(d as f64 / 1000.0);
        }
    }
    lat.sort_by(f64::total_cmp);
    let mut faults = BTreeMap::new();
    for e in events.iter().filter(|e| e.ty == Ty::FaultStart) {
        *faults
            .entry(e.fault.clone().unwrap_or_default())
            .or_insert(0) += 1;
    }
    let secs = (scn.duration_ms as f64 / 1000.0).max(1e-3);
    let replicas = events
        .iter()
        .rev()
        .find(|e| e.ty == Ty::Replicas)
        .and_then(|e| e.replicas.clone())
        .unwrap_or_default();
    Summary {
        scenario: scn.name.clone(),
        description: scn.description.clone(),
        seed,
        commit: commit.into(),
        servers: scn.cluster.servers,
        verdict: overall(&checks),
        checks,
        faults,
        throughput_ops_per_s: ((counts.ok + counts.fail) as f64 / secs * 10.0).round() / 10.0,
        ops: counts,
        latency: Latency {
            p50_ms: percentile(&lat, 0.5),
            p99_ms: percentile(&lat, 0.99),
            max_ms: lat.last().copied().unwrap_or(0.0),
        },
        sim_duration_ms: sim_ms,
        wall_ms,
        sim_s_per_wall_s: if wall_ms == 0 {
            0.0
        } else {
            (sim_ms as f64 / wall_ms as f64 * 10.0).round() / 10.0
        },
        history_hash: format!("{:016x}", fingerprint(events)),
        replay: replay_command(scenario_path, seed, extra_flags),
        replicas,
        failover: failover::measure(events, &[]),
        coverage: BTreeMap::new(),
    }
}

/// The coverage marks a run hit (from `RunOutput::coverage`).
#[cfg(madsim)]
pub fn add_coverage(s: &mut Summary, hits: &[(zkcore::cover::Mark, u64)]) {
    s.coverage = hits
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(m, n)| (m.name().to_string(), *n))
        .collect();
}

/// Measure the fail-overs again with the status board samples (which time
/// the elections): what a run's summary should carry.
pub fn add_failover(s: &mut Summary, events: &[Event], board: &[BoardSample]) {
    s.failover = failover::measure(events, board);
}

/// Write `summary.json`, `history.jsonl` and `report.html` (without server
/// samples) under `out/<scenario>/<seed>/`.
pub fn write(out: &Path, s: &Summary, events: &[Event]) -> std::io::Result<PathBuf> {
    write_report(out, s, events, &[], &[])
}

/// Write every report file of a run under `out/<scenario>/<seed>/`.
pub fn write_report(
    out: &Path,
    s: &Summary,
    events: &[Event],
    samples: &[Sample],
    board: &[BoardSample],
) -> std::io::Result<PathBuf> {
    let dir = out.join(&s.scenario).join(s.seed.to_string());
    std::fs::create_dir_all(&dir)?;
    // The board times the elections (a sweep's summary may lack them).
    let mut timed = s.clone();
    if !board.is_empty() {
        add_failover(&mut timed, events, board);
    }
    let s = &timed;
    let json = serde_json::to_string_pretty(s).expect("summary serializes");
    std::fs::write(dir.join("summary.json"), json + "\n")?;
    std::fs::write(dir.join("history.jsonl"), to_jsonl(events))?;
    std::fs::write(dir.join("servers.jsonl"), crate::probe::to_jsonl(samples))?;
    std::fs::write(dir.join("board.jsonl"), crate::probe::to_jsonl(board))?;
    std::fs::write(
        dir.join("report.html"),
        crate::html::render(s, events, samples, board),
    )?;
    Ok(dir)
}

/// A few lines for the terminal.
pub fn render(s: &Summary) -> String {
    let mut out = format!(
        "{} seed {}: {} — {} ops ({} ok, {} fail, {} unknown), {:.1} ops/s, p50 {:.1} ms p99 {:.1} ms; {:.1} sim-s in {:.2} s ({:.0}x); history {}\n",
        s.scenario,
        s.seed,
        match s.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Skipped => "SKIPPED",
        },
        s.ops.total,
        s.ops.ok,
        s.ops.fail,
        s.ops.unknown,
        s.throughput_ops_per_s,
        s.latency.p50_ms,
        s.latency.p99_ms,
        s.sim_duration_ms as f64 / 1000.0,
        s.wall_ms as f64 / 1000.0,
        s.sim_s_per_wall_s,
        s.history_hash
    );
    if !s.faults.is_empty() {
        let f: Vec<String> = s.faults.iter().map(|(k, v)| format!("{k}×{v}")).collect();
        out.push_str(&format!("  faults: {}\n", f.join(", ")));
    }
    for f in &s.failover {
        out.push_str(&format!("  {}\n", f.line()));
    }
    if !s.coverage.is_empty() {
        let c: Vec<String> = s.coverage.iter().map(|(k, v)| format!("{k}×{v}")).collect();
        out.push_str(&format!("  coverage marks: {}\n", c.join(", ")));
    }
    for c in &s.checks {
        let v = match c.verdict {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::Skipped => "skip",
        };
        out.push_str(&format!("  {v:4} {}", c.name));
        if let Some(n) = c.notes.first() {
            out.push_str(&format!(" ({n})"));
        }
        out.push('\n');
        for x in c.violations.iter().take(5) {
            out.push_str(&format!("       - {x}\n"));
        }
    }
    out
}
