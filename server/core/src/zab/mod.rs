//! ZAB, ZooKeeper's atomic broadcast, as part of the server state machine.
//!
//! A server in quorum mode is in one of three roles:
//! - **looking** ([`election`]): Fast Leader Election picks the server with
//!   the most recent history, by (currentEpoch, last logged zxid, id);
//! - **leading**: *discovery* — collect FOLLOWERINFO from a quorum, propose
//!   epoch `max(acceptedEpoch) + 1`, make it our acceptedEpoch durably, send
//!   LEADERINFO, collect ACKEPOCH from a quorum (give up if a learner is more
//!   recent than us), make currentEpoch durable; *synchronization* — bring
//!   each learner to our history by DIFF, TRUNC+DIFF or SNAP, then
//!   NEWLEADER; once a quorum (us included, with our own log durable) has
//!   acknowledged NEWLEADER the epoch is *established*: UPTODATE, serve
//!   clients; *broadcast* — give each write the next zxid, send PROPOSAL,
//!   log it, and commit in zxid order once a quorum has it durable;
//! - **following**: FOLLOWERINFO, then acceptedEpoch durable before
//!   ACKEPOCH, apply the sync, currentEpoch (and every synced proposal)
//!   durable before acknowledging NEWLEADER, serve clients after UPTODATE;
//!   log each PROPOSAL and ACK it only once durable; apply on COMMIT.
//!
//! The history a server holds is its log: the applied tree plus the
//! in-flight (logged, not yet applied) transactions. A new leader's whole
//! log becomes committed in its epoch (it is applied when it starts
//! leading). A learner is truncated only of transactions it logged but
//! never applied; if it applied past the common point (a restart replays
//! its whole log) it gets a SNAP instead.
//!
//! Sync choice, for a learner whose log ends at `z` (epoch `e`): DIFF if
//! `z` is in our history; else TRUNC to our last zxid of epoch `e` if we
//! have one — both of us then synced with epoch `e`'s leader, so our logs
//! agree up to there; else SNAP. DIFF and TRUNC need our in-memory history
//! to reach back to the common point.
//!
//! Sessions: the leader alone expires sessions; learners report the
//! sessions their clients touched in every PING reply, forward session
//! creation, and revalidate a client that re-attaches with a known id (the
//! leader then records the learner as the session's owner; a write from a
//! session through a server that does not own it fails with SessionMoved).
//!
//! Liveness: a follower that hears nothing from its leader for syncLimit
//! ticks (initLimit while syncing), and a leader that cannot hear a quorum
//! for syncLimit ticks (or is not established within initLimit ticks), go
//! back to looking; looking closes every client connection.

pub mod election;
pub mod msg;
mod replica;

use crate::server::{InFlight, Origin};
use crate::tree::DataTree;
use election::Election;
use jute::{Request, TxnRecord};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub use msg::{Msg, PeerState, SessionCheck, Vote};

/// Proposals kept in memory for DIFF/TRUNC sync (ZooKeeper keeps 500 and
/// reads older ones from its log files; we SNAP instead).
pub const HISTORY_MAX: usize = 20_000;

/// Which epoch file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochFile {
    Accepted,
    Current,
}

impl EpochFile {
    pub fn file_name(self) -> &'static str {
        match self {
            EpochFile::Accepted => crate::recovery::ACCEPTED_EPOCH,
            EpochFile::Current => crate::recovery::CURRENT_EPOCH,
        }
    }
}

/// The ensemble as this server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnsembleConfig {
    pub my_id: u64,
    /// Voting members (participants), this server included.
    pub voters: BTreeSet<u64>,
    pub init_limit: u32,
    pub sync_limit: u32,
}

/// What a server starts its ensemble life from (read from disk).
#[derive(Debug, Clone, Default)]
pub struct ZabRecovered {
    pub accepted_epoch: u64,
    pub current_epoch: u64,
    /// The last logged transactions (oldest first), for DIFF sync.
    pub tail: Vec<TxnRecord>,
    /// The zxid `tail` starts after (the snapshot's, or 0).
    pub tail_base: i64,
}

pub fn epoch_of(zxid: i64) -> u64 {
    (zxid as u64) >> 32
}

pub fn counter_of(zxid: i64) -> u32 {
    zxid as u64 as u32
}

pub fn make_zxid(epoch: u64, counter: u32) -> i64 {
    ((epoch << 32) | counter as u64) as i64
}

/// A learner's write waiting for its transaction to come back committed.
#[derive(Debug, Clone)]
pub(crate) struct Fwd {
    pub cxid: i32,
    pub origin: Origin,
}

/// A quorum-mode `sync` waiting for the leader's commits.
#[derive(Debug, Clone)]
pub(crate) struct SyncWait {
    pub conn: crate::ConnId,
    pub xid: i32,
    pub req: Request,
    /// Ready once the tree has applied this zxid (None: not yet known).
    pub target: Option<i64>,
}

/// A client re-attaching to a learner, waiting for the leader's REVALIDATE.
#[derive(Debug, Clone)]
pub(crate) struct Reattach {
    pub conn: crate::ConnId,
    pub timeout_ms: i32,
    pub read_only: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum LeaderPhase {
    /// Collecting FOLLOWERINFO from a quorum.
    Discovery,
    /// The new epoch is being written as our acceptedEpoch.
    AwaitAcceptedWrite,
    /// LEADERINFO sent; collecting ACKEPOCH from a quorum.
    AwaitAckEpochs,
    /// Learners are being synced; waiting for a quorum of NEWLEADER acks.
    Syncing,
    /// Serving: broadcast.
    Established,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum LearnerState {
    /// FOLLOWERINFO received.
    Info,
    /// ACKEPOCH received; to be synced once a quorum acked the epoch.
    AckedEpoch,
    /// Sync and NEWLEADER sent; proposals are forwarded to it.
    Syncing,
    /// NEWLEADER acknowledged: its ACKs count.
    Synced,
    /// UPTODATE sent.
    UpToDate,
}

#[derive(Debug, Clone)]
pub(crate) struct Learner {
    pub state: LearnerState,
    pub accepted_epoch: u64,
    /// From FOLLOWERINFO: the learner's last logged zxid (read only by a
    /// simulated bug, ZK-335).
    #[cfg_attr(not(madsim), allow(dead_code))]
    pub info_zxid: i64,
    /// From ACKEPOCH: (currentEpoch, last logged, last applied).
    pub position: Option<(u64, i64, i64)>,
    /// Cumulative: durable on the learner up to here.
    pub acked: i64,
    pub last_heard_ms: i64,
}

impl Learner {
    pub fn forwarding(&self) -> bool {
        self.state >= LearnerState::Syncing
    }

    pub fn counts(&self) -> bool {
        self.state >= LearnerState::Synced
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Leader {
    /// The epoch being established (0 until chosen).
    pub epoch: u64,
    pub phase: LeaderPhase,
    pub started_ms: i64,
    pub learners: BTreeMap<u64, Learner>,
    /// The last zxid of our history when we started leading.
    pub initial_last: i64,
    pub current_written: bool,
    pub commit: i64,
    /// Which server each session's client is attached to.
    pub owners: BTreeMap<i64, u64>,
    /// Learner syncs: (learner, id, zxid to be committed first).
    pub pending_syncs: VecDeque<(u64, u64, i64)>,
    pub last_ping_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FollowerPhase {
    /// FOLLOWERINFO sent.
    Discovery,
    /// The leader's epoch is being written as our acceptedEpoch.
    AwaitAcceptedWrite,
    /// ACKEPOCH sent; receiving the sync.
    Syncing,
    /// NEWLEADER received; currentEpoch (and the synced log) being made
    /// durable before we acknowledge it.
    AwaitCurrentWrite,
    /// Broadcast; serving clients once `up_to_date`.
    Broadcast { up_to_date: bool },
}

#[derive(Debug, Clone)]
pub(crate) struct Follower {
    pub leader: u64,
    pub epoch: u64,
    pub phase: FollowerPhase,
    pub commit_seen: i64,
    pub last_heard_ms: i64,
    /// When FOLLOWERINFO was last sent (re-sent while in discovery).
    pub info_sent_ms: i64,
}

#[derive(Debug, Clone)]
pub(crate) enum Role {
    Looking,
    Leading(Box<Leader>),
    Following(Box<Follower>),
}

/// The quorum-mode half of a server.
///
/// Invariants:
/// - `history` holds logged transactions in strictly increasing zxid
///   order, all after `history_base`, ending at `logged`;
/// - `durable <= logged`; every in-flight transaction is in `history`;
/// - `current_epoch <= accepted_epoch`;
/// - a leader's learners never include itself; an established leader's
///   epoch equals its currentEpoch.
#[derive(Debug)]
pub struct Zab {
    pub(crate) cfg: EnsembleConfig,
    pub(crate) accepted_epoch: u64,
    pub(crate) current_epoch: u64,
    pub(crate) role: Role,
    pub(crate) election: Election,
    pub(crate) history: VecDeque<TxnRecord>,
    pub(crate) history_base: i64,
    /// Last zxid handed to the disk.
    pub(crate) logged: i64,
    /// Last zxid the disk reported durable.
    pub(crate) durable: i64,
    /// The highest zxid acknowledged as durable (see `Server::acked_zxid`).
    pub(crate) acked: i64,
    /// What was logged when the pending epoch write was asked for.
    pub(crate) epoch_write_covers: i64,
    /// Sessions touched by our clients since the last PING reply.
    pub(crate) touched: BTreeSet<i64>,
    pub(crate) pending_fwd: BTreeMap<i64, VecDeque<Fwd>>,
    pub(crate) syncs: BTreeMap<u64, SyncWait>,
    pub(crate) revalidating: BTreeMap<i64, Vec<Reattach>>,
    /// ZK-4925 (simulation only): zxids this server logged during a sync
    /// and, by the bug, left out of the committed log it sends as leader.
    #[cfg(madsim)]
    pub(crate) sync_only: BTreeSet<i64>,
    /// ZK-4646 (simulation only): proposals of a sync not yet handed to
    /// the log writer.
    #[cfg(madsim)]
    pub(crate) held_for_log: Vec<TxnRecord>,
    /// Times we went back to looking (for tests and the 4lw).
    pub(crate) elections: u64,
}

impl Zab {
    pub(crate) fn new(cfg: EnsembleConfig, rec: ZabRecovered, tree: &DataTree) -> Zab {
        let mut history: VecDeque<TxnRecord> = rec.tail.into_iter().collect();
        let mut history_base = rec.tail_base;
        while history.len() > HISTORY_MAX {
            history_base = history.pop_front().expect("non-empty").header.zxid;
        }
        if history.back().map_or(history_base, |r| r.header.zxid) != tree.last_zxid() {
            // Not the log the tree was rebuilt from: DIFF from nothing.
            history.clear();
            history_base = tree.last_zxid();
        }
        let election = Election::new(cfg.my_id, cfg.voters.clone());
        Zab {
            accepted_epoch: rec.accepted_epoch.max(rec.current_epoch),
            current_epoch: rec.current_epoch,
            role: Role::Looking,
            election,
            history,
            history_base,
            logged: tree.last_zxid(),
            durable: tree.last_zxid(),
            acked: 0,
            epoch_write_covers: 0,
            touched: BTreeSet::new(),
            pending_fwd: BTreeMap::new(),
            syncs: BTreeMap::new(),
            revalidating: BTreeMap::new(),
            #[cfg(madsim)]
            sync_only: BTreeSet::new(),
            #[cfg(madsim)]
            held_for_log: Vec::new(),
            elections: 0,
            cfg,
        }
    }

    pub fn is_established_leader(&self) -> bool {
        matches!(&self.role, Role::Leading(l) if l.phase == LeaderPhase::Established)
    }

    pub(crate) fn has_forwarded(&self, pred: impl Fn(&Origin) -> bool) -> bool {
        self.pending_fwd.values().flatten().any(|f| pred(&f.origin))
    }

    /// Is `z` a zxid of our log (or the point it starts after)?
    pub(crate) fn in_history(&self, z: i64) -> bool {
        z == self.history_base
            || self
                .history
                .binary_search_by_key(&z, |r| r.header.zxid)
                .is_ok()
    }

    /// ZK-4925: whether `zxid` is missing from the committed log (only
    /// ever true with that bug switched on).
    pub(crate) fn not_in_committed_log(&self, zxid: i64) -> bool {
        #[cfg(madsim)]
        return self.sync_only.contains(&zxid);
        #[cfg(not(madsim))]
        {
            let _ = zxid;
            false
        }
    }

    pub(crate) fn push_history(&mut self, r: &TxnRecord) {
        self.history.push_back(r.clone());
        self.logged = r.header.zxid;
        while self.history.len() > HISTORY_MAX {
            let old = self.history.pop_front().expect("non-empty");
            self.history_base = old.header.zxid;
        }
        #[cfg(madsim)]
        if !self.sync_only.is_empty() {
            let base = self.history_base;
            self.sync_only.retain(|z| *z > base);
        }
    }

    pub(crate) fn validate(&self, tree: &DataTree, inflight: &VecDeque<InFlight>) {
        self.election.validate();
        let mut prev = self.history_base;
        for r in &self.history {
            assert!(r.header.zxid > prev, "history out of order");
            prev = r.header.zxid;
        }
        assert_eq!(prev, self.logged, "history does not end at logged");
        assert!(self.durable <= self.logged, "durable past logged");
        assert!(tree.last_zxid() <= self.logged, "applied past logged");
        assert!(self.current_epoch <= self.accepted_epoch, "epochs");
        for f in inflight {
            let z = f.record.header.zxid;
            assert!(
                z > self.history_base && self.in_history(z),
                "in-flight {z:#x} not in history"
            );
        }
        if let Role::Leading(l) = &self.role {
            assert!(!l.learners.contains_key(&self.cfg.my_id));
            if l.phase == LeaderPhase::Established {
                assert_eq!(l.epoch, self.current_epoch, "established epoch");
                assert!(l.commit <= self.logged);
            }
        }
    }
}
