//! Liveness: once the last fault has healed, the system serves again.
//!
//! Every workload client that was still issuing operations must get a
//! definite answer (ok or a server error) to some operation within
//! `heal_within_ms` of the last fault's end. The final read-back, too, must
//! get its answers. Clients are the numbers in the history (0 is the
//! driver); a client that had stopped issuing operations before the heal
//! (its op budget ran out) is exempt.
//!
//! Witnesses (the first violation's events): the heal (the last
//! `fault_end`), the first few of the client's operations after it that got
//! no answer (invoke and completion, if any), and its first answer when that
//! came too late; the `final` phase when the workloads ended before the
//! bound; the `workloads` phase for a client with no operation at all.
//! Unanswered final reads: the heal, the `final` phase and the first few
//! reads.

use super::{final_phase_us, CheckResult, OpRec};
use crate::history::{Event, Ty};
use std::collections::BTreeMap;

/// At most this many unanswered operations of a client in a witness.
const WITNESS_OPS: usize = 3;

/// One client's operations as seen from the heal.
#[derive(Default)]
struct Client<'a> {
    /// Still issuing operations at or after the heal.
    active: bool,
    /// Its first answer (ok or a server error) completed at or after the heal.
    first: Option<&'a OpRec<'a>>,
    /// Its operations active after the heal that got no answer (timed
    /// out, connection lost, never completed), in invoke order.
    unanswered: Vec<&'a OpRec<'a>>,
}

pub fn check(events: &[Event], ops: &[OpRec<'_>], heal_within_ms: u64) -> CheckResult {
    let mut r = CheckResult::new("liveness");
    // The heal: the last fault_end (the witness's first event).
    let heal_at = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.ty == Ty::FaultEnd)
        .max_by_key(|(_, e)| e.t_us)
        .map(|(i, _)| i);
    let heal = heal_at.map(|i| events[i].t_us).unwrap_or(0);
    let deadline = heal + heal_within_ms * 1000;
    let final_at = events
        .iter()
        .position(|e| e.ty == Ty::Phase && e.detail.as_deref() == Some("final"));
    let final_us = final_phase_us(events).unwrap_or(u64::MAX);
    let mut clients: BTreeMap<u32, Client<'_>> = BTreeMap::new();
    for o in ops.iter().filter(|o| o.client() != 0) {
        let c = clients.entry(o.client()).or_default();
        // Still active after the heal?
        let after = o.invoke_us() >= heal || o.complete_us().is_none_or(|t| t >= heal);
        if after {
            c.active = true;
        }
        if o.is_determinate() {
            let t = o.complete_us().expect("determinate");
            if t >= heal
                && c.first
                    .is_none_or(|f| f.complete_us().is_some_and(|x| t < x))
            {
                c.first = Some(o);
            }
        } else if after {
            c.unanswered.push(o);
        }
    }
    // Every client the run started must appear, even if it never got a
    // session (its failed connects are recorded as `connect` ops).
    let started = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.ty == Ty::Phase)
        .filter_map(|(i, e)| {
            let n = e
                .detail
                .as_deref()?
                .strip_prefix("workloads clients=")?
                .parse::<u32>()
                .ok()?;
            Some((i, n))
        })
        .next_back();
    for c in 1..=started.map_or(0, |s| s.1) {
        clients.entry(c).or_insert(Client {
            active: true,
            ..Default::default()
        });
    }
    let mut worst = 0u64;
    for (client, c) in &clients {
        if !c.active {
            continue;
        }
        // The heal, then what the client got no answer to after it (before
        // its first answer, if any: that answer shows how late it came).
        let before = c.first.and_then(|f| f.complete_us()).unwrap_or(u64::MAX);
        let mut w: Vec<usize> = heal_at.into_iter().collect();
        w.extend(
            c.unanswered
                .iter()
                .filter(|o| o.invoke_us() < before)
                .take(WITNESS_OPS)
                .flat_map(|o| o.at()),
        );
        let Some(first) = c.first else {
            if c.unanswered.is_empty() {
                // Nothing at all from this client: the phase that started it.
                w.extend(started.map(|s| s.0));
            }
            if final_us < deadline {
                // The workloads ended before the bound: judge on what we have.
                w.extend(final_at);
                r.violation_with(
                    format!(
                        "client {client}: no answer between the heal at {:.0} ms and the end of its workload",
                        heal as f64 / 1000.0
                    ),
                    w,
                );
            } else {
                r.violation_with(
                    format!(
                        "client {client}: no answer within {heal_within_ms} ms of the heal at {:.0} ms",
                        heal as f64 / 1000.0
                    ),
                    w,
                );
            }
            continue;
        };
        let t = first.complete_us().expect("determinate");
        if t <= deadline {
            worst = worst.max(t - heal);
        } else {
            w.extend(first.at());
            r.violation_with(
                format!(
                    "client {client}: first answer {:.0} ms after the heal at {:.0} ms (bound {heal_within_ms} ms)",
                    (t - heal) as f64 / 1000.0,
                    heal as f64 / 1000.0
                ),
                w,
            );
        }
    }
    let stuck: Vec<_> = ops
        .iter()
        .filter(|o| o.client() == 0 && o.invoke_us() >= final_us && !o.is_determinate())
        .collect();
    if !stuck.is_empty() {
        let reads = stuck.iter().take(WITNESS_OPS).flat_map(|o| o.at());
        r.violation_with(
            format!("{} final reads got no answer", stuck.len()),
            heal_at.into_iter().chain(final_at).chain(reads),
        );
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
        // The heal, and client 1's first answer 300 ms after it.
        assert_eq!(r.witness, vec![3, 4, 7], "{r:?}");
    }

    #[test]
    fn late_answer_witness_shows_the_unanswered_ops_before_it() {
        let r = run(
            "
            100 fault_start fault=partition fault_id=1 target=client:1
            2000 fault_end fault=partition fault_id=1 target=client:1
            2100 invoke 1 0x1 1 get_data /k
            2800 info 1 0x1 1 error=timeout
            2900 invoke 1 0x1 2 connect /
            2900 info 1 0x1 2 error=connection_refused
            3000 invoke 2 0x2 3 get_data /k
            3100 ok 2 0x2 3 zxid=1 value=a version=0
            3500 invoke 1 0x1 4 get_data /k
            4000 ok 1 0x1 4 zxid=1 value=a version=0
            4100 invoke 1 0x1 5 get_data /k
            ",
            1500,
        );
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
        assert_eq!(r.violations.len(), 1, "{r:?}");
        assert!(
            r.violations[0].contains("client 1: first answer 2000 ms"),
            "{r:?}"
        );
        // The heal (1), the timeout (2, 3), the failed connect (4, 5), the
        // late answer (8, 9); not op 5, invoked after it.
        assert_eq!(r.witness, vec![1, 2, 3, 4, 5, 8, 9], "{r:?}");
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
        // The phase that started it and the heal.
        assert_eq!(r.witness, vec![0, 4], "{r:?}");
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
        assert!(r.violations[0].contains("no answer within"), "{r:?}");
        // The heal and the op that timed out after it.
        assert_eq!(r.witness, vec![3, 4, 7], "{r:?}");
    }

    #[test]
    fn workload_ending_before_the_bound_and_stuck_final_reads() {
        let text = "
            100 fault_start fault=crash fault_id=1 target=server
            2000 fault_end fault=crash fault_id=1 target=server
            2100 invoke 1 0x1 1 set_data /k value=b version=-1
            2400 phase detail=final
            2500 invoke 0 0x5 2 get_data /k
            2900 info 0 0x5 2 error=timeout
        ";
        let r = run(text, 5000);
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
        assert!(r.violations[0].contains("end of its workload"), "{r:?}");
        // The heal, client 1's unanswered write, the final phase.
        assert_eq!(r.witness, vec![1, 2, 3], "{r:?}");
        assert!(
            r.violations[1].contains("1 final reads got no answer"),
            "{r:?}"
        );
        // Only the stuck final read.
        let r = run(
            &text.replace(
                "2100 invoke 1 0x1 1 set_data /k value=b version=-1",
                "2100 invoke 1 0x1 1 set_data /k value=b version=-1
                2200 ok 1 0x1 1 zxid=2 version=1",
            ),
            5000,
        );
        assert_eq!(r.violations.len(), 1, "{r:?}");
        assert!(
            r.violations[0].contains("final reads got no answer"),
            "{r:?}"
        );
        // The heal, the final phase, the read.
        assert_eq!(r.witness, vec![1, 4, 5, 6], "{r:?}");
    }
}
