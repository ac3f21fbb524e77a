//! The shipped scenarios over fixed seeds, determinism, and proof that the
//! checkers catch broken histories and a broken server.
#![cfg(madsim)]

use sim::check::{check_all, Verdict};
use sim::history::{fingerprint, Event, OpName, Ty};
use sim::report::judge;
use sim::runner::{run_seed, run_seed_with, RunOptions, Sabotage};
use sim::scenario::{Scenario, CHECKS};

fn scenario(name: &str) -> Scenario {
    let path = format!("{}/../scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn assert_passes(name: &str, seeds: &[u64]) {
    let scn = scenario(name);
    for &seed in seeds {
        let out = run_seed(&scn, seed);
        let checks = judge(&scn, &out.events, out.panic.as_deref());
        for c in &checks {
            assert_ne!(
                c.verdict,
                Verdict::Fail,
                "{name} seed {seed}: {} failed: {:#?}\nreplay: cargo run -p sim -- scenarios/{name}.toml --seed {seed}",
                c.name,
                c.violations
            );
        }
        let ops = out.events.iter().filter(|e| e.ty == Ty::Ok).count();
        assert!(ops > 100, "{name} seed {seed}: only {ops} ops succeeded");
    }
}

/// Every `scenarios/*.toml` (so a new scenario is covered without
/// touching this file): seeds 1 and 2 pass, and seed 1
/// again gives the same history. Two scenarios at a time.
#[test]
fn every_scenario_passes_and_is_deterministic() {
    let dir = format!("{}/../scenarios", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let stem = p.file_stem()?.to_string_lossy().into_owned();
            (p.extension()? == "toml").then_some(stem)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 8, "{names:?}");
    for pair in names.chunks(2) {
        std::thread::scope(|s| {
            for name in pair {
                s.spawn(move || {
                    assert_passes(name, &[1, 2]);
                    let scn = scenario(name);
                    let (a, b) = (run_seed(&scn, 1), run_seed(&scn, 1));
                    assert_eq!(
                        fingerprint(&a.events),
                        fingerprint(&b.events),
                        "{name}: seed 1 is not deterministic"
                    );
                });
            }
        });
    }
}

#[test]
fn same_seed_same_history() {
    let scn = scenario("partition");
    let a = run_seed(&scn, 7);
    let b = run_seed(&scn, 7);
    assert_eq!(fingerprint(&a.events), fingerprint(&b.events));
    assert_eq!(a.events, b.events);
    let c = run_seed(&scn, 8);
    assert_ne!(fingerprint(&a.events), fingerprint(&c.events));
    // Also while another simulation runs in the same process (tokio's
    // select! RNG is process-global: every select! in the sim is biased).
    let other = scn.clone();
    let bg = std::thread::spawn(move || run_seed(&other, 9));
    let d = run_seed(&scn, 7);
    bg.join().unwrap();
    assert_eq!(a.events, d.events);
}

fn verdict_of(events: &[Event], check: &str) -> Verdict {
    let enabled = CHECKS.map(String::from);
    let r = check_all(events, &enabled, 5_000);
    r.into_iter().find(|c| c.name == check).unwrap().verdict
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

#[test]
fn broken_histories_are_caught() {
    let scn = scenario("partition");
    let good = run_seed(&scn, 1).events;
    for c in ["linearizability", "session_order", "durability", "liveness"] {
        assert_eq!(
            verdict_of(&good, c),
            Verdict::Pass,
            "{c} on the real history"
        );
    }

    // A read returns a value nobody wrote.
    let mut bad = good.clone();
    let i = nth_ok(&bad, OpName::GetData, 40);
    bad[i].value = Some("never-written".into());
    assert_eq!(verdict_of(&bad, "linearizability"), Verdict::Fail);

    // A setData reports a version that skips one.
    let mut bad = good.clone();
    let i = nth_ok(&bad, OpName::SetData, 30);
    *bad[i].version.as_mut().unwrap() += 1;
    assert_eq!(verdict_of(&bad, "linearizability"), Verdict::Fail);

    // A session's reply goes back in time.
    let mut bad = good.clone();
    let i = nth_ok(&bad, OpName::Exists, 50);
    bad[i].zxid = Some(1);
    assert_eq!(verdict_of(&bad, "session_order"), Verdict::Fail);

    // The final read-back disagrees with the acknowledged writes.
    let mut bad = good.clone();
    let last_read = bad
        .iter()
        .rposition(|e| e.ty == Ty::Ok && e.client == Some(0) && e.value.is_some())
        .expect("a final read");
    bad[last_read].value = Some("lost".into());
    assert_eq!(verdict_of(&bad, "durability"), Verdict::Fail);

    // Every client goes silent after the last heal.
    let heal = good
        .iter()
        .filter(|e| e.ty == Ty::FaultEnd)
        .map(|e| e.t_us)
        .max()
        .unwrap();
    let bad: Vec<Event> = good
        .iter()
        .filter(|e| !(e.t_us > heal && matches!(e.ty, Ty::Ok | Ty::Fail) && e.client != Some(0)))
        .cloned()
        .collect();
    assert_eq!(verdict_of(&bad, "liveness"), Verdict::Fail);
}

#[test]
fn a_disk_that_lies_about_fsync_is_caught() {
    // On one server: under an ensemble, a minority losing what it
    // acknowledged is exactly what ZAB survives.
    let scn = scenario("leader-crash").with_servers(1).unwrap();
    let out = run_seed_with(
        &scn,
        1,
        RunOptions {
            sabotage: Sabotage::LyingFsync,
        },
    );
    let checks = judge(&scn, &out.events, out.panic.as_deref());
    let durability = checks.iter().find(|c| c.name == "durability").unwrap();
    assert_eq!(durability.verdict, Verdict::Fail, "{durability:#?}");
}

#[test]
fn a_server_that_drops_a_watch_event_is_caught() {
    // `--sabotage drop-watch-event`: seeds 1..=300 of this scenario are all
    // caught (see sim/ARCHITECTURE.md); seed 3 drops the server's notification
    // number `drop_watch_event_n(3)`.
    let scn = scenario("lost-watch-window");
    let out = run_seed_with(
        &scn,
        3,
        RunOptions {
            sabotage: Sabotage::DropWatchEvent,
        },
    );
    let checks = judge(&scn, &out.events, out.panic.as_deref());
    let watch = checks.iter().find(|c| c.name == "watch").unwrap();
    assert_eq!(watch.verdict, Verdict::Fail, "{watch:#?}");
    assert!(watch.violations[0].contains("lost event"), "{watch:#?}");
    for c in checks.iter().filter(|c| c.name != "watch") {
        assert_ne!(
            c.verdict,
            Verdict::Fail,
            "only the watch check should fail: {c:#?}"
        );
    }
}

#[test]
fn broken_watch_lock_and_ephemeral_histories_are_caught() {
    let scn = scenario("lost-watch-window");
    let good = run_seed(&scn, 1).events;
    for c in ["watch", "ephemeral", "lock"] {
        assert_eq!(
            verdict_of(&good, c),
            Verdict::Pass,
            "{c} on the real history"
        );
    }
    let events_of = |ty: Ty| -> Vec<usize> {
        good.iter()
            .enumerate()
            .filter(|(_, e)| e.ty == ty)
            .map(|(i, _)| i)
            .collect()
    };
    // A notification goes missing.
    let mut bad = good.clone();
    bad.remove(events_of(Ty::WatchEvent)[200]);
    assert_eq!(verdict_of(&bad, "watch"), Verdict::Fail);
    // A notification arrives twice.
    let mut bad = good.clone();
    let i = events_of(Ty::WatchEvent)[300];
    bad.insert(i + 1, bad[i].clone());
    assert_eq!(verdict_of(&bad, "watch"), Verdict::Fail);
    // A read finds a live session's ephemeral lock node missing.
    let mut bad = good.clone();
    let i = good
        .iter()
        .position(|e| e.ty == Ty::Ok && e.exists == Some(true) && e.owner.is_some())
        .expect("an exists that saw an ephemeral");
    bad[i].exists = Some(false);
    bad[i].owner = None;
    bad[i].version = None;
    bad[i].mzxid = None;
    assert_eq!(verdict_of(&bad, "ephemeral"), Verdict::Fail);
    // Two holders: a fenced write claims an earlier holder's token.
    let mut bad = good.clone();
    let fenced: Vec<usize> = good
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            e.ty == Ty::Invoke && e.value.as_deref().is_some_and(|v| v.contains(";token="))
        })
        .map(|(i, _)| i)
        .collect();
    let earlier = good[fenced[10]].value.clone().unwrap();
    let token = earlier.split(";token=").nth(1).unwrap().to_string();
    let v = bad[fenced[20]].value.clone().unwrap();
    bad[fenced[20]].value = Some(format!(
        "{};token={token}",
        v.split(";token=").next().unwrap()
    ));
    assert_eq!(verdict_of(&bad, "lock"), Verdict::Fail);
}
