//! ZAB's invariants, as the servers' monitor saw them after every input
//! any server handled (`zkserver::run::ZabMonitor`): at most one leader
//! established per epoch; serving servers that applied up to the same zxid
//! hold the same tree; a newly established leader holds everything any
//! serving server had applied (so every acknowledged write). Unlike the
//! history checkers this reads the servers' own reports (role, epoch,
//! applied zxid, tree digest), never their internals.
//!
//! Witness: the `invariants` event (its error lists each violation).

use super::CheckResult;
use crate::history::{Event, Ty};

pub const NAME: &str = "zab";

pub fn check(events: &[Event]) -> CheckResult {
    let Some((at, e)) = events
        .iter()
        .enumerate()
        .rev()
        .find(|(_, e)| e.ty == Ty::Invariants)
    else {
        return CheckResult::skipped(NAME, "no invariant report (the run did not reach its end)");
    };
    let mut r = CheckResult::new(NAME);
    if let Some(d) = &e.detail {
        r.notes.push(d.clone());
    }
    if let Some(err) = &e.error {
        for v in err.lines() {
            r.violation_with(v.to_string(), vec![at]);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Verdict;

    fn ev(error: Option<&str>) -> Vec<Event> {
        vec![Event {
            ty: Ty::Invariants,
            detail: Some("12 status reports".into()),
            error: error.map(String::from),
            ..Default::default()
        }]
    }

    #[test]
    fn zab_check_passes_a_clean_report() {
        assert_eq!(check(&ev(None)).verdict, Verdict::Pass);
    }

    #[test]
    fn zab_check_fails_on_each_violation() {
        let r = check(&ev(Some(
            "two leaders established in epoch 3: server 1 and server 2\n\
             servers 1 and 2 both applied up to zxid 0x5 with different trees",
        )));
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(r.violations.len(), 2);
        assert_eq!(r.witness, vec![0]);
    }

    #[test]
    fn zab_check_is_skipped_without_a_report() {
        assert_eq!(check(&[]).verdict, Verdict::Skipped);
    }
}
