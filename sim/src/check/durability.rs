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
//!
//! Witnesses (the first violation's events):
//! - a write forgotten across a crash: the acknowledged write (invoke, ok),
//!   the crash (fault_start, fault_end), other crashes/power losses and
//!   server exits between the ack and the reply showing the loss (a few),
//!   and that request (invoke, completion);
//! - a final read disagreeing with the model: the read, the last
//!   acknowledged write on its object, the first unknown write the model
//!   considered, and the faults between that write's ack and the read;
//! - final reads without an answer: the `final` phase and the first few
//!   unanswered reads;
//! - no read-back at all: the last phase and the last events of the run
//!   (where it stopped).

use super::linear::Model;
use super::{cluster_servers, final_phase_us, CheckResult, OpRec};
use crate::history::{Event, Ty};
use std::collections::BTreeMap;

/// At most this many fault events (fault_start/fault_end/server_exit) in a
/// witness besides the crash that proves it.
const WITNESS_FAULTS: usize = 4;
/// At most this many unanswered final reads in a witness.
const WITNESS_UNREAD: usize = 4;
/// The last events of a run shown when it has no read-back.
const WITNESS_TAIL: usize = 3;

pub fn check(events: &[Event], ops: &[OpRec<'_>], model: &Model) -> CheckResult {
    let mut r = CheckResult::new("durability");
    let crashes = crashes(events);
    let ensemble = cluster_servers(events) > 1;
    for c in &crashes {
        let (start, end) = (c.start_us, c.end_us);
        let acked = ops
            .iter()
            .filter(|o| o.is_txn() && o.complete_us().is_some_and(|t| t < start))
            .max_by_key(|o| o.zxid());
        let Some(acked) = acked else { continue };
        let z = acked.zxid().expect("txn");
        for o in ops
            .iter()
            .filter(|o| o.invoke_us() > start && o.complete_us().is_some_and(|t| t > end))
            .filter(|o| !ensemble || o.is_txn())
        {
            if let Some(oz) = o.zxid() {
                if oz < z {
                    let mut w: Vec<usize> = acked.at().chain(o.at()).collect();
                    w.push(c.start_at);
                    w.extend(c.end_at);
                    let from = acked.complete_us().expect("txn");
                    let to = o.complete_us().expect("answered");
                    w.extend(faults_between(events, from, to, WITNESS_FAULTS, &w));
                    r.violation_with(
                        format!(
                            "after {}: {} has zxid {oz}, but zxid {z} was acknowledged before the crash ({})",
                            c.what,
                            o.describe(),
                            acked.describe()
                        ),
                        w,
                    );
                    break;
                }
            }
        }
    }
    let by_id: BTreeMap<u64, &OpRec<'_>> = ops.iter().map(|o| (o.id(), o)).collect();
    let mut disagree = 0;
    for (i, (final_read, v)) in model.violations.iter().enumerate() {
        if *final_read {
            disagree += 1;
            let ids = model.witnesses.get(i).map(Vec::as_slice).unwrap_or(&[]);
            r.violation_with(
                format!("final state: {v}"),
                final_witness(events, ids, &by_id),
            );
        }
    }
    match final_phase_us(events) {
        None => {
            // Nothing proves an absence but where the run stopped.
            let last_phase = events.iter().rposition(|e| e.ty == Ty::Phase);
            let tail = events.len().saturating_sub(WITNESS_TAIL)..events.len();
            r.violation_with(
                "the final state was never read back (no final phase)".into(),
                last_phase.into_iter().chain(tail),
            )
        }
        Some(t) => {
            let finals: Vec<_> = ops.iter().filter(|o| o.invoke_us() >= t).collect();
            let unread: Vec<_> = finals.iter().filter(|o| !o.is_determinate()).collect();
            if finals.is_empty() {
                r.notes.push("nothing to read back".into());
            }
            if !unread.is_empty() {
                let phase = events
                    .iter()
                    .position(|e| e.ty == Ty::Phase && e.detail.as_deref() == Some("final"));
                let reads = unread.iter().take(WITNESS_UNREAD).flat_map(|o| o.at());
                r.violation_with(
                    format!(
                        "{} of {} final reads got no answer",
                        unread.len(),
                        finals.len()
                    ),
                    phase.into_iter().chain(reads),
                );
            } else if disagree == 0 {
                r.notes
                    .push(format!("{} final reads agree with the model", finals.len()));
            }
        }
    }
    r.notes.push(format!("{} crashes checked", crashes.len()));
    r
}

/// The witness of a final read the model disagrees with, from the model's
/// op ids (the read, the last acknowledged writes on its object, the
/// unknown writes it considered): the read, the latest of those writes, the
/// first unknown write, and the faults between the write's ack and the read.
fn final_witness(events: &[Event], ids: &[u64], by_id: &BTreeMap<u64, &OpRec<'_>>) -> Vec<usize> {
    let mut ops = ids.iter().filter_map(|id| by_id.get(id).copied());
    let Some(read) = ops.next() else {
        return Vec::new();
    };
    let rest: Vec<&OpRec<'_>> = ops.collect();
    let write = rest.iter().find(|o| o.is_determinate());
    let unknown = rest.iter().find(|o| o.is_unknown());
    let mut w: Vec<usize> = read.at().collect();
    w.extend(write.into_iter().chain(unknown).flat_map(|o| o.at()));
    let from = write.and_then(|o| o.complete_us()).unwrap_or(0);
    w.extend(faults_between(
        events,
        from,
        read.invoke_us(),
        WITNESS_FAULTS,
        &w,
    ));
    w
}

/// Up to `budget` fault events in `[from, to]` (µs) not already in `have`:
/// crashes and power losses first (start with its end), then server exits,
/// then other faults; earliest first within each kind.
fn faults_between(
    events: &[Event],
    from: u64,
    to: u64,
    budget: usize,
    have: &[usize],
) -> Vec<usize> {
    let mut units: Vec<(u8, u64, Vec<usize>)> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if e.t_us < from || e.t_us > to || have.contains(&i) {
            continue;
        }
        match e.ty {
            Ty::FaultStart => {
                let kind = e.fault.as_deref().unwrap_or("");
                let rank = if kind == "crash" || kind == "power_loss" {
                    0
                } else {
                    2
                };
                let end = events[i + 1..]
                    .iter()
                    .position(|x| x.ty == Ty::FaultEnd && x.fault_id == e.fault_id)
                    .map(|k| i + 1 + k)
                    .filter(|k| !have.contains(k));
                units.push((rank, e.t_us, std::iter::once(i).chain(end).collect()));
            }
            Ty::ServerExit => units.push((1, e.t_us, vec![i])),
            _ => {}
        }
    }
    units.sort_by_key(|u| (u.0, u.1));
    let mut out = Vec::new();
    for (_, _, u) in units {
        if out.len() + u.len() > budget {
            continue;
        }
        out.extend(u);
    }
    out
}

/// A crash or power-loss fault.
struct Crash {
    start_us: u64,
    /// The restart (`u64::MAX` if it never came).
    end_us: u64,
    start_at: usize,
    end_at: Option<usize>,
    what: String,
}

/// Every crash/power-loss fault.
fn crashes(events: &[Event]) -> Vec<Crash> {
    let mut out = Vec::new();
    for (i, s) in events.iter().enumerate() {
        if s.ty != Ty::FaultStart {
            continue;
        }
        let kind = s.fault.as_deref().unwrap_or("");
        if kind != "crash" && kind != "power_loss" {
            continue;
        }
        let end_at = events
            .iter()
            .position(|e| e.ty == Ty::FaultEnd && e.fault_id == s.fault_id);
        out.push(Crash {
            start_us: s.t_us,
            end_us: end_at.map(|k| events[k].t_us).unwrap_or(u64::MAX),
            start_at: i,
            end_at,
            what: format!("{kind} #{} at {:.0}ms", s.fault_id.unwrap_or(0), s.t_ms()),
        });
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
        // The write acked at zxid 3 (op 2), the crash, the read after it.
        assert_eq!(r.witness, vec![2, 3, 4, 5, 6, 7], "{r:?}");
    }

    #[test]
    fn a_lost_write_witness_shows_the_faults_between_ack_and_read() {
        // A partition before the write (not in the witness), a power loss
        // whose restart fails once (server_exit), then the read-back that
        // shows zxid 3 gone.
        let text = "
            0.5 fault_start fault=partition fault_id=7 target=server
            0.6 fault_end fault=partition fault_id=7 target=server
            1 invoke 1 0x1 1 create /k value=a
            2 ok 1 0x1 1 zxid=2 mzxid=2
            3 invoke 1 0x1 2 set_data /k value=b version=-1
            4 ok 1 0x1 2 zxid=3 version=1 mzxid=3
            5 fault_start fault=power_loss fault_id=1 target=server
            5.5 server_exit target=server error=torn
            6 fault_end fault=power_loss fault_id=1 target=server
            9 phase detail=final
            10 invoke 0 0x5 4 get_data /k
            11 ok 0 0x5 4 zxid=4 value=a version=0 mzxid=2
        ";
        let r = run(text);
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
        assert!(r.violations[0].starts_with("final state"), "{r:?}");
        // The final read (10, 11), the write at zxid 3 (4, 5), the power
        // loss (6, 8) and the server exit (7).
        assert_eq!(r.witness, vec![4, 5, 6, 7, 8, 10, 11], "{r:?}");
        // A client read after the restart shows it first.
        let r = run(&text.replace(
            "9 phase",
            "7 invoke 1 0x1 3 get_data /k
            8 ok 1 0x1 3 zxid=2 value=a version=0 mzxid=2
            9 phase",
        ));
        assert!(r.violations[0].contains("after power_loss #1"), "{r:?}");
        assert_eq!(r.witness, vec![4, 5, 6, 7, 8, 9, 10], "{r:?}");
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
        // Shifted by one by the cluster phase.
        assert_eq!(r.witness, vec![3, 4, 5, 6, 7, 8], "{r:?}");
    }

    #[test]
    fn final_state_disagreeing_is_caught() {
        let r = run(&GOOD.replace(
            "11 ok 0 0x5 4 zxid=4 value=b version=1 mzxid=3",
            "11 fail 0 0x5 4 zxid=4 error=NoNode",
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
        assert!(r.violations[0].starts_with("final state"), "{r:?}");
        // The final read (9, 10), the last write on /k (2, 3), the crash
        // between them (4, 5).
        assert_eq!(r.witness, vec![2, 3, 4, 5, 9, 10], "{r:?}");
    }

    #[test]
    fn final_state_witness_names_an_unknown_write() {
        let r = run("
            1 invoke 1 0x1 1 create /k value=a
            2 ok 1 0x1 1 zxid=2 mzxid=2
            3 invoke 1 0x1 2 set_data /k value=b version=-1
            4 info 1 0x1 2 error=timeout
            5 fault_start fault=crash fault_id=1 target=server
            6 fault_end fault=crash fault_id=1 target=server
            9 phase detail=final
            10 invoke 0 0x5 4 get_data /k
            11 ok 0 0x5 4 zxid=4 value=c version=1 mzxid=3
        ");
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
        assert!(r.violations[0].starts_with("final state"), "{r:?}");
        assert_eq!(r.witness, vec![0, 1, 2, 3, 4, 5, 7, 8], "{r:?}");
    }

    #[test]
    fn missing_read_back_is_caught() {
        let r = run(&GOOD.replace("9 phase detail=final", ""));
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.violations[0].contains("never read back"), "{r:?}");
        // No phase at all: the last events of the run.
        assert_eq!(r.witness, vec![7, 8, 9], "{r:?}");
        let r = run(&GOOD.replace(
            "11 ok 0 0x5 4 zxid=4 value=b version=1 mzxid=3",
            "11 info 0 0x5 4 error=timeout",
        ));
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.violations[0].contains("got no answer"), "{r:?}");
        // The final phase and the unanswered read.
        assert_eq!(r.witness, vec![8, 9, 10], "{r:?}");
    }
}
