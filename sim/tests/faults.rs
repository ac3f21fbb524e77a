//! Every fault kind, with a fixed seed, has an observable effect on the
//! history (compared with the same scenario without the fault), and is
//! recorded when it starts and ends. Plus the swarm's draws.
#![cfg(madsim)]

use sim::check::Verdict;
use sim::history::{Event, Ty};
use sim::report::judge;
use sim::runner::run_seed;
use sim::scenario::{FaultKind, Scenario};
use std::collections::BTreeMap;

const SEED: u64 = 5;

/// Two register clients (1, 2) and one more (3), 8 s, plus `faults`.
fn scenario(session_timeout_ms: u32, faults: &str) -> Scenario {
    let text = format!(
        r#"
duration_ms = 8000
[cluster]
tick_ms = 200
min_session_timeout_ms = 1000
max_session_timeout_ms = 20000
[[workload]]
name = "a"
kind = "register"
clients = 2
keys = 3
ops = "25/s"
session_timeout_ms = {session_timeout_ms}
request_timeout_ms = 1000
[[workload]]
name = "b"
kind = "register"
clients = 1
keys = 3
ops = "25/s"
session_timeout_ms = {session_timeout_ms}
request_timeout_ms = 1000
[liveness]
heal_within_ms = 3000
{faults}
"#
    );
    Scenario::parse(&text, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// Run and require that every check passes (a fault is no excuse).
fn run(scn: &Scenario) -> Vec<Event> {
    let out = run_seed(scn, SEED);
    for c in judge(scn, &out.events, out.panic.as_deref()) {
        assert_ne!(c.verdict, Verdict::Fail, "{}: {:#?}", c.name, c.violations);
    }
    out.events
}

/// (start, end) in µs of the only fault of `kind`, checking both ends were recorded.
fn window(events: &[Event], kind: FaultKind) -> (u64, u64) {
    let of = |ty| {
        let v: Vec<u64> = events
            .iter()
            .filter(|e| e.ty == ty && e.fault.as_deref() == Some(kind.name()))
            .map(|e| e.t_us)
            .collect();
        assert_eq!(v.len(), 1, "one {ty:?} of {}", kind.name());
        v[0]
    };
    (of(Ty::FaultStart), of(Ty::FaultEnd))
}

fn detail(events: &[Event], ty: Ty, kind: FaultKind) -> String {
    events
        .iter()
        .find(|e| e.ty == ty && e.fault.as_deref() == Some(kind.name()))
        .and_then(|e| e.detail.clone())
        .unwrap_or_default()
}

/// Each workload op: (client, invoke µs, completion µs, completion type).
fn ops(events: &[Event]) -> Vec<(u32, u64, u64, Ty)> {
    let mut inv: BTreeMap<u64, (u32, u64)> = BTreeMap::new();
    let mut out = Vec::new();
    for e in events {
        let (Some(id), Some(c)) = (e.op_id, e.client) else {
            continue;
        };
        if c == 0 {
            continue;
        }
        match e.ty {
            Ty::Invoke => {
                inv.insert(id, (c, e.t_us));
            }
            Ty::Ok | Ty::Fail | Ty::Info => {
                if let Some((c, t)) = inv.remove(&id) {
                    out.push((c, t, e.t_us, e.ty));
                }
            }
            _ => {}
        }
    }
    out
}

/// Ops of `client` invoked in `[from, to)` that ended unknown / answered.
fn outcomes(events: &[Event], client: u32, (from, to): (u64, u64)) -> (usize, usize) {
    let v: Vec<Ty> = ops(events)
        .into_iter()
        .filter(|(c, t, _, _)| *c == client && *t >= from && *t < to)
        .map(|(_, _, _, ty)| ty)
        .collect();
    let unknown = v.iter().filter(|t| **t == Ty::Info).count();
    (unknown, v.len() - unknown)
}

fn expiries(events: &[Event], client: u32) -> usize {
    events
        .iter()
        .filter(|e| e.ty == Ty::SessionExpired && e.client == Some(client))
        .count()
}

fn fault(kind: &str, at_ms: u64, duration_ms: u64, extra: &str) -> String {
    format!("[[fault]]\nat_ms = {at_ms}\nduration_ms = {duration_ms}\nkind = \"{kind}\"\n{extra}\n")
}

#[test]
fn baseline_has_no_unknowns() {
    let ev = run(&scenario(4000, ""));
    for c in 1..=3 {
        assert_eq!(outcomes(&ev, c, (0, u64::MAX)).0, 0, "client {c}");
    }
}

/// The cut client's requests time out; client 3 is served throughout.
fn assert_cuts(kind: FaultKind, extra: &str, cut: &[u32], links: &str) {
    let scn = scenario(4000, &fault(kind.name(), 1000, 2500, extra));
    let ev = run(&scn);
    let (s, e) = window(&ev, kind);
    for &c in cut {
        let (unknown, _) = outcomes(&ev, c, (s, e.saturating_sub(1_000_000)));
        assert!(unknown > 0, "{}: client {c} unaffected", kind.name());
    }
    let (unknown, answered) = outcomes(&ev, 3, (s, e));
    assert_eq!(unknown, 0, "{}: client 3 was cut too", kind.name());
    assert!(answered > 20, "{}: client 3 starved", kind.name());
    let d = detail(&ev, Ty::FaultStart, kind);
    assert!(d.contains(links), "{}: detail {d:?}", kind.name());
}

#[test]
fn symmetric_partition_cuts_the_client() {
    assert_cuts(
        FaultKind::Partition,
        "target = \"client:1\"",
        &[1],
        "clogged server→client:1 client:1→server",
    );
}

#[test]
fn one_way_partitions_cut_the_client() {
    // Replies from the server are held: requests arrive, answers do not.
    assert_cuts(
        FaultKind::Partition,
        "target = \"client:1\"\ndirection = \"in\"",
        &[1],
        "clogged server→client:1",
    );
    assert_cuts(
        FaultKind::Partition,
        "target = \"client:2\"\ndirection = \"out\"",
        &[2],
        "clogged client:2→server",
    );
}

#[test]
fn isolate_cuts_the_node() {
    assert_cuts(FaultKind::Isolate, "target = \"client:1\"", &[1], "");
}

#[test]
fn bridge_cuts_one_side_and_the_bridge_still_works() {
    // Workload a (clients 1, 2) is cut from the server; client 3 reaches both.
    assert_cuts(
        FaultKind::Bridge,
        "target = \"workload:a\"\npeer = \"leader\"",
        &[1, 2],
        "bridged by: client:3",
    );
}

#[test]
fn clogging_one_link_holds_the_requests() {
    assert_cuts(
        FaultKind::Clog,
        "target = \"client:2\"\npeer = \"server\"",
        &[2],
        "clogged client:2→server",
    );
}

#[test]
fn pausing_a_client_stops_it() {
    let scn = scenario(4000, &fault("pause", 1000, 2500, "target = \"client:1\""));
    let ev = run(&scn);
    let (s, e) = window(&ev, FaultKind::Pause);
    let (_, answered) = outcomes(&ev, 1, (s + 1000, e));
    assert_eq!(answered, 0, "a paused client invoked nothing");
    assert!(outcomes(&ev, 3, (s, e)).1 > 20);
}

fn median_latency_us(events: &[Event], (from, to): (u64, u64)) -> u64 {
    let mut v: Vec<u64> = ops(events)
        .into_iter()
        .filter(|(_, t, _, ty)| *t >= from && *t < to && *ty != Ty::Info)
        .map(|(_, t, c, _)| c - t)
        .collect();
    v.sort();
    v[v.len() / 2]
}

#[test]
fn latency_raises_the_median() {
    let ev = run(&scenario(
        4000,
        &fault("latency", 1000, 3000, "latency_ms = [50, 150]"),
    ));
    let w = window(&ev, FaultKind::Latency);
    let slow = median_latency_us(&ev, w);
    let base = median_latency_us(&run(&scenario(4000, "")), w);
    // Two packets per request, each 50..150 ms instead of 1..10 ms.
    assert!(
        slow > 100_000 && base < 30_000,
        "p50 {slow} µs vs {base} µs"
    );
    assert!(detail(&ev, Ty::FaultStart, FaultKind::Latency).contains("send latency 50..150 ms"));
    assert!(detail(&ev, Ty::FaultEnd, FaultKind::Latency).contains("send latency 1..10 ms"));
}

#[test]
fn packet_loss_slows_requests_down() {
    let ev = run(&scenario(
        4000,
        &fault("packet_loss", 1000, 3000, "loss_rate = 0.3"),
    ));
    let w = window(&ev, FaultKind::PacketLoss);
    let lossy = median_latency_us(&ev, w);
    let base = median_latency_us(&run(&scenario(4000, "")), w);
    assert!(lossy > base, "p50 {lossy} µs vs {base} µs");
    assert!(detail(&ev, Ty::FaultStart, FaultKind::PacketLoss).contains("packet loss 0.3"));
}

/// Client 1 is cut off for 3 s with a 2 s session timeout.
fn cut_off_past_timeout(stall: &str) -> Vec<Event> {
    let part = fault("partition", 1000, 3000, "target = \"client:1\"");
    run(&scenario(2000, &format!("{part}{stall}")))
}

#[test]
fn a_tick_stall_delays_session_expiry() {
    // Without a stall the session expires.
    assert_eq!(expiries(&cut_off_past_timeout(""), 1), 1);
    // With the ticks stalled from before the partition until after it, the
    // server expires nobody: client 1 reconnects to its live session.
    let ev = cut_off_past_timeout(&fault("clock_stall", 500, 4500, "target = \"leader\""));
    assert_eq!(expiries(&ev, 1), 0, "a stalled server expired a session");
    let skipped = detail(&ev, Ty::FaultEnd, FaultKind::ClockStall);
    assert!(
        skipped.ends_with("ticks skipped") && !skipped.starts_with("0 "),
        "{skipped}"
    );
    // A stall that ends while the client is still cut off: the overdue
    // session expires (in the burst after the stall).
    let ev = cut_off_past_timeout(&fault("clock_stall", 500, 2500, "target = \"server\""));
    assert_eq!(expiries(&ev, 1), 1);
}

#[test]
fn clock_skew_does_not_expire_sessions() {
    // Client 1 is paused for 1 s (idle, well within its 4 s session) while
    // the server's wall clock jumps 10 s forwards or backwards. ZooKeeper
    // times sessions on a monotonic clock, so neither jump expires anyone;
    // the skew only moves the wall time that stamps znodes.
    let pause = fault("pause", 1500, 1000, "target = \"client:1\"");
    assert_eq!(expiries(&run(&scenario(4000, &pause)), 1), 0);
    for skew_ms in [10000, -10000] {
        let skew = fault("clock_skew", 2000, 1000, &format!("skew_ms = {skew_ms}"));
        let ev = run(&scenario(4000, &format!("{pause}{skew}")));
        assert!(
            detail(&ev, Ty::FaultStart, FaultKind::ClockSkew).contains(&format!("{skew_ms:+} ms"))
        );
        assert!(
            ev.iter().all(|e| e.ty != Ty::SessionExpired),
            "a {skew_ms} ms wall-clock jump expired a session"
        );
    }
}

#[test]
fn crash_and_power_loss_interrupt_everyone() {
    for kind in ["crash", "power_loss"] {
        let ev = run(&scenario(4000, &fault(kind, 2000, 1500, "")));
        let k = if kind == "crash" {
            FaultKind::Crash
        } else {
            FaultKind::PowerLoss
        };
        let w = window(&ev, k);
        // Nothing is answered while the server is down.
        let answered = ops(&ev)
            .into_iter()
            .filter(|(_, _, done, ty)| *done > w.0 + 100_000 && *done < w.1 && *ty != Ty::Info)
            .count();
        assert_eq!(answered, 0, "{kind}: answers while the server was down");
        assert!(
            ev.iter().any(|e| e.ty == Ty::Connected && e.t_us > w.1),
            "{kind}: no reconnect"
        );
    }
}

fn swarm_scenario() -> Scenario {
    let path = format!("{}/../scenarios/swarm.toml", env!("CARGO_MANIFEST_DIR"));
    Scenario::load(path).unwrap()
}

#[test]
fn the_swarm_draws_kinds_and_faults_from_the_seed() {
    let scn = swarm_scenario();
    let sw = scn.swarm.clone().unwrap();
    let n = scn.clients().len() as u32;
    assert_eq!(sw.plan(3, n, 1), sw.plan(3, n, 1));
    assert_ne!(sw.plan(3, n, 1), sw.plan(4, n, 1));
    let mut seen = std::collections::BTreeSet::new();
    let mut kind_sets = std::collections::BTreeSet::new();
    for seed in 1..=60 {
        let plan = sw.plan(seed, n, 1);
        kind_sets.insert(plan.kinds.clone());
        // Every draw is a valid scripted fault, inside the swarm phase.
        let mut scripted = scn.clone();
        scripted.swarm = None;
        scripted.faults = plan.faults.clone();
        let text = toml_of(&scripted);
        Scenario::parse(&text, "drawn.toml").unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
        for f in &plan.faults {
            assert!(plan.kinds.contains(&f.kind));
            assert!(f.at_ms >= sw.start_ms && f.end_ms() <= sw.end_ms);
            seen.insert(f.kind);
        }
    }
    assert_eq!(seen.len(), FaultKind::ALL.len(), "kinds drawn: {seen:?}");
    assert!(kind_sets.len() > 20, "the enabled kinds vary by seed");
}

/// The scripted part of a scenario as TOML (enough for the faults test).
fn toml_of(scn: &Scenario) -> String {
    let path = format!("{}/../scenarios/swarm.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    let head = &text[..text.find("[swarm]").unwrap()];
    let mut out = head.to_string();
    for f in &scn.faults {
        out.push_str(&format!(
            "[[fault]]\nat_ms = {}\nduration_ms = {}\nkind = \"{}\"\n",
            f.at_ms,
            f.duration_ms,
            f.kind.name()
        ));
        let list = |t: &sim::scenario::TargetSpec| match t {
            sim::scenario::TargetSpec::One(s) => format!("{s:?}"),
            sim::scenario::TargetSpec::Many(v) => format!("{v:?}"),
        };
        if let Some(t) = &f.target {
            out.push_str(&format!("target = {}\n", list(t)));
        }
        if let Some(t) = &f.peer {
            out.push_str(&format!("peer = {}\n", list(t)));
        }
        if let Some(d) = f.direction {
            out.push_str(&format!(
                "direction = \"{}\"\n",
                format!("{d:?}").to_lowercase()
            ));
        }
        if let Some([lo, hi]) = f.latency_ms {
            out.push_str(&format!("latency_ms = [{lo}, {hi}]\n"));
        }
        if let Some(r) = f.loss_rate {
            out.push_str(&format!("loss_rate = {r}\n"));
        }
        if let Some(s) = f.skew_ms {
            out.push_str(&format!("skew_ms = {s}\n"));
        }
    }
    out.push_str("[liveness]\nheal_within_ms = 6000\n");
    out
}

#[test]
fn a_swarm_run_records_every_drawn_fault() {
    let scn = swarm_scenario();
    let out = run_seed(&scn, 11);
    let (faults, kinds) = scn.faults_for(11);
    let starts = out.events.iter().filter(|e| e.ty == Ty::FaultStart).count();
    let ends = out.events.iter().filter(|e| e.ty == Ty::FaultEnd).count();
    assert_eq!((starts, ends), (faults.len(), faults.len()));
    let phase = out
        .events
        .iter()
        .find_map(|e| {
            e.detail
                .as_deref()
                .filter(|d| d.starts_with("swarm kinds="))
        })
        .expect("the swarm phase is recorded");
    let names: Vec<&str> = kinds.unwrap().iter().map(|k| k.name()).collect();
    assert!(phase.contains(&names.join(",")), "{phase}");
}

/// The swarm's draws for an ensemble name roles and servers, and every
/// draw is a valid scripted fault of a 3-server scenario.
#[test]
fn the_swarm_draws_ensemble_targets() {
    let scn = swarm_scenario();
    let sw = scn.swarm.clone().unwrap();
    let n = scn.clients().len() as u32;
    let mut targets = std::collections::BTreeSet::new();
    for seed in 1..=40 {
        let plan = sw.plan(seed, n, 3);
        let mut scripted = scn.clone();
        scripted.cluster.servers = 3;
        scripted.swarm = None;
        scripted.faults = plan.faults.clone();
        let text = toml_of(&scripted).replace("servers = 1", "servers = 3");
        Scenario::parse(&text, "drawn.toml").unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
        for f in &plan.faults {
            if let Some(sim::scenario::TargetSpec::One(t)) = &f.target {
                targets.insert(t.clone());
            }
        }
    }
    for t in ["leader", "follower", "random"] {
        assert!(targets.contains(t), "{t} never drawn: {targets:?}");
    }
    assert!(
        targets.iter().any(|t| t.starts_with("server:")),
        "{targets:?}"
    );
}

/// Three servers: a partition of a server cuts it from the other servers
/// and from every client; `leader` resolves from the status board (or
/// says that it found none); the run ends with every server's status.
/// Mechanics only (no verdicts): a scenario of its own, same seed twice.
#[test]
fn ensemble_faults_resolve_and_cut_server_links() {
    let mut scn = scenario(
        4000,
        &format!(
            "{}{}",
            fault("partition", 1000, 1500, "target = \"server:1\""),
            fault("crash", 3000, 1000, "target = \"leader\"")
        ),
    );
    scn.cluster.servers = 3;
    let out = run_seed(&scn, SEED);
    assert!(out.panic.is_none(), "{:?}", out.panic);
    let d = detail(&out.events, Ty::FaultStart, FaultKind::Partition);
    for link in [
        "server:2→server:1",
        "server:1→server:3",
        "client:3→server:1",
        "server:1→driver",
    ] {
        assert!(d.contains(link), "{link} not in {d:?}");
    }
    assert!(!d.contains("client:1→server:2"), "{d:?}");
    let crash = out
        .events
        .iter()
        .find(|e| e.ty == Ty::FaultStart && e.fault.as_deref() == Some("crash"))
        .unwrap();
    let cd = crash.detail.clone().unwrap_or_default();
    assert!(
        cd.starts_with("leader = server:") || cd.starts_with("no leader found"),
        "{cd:?}"
    );
    assert!(
        crash.target.as_deref().unwrap().starts_with("server:"),
        "{crash:?}"
    );
    let last = out.events.last().unwrap();
    assert_eq!(last.ty, Ty::Invariants, "{last:?}");
    assert!(last.error.is_none(), "ZAB invariants held: {last:?}");
    let replicas = out.events.iter().rfind(|e| e.ty == Ty::Replicas).unwrap();
    assert_eq!(replicas.replicas.as_ref().unwrap().len(), 3);
    let servers: std::collections::BTreeSet<u32> = out.board.iter().map(|s| s.server).collect();
    assert_eq!(servers.len(), 3, "board samples of every server");
    let again = run_seed(&scn, SEED);
    assert_eq!(out.events, again.events, "same seed, same history");
}
