//! Replica agreement: at the end of a run, every running server holds the
//! same tree.
//!
//! ZooKeeper's replicas apply the same transactions in the same order, so
//! once they have applied the same prefix (the same last zxid) their trees
//! are identical; ZooKeeper itself compares tree digests per zxid to catch
//! divergence. The runner, after the final read-back and with every fault
//! healed, waits (up to the liveness bound) until every running server
//! reports the same last zxid on the status board, then records each
//! server's status as one `replicas` event. This check judges that event:
//!
//! - no `replicas` event: the run did not reach its end (skipped; the
//!   panic or stop that cut it short fails `server_health`);
//! - no server running: fail;
//! - running servers at different last zxids: they did not converge within
//!   the bound (fail);
//! - the same last zxid and different digests: divergent replicas (fail).
//!
//! Servers that were not running at the end (a server that stopped on an
//! error) are left out and named in the notes. With one server the check
//! passes trivially and says so. Independent of the server: it compares the
//! numbers the servers published, it does not recompute a digest.
//!
//! Witness: the `replicas` event (its detail lists every server's role,
//! epoch, last zxid and digest, and so does the violation).

use super::CheckResult;
use crate::history::{Event, Replica, Ty};

pub const NAME: &str = "replicas";

pub fn check(events: &[Event]) -> CheckResult {
    let mut r = CheckResult::new(NAME);
    let Some((at, e)) = events
        .iter()
        .enumerate()
        .rev()
        .find(|(_, e)| e.ty == Ty::Replicas)
    else {
        return CheckResult::skipped(
            NAME,
            "no final replica status in the history (the run did not reach its end)",
        );
    };
    let all: &[Replica] = e.replicas.as_deref().unwrap_or(&[]);
    let running: Vec<&Replica> = all.iter().filter(|x| x.running).collect();
    let list = |v: &[&Replica]| {
        v.iter()
            .map(|x| x.describe())
            .collect::<Vec<_>>()
            .join("; ")
    };
    for x in all.iter().filter(|x| !x.running) {
        r.notes.push(format!(
            "server:{} was not running at the end (left out)",
            x.server
        ));
    }
    let waited = e.detail.as_deref().unwrap_or("");
    let Some(first) = running.first() else {
        r.violation_with(
            format!(
                "no server was running at the end ({} configured)",
                all.len()
            ),
            [at],
        );
        return r;
    };
    if running.iter().any(|x| x.last_zxid != first.last_zxid) {
        r.violation_with(
            format!(
                "the servers did not converge on a last zxid ({waited}): {}",
                list(&running)
            ),
            [at],
        );
        return r;
    }
    if running.iter().any(|x| x.digest != first.digest) {
        r.violation_with(
            format!(
                "divergent replicas: the same last zxid 0x{:x}, different tree digests: {}",
                first.last_zxid as u64,
                list(&running)
            ),
            [at],
        );
        return r;
    }
    if all.len() == 1 {
        r.notes.insert(
            0,
            format!(
                "1 server (nothing to compare): zxid 0x{:x}",
                first.last_zxid as u64
            ),
        );
    } else {
        r.notes.insert(
            0,
            format!(
                "{} of {} servers agree: zxid 0x{:x}, digest 0x{:016x} ({waited})",
                running.len(),
                all.len(),
                first.last_zxid as u64,
                first.digest
            ),
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::super::Verdict;
    use super::*;

    fn rep(server: u32, role: &str, zxid: i64, digest: u64) -> Replica {
        Replica {
            server,
            running: true,
            role: role.into(),
            epoch: (zxid as u64 >> 32),
            last_zxid: zxid,
            digest,
            serving: true,
        }
    }

    fn history(reps: Vec<Replica>) -> Vec<Event> {
        vec![
            Event {
                t_us: 1_000,
                ty: Ty::Phase,
                detail: Some("final".into()),
                ..Default::default()
            },
            Event {
                t_us: 2_000,
                ty: Ty::Replicas,
                detail: Some("converged after 20 ms".into()),
                replicas: Some(reps),
                ..Default::default()
            },
        ]
    }

    #[test]
    fn agreeing_replicas_pass() {
        let r = check(&history(vec![
            rep(1, "follower", 0x1_0000_0007, 0xabc),
            rep(2, "leader", 0x1_0000_0007, 0xabc),
            rep(3, "follower", 0x1_0000_0007, 0xabc),
        ]));
        assert_eq!(r.verdict, Verdict::Pass, "{r:?}");
        assert!(r.notes[0].starts_with("3 of 3 servers agree"), "{r:?}");
    }

    #[test]
    fn one_server_passes_and_says_so() {
        let r = check(&history(vec![rep(1, "standalone", 42, 7)]));
        assert_eq!(r.verdict, Verdict::Pass, "{r:?}");
        assert!(r.notes[0].starts_with("1 server"), "{r:?}");
    }

    #[test]
    fn divergent_digests_fail_with_a_witness() {
        let r = check(&history(vec![
            rep(1, "leader", 0x1_0000_0007, 0xabc),
            rep(2, "follower", 0x1_0000_0007, 0xabd),
            rep(3, "follower", 0x1_0000_0007, 0xabc),
        ]));
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
        assert_eq!(r.witness, vec![1]);
        let v = &r.violations[0];
        assert!(v.contains("divergent"), "{v}");
        assert!(
            v.contains("server:2 follower epoch 1 zxid 0x100000007 digest 0x0000000000000abd"),
            "{v}"
        );
    }

    #[test]
    fn servers_that_did_not_converge_fail() {
        let r = check(&history(vec![
            rep(1, "leader", 0x1_0000_0009, 0xabc),
            rep(2, "follower", 0x1_0000_0007, 0xabc),
            rep(3, "looking", 0x1_0000_0007, 0xabc),
        ]));
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
        assert!(r.violations[0].contains("did not converge"), "{r:?}");
        assert!(r.violations[0].contains("server:3 looking"), "{r:?}");
    }

    #[test]
    fn servers_not_running_are_left_out() {
        let mut down = rep(3, "", 0, 0);
        down.running = false;
        let r = check(&history(vec![
            rep(1, "leader", 5, 9),
            rep(2, "follower", 5, 9),
            down.clone(),
        ]));
        assert_eq!(r.verdict, Verdict::Pass, "{r:?}");
        assert!(r
            .notes
            .iter()
            .any(|n| n.contains("server:3 was not running")));
        let mut down1 = down.clone();
        down1.server = 1;
        let r = check(&history(vec![down1, down]));
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
    }

    #[test]
    fn a_history_without_the_status_is_skipped() {
        let mut h = history(vec![rep(1, "leader", 5, 9)]);
        h.pop();
        assert_eq!(check(&h).verdict, Verdict::Skipped);
    }

    #[test]
    fn the_event_round_trips_through_jsonl() {
        let h = history(vec![rep(1, "leader", 0x2_0000_0001, u64::MAX - 3)]);
        let text = crate::history::to_jsonl(&h);
        assert!(text.contains("\"digest\":\"0xfffffffffffffffc\""), "{text}");
        assert_eq!(crate::history::from_jsonl(&text).unwrap(), h);
    }
}
