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
    use sim::report;
    use sim::runner::{RunOptions, Sabotage};
    use sim::scenario::Scenario;
    use sim::sweep::{self, Job, SeedResult, Tally};
    use std::io::IsTerminal;
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
    }

    pub fn main() -> i32 {
        let args = Args::parse();
        match run(args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e}");
                2
            }
        }
    }

    fn run(args: Args) -> Result<i32, String> {
        let path = args.scenario.display().to_string();
        let mut scn = Scenario::load(&args.scenario).map_err(|e| e.to_string())?;
        if let Some(n) = args.servers {
            scn = scn.with_servers(n)?;
        }
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
        let sabotage = match args.sabotage.as_deref() {
            None => Sabotage::None,
            Some(name) => Sabotage::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = Sabotage::ALL.iter().map(|(n, _)| *n).collect();
                format!("unknown --sabotage {name:?} (known: {})", known.join(", "))
            })?,
        };
        let jobs = match args.jobs {
            Some(0) => return Err("--jobs must be at least 1".into()),
            Some(j) => j,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let extra = [
            args.servers.map(|n| format!("--servers {n}")),
            args.sabotage.as_ref().map(|s| format!("--sabotage {s}")),
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
