//! Simulation-only fault switches; absent from the real build.
//!
//! Two kinds of deliberate bug live here:
//!
//! - the testbed's self-tests (`sim --sabotage drop-watch-event`): a
//!   generic break, to prove a checker can fail at all;
//! - [`Bug`]: known ZooKeeper bugs, each reintroduced with the mechanism of
//!   the original (see `../shared/reference/zab-bugs.md` and the comment on
//!   each variant), switched on per scenario (`[bugs] enable = ["ZK-335"]`)
//!   to show that the simulator finds them from random seeds.
//!
//! The module exists only under `cfg(madsim)`, so a real server cannot
//! carry one: the field in [`crate::server::ServerConfig`] and every use of
//! it are gated the same way. With every switch off (the default) the
//! server behaves exactly as the real build.

use std::fmt;

/// Deliberate bugs, all off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bugs {
    /// Drop the N-th watch notification (1-based, counted since the server
    /// started, SetWatches replays included) instead of sending it.
    pub drop_watch_event: Option<u64>,
    /// Reintroduced ZooKeeper bugs that are on.
    pub on: Vec<Bug>,
}

impl Bugs {
    pub fn has(&self, b: Bug) -> bool {
        self.on.contains(&b)
    }
}

/// A known ZooKeeper bug, by JIRA number. Each variant says what the
/// original did and how the switch does the same thing in this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bug {
    /// ZOOKEEPER-335 (discovery). Before acceptedEpoch existed, a new
    /// leader derived its epoch from the zxid of its last *logged*
    /// transaction. After cascading leader crashes with no proposal in
    /// between, the epoch a failed leader had chosen (and maybe used for a
    /// proposal only it logged) was chosen again by the next one: two
    /// leaders of one epoch, and one zxid naming two transactions.
    /// Switch: the leader picks max(epoch of every last logged zxid) + 1
    /// instead of max(acceptedEpoch) + 1, and followers hold a LEADERINFO
    /// only to the epoch of their last logged zxid.
    Zk335,
    /// ZOOKEEPER-2845 (election/sync). A server kept its in-memory database
    /// across leader election. An old leader that had applied transactions
    /// the others never got was truncated on disk when it rejoined, but the
    /// transactions stayed in memory: a znode existed only on that server.
    /// Switch: the leader chooses TRUNC from the learner's last *logged*
    /// zxid alone (ignoring that it applied past the common point, after a
    /// restart replayed its whole log), and the learner truncates its log
    /// and keeps its tree.
    Zk2845,
    /// ZOOKEEPER-5010 (sync, DIFF). A follower that had logged a proposal
    /// the new leader never got (an ephemeral create, in the report) was
    /// synchronized by DIFF instead of TRUNC; the stale proposal stayed in
    /// its log and was applied: permanent divergence.
    /// Switch: where TRUNC is due, the leader sends DIFF from the common
    /// point; the learner keeps its tail and applies it with the commits.
    Zk5010,
    /// ZOOKEEPER-4925 (sync; a 3.9.3 regression). A learner applied the
    /// transactions it received during synchronization without adding them
    /// to its in-memory committed log. Once it led, the DIFFs it built from
    /// that log had a hole, which the followers took as complete.
    /// Switch: proposals received while syncing are logged and applied but
    /// left out of the history this server later sends as a leader.
    Zk4925,
    /// ZOOKEEPER-2355 (broadcast/session). A follower that failed while
    /// reading a closeSession proposal got it again through the sync on
    /// rejoin, where it was applied without killing the session's
    /// ephemerals: they were never deleted on that follower.
    /// Switch: a closeSession applied while a learner is still being
    /// synchronized (before UPTODATE) ends the session but leaves its
    /// ephemeral nodes.
    Zk2355,
    /// ZOOKEEPER-4394 (sync). A COMMIT arriving after the follower's
    /// NEWLEADER ACK for a proposal already drained from its pending queue
    /// hit a NullPointerException: the follower crashed (and crashed again
    /// on every rejoin).
    /// Switch: a learner between its NEWLEADER ACK and UPTODATE stops with
    /// an internal error on a COMMIT for a transaction it already applied.
    Zk4394,
    /// ZOOKEEPER-3145 / ZOOKEEPER-3144 (persistence). Snapshots are fuzzy:
    /// ZooKeeper serializes the tree while transactions keep being applied
    /// and stamps the file with the zxid from the start. On restart the
    /// transactions after that zxid are replayed; a replayed create (or
    /// closeSession) whose node was already in the snapshot did not update
    /// the parent's cversion/pzxid, which stayed as serialized: stale pzxid,
    /// inconsistent replicas, missed child watches.
    /// Switch: a disk snapshot is stamped with the zxid of a few
    /// transactions earlier and holds the parents as they were then (the
    /// serializer reached them first) and everything else as of the end.
    Zk3145,
    /// ZOOKEEPER-3911 (sync, DIFF). A follower acknowledged NEWLEADER
    /// before the proposals of its DIFF were persisted (they sat in a
    /// queue), and the leader started serving on that quorum. When the
    /// quorum's members crashed before the followers' logs caught up,
    /// committed writes were lost; clients saw data go back.
    /// Switch: a learner acknowledges NEWLEADER as soon as it arrives,
    /// claiming its whole log durable, and writes currentEpoch after.
    Zk3911,
    /// ZOOKEEPER-4643 (sync). The follower wrote its currentEpoch file
    /// before the history it had just been synchronized with was on disk.
    /// A crash in between left it looking up to date in the new epoch with
    /// transactions missing, which a later election could turn into lost
    /// committed transactions.
    /// Switch: the disk writes an epoch file (and reports it written, which
    /// the learner takes as "everything logged before it is durable") ahead
    /// of the log appends queued before it, which reach the disk only with
    /// the rest of the batch, after the disk's fsync latency.
    Zk4643,
    /// ZOOKEEPER-1732 (election; the catalogue's ZOOKEEPER-1818 row). A
    /// LOOKING server only took notifications from FOLLOWING/LEADING
    /// servers into account when their election epoch matched its own
    /// logical clock. A server that restarted (its clock back at the
    /// start) while the ensemble had been through more elections never
    /// joined it: it stayed LOOKING, and the ensemble could lose its
    /// quorum with one more failure.
    /// Switch: exactly that comparison in the latecomer's election.
    Zk1732,
    /// ZOOKEEPER-2247 (broadcast/persistence). When the leader's
    /// transaction log write failed (a disk error), the error was not
    /// handled: the request processor thread died while the server kept
    /// running as leader, pinging its followers. Nothing was committed any
    /// more and no new leader was elected: the ensemble was unavailable.
    /// Switch: the disk task logs a failed batch and drops it, and the
    /// server carries on, instead of stopping on the error.
    Zk2247,
    /// ZOOKEEPER-4646 (sync; what remained of ZOOKEEPER-3911 after its
    /// fix). The follower wrote currentEpoch and acknowledged NEWLEADER
    /// while the proposals of its sync were still queued for the
    /// SyncRequestProcessor thread: the ACK claimed a history that was not
    /// on disk yet, and a crash then lost committed transactions.
    /// Switch: proposals received during sync are held back from the log
    /// writer and handed to it only after the NEWLEADER ACK (which, like
    /// the original, does wait for currentEpoch).
    Zk4646,
}

impl Bug {
    pub const ALL: [Bug; 12] = [
        Bug::Zk335,
        Bug::Zk2845,
        Bug::Zk5010,
        Bug::Zk4925,
        Bug::Zk2355,
        Bug::Zk4394,
        Bug::Zk3145,
        Bug::Zk3911,
        Bug::Zk4643,
        Bug::Zk1732,
        Bug::Zk2247,
        Bug::Zk4646,
    ];

    /// `ZK-335`: how scenarios and the CLI name it.
    pub fn id(self) -> &'static str {
        match self {
            Bug::Zk335 => "ZK-335",
            Bug::Zk2845 => "ZK-2845",
            Bug::Zk5010 => "ZK-5010",
            Bug::Zk4925 => "ZK-4925",
            Bug::Zk2355 => "ZK-2355",
            Bug::Zk4394 => "ZK-4394",
            Bug::Zk3145 => "ZK-3145",
            Bug::Zk3911 => "ZK-3911",
            Bug::Zk4643 => "ZK-4643",
            Bug::Zk1732 => "ZK-1732",
            Bug::Zk2247 => "ZK-2247",
            Bug::Zk4646 => "ZK-4646",
        }
    }

    /// The bug named `id` (`ZK-335` or `ZOOKEEPER-335`).
    pub fn from_id(id: &str) -> Option<Bug> {
        let n = id
            .strip_prefix("ZOOKEEPER-")
            .or_else(|| id.strip_prefix("ZK-"))?;
        Bug::ALL
            .into_iter()
            .find(|b| b.id().strip_prefix("ZK-") == Some(n))
    }

    /// One line: the mechanism and the symptom.
    pub fn summary(self) -> &'static str {
        match self {
            Bug::Zk335 => "new epoch from the last logged zxid, not acceptedEpoch: two leaders of one epoch after cascading crashes",
            Bug::Zk2845 => "TRUNC by logged zxid only; the learner keeps transactions it applied but were never committed",
            Bug::Zk5010 => "DIFF where TRUNC is due: a stale uncommitted proposal stays in the follower's log and is applied",
            Bug::Zk4925 => "proposals received during sync left out of the in-memory committed log: a later leader's DIFF has a hole",
            Bug::Zk2355 => "closeSession applied during a learner's sync leaves the session's ephemerals",
            Bug::Zk4394 => "COMMIT for an already drained proposal after the NEWLEADER ACK: the follower crashes",
            Bug::Zk3145 => "fuzzy snapshot: stamped too early, parents serialized stale; replayed creates leave stale cversion/pzxid",
            Bug::Zk3911 => "NEWLEADER acknowledged before the DIFF's proposals are durable",
            Bug::Zk4643 => "currentEpoch written (and taken as covering the log) before the synced history reaches the disk",
            Bug::Zk1732 => "a latecomer listens to an established ensemble only in its own election epoch: a restarted server never rejoins",
            Bug::Zk2247 => "a failed transaction-log write is swallowed: the leader stays, commits nothing, and no one replaces it",
            Bug::Zk4646 => "NEWLEADER acknowledged while the sync's proposals are still queued for the log writer",
        }
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// Parse a comma-separated list of bug ids (`ZK-335,ZK-4643`).
pub fn parse_list(s: &str) -> Result<Vec<Bug>, String> {
    let mut v = Vec::new();
    for id in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
        let b = Bug::from_id(id).ok_or_else(|| format!("unknown bug switch {id:?}"))?;
        if !v.contains(&b) {
            v.push(b);
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for b in Bug::ALL {
            assert_eq!(Bug::from_id(b.id()), Some(b));
            let long = b.id().replace("ZK-", "ZOOKEEPER-");
            assert_eq!(Bug::from_id(&long), Some(b));
        }
        assert_eq!(Bug::from_id("ZK-1"), None);
        assert_eq!(parse_list("ZK-335, ZK-335").unwrap(), vec![Bug::Zk335]);
        assert!(parse_list("ZK-9").is_err());
    }
}
