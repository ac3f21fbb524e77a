//! Coverage marks on rare branches.
//!
//! A mark is a named counter bumped when the core takes a branch that is
//! rare in normal operation and easy to leave untested: a TRUNC or SNAP
//! sync, a new epoch that starts with proposals nobody saw committed, a
//! session closed while a learner is being synchronized, a multi rolled
//! back, a torn log tail at recovery. The simulator collects them per run
//! and a sweep reports which marks it hit; CI fails when a sweep over every
//! scenario leaves a mark that should be reachable unhit (see
//! `sim/ARCHITECTURE.md`).
//!
//! Counters are per OS thread: the simulator runs one seed (every server of
//! it) on one thread, so [`take`] at the start and end of a run gives that
//! run's hits. In the real build [`hit`] does nothing.

/// A rare branch of the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mark {
    /// A leader synchronized a learner by DIFF with at least one proposal.
    SyncDiff,
    /// A leader truncated a learner's log (TRUNC).
    SyncTrunc,
    /// A leader sent a learner a whole snapshot (SNAP).
    SyncSnap,
    /// A learner installed a snapshot received by SNAP.
    SnapInstalled,
    /// A new leader's initial history holds proposals it had logged but not
    /// seen committed: the new epoch commits them.
    NewEpochWithUncommitted,
    /// A learner applied a closeSession while still being synchronized
    /// (the session expired, or was closed, during its sync).
    SessionClosedDuringSync,
    /// A multi with a failing sub-operation: every sub-operation rolled
    /// back into an error transaction.
    MultiRollback,
    /// Recovery found a torn or corrupt tail in the transaction log.
    TornLogTail,
    /// A leader stepped down: no quorum within syncLimit (or initLimit).
    LeaderStepDown,
    /// A follower saw a gap in the proposals and went back to election.
    FollowerGap,
    /// A write through a connection whose session moved got SessionMoved.
    SessionMoved,
    /// A re-attach got no answer because the leader could not vouch for
    /// the session (its close in flight, or no quorum heard lately).
    ReattachUnsure,
}

impl Mark {
    pub const ALL: [Mark; 12] = [
        Mark::SyncDiff,
        Mark::SyncTrunc,
        Mark::SyncSnap,
        Mark::SnapInstalled,
        Mark::NewEpochWithUncommitted,
        Mark::SessionClosedDuringSync,
        Mark::MultiRollback,
        Mark::TornLogTail,
        Mark::LeaderStepDown,
        Mark::FollowerGap,
        Mark::SessionMoved,
        Mark::ReattachUnsure,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mark::SyncDiff => "sync_diff",
            Mark::SyncTrunc => "sync_trunc",
            Mark::SyncSnap => "sync_snap",
            Mark::SnapInstalled => "snap_installed",
            Mark::NewEpochWithUncommitted => "new_epoch_with_uncommitted",
            Mark::SessionClosedDuringSync => "session_closed_during_sync",
            Mark::MultiRollback => "multi_rollback",
            Mark::TornLogTail => "torn_log_tail",
            Mark::LeaderStepDown => "leader_step_down",
            Mark::FollowerGap => "follower_gap",
            Mark::SessionMoved => "session_moved",
            Mark::ReattachUnsure => "reattach_unsure",
        }
    }

    pub fn from_name(name: &str) -> Option<Mark> {
        Mark::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether a sweep of every scenario must hit this mark (CI fails
    /// otherwise). A gap in the proposals needs a frame lost inside a live
    /// connection (one replaced while frames were in flight): it happens
    /// in some seeds of sync-power-loss, not reliably in a short sweep. An
    /// unsure re-attach needs a leader paused right after it began closing
    /// the session (swarm, 3 servers, seed 182): reported, not required.
    pub fn required(self) -> bool {
        !matches!(self, Mark::FollowerGap | Mark::ReattachUnsure)
    }
}

#[cfg(madsim)]
thread_local! {
    static HITS: std::cell::RefCell<[u64; Mark::ALL.len()]> =
        const { std::cell::RefCell::new([0; Mark::ALL.len()]) };
}

/// The core took the branch `m`.
#[inline]
pub fn hit(m: Mark) {
    #[cfg(madsim)]
    HITS.with(|h| h.borrow_mut()[m as usize] += 1);
    #[cfg(not(madsim))]
    let _ = m;
}

/// This thread's hits since the last `take`, by mark; resets them.
pub fn take() -> Vec<(Mark, u64)> {
    #[cfg(madsim)]
    let counts = HITS.with(|h| std::mem::take(&mut *h.borrow_mut()));
    #[cfg(not(madsim))]
    let counts = [0u64; Mark::ALL.len()];
    Mark::ALL.into_iter().zip(counts).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        for (i, m) in Mark::ALL.into_iter().enumerate() {
            assert_eq!(m as usize, i, "ALL is in declaration order");
            assert_eq!(Mark::from_name(m.name()), Some(m));
        }
    }

    #[cfg(madsim)]
    #[test]
    fn take_counts_and_resets() {
        let _ = take();
        hit(Mark::SyncTrunc);
        hit(Mark::SyncTrunc);
        hit(Mark::TornLogTail);
        let got: Vec<(Mark, u64)> = take().into_iter().filter(|(_, n)| *n > 0).collect();
        assert_eq!(got, vec![(Mark::SyncTrunc, 2), (Mark::TornLogTail, 1)]);
        assert!(take().iter().all(|(_, n)| *n == 0));
    }
}
