//! Running many seeds: `J` seeds at a time, each judged and reported as it
//! finishes, then a tally (per check: passes and failures; the failing
//! seeds with their replay commands; simulated seconds per wall second).
//!
//! Parallelism lives *outside* the simulations: each seed already runs on
//! its own fresh OS thread inside [`run_seed_with`] (madsim needs that);
//! here `J` plain worker threads pull seeds from a shared counter and hand
//! results back over a channel. Nothing inside a simulation sees another,
//! so a seed's history does not depend on `J` (`tests/report.rs` checks).

use crate::check::{CheckResult, Verdict};
use crate::history::fingerprint;
use crate::report::{self, Summary};
use crate::runner::{run_seed_with, RunOptions};
use crate::scenario::Scenario;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// When to write a seed's report files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Always,
    FailuresOnly,
    Never,
}

/// Everything a seed's run needs besides the seed.
#[derive(Debug, Clone)]
pub struct Job {
    pub scenario: Scenario,
    /// The scenario file as given (for the replay command).
    pub path: String,
    /// Flags that changed the run (`--sabotage ...`), for the replay command.
    pub extra: String,
    pub opts: RunOptions,
    pub commit: String,
    pub check_determinism: bool,
    pub out: PathBuf,
    pub write: Write,
}

impl Job {
    pub fn new(scenario: Scenario, path: &str, out: PathBuf) -> Job {
        Job {
            scenario,
            path: path.into(),
            extra: String::new(),
            opts: RunOptions::default(),
            commit: report::git_commit(),
            check_determinism: false,
            out,
            write: Write::Always,
        }
    }
}

/// One seed, judged.
#[derive(Debug)]
pub struct SeedResult {
    pub seed: u64,
    pub summary: Summary,
    /// Where the report went, if it was written.
    pub written: Option<std::io::Result<PathBuf>>,
    /// Simulated time, both runs with `--check-determinism`.
    pub sim_ms: u64,
}

impl SeedResult {
    pub fn passed(&self) -> bool {
        self.summary.verdict != Verdict::Fail
    }

    /// The names of the checks that failed, in the summary's order.
    pub fn failed_checks(&self) -> Vec<String> {
        self.summary
            .checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .map(|c| c.name.clone())
            .collect()
    }
}

/// `A..B` (B excluded) or `A..=B`.
pub fn parse_range(s: &str) -> Result<Vec<u64>, String> {
    let (a, b, incl) = if let Some((a, b)) = s.split_once("..=") {
        (a, b, true)
    } else if let Some((a, b)) = s.split_once("..") {
        (a, b, false)
    } else {
        return Err(format!("--seeds {s:?}: expected A..B or A..=B"));
    };
    let a: u64 = a
        .trim()
        .parse()
        .map_err(|_| format!("--seeds: bad start {a:?}"))?;
    let b: u64 = b
        .trim()
        .parse()
        .map_err(|_| format!("--seeds: bad end {b:?}"))?;
    let end = if incl { b.saturating_add(1) } else { b };
    if end <= a || end - a > 100_000 {
        return Err(format!("--seeds {s:?}: empty or too large a range"));
    }
    Ok((a..end).collect())
}

/// Run, judge and (maybe) report one seed.
pub fn run_one(job: &Job, seed: u64) -> SeedResult {
    let scn = &job.scenario;
    let out = run_seed_with(scn, seed, job.opts);
    let checks = report::judge(scn, &out.events, out.panic.as_deref());
    let mut summary = report::summarize(
        scn,
        &job.path,
        &job.extra,
        seed,
        &out.events,
        checks,
        out.sim_ms,
        out.wall.as_millis() as u64,
        &job.commit,
    );
    report::add_failover(&mut summary, &out.events, &out.board);
    report::add_coverage(&mut summary, &out.coverage);
    let mut sim_ms = out.sim_ms;
    if job.check_determinism {
        let again = run_seed_with(scn, seed, job.opts);
        sim_ms += again.sim_ms;
        let (a, b) = (fingerprint(&out.events), fingerprint(&again.events));
        let mut c = CheckResult::new("determinism");
        if a != b || out.panic != again.panic {
            c.violation(format!(
                "seed {seed} ran twice gave different histories: {a:016x} vs {b:016x}"
            ));
        } else {
            c.notes.push(format!("two runs, history {a:016x}"));
        }
        summary.checks.push(c);
        summary.verdict = report::overall(&summary.checks);
    }
    let write = match job.write {
        Write::Always => true,
        Write::FailuresOnly => summary.verdict == Verdict::Fail,
        Write::Never => false,
    };
    let written = write
        .then(|| report::write_report(&job.out, &summary, &out.events, &out.samples, &out.board));
    SeedResult {
        seed,
        summary,
        written,
        sim_ms,
    }
}

/// Run `seeds`, `jobs` at a time; `each` sees every result as it comes in
/// (on the calling thread).
pub fn run_many(job: &Job, seeds: &[u64], jobs: usize, mut each: impl FnMut(&SeedResult)) -> Tally {
    let start = Instant::now();
    let mut results = par_map(seeds, jobs, |&seed| run_one(job, seed), |_, r| each(r));
    results.sort_by_key(|r| r.seed);
    Tally {
        results,
        wall: start.elapsed(),
    }
}

/// Run each (job, seed) of `tasks`, `jobs` at a time; the results in the
/// order of `tasks`, whatever `jobs` is (hunts, shrinks and regression
/// runs mix scenarios in one batch).
pub fn run_tasks(tasks: &[(&Job, u64)], jobs: usize) -> Vec<SeedResult> {
    par_map(tasks, jobs, |&(job, seed)| run_one(job, seed), |_, _| {})
}

/// `f` over `items` on `jobs` plain worker threads pulling indices from a
/// shared counter; `each` sees (index, result) on the calling thread as
/// results come in. Returns the results in the order of `items`.
fn par_map<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    f: impl Fn(&T) -> R + Sync,
    mut each: impl FnMut(usize, &R),
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = Vec::with_capacity(items.len());
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            let tx = tx.clone();
            let (next, f) = (&next, &f);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                if tx.send((i, f(item))).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        for (i, r) in rx {
            each(i, &r);
            results.push((i, r));
        }
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// The outcome of a sweep.
#[derive(Debug)]
pub struct Tally {
    /// In seed order.
    pub results: Vec<SeedResult>,
    pub wall: Duration,
}

/// Per check: (pass, fail, skipped).
pub type Counts = BTreeMap<String, (u64, u64, u64)>;

impl Tally {
    pub fn all_passed(&self) -> bool {
        self.results.iter().all(SeedResult::passed)
    }

    pub fn failing(&self) -> impl Iterator<Item = &SeedResult> {
        self.results.iter().filter(|r| !r.passed())
    }

    /// Check names in the order the runs list them, with their counts.
    pub fn per_check(&self) -> Vec<(String, (u64, u64, u64))> {
        let mut order: Vec<String> = Vec::new();
        let mut counts: Counts = BTreeMap::new();
        for c in self.results.iter().flat_map(|r| &r.summary.checks) {
            if !counts.contains_key(&c.name) {
                order.push(c.name.clone());
            }
            let e = counts.entry(c.name.clone()).or_default();
            match c.verdict {
                Verdict::Pass => e.0 += 1,
                Verdict::Fail => e.1 += 1,
                Verdict::Skipped => e.2 += 1,
            }
        }
        order
            .into_iter()
            .map(|n| {
                let c = counts[&n];
                (n, c)
            })
            .collect()
    }

    pub fn sim_s(&self) -> f64 {
        self.results.iter().map(|r| r.sim_ms).sum::<u64>() as f64 / 1000.0
    }

    /// Simulated seconds per wall second over the whole sweep.
    pub fn speed(&self) -> f64 {
        self.sim_s() / self.wall.as_secs_f64().max(1e-9)
    }

    /// The closing table.
    pub fn table(&self, job: &Job, jobs: usize) -> String {
        let mut o = String::new();
        let n = self.results.len();
        let (lo, hi) = (
            self.results.first().map_or(0, |r| r.seed),
            self.results.last().map_or(0, |r| r.seed),
        );
        let _ = writeln!(
            o,
            "\nsweep: {} ({}), seeds {lo}..={hi}: {n} seeds, {jobs} at a time",
            job.scenario.name, job.path
        );
        let _ = writeln!(
            o,
            "  {:<24} {:>6} {:>6} {:>6}",
            "check", "pass", "fail", "skip"
        );
        for (name, (p, f, s)) in self.per_check() {
            let _ = writeln!(o, "  {name:<24} {p:>6} {f:>6} {s:>6}");
        }
        let failing: Vec<&SeedResult> = self.failing().collect();
        if !failing.is_empty() {
            let _ = writeln!(o, "  failing seeds ({}):", failing.len());
            for r in failing {
                let checks = r.failed_checks();
                let _ = writeln!(
                    o,
                    "    {:>6}  {:<28} {}",
                    r.seed,
                    checks.join(","),
                    r.summary.replay
                );
            }
        }
        let _ = writeln!(
            o,
            "  speed: {:.1} simulated s in {:.1} s wall = {:.1} sim-s per wall-s ({jobs} at a time, {:.1} each)",
            self.sim_s(),
            self.wall.as_secs_f64(),
            self.speed(),
            self.speed() / jobs.max(1) as f64
        );
        let _ = writeln!(
            o,
            "verdict: {} ({} of {n} seeds passed)",
            if self.all_passed() { "PASS" } else { "FAIL" },
            self.results.iter().filter(|r| r.passed()).count()
        );
        o
    }
}

/// One line per finished seed in a sweep.
pub fn one_line(r: &SeedResult) -> String {
    let s = &r.summary;
    format!(
        "seed {:>6} {}  {} ops ({} unknown), {:.1} sim-s in {:.2} s",
        r.seed,
        if r.passed() { "pass" } else { "FAIL" },
        s.ops.total,
        s.ops.unknown,
        r.sim_ms as f64 / 1000.0,
        s.wall_ms as f64 / 1000.0
    )
}
