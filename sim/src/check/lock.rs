//! Mutual exclusion of the lock recipe, checked with zxid fencing.
//!
//! The lock workload's holders write a shared node with a versioned
//! setData whose value carries `;token=<T>;lock=<path>`: `T` is the zxid
//! of the create of the holder's ephemeral-sequential lock node `path`
//! (its fencing token). In zxid order (from the changes the history
//! proves, [`super::changes`], and the lock directory's listings):
//!
//! - **The token is real**: `T` is the zxid at which the writer's own
//!   session created `path`.
//! - **Held while writing**: the fenced write (zxid W) comes before the
//!   holder's lock node was deleted (no delete at or below W, no listing
//!   at or below W without it).
//! - **Exclusive**: every lock node created before the holder's (lower
//!   sequence number, smaller czxid) is gone by W: none is deleted after W
//!   and no listing or read at or after W shows one. So holding intervals
//!   (from a node becoming the lowest to its deletion) never overlap.
//! - **Fenced writes ordered by token**: successful fenced writes in zxid
//!   order carry increasing tokens.
//! - **No one wrote under the holder**: a fenced write answered BadVersion
//!   means another write landed between the holder's read and its write
//!   while it held the lock.
//!
//! Unknown deletions (expired sessions, unknown deletes) only count where
//! a listing or read pins them down.

use super::changes::{parent, Changes, Kind};
use super::{CheckResult, OpRec};
use crate::history::{OpName, Ty};
use std::collections::{BTreeMap, BTreeSet};

pub const NAME: &str = "lock";

/// A fenced write's claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub token: i64,
    pub lock: String,
}

/// Parse `...;token=<T>;lock=<path>` from a written value.
pub fn parse_fence(value: &str) -> Option<Fence> {
    let mut token = None;
    let mut lock = None;
    for part in value.split(';').skip(1) {
        if let Some(t) = part.strip_prefix("token=") {
            token = t.parse().ok();
        } else if let Some(l) = part.strip_prefix("lock=") {
            lock = Some(l.to_string());
        }
    }
    Some(Fence {
        token: token?,
        lock: lock?,
    })
}

/// A lock node and what pins down its life.
#[derive(Debug, Clone)]
struct Node {
    path: String,
    czxid: i64,
    owner: i64,
    at: usize,
    /// First proven delete after creation.
    deleted: Option<i64>,
    /// Zxids at which it was seen present / absent.
    seen: Vec<(i64, usize)>,
    gone: Vec<(i64, usize)>,
}

pub fn check(ops: &[OpRec<'_>], ch: &Changes) -> CheckResult {
    let mut r = CheckResult::new(NAME);
    let fenced: Vec<(&OpRec<'_>, Fence)> = ops
        .iter()
        .filter(|o| o.op() == OpName::SetData && o.is_determinate())
        .filter_map(|o| Some((o, parse_fence(o.inv.value.as_deref()?)?)))
        .collect();
    if fenced.is_empty() {
        r.notes.push("no fenced writes in this history".into());
        return r;
    }
    let dirs: BTreeSet<String> = fenced
        .iter()
        .map(|(_, f)| parent(&f.lock).to_string())
        .collect();
    let mut nodes = lock_nodes(ops, ch, &dirs);
    for list in nodes.values_mut() {
        list.sort_by_key(|n| n.czxid);
    }
    let who = |s: i64| format!("session 0x{:x}", s as u64);
    let mut ok_writes: Vec<(i64, i64, &OpRec<'_>)> = Vec::new();
    for (o, f) in &fenced {
        let d = o.done.expect("determinate");
        if d.ty == Ty::Fail {
            if d.error.as_deref() == Some("BadVersion") {
                r.violation_with(
                    format!(
                        "{}: the holder's versioned write was refused (BadVersion): someone wrote the fenced node while it held the lock",
                        o.describe()
                    ),
                    o.at(),
                );
            }
            continue;
        }
        let w = d.zxid.unwrap_or(0);
        ok_writes.push((w, f.token, o));
        let list = &nodes[parent(&f.lock)];
        let Some(h) = list.iter().find(|n| n.path == f.lock) else {
            r.violation_with(
                format!("{}: no lock node {} was created", o.describe(), f.lock),
                o.at(),
            );
            continue;
        };
        if h.czxid != f.token || h.owner != o.session() {
            r.violation_with(
                format!(
                    "{}: fencing token {} does not name the writer's lock node ({} was created at zxid {} by {})",
                    o.describe(),
                    f.token,
                    h.path,
                    h.czxid,
                    who(h.owner)
                ),
                o.at().chain([h.at]),
            );
            continue;
        }
        let released = h.deleted.filter(|z| *z <= w).or_else(|| {
            h.gone
                .iter()
                .find(|(z, _)| *z > h.czxid && *z <= w)
                .map(|(z, _)| *z)
        });
        if let Some(z) = released {
            r.violation_with(
                format!(
                    "{}: wrote at zxid {w}, but its lock node {} was gone by zxid {z}",
                    o.describe(),
                    h.path
                ),
                o.at().chain([h.at]),
            );
        }
        for n in list.iter().filter(|n| n.czxid < h.czxid) {
            let still = n
                .seen
                .iter()
                .find(|(z, _)| *z >= w)
                .map(|(z, i)| (*z, Some(*i)))
                .or_else(|| n.deleted.filter(|z| *z > w).map(|z| (z, None)));
            if let Some((z, i)) = still {
                let how = match i {
                    Some(_) => format!("was still there at zxid {z}"),
                    None => format!("was deleted only at zxid {z}"),
                };
                r.violation_with(
                    format!(
                        "mutual exclusion: {} held the lock (token {}) and wrote at zxid {w}, but the earlier lock node {} of {} {how}",
                        who(o.session()),
                        f.token,
                        n.path,
                        who(n.owner)
                    ),
                    o.at().chain([n.at]).chain(i),
                );
            }
        }
    }
    ok_writes.sort_by_key(|(w, _, _)| *w);
    for pair in ok_writes.windows(2) {
        let ((w1, t1, o1), (w2, t2, o2)) = (pair[0], pair[1]);
        if t2 <= t1 {
            r.violation_with(
                format!(
                    "fenced writes out of token order: token {t2} at zxid {w2} ({}) after token {t1} at zxid {w1} ({})",
                    o2.describe(),
                    o1.describe()
                ),
                o1.at().chain(o2.at()),
            );
        }
    }
    let n: usize = nodes.values().map(Vec::len).sum();
    r.notes.push(format!(
        "{} fenced writes ({} succeeded), {n} lock nodes in {} directories",
        fenced.len(),
        ok_writes.len(),
        dirs.len()
    ));
    r
}

/// The proven lock nodes of each directory, with their deletions and the
/// listings and reads that saw them.
fn lock_nodes(
    ops: &[OpRec<'_>],
    ch: &Changes,
    dirs: &BTreeSet<String>,
) -> BTreeMap<String, Vec<Node>> {
    let mut nodes: BTreeMap<String, Vec<Node>> =
        dirs.iter().map(|d| (d.clone(), Vec::new())).collect();
    for p in ch.paths() {
        let Some(list) = nodes.get_mut(parent(p)) else {
            continue;
        };
        let changes = ch.of(p);
        for (i, c) in changes.iter().enumerate() {
            if c.kind != Kind::Created || c.owner == 0 {
                continue;
            }
            let deleted = changes[i + 1..]
                .iter()
                .find(|d| d.kind == Kind::Deleted)
                .map(|d| d.zxid);
            list.push(Node {
                path: p.clone(),
                czxid: c.zxid,
                owner: c.owner,
                at: c.at,
                deleted,
                seen: Vec::new(),
                gone: Vec::new(),
            });
        }
    }
    for o in ops.iter().filter(|o| o.is_determinate()) {
        let d = o.done.expect("determinate");
        let z = d.zxid.unwrap_or(0);
        let at = o.done_at.unwrap_or(o.inv_at);
        match o.op() {
            OpName::GetChildren if d.ty == Ty::Ok => {
                let Some(list) = nodes.get_mut(o.path()) else {
                    continue;
                };
                let kids: BTreeSet<&str> =
                    d.children.iter().flatten().map(String::as_str).collect();
                for n in list.iter_mut().filter(|n| n.czxid <= z) {
                    let name = n.path.rsplit('/').next().unwrap_or("");
                    if kids.contains(name) {
                        n.seen.push((z, at));
                    } else {
                        n.gone.push((z, at));
                    }
                }
            }
            OpName::Exists | OpName::GetData => {
                let Some(list) = nodes.get_mut(parent(o.path())) else {
                    continue;
                };
                let present = d.ty == Ty::Ok && d.exists != Some(false);
                // A read shows the incarnation created last before it.
                let Some(n) = list
                    .iter_mut()
                    .filter(|n| n.path == o.path() && n.czxid <= z)
                    .max_by_key(|n| n.czxid)
                else {
                    continue;
                };
                if present {
                    n.seen.push((z, at));
                } else if d.ty == Ty::Ok || d.error.as_deref() == Some("NoNode") {
                    n.gone.push((z, at));
                }
            }
            _ => {}
        }
    }
    nodes
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

    /// Sessions 0x1 and 0x2 queue at zxids 2 and 3; 0x1 holds, writes at
    /// 5 and releases at 6; 0x2 sees itself first at 7, writes at 9,
    /// releases at 10.
    const GOOD: &str = r#"
        1 invoke client=1 session=0x1 op_id=1 op=create_ephemeral_sequential path=/l/a- value=x
        2 ok client=1 session=0x1 op_id=1 zxid=2 path=/l/a-0000000000 owner=0x1
        3 invoke client=2 session=0x2 op_id=2 op=create_ephemeral_sequential path=/l/b- value=y
        4 ok client=2 session=0x2 op_id=2 zxid=3 path=/l/b-0000000001 owner=0x2
        5 invoke client=1 session=0x1 op_id=3 op=get_children path=/l
        6 ok client=1 session=0x1 op_id=3 zxid=3 children=a-0000000000,b-0000000001
        7 invoke client=1 session=0x1 op_id=4 op=get_data path=/f
        8 ok client=1 session=0x1 op_id=4 zxid=4 value=init version=0 mzxid=1
        9 invoke client=1 session=0x1 op_id=5 op=set_data path=/f value=v1;token=2;lock=/l/a-0000000000 version=0
        10 ok client=1 session=0x1 op_id=5 zxid=5 version=1 mzxid=5
        11 invoke client=1 session=0x1 op_id=6 op=delete path=/l/a-0000000000 version=-1
        12 ok client=1 session=0x1 op_id=6 zxid=6
        13 invoke client=2 session=0x2 op_id=7 op=get_children path=/l
        14 ok client=2 session=0x2 op_id=7 zxid=7 children=b-0000000001
        15 invoke client=2 session=0x2 op_id=8 op=get_data path=/f
        16 ok client=2 session=0x2 op_id=8 zxid=8 value=v1;token=2;lock=/l/a-0000000000 version=1 mzxid=5
        17 invoke client=2 session=0x2 op_id=9 op=set_data path=/f value=v2;token=3;lock=/l/b-0000000001 version=1
        18 ok client=2 session=0x2 op_id=9 zxid=9 version=2 mzxid=9
        19 invoke client=2 session=0x2 op_id=10 op=delete path=/l/b-0000000001 version=-1
        20 ok client=2 session=0x2 op_id=10 zxid=10
    "#;

    #[test]
    fn parses_fences() {
        assert_eq!(
            parse_fence("lk-c1-3;token=42;lock=/lk/lock/c1-a1-0000000003"),
            Some(Fence {
                token: 42,
                lock: "/lk/lock/c1-a1-0000000003".into()
            })
        );
        assert_eq!(parse_fence("plain-value"), None);
    }

    #[test]
    fn good_history_passes() {
        let r = run(GOOD);
        assert_eq!(r.verdict, Verdict::Pass, "{r:#?}");
    }

    #[test]
    fn overlapping_holders_are_caught() {
        // 0x2 writes at zxid 5, but 0x1's earlier node goes only at 6.
        let bad = GOOD
            .replace(
                "8 ok client=1 session=0x1 op_id=4 zxid=4 value=init",
                "8 ok client=1 session=0x1 op_id=4 zxid=3 value=init",
            )
            .replace(
                "10 ok client=1 session=0x1 op_id=5 zxid=5 version=1 mzxid=5",
                "10 ok client=1 session=0x1 op_id=5 zxid=4 version=1 mzxid=4",
            )
            .replace(
                "18 ok client=2 session=0x2 op_id=9 zxid=9 version=2 mzxid=9",
                "18 ok client=2 session=0x2 op_id=9 zxid=5 version=2 mzxid=5",
            );
        let r = run(&bad);
        assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
        assert!(
            r.violations.iter().any(|v| v.contains("mutual exclusion")),
            "{r:#?}"
        );
    }

    #[test]
    fn writing_after_release_is_caught() {
        let bad = GOOD.replace(
            "10 ok client=1 session=0x1 op_id=5 zxid=5 version=1 mzxid=5",
            "10 ok client=1 session=0x1 op_id=5 zxid=6 version=1 mzxid=6",
        );
        let bad = bad.replace(
            "12 ok client=1 session=0x1 op_id=6 zxid=6",
            "12 ok client=1 session=0x1 op_id=6 zxid=5",
        );
        let r = run(&bad);
        assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
        assert!(
            r.violations.iter().any(|v| v.contains("was gone")),
            "{r:#?}"
        );
    }

    #[test]
    fn a_forged_token_is_caught() {
        let r = run(&GOOD.replace("v2;token=3;", "v2;token=2;"));
        assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
        assert!(r.violations[0].contains("does not name"), "{r:#?}");
    }

    #[test]
    fn tokens_out_of_order_are_caught() {
        // 0x2's fenced write lands before 0x1's (and 0x1's node was still
        // listed then).
        let bad = GOOD
            .replace(
                "18 ok client=2 session=0x2 op_id=9 zxid=9 version=2 mzxid=9",
                "18 ok client=2 session=0x2 op_id=9 zxid=4 version=2 mzxid=4",
            )
            .replace(
                "8 ok client=1 session=0x1 op_id=4 zxid=4 value=init",
                "8 ok client=1 session=0x1 op_id=4 zxid=3 value=init",
            );
        let r = run(&bad);
        assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
        assert!(
            r.violations.iter().any(|v| v.contains("token order")),
            "{r:#?}"
        );
    }

    #[test]
    fn bad_version_on_a_fenced_write_is_caught() {
        let r = run(&GOOD.replace(
            "18 ok client=2 session=0x2 op_id=9 zxid=9 version=2 mzxid=9",
            "18 fail client=2 session=0x2 op_id=9 zxid=9 error=BadVersion",
        ));
        assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
        assert!(r.violations[0].contains("BadVersion"), "{r:#?}");
    }
}
