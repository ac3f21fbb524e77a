//! Independent checkers over a recorded history.
//!
//! They model ZooKeeper from its documented guarantees only: none of them
//! uses `zkcore` (an implementation cannot be its own oracle); `jute` is not
//! needed either, the history is plain data.
//!
//! - [`linear`]: write linearizability using reply zxids (replay in zxid
//!   order against a model of each znode, every reply must be what the model
//!   predicts; real-time order of writes respected; reads see exactly the
//!   writes up to their reply zxid; indeterminate operations may or may not
//!   have happened).
//! - [`session`]: per-session order (FIFO replies, monotonic zxids).
//! - [`durability`]: acknowledged writes survive crashes; the final state
//!   read back at the end agrees with the model.
//! - [`liveness`]: after the last fault heals, every client completes an
//!   operation within the bound.
//! - [`watch`]: one-shot watches fire at most once, events arrive in zxid
//!   order and before any reply showing the change, none is lost while the
//!   session lives (SetWatches replay on reconnect), persistent and
//!   recursive watches see every change ([`changes`]: the changes the
//!   history proves, shared by the next two).
//! - [`ephemeral`]: an ephemeral exists iff its owner session is live.
//! - [`lock`]: the lock recipe's holders never overlap (zxid fencing).
//! - [`replica`] (`replicas`): at the end every running server has the same
//!   last zxid (within the liveness bound) and the same tree digest.
//! - [`wgl`] (`linearizability_search`, opt-in): write linearizability by
//!   a bounded WGL search per znode, without zxids; cross-checks [`linear`].
//!
//! Each returns a [`CheckResult`]; a check that cannot decide (the model's
//! search exceeded its bound) fails: "unknown" is never a pass.

pub mod changes;
pub mod durability;
pub mod ephemeral;
pub mod linear;
pub mod liveness;
pub mod lock;
pub mod replica;
pub mod session;
pub mod watch;
pub mod wgl;
pub mod zab;

use crate::history::{Event, OpName, Ty, NOT_SENT, TXN_ERRORS};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub verdict: Verdict,
    /// What went wrong, one line each (bounded).
    pub violations: Vec<String>,
    /// Facts worth knowing that are not failures (unknown ops, coverage).
    pub notes: Vec<String>,
    /// Indices into the history (0-based; `history.jsonl` line - 1) of the
    /// few events that prove the first violation. Empty when the check
    /// passed or does not say (optional: the report shows them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub witness: Vec<usize>,
}

/// At most this many violations are listed per check.
pub const VIOLATIONS_MAX: usize = 20;

impl CheckResult {
    pub fn new(name: &str) -> CheckResult {
        CheckResult {
            name: name.into(),
            verdict: Verdict::Pass,
            violations: Vec::new(),
            notes: Vec::new(),
            witness: Vec::new(),
        }
    }

    pub fn skipped(name: &str, why: &str) -> CheckResult {
        let mut r = CheckResult::new(name);
        r.verdict = Verdict::Skipped;
        r.notes.push(why.into());
        r
    }

    pub fn violation(&mut self, msg: String) {
        self.verdict = Verdict::Fail;
        if self.violations.len() < VIOLATIONS_MAX {
            self.violations.push(msg);
        } else if self.violations.len() == VIOLATIONS_MAX {
            self.violations
                .push("... (more violations not listed)".into());
        }
    }

    /// A violation proven by these history events (the first one's
    /// witness is kept).
    pub fn violation_with(&mut self, msg: String, witness: impl IntoIterator<Item = usize>) {
        if self.violations.is_empty() {
            self.witness = witness.into_iter().collect();
            self.witness.sort_unstable();
            self.witness.dedup();
        }
        self.violation(msg);
    }
}

/// One operation: its invoke event and its completion, if any.
#[derive(Debug, Clone, Copy)]
pub struct OpRec<'a> {
    pub inv: &'a Event,
    pub done: Option<&'a Event>,
    /// Where `inv` and `done` are in the history (for witnesses).
    pub inv_at: usize,
    pub done_at: Option<usize>,
}

impl<'a> OpRec<'a> {
    pub fn id(&self) -> u64 {
        self.inv.op_id.unwrap_or(0)
    }
    /// History indices of this operation's events.
    pub fn at(&self) -> impl Iterator<Item = usize> {
        std::iter::once(self.inv_at).chain(self.done_at)
    }
    pub fn op(&self) -> OpName {
        self.inv.op.unwrap_or(OpName::Sync)
    }
    pub fn session(&self) -> i64 {
        self.done
            .and_then(|d| d.session)
            .or(self.inv.session)
            .unwrap_or(0)
    }
    pub fn client(&self) -> u32 {
        self.inv.client.unwrap_or(0)
    }
    pub fn path(&self) -> &str {
        self.inv.path.as_deref().unwrap_or("")
    }
    pub fn invoke_us(&self) -> u64 {
        self.inv.t_us
    }
    pub fn complete_us(&self) -> Option<u64> {
        self.done.map(|d| d.t_us)
    }
    /// Ok or Fail: the server answered.
    pub fn is_determinate(&self) -> bool {
        self.done.is_some_and(Event::is_determinate)
    }
    /// Info or never completed: may or may not have happened.
    pub fn is_unknown(&self) -> bool {
        !self.is_determinate() && !self.never_sent()
    }
    /// The client never sent it: it did not happen.
    pub fn never_sent(&self) -> bool {
        self.done.is_some_and(|d| {
            d.ty == Ty::Info && d.error.as_deref().is_some_and(|e| e.starts_with(NOT_SENT))
        })
    }
    pub fn zxid(&self) -> Option<i64> {
        self.done
            .filter(|d| d.is_determinate())
            .and_then(|d| d.zxid)
    }
    pub fn error(&self) -> Option<&str> {
        self.done
            .filter(|d| d.ty == Ty::Fail)
            .and_then(|d| d.error.as_deref())
    }
    /// A determinate write that became a transaction (success, or an error
    /// transaction such as BadVersion): its zxid is its own.
    pub fn is_txn(&self) -> bool {
        if !self.op().is_write() || !self.is_determinate() {
            return false;
        }
        match self.error() {
            None => true,
            Some(code) => TXN_ERRORS.contains(&code),
        }
    }
    /// A write the server answered without executing (e.g. SessionExpired).
    pub fn is_rejected_write(&self) -> bool {
        self.op().is_write() && self.is_determinate() && !self.is_txn()
    }
    pub fn describe(&self) -> String {
        let mut s = format!(
            "op {} client {} session 0x{:x} {:?} {}",
            self.id(),
            self.client(),
            self.session() as u64,
            self.op(),
            self.path()
        );
        if let Some(v) = &self.inv.value {
            s.push_str(&format!(" value={v:?}"));
        }
        if let Some(v) = self.inv.version {
            s.push_str(&format!(" version={v}"));
        }
        s.push_str(&format!(" [{:.3}ms..", self.invoke_us() as f64 / 1000.0));
        match self.done {
            Some(d) => {
                s.push_str(&format!("{:.3}ms] -> {:?}", d.t_ms(), d.ty));
                if let Some(z) = d.zxid {
                    s.push_str(&format!(" zxid={z}"));
                }
                if let Some(e) = &d.error {
                    s.push_str(&format!(" {e}"));
                }
                if let Some(v) = &d.value {
                    s.push_str(&format!(" value={v:?}"));
                }
                if let Some(v) = d.version {
                    s.push_str(&format!(" version={v}"));
                }
                if let Some(x) = d.exists {
                    s.push_str(&format!(" exists={x}"));
                }
                if let Some(p) = &d.path {
                    if Some(p) != self.inv.path.as_ref() {
                        s.push_str(&format!(" path={p}"));
                    }
                }
                if let Some(c) = &d.children {
                    s.push_str(&format!(" children={c:?}"));
                }
            }
            None => s.push_str("never completed]"),
        }
        s
    }
}

/// Pair invokes with completions. Returns the operations (in invoke order)
/// and the well-formedness problems found.
pub fn pair_ops(events: &[Event]) -> (Vec<OpRec<'_>>, Vec<String>) {
    let mut problems = Vec::new();
    let mut by_id: BTreeMap<u64, OpRec<'_>> = BTreeMap::new();
    let mut last_t = 0u64;
    for (i, e) in events.iter().enumerate() {
        if e.t_us < last_t {
            problems.push(format!("event {} goes back in time", i + 1));
        }
        last_t = last_t.max(e.t_us);
        match e.ty {
            Ty::Invoke => {
                let Some(id) = e.op_id else {
                    problems.push(format!("event {}: invoke without op_id", i + 1));
                    continue;
                };
                if e.op.is_none() {
                    problems.push(format!("event {}: invoke without op", i + 1));
                    continue;
                }
                if by_id
                    .insert(
                        id,
                        OpRec {
                            inv: e,
                            done: None,
                            inv_at: i,
                            done_at: None,
                        },
                    )
                    .is_some()
                {
                    problems.push(format!("op {id} invoked twice"));
                }
            }
            Ty::Ok | Ty::Fail | Ty::Info => {
                let id = e.op_id.unwrap_or(0);
                match by_id.get_mut(&id) {
                    None => problems.push(format!("op {id}: completion without invoke")),
                    Some(r) if r.done.is_some() => {
                        problems.push(format!("op {id}: completed twice"))
                    }
                    Some(r) => {
                        if e.is_determinate() && e.zxid.is_none() {
                            problems.push(format!("op {id}: {:?} without zxid", e.ty));
                        }
                        r.done = Some(e);
                        r.done_at = Some(i);
                    }
                }
            }
            _ => {}
        }
    }
    let mut ops: Vec<OpRec<'_>> = by_id.into_values().collect();
    ops.sort_by_key(|o| (o.invoke_us(), o.id()));
    (ops, problems)
}

/// Time the final read-back started (the `phase` event named "final").
pub fn final_phase_us(events: &[Event]) -> Option<u64> {
    events
        .iter()
        .find(|e| e.ty == Ty::Phase && e.detail.as_deref() == Some("final"))
        .map(|e| e.t_us)
}

/// How many servers the run had, from its `cluster servers=N` phase
/// (1 when the history does not say: hand-written and older histories).
pub fn cluster_servers(events: &[Event]) -> u32 {
    events
        .iter()
        .filter(|e| e.ty == Ty::Phase)
        .find_map(|e| {
            e.detail
                .as_deref()?
                .strip_prefix("cluster servers=")?
                .parse()
                .ok()
        })
        .unwrap_or(1)
}

/// Run every enabled check. `heal_within_ms` is the liveness bound.
pub fn check_all(events: &[Event], enabled: &[String], heal_within_ms: u64) -> Vec<CheckResult> {
    let on = |n: &str| enabled.iter().any(|e| e == n);
    let (ops, problems) = pair_ops(events);
    let mut out = Vec::new();
    let mut wf = CheckResult::new("well_formed");
    for p in problems {
        wf.violation(p);
    }
    out.push(wf);
    let model = linear::Model::run(events, &ops);
    out.push(if on("linearizability") {
        linear::check(&ops, &model)
    } else {
        CheckResult::skipped("linearizability", "not enabled")
    });
    out.push(if on("session_order") {
        session::check(&ops)
    } else {
        CheckResult::skipped("session_order", "not enabled")
    });
    out.push(if on("durability") {
        durability::check(events, &ops, &model)
    } else {
        CheckResult::skipped("durability", "not enabled")
    });
    out.push(if on("liveness") {
        liveness::check(events, &ops, heal_within_ms)
    } else {
        CheckResult::skipped("liveness", "not enabled")
    });
    // Watches, ephemerals, the lock recipe: over the changes the history proves.
    let changes = changes::Changes::build(events, &ops);
    out.push(if on(watch::NAME) {
        watch::check(events, &ops, &changes)
    } else {
        CheckResult::skipped(watch::NAME, "not enabled")
    });
    out.push(if on(ephemeral::NAME) {
        ephemeral::check(&ops, &changes)
    } else {
        CheckResult::skipped(ephemeral::NAME, "not enabled")
    });
    out.push(if on(lock::NAME) {
        lock::check(&ops, &changes)
    } else {
        CheckResult::skipped(lock::NAME, "not enabled")
    });
    out.push(if on(replica::NAME) {
        replica::check(events)
    } else {
        CheckResult::skipped(replica::NAME, "not enabled")
    });
    out.push(if on(zab::NAME) {
        zab::check(events)
    } else {
        CheckResult::skipped(zab::NAME, "not enabled")
    });
    out.push(if on(wgl::NAME) {
        wgl::check(events, &ops)
    } else {
        CheckResult::skipped(wgl::NAME, "not enabled (opt-in: exponential search)")
    });
    out
}

/// Shared fixtures for the checkers' tests: hand-written histories.
#[cfg(test)]
pub(crate) mod fixtures {
    use crate::history::{from_jsonl, Event};

    /// Build a history from compact lines: `t type client session op_id op path key=value...`
    /// e.g. `10 invoke 1 0x1 1 set_data /k value=a version=-1`.
    pub fn h(text: &str) -> Vec<Event> {
        let mut jsonl = String::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let mut parts = line.split_whitespace();
            let t: f64 = parts.next().unwrap().parse().unwrap();
            let ty = parts.next().unwrap();
            let mut obj = serde_json::json!({"t_ms": t, "type": ty});
            let m = obj.as_object_mut().unwrap();
            if matches!(ty, "invoke" | "ok" | "fail" | "info") {
                m.insert(
                    "client".into(),
                    parts.next().unwrap().parse::<u32>().unwrap().into(),
                );
                m.insert("session".into(), parts.next().unwrap().into());
                m.insert(
                    "op_id".into(),
                    parts.next().unwrap().parse::<u64>().unwrap().into(),
                );
                if ty == "invoke" {
                    m.insert("op".into(), parts.next().unwrap().into());
                    m.insert("path".into(), parts.next().unwrap().into());
                }
            }
            for kv in parts {
                let (k, v) = kv.split_once('=').unwrap();
                let val: serde_json::Value = match k {
                    "version" | "zxid" | "mzxid" | "client" | "fault_id" => {
                        v.parse::<i64>().unwrap().into()
                    }
                    "exists" => (v == "true").into(),
                    "children" => v
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(|s| serde_json::Value::from(s.to_string()))
                        .collect::<Vec<_>>()
                        .into(),
                    _ => v.into(),
                };
                m.insert(k.into(), val);
            }
            jsonl.push_str(&obj.to_string());
            jsonl.push('\n');
        }
        from_jsonl(&jsonl).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::h;
    use super::*;

    #[test]
    fn pairing_finds_malformed_histories() {
        let ev = h("
            1 invoke 1 0x1 1 get_data /k
            2 ok 1 0x1 1 zxid=1 value=a version=0
            3 ok 1 0x1 1 zxid=1 value=a version=0
            4 ok 1 0x1 9 zxid=1
        ");
        let (ops, problems) = pair_ops(&ev);
        assert_eq!(ops.len(), 1);
        assert_eq!(problems.len(), 2, "{problems:?}");
        let r = check_all(&ev, &[], 1000);
        assert_eq!(r[0].verdict, Verdict::Fail);
    }
}
