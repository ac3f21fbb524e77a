//! Which scenarios suit each reintroduced bug (`zkcore::bugs::Bug`), and
//! which checks are expected to catch it: what `sim hunt --bug ID` sweeps
//! and what the table in `scenarios/README.md` reports.

use zkcore::bugs::Bug;

/// One place to hunt a bug: a scenario file (relative to the repository
/// root) and the cluster size to run it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ground {
    pub scenario: &'static str,
    pub servers: u32,
}

const fn g(scenario: &'static str, servers: u32) -> Ground {
    Ground { scenario, servers }
}

const LEADER_CHURN_3: Ground = g("scenarios/leader-churn.toml", 3);
const LEADER_CRASH_3: Ground = g("scenarios/leader-crash.toml", 3);
const LEADER_ISOLATED_3: Ground = g("scenarios/leader-isolated.toml", 3);
const SESSION_EXPIRY_3: Ground = g("scenarios/session-expiry.toml", 3);
const DISK_CRASH_3: Ground = g("scenarios/disk-crash.toml", 3);
const DISK_ERROR_3: Ground = g("scenarios/disk-error.toml", 3);
const STALE_REJOIN_3: Ground = g("scenarios/stale-rejoin.toml", 3);
const SNAP_REJOIN_3: Ground = g("scenarios/snap-rejoin.toml", 3);
const STALE_LEADER_DIFF_5: Ground = g("scenarios/stale-leader-diff.toml", 5);
const SYNC_POWER_LOSS_3: Ground = g("scenarios/sync-power-loss.toml", 3);
const REJOIN_POWER_LOSS_3: Ground = g("scenarios/rejoin-power-loss.toml", 3);

/// The scenarios a hunt for `bug` sweeps, in order (a hunt tries each seed
/// on every one before moving to the next seed).
pub fn grounds(bug: Bug) -> &'static [Ground] {
    match bug {
        Bug::Zk335 => &[LEADER_CHURN_3],
        Bug::Zk2845 => &[SNAP_REJOIN_3],
        Bug::Zk5010 => &[LEADER_ISOLATED_3],
        Bug::Zk4925 => &[STALE_LEADER_DIFF_5],
        Bug::Zk2355 => &[SESSION_EXPIRY_3],
        Bug::Zk4394 => &[LEADER_CRASH_3],
        Bug::Zk3145 => &[DISK_CRASH_3],
        Bug::Zk3911 => &[SYNC_POWER_LOSS_3],
        Bug::Zk4643 => &[SYNC_POWER_LOSS_3],
        Bug::Zk1732 => &[STALE_REJOIN_3],
        Bug::Zk2247 => &[DISK_ERROR_3],
        // sync-power-loss cuts power before the currentEpoch write on
        // every restart (the rejoin slows as the unwritten DIFF grows, so
        // the cuts never catch up with the ACK); rejoin-power-loss steps
        // its cut through the whole rejoin.
        Bug::Zk4646 => &[REJOIN_POWER_LOSS_3],
    }
}

/// The checks expected to catch `bug` (any one of them failing counts).
pub fn caught_by(bug: Bug) -> &'static [&'static str] {
    match bug {
        Bug::Zk335 => &["zab", "replicas"],
        Bug::Zk2845 => &["zab", "replicas"],
        Bug::Zk5010 => &["zab", "replicas"],
        Bug::Zk4925 => &["replicas", "liveness"],
        Bug::Zk2355 => &["ephemeral", "zab", "replicas"],
        Bug::Zk4394 => &["server_health"],
        Bug::Zk3145 => &["zab", "replicas"],
        Bug::Zk3911 => &["zab", "durability", "linearizability"],
        Bug::Zk4643 => &["zab", "durability", "linearizability"],
        Bug::Zk1732 => &["replicas", "liveness"],
        Bug::Zk2247 => &["liveness", "replicas"],
        Bug::Zk4646 => &["zab", "durability", "linearizability"],
    }
}
