//! `cargo run -p sim -- SCENARIO.toml [--seed N | --seeds A..B] [--check-determinism] [--out DIR]`
//!
//! Runs a scenario in the simulator for each seed, checks the history,
//! writes `DIR/<scenario>/<seed>/{summary.json,history.jsonl}` and prints a
//! verdict. Exit code 0 only if every seed passes every check (and, with
//! `--check-determinism`, every seed replays to the same history).

#[cfg(not(madsim))]
fn main() {
    eprintln!(
        "sim runs only in the simulated build (the default). Use: cargo run -p sim -- scenarios/partition.toml"
    );
    std::process::exit(2);
}

#[cfg(madsim)]
fn main() {
    std::process::exit(cli::main());
}

#[cfg(madsim)]
mod cli {
    use clap::Parser;
    use sim::check::Verdict;
    use sim::history::fingerprint;
    use sim::report;
    use sim::runner::{run_seed_with, RunOptions, Sabotage};
    use sim::scenario::Scenario;
    use std::path::PathBuf;

    #[derive(Parser, Debug)]
    #[command(
        name = "sim",
        about = "Run a ZooKeeper fault scenario in deterministic simulation"
    )]
    struct Args {
        /// Scenario file (TOML, see scenarios/README.md).
        scenario: PathBuf,
        /// Run this seed (default: one drawn from the wall clock, printed).
        #[arg(long, conflicts_with = "seeds")]
        seed: Option<u64>,
        /// Run a range of seeds: `A..B` (B excluded) or `A..=B`.
        #[arg(long)]
        seeds: Option<String>,
        /// Run each seed twice and require identical histories.
        #[arg(long)]
        check_determinism: bool,
        /// Self-test of the testbed: break the server on purpose (the only
        /// one so far: `lying-fsync`, a disk that acknowledges fsync without
        /// persisting). Crash scenarios must then FAIL.
        #[arg(long)]
        sabotage: Option<String>,
        /// Where reports go.
        #[arg(long, default_value = "reports")]
        out: PathBuf,
    }

    fn parse_range(s: &str) -> Result<Vec<u64>, String> {
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

    pub fn main() -> i32 {
        let args = Args::parse();
        let path = args.scenario.display().to_string();
        let scn = match Scenario::load(&args.scenario) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        };
        let seeds = match (&args.seed, &args.seeds) {
            (Some(s), _) => vec![*s],
            (None, Some(r)) => match parse_range(r) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("error: {e}");
                    return 2;
                }
            },
            (None, None) => {
                // Outside the simulation: the real wall clock.
                let s = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64 % 1_000_000_000)
                    .unwrap_or(1);
                println!("no --seed given; drew seed {s} from the clock");
                vec![s]
            }
        };
        let sabotage = match args.sabotage.as_deref() {
            None => Sabotage::None,
            Some("lying-fsync") => Sabotage::LyingFsync,
            Some(other) => {
                eprintln!("error: unknown --sabotage {other:?} (known: lying-fsync)");
                return 2;
            }
        };
        let opts = RunOptions { sabotage };
        let mut extra = Vec::new();
        if let Some(s) = &args.sabotage {
            extra.push(format!("--sabotage {s}"));
        }
        let extra = extra.join(" ");
        let commit = report::git_commit();
        let mut failed = Vec::new();
        for seed in seeds {
            let out = run_seed_with(&scn, seed, opts);
            let checks = report::judge(&scn, &out.events, out.panic.as_deref());
            let mut summary = report::summarize(
                &scn,
                &path,
                &extra,
                seed,
                &out.events,
                checks,
                out.sim_ms,
                out.wall.as_millis() as u64,
                &commit,
            );
            if args.check_determinism {
                let again = run_seed_with(&scn, seed, opts);
                let (a, b) = (fingerprint(&out.events), fingerprint(&again.events));
                let mut c = sim::check::CheckResult::new("determinism");
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
            print!("{}", report::render(&summary));
            match report::write(&args.out, &summary, &out.events) {
                Ok(dir) => println!("  report: {}", dir.display()),
                Err(e) => eprintln!("  could not write the report: {e}"),
            }
            if summary.verdict == Verdict::Fail {
                println!("  replay: {}  (commit {commit})", summary.replay);
                failed.push(seed);
            }
        }
        if failed.is_empty() {
            println!("verdict: PASS");
            0
        } else {
            println!("verdict: FAIL (seeds {failed:?})");
            for s in &failed {
                println!("  {}", report::replay_command(&path, *s, &extra));
            }
            1
        }
    }
}
