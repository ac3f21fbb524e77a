//! Fail-over measurements for the report: how long an ensemble took to
//! elect a new leader and to take writes again after a fault took its
//! leader down or cut it off.
//!
//! A fault counts when its kind is `crash`, `power_loss`, `pause`,
//! `isolate` or `partition` and its resolved target includes the server
//! that led when it started: the record's own note (`leader = server:3`,
//! written when a `leader` target resolved) or else the status board's
//! leader in the last sampling round before the fault (highest epoch, then
//! lowest id, as the runner resolves `leader`). A record saying no leader
//! was found does not count. One server (standalone) has no fail-over.
//!
//! For each such fault, from its start:
//! - `election_ms`: until the first board sample showing a server as
//!   `leader`, serving, in an epoch above the old leader's (another server,
//!   or the same one again), before the next such fault starts. Board
//!   samples come every [`crate::probe::BOARD_MS`] (100 ms), so this is
//!   late by up to that much;
//! - `first_write_ms`: until the first successful (`ok`) write — create,
//!   set_data, delete, multi; not close — of a workload client invoked
//!   after the fault started (history time, µs precision);
//! - `unavailable_ms`: the longest stretch without any successful write
//!   completion within [start, start + election_ms + 5 s] (with no
//!   election seen: + first_write_ms + 5 s; with neither: to the final
//!   read-back), clipped to the start of the next such fault and of the
//!   final read-back (when the workloads stop).
//!
//! These are observations, never evidence: no check reads them. They are a
//! pure function of the history and the board samples, so deterministic.

use crate::check::{final_phase_us, pair_ops};
use crate::history::{Event, OpName, Ty};
use crate::probe::BoardSample;
use serde::{Deserialize, Serialize};

/// Fault kinds that take a server down or cut it off.
pub const KINDS: [&str; 5] = ["crash", "power_loss", "pause", "isolate", "partition"];

/// How long after the election the longest write gap is looked for.
pub const GAP_AFTER_MS: u64 = 5_000;

/// One fault of the leader and what followed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failover {
    pub fault_id: u32,
    pub kind: String,
    /// Fault start, simulated ms since the run started (rounded).
    pub at_ms: u64,
    /// The server that led when the fault started.
    pub old_leader: u32,
    /// Its epoch then, from the board (`None`: no board sample).
    pub old_epoch: Option<u64>,
    /// The first server seen leading (and serving) in a higher epoch.
    pub new_leader: Option<u32>,
    pub new_epoch: Option<u64>,
    /// Fault start to the first board sample showing `new_leader`.
    pub election_ms: Option<u64>,
    /// Fault start to the first successful write invoked after it.
    pub first_write_ms: Option<u64>,
    /// Longest stretch without a successful write after the fault start
    /// (see the module doc for the window).
    pub unavailable_ms: Option<u64>,
}

impl Failover {
    /// `crash of leader server:3`.
    pub fn what(&self) -> String {
        format!("{} of leader server:{}", self.kind, self.old_leader)
    }

    /// `server:1 leads epoch 2 after 412 ms; writes resume after 530 ms
    /// (longest write gap 600 ms)`.
    pub fn outcome(&self) -> String {
        let election = match (self.new_leader, self.new_epoch, self.election_ms) {
            (Some(l), Some(e), Some(ms)) => {
                let again = if l == self.old_leader { " again" } else { "" };
                format!("server:{l} leads{again} epoch {e} after {ms} ms")
            }
            // The old leader had no board status before the fault: there
            // are no board samples to time the election with.
            _ => match self.old_epoch {
                Some(e) => format!("no leader seen in an epoch above {e}"),
                None => "election not timed (no status board samples given)".to_string(),
            },
        };
        let writes = match self.first_write_ms {
            Some(ms) => format!("writes resume after {ms} ms"),
            None => "no write invoked after it succeeded".to_string(),
        };
        let gap = match self.unavailable_ms {
            Some(ms) => format!(" (longest write gap {ms} ms)"),
            None => String::new(),
        };
        format!("{election}; {writes}{gap}")
    }

    /// One line of the text verdict.
    pub fn line(&self) -> String {
        format!(
            "failover fault {} ({}): {}",
            self.fault_id,
            self.what(),
            self.outcome()
        )
    }
}

/// Does a recorded target (`server`, `server:2`, `server:1,client:3`,
/// `server:1 / server:2`) name server `id`?
pub fn names_server(target: &str, id: u32) -> bool {
    let me = format!("server:{id}");
    target
        .split([',', ' ', '/'])
        .any(|t| t == me || t == "server" && id == 1)
}

/// The server a record's note says a `leader` target resolved to.
fn leader_in_detail(detail: &str) -> Option<u32> {
    detail
        .split("; ")
        .find_map(|p| p.strip_prefix("leader = server:")?.parse().ok())
}

/// The leader of the last board round before `t_us`: (id, epoch).
fn board_leader_before(board: &[BoardSample], t_us: u64) -> Option<(u32, u64)> {
    let round = board
        .iter()
        .filter(|s| s.t_us < t_us)
        .map(|s| s.t_us)
        .max()?;
    board
        .iter()
        .filter(|s| s.t_us == round && s.role.as_deref() == Some("leader"))
        .map(|s| (s.server, s.epoch))
        .min_by_key(|(id, epoch)| (std::cmp::Reverse(*epoch), *id))
}

/// Server `id`'s epoch in its last board sample with a status before `t_us`.
fn epoch_before(board: &[BoardSample], id: u32, t_us: u64) -> Option<u64> {
    board
        .iter()
        .rev()
        .find(|s| s.server == id && s.t_us < t_us && s.role.is_some())
        .map(|s| s.epoch)
}

fn ms(us: u64) -> u64 {
    (us + 500) / 1000
}

/// Every fault of a leader in `events`, measured (in fault order). Works
/// without board samples too (then the leader comes from the records and
/// nothing about the election is known).
pub fn measure(events: &[Event], board: &[BoardSample]) -> Vec<Failover> {
    if crate::check::cluster_servers(events) < 2 {
        return Vec::new();
    }
    // (fault id, kind, start µs, old leader).
    let mut faults: Vec<(u32, String, u64, u32)> = Vec::new();
    for e in events.iter().filter(|e| e.ty == Ty::FaultStart) {
        let kind = e.fault.clone().unwrap_or_default();
        if !KINDS.contains(&kind.as_str()) {
            continue;
        }
        let target = e.target.as_deref().unwrap_or("");
        let detail = e.detail.as_deref().unwrap_or("");
        let leader = match leader_in_detail(detail) {
            Some(id) => Some(id),
            None if detail.contains("no leader found") => None,
            None => board_leader_before(board, e.t_us).map(|l| l.0),
        };
        if let Some(id) = leader.filter(|id| names_server(target, *id)) {
            faults.push((e.fault_id.unwrap_or(0), kind, e.t_us, id));
        }
    }
    // Successful workload writes: (invoke µs, ok µs), in completion order.
    let (ops, _) = pair_ops(events);
    let mut writes: Vec<(u64, u64)> = ops
        .iter()
        .filter(|o| o.client() != 0 && o.op().is_write() && o.op() != OpName::Close)
        .filter_map(|o| {
            let done = o.done.filter(|d| d.ty == Ty::Ok)?;
            Some((o.invoke_us(), done.t_us))
        })
        .collect();
    writes.sort_by_key(|w| (w.1, w.0));
    let run_end = events.last().map_or(0, |e| e.t_us);
    let work_end = final_phase_us(events).unwrap_or(run_end);

    let mut out = Vec::new();
    for (i, (id, kind, start, old)) in faults.iter().enumerate() {
        let (start, old) = (*start, *old);
        let old_epoch = epoch_before(board, old, start);
        let until = faults.get(i + 1).map_or(u64::MAX, |f| f.2);
        let base = old_epoch.unwrap_or(0);
        let elected = board.iter().find(|s| {
            s.t_us >= start
                && s.t_us < until
                && s.role.as_deref() == Some("leader")
                && s.serving
                && s.epoch > base
        });
        let election_ms = elected.map(|s| ms(s.t_us - start));
        let first_write_ms = writes
            .iter()
            .find(|(inv, _)| *inv > start)
            .map(|(_, ok)| ms(ok - start));
        let horizon = election_ms
            .or(first_write_ms)
            .map_or(work_end, |m| start + (m + GAP_AFTER_MS) * 1000)
            .min(work_end)
            .min(until);
        let unavailable_ms = (horizon > start).then(|| {
            let mut last = start;
            let mut gap = 0;
            for (_, ok) in writes.iter().filter(|w| w.1 > start && w.1 <= horizon) {
                gap = gap.max(ok - last);
                last = *ok;
            }
            ms(gap.max(horizon - last))
        });
        out.push(Failover {
            fault_id: *id,
            kind: kind.clone(),
            at_ms: ms(start),
            old_leader: old,
            old_epoch,
            new_leader: elected.map(|s| s.server),
            new_epoch: elected.map(|s| s.epoch),
            election_ms,
            first_write_ms,
            unavailable_ms,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t_ms: u64, ty: Ty) -> Event {
        Event {
            t_us: t_ms * 1000,
            ty,
            ..Default::default()
        }
    }

    fn write(t_inv: u64, t_ok: u64, id: u64, ok: bool) -> [Event; 2] {
        let mut inv = ev(t_inv, Ty::Invoke);
        inv.client = Some(1);
        inv.op_id = Some(id);
        inv.op = Some(OpName::SetData);
        inv.path = Some("/k".into());
        let mut done = ev(t_ok, if ok { Ty::Ok } else { Ty::Info });
        done.client = Some(1);
        done.op_id = Some(id);
        [inv, done]
    }

    fn b(t_ms: u64, server: u32, role: Option<&str>, epoch: u64) -> BoardSample {
        BoardSample {
            t_us: t_ms * 1000,
            server,
            role: role.map(String::from),
            epoch,
            last_zxid: 0,
            serving: matches!(role, Some("leader" | "follower")),
        }
    }

    fn history(fault_detail: &str, target: &str) -> Vec<Event> {
        let mut phase = ev(0, Ty::Phase);
        phase.detail = Some("cluster servers=3".into());
        let mut start = ev(1000, Ty::FaultStart);
        start.fault = Some("crash".into());
        start.fault_id = Some(1);
        start.target = Some(target.into());
        start.detail = Some(fault_detail.into());
        let mut end = ev(1500, Ty::FaultEnd);
        end.fault_id = Some(1);
        let mut fin = ev(1700, Ty::Phase);
        fin.detail = Some("final".into());
        let mut h = vec![phase];
        h.extend(write(900, 990, 1, true));
        h.push(start);
        // Invoked before the fault, answered after: not "first write".
        let [i2, d2] = write(995, 1400, 2, true);
        let [i3, d3] = write(1100, 1300, 3, false);
        let [i4, d4] = write(1350, 1650, 4, true);
        h.extend([i2, i3, d3, i4, d2, end, d4, fin]);
        h
    }

    fn board() -> Vec<BoardSample> {
        let mut v = Vec::new();
        for t in (0..=2000).step_by(100) {
            let (r1, e1, r3, e3) = match t {
                0..=900 => (Some("follower"), 1, Some("leader"), 1),
                1000..=1300 => (Some("looking"), 1, None, 0),
                _ => (Some("leader"), 2, None, 0),
            };
            v.push(b(t, 1, r1, e1));
            v.push(b(t, 2, Some("follower"), if t >= 1400 { 2 } else { 1 }));
            v.push(b(t, 3, r3, e3));
        }
        v
    }

    #[test]
    fn measures_a_leader_crash() {
        let h = history("leader = server:3; server:3: no unsynced data", "server:3");
        let f = measure(&h, &board());
        assert_eq!(f.len(), 1);
        let f = &f[0];
        assert_eq!((f.fault_id, f.old_leader, f.old_epoch), (1, 3, Some(1)));
        assert_eq!((f.new_leader, f.new_epoch), (Some(1), Some(2)));
        assert_eq!(f.election_ms, Some(400));
        assert_eq!(f.first_write_ms, Some(650));
        // Writes completed at 1400 and 1650 (the final read-back at 1700):
        // the gap from 1000 to 1400.
        assert_eq!(f.unavailable_ms, Some(400));
        assert_eq!(
            f.line(),
            "failover fault 1 (crash of leader server:3): server:1 leads epoch 2 after 400 ms; writes resume after 650 ms (longest write gap 400 ms)"
        );
        // Without board samples: the leader from the record, no election.
        let f = measure(&h, &[]);
        assert_eq!((f[0].old_leader, f[0].election_ms), (3, None));
        assert!(f[0].line().contains("election not timed"), "{f:?}");
    }

    #[test]
    fn only_faults_of_the_leader_count() {
        // A follower's crash.
        let h = history("follower = server:2", "server:2");
        assert!(measure(&h, &board()).is_empty());
        // No leader at the time.
        let h = history("no leader found (...): drew server:3 at random", "server:3");
        assert!(measure(&h, &board()).is_empty());
        // Named by id: the board says server:3 led.
        let h = history("server:3: no unsynced data", "server:3");
        assert_eq!(measure(&h, &board())[0].old_leader, 3);
        // One server: no fail-over.
        let mut h = history("leader = server:3", "server:3");
        h[0].detail = Some("cluster servers=1".into());
        assert!(measure(&h, &board()).is_empty());
    }

    #[test]
    fn targets_name_servers() {
        assert!(names_server("server", 1));
        assert!(!names_server("server", 2));
        assert!(names_server("server:2", 2));
        assert!(names_server("client:1,server:3", 3));
        assert!(names_server("server:1 / server:2", 2));
        assert!(!names_server("server:12", 1));
        assert!(!names_server("client:1", 1));
    }
}
