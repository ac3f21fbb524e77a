//! Liveness: once the last fault has healed, the system serves again.
//!
//! Every workload client that was still issuing operations must get a
//! definite answer (ok or a server error) to some operation within
//! `heal_within_ms` of the last fault's end. The final read-back, too, must
//! get its answers. Clients are the numbers in the history (0 is the
//! driver); a client that had stopped issuing operations before the heal
//! (its op budget ran out) is exempt.

use super::{final_phase_us, CheckResult, OpRec};
use crate::history::{Event, Ty};
use std::collections::BTreeMap;

pub fn check(events: &[Event], ops: &[OpRec<'_>], heal_within_ms: u64) -> CheckResult {
    let mut r = CheckResult::new("liveness");
    let heal = events
        .iter()
        .filter(|e| e.ty == Ty::FaultEnd)
        .map(|e| e.t_us)
        .max()
        .unwrap_or(0);
    let deadline = heal + heal_within_ms * 1000;
    let final_us = final_phase_us(events).unwrap_or(u64::MAX);
    let mut clients: BTreeMap<u32, (bool, Option<u64>)> = BTreeMap::new();
    for o in ops.iter().filter(|o| o.client() != 0) {
        let c = clients.entry(o.client()).or_insert((false, None));
        // Still active after the heal?
        if o.invoke_us() >= heal || o.complete_us().is_none_or(|t| t >= heal) {
            c.0 = true;
        }
        if o.is_determinate() {
            let t = o.complete_us().expect("determinate");
            if t >= heal && c.1.is_none_or(|x| t < x) {
                c.1 = Some(t);
            }
        }
    }
    // Every client the run started must appear, even if it never got a
    // session (its failed connects are recorded as `connect` ops).
    let started = events
        .iter()
        .filter(|e| e.ty == Ty::Phase)
        .filter_map(|e| {
            e.detail
                .as_deref()?
                .strip_prefix("workloads clients=")?
                .parse::<u32>()
                .ok()
        })
        .next_back()
        .unwrap_or(0);
    for c in 1..=started {
        clients.entry(c).or_insert((true, None));
    }
    let mut worst = 0u64;
    for (client, (active, first)) in &clients {
        if !active {
            continue;
        }
        match first {
            Some(t) if *t <= deadline => worst = worst.max(t - heal),
            Some(t) => r.violation(format!(
                "client {client}: first answer {:.0} ms after the heal at {:.0} ms (bound {heal_within_ms} ms)",
                (t - heal) as f64 / 1000.0,
                heal as f64 / 1000.0
            )),
            None if final_us < deadline => {
                // The workloads ended before the bound: judge on what we have.
                r.violation(format!(
                    "client {client}: no answer between the heal at {:.0} ms and the end of its workload",
                    heal as f64 / 1000.0
                ))
            }
            None => r.violation(format!(
                "client {client}: no answer within {heal_within_ms} ms of the heal at {:.0} ms",
                heal as f64 / 1000.0
            )),
        }
    }
    let stuck = ops
        .iter()
        .filter(|o| o.client() == 0 && o.invoke_us() >= final_us && !o.is_determinate())
        .count();
    if stuck > 0 {
        r.violation(format!("{stuck} final reads got no answer"));
    }
    r.notes.push(format!(
        "last heal at {:.0} ms; slowest client answered {:.0} ms after it",
        heal as f64 / 1000.0,
        worst as f64 / 1000.0
    ));
    r
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::h;
    use super::super::{pair_ops, Verdict};
    use super::*;

    fn run(text: &str, bound: u64) -> CheckResult {
        let ev = h(text);
        let (ops, _) = pair_ops(&ev);
        check(&ev, &ops, bound)
    }

    const GOOD: &str = "
        100 fault_start fault=partition fault_id=1 target=client:1
        1000 invoke 1 0x1 1 get_data /k
        1500 info 1 0x1 1 error=timeout
        2000 fault_end fault=partition fault_id=1 target=client:1
        2100 invoke 1 0x1 2 get_data /k
        2100 invoke 2 0x2 3 get_data /k
        2200 ok 2 0x2 3 zxid=1 value=a version=0
        2300 ok 1 0x1 2 zxid=1 value=a version=0
    ";

    #[test]
    fn recovering_clients_pass() {
        let r = run(GOOD, 1000);
        assert_eq!(r.verdict, Verdict::Pass, "{r:?}");
    }

    #[test]
    fn slow_recovery_is_caught() {
        let r = run(GOOD, 250);
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
        assert!(r.violations[0].contains("client 1"), "{r:?}");
    }

    #[test]
    fn a_client_that_never_ran_is_caught() {
        let with_clients = |n: u32| {
            let mut ev = h(GOOD);
            ev.insert(
                0,
                Event {
                    t_us: 50_000,
                    ty: Ty::Phase,
                    detail: Some(format!("workloads clients={n}")),
                    ..Default::default()
                },
            );
            let (ops, _) = pair_ops(&ev);
            check(&ev, &ops, 1000)
        };
        assert_eq!(with_clients(2).verdict, Verdict::Pass);
        let r = with_clients(3);
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
        assert!(r.violations[0].contains("client 3"), "{r:?}");
    }

    #[test]
    fn a_client_that_never_recovers_is_caught() {
        let r = run(
            &GOOD.replace(
                "2300 ok 1 0x1 2 zxid=1 value=a version=0",
                "9000 info 1 0x1 2 error=timeout",
            ),
            5000,
        );
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
    }
}
