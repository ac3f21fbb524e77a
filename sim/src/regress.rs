//! `sim regress`: replays the regression corpus (`scenarios/regressions/`,
//! format in its `README.md`).
//!
//! Every `*.toml` there with a `[regression]` table is an entry: a
//! scenario, a seed and the checks that caught it (`caught_by`). An entry
//! with `[bugs]` is a reintroduced bug that the simulator found: run with
//! its seed and bugs on it must fail, with at least one `caught_by` check
//! failing; run with the same seed and the bugs off (`--no-bugs`) it must
//! pass every check (else the failure was never the bug's). An entry
//! without `[bugs]` is a seed that once failed on a real bug since fixed:
//! it must pass. A file that does not parse misbehaves too; one without
//! `[regression]` is listed and skipped.
//!
//! The canary proves the pipeline can say FAIL: the cheapest entry with
//! bugs runs with them on but is judged as if it had to pass; the verdict
//! must be a misbehaviour and the exit code 1. If a change ever made every
//! run pass (a check switched off, a bug switch that no longer reaches the
//! server, results dropped on the way), the entries' with-bug column would
//! catch it too; the canary also covers the judging and exit path itself.

use crate::report;
use crate::scenario::Scenario;
use crate::shrink::Size;
use crate::sweep::{self, Job, Write};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A corpus file.
#[derive(Debug, Clone)]
pub enum Loaded {
    Entry(Box<Entry>),
    /// No `[regression]` table.
    Skipped {
        file: PathBuf,
    },
    /// Did not parse.
    Invalid {
        file: PathBuf,
        error: String,
    },
}

/// A regression entry, parsed.
#[derive(Debug, Clone)]
pub struct Entry {
    pub file: PathBuf,
    /// With its own `[bugs]` on.
    pub scenario: Scenario,
}

impl Entry {
    pub fn seed(&self) -> u64 {
        self.scenario.regression.as_ref().map_or(0, |r| r.seed)
    }
    pub fn caught_by(&self) -> Vec<String> {
        self.scenario
            .regression
            .as_ref()
            .map_or_else(Vec::new, |r| r.caught_by.clone())
    }
    pub fn has_bugs(&self) -> bool {
        !self.scenario.bugs.enable.is_empty()
    }
    fn job(&self, bugs_on: bool, commit: &str) -> Job {
        let mut scn = self.scenario.clone();
        let mut extra = String::new();
        if !bugs_on && self.has_bugs() {
            scn.bugs.enable.clear();
            extra = "--no-bugs".into();
        }
        Job {
            scenario: scn,
            path: self.file.display().to_string(),
            extra,
            opts: Default::default(),
            commit: commit.to_string(),
            check_determinism: false,
            out: PathBuf::from("reports"),
            write: Write::Never,
        }
    }
}

/// Every `*.toml` of `dir`, by file name.
pub fn load_dir(dir: &Path) -> Result<Vec<Loaded>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    Ok(files
        .into_iter()
        .map(|file| match Scenario::load(&file) {
            Err(e) => Loaded::Invalid {
                file,
                error: e.to_string(),
            },
            Ok(s) if s.regression.is_none() => Loaded::Skipped { file },
            Ok(scenario) => Loaded::Entry(Box::new(Entry { file, scenario })),
        })
        .collect())
}

/// What a run must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// Fail, with at least one of these checks failing.
    Fail(Vec<String>),
    /// Pass every check.
    Pass,
}

/// `Ok` if `failed` (the checks that failed) is what `expect` asks,
/// else the problem.
pub fn judge(expect: &Expect, failed: &[String]) -> Result<(), String> {
    match expect {
        Expect::Pass if failed.is_empty() => Ok(()),
        Expect::Pass => Err(format!("should pass, failed {}", failed.join(", "))),
        Expect::Fail(want) if failed.iter().any(|c| want.contains(c)) => Ok(()),
        Expect::Fail(want) if failed.is_empty() => {
            Err(format!("should fail one of {}, passed", want.join(", ")))
        }
        Expect::Fail(want) => Err(format!(
            "should fail one of {}, failed only {}",
            want.join(", "),
            failed.join(", ")
        )),
    }
}

/// One run of an entry, judged.
#[derive(Debug, Clone)]
pub struct Cell {
    pub failed: Vec<String>,
    pub verdict: Result<(), String>,
    pub replay: String,
}

impl Cell {
    fn text(&self) -> String {
        if self.failed.is_empty() {
            "pass".into()
        } else {
            format!("FAIL {}", self.failed.join(","))
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub file: String,
    /// `ZK-335`, or `-` for an entry without bugs.
    pub bugs: String,
    pub seed: u64,
    /// The run with its bugs on (entries with bugs only).
    pub with_bug: Option<Cell>,
    /// The run with the bugs off (or the only run).
    pub without: Option<Cell>,
    /// Why the file is not an entry that works, when it is not.
    pub error: Option<String>,
}

impl Row {
    pub fn ok(&self) -> bool {
        self.error.is_none()
            && self.with_bug.as_ref().is_none_or(|c| c.verdict.is_ok())
            && self.without.as_ref().is_some_and(|c| c.verdict.is_ok())
    }

    fn problems(&self) -> Vec<String> {
        let mut v: Vec<String> = self.error.iter().cloned().collect();
        for (what, c) in [("with bug", &self.with_bug), ("without", &self.without)] {
            if let Some(Err(e)) = c.as_ref().map(|c| &c.verdict) {
                v.push(format!(
                    "{what}: {e} (replay: {})",
                    c.as_ref().map_or("", |c| c.replay.as_str())
                ));
            }
        }
        v
    }
}

fn cell(r: &sweep::SeedResult, expect: &Expect) -> Cell {
    let failed = r.failed_checks();
    Cell {
        verdict: judge(expect, &failed),
        failed,
        replay: r.summary.replay.clone(),
    }
}

/// Run every entry (with and without its bugs), `jobs` runs at a time.
pub fn run(loaded: &[Loaded], jobs: usize) -> Vec<Row> {
    let entries: Vec<&Entry> = loaded
        .iter()
        .filter_map(|l| match l {
            Loaded::Entry(e) => Some(&**e),
            _ => None,
        })
        .collect();
    // Per entry in order: its with-bug run (if it has bugs), then the other.
    let commit = report::git_commit();
    let mut jobs_v: Vec<(Job, u64)> = Vec::new();
    for e in &entries {
        if e.has_bugs() {
            jobs_v.push((e.job(true, &commit), e.seed()));
        }
        jobs_v.push((e.job(false, &commit), e.seed()));
    }
    let tasks: Vec<(&Job, u64)> = jobs_v.iter().map(|(j, s)| (j, *s)).collect();
    let mut results = sweep::run_tasks(&tasks, jobs).into_iter();
    let mut rows = Vec::new();
    let mut entry = entries.iter();
    for l in loaded {
        match l {
            Loaded::Entry(_) => {
                let Some(e) = entry.next() else { break };
                let with_bug = if e.has_bugs() {
                    results
                        .next()
                        .map(|r| cell(&r, &Expect::Fail(e.caught_by())))
                } else {
                    None
                };
                let without = results.next().map(|r| cell(&r, &Expect::Pass));
                rows.push(Row {
                    file: e.file.display().to_string(),
                    bugs: bugs_text(&e.scenario),
                    seed: e.seed(),
                    with_bug,
                    without,
                    error: None,
                });
            }
            Loaded::Invalid { file, error } => rows.push(Row {
                file: file.display().to_string(),
                bugs: "?".into(),
                seed: 0,
                with_bug: None,
                without: None,
                error: Some(error.clone()),
            }),
            Loaded::Skipped { .. } => {}
        }
    }
    rows
}

fn bugs_text(s: &Scenario) -> String {
    if s.bugs.enable.is_empty() {
        "-".into()
    } else {
        s.bugs.enable.join(",")
    }
}

/// The canary's outcome.
#[derive(Debug, Clone)]
pub struct Canary {
    pub file: String,
    pub bugs: String,
    pub seed: u64,
    /// The checks that failed with the bugs on.
    pub failed: Vec<String>,
    /// The pipeline said FAIL: judged as "must pass" the run misbehaved
    /// and the exit code of a table holding it is 1.
    pub reported_fail: bool,
}

impl Canary {
    pub fn ok(&self) -> bool {
        self.reported_fail
    }
}

/// Run the cheapest entry with bugs, bugs on, and judge it as if it had to
/// pass: the verdict must be FAIL. `None` if no entry has bugs.
pub fn canary(loaded: &[Loaded]) -> Option<Canary> {
    let e = loaded
        .iter()
        .filter_map(|l| match l {
            Loaded::Entry(e) if e.has_bugs() => Some(e),
            _ => None,
        })
        .min_by_key(|e| {
            let s = Size::of(&e.scenario, e.seed());
            (s.ops.saturating_mul(s.duration_ms), e.file.clone())
        })?;
    let r = sweep::run_one(&e.job(true, &report::git_commit()), e.seed());
    let as_if_clean = Row {
        file: e.file.display().to_string(),
        bugs: bugs_text(&e.scenario),
        seed: e.seed(),
        with_bug: None,
        without: Some(cell(&r, &Expect::Pass)),
        error: None,
    };
    Some(Canary {
        file: as_if_clean.file.clone(),
        bugs: as_if_clean.bugs.clone(),
        seed: e.seed(),
        failed: r.failed_checks(),
        reported_fail: !r.passed() && !as_if_clean.ok() && exit_code(None, &[as_if_clean]) == 1,
    })
}

/// 0 if the canary (when run) and every row are fine, else 1.
pub fn exit_code(canary: Option<&Canary>, rows: &[Row]) -> i32 {
    let canary_ok = canary.is_none_or(Canary::ok);
    if canary_ok && rows.iter().all(Row::ok) {
        0
    } else {
        1
    }
}

/// The table: file, bug, seed, with-bug result, without-bug result,
/// verdict; then the problems with their replay commands.
pub fn table(canary: Option<&Canary>, rows: &[Row], skipped: &[PathBuf]) -> String {
    let mut lines: Vec<[String; 6]> = vec![[
        "file".into(),
        "bug".into(),
        "seed".into(),
        "with bug".into(),
        "without bug".into(),
        "verdict".into(),
    ]];
    if let Some(c) = canary {
        let failed = if c.failed.is_empty() {
            "pass".to_string()
        } else {
            format!("FAIL {}", c.failed.join(","))
        };
        lines.push([
            format!("canary: {}", c.file),
            c.bugs.clone(),
            c.seed.to_string(),
            failed,
            "(judged as must-pass)".into(),
            if c.ok() {
                "ok: reported FAIL".into()
            } else {
                "BROKEN: a failure went unreported".into()
            },
        ]);
    }
    for r in rows {
        lines.push([
            r.file.clone(),
            r.bugs.clone(),
            if r.error.is_some() {
                "".into()
            } else {
                r.seed.to_string()
            },
            r.with_bug.as_ref().map_or("-".into(), Cell::text),
            r.without.as_ref().map_or("-".into(), Cell::text),
            if r.ok() {
                "ok".into()
            } else {
                "MISBEHAVES".into()
            },
        ]);
    }
    let mut widths = [0usize; 6];
    for l in &lines {
        for (w, c) in widths.iter_mut().zip(l) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut o = String::new();
    for l in &lines {
        let mut line = String::new();
        for (i, (w, c)) in widths.iter().zip(l).enumerate() {
            if i == 5 {
                line.push_str(c);
            } else {
                let _ = write!(line, "{c:<w$}  ");
            }
        }
        let _ = writeln!(o, "{}", line.trim_end());
    }
    for f in skipped {
        let _ = writeln!(o, "skipped (no [regression]): {}", f.display());
    }
    for r in rows.iter().filter(|r| !r.ok()) {
        for p in r.problems() {
            let _ = writeln!(o, "{}: {p}", r.file);
        }
    }
    let bad = rows.iter().filter(|r| !r.ok()).count();
    let entries = if rows.is_empty() {
        "canary only".to_string()
    } else {
        format!("{} of {} entries behave", rows.len() - bad, rows.len())
    };
    let _ = writeln!(
        o,
        "verdict: {} ({entries}{})",
        if exit_code(canary, rows) == 0 {
            "PASS"
        } else {
            "FAIL"
        },
        match canary {
            Some(c) if !c.ok() => "; the canary's failure went unreported",
            Some(_) => "; canary ok",
            None => "; no canary: no entry with [bugs]",
        }
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judging() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(judge(&Expect::Pass, &[]).is_ok());
        assert!(judge(&Expect::Pass, &v(&["zab"])).is_err());
        let want = Expect::Fail(v(&["zab", "replicas"]));
        assert!(judge(&want, &v(&["liveness", "zab"])).is_ok());
        let e = judge(&want, &v(&["liveness"])).unwrap_err();
        assert!(e.contains("failed only liveness"), "{e}");
        assert!(judge(&want, &[]).unwrap_err().contains("passed"));
    }
}
