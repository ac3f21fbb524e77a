//! Purging old snapshots and log files (ZooKeeper's autopurge).
//!
//! Keeps the newest `retain_count` *valid* snapshots (at least
//! [`SNAPSHOTS_RETAINED_MIN`]) and every log file that replay from the oldest
//! kept snapshot can need: the file that may hold the txn right after that
//! snapshot's zxid, and all newer ones. That keeps fallback to any retained
//! snapshot possible when a newer one turns out damaged.
//!
//! Snapshots go before logs, oldest first: a crash midway never leaves a
//! snapshot whose log suffix has been removed.

use super::snapshot::{list_snapshots, read_snapshot};
use super::txnlog::list_logs;
use super::{io_err, Result, StorageError};
use crate::disk::Disk;

/// Fewest snapshots a purge keeps (ZooKeeper's minimum for autopurge).
pub const SNAPSHOTS_RETAINED_MIN: usize = 3;

/// What [`purge`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub removed_snapshots: Vec<String>,
    pub removed_logs: Vec<String>,
}

/// Removes snapshots older than the `retain_count`-th newest valid one and
/// the log files not needed to replay from it. With fewer valid snapshots
/// than that, removes nothing.
pub fn purge(
    disk: &dyn Disk,
    snap_dir: &str,
    log_dir: &str,
    retain_count: usize,
) -> Result<PurgeReport> {
    let retain = retain_count.max(SNAPSHOTS_RETAINED_MIN);
    let mut report = PurgeReport::default();
    let Some(oldest_kept) = oldest_retained(disk, snap_dir, retain)? else {
        return Ok(report);
    };
    for (zxid, path) in list_snapshots(disk, snap_dir)? {
        if zxid < oldest_kept {
            disk.remove(&path).map_err(io_err("remove", &path))?;
            report.removed_snapshots.push(path);
        }
    }
    let logs = list_logs(disk, log_dir)?;
    // The newest file starting at or below the snapshot may hold the txns
    // right after it; everything before that file is covered.
    let needed = logs
        .partition_point(|(z, _)| *z <= oldest_kept)
        .saturating_sub(1);
    for (_, path) in logs.into_iter().take(needed) {
        disk.remove(&path).map_err(io_err("remove", &path))?;
        report.removed_logs.push(path);
    }
    Ok(report)
}

/// Zxid of the `retain`-th newest snapshot that verifies, if there are that
/// many.
fn oldest_retained(disk: &dyn Disk, snap_dir: &str, retain: usize) -> Result<Option<i64>> {
    let mut valid = 0;
    for (zxid, path) in list_snapshots(disk, snap_dir)?.into_iter().rev() {
        match read_snapshot(disk, zxid, &path) {
            Ok(_) => valid += 1,
            Err(StorageError::Corrupt { .. }) => continue,
            Err(e) => return Err(e),
        }
        if valid == retain {
            return Ok(Some(zxid));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::MemDisk;
    use crate::storage::{read_log, write_snapshot, SnapshotData, TxnLog};
    use jute::{Txn, TxnHeader, TxnRecord};
    use std::sync::Arc;

    const SNAPS: &str = "data";
    const LOGS: &str = "datalog";

    fn rec(zxid: i64) -> TxnRecord {
        let txn = Txn::CreateSession { timeout_ms: 5000 };
        TxnRecord {
            header: TxnHeader {
                session_id: zxid,
                cxid: 0,
                zxid,
                time_ms: 0,
                op: txn.op(),
            },
            txn,
        }
    }

    /// Logs 1..=50, five per file, and snapshots at each zxid in `snaps`.
    fn setup(snaps: &[i64]) -> MemDisk {
        let disk = MemDisk::new();
        let mut log = TxnLog::open(Arc::new(disk.clone()), LOGS, 0).unwrap();
        for start in (1..=50).step_by(5) {
            let batch: Vec<_> = (start..start + 5).map(rec).collect();
            log.append(&batch).unwrap();
            log.roll().unwrap();
        }
        for &z in snaps {
            let snap = SnapshotData {
                last_zxid: z,
                ..SnapshotData::default()
            };
            write_snapshot(&disk, SNAPS, &snap).unwrap();
        }
        disk
    }

    fn names(paths: &[String]) -> Vec<&str> {
        paths
            .iter()
            .map(|p| p.rsplit('/').next().unwrap())
            .collect()
    }

    #[test]
    fn storage_purge_keeps_newest_snapshots_and_needed_logs() {
        let disk = setup(&[3, 12, 23, 31, 44]);
        let report = purge(&disk, SNAPS, LOGS, 3).unwrap();
        assert_eq!(
            names(&report.removed_snapshots),
            ["snapshot.0000000000000003", "snapshot.000000000000000c"]
        );
        // Oldest kept snapshot is at 23: log.21 (21..=25) is still needed.
        assert_eq!(report.removed_logs.len(), 4);
        assert_eq!(names(&report.removed_logs)[3], "log.0000000000000010");
        assert_eq!(read_log(&disk, LOGS, 23).unwrap().records.len(), 27);
        // Idempotent.
        assert_eq!(
            purge(&disk, SNAPS, LOGS, 3).unwrap(),
            PurgeReport::default()
        );
    }

    #[test]
    fn storage_purge_retains_at_least_three_and_counts_only_valid() {
        let disk = setup(&[5, 15, 25, 35, 45]);
        // retain 1 is raised to 3; the newest snapshot is damaged, so the
        // three valid ones are 15, 25, 35.
        let newest = "data/snapshot.000000000000002d";
        disk.write_atomic(newest, b"garbage").unwrap();
        let report = purge(&disk, SNAPS, LOGS, 1).unwrap();
        assert_eq!(
            names(&report.removed_snapshots),
            ["snapshot.0000000000000005"]
        );
        // log.11 holds 11..=15, needed to replay after snapshot 15.
        assert_eq!(
            names(&report.removed_logs),
            ["log.0000000000000001", "log.0000000000000006"]
        );
        assert!(disk.exists(newest).unwrap());
    }

    #[test]
    fn storage_purge_with_too_few_valid_snapshots_removes_nothing() {
        let disk = setup(&[10, 20]);
        assert_eq!(
            purge(&disk, SNAPS, LOGS, 3).unwrap(),
            PurgeReport::default()
        );
        let empty = MemDisk::new();
        assert_eq!(
            purge(&empty, SNAPS, LOGS, 3).unwrap(),
            PurgeReport::default()
        );
    }

    #[test]
    fn storage_purge_snapshot_on_file_boundary() {
        // Snapshot 30 ends file log.26; log.31 starts right after it.
        let disk = setup(&[30, 40, 50]);
        let report = purge(&disk, SNAPS, LOGS, 3).unwrap();
        assert_eq!(report.removed_logs.len(), 5);
        assert_eq!(read_log(&disk, LOGS, 30).unwrap().records.len(), 20);
    }
}
