//! Per-session order: what ZooKeeper promises each session.
//!
//! - FIFO: a session's requests are answered in the order they were sent
//!   (checked on determinate replies: completion order = invoke order);
//! - monotonic reads: reply zxids never decrease within a session, across
//!   reconnects included (a client never goes back in time);
//! - a write's zxid is greater than every zxid the session saw before it
//!   (read-your-writes follows from this and monotonicity);
//! - the client saw no protocol violation (an xid out of order, a bad frame).

use super::{CheckResult, OpRec};
use std::collections::BTreeMap;

pub fn check(ops: &[OpRec<'_>]) -> CheckResult {
    let mut r = CheckResult::new("session_order");
    let mut by_session: BTreeMap<i64, Vec<&OpRec<'_>>> = BTreeMap::new();
    let mut sessions = 0usize;
    for o in ops {
        if let Some(d) = o.done {
            if let Some(e) = d.error.as_deref() {
                if e.starts_with("protocol") {
                    r.violation_with(
                        format!("protocol violation seen by the client: {}", o.describe()),
                        o.at(),
                    );
                }
            }
        }
        if o.is_determinate() {
            by_session.entry(o.session()).or_default().push(o);
        }
    }
    for (session, mut list) in by_session {
        sessions += 1;
        // Completion order (ties: the order they were invoked).
        list.sort_by_key(|o| (o.complete_us(), o.invoke_us(), o.id()));
        let mut max_zxid: Option<(i64, &OpRec<'_>)> = None;
        let mut last_invoke: Option<&OpRec<'_>> = None;
        for o in list {
            let z = o.zxid().expect("determinate");
            if let Some((m, prev)) = max_zxid {
                if z < m {
                    r.violation_with(
                        format!(
                            "session 0x{:x} went back in time: {} after {}",
                            session as u64,
                            o.describe(),
                            prev.describe()
                        ),
                        o.at().chain(prev.at()),
                    );
                } else if o.is_txn() && z == m {
                    r.violation_with(
                        format!(
                            "session 0x{:x}: write {} has a zxid the session had already seen ({})",
                            session as u64,
                            o.describe(),
                            prev.describe()
                        ),
                        o.at().chain(prev.at()),
                    );
                }
            }
            if max_zxid.is_none_or(|(m, _)| z > m) {
                max_zxid = Some((z, o));
            }
            if let Some(prev) = last_invoke {
                if (o.invoke_us(), o.id()) < (prev.invoke_us(), prev.id()) {
                    r.violation_with(
                        format!(
                            "session 0x{:x} replies out of order: {} answered after {}",
                            session as u64,
                            o.describe(),
                            prev.describe()
                        ),
                        o.at().chain(prev.at()),
                    );
                }
            }
            last_invoke = Some(o);
        }
    }
    r.notes.push(format!("{sessions} sessions checked"));
    r
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::h;
    use super::super::{pair_ops, Verdict};
    use super::*;

    fn run(text: &str) -> CheckResult {
        let ev = h(text);
        let (ops, _) = pair_ops(&ev);
        check(&ops)
    }

    const GOOD: &str = "
        1 invoke 1 0x1 1 set_data /k value=a version=-1
        2 invoke 1 0x1 2 get_data /k
        3 ok 1 0x1 1 zxid=4 version=1
        4 ok 1 0x1 2 zxid=4 value=a version=1
        5 invoke 1 0x1 3 get_data /k
        6 ok 1 0x1 3 zxid=9 value=a version=1
        7 invoke 1 0x1 4 set_data /k value=b version=-1
        8 ok 1 0x1 4 zxid=10 version=2
    ";

    #[test]
    fn good_session_passes() {
        assert_eq!(run(GOOD).verdict, Verdict::Pass);
    }

    #[test]
    fn going_back_in_time_is_caught() {
        let r = run(&GOOD.replace("6 ok 1 0x1 3 zxid=9", "6 ok 1 0x1 3 zxid=3"));
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.violations[0].contains("back in time"), "{r:?}");
    }

    #[test]
    fn write_reusing_a_seen_zxid_is_caught() {
        let r = run(&GOOD.replace("8 ok 1 0x1 4 zxid=10", "8 ok 1 0x1 4 zxid=9"));
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
    }

    #[test]
    fn out_of_order_replies_are_caught() {
        let r = run(&GOOD
            .replace(
                "3 ok 1 0x1 1 zxid=4 version=1",
                "3 ok 1 0x1 2 zxid=4 value=a version=1",
            )
            .replace(
                "4 ok 1 0x1 2 zxid=4 value=a version=1",
                "4 ok 1 0x1 1 zxid=4 version=1",
            ));
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(
            r.violations.iter().any(|v| v.contains("out of order")),
            "{r:?}"
        );
    }

    #[test]
    fn protocol_errors_are_caught() {
        let r = run(&format!(
            "{GOOD}\n9 invoke 1 0x1 5 get_data /k\n10 info 1 0x1 5 error=protocol:xid"
        ));
        assert_eq!(r.verdict, Verdict::Fail);
    }
}
