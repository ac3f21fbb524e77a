//! The search-based checker (`check::wgl`, no zxids) against the zxid-based
//! one (`check::linear`): generated histories of a real linearizable znode,
//! then mutated, must get the same verdict from both; and real histories
//! from a short scenario must pass both.
//!
//! The generator runs a znode `/k` with a few sessions, each issuing
//! create / setData / delete (conditional or not), or a multi over `/k` and
//! `/j` (create, setData, delete, check), one at a time. Every
//! operation takes effect at a random point inside its interval; an
//! unknown one (timeout) takes effect at a random point after its
//! invocation and before its session's next operation that took effect,
//! or never; a "not sent" one never does. Replies come from executing the
//! operations in that order, and zxids are handed out in that order.
//!
//! How "agree" is judged, since the zxid checker knows more (the order):
//! - an unmutated history: both pass;
//! - a mutated reply (version, error, a dropped effect): if the search finds
//!   no linearization, the zxid checker must fail with the zxids as they
//!   were; if it finds one, the zxid checker must pass once the zxids are
//!   handed out in the search's order (the witness is valid by an
//!   independent judge). The search's verdict must not depend on zxids.
//! - swapped zxids of two operations that do not overlap: the search still
//!   passes (the zxid-free history is unchanged), the zxid checker fails.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use sim::check::wgl::{self, Bounds, Key, Outcome};
use sim::check::{linear, pair_ops, Verdict};
use sim::history::{Event, OpName, SubOp, SubResult, Ty, NOT_SENT, ROLLED_BACK};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// Time units per generated tick: sessions are offset within a tick so that
/// no two events share a time.
const TICK: u64 = 16;

#[derive(Debug, Clone)]
struct OpSpec {
    /// 0 create, 1 setData(-1), 2 setData(v), 3 delete(-1), 4 delete(v),
    /// 5 a multi over /j and /k (which one: `version`).
    kind: u8,
    version: i32,
    dur: u64,
    gap: u64,
    /// 0..=6 answered, 7 unknown that took effect, 8 unknown that did not,
    /// 9 not sent.
    fate: u8,
    /// Where in its window the operation takes effect (percent).
    at: u64,
    /// How long after its invocation an unknown one may take effect.
    late: u64,
}

#[derive(Debug, Clone)]
struct Spec {
    sessions: Vec<(u64, Vec<OpSpec>)>,
    /// Mutations to try: (kind, selector).
    picks: Vec<(u8, usize)>,
}

fn op_spec() -> impl Strategy<Value = OpSpec> {
    (
        0u8..6,
        0i32..3,
        1u64..10,
        0u64..5,
        0u8..10,
        1u64..100,
        1u64..30,
    )
        .prop_map(|(kind, version, dur, gap, fate, at, late)| OpSpec {
            kind,
            version,
            dur,
            gap,
            fate,
            at,
            late,
        })
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::collection::vec((0u64..8, prop::collection::vec(op_spec(), 1..=5)), 1..=4),
        prop::collection::vec((0u8..4, any::<usize>()), 3),
    )
        .prop_map(|(sessions, picks)| Spec { sessions, picks })
}

/// A planned operation with its times (in units of 1/TICK).
#[derive(Debug, Clone)]
struct Planned {
    id: u64,
    session: usize,
    kind: u8,
    version: i32,
    inv: u64,
    ret: u64,
    fate: u8,
    /// When it takes effect, if it does.
    lin: Option<u64>,
}

fn plan(spec: &Spec) -> Vec<Planned> {
    let mut out = Vec::new();
    let mut id = 0;
    for (s, (start, ops)) in spec.sessions.iter().enumerate() {
        let mut t = *start;
        let mut session: Vec<Planned> = Vec::new();
        for o in ops {
            id += 1;
            let (inv, ret) = (t * TICK + s as u64, (t + o.dur) * TICK + s as u64);
            t += o.dur + o.gap + 1;
            session.push(Planned {
                id,
                session: s,
                kind: o.kind,
                version: o.version,
                inv,
                ret,
                fate: o.fate,
                lin: None,
            });
        }
        // Effect points, last first: an unknown op takes effect before its
        // session's next op that does (requests execute in order).
        let mut bound = u64::MAX;
        for (p, o) in session.iter_mut().zip(ops).rev() {
            match p.fate {
                0..=6 => {
                    let span = p.ret - p.inv - 2;
                    p.lin = Some(p.inv + 1 + span * o.at / 100);
                }
                7 => {
                    let hi = bound.min(p.inv + o.late * TICK);
                    let span = hi.saturating_sub(p.inv + 1);
                    if span == 0 {
                        continue;
                    }
                    p.lin = Some(p.inv + 1 + span * o.at / 100);
                }
                _ => {}
            }
            if let Some(l) = p.lin {
                bound = l;
            }
        }
        out.extend(session);
    }
    out
}

/// A sub-operation of a generated multi: (op, path, version).
type Sub = (OpName, &'static str, Option<i32>);

/// The multi of kind 5, by variant: two sub-operations on /j and /k.
fn multi_subs(variant: i32) -> [Sub; 2] {
    match variant {
        0 => [
            (OpName::Create, "/j", None),
            (OpName::SetData, "/k", Some(-1)),
        ],
        1 => [
            (OpName::Check, "/j", Some(0)),
            (OpName::Delete, "/k", Some(-1)),
        ],
        _ => [
            (OpName::SetData, "/j", Some(-1)),
            (OpName::Check, "/k", Some(1)),
        ],
    }
}

/// What one (sub-)operation does to a znode's version: (next, reply).
fn apply(op: OpName, version: Option<i32>, node: Option<i32>) -> (Option<i32>, Reply) {
    let matches = |v: i32| version.is_none_or(|e| e == -1 || e == v);
    match (op, node) {
        (OpName::Create, None) => (Some(0), Ok(Some(0))),
        (OpName::Create, Some(_)) => (node, Err("NodeExists")),
        (_, None) => (None, Err("NoNode")),
        (_, Some(v)) if !matches(v) => (node, Err("BadVersion")),
        (OpName::SetData, Some(v)) => (Some(v + 1), Ok(Some(v + 1))),
        (OpName::Delete, Some(_)) => (None, Ok(None)),
        (_, Some(_)) => (node, Ok(None)),
    }
}

/// A reply: Ok(new version, if any) or an error code; for a multi, the
/// failing sub-operation or every sub-operation's version.
type Reply = Result<Option<i32>, &'static str>;

#[derive(Debug, Clone)]
enum Done {
    Single(Reply),
    Multi(Result<Vec<Option<i32>>, (usize, &'static str)>),
}

fn single(p: &Planned) -> (OpName, Option<i32>) {
    match p.kind {
        0 => (OpName::Create, None),
        1 => (OpName::SetData, Some(-1)),
        2 => (OpName::SetData, Some(p.version)),
        3 => (OpName::Delete, Some(-1)),
        _ => (OpName::Delete, Some(p.version)),
    }
}

/// Execute the plan against /k and /j, optionally "forgetting" the effect
/// of op `drop` (it still reports success). Returns the history.
fn execute(plan: &[Planned], drop: Option<u64>) -> Vec<Event> {
    let mut order: Vec<&Planned> = plan.iter().filter(|p| p.lin.is_some()).collect();
    order.sort_by_key(|p| (p.lin, p.session));
    let mut nodes: BTreeMap<&str, Option<i32>> = BTreeMap::from([("/k", None), ("/j", None)]);
    let mut replies: BTreeMap<u64, (i64, Done)> = BTreeMap::new();
    for (i, p) in order.iter().enumerate() {
        let zxid = i as i64 + 1;
        let mut next = nodes.clone();
        let done = if p.kind == 5 {
            let mut versions = Vec::new();
            let mut failed = None;
            for (j, (op, path, version)) in multi_subs(p.version).into_iter().enumerate() {
                match apply(op, version, next[path]) {
                    (n, Ok(v)) => {
                        next.insert(path, n);
                        versions.push(v);
                    }
                    (_, Err(code)) => {
                        failed = Some((j, code));
                        break;
                    }
                }
            }
            match failed {
                Some(f) => Done::Multi(Err(f)),
                None => Done::Multi(Ok(versions)),
            }
        } else {
            let (op, version) = single(p);
            let (n, reply) = apply(op, version, next["/k"]);
            next.insert("/k", n);
            Done::Single(reply)
        };
        let ok = matches!(done, Done::Single(Ok(_)) | Done::Multi(Ok(_)));
        if ok && drop != Some(p.id) {
            nodes = next;
        }
        replies.insert(p.id, (zxid, done));
    }
    let mut ev: Vec<Event> = Vec::new();
    for p in plan {
        let base = Event {
            client: Some(p.session as u32 + 1),
            session: Some(p.session as i64 + 1),
            op_id: Some(p.id),
            ..Default::default()
        };
        ev.push(invoke(p, base.clone()));
        let done = match (p.fate, replies.get(&p.id)) {
            (0..=6, Some((zxid, done))) => completion(p, *zxid, done, base),
            (9, _) => Event {
                ty: Ty::Info,
                error: Some(format!(
                    "{NOT_SENT}: request timed out before it could be sent"
                )),
                ..base
            },
            _ => Event {
                ty: Ty::Info,
                error: Some("request timed out: outcome unknown".into()),
                ..base
            },
        };
        ev.push(Event {
            t_us: p.ret,
            ..done
        });
    }
    ev.sort_by_key(|e| e.t_us);
    ev
}

fn invoke(p: &Planned, base: Event) -> Event {
    let inv = Event {
        t_us: p.inv,
        ty: Ty::Invoke,
        ..base
    };
    if p.kind == 5 {
        let ops = multi_subs(p.version)
            .into_iter()
            .map(|(op, path, version)| SubOp {
                op,
                path: path.into(),
                value: (op != OpName::Delete && op != OpName::Check).then(|| format!("v{}", p.id)),
                version,
            })
            .collect();
        return Event {
            op: Some(OpName::Multi),
            path: Some("/".into()),
            ops: Some(ops),
            ..inv
        };
    }
    let (op, version) = single(p);
    Event {
        op: Some(op),
        path: Some("/k".into()),
        value: (p.kind < 3).then(|| format!("v{}", p.id)),
        version,
        ..inv
    }
}

fn completion(p: &Planned, zxid: i64, done: &Done, base: Event) -> Event {
    let zxid_of = |v: &Option<i32>| v.map(|_| zxid);
    match done {
        Done::Single(Ok(v)) => Event {
            ty: Ty::Ok,
            zxid: Some(zxid),
            version: *v,
            mzxid: zxid_of(v),
            ..base
        },
        Done::Single(Err(code)) => Event {
            ty: Ty::Fail,
            zxid: Some(zxid),
            error: Some(code.to_string()),
            ..base
        },
        Done::Multi(Ok(versions)) => {
            let subs = multi_subs(p.version);
            let results = versions
                .iter()
                .zip(subs)
                .map(|(v, (op, path, _))| SubResult {
                    path: (op == OpName::Create).then(|| path.to_string()),
                    version: *v,
                    mzxid: zxid_of(v),
                    error: None,
                })
                .collect();
            Event {
                ty: Ty::Ok,
                zxid: Some(zxid),
                results: Some(results),
                ..base
            }
        }
        Done::Multi(Err((at, code))) => Event {
            ty: Ty::Fail,
            zxid: Some(zxid),
            error: Some(code.to_string()),
            results: Some(failed_results(2, *at, code)),
            ..base
        },
    }
}

/// A failed multi's sub-results.
fn failed_results(n: usize, at: usize, code: &str) -> Vec<SubResult> {
    (0..n)
        .map(|i| SubResult {
            error: Some(
                match i.cmp(&at) {
                    std::cmp::Ordering::Less => ROLLED_BACK,
                    std::cmp::Ordering::Equal => code,
                    std::cmp::Ordering::Greater => "RuntimeInconsistency",
                }
                .to_string(),
            ),
            ..Default::default()
        })
        .collect()
}

fn wgl_outcome(ev: &[Event]) -> Outcome {
    let (ops, problems) = pair_ops(ev);
    assert!(problems.is_empty(), "{problems:?}");
    let a = wgl::analyze(ev, &ops, Bounds::default());
    a.outcome(&Key::Node("/k".into()))
        .cloned()
        .unwrap_or(Outcome::Linearizable(Vec::new()))
}

fn zxid_verdict(ev: &[Event]) -> Verdict {
    zxid_check(ev).verdict
}

fn zxid_check(ev: &[Event]) -> sim::check::CheckResult {
    let (ops, _) = pair_ops(ev);
    let m = linear::Model::run(ev, &ops);
    linear::check(&ops, &m)
}

/// Hand out zxids in the witness's order.
fn rezxid(ev: &[Event], witness: &[u64]) -> Vec<Event> {
    let pos: BTreeMap<u64, i64> = witness
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i as i64 + 1))
        .collect();
    let mut ev = ev.to_vec();
    for e in ev.iter_mut().filter(|e| e.is_determinate()) {
        let z = pos[&e.op_id.expect("op")];
        e.zxid = Some(z);
        e.mzxid = e.mzxid.map(|_| z);
        for r in e.results.iter_mut().flatten() {
            r.mzxid = r.mzxid.map(|_| z);
        }
    }
    ev
}

#[derive(Debug, Default)]
struct Tally {
    cases: usize,
    /// Unmutated histories: both pass.
    clean_pass: usize,
    /// Reply mutants with no linearization: both fail.
    mutant_both_fail: usize,
    /// Reply mutants still linearizable: both pass (zxids from the witness).
    mutant_both_pass: usize,
    /// ... of which the zxid checker failed with the original zxids (the
    /// search found a different order).
    mutant_reordered: usize,
    /// Swapped zxids: search passes, zxid checker fails.
    swaps_caught: usize,
    /// Unknown operations generated.
    unknown_ops: usize,
    disagreements: Vec<String>,
}

impl Tally {
    fn agreements(&self) -> usize {
        self.clean_pass + self.mutant_both_fail + self.mutant_both_pass + self.swaps_caught
    }
}

/// Compare the checkers on one generated history and its mutants.
fn cross_check(spec: &Spec, t: &mut Tally) {
    t.cases += 1;
    let plan = plan(spec);
    t.unknown_ops += plan.iter().filter(|p| (7..=8).contains(&p.fate)).count();
    let clean = execute(&plan, None);
    let ctx =
        |what: &str, ev: &[Event]| format!("{what}: {spec:?}\n{}", sim::history::to_jsonl(ev));
    match (wgl_outcome(&clean), zxid_verdict(&clean)) {
        (Outcome::Linearizable(_), Verdict::Pass) => t.clean_pass += 1,
        (w, z) => {
            t.disagreements.push(format!(
                "{} wgl={w:?} zxid={z:?}",
                ctx("clean history", &clean)
            ));
            return;
        }
    }
    for &(kind, sel) in &spec.picks {
        match kind {
            0..=2 => {
                let Some(mutant) = mutate_reply(&plan, &clean, kind, sel) else {
                    continue;
                };
                judge_mutant(&mutant, t, &ctx);
            }
            _ => {
                let Some(swapped) = swap_zxids(&clean, sel) else {
                    continue;
                };
                match (wgl_outcome(&swapped), zxid_verdict(&swapped)) {
                    (Outcome::Linearizable(_), Verdict::Fail) => t.swaps_caught += 1,
                    (w, z) => t.disagreements.push(format!(
                        "{} wgl={w:?} zxid={z:?}",
                        ctx("swapped zxids", &swapped)
                    )),
                }
            }
        }
    }
}

fn judge_mutant(ev: &[Event], t: &mut Tally, ctx: &dyn Fn(&str, &[Event]) -> String) {
    match wgl_outcome(ev) {
        Outcome::Linearizable(order) => {
            let same = rezxid(ev, &order);
            let again = wgl_outcome(&same);
            let zr = zxid_check(&same);
            let z = zr.verdict;
            if z == Verdict::Pass && matches!(again, Outcome::Linearizable(_)) {
                t.mutant_both_pass += 1;
                if zxid_verdict(ev) == Verdict::Fail {
                    t.mutant_reordered += 1;
                }
            } else {
                t.disagreements.push(format!(
                    "{} wgl found {order:?}, zxid checker with those zxids: {:?}; wgl again: {again:?}",
                    ctx("linearizable mutant", ev),
                    zr.violations
                ));
            }
        }
        Outcome::Violation(why) => match zxid_verdict(ev) {
            Verdict::Fail => t.mutant_both_fail += 1,
            z => t.disagreements.push(format!(
                "{} wgl: {why}; zxid checker: {z:?}",
                ctx("non-linearizable mutant", ev)
            )),
        },
        Outcome::Undecided(why) => t
            .disagreements
            .push(format!("{} undecided: {why}", ctx("mutant", ev))),
    }
}

/// Index of the `sel`-th (mod count) completion satisfying `f`.
fn pick(ev: &[Event], sel: usize, f: impl Fn(&Event) -> bool) -> Option<usize> {
    let idx: Vec<usize> = (0..ev.len()).filter(|&i| f(&ev[i])).collect();
    (!idx.is_empty()).then(|| idx[sel % idx.len()])
}

fn op_of(ev: &[Event], id: Option<u64>) -> Option<OpName> {
    ev.iter()
        .find(|e| e.ty == Ty::Invoke && e.op_id == id)
        .and_then(|e| e.op)
}

/// 0: a setData's or create's new version off by one (or not, at 0); 1: ok <-> error; 2: an
/// acknowledged write's effect dropped.
fn mutate_reply(plan: &[Planned], clean: &[Event], kind: u8, sel: usize) -> Option<Vec<Event>> {
    let mut ev = clean.to_vec();
    match kind {
        0 => {
            // A setData's or a create's (which must be 0).
            let i = pick(&ev, sel, |e| {
                e.ty == Ty::Ok
                    && matches!(
                        op_of(clean, e.op_id),
                        Some(OpName::SetData | OpName::Create)
                    )
            })?;
            let v = ev[i].version.expect("picked");
            ev[i].version = Some(if sel.is_multiple_of(2) {
                v + 1
            } else {
                (v - 1).max(0)
            });
            (ev[i].version != Some(v)).then_some(ev)
        }
        1 => {
            let i = pick(&ev, sel, Event::is_determinate)?;
            let e = &mut ev[i];
            let code = ["NoNode", "NodeExists", "BadVersion"][sel % 3];
            if e.results.is_some() {
                // A multi: fail at sub-operation `sel % 2`, or succeed.
                if e.ty == Ty::Ok {
                    e.ty = Ty::Fail;
                    e.error = Some(code.into());
                    e.results = Some(failed_results(2, sel % 2, code));
                } else {
                    e.ty = Ty::Ok;
                    e.error = None;
                    e.results = Some(vec![SubResult::default(), SubResult::default()]);
                }
            } else if e.ty == Ty::Ok {
                e.ty = Ty::Fail;
                e.error = Some(code.into());
                e.version = None;
                e.mzxid = None;
            } else {
                e.ty = Ty::Ok;
                e.error = None;
                let op = op_of(clean, e.op_id);
                e.version = match op {
                    Some(OpName::Create) => Some(0),
                    Some(OpName::SetData) => Some(1 + (sel % 3) as i32),
                    _ => None,
                };
                e.mzxid = e.version.and(e.zxid);
            }
            Some(ev)
        }
        _ => {
            let i = pick(&ev, sel, |e| e.ty == Ty::Ok)?;
            Some(execute(plan, ev[i].op_id))
        }
    }
}

/// Swap the zxids of two answered operations, the first completed before
/// the second was invoked.
fn swap_zxids(clean: &[Event], sel: usize) -> Option<Vec<Event>> {
    let (ops, _) = pair_ops(clean);
    let mut pairs = Vec::new();
    for a in &ops {
        for b in &ops {
            if a.is_txn() && b.is_txn() && a.complete_us()? < b.invoke_us() {
                pairs.push((a.done_at?, b.done_at?));
            }
        }
    }
    if pairs.is_empty() {
        return None;
    }
    let (i, j) = pairs[sel % pairs.len()];
    let mut ev = clean.to_vec();
    let (zi, zj) = (ev[i].zxid, ev[j].zxid);
    ev[i].zxid = zj;
    ev[j].zxid = zi;
    for (k, z) in [(i, zj), (j, zi)] {
        ev[k].mzxid = ev[k].mzxid.and(z);
        for r in ev[k].results.iter_mut().flatten() {
            r.mzxid = r.mzxid.and(z);
        }
    }
    Some(ev)
}

/// Found by the cross-check: the zxid checker used to apply an unknown
/// multi to each of its paths independently, so it accepted a history where
/// the multi cannot have succeeded (its check of /j fails) yet its delete of
/// /k must have happened. Both checkers now keep an unknown multi atomic
/// (all its sub-operations at one zxid, or none) and reject it.
#[test]
fn unknown_multi_is_atomic_for_both_checkers() {
    // Client 1's multi (check /j is at version 0, delete /k) timed out.
    // /j never exists, so it cannot have succeeded, so /k was never
    // deleted, so client 2's second create cannot succeed.
    let ev = sim::history::from_jsonl(
        r#"
{"t_ms":0.0,"type":"invoke","client":1,"session":"0x1","op_id":1,"op":"multi","path":"/","ops":[{"op":"check","path":"/j","version":0},{"op":"delete","path":"/k","version":-1}]}
{"t_ms":0.001,"type":"invoke","client":2,"session":"0x2","op_id":2,"op":"create","path":"/k","value":"v2"}
{"t_ms":0.016,"type":"info","client":1,"session":"0x1","op_id":1,"error":"request timed out: outcome unknown"}
{"t_ms":0.017,"type":"ok","client":2,"session":"0x2","op_id":2,"version":0,"mzxid":2,"zxid":2}
{"t_ms":0.033,"type":"invoke","client":2,"session":"0x2","op_id":3,"op":"create","path":"/k","value":"v3"}
{"t_ms":0.049,"type":"ok","client":2,"session":"0x2","op_id":3,"version":0,"mzxid":3,"zxid":3}
"#,
    )
    .expect("parses");
    assert!(matches!(wgl_outcome(&ev), Outcome::Violation(_)));
    assert_eq!(zxid_verdict(&ev), Verdict::Fail);
}

#[test]
fn search_and_zxid_checkers_agree_on_generated_histories() {
    let tally = RefCell::new(Tally::default());
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 2000,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let result = runner.run(&spec(), |s| {
        let mut one = Tally::default();
        cross_check(&s, &mut one);
        let mut t = tally.borrow_mut();
        t.cases += one.cases;
        t.clean_pass += one.clean_pass;
        t.mutant_both_fail += one.mutant_both_fail;
        t.mutant_both_pass += one.mutant_both_pass;
        t.mutant_reordered += one.mutant_reordered;
        t.swaps_caught += one.swaps_caught;
        t.unknown_ops += one.unknown_ops;
        prop_assert!(
            one.disagreements.is_empty(),
            "{}",
            one.disagreements.join("\n\n")
        );
        Ok(())
    });
    let t = tally.into_inner();
    println!(
        "cases {}, histories compared {} (agreements), disagreements {}: clean both pass {}, \
         reply mutants both fail {}, reply mutants still linearizable and both pass {} \
         ({} only under the search's order), zxid swaps: search passes and zxid checker fails {}; \
         {} unknown ops generated",
        t.cases,
        t.agreements(),
        t.disagreements.len(),
        t.clean_pass,
        t.mutant_both_fail,
        t.mutant_both_pass,
        t.mutant_reordered,
        t.swaps_caught,
        t.unknown_ops
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    // The mutants bite, in both directions.
    assert!(t.mutant_both_fail > 500, "{t:?}");
    assert!(t.mutant_both_pass > 100, "{t:?}");
    assert!(t.mutant_reordered > 10, "{t:?}");
    assert!(t.swaps_caught > 200, "{t:?}");
}

#[cfg(madsim)]
mod real {
    use super::*;
    use sim::check::{check_all, CheckResult};
    use sim::report::judge;
    use sim::runner::run_seed;
    use sim::scenario::Scenario;

    /// Short and small, so the search stays cheap: every workload kind, a
    /// client cut off past its request timeout (unknown outcomes), and one
    /// past its session timeout (an observed expiry with ephemerals).
    const SHORT: &str = r#"
        duration_ms = 6000
        [cluster]
        servers = 1
        tick_ms = 200
        min_session_timeout_ms = 1000
        max_session_timeout_ms = 10000
        [[workload]]
        name = "reg"
        kind = "register"
        clients = 3
        keys = 2
        ops = "20/s"
        session_timeout_ms = 4000
        request_timeout_ms = 600
        [[workload]]
        name = "eph"
        kind = "ephemeral"
        clients = 2
        keys = 1
        ops = "10/s"
        session_timeout_ms = 1500
        request_timeout_ms = 600
        [[workload]]
        name = "seq"
        kind = "sequential"
        clients = 2
        ops = "10/s"
        [[workload]]
        name = "mul"
        kind = "multi"
        clients = 2
        keys = 3
        ops = "10/s"
        request_timeout_ms = 600
        [[fault]]
        at_ms = 1000
        duration_ms = 1000
        kind = "partition"
        target = "client:1"
        [[fault]]
        at_ms = 2000
        duration_ms = 2500
        kind = "partition"
        target = "client:4"
        [[fault]]
        at_ms = 4800
        duration_ms = 900
        kind = "partition"
        target = "server"
        [check]
        enable = ["linearizability", "linearizability_search"]
        [liveness]
        heal_within_ms = 1000
    "#;

    fn find<'a>(r: &'a [CheckResult], name: &str) -> &'a CheckResult {
        r.iter().find(|c| c.name == name).expect("check ran")
    }

    #[test]
    fn real_histories_pass_both() {
        let scn = Scenario::parse(SHORT, "short.toml").unwrap_or_else(|e| panic!("{e}"));
        for seed in 1..=6 {
            let out = run_seed(&scn, seed);
            let checks = judge(&scn, &out.events, out.panic.as_deref());
            let z = find(&checks, "linearizability");
            let w = find(&checks, wgl::NAME);
            let replay = format!("seed {seed}: {SHORT}");
            assert_eq!(z.verdict, Verdict::Pass, "{replay}\n{z:#?}");
            assert_eq!(w.verdict, Verdict::Pass, "{replay}\n{w:#?}");
            println!("seed {seed}: {:?}", w.notes);
        }
    }

    #[test]
    fn real_history_passes_both_and_mutants_fail_both() {
        let scn = Scenario::parse(SHORT, "short.toml").unwrap_or_else(|e| panic!("{e}"));
        let out = run_seed(&scn, 5);
        let checks = judge(&scn, &out.events, out.panic.as_deref());
        let z = find(&checks, "linearizability");
        let w = find(&checks, wgl::NAME);
        assert_eq!(z.verdict, Verdict::Pass, "{z:#?}");
        assert_eq!(w.verdict, Verdict::Pass, "{w:#?}");
        assert!(w.notes[0].contains("(1 merged by multis)"), "{w:?}");
        let unknown = out
            .events
            .iter()
            .filter(|e| {
                e.ty == Ty::Info && e.error.as_deref().is_some_and(|x| !x.starts_with(NOT_SENT))
            })
            .count();
        assert!(
            unknown > 0,
            "the scenario should leave some outcomes unknown"
        );
        assert!(
            out.events.iter().any(|e| e.ty == Ty::SessionExpired),
            "the scenario should expire a session"
        );

        let enabled = ["linearizability".to_string(), wgl::NAME.to_string()];
        let both = |ev: &[Event]| {
            let r = check_all(ev, &enabled, 1000);
            (
                find(&r, "linearizability").verdict,
                find(&r, wgl::NAME).verdict,
            )
        };
        let oks = |op: OpName| -> Vec<usize> {
            let ids: Vec<u64> = out
                .events
                .iter()
                .filter(|e| e.ty == Ty::Invoke && e.op == Some(op) && e.client != Some(0))
                .filter_map(|e| e.op_id)
                .collect();
            (0..out.events.len())
                .filter(|&i| {
                    out.events[i].ty == Ty::Ok
                        && out.events[i].op_id.is_some_and(|x| ids.contains(&x))
                })
                .collect()
        };
        // A setData reports a version that skips one.
        let sets = oks(OpName::SetData);
        assert!(sets.len() > 10);
        let mut bad = out.events.clone();
        let i = sets[sets.len() / 2];
        bad[i].version = bad[i].version.map(|v| v + 1);
        assert_eq!(both(&bad), (Verdict::Fail, Verdict::Fail));
        // A create succeeds on a node that exists: turn a NodeExists into ok.
        let exists = (0..out.events.len()).find(|&i| {
            out.events[i].ty == Ty::Fail && out.events[i].error.as_deref() == Some("NodeExists")
        });
        let i = exists.expect("some create found the node");
        let mut bad = out.events.clone();
        bad[i].ty = Ty::Ok;
        bad[i].error = None;
        assert_eq!(both(&bad), (Verdict::Fail, Verdict::Fail));
        // A sequential create gets a number already taken.
        let seqs = oks(OpName::CreateSequential);
        assert!(seqs.len() > 5);
        let mut bad = out.events.clone();
        bad[seqs[3]].path = out.events[seqs[2]].path.clone();
        assert_eq!(both(&bad), (Verdict::Fail, Verdict::Fail));
    }
}
