//! Durability: what the server acknowledged survives crashes.
//!
//! - Across every crash or power loss, no acknowledged transaction is
//!   lost: every reply to a request invoked after the crash (so served by
//!   the restarted server) carries a zxid at least as large as the largest
//!   transaction acknowledged before the crash (the server cannot have
//!   forgotten it). A request invoked before the crash may have been served
//!   before it, its reply held up by a clogged link and delivered after the
//!   restart (madsim delivers what was in flight; found by the swarm,
//!   seed 68). With one server this holds for every reply; in an ensemble
//!   (the history's `cluster servers=N` phase, N > 1) for writes only: a
//!   lagging follower may serve an older read to another session (found by
//!   the swarm on 5 servers, seed 2), but a write is ordered by the leader
//!   after everything committed.
//! - The final read-back (after all faults healed) agrees with the model of
//!   every acknowledged write (the linearizability replay, restricted to the
//!   final reads), and it happened at all.

use super::linear::Model;
use super::{cluster_servers, final_phase_us, CheckResult, OpRec};
use crate::history::{Event, Ty};

pub fn check(events: &[Event], ops: &[OpRec<'_>], model: &Model) -> CheckResult {
    let mut r = CheckResult::new("durability");
    let crashes = crashes(events);
    let ensemble = cluster_servers(events) > 1;
    for (start, end, what) in &crashes {
        let acked = ops
            .iter()
            .filter(|o| o.is_txn() && o.complete_us().is_some_and(|t| t < *start))
            .max_by_key(|o| o.zxid());
        let Some(acked) = acked else { continue };
        let z = acked.zxid().expect("txn");
        for o in ops
            .iter()
            .filter(|o| o.invoke_us() > *start && o.complete_us().is_some_and(|t| t > *end))
            .filter(|o| !ensemble || o.is_txn())
        {
            if let Some(oz) = o.zxid() {
                if oz < z {
                    r.violation(format!(
                        "after {what}: {} has zxid {oz}, but zxid {z} was acknowledged before the crash ({})",
                        o.describe(),
                        acked.describe()
                    ));
                    break;
                }
            }
        }
    }
    let mut disagree = 0;
    for (final_read, v) in &model.violations {
        if *final_read {
            disagree += 1;
            r.violation(format!("final state: {v}"));
        }
    }
    match final_phase_us(events) {
        None => r.violation("the final state was never read back (no final phase)".into()),
        Some(t) => {
            let finals: Vec<_> = ops.iter().filter(|o| o.invoke_us() >= t).collect();
            let unread = finals.iter().filter(|o| !o.is_determinate()).count();
            if finals.is_empty() {
                r.notes.push("nothing to read back".into());
            }
            if unread > 0 {
                r.violation(format!(
                    "{unread} of {} final reads got no answer",
                    finals.len()
                ));
            } else if disagree == 0 {
                r.notes
                    .push(format!("{} final reads agree with the model", finals.len()));
            }
        }
    }
    r.notes.push(format!("{} crashes checked", crashes.len()));
    r
}

/// (crash start, restart, description) of every crash/power-loss fault.
fn crashes(events: &[Event]) -> Vec<(u64, u64, String)> {
    let mut out = Vec::new();
    for s in events.iter().filter(|e| e.ty == Ty::FaultStart) {
        let kind = s.fault.as_deref().unwrap_or("");
        if kind != "crash" && kind != "power_loss" {
            continue;
        }
        let end = events
            .iter()
            .find(|e| e.ty == Ty::FaultEnd && e.fault_id == s.fault_id)
            .map(|e| e.t_us)
            .unwrap_or(u64::MAX);
        out.push((
            s.t_us,
            end,
            format!("{kind} #{} at {:.0}ms", s.fault_id.unwrap_or(0), s.t_ms()),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::h;
    use super::super::{pair_ops, Verdict};
    use super::*;

    fn run(text: &str) -> CheckResult {
        let ev = h(text);
        let (ops, _) = pair_ops(&ev);
        let m = Model::run(&ev, &ops);
        check(&ev, &ops, &m)
    }

    const GOOD: &str = "
        1 invoke 1 0x1 1 create /k value=a
        2 ok 1 0x1 1 zxid=2 mzxid=2
        3 invoke 1 0x1 2 set_data /k value=b version=-1
        4 ok 1 0x1 2 zxid=3 version=1 mzxid=3
        5 fault_start fault=crash fault_id=1 target=server
        6 fault_end fault=crash fault_id=1 target=server
        7 invoke 1 0x1 3 get_data /k
        8 ok 1 0x1 3 zxid=3 value=b version=1 mzxid=3
        9 phase detail=final
        10 invoke 0 0x5 4 get_data /k
        11 ok 0 0x5 4 zxid=4 value=b version=1 mzxid=3
    ";

    #[test]
    fn good_history_passes() {
        let r = run(GOOD);
        assert_eq!(r.verdict, Verdict::Pass, "{r:?}");
    }

    #[test]
    fn write_lost_in_a_crash_is_caught() {
        // After the restart the server has forgotten zxid 3.
        let r = run(&GOOD.replace(
            "8 ok 1 0x1 3 zxid=3 value=b version=1 mzxid=3",
            "8 ok 1 0x1 3 zxid=2 value=a version=0 mzxid=2",
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
        assert!(
            r.violations[0].contains("acknowledged before the crash"),
            "{r:?}"
        );
    }

    /// `text` as the history of a run with `servers` servers.
    fn run_on(servers: u32, text: &str) -> CheckResult {
        let mut ev = h(text);
        ev.insert(
            0,
            Event {
                ty: Ty::Phase,
                detail: Some(format!("cluster servers={servers}")),
                ..Default::default()
            },
        );
        let (ops, _) = pair_ops(&ev);
        let m = Model::run(&ev, &ops);
        check(&ev, &ops, &m)
    }

    #[test]
    fn an_ensemble_may_serve_an_older_read_but_not_an_older_write() {
        // Another session reads from a lagging follower after the crash.
        let stale_read = GOOD.replace(
            "7 invoke 1 0x1 3 get_data /k\n        8 ok 1 0x1 3 zxid=3 value=b version=1 mzxid=3",
            "7 invoke 2 0x2 3 get_data /k\n        8 ok 2 0x2 3 zxid=2 value=a version=0 mzxid=2",
        );
        assert_ne!(stale_read, GOOD);
        assert_eq!(run_on(1, &stale_read).verdict, Verdict::Fail);
        assert_eq!(run_on(3, &stale_read).verdict, Verdict::Pass);
        // A write after the crash at a zxid below an acknowledged one.
        let old_write = GOOD.replace(
            "7 invoke 1 0x1 3 get_data /k\n        8 ok 1 0x1 3 zxid=3 value=b version=1 mzxid=3",
            "7 invoke 2 0x2 3 create /j value=c\n        8 ok 2 0x2 3 zxid=2 mzxid=2",
        );
        assert_ne!(old_write, GOOD);
        let r = run_on(3, &old_write);
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
        assert!(
            r.violations[0].contains("acknowledged before the crash"),
            "{r:?}"
        );
    }

    #[test]
    fn final_state_disagreeing_is_caught() {
        let r = run(&GOOD.replace(
            "11 ok 0 0x5 4 zxid=4 value=b version=1 mzxid=3",
            "11 fail 0 0x5 4 zxid=4 error=NoNode",
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
        assert!(r.violations[0].starts_with("final state"), "{r:?}");
    }

    #[test]
    fn missing_read_back_is_caught() {
        let r = run(&GOOD.replace("9 phase detail=final", ""));
        assert_eq!(r.verdict, Verdict::Fail);
        let r = run(&GOOD.replace(
            "11 ok 0 0x5 4 zxid=4 value=b version=1 mzxid=3",
            "11 info 0 0x5 4 error=timeout",
        ));
        assert_eq!(r.verdict, Verdict::Fail);
    }
}
