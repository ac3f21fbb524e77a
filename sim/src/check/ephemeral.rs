//! Ephemerals exist iff their owner session is live (reference §2.1),
//! judged from reads and the changes the history proves
//! ([`super::changes`]).
//!
//! - **Gone with the session**: once a session has ended (its close was
//!   acknowledged at zxid Z, or the client saw it expire, which must have
//!   happened before the first write invoked after that), no read at or
//!   after that zxid shows a node owned by it, and it creates nothing.
//! - **There while the session lives**: a read at zxid R of a path whose
//!   last proven change up to R is an ephemeral create by session S must
//!   show the node if S was certainly alive at R (it got an answer at a
//!   zxid >= R, or its close came after R) and nothing may have deleted it
//!   in between (no proven delete, no unknown write of the path).
//! - **Owner**: a read that shows an ephemeral reports `ephemeralOwner` =
//!   the session that created it (unless an unknown create may have
//!   replaced it).
//!
//! It uses the session facts and windows of [`Changes`] but not its
//! "unmodelled" safety net: a read that disagrees is exactly what this
//! check is for.

use super::changes::{Changes, Kind};
use super::{CheckResult, OpRec};
use crate::history::{OpName, Ty};
use std::collections::BTreeSet;

pub const NAME: &str = "ephemeral";

pub fn check(ops: &[OpRec<'_>], ch: &Changes) -> CheckResult {
    let mut r = CheckResult::new(NAME);
    let eph: BTreeSet<String> = ch
        .paths()
        .filter(|p| {
            ch.of(p)
                .iter()
                .any(|c| c.kind == Kind::Created && c.owner != 0)
        })
        .cloned()
        .chain(
            ops.iter()
                .filter(|o| o.op() == OpName::CreateEphemeral)
                .map(|o| o.path().to_string()),
        )
        .collect();
    if eph.is_empty() {
        r.notes.push("no ephemeral nodes in this history".into());
        return r;
    }
    let who = |s: i64| format!("session 0x{:x}", s as u64);
    // Creates after the session ended.
    for p in &eph {
        for c in ch
            .of(p)
            .iter()
            .filter(|c| c.kind == Kind::Created && c.owner != 0)
        {
            let life = ch.sessions.get(&c.owner).cloned().unwrap_or_default();
            if life.ended_by(c.zxid - 1) {
                r.violation_with(
                    format!(
                        "{p} created at zxid {} by {}, which had already ended",
                        c.zxid,
                        who(c.owner)
                    ),
                    [c.at],
                );
            }
        }
    }
    let mut reads = 0usize;
    for o in ops {
        if !matches!(o.op(), OpName::GetData | OpName::Exists) || !o.is_determinate() {
            continue;
        }
        let p = o.path();
        if !eph.contains(p) {
            continue;
        }
        let d = o.done.expect("determinate");
        let z = d.zxid.unwrap_or(0);
        let present = match (d.ty, d.exists, d.error.as_deref()) {
            (Ty::Ok, Some(false), _) => false,
            (Ty::Ok, _, _) => true,
            (Ty::Fail, _, Some("NoNode")) => false,
            _ => continue,
        };
        reads += 1;
        let list = ch.of(p);
        let last = list[..list.partition_point(|c| c.zxid <= z)]
            .iter()
            .rev()
            .find(|c| c.kind != Kind::DataChanged);
        let created = last.filter(|c| c.kind == Kind::Created && c.owner != 0);
        if present {
            let owner = d.owner.unwrap_or(0);
            if owner != 0 {
                let life = ch.sessions.get(&owner).cloned().unwrap_or_default();
                if life.ended_by(z) {
                    r.violation_with(
                        format!(
                            "{} shows {p} owned by {} at zxid {z}, after that session ended ({})",
                            o.describe(),
                            who(owner),
                            match (life.closed, life.expired_before) {
                                (Some(c), _) => format!("closed at zxid {c}"),
                                (_, Some(Some(b))) => format!("seen expired, before zxid {b}"),
                                _ => "ended".into(),
                            }
                        ),
                        o.at(),
                    );
                    continue;
                }
            }
            if let Some(c) = created {
                if owner != c.owner && !ch.open_between(p, c.zxid, Some(z)) {
                    r.violation_with(
                        format!(
                            "{} shows ephemeralOwner 0x{:x}, but {p} was created by {} at zxid {}",
                            o.describe(),
                            owner as u64,
                            who(c.owner),
                            c.zxid
                        ),
                        o.at().chain([c.at]),
                    );
                }
            }
        } else if let Some(c) = created {
            let life = ch.sessions.get(&c.owner).cloned().unwrap_or_default();
            let alive = life.alive >= z || life.closed.is_some_and(|x| x > z);
            if alive && !ch.open_between(p, c.zxid, Some(z)) {
                r.violation_with(
                    format!(
                        "{} finds no {p} at zxid {z}, but {} created it at zxid {} and was alive then (answered at zxid {}), and nothing deleted it",
                        o.describe(),
                        who(c.owner),
                        c.zxid,
                        life.alive.max(life.closed.unwrap_or(0))
                    ),
                    o.at().chain([c.at]),
                );
            }
        }
    }
    r.notes.push(format!(
        "{} ephemeral paths, {reads} reads of them checked",
        eph.len()
    ));
    r
}

#[cfg(test)]
mod tests {
    use super::super::changes::fixture::hx;
    use super::super::{pair_ops, Verdict};
    use super::*;

    fn run(text: &str) -> CheckResult {
        let ev = hx(text);
        let (ops, p) = pair_ops(&ev);
        assert!(p.is_empty(), "{p:?}");
        let ch = Changes::build(&ev, &ops);
        check(&ops, &ch)
    }

    /// Session 0x1 creates /e, another client sees it, 0x1 closes, the
    /// other client no longer sees it; session 0x3 expires with /f.
    const GOOD: &str = r#"
        1 invoke client=1 session=0x1 op_id=1 op=create_ephemeral path=/e value=a
        2 ok client=1 session=0x1 op_id=1 zxid=2 path=/e owner=0x1
        3 invoke client=2 session=0x2 op_id=2 op=exists path=/e
        4 ok client=2 session=0x2 op_id=2 zxid=2 exists=true version=0 mzxid=2 owner=0x1
        5 invoke client=1 session=0x1 op_id=3 op=get_data path=/e
        6 ok client=1 session=0x1 op_id=3 zxid=3 value=a version=0 mzxid=2 owner=0x1
        7 invoke client=1 session=0x1 op_id=4 op=close path=/
        8 ok client=1 session=0x1 op_id=4 zxid=4
        9 invoke client=2 session=0x2 op_id=5 op=exists path=/e
        10 ok client=2 session=0x2 op_id=5 zxid=4 exists=false
        11 invoke client=3 session=0x3 op_id=6 op=create_ephemeral path=/f value=b
        12 ok client=3 session=0x3 op_id=6 zxid=5 path=/f owner=0x3
        13 session_expired client=3 session=0x3
        14 invoke client=2 session=0x2 op_id=7 op=set_data path=/x value=c version=-1
        15 fail client=2 session=0x2 op_id=7 zxid=7 error=NoNode
        16 invoke client=2 session=0x2 op_id=8 op=get_data path=/f
        17 fail client=2 session=0x2 op_id=8 zxid=7 error=NoNode
    "#;

    #[test]
    fn good_history_passes() {
        let r = run(GOOD);
        assert_eq!(r.verdict, Verdict::Pass, "{r:#?}");
    }

    #[test]
    fn node_after_close_is_caught() {
        let r = run(&GOOD.replace(
            "10 ok client=2 session=0x2 op_id=5 zxid=4 exists=false",
            "10 ok client=2 session=0x2 op_id=5 zxid=4 exists=true version=0 mzxid=2 owner=0x1",
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
        assert!(
            r.violations[0].contains("after that session ended"),
            "{r:#?}"
        );
    }

    #[test]
    fn node_after_observed_expiry_is_caught() {
        let r = run(&GOOD.replace(
            "17 fail client=2 session=0x2 op_id=8 zxid=7 error=NoNode",
            "17 ok client=2 session=0x2 op_id=8 zxid=7 value=b version=0 mzxid=5 owner=0x3",
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
    }

    #[test]
    fn missing_while_alive_is_caught() {
        let r = run(&GOOD.replace(
            "4 ok client=2 session=0x2 op_id=2 zxid=2 exists=true version=0 mzxid=2 owner=0x1",
            "4 ok client=2 session=0x2 op_id=2 zxid=2 exists=false",
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
        assert!(r.violations[0].contains("was alive"), "{r:#?}");
    }

    #[test]
    fn wrong_owner_is_caught() {
        let r = run(&GOOD.replace(
            "4 ok client=2 session=0x2 op_id=2 zxid=2 exists=true version=0 mzxid=2 owner=0x1",
            "4 ok client=2 session=0x2 op_id=2 zxid=2 exists=true version=0 mzxid=2 owner=0x2",
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
        assert!(r.violations[0].contains("ephemeralOwner"), "{r:#?}");
        // No owner at all (a persistent node where an ephemeral should be).
        let r = run(&GOOD.replace(
            "4 ok client=2 session=0x2 op_id=2 zxid=2 exists=true version=0 mzxid=2 owner=0x1",
            "4 ok client=2 session=0x2 op_id=2 zxid=2 exists=true version=0 mzxid=2",
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
    }

    #[test]
    fn a_silent_expiry_may_remove_the_node() {
        // Session 0x3 was never seen again: its node may be gone at any
        // zxid after 5 (no violation either way).
        let r = run(&GOOD.replace("13 session_expired client=3 session=0x3", ""));
        assert_eq!(r.verdict, Verdict::Pass, "{r:#?}");
    }
}
