//! Durable storage: the transaction log, snapshots, epoch files, recovery and
//! purging, as pure logic over a [`Disk`].
//!
//! # Layout
//!
//! Mirrors ZooKeeper's file naming (the formats inside are this project's
//! own; clients never see them):
//!
//! ```text
//! <dataLogDir>/log.<16 hex digits: zxid of the file's first txn>   txn log files
//! <dataDir>/snapshot.<16 hex digits: last zxid in the snapshot>    snapshots
//! <dataDir>/acceptedEpoch, <dataDir>/currentEpoch                  decimal text
//! ```
//!
//! Names that do not parse exactly (e.g. a leftover `*.tmp`) are ignored.
//!
//! # Guarantees
//!
//! - **Group commit.** [`TxnLog::append`] only writes; [`TxnLog::sync`] makes
//!   everything appended so far durable with one fsync. The core decides when
//!   (a follower ACKs only after the sync that covers the proposal).
//! - **Prefix recovery.** After any crash, [`read_log`] returns a prefix of
//!   the appended records that contains every record synced before the
//!   crash. A torn tail in the last file is cut off (durably) and reported;
//!   damage anywhere else is corruption and an error naming the file and byte
//!   offset, never silently dropped data.
//! - **Atomic snapshots and epochs.** Both are written with
//!   [`Disk::write_atomic`]; snapshots carry a CRC32C, and
//!   [`latest_valid_snapshot`] falls back to an older one if the newest fails
//!   to verify.
//! - **Crash-consistent deletion.** [`truncate_log_after`] removes newest data
//!   first and [`purge`] oldest first, so a crash midway leaves a prefix (resp.
//!   suffix) of the log that is still a valid log.
//!
//! Recovery is: `latest_valid_snapshot`, then `read_log(from = snapshot zxid)`
//! and apply the records in order, then `TxnLog::open` with the last zxid.

use std::io;

use crate::disk::Disk;

mod epoch;
mod purge;
mod snapshot;
mod txnlog;

pub use epoch::{read_epoch, write_epoch};
pub use purge::{purge, PurgeReport, SNAPSHOTS_RETAINED_MIN};
pub use snapshot::{
    decode_snapshot, encode_snapshot, latest_valid_snapshot, list_snapshots, snapshot_name,
    write_snapshot, NodeRecord, SnapshotData, SnapshotLoad,
};
pub use txnlog::{
    list_logs, log_name, read_log, truncate_log_after, LogReplay, TornTail, TxnLog,
    ENTRY_BYTES_MAX, LOG_FILE_BYTES_DEFAULT,
};

/// Every way storage can fail. I/O errors and corruption stop the server;
/// none of them is a ZooKeeper-level outcome.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("I/O error: {op} {path:?}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    /// Bytes on disk that no crash under the [`Disk`] contract can produce.
    #[error("{file} is corrupt at byte offset {offset}: {reason}")]
    Corrupt {
        file: String,
        offset: u64,
        reason: String,
    },
    /// A caller broke the log's rules (a programmer error upstream, reported
    /// instead of written so the log itself stays valid).
    #[error("txn log misuse: {0}")]
    Misuse(String),
    /// An earlier failure left the log writer in an unknown state.
    #[error("txn log writer failed earlier and must be reopened")]
    Poisoned,
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// Attaches the operation and path to an I/O error.
fn io_err<'a>(op: &'static str, path: &'a str) -> impl FnOnce(io::Error) -> StorageError + 'a {
    move |source| StorageError::Io {
        op,
        path: path.to_string(),
        source,
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// `<prefix><16 hex digits>` for a zxid.
fn zxid_name(prefix: &str, zxid: i64) -> String {
    format!("{prefix}{:016x}", zxid as u64)
}

/// The zxid in a name made by [`zxid_name`], or `None` if it is not exactly
/// that shape.
fn parse_zxid_name(prefix: &str, name: &str) -> Option<i64> {
    let hex = name.strip_prefix(prefix)?;
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|z| z as i64)
}

/// Files in `dir` named `<prefix><zxid>`, sorted by zxid. A missing
/// directory is empty (a fresh server).
fn list_zxid_files(disk: &dyn Disk, dir: &str, prefix: &str) -> Result<Vec<(i64, String)>> {
    let names = match disk.list(dir) {
        Ok(names) => names,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err("list", dir)(e)),
    };
    let mut files: Vec<(i64, String)> = names
        .into_iter()
        .filter_map(|n| parse_zxid_name(prefix, &n).map(|z| (z, join(dir, &n))))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_names_round_trip_and_reject_lookalikes() {
        let name = zxid_name("log.", 0x1_0000_0005);
        assert_eq!(name, "log.0000000100000005");
        assert_eq!(parse_zxid_name("log.", &name), Some(0x1_0000_0005));
        for bad in [
            "log.0000000100000005.tmp",
            "log.100000005",
            "log.000000010000000g",
            "snapshot.0000000100000005",
            "log.+000000100000005",
        ] {
            assert_eq!(parse_zxid_name("log.", bad), None, "{bad}");
        }
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("d/e", "a"), "d/e/a");
    }
}
