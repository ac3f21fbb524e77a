//! `cargo run -p sim -- SCENARIO.toml [--seed N | --seeds A..B [--jobs J]] [--check-determinism] [--no-report] [--out DIR]`
//!
//! Runs a scenario in the simulator for each seed, checks the history,
//! writes `DIR/<scenario>/<seed>/{report.html,summary.json,history.jsonl,servers.jsonl}`
//! and prints a verdict. A sweep (`--seeds`) runs `J` seeds at a time, shows
//! a progress bar on a terminal and ends with a table: passes and failures
//! per check, the failing seeds with their replay commands, and the speed
//! (simulated seconds per wall second). Exit code 0 only if every seed
//! passes every check (and, with `--check-determinism`, every seed replays
//! to the same history); 1 if any fails; 2 on a usage error.
//!
//! Four subcommands (a first argument `hunt`, `shrink`, `regress` or `cover`; see
//! `sim/ARCHITECTURE.md`, "Hunting, shrinking, regressions"):
//!
//! - `sim hunt --bug ID | --all [--seeds A..B] [--jobs J] [--starts K]`:
//!   seeds to first failure of a reintroduced bug (`sim::hunt`); exit 1 if
//!   a hunt finds nothing;
//! - `sim shrink SCENARIO.toml --seed N [--bug ID ...] [--servers N] [--out FILE]`:
//!   a smaller scenario failing the same way, written as a regression entry
//!   (`sim::shrink`); exit 2 if the seed does not fail;
//! - `sim regress [DIR] [--canary]`: the regression corpus (`sim::regress`);
//!   exit 1 if an entry misbehaves or the canary's failure goes unreported;
//! - `sim cover [DIR] [--seeds A..B]`: every scenario of DIR, and the
//!   coverage marks they hit (`sim::coverage`); exit 1 if a required mark
//!   is not hit or a run fails.

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
    use clap::{Parser, Subcommand};
    use sim::runner::{RunOptions, Sabotage};
    use sim::scenario::Scenario;
    use sim::sweep::{self, Job, SeedResult, Tally};
    use sim::{hunt, regress, report, shrink};
    use std::io::IsTerminal;
    use std::path::PathBuf;
    use zkcore::bugs::Bug;

    #[derive(Parser, Debug)]
    #[command(
        name = "sim",
        about = "Run a ZooKeeper fault scenario in deterministic simulation",
        args_conflicts_with_subcommands = true,
        subcommand_negates_reqs = true
    )]
    struct Cli {
        #[command(subcommand)]
        cmd: Option<Cmd>,
        #[command(flatten)]
        run: Args,
    }

    #[derive(Subcommand, Debug)]
    enum Cmd {
        /// Seeds to first failure of a reintroduced bug, on its scenarios
        /// from the bug map (sim/src/bugmap.rs).
        Hunt(HuntArgs),
        /// Shrink a failing (scenario, seed) to a smaller scenario that
        /// fails the same way, written as a regression entry.
        Shrink(ShrinkArgs),
        /// Replay the regression corpus: each entry fails with its bug on
        /// and passes with it off.
        Regress(RegressArgs),
        /// Run every scenario of a directory and report the coverage marks
        /// hit; fail if a required mark is not.
        Cover(CoverArgs),
    }

    #[derive(clap::Args, Debug)]
    struct CoverArgs {
        /// The scenario directory (its subdirectories are not read).
        #[arg(default_value = "scenarios")]
        dir: PathBuf,
        /// Seeds per scenario: `A..B` or `A..=B`.
        #[arg(long, default_value = "1..=3")]
        seeds: String,
        /// Runs at once. Default: the number of CPUs.
        #[arg(long)]
        jobs: Option<usize>,
        /// Where reports of failing runs go.
        #[arg(long, default_value = "reports")]
        out: PathBuf,
    }

    #[derive(clap::Args, Debug)]
    struct HuntArgs {
        /// The bug to hunt (`ZK-335`).
        #[arg(
            long,
            value_name = "ID",
            required_unless_present = "all",
            conflicts_with = "all"
        )]
        bug: Option<String>,
        /// Hunt every bug and print a Markdown table.
        #[arg(long)]
        all: bool,
        /// Seeds of the first hunt: `A..B` or `A..=B`; further starts move
        /// them by 100000 each.
        #[arg(long, default_value = "1..=2000")]
        seeds: String,
        /// Seeds run at once. Default: the number of CPUs.
        #[arg(long)]
        jobs: Option<usize>,
        /// Hunt from this many starting seeds, 100000 apart, and report
        /// the median seeds to first failure.
        #[arg(long, default_value_t = 1)]
        starts: usize,
    }

    #[derive(clap::Args, Debug)]
    struct ShrinkArgs {
        /// The scenario file that fails.
        scenario: PathBuf,
        /// The failing seed (kept).
        #[arg(long)]
        seed: u64,
        /// Switch a bug on (repeatable), as for a run.
        #[arg(long = "bug", value_name = "ID")]
        bugs: Vec<String>,
        /// Switch the scenario's own `[bugs]` off.
        #[arg(long)]
        no_bugs: bool,
        /// Run on this many servers (1, 3 or 5).
        #[arg(long)]
        servers: Option<u32>,
        /// A sabotage, as for a run (the result then fails only with it
        /// and is no regression entry).
        #[arg(long)]
        sabotage: Option<String>,
        /// Where to write the shrunk scenario. Default:
        /// scenarios/regressions/<bug-or-scenario>-<seed>-shrunk.toml.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Candidates run at once (the result does not depend on it).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
    }

    #[derive(clap::Args, Debug)]
    struct RegressArgs {
        /// The corpus directory.
        #[arg(default_value = "scenarios/regressions")]
        dir: PathBuf,
        /// Only the canary: the cheapest entry with its bug on must be
        /// reported as a failure.
        #[arg(long)]
        canary: bool,
        /// Runs at once. Default: the number of CPUs.
        #[arg(long)]
        jobs: Option<usize>,
    }

    #[derive(clap::Args, Debug)]
    struct Args {
        /// Scenario file (TOML, see scenarios/README.md).
        #[arg(required = true)]
        scenario: Option<PathBuf>,
        /// Run this seed (default: one drawn from the wall clock, printed).
        #[arg(long, conflicts_with = "seeds")]
        seed: Option<u64>,
        /// Run a range of seeds: `A..B` (B excluded) or `A..=B`.
        #[arg(long)]
        seeds: Option<String>,
        /// Seeds run at once (each on its own OS thread, outside the
        /// simulation). Default: the number of CPUs.
        #[arg(long)]
        jobs: Option<usize>,
        /// Run each seed twice and require identical histories.
        #[arg(long)]
        check_determinism: bool,
        /// Write report files only for failing seeds.
        #[arg(long)]
        no_report: bool,
        /// Self-test of the testbed: break the server on purpose
        /// (`lying-fsync`: a disk that acknowledges fsync without
        /// persisting; `drop-watch-event`: one watch notification is lost).
        /// The matching checks must then FAIL.
        #[arg(long)]
        sabotage: Option<String>,
        /// Where reports go.
        #[arg(long, default_value = "reports")]
        out: PathBuf,
        /// Run the scenario on this many servers (1, 3 or 5) instead of
        /// its `[cluster] servers`.
        #[arg(long)]
        servers: Option<u32>,
        /// Switch a reintroduced ZooKeeper bug on (repeatable), on top of
        /// the scenario's `[bugs] enable`: `--bug ZK-335`.
        #[arg(long = "bug", value_name = "ID")]
        bugs: Vec<String>,
        /// Switch the scenario's own `[bugs]` off (a regression entry must
        /// pass without its bug).
        #[arg(long)]
        no_bugs: bool,
    }

    pub fn main() -> i32 {
        let cli = Cli::parse();
        let result = match cli.cmd {
            None => run(cli.run),
            Some(Cmd::Hunt(a)) => hunt(a),
            Some(Cmd::Shrink(a)) => shrink(a),
            Some(Cmd::Regress(a)) => regress(a),
            Some(Cmd::Cover(a)) => cover(a),
        };
        match result {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e}");
                2
            }
        }
    }

    fn parse_bug(id: &str) -> Result<Bug, String> {
        Bug::from_id(id).ok_or_else(|| {
            let known: Vec<&str> = Bug::ALL.iter().map(|b| b.id()).collect();
            format!("unknown --bug {id:?} (known: {})", known.join(", "))
        })
    }

    fn parse_sabotage(name: Option<&str>) -> Result<Sabotage, String> {
        match name {
            None => Ok(Sabotage::None),
            Some(name) => Sabotage::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = Sabotage::ALL.iter().map(|(n, _)| *n).collect();
                format!("unknown --sabotage {name:?} (known: {})", known.join(", "))
            }),
        }
    }

    fn parse_jobs(jobs: Option<usize>) -> Result<usize, String> {
        match jobs {
            Some(0) => Err("--jobs must be at least 1".into()),
            Some(j) => Ok(j),
            None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
        }
    }

    /// The scenario as the flags change it: `--servers`, `--no-bugs`, `--bug`.
    fn load_with(
        path: &std::path::Path,
        servers: Option<u32>,
        no_bugs: bool,
        bugs: &[String],
    ) -> Result<Scenario, String> {
        let mut scn = Scenario::load(path).map_err(|e| e.to_string())?;
        if let Some(n) = servers {
            scn = scn.with_servers(n)?;
        }
        if no_bugs {
            scn.bugs.enable.clear();
        }
        for id in bugs {
            let b = parse_bug(id)?;
            if !scn.bug_switches().contains(&b) {
                scn.bugs.enable.push(b.id().to_string());
            }
        }
        Ok(scn)
    }

    fn run(args: Args) -> Result<i32, String> {
        let scenario = args.scenario.clone().ok_or("a scenario file is required")?;
        let path = scenario.display().to_string();
        let scn = load_with(&scenario, args.servers, args.no_bugs, &args.bugs)?;
        let sweeping = args.seeds.is_some();
        let seeds = match (&args.seed, &args.seeds) {
            (Some(s), _) => vec![*s],
            (None, Some(r)) => sweep::parse_range(r)?,
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
        let sabotage = parse_sabotage(args.sabotage.as_deref())?;
        let jobs = parse_jobs(args.jobs)?;
        let extra = [
            args.servers.map(|n| format!("--servers {n}")),
            args.sabotage.as_ref().map(|s| format!("--sabotage {s}")),
            args.no_bugs.then(|| "--no-bugs".to_string()),
            (!args.bugs.is_empty()).then(|| {
                args.bugs
                    .iter()
                    .map(|b| format!("--bug {b}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            }),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
        let job = Job {
            scenario: scn,
            path,
            extra,
            opts: RunOptions { sabotage },
            commit: report::git_commit(),
            check_determinism: args.check_determinism,
            out: args.out.clone(),
            write: if args.no_report {
                sweep::Write::FailuresOnly
            } else {
                sweep::Write::Always
            },
        };
        if !sweeping {
            let r = sweep::run_one(&job, seeds[0]);
            print!("{}", report::render(&r.summary));
            print_written(&r);
            let pass = r.passed();
            if !pass {
                println!("  replay: {}  (commit {})", r.summary.replay, job.commit);
            }
            println!("verdict: {}", if pass { "PASS" } else { "FAIL" });
            return Ok(if pass { 0 } else { 1 });
        }

        let bar = progress_bar(seeds.len() as u64);
        let mut failed = 0;
        let tally = sweep::run_many(&job, &seeds, jobs, |r: &SeedResult| {
            bar.inc(1);
            if !r.passed() {
                failed += 1;
                bar.set_message(format!("{failed} failed"));
            }
            // On a terminal the bar shows progress: print failures only.
            if r.passed() && !bar.is_hidden() {
                return;
            }
            bar.suspend(|| {
                if r.passed() {
                    println!("{}", sweep::one_line(r));
                } else {
                    print!("{}", report::render(&r.summary));
                }
                print_written(r);
            });
        });
        bar.finish_and_clear();
        print!("{}", tally.table(&job, jobs));
        Ok(exit_code(&tally))
    }

    fn hunt(a: HuntArgs) -> Result<i32, String> {
        let jobs = parse_jobs(a.jobs)?;
        if a.starts == 0 {
            return Err("--starts must be at least 1".into());
        }
        let seeds = sweep::parse_range(&a.seeds)?;
        let (first, count) = (seeds[0], seeds.len() as u64);
        let bugs: Vec<Bug> = match (&a.bug, a.all) {
            (_, true) => Bug::ALL.to_vec(),
            (Some(id), false) => vec![parse_bug(id)?],
            (None, false) => return Err("hunt: name a bug (--bug ZK-335) or --all".into()),
        };
        let mut rows = Vec::new();
        let mut all_found = true;
        for bug in bugs {
            let grounds = hunt::prepare(bug)?;
            let names: Vec<String> = grounds
                .iter()
                .map(|(g, _)| format!("{} ({} servers)", g.scenario, g.servers))
                .collect();
            println!(
                "hunt {bug}: {}\n  on {}; {count} seeds from each of {} start(s), {jobs} at a time",
                bug.summary(),
                names.join(", "),
                a.starts
            );
            let mut outcomes = Vec::new();
            for start in hunt::starts(first, a.starts) {
                let bar = progress_bar(count);
                let o = hunt::hunt(bug, &grounds, start, count, jobs, |done| {
                    bar.set_position(done)
                });
                bar.finish_and_clear();
                println!("  {}", hunt::describe(start, &o));
                all_found &= matches!(o, hunt::Outcome::Found(_));
                outcomes.push(o);
            }
            if a.starts > 1 {
                let s = hunt::stats(&outcomes);
                let figs: Vec<String> = outcomes.iter().map(hunt::Outcome::figure).collect();
                println!(
                    "  seeds to first failure over {} starts: median {}, min {}, max {} (each: {})",
                    s.of,
                    s.median,
                    s.min,
                    s.max,
                    figs.join(", ")
                );
            }
            rows.push(hunt::Row { bug, outcomes });
        }
        if a.all {
            println!("\n{}", hunt::table(&rows));
        }
        if !all_found {
            println!("verdict: not found within {count} seeds (from at least one start)");
            return Ok(1);
        }
        Ok(0)
    }

    fn shrink(a: ShrinkArgs) -> Result<i32, String> {
        if a.jobs == 0 {
            return Err("--jobs must be at least 1".into());
        }
        let scenario = load_with(&a.scenario, a.servers, a.no_bugs, &a.bugs)?;
        let sabotage = parse_sabotage(a.sabotage.as_deref())?;
        let extra = [
            a.servers.map(|n| format!("--servers {n}")),
            a.sabotage.as_ref().map(|s| format!("--sabotage {s}")),
            a.no_bugs.then(|| "--no-bugs".to_string()),
        ]
        .into_iter()
        .flatten()
        .chain(a.bugs.iter().map(|b| format!("--bug {b}")))
        .collect::<Vec<_>>()
        .join(" ");
        let stem = if scenario.bugs.enable.is_empty() || a.sabotage.is_some() {
            scenario.name.clone()
        } else {
            scenario.bugs.enable.join("-").to_lowercase()
        };
        let out = a.out.clone().unwrap_or_else(|| {
            let dir = if a.sabotage.is_some() {
                "reports/shrink"
            } else {
                "scenarios/regressions"
            };
            PathBuf::from(dir).join(format!("{stem}-{}-shrunk.toml", a.seed))
        });
        let input = shrink::Input {
            scenario,
            path: a.scenario.display().to_string(),
            extra,
            seed: a.seed,
            opts: RunOptions { sabotage },
            jobs: a.jobs,
        };
        let (sh, failed) = shrink::shrink_to_file(&input, &out, &mut |l| println!("{l}"))?;
        println!("before: {}", sh.before);
        println!("after:  {}", sh.after);
        for n in &sh.notes {
            println!("note: {n}");
        }
        println!(
            "{} runs; wrote {}; run from disk with seed {} it fails {}",
            sh.runs,
            out.display(),
            a.seed,
            failed.join(", ")
        );
        println!(
            "  replay: cargo run -p sim -- {} --seed {}{}",
            out.display(),
            a.seed,
            a.sabotage
                .as_ref()
                .map_or(String::new(), |s| format!(" --sabotage {s}"))
        );
        Ok(0)
    }

    fn regress(a: RegressArgs) -> Result<i32, String> {
        let jobs = parse_jobs(a.jobs)?;
        let loaded = regress::load_dir(&a.dir)?;
        let skipped: Vec<PathBuf> = loaded
            .iter()
            .filter_map(|l| match l {
                regress::Loaded::Skipped { file } => Some(file.clone()),
                _ => None,
            })
            .collect();
        if skipped.len() == loaded.len() {
            return Err(format!(
                "{}: no *.toml with a [regression] table",
                a.dir.display()
            ));
        }
        let canary = regress::canary(&loaded);
        if a.canary && canary.is_none() {
            return Err(format!(
                "{}: no entry with [bugs] to run the canary on",
                a.dir.display()
            ));
        }
        let rows = if a.canary {
            Vec::new()
        } else {
            regress::run(&loaded, jobs)
        };
        print!("{}", regress::table(canary.as_ref(), &rows, &skipped));
        Ok(regress::exit_code(canary.as_ref(), &rows))
    }

    fn cover(a: CoverArgs) -> Result<i32, String> {
        let jobs = parse_jobs(a.jobs)?;
        let seeds = sweep::parse_range(&a.seeds)?;
        let files = sim::coverage::scenario_files(&a.dir)?;
        let cov = sim::coverage::sweep(&files, &seeds, jobs, &a.out)?;
        print!("{}", cov.table());
        Ok(if cov.missing().is_empty() && cov.failed.is_empty() {
            0
        } else {
            1
        })
    }

    fn exit_code(t: &Tally) -> i32 {
        if t.all_passed() {
            0
        } else {
            1
        }
    }

    fn print_written(r: &SeedResult) {
        match &r.written {
            Some(Ok(dir)) => println!("  report: {}", dir.join("report.html").display()),
            Some(Err(e)) => eprintln!("  could not write the report: {e}"),
            None => {}
        }
    }

    /// On stderr, only when it is a terminal.
    fn progress_bar(n: u64) -> indicatif::ProgressBar {
        if !std::io::stderr().is_terminal() {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(n),
            indicatif::ProgressDrawTarget::stderr(),
        );
        let style = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} seeds  {elapsed_precise} (eta {eta})  {msg}",
        )
        .expect("valid template");
        bar.set_style(style);
        bar
    }
}
