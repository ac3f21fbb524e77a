//! `sim hunt`: how many seeds the simulator needs to find a reintroduced
//! bug (`zkcore::bugs::Bug`).
//!
//! A hunt switches the bug on and sweeps its grounds
//! ([`crate::bugmap::grounds`]: scenario files and cluster sizes) seed by
//! seed, from a starting seed on: seed `s` runs on every ground before seed
//! `s + 1` does. It stops at the first seed on which any check fails and
//! reports *seeds to first failure*: how many seeds it ran (the failing one
//! included), which scenario, seed and checks failed, whether any of them is
//! one the bug map expects ([`crate::bugmap::caught_by`]; any failing check
//! counts, an unexpected one is flagged), and a replay command.
//!
//! Seeds run in batches of `jobs` over [`crate::sweep::run_tasks`]; every
//! seed of a batch is judged, and the *lowest* failing seed (then the first
//! ground in bug-map order) wins, so the figure does not depend on `jobs`.
//!
//! One figure is luck; `--starts K` hunts again from K starting seeds far
//! apart ([`START_STRIDE`]) and reports the median (and min, max): that
//! median is what `scenarios/README.md` lists per bug. A start that finds
//! nothing within its seeds counts as "more than N" (it sorts last).

use crate::bugmap::{self, Ground};
use crate::runner::RunOptions;
use crate::scenario::Scenario;
use crate::sweep::{self, Job, Write};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use zkcore::bugs::Bug;

/// How far apart the starting seeds of `--starts K` are: start `i` is
/// `first + i * START_STRIDE`, so hunts of up to this many seeds never
/// share a seed.
pub const START_STRIDE: u64 = 100_000;

/// A path in the repository: as given if it exists from the current
/// directory (the repository root, for the CLI), else from the repository
/// root this crate was built in (tests run in `sim/`).
pub fn repo_file(rel: &str) -> PathBuf {
    let p = Path::new(rel);
    if p.is_absolute() || p.exists() {
        return p.to_path_buf();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let q = root.join(rel);
    if q.exists() {
        q
    } else {
        p.to_path_buf()
    }
}

/// The scenario `path` on `servers` servers with `bugs` switched on (on top
/// of its own `[bugs]`), and the flags that make the replay command do the
/// same.
pub fn with_bugs(
    path: &str,
    servers: Option<u32>,
    bugs: &[Bug],
) -> Result<(Scenario, String), String> {
    let mut scn = Scenario::load(repo_file(path)).map_err(|e| e.to_string())?;
    let mut extra = Vec::new();
    if let Some(n) = servers.filter(|n| *n != scn.cluster.servers) {
        scn = scn.with_servers(n)?;
        extra.push(format!("--servers {n}"));
    }
    for b in bugs {
        if !scn.bug_switches().contains(b) {
            scn.bugs.enable.push(b.id().to_string());
        }
        extra.push(format!("--bug {}", b.id()));
    }
    Ok((scn, extra.join(" ")))
}

/// A bug's hunting grounds, loaded: one job per ground (reports off).
pub fn prepare(bug: Bug) -> Result<Vec<(Ground, Job)>, String> {
    let grounds = bugmap::grounds(bug);
    if grounds.is_empty() {
        return Err(format!(
            "{bug}: the bug map names no scenario to hunt it on"
        ));
    }
    let commit = crate::report::git_commit();
    grounds
        .iter()
        .map(|g| {
            let (scenario, extra) = with_bugs(g.scenario, Some(g.servers), &[bug])
                .map_err(|e| format!("{bug}: ground {}: {e}", g.scenario))?;
            let job = Job {
                scenario,
                path: g.scenario.to_string(),
                extra,
                opts: RunOptions::default(),
                commit: commit.clone(),
                check_determinism: false,
                out: PathBuf::from("reports"),
                write: Write::Never,
            };
            Ok((*g, job))
        })
        .collect()
}

/// The first failure a hunt found.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Seeds to first failure: seeds run, the failing one included.
    pub seeds: u64,
    /// Simulations run up to and including the failing one (seeds times
    /// grounds, less the grounds after the failing one).
    pub runs: u64,
    pub scenario: String,
    pub seed: u64,
    /// The checks that failed, in report order.
    pub failed: Vec<String>,
    /// At least one of them is one the bug map expects.
    pub expected: bool,
    pub replay: String,
}

/// One hunt from one starting seed.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Found(Found),
    /// No seed of `seeds` failed.
    NotFound {
        seeds: u64,
    },
}

impl Outcome {
    /// For sorting and the median: not found sorts after every figure.
    fn key(&self) -> u64 {
        match self {
            Outcome::Found(f) => f.seeds,
            Outcome::NotFound { .. } => u64::MAX,
        }
    }

    /// `12`, or `>2000` when nothing was found.
    pub fn figure(&self) -> String {
        match self {
            Outcome::Found(f) => f.seeds.to_string(),
            Outcome::NotFound { seeds } => format!(">{seeds}"),
        }
    }
}

/// Hunt `bug` on `grounds` over `count` seeds from `first`, `jobs` seeds at
/// a time; `progress(seeds_done)` after each batch.
pub fn hunt(
    bug: Bug,
    grounds: &[(Ground, Job)],
    first: u64,
    count: u64,
    jobs: usize,
    mut progress: impl FnMut(u64),
) -> Outcome {
    let expected = bugmap::caught_by(bug);
    let batch = jobs.max(1) as u64;
    let mut done = 0u64;
    while done < count {
        let n = batch.min(count - done);
        let seeds: Vec<u64> = (0..n).map(|i| first + done + i).collect();
        // Seed-major: a seed on every ground, then the next seed.
        let tasks: Vec<(&Job, u64)> = seeds
            .iter()
            .flat_map(|&s| grounds.iter().map(move |(_, j)| (j, s)))
            .collect();
        let results = sweep::run_tasks(&tasks, jobs);
        if let Some(i) = results.iter().position(|r| !r.passed()) {
            let r = &results[i];
            let failed = r.failed_checks();
            let seed_index = (i / grounds.len()) as u64;
            return Outcome::Found(Found {
                seeds: done + seed_index + 1,
                runs: (done * grounds.len() as u64) + i as u64 + 1,
                scenario: tasks[i].0.path.clone(),
                seed: r.seed,
                expected: failed.iter().any(|c| expected.contains(&c.as_str())),
                failed,
                replay: r.summary.replay.clone(),
            });
        }
        done += n;
        progress(done);
    }
    Outcome::NotFound { seeds: count }
}

/// The starting seeds of `starts` hunts from `first`.
pub fn starts(first: u64, starts: usize) -> Vec<u64> {
    (0..starts as u64)
        .map(|i| first + i * START_STRIDE)
        .collect()
}

/// Median, min and max of several hunts' seeds to first failure.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub median: String,
    pub min: String,
    pub max: String,
    pub found: usize,
    pub of: usize,
}

/// The median of an even count is the mean of the two middle figures
/// (`>N` if either is a hunt that found nothing).
pub fn stats(outcomes: &[Outcome]) -> Stats {
    let mut v: Vec<&Outcome> = outcomes.iter().collect();
    v.sort_by_key(|o| o.key());
    let n = v.len();
    let fig = |o: Option<&&Outcome>| o.map_or_else(|| "-".to_string(), |o| o.figure());
    let median = match n {
        0 => "-".to_string(),
        _ if n % 2 == 1 => v[n / 2].figure(),
        _ => match (v[n / 2 - 1], v[n / 2]) {
            (Outcome::Found(a), Outcome::Found(b)) => {
                let m = (a.seeds + b.seeds) as f64 / 2.0;
                if m.fract() == 0.0 {
                    format!("{m:.0}")
                } else {
                    format!("{m:.1}")
                }
            }
            (_, o) => o.figure(),
        },
    };
    Stats {
        median,
        min: fig(v.first()),
        max: fig(v.last()),
        found: outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Found(_)))
            .count(),
        of: n,
    }
}

/// One line per hunt: where it started and what it found.
pub fn describe(start: u64, o: &Outcome) -> String {
    match o {
        Outcome::Found(f) => format!(
            "from seed {start}: first failure after {} seed(s) ({} run(s)): {} seed {} failed {}{}\n    replay: {}",
            f.seeds,
            f.runs,
            f.scenario,
            f.seed,
            f.failed.join(", "),
            if f.expected {
                ""
            } else {
                "  (none of them is a check the bug map expects)"
            },
            f.replay
        ),
        Outcome::NotFound { seeds } => {
            format!("from seed {start}: not found within {seeds} seeds")
        }
    }
}

/// A bug's row in the `hunt --all` table.
#[derive(Debug, Clone)]
pub struct Row {
    pub bug: Bug,
    pub outcomes: Vec<Outcome>,
}

/// The Markdown table of `hunt --all`: bug, summary, scenarios, checks
/// that failed, median (min, max) seeds to first failure over the starts.
pub fn table(rows: &[Row]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "| bug | summary | scenario(s) | checks that failed | seeds to first failure: median | min | max | found |"
    );
    let _ = writeln!(o, "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |");
    for r in rows {
        let grounds: Vec<String> = bugmap::grounds(r.bug)
            .iter()
            .map(|g| {
                let name = Path::new(g.scenario)
                    .file_name()
                    .map_or_else(|| g.scenario.into(), |n| n.to_string_lossy());
                format!("{name} ({} servers)", g.servers)
            })
            .collect();
        let mut checks: Vec<String> = Vec::new();
        let mut unexpected = false;
        for o in &r.outcomes {
            if let Outcome::Found(f) = o {
                unexpected |= !f.expected;
                for c in &f.failed {
                    if !checks.contains(c) {
                        checks.push(c.clone());
                    }
                }
            }
        }
        let mut checks = checks.join(", ");
        if unexpected {
            let want = bugmap::caught_by(r.bug).join(", ");
            let _ = write!(checks, " (some hunts failed none of {want})");
        }
        let s = stats(&r.outcomes);
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {}/{} |",
            r.bug.id(),
            r.bug.summary().replace('|', "\\|"),
            grounds.join(", "),
            if checks.is_empty() {
                "-".into()
            } else {
                checks
            },
            s.median,
            s.min,
            s.max,
            s.found,
            s.of
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(seeds: u64) -> Outcome {
        Outcome::Found(Found {
            seeds,
            runs: seeds,
            scenario: "s.toml".into(),
            seed: seeds,
            failed: vec!["zab".into()],
            expected: true,
            replay: String::new(),
        })
    }

    #[test]
    fn median_min_max() {
        let s = stats(&[found(9), found(2), found(5)]);
        assert_eq!(
            (s.median.as_str(), s.min.as_str(), s.max.as_str()),
            ("5", "2", "9")
        );
        let s = stats(&[found(9), found(2), found(5), found(6)]);
        assert_eq!(s.median, "5.5");
        let none = Outcome::NotFound { seeds: 100 };
        let s = stats(&[found(3), none.clone(), none.clone()]);
        assert_eq!(
            (s.median.as_str(), s.max.as_str(), s.found),
            (">100", ">100", 1)
        );
        assert_eq!(starts(1, 3), vec![1, 100_001, 200_001]);
    }
}
