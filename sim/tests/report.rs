//! Reports, sweeps and witnesses: the HTML report is written with its plots
//! and verdict table; a sweep's exit status says whether every seed passed;
//! a broken history's violation comes with a small witness.
#![cfg(madsim)]

use sim::check::{check_all, CheckResult, Verdict};
use sim::history::{Event, OpName, Ty};
use sim::report::{judge, summarize, write_report};
use sim::runner::run_seed;
use sim::scenario::{Scenario, CHECKS};
use sim::sweep::{run_many, run_one, Job, Write};
use std::path::PathBuf;
use std::process::Command;

fn scenario_path(name: &str) -> String {
    format!("{}/../scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"))
}

fn scenario(name: &str) -> Scenario {
    Scenario::load(scenario_path(name)).unwrap_or_else(|e| panic!("{e}"))
}

/// A fresh directory under the system's temp dir.
fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sim-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn report_html_has_plots_and_verdicts() {
    let scn = scenario("partition");
    let out = run_seed(&scn, 1);
    assert!(!out.samples.is_empty(), "the monitor probed the server");
    assert!(
        out.samples
            .iter()
            .any(|s| matches!(s.mode.as_deref(), Some("leader" | "follower"))),
        "srvr answered: {:?}",
        &out.samples[..3]
    );
    let checks = judge(&scn, &out.events, out.panic.as_deref());
    let s = summarize(
        &scn,
        "scenarios/partition.toml",
        "",
        1,
        &out.events,
        checks,
        out.sim_ms,
        0,
        "test",
    );
    let dir = tmp("report");
    let at = write_report(&dir, &s, &out.events, &out.samples, &out.board).unwrap();
    assert!(at.join("board.jsonl").exists());
    let summary = std::fs::read_to_string(at.join("summary.json")).unwrap();
    assert!(summary.contains("\"replicas\""), "{summary}");
    assert!(summary.contains("\"role\": \"leader\""), "{summary}");
    let html = std::fs::read_to_string(at.join("report.html")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(html.matches("<svg").count(), 4, "four inline plots");
    for plot in ["timeline", "latency", "throughput", "zxid"] {
        assert!(html.contains(&format!("id=\"plot-{plot}\"")), "{plot}");
    }
    assert!(!html.contains("src=\"http"), "self-contained");
    assert!(html.contains("cargo run -p sim -- scenarios/partition.toml --seed 1"));
    let enabled = scn.check.enable.iter().map(String::as_str);
    for c in enabled.chain(["server_health", "well_formed"]) {
        assert!(
            html.contains(&format!("<tr><td>{c}</td><td class=\"pass\">PASS</td>")),
            "{c} row"
        );
    }
    assert!(html.contains("Servers at the end"), "final status table");
    assert!(html.contains("partition client:1"), "fault labels");
    assert!(html.contains("leader, epoch 1"), "role and epoch");
}

/// Index of the completion of the n-th successful `op` in the history.
fn nth_ok(events: &[Event], op: OpName, n: usize) -> usize {
    let ids: Vec<u64> = events
        .iter()
        .filter(|e| e.ty == Ty::Invoke && e.op == Some(op) && e.client != Some(0))
        .filter_map(|e| e.op_id)
        .collect();
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.ty == Ty::Ok && e.op_id.is_some_and(|i| ids.contains(&i)))
        .map(|(i, _)| i)
        .nth(n)
        .expect("enough ops")
}

fn result(events: &[Event], check: &str) -> CheckResult {
    let enabled = CHECKS.map(String::from);
    let r = check_all(events, &enabled, 5_000);
    r.into_iter().find(|c| c.name == check).unwrap()
}

#[test]
fn broken_histories_come_with_small_witnesses() {
    let scn = scenario("partition");
    let out = run_seed(&scn, 1);
    let good = out.events;

    // A read returns a value nobody wrote.
    let mut bad = good.clone();
    let i = nth_ok(&bad, OpName::GetData, 40);
    bad[i].value = Some("never-written".into());
    let r = result(&bad, "linearizability");
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(r.witness.contains(&i), "{:?} lacks {i}", r.witness);
    assert!(
        (2..=36).contains(&r.witness.len()),
        "witness of {} events: {:?}",
        r.witness.len(),
        r.witness
    );
    // The read, and a write of the same key before it.
    let key = bad[r.witness[0]].path.clone();
    assert!(
        r.witness.iter().any(|&w| bad[w].ty == Ty::Invoke
            && bad[w].op.is_some_and(OpName::is_write)
            && bad[w].path == key),
        "a write to {key:?} in {:?}",
        r.witness
    );

    // A session's reply goes back in time: the two replies, and their invokes.
    let mut bad2 = good.clone();
    let j = nth_ok(&bad2, OpName::Exists, 50);
    bad2[j].zxid = Some(1);
    let r2 = result(&bad2, "session_order");
    assert_eq!(r2.verdict, Verdict::Fail);
    assert!(r2.witness.contains(&j), "{:?} lacks {j}", r2.witness);
    assert!(r2.witness.len() <= 4, "{:?}", r2.witness);

    // The report shows the witness as a table.
    let checks = judge(&scn, &bad, None);
    let s = summarize(
        &scn,
        "scenarios/partition.toml",
        "",
        1,
        &bad,
        checks,
        0,
        0,
        "test",
    );
    let html = sim::html::render(&s, &bad, &out.samples, &out.board);
    assert!(html.contains("id=\"witness-linearizability\""));
    assert!(
        html.contains(&format!("<td>{}</td>", i + 1)),
        "line of the bad read"
    );
    assert!(html.contains("never-written"));
}

#[test]
fn sweep_runs_seeds_in_parallel_and_reports_failures_only() {
    let dir = tmp("sweep");
    let mut job = Job::new(
        scenario("partition"),
        "scenarios/partition.toml",
        dir.clone(),
    );
    job.write = Write::FailuresOnly;
    let mut seen = Vec::new();
    let tally = run_many(&job, &[1, 2, 3], 3, |r| seen.push(r.seed));
    seen.sort();
    assert_eq!(seen, vec![1, 2, 3]);
    assert!(tally.all_passed(), "{}", tally.table(&job, 3));
    assert!(!dir.exists(), "no report for passing seeds");
    let table = tally.table(&job, 3);
    assert!(table.contains("linearizability"), "{table}");
    assert!(table.contains("sim-s per wall-s"), "{table}");
    // A seed's history does not depend on what runs beside it.
    let alone = run_one(&job, 2);
    assert_eq!(
        alone.summary.history_hash,
        tally.results[1].summary.history_hash
    );
}

fn sim_cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("run the sim binary")
}

#[test]
fn sweep_exit_status() {
    let dir = tmp("cli");
    let out = dir.display().to_string();
    let pass = sim_cli(&[
        "scenarios/smoke.toml",
        "--seeds",
        "1..4",
        "--jobs",
        "3",
        "--no-report",
        "--out",
        &out,
    ]);
    let stdout = String::from_utf8_lossy(&pass.stdout);
    assert_eq!(pass.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("verdict: PASS (3 of 3 seeds passed)"),
        "{stdout}"
    );
    assert!(!dir.exists(), "--no-report wrote files for passing seeds");

    // A disk that lies about fsync fails leader-crash.
    let fail = sim_cli(&[
        "scenarios/leader-crash.toml",
        // One server: a lying disk under a whole ensemble's minority is
        // what ZAB is built to survive.
        "--servers",
        "1",
        "--seeds",
        "1..=2",
        "--jobs",
        "2",
        "--no-report",
        "--sabotage",
        "lying-fsync",
        "--out",
        &out,
    ]);
    let stdout = String::from_utf8_lossy(&fail.stdout);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(fail.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("failing seeds"), "{stdout}");
    assert!(
        stdout.contains("--seed 1 --servers 1 --sabotage lying-fsync"),
        "replay command listed: {stdout}"
    );
    assert!(
        stdout.contains("report.html"),
        "failing seeds get a report: {stdout}"
    );
}

/// Three servers, a register workload, the leader killed at 4 s for 2 s.
const LEADER_CRASH_3: &str = r#"
description = "3 servers, the leader crashes"
duration_ms = 12000

[cluster]
servers = 3
tick_ms = 200
min_session_timeout_ms = 1000
max_session_timeout_ms = 20000

[[workload]]
name = "reg"
kind = "register"
clients = 3
keys = 3
ops = "25/s"
session_timeout_ms = 6000
request_timeout_ms = 2000

[[fault]]
at_ms = 4000
duration_ms = 2000
kind = "crash"
target = "leader"

[liveness]
heal_within_ms = 6000
"#;

#[test]
fn failover_is_measured_and_reported() {
    let scn = Scenario::parse(LEADER_CRASH_3, "leader-crash-3.toml").unwrap();
    let out = run_seed(&scn, 7);
    assert!(out.panic.is_none(), "{:?}", out.panic);
    let checks = judge(&scn, &out.events, None);
    let mut s = summarize(
        &scn,
        "leader-crash-3.toml",
        "",
        7,
        &out.events,
        checks,
        out.sim_ms,
        0,
        "test",
    );
    // From the history alone: the old leader and the first write, no
    // election time.
    assert_eq!(s.failover.len(), 1, "{:?}", s.failover);
    assert_eq!(s.failover[0].election_ms, None);
    sim::report::add_failover(&mut s, &out.events, &out.board);
    assert_eq!(s.failover.len(), 1, "{:?}", s.failover);
    let f = s.failover[0].clone();
    let start = out
        .events
        .iter()
        .find(|e| e.ty == Ty::FaultStart)
        .expect("the crash");
    let detail = start.detail.as_deref().unwrap_or("");
    assert!(
        detail.contains(&format!("leader = server:{}", f.old_leader)),
        "{detail} vs {f:?}"
    );
    assert_eq!((f.fault_id, f.kind.as_str()), (1, "crash"));
    let (new, epoch, election) = (
        f.new_leader.expect("a new leader"),
        f.new_epoch.expect("its epoch"),
        f.election_ms.expect("an election"),
    );
    assert_ne!(new, f.old_leader, "the old leader was down: {f:?}");
    assert!(epoch > f.old_epoch.expect("the old epoch"), "{f:?}");
    assert!(election > 0 && election < 5000, "{f:?}");
    let first = f.first_write_ms.expect("writes resumed");
    assert!(first + 100 >= election && first < 8000, "{f:?}");
    let gap = f.unavailable_ms.expect("a gap");
    assert!(gap > 0 && gap <= election + 5000, "{f:?}");

    // The text verdict, summary.json and report.html show it.
    let text = sim::report::render(&s);
    println!("{text}");
    let line = format!(
        "  failover fault 1 (crash of leader server:{}): server:{new} leads epoch {epoch} after {election} ms; writes resume after {first} ms",
        f.old_leader
    );
    assert!(text.contains(&line), "{text}");
    // A summary without election times gets them from the board when
    // written.
    s.failover.clear();
    let dir = tmp("failover");
    let at = write_report(&dir, &s, &out.events, &out.samples, &out.board).unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(at.join("summary.json")).unwrap()).unwrap();
    let html = std::fs::read_to_string(at.join("report.html")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let fo = &summary["failover"][0];
    assert_eq!(fo["fault_id"], 1);
    assert_eq!(fo["new_leader"], new);
    assert_eq!(fo["election_ms"], election);
    assert_eq!(fo["first_write_ms"], first);
    assert!(html.contains("id=\"failover\""), "fail-over table");
    assert!(html.contains("sampled every 100 ms"), "resolution noted");
    assert!(
        html.contains(&format!("<td>{election}</td><td>{first}</td>")),
        "election and first write in the table"
    );
    assert!(
        html.contains(&format!("#1 new leader +{election} ms")),
        "the tick on the timeline"
    );

    // Deterministic: the same seed measures the same.
    let again = run_seed(&scn, 7);
    assert_eq!(sim::failover::measure(&again.events, &again.board), vec![f]);
}
