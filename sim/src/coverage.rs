//! `sim cover`: run every scenario of a directory over a range of seeds and
//! report which coverage marks (`zkcore::cover`) the runs hit. A sweep that
//! leaves a required mark unhit fails: the rare branch it names (a TRUNC
//! sync, a session closed during a sync, a torn log tail...) is no longer
//! exercised by any scenario, so a bug in it would go unseen.

use crate::scenario::Scenario;
use crate::sweep::{self, Job, SeedResult};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use zkcore::cover::Mark;

/// Per mark: total hits and the runs that hit it at least once.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MarkCount {
    pub hits: u64,
    pub runs: u64,
    /// The first (scenario, seed) that hit it.
    pub first: Option<(String, u64)>,
}

/// What a coverage sweep found.
#[derive(Debug, Default)]
pub struct Coverage {
    pub marks: BTreeMap<Mark, MarkCount>,
    pub runs: u64,
    /// Runs that failed a check (reported: a coverage sweep is also a
    /// sweep).
    pub failed: Vec<(String, u64, Vec<String>)>,
}

impl Coverage {
    pub fn add(&mut self, r: &SeedResult) {
        self.runs += 1;
        for m in Mark::ALL {
            let n = r.summary.coverage.get(m.name()).copied().unwrap_or(0);
            let c = self.marks.entry(m).or_default();
            if n > 0 {
                c.hits += n;
                c.runs += 1;
                c.first
                    .get_or_insert_with(|| (r.summary.scenario.clone(), r.seed));
            }
        }
        if !r.passed() {
            self.failed
                .push((r.summary.scenario.clone(), r.seed, r.failed_checks()));
        }
    }

    /// Required marks no run hit.
    pub fn missing(&self) -> Vec<Mark> {
        Mark::ALL
            .into_iter()
            .filter(|m| m.required() && self.marks.get(m).is_none_or(|c| c.hits == 0))
            .collect()
    }

    pub fn table(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "coverage marks over {} runs:", self.runs);
        let _ = writeln!(
            o,
            "  {:<28} {:>8} {:>6}  {:<9} first hit",
            "mark", "hits", "runs", "required"
        );
        for m in Mark::ALL {
            let c = self.marks.get(&m).cloned().unwrap_or_default();
            let first = c
                .first
                .map_or("-".to_string(), |(s, seed)| format!("{s} seed {seed}"));
            let _ = writeln!(
                o,
                "  {:<28} {:>8} {:>6}  {:<9} {first}",
                m.name(),
                c.hits,
                c.runs,
                if m.required() { "yes" } else { "no" }
            );
        }
        for (s, seed, checks) in &self.failed {
            let _ = writeln!(o, "  FAILED: {s} seed {seed}: {}", checks.join(", "));
        }
        let missing = self.missing();
        if missing.is_empty() {
            let _ = writeln!(o, "verdict: PASS (every required mark hit)");
        } else {
            let names: Vec<&str> = missing.iter().map(|m| m.name()).collect();
            let _ = writeln!(
                o,
                "verdict: FAIL (required marks not hit: {})",
                names.join(", ")
            );
        }
        o
    }
}

/// The scenario files directly in `dir` (not its subdirectories: the
/// regression corpus lives in one), sorted.
pub fn scenario_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    if v.is_empty() {
        return Err(format!("{}: no scenario files", dir.display()));
    }
    Ok(v)
}

/// Run every scenario in `files` (at its own cluster size) for `seeds`,
/// `jobs` at a time, writing reports only for failures under `out`.
pub fn sweep(
    files: &[PathBuf],
    seeds: &[u64],
    jobs: usize,
    out: &Path,
) -> Result<Coverage, String> {
    let mut job_list = Vec::new();
    for f in files {
        let scn = Scenario::load(f).map_err(|e| e.to_string())?;
        let mut job = Job::new(scn, &f.display().to_string(), out.to_path_buf());
        job.write = sweep::Write::FailuresOnly;
        job_list.push(job);
    }
    let tasks: Vec<(&Job, u64)> = job_list
        .iter()
        .flat_map(|j| seeds.iter().map(move |s| (j, *s)))
        .collect();
    let mut cov = Coverage::default();
    for r in sweep::run_tasks(&tasks, jobs) {
        cov.add(&r);
    }
    Ok(cov)
}
