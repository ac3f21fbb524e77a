//! `sim shrink`: from a failing (scenario, seed) to a smaller scenario that
//! fails the same way with the same seed, written as a self-contained
//! regression entry (`scenarios/regressions/`).
//!
//! "The same way": the original run's failing checks, narrowed to the ones
//! the bug map expects when a bug is on and any of those failed
//! ([`crate::bugmap::caught_by`]); a candidate counts as failing only if one
//! of *these* checks fails, so the shrink keeps the bug and does not drift
//! to another failure (a liveness failure from starving the workload, say).
//!
//! Every candidate is a whole scenario, round-tripped through TOML and
//! [`Scenario::parse`] before it runs, so it obeys every schema rule (fault
//! targets that still exist, non-overlapping crashes, workloads that outlive
//! the last heal by `heal_within_ms`); an invalid candidate is skipped
//! without running. Runs are cached by the candidate's TOML text.
//!
//! The passes, in order (one *round*; rounds repeat while the scenario
//! keeps shrinking, up to [`ROUNDS`]):
//!
//! 1. (once, first) a `[swarm]` is *materialized*: the seed's drawn faults
//!    ([`Scenario::faults_for`]) become explicit `[[fault]]`s and `[swarm]`
//!    goes. Swarm draws come from their own seeded stream, so this normally
//!    leaves the run as it was; if the run stops failing, `[swarm]` stays
//!    and only the scripted faults are shrunk (and the result says so).
//! 2. [`ddmin`] over the faults; then each remaining fault's duration, then
//!    the whole timeline moved earlier (no swarm only);
//! 3. [`ddmin`] over the workloads; then per workload its clients, its ops
//!    (a rate or a count) and its duration;
//! 4. the scenario's `duration_ms`.
//!
//! Numbers shrink by `Shrinker::reduce`: it tries, smallest first, the
//! floor, the midpoint and the three-quarter point between the floor and
//! the current value, keeps the first that still fails and repeats (a
//! bisection that halves whenever the half still fails).
//!
//! Candidates of one step run `jobs` at a time over
//! [`crate::sweep::run_tasks`]; the first failing one *in order* wins, so
//! the result does not depend on `jobs` (only the number of runs does).

use crate::runner::RunOptions;
use crate::scenario::{Ops, OpsSpec, Scenario, ALWAYS_CHECKS, CHECKS, OPT_IN_CHECKS};
use crate::sweep::{self, Job, Write};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// At most this many rounds of all passes.
pub const ROUNDS: usize = 3;

/// Delta debugging (Zeller's ddmin) over `n` items, as index sets.
///
/// `first_failing(sets)` runs the test on each set of item indices (in
/// order, each sorted) and returns the index of the first set that still
/// fails, or `None`. The whole list must fail (not checked here). Returns
/// a *1-minimal* failing subset: removing any one of its items makes the
/// test pass (for a deterministic test). The empty set is tried first.
pub fn ddmin(
    n: usize,
    mut first_failing: impl FnMut(&[Vec<usize>]) -> Option<usize>,
) -> Vec<usize> {
    if n == 0 || first_failing(&[Vec::new()]).is_some() {
        return Vec::new();
    }
    let mut cur: Vec<usize> = (0..n).collect();
    let mut gran = 2usize;
    while cur.len() >= 2 {
        let chunks = split(&cur, gran);
        if let Some(i) = first_failing(&chunks) {
            cur = chunks[i].clone();
            gran = 2;
            continue;
        }
        // With two chunks each complement is the other chunk: tried.
        if gran > 2 {
            let comps: Vec<Vec<usize>> = chunks
                .iter()
                .map(|c| cur.iter().copied().filter(|x| !c.contains(x)).collect())
                .collect();
            if let Some(i) = first_failing(&comps) {
                cur = comps[i].clone();
                gran = (gran - 1).max(2);
                continue;
            }
        }
        if gran >= cur.len() {
            break;
        }
        gran = (gran * 2).min(cur.len());
    }
    cur
}

/// `ddmin` with a test that takes one set at a time.
pub fn ddmin_by(n: usize, mut fails: impl FnMut(&[usize]) -> bool) -> Vec<usize> {
    ddmin(n, |sets| sets.iter().position(|s| fails(s)))
}

/// `v` in `parts` contiguous chunks of sizes differing by at most one.
fn split(v: &[usize], parts: usize) -> Vec<Vec<usize>> {
    let parts = parts.clamp(1, v.len().max(1));
    let (q, r) = (v.len() / parts, v.len() % parts);
    let mut out = Vec::with_capacity(parts);
    let mut at = 0;
    for i in 0..parts {
        let len = q + usize::from(i < r);
        out.push(v[at..at + len].to_vec());
        at += len;
    }
    out
}

/// How big a scenario is, for one seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Scripted faults plus the swarm's draws for the seed.
    pub faults: usize,
    pub workloads: usize,
    pub clients: usize,
    /// Operations the workloads plan (a count per client, or a rate per
    /// client over the workload's duration).
    pub ops: u64,
    pub duration_ms: u64,
}

impl Size {
    pub fn of(scn: &Scenario, seed: u64) -> Size {
        let ops = scn
            .workloads
            .iter()
            .map(|w| {
                let per_client = match w.ops() {
                    Ops::Count(n) => n as f64,
                    Ops::PerSecond(r) => r * scn.workload_end_ms(w) as f64 / 1000.0,
                };
                (per_client * w.clients as f64).round() as u64
            })
            .sum();
        Size {
            faults: scn.faults_for(seed).0.len(),
            workloads: scn.workloads.len(),
            clients: scn.clients().len(),
            ops,
            duration_ms: scn.duration_ms,
        }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} fault(s), {} workload(s), {} client(s), {} planned ops, {} ms",
            self.faults, self.workloads, self.clients, self.ops, self.duration_ms
        )
    }
}

/// The scenario as a candidate: written as TOML and parsed back, so every
/// schema rule holds; `Err` says why it is not a valid scenario.
pub fn roundtrip(scn: &Scenario) -> Result<Scenario, String> {
    let text = scn.to_toml()?;
    let mut s =
        Scenario::parse(&text, &format!("{} (candidate)", scn.name)).map_err(|e| e.to_string())?;
    s.name = scn.name.clone();
    Ok(s)
}

/// What a shrink starts from.
#[derive(Debug, Clone)]
pub struct Input {
    /// The scenario with every switch the run needs (`--bug`, `--servers`).
    pub scenario: Scenario,
    /// The scenario file as given.
    pub path: String,
    /// The flags that changed the run (`--bug ZK-335`), for messages.
    pub extra: String,
    pub seed: u64,
    pub opts: RunOptions,
    /// Candidates run at once.
    pub jobs: usize,
}

/// A shrink's result.
#[derive(Debug, Clone)]
pub struct Shrunk {
    pub scenario: Scenario,
    pub before: Size,
    pub after: Size,
    /// Simulations run (the first and the cached ones excluded).
    pub runs: usize,
    /// The checks the shrink kept failing (see the module doc).
    pub want: Vec<String>,
    /// Every check that failed on the original run.
    pub original_failed: Vec<String>,
    /// What each accepted step did, in order.
    pub steps: Vec<String>,
    /// Caveats (a swarm that had to stay).
    pub notes: Vec<String>,
}

/// Runs candidates and remembers their outcomes.
struct Shrinker<'a> {
    job: Job,
    seed: u64,
    jobs: usize,
    want: Vec<String>,
    runs: usize,
    /// Candidate TOML -> it failed one of `want`.
    cache: BTreeMap<String, bool>,
    log: &'a mut dyn FnMut(&str),
    steps: Vec<String>,
}

impl<'a> Shrinker<'a> {
    fn job_for(&self, scn: Scenario) -> Job {
        Job {
            scenario: scn,
            ..self.job.clone()
        }
    }

    /// Index of the first candidate (in order) that is valid and still
    /// fails one of the wanted checks.
    fn first_failing(&mut self, cands: &[Scenario]) -> Option<usize> {
        // (TOML key, the scenario to run) per valid candidate.
        let valid: Vec<Option<(String, Scenario)>> = cands
            .iter()
            .map(|c| {
                let s = roundtrip(c).ok()?;
                Some((s.to_toml().ok()?, s))
            })
            .collect();
        let mut i = 0;
        while i < cands.len() {
            let key = match &valid[i] {
                None => {
                    i += 1;
                    continue;
                }
                Some((k, _)) => k,
            };
            if let Some(&fails) = self.cache.get(key) {
                if fails {
                    return Some(i);
                }
                i += 1;
                continue;
            }
            // Run the next `jobs` unknown candidates from here at once.
            let mut batch: Vec<(String, Job)> = Vec::new();
            for (k, s) in valid[i..].iter().flatten() {
                if batch.len() == self.jobs {
                    break;
                }
                if !self.cache.contains_key(k) && !batch.iter().any(|(b, _)| b == k) {
                    batch.push((k.clone(), self.job_for(s.clone())));
                }
            }
            let tasks: Vec<(&Job, u64)> = batch.iter().map(|(_, j)| (j, self.seed)).collect();
            let results = sweep::run_tasks(&tasks, self.jobs);
            self.runs += results.len();
            for ((k, _), r) in batch.iter().zip(&results) {
                let failed = r.failed_checks();
                let fails = failed.iter().any(|c| self.want.contains(c));
                self.cache.insert(k.clone(), fails);
            }
        }
        None
    }

    fn fails(&mut self, cand: &Scenario) -> bool {
        self.first_failing(std::slice::from_ref(cand)).is_some()
    }

    fn step(&mut self, msg: String) {
        (self.log)(&format!("  {msg}  [{} runs so far]", self.runs));
        self.steps.push(msg);
    }

    /// Shrink a number from `value` toward `floor`: try the floor, the
    /// midpoint and the three-quarter point (smallest first), keep the
    /// first that still fails, repeat. `set(scenario, v)` builds the
    /// candidate. Returns the final value.
    fn reduce(
        &mut self,
        cur: &mut Scenario,
        value: u64,
        floor: u64,
        set: impl Fn(&Scenario, u64) -> Scenario,
    ) -> u64 {
        let mut v = value;
        loop {
            let mut vals: Vec<u64> = Vec::new();
            for x in [
                floor,
                floor + (v - floor.min(v)) / 2,
                v - (v - floor.min(v)) / 4,
            ] {
                if x >= floor && x < v && !vals.contains(&x) {
                    vals.push(x);
                }
            }
            if vals.is_empty() {
                return v;
            }
            let cands: Vec<Scenario> = vals.iter().map(|&x| set(cur, x)).collect();
            match self.first_failing(&cands) {
                Some(i) => {
                    v = vals[i];
                    *cur = cands[i].clone();
                }
                None => return v,
            }
        }
    }

    /// Delta-debug one list of the scenario (`field`): keep the smallest
    /// subset that still fails. When it shrank, `cur` becomes that scenario
    /// and the result is (the old length, the kept indices).
    fn ddmin_list<T: Clone>(
        &mut self,
        cur: &mut Scenario,
        field: fn(&mut Scenario) -> &mut Vec<T>,
    ) -> Option<(usize, Vec<usize>)> {
        let mut base = cur.clone();
        let items = field(&mut base).clone();
        let n = items.len();
        let with = |keep: &Vec<usize>| {
            let mut s = base.clone();
            *field(&mut s) = keep.iter().map(|&i| items[i].clone()).collect();
            s
        };
        let keep = ddmin(n, |sets| {
            let cands: Vec<Scenario> = sets.iter().map(with).collect();
            self.first_failing(&cands)
        });
        if keep.len() >= n {
            return None;
        }
        *cur = with(&keep);
        Some((n, keep))
    }

    fn ddmin_faults(&mut self, cur: &mut Scenario) {
        if let Some((n, keep)) = self.ddmin_list(cur, |s| &mut s.faults) {
            let kept: Vec<String> = keep.iter().map(|i| (i + 1).to_string()).collect();
            self.step(format!(
                "faults: {n} -> {} (ddmin; kept fault(s) {} of the list)",
                keep.len(),
                kept.join(", ")
            ));
        }
    }

    fn fault_durations(&mut self, cur: &mut Scenario) {
        for i in 0..cur.faults.len() {
            let d = cur.faults[i].duration_ms;
            let v = self.reduce(cur, d, 1, |s, x| {
                let mut s = s.clone();
                s.faults[i].duration_ms = x;
                s
            });
            if v < d {
                self.step(format!("fault {}: duration {d} -> {v} ms", i + 1));
            }
        }
    }

    /// Move every fault earlier by the same amount (no swarm: its phase
    /// has its own timeline).
    fn shift_faults(&mut self, cur: &mut Scenario) {
        if cur.swarm.is_some() || cur.faults.is_empty() {
            return;
        }
        let first = cur.faults.iter().map(|f| f.at_ms).min().unwrap_or(0);
        let v = self.reduce(cur, first, 0, |s, x| {
            // `s` may have moved already: shift from its own first start.
            let mut s = s.clone();
            let now = s.faults.iter().map(|f| f.at_ms).min().unwrap_or(0);
            for f in &mut s.faults {
                f.at_ms -= now.saturating_sub(x).min(f.at_ms);
            }
            s
        });
        if v < first {
            self.step(format!(
                "faults moved {} ms earlier (first at {first} -> {v} ms)",
                first - v
            ));
        }
    }

    fn ddmin_workloads(&mut self, cur: &mut Scenario) {
        if let Some((n, keep)) = self.ddmin_list(cur, |s| &mut s.workloads) {
            let names: Vec<&str> = cur.workloads.iter().map(|w| w.name.as_str()).collect();
            self.step(format!(
                "workloads: {n} -> {} (ddmin; kept {})",
                keep.len(),
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ));
        }
    }

    fn workload_params(&mut self, cur: &mut Scenario) {
        for i in 0..cur.workloads.len() {
            let name = cur.workloads[i].name.clone();
            let c = cur.workloads[i].clients as u64;
            let v = self.reduce(cur, c, 1, |s, x| {
                let mut s = s.clone();
                s.workloads[i].clients = x as u32;
                s
            });
            if v < c {
                self.step(format!("workload {name}: clients {c} -> {v}"));
            }
            match cur.workloads[i].ops() {
                Ops::Count(n) => {
                    let v = self.reduce(cur, n, 1, |s, x| {
                        let mut s = s.clone();
                        s.workloads[i].ops = OpsSpec::Count(x);
                        s
                    });
                    if v < n {
                        self.step(format!("workload {name}: ops {n} -> {v} per client"));
                    }
                }
                Ops::PerSecond(r) => {
                    // In tenths of an op per second, down to 1/s.
                    let tenths = (r * 10.0).round() as u64;
                    if tenths > 10 {
                        let v = self.reduce(cur, tenths, 10, |s, x| {
                            let mut s = s.clone();
                            s.workloads[i].ops = OpsSpec::Rate(rate(x));
                            s
                        });
                        if v < tenths {
                            self.step(format!(
                                "workload {name}: ops {} -> {}",
                                rate(tenths),
                                rate(v)
                            ));
                        }
                    }
                }
            }
            let d = cur.workload_end_ms(&cur.workloads[i]);
            let floor = self.min_workload_ms(cur);
            let v = self.reduce(cur, d, floor, |s, x| {
                let mut s = s.clone();
                s.workloads[i].duration_ms = Some(x);
                s
            });
            if v < d {
                self.step(format!("workload {name}: duration {d} -> {v} ms"));
            }
        }
    }

    /// The shortest a workload may run: past the last heal by
    /// `heal_within_ms` with liveness on (else 1 ms).
    fn min_workload_ms(&self, s: &Scenario) -> u64 {
        if s.check.enabled("liveness") {
            (s.last_heal_ms() + s.liveness.heal_within_ms).max(1)
        } else {
            1
        }
    }

    fn scenario_duration(&mut self, cur: &mut Scenario) {
        let d = cur.duration_ms;
        let floor = self.min_workload_ms(cur).max(cur.last_heal_ms()).max(1);
        if floor >= d {
            return;
        }
        let v = self.reduce(cur, d, floor, |s, x| {
            let mut s = s.clone();
            s.duration_ms = x;
            for w in &mut s.workloads {
                w.duration_ms = w.duration_ms.map(|wd| wd.min(x));
            }
            s
        });
        if v < d {
            self.step(format!("duration_ms {d} -> {v}"));
        }
    }

    /// Replace `[swarm]` by the seed's drawn faults if the run still fails.
    fn materialize(&mut self, cur: &mut Scenario, notes: &mut Vec<String>) {
        if cur.swarm.is_none() {
            return;
        }
        let mut cand = cur.clone();
        let drawn = cand.faults_for(self.seed).0.len() - cand.faults.len();
        cand.faults = cand.faults_for(self.seed).0;
        cand.swarm = None;
        if let Err(e) = roundtrip(&cand) {
            notes.push(format!(
                "[swarm] kept: its {drawn} drawn fault(s) are not valid as scripted faults ({e}); only the scripted faults were shrunk"
            ));
            return;
        }
        if self.fails(&cand) {
            *cur = cand;
            self.step(format!(
                "[swarm] materialized: its {drawn} drawn fault(s) for seed {} are now [[fault]]s",
                self.seed
            ));
        } else {
            notes.push(format!(
                "[swarm] kept: with its {drawn} drawn fault(s) written out the seed no longer fails; only the scripted faults were shrunk"
            ));
        }
    }
}

/// The CLI name of the run's sabotage, if any.
fn sabotage_name(opts: RunOptions) -> Option<&'static str> {
    crate::runner::Sabotage::ALL
        .iter()
        .find(|(_, s)| *s == opts.sabotage)
        .map(|(n, _)| *n)
}

/// `40/s`, `2.5/s` from tenths of an op per second.
fn rate(tenths: u64) -> String {
    if tenths.is_multiple_of(10) {
        format!("{}/s", tenths / 10)
    } else {
        format!("{}.{}/s", tenths / 10, tenths % 10)
    }
}

/// Shrink `input`: the run must fail first. `log` sees a line per
/// accepted step.
pub fn shrink(input: &Input, log: &mut dyn FnMut(&str)) -> Result<Shrunk, String> {
    let scn = &input.scenario;
    // The candidates' TOML must stand for the scenario exactly.
    let back = roundtrip(scn)?;
    if back != *scn {
        return Err(format!(
            "{}: the scenario does not survive a TOML round trip unchanged; cannot shrink it",
            input.path
        ));
    }
    let job = Job {
        scenario: scn.clone(),
        path: input.path.clone(),
        extra: input.extra.clone(),
        opts: input.opts,
        commit: crate::report::git_commit(),
        check_determinism: false,
        out: PathBuf::from("reports"),
        write: Write::Never,
    };
    let first = sweep::run_one(&job, input.seed);
    let original_failed = first.failed_checks();
    if first.passed() {
        return Err(format!(
            "{} seed {} passes every check: nothing to shrink (replay: {})",
            input.path, input.seed, first.summary.replay
        ));
    }
    let expected: Vec<&str> = scn
        .bug_switches()
        .into_iter()
        .flat_map(|b| crate::bugmap::caught_by(b).iter().copied())
        .collect();
    let mut want: Vec<String> = original_failed
        .iter()
        .filter(|c| expected.contains(&c.as_str()))
        .cloned()
        .collect();
    if want.is_empty() {
        want = original_failed.clone();
    }
    log(&format!(
        "{} seed {}: fails {}; shrinking while one of {} fails",
        input.path,
        input.seed,
        original_failed.join(", "),
        want.join(", ")
    ));
    let mut sh = Shrinker {
        job,
        seed: input.seed,
        jobs: input.jobs.max(1),
        want: want.clone(),
        runs: 0,
        cache: BTreeMap::new(),
        log,
        steps: Vec::new(),
    };
    let mut cur = scn.clone();
    let mut notes = Vec::new();
    sh.materialize(&mut cur, &mut notes);
    for _ in 0..ROUNDS {
        let before = cur.clone();
        sh.ddmin_faults(&mut cur);
        sh.fault_durations(&mut cur);
        sh.shift_faults(&mut cur);
        sh.ddmin_workloads(&mut cur);
        sh.workload_params(&mut cur);
        sh.scenario_duration(&mut cur);
        if before == cur {
            break;
        }
    }
    // A workload running exactly as long as the scenario needs no
    // duration of its own (the same run, a shorter file).
    let d = cur.duration_ms;
    for w in &mut cur.workloads {
        if w.duration_ms == Some(d) {
            w.duration_ms = None;
        }
    }
    Ok(Shrunk {
        before: Size::of(scn, input.seed),
        after: Size::of(&cur, input.seed),
        scenario: cur,
        runs: sh.runs,
        want,
        original_failed,
        steps: sh.steps,
        notes,
    })
}

/// The regression entry: header comment, then the scenario with
/// `[bugs]` and `[regression]` (caught_by: `failed`, the checks the shrunk
/// scenario failed that a `[regression]` may name). With a sabotage the
/// entry cannot fail on its own: no `[regression]`, and the header says
/// which flag it needs.
pub fn render(input: &Input, shrunk: &Shrunk, failed: &[String]) -> Result<String, String> {
    let mut scn = shrunk.scenario.clone();
    let bugs = scn.bugs.enable.join(", ");
    let sabotage = sabotage_name(input.opts);
    let from = format!("{} seed {}", input.path, input.seed);
    let what = match (bugs.is_empty(), sabotage) {
        (_, Some(s)) => format!("--sabotage {s}"),
        (false, None) => bugs.clone(),
        (true, None) => "no bug switch".into(),
    };
    scn.description = if scn.description.is_empty() {
        format!("shrunk from {from} ({what})")
    } else {
        format!(
            "shrunk from {from} ({what}); the original: {}",
            scn.description
        )
    };
    scn.regression = None;
    if sabotage.is_none() {
        let caught_by: Vec<String> = failed
            .iter()
            .filter(|c| {
                ALWAYS_CHECKS.contains(&c.as_str())
                    || ((CHECKS.contains(&c.as_str()) || OPT_IN_CHECKS.contains(&c.as_str()))
                        && scn.check.enabled(c))
            })
            .cloned()
            .collect();
        if caught_by.is_empty() {
            return Err(format!(
                "the shrunk scenario fails only {}, which a [regression] cannot name",
                failed.join(", ")
            ));
        }
        scn.regression = Some(crate::scenario::Regression {
            seed: input.seed,
            caught_by,
            origin: format!(
                "sim shrink {} --seed {}{}{} ({} -> {}, {} runs)",
                input.path,
                input.seed,
                if input.extra.is_empty() { "" } else { " " },
                input.extra,
                shrunk.before,
                shrunk.after,
                shrunk.runs
            ),
        });
    }
    let mut o = String::new();
    o.push_str(&format!(
        "# Shrunk by `sim shrink` from {from} ({what}), keeping the seed.\n"
    ));
    o.push_str(&format!("# before: {}\n", shrunk.before));
    o.push_str(&format!("# after:  {}\n", shrunk.after));
    o.push_str(&format!(
        "# {} simulation runs; it fails {} (kept failing: one of {}).\n",
        shrunk.runs,
        failed.join(", "),
        shrunk.want.join(", ")
    ));
    for n in &shrunk.notes {
        o.push_str(&format!("# note: {n}\n"));
    }
    match sabotage {
        Some(s) => o.push_str(&format!(
            "# Fails only with --sabotage {s}: cargo run -p sim -- THIS_FILE --seed {} --sabotage {s}\n",
            input.seed
        )),
        None => o.push_str(&format!(
            "# Replay: cargo run -p sim -- THIS_FILE --seed {} (add --no-bugs: it must pass)\n",
            input.seed
        )),
    }
    o.push('\n');
    o.push_str(&scn.to_toml()?);
    // The header's own words must not break the file.
    roundtrip(&scn)?;
    Ok(o)
}

/// Run the scenario file at `path` with `seed`: its failing checks (empty
/// when it passed).
pub fn run_file(path: &Path, seed: u64, opts: RunOptions) -> Result<Vec<String>, String> {
    let scn = Scenario::load(path).map_err(|e| e.to_string())?;
    let mut job = Job::new(scn, &path.display().to_string(), PathBuf::from("reports"));
    job.opts = opts;
    job.write = Write::Never;
    Ok(sweep::run_one(&job, seed).failed_checks())
}

/// Shrink, write the entry to `out` and run it once more from disk: it
/// must still fail one of the wanted checks. Returns the shrink and the
/// checks the written file failed.
pub fn shrink_to_file(
    input: &Input,
    out: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<(Shrunk, Vec<String>), String> {
    let shrunk = shrink(input, log)?;
    // The final scenario's own failing checks become `caught_by`.
    let job = Job {
        scenario: shrunk.scenario.clone(),
        path: input.path.clone(),
        extra: input.extra.clone(),
        opts: input.opts,
        commit: String::new(),
        check_determinism: false,
        out: PathBuf::from("reports"),
        write: Write::Never,
    };
    let failed = sweep::run_one(&job, input.seed).failed_checks();
    let text = render(input, &shrunk, &failed)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(out, text).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    let again = run_file(out, input.seed, input.opts)?;
    if !again.iter().any(|c| shrunk.want.contains(c)) {
        return Err(format!(
            "{} written, but run from disk with seed {} it {} (expected one of {} to fail)",
            out.display(),
            input.seed,
            if again.is_empty() {
                "passes".to_string()
            } else {
                format!("fails only {}", again.join(", "))
            },
            shrunk.want.join(", ")
        ));
    }
    Ok((shrunk, again))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_even_and_covers() {
        let v: Vec<usize> = (0..7).collect();
        let parts = split(&v, 3);
        assert_eq!(parts, vec![vec![0, 1, 2], vec![3, 4], vec![5, 6]]);
        assert_eq!(rate(25), "2.5/s");
        assert_eq!(rate(400), "40/s");
    }
}
