//! The transaction log: append-only files of CRC-checked entries, written
//! with group commit and recovered with torn-tail repair.
//!
//! # File format (this project's own)
//!
//! A log file is named `log.<16 hex digits>` after the zxid of its first
//! entry and holds:
//!
//! ```text
//! header  16 bytes   "ZKRL", u32 version = 1, 8 reserved bytes (zero)
//! entry*             u32 len, u32 crc32c(payload), payload (len bytes)
//! ```
//!
//! All integers are big-endian. The payload is the jute encoding of a
//! [`TxnRecord`] (header + txn body). Zxids increase strictly within a file
//! and across files, and a file's name is its first entry's zxid.
//!
//! # Writing
//!
//! [`TxnLog::append`] encodes a batch and appends it with one disk write per
//! file; [`TxnLog::sync`] makes it durable with one fsync (group commit). A
//! file that would grow past the size limit is *rolled*: it is synced before
//! the next file is created, so only the newest file ever has an unsynced
//! (and therefore possibly torn) tail.
//!
//! # Recovery
//!
//! [`read_log`] reads the files in zxid order and checks every entry. A bad
//! entry (incomplete, implausible length, CRC mismatch, undecodable) is a
//! *torn tail* only if it is in the last file and no valid entry follows it;
//! the file is then truncated to its last good entry, durably, and the cut is
//! reported. Anything else (a bad entry in an older file, a bad entry
//! followed by a valid one, zxids out of order, a file whose name does not
//! match its first entry) is corruption: an error naming the file and byte
//! offset. Good data is never dropped silently.

use std::fmt;
use std::sync::Arc;

use crc32c::crc32c;
use jute::{Reader, Record, TxnRecord};

use super::{io_err, join, list_zxid_files, zxid_name, Result, StorageError};
use crate::disk::Disk;

const FILE_MAGIC: &[u8; 4] = b"ZKRL";
const FILE_VERSION: u32 = 1;
const FILE_HEADER_LEN: usize = 16;
const ENTRY_HEADER_LEN: usize = 8;
/// Smallest possible payload: an encoded `TxnHeader` (long, int, long, long, int).
const PAYLOAD_BYTES_MIN: usize = 32;
/// Largest payload written or accepted; bounds a corrupt length field.
pub const ENTRY_BYTES_MAX: usize = 64 << 20;
/// Default size at which a log file is rolled.
pub const LOG_FILE_BYTES_DEFAULT: u64 = 64 << 20;

const LOG_PREFIX: &str = "log.";

/// The file name (not path) of the log file whose first zxid is `zxid`.
pub fn log_name(zxid: i64) -> String {
    zxid_name(LOG_PREFIX, zxid)
}

/// Log files in `dir` as `(first zxid, path)`, oldest first. A missing
/// directory has none.
pub fn list_logs(disk: &dyn Disk, dir: &str) -> Result<Vec<(i64, String)>> {
    list_zxid_files(disk, dir, LOG_PREFIX)
}

fn file_header() -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[..4].copy_from_slice(FILE_MAGIC);
    h[4..8].copy_from_slice(&FILE_VERSION.to_be_bytes());
    h
}

fn encode_entry(record: &TxnRecord) -> Vec<u8> {
    let mut out = vec![0u8; ENTRY_HEADER_LEN];
    record.write(&mut out);
    let payload_len = out.len() - ENTRY_HEADER_LEN;
    let crc = crc32c(&out[ENTRY_HEADER_LEN..]);
    out[..4].copy_from_slice(&(payload_len as u32).to_be_bytes());
    out[4..8].copy_from_slice(&crc.to_be_bytes());
    out
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Decodes the entry at `off`: the record and the offset just past it, or
/// why the bytes there are not a valid entry.
fn entry_at(bytes: &[u8], off: usize) -> std::result::Result<(TxnRecord, usize), String> {
    let rest = &bytes[off.min(bytes.len())..];
    if rest.len() < ENTRY_HEADER_LEN {
        return Err(format!(
            "incomplete entry header ({} of {ENTRY_HEADER_LEN} bytes)",
            rest.len()
        ));
    }
    let len = be_u32(&rest[..4]) as usize;
    if !(PAYLOAD_BYTES_MIN..=ENTRY_BYTES_MAX).contains(&len) {
        return Err(format!("implausible entry length {len}"));
    }
    let Some(payload) = rest.get(ENTRY_HEADER_LEN..ENTRY_HEADER_LEN + len) else {
        return Err(format!(
            "incomplete entry (length {len}, only {} bytes follow)",
            rest.len() - ENTRY_HEADER_LEN
        ));
    };
    if crc32c(payload) != be_u32(&rest[4..8]) {
        return Err("checksum mismatch".to_string());
    }
    let mut reader = Reader::new(payload);
    let record = TxnRecord::read(&mut reader)
        .and_then(|r| reader.finish().map(|()| r))
        .map_err(|e| format!("undecodable txn: {e}"))?;
    Ok((record, off + ENTRY_HEADER_LEN + len))
}

/// The first offset at or after `from` holding a valid entry whose zxid
/// continues the sequence (`> prev_zxid`). Used to tell a torn tail (nothing
/// valid follows) from damage in the middle. The zxid condition keeps an old
/// entry that happens to be embedded in znode data from counting.
fn valid_entry_after(bytes: &[u8], from: usize, prev_zxid: Option<i64>) -> Option<usize> {
    let last = bytes
        .len()
        .checked_sub(ENTRY_HEADER_LEN + PAYLOAD_BYTES_MIN)?;
    (from..=last).find(|&p| match entry_at(bytes, p) {
        Ok((r, _)) => prev_zxid.is_none_or(|z| r.header.zxid > z),
        Err(_) => false,
    })
}

/// The first bad spot in a file: where, why, and whether a crash under the
/// disk contract could have produced it (else it is corruption regardless).
#[derive(Debug)]
struct BadSpot {
    offset: usize,
    reason: String,
    tearable: bool,
}

/// A log file's valid prefix.
#[derive(Debug)]
struct ParsedFile {
    /// `(offset, record)` of each good entry, in file order.
    entries: Vec<(usize, TxnRecord)>,
    /// Offset just past the last good entry (0 if the header is bad).
    end: usize,
    bad: Option<BadSpot>,
}

impl ParsedFile {
    fn last_zxid(&self) -> Option<i64> {
        self.entries.last().map(|(_, r)| r.header.zxid)
    }
}

/// A header is tearable if it is a prefix of ours (a torn first write) or
/// all zeros (a file extended but not written before the crash).
fn check_header(bytes: &[u8]) -> Option<BadSpot> {
    let expected = file_header();
    let n = bytes.len().min(FILE_HEADER_LEN);
    if n == FILE_HEADER_LEN && bytes[..n] == expected {
        return None;
    }
    let tearable = bytes[..n] == expected[..n] || bytes[..n].iter().all(|&b| b == 0);
    let reason = if tearable {
        format!("incomplete file header ({n} of {FILE_HEADER_LEN} bytes)")
    } else {
        "bad file header (not a ZKRL version 1 txn log)".to_string()
    };
    Some(BadSpot {
        offset: 0,
        reason,
        tearable,
    })
}

fn corrupt(file: &str, offset: usize, reason: String) -> StorageError {
    StorageError::Corrupt {
        file: file.to_string(),
        offset: offset as u64,
        reason,
    }
}

/// Parses entries until the first bad one. Zxid disorder, or a first zxid
/// that differs from the file name, cannot come from a crash: an error.
fn parse_log_file(
    file: &str,
    bytes: &[u8],
    name_zxid: i64,
    prev_zxid: Option<i64>,
) -> Result<ParsedFile> {
    let mut parsed = ParsedFile {
        entries: Vec::new(),
        end: 0,
        bad: check_header(bytes),
    };
    if parsed.bad.is_some() {
        return Ok(parsed);
    }
    parsed.end = FILE_HEADER_LEN;
    let mut prev = prev_zxid;
    while parsed.end < bytes.len() {
        let (record, next) = match entry_at(bytes, parsed.end) {
            Ok(ok) => ok,
            Err(reason) => {
                parsed.bad = Some(BadSpot {
                    offset: parsed.end,
                    reason,
                    tearable: true,
                });
                break;
            }
        };
        let zxid = record.header.zxid;
        if parsed.entries.is_empty() && zxid != name_zxid {
            let reason = format!(
                "first zxid {zxid:#x} does not match the file name; the txn log is corrupt"
            );
            return Err(corrupt(file, parsed.end, reason));
        }
        if let Some(p) = prev.filter(|&p| zxid <= p) {
            let reason = format!("zxid {zxid:#x} does not follow {p:#x}; the txn log is corrupt");
            return Err(corrupt(file, parsed.end, reason));
        }
        prev = Some(zxid);
        parsed.entries.push((parsed.end, record));
        parsed.end = next;
    }
    Ok(parsed)
}

/// Decides whether a bad spot in the file that is (or is about to become)
/// the last one is a torn tail: it must be tearable and followed by no valid
/// entry. Otherwise the corruption error.
fn check_torn(file: &str, bytes: &[u8], parsed: &ParsedFile, bad: &BadSpot) -> Result<()> {
    if !bad.tearable {
        return Err(corrupt(file, bad.offset, bad.reason.clone()));
    }
    let prev = parsed.last_zxid();
    let scan_from = (bad.offset + 1).max(FILE_HEADER_LEN);
    if let Some(next) = valid_entry_after(bytes, scan_from, prev) {
        let reason = format!(
            "{}, but a valid entry follows at byte {next}; the txn log is corrupt in the middle",
            bad.reason
        );
        return Err(corrupt(file, bad.offset, reason));
    }
    Ok(())
}

/// Cuts `file` durably to `len` bytes, removing it if no entry remains.
fn cut_file(disk: &dyn Disk, file: &str, len: usize) -> Result<bool> {
    if len <= FILE_HEADER_LEN {
        disk.remove(file).map_err(io_err("remove", file))?;
        return Ok(true);
    }
    disk.truncate(file, len as u64)
        .map_err(io_err("truncate", file))?;
    disk.sync(file).map_err(io_err("sync", file))?;
    Ok(false)
}

/// A torn tail that recovery cut off the last log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub file: String,
    /// The file's length after the cut (where the bad entry began).
    pub offset: u64,
    pub bytes_cut: u64,
    /// The file held no complete entry and was removed.
    pub removed: bool,
    pub reason: String,
}

/// What [`read_log`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogReplay {
    /// Records with zxid greater than the requested one, in zxid order.
    pub records: Vec<TxnRecord>,
    /// The torn tail that was cut, if any.
    pub torn: Option<TornTail>,
}

impl LogReplay {
    /// Zxid of the last record returned.
    pub fn last_zxid(&self) -> Option<i64> {
        self.records.last().map(|r| r.header.zxid)
    }
}

/// Index of the first file that can hold a zxid greater than `from_zxid`:
/// file `i` is skipped when file `i + 1` starts at or below `from_zxid + 1`.
/// The last file is always read (its tail needs checking).
fn first_needed(files: &[(i64, String)], from_zxid: i64) -> usize {
    files
        .partition_point(|(z, _)| *z <= from_zxid.saturating_add(1))
        .saturating_sub(1)
}

/// Reads every logged record with zxid greater than `from_zxid`, in zxid
/// order, repairing a torn tail of the last file (see the module docs).
/// Files wholly at or below `from_zxid` are not read.
pub fn read_log(disk: &dyn Disk, dir: &str, from_zxid: i64) -> Result<LogReplay> {
    let files = list_logs(disk, dir)?;
    let mut replay = LogReplay::default();
    let mut prev: Option<i64> = None;
    for (i, (name_zxid, file)) in files
        .iter()
        .enumerate()
        .skip(first_needed(&files, from_zxid))
    {
        let is_last = i + 1 == files.len();
        let bytes = disk.read(file).map_err(io_err("read", file))?;
        let parsed = parse_log_file(file, &bytes, *name_zxid, prev)?;
        if let Some(bad) = &parsed.bad {
            if !is_last {
                let reason = format!(
                    "{} in a file that is not the newest; the txn log is corrupt",
                    bad.reason
                );
                return Err(corrupt(file, bad.offset, reason));
            }
            check_torn(file, &bytes, &parsed, bad)?;
        }
        let empty = parsed.entries.is_empty();
        if is_last && (parsed.bad.is_some() || empty) {
            let reason = match &parsed.bad {
                Some(bad) => bad.reason.clone(),
                None => "file holds no entry".to_string(),
            };
            let removed = cut_file(disk, file, parsed.end)?;
            replay.torn = Some(TornTail {
                file: file.clone(),
                offset: if removed { 0 } else { parsed.end as u64 },
                bytes_cut: (bytes.len() - if removed { 0 } else { parsed.end }) as u64,
                removed,
                reason,
            });
        }
        prev = parsed.last_zxid().or(prev);
        let newer = parsed.entries.into_iter().map(|(_, r)| r);
        replay
            .records
            .extend(newer.filter(|r| r.header.zxid > from_zxid));
    }
    Ok(replay)
}

/// Removes every logged record with zxid greater than `zxid` (ZAB TRUNC),
/// durably. Newer files go first, so a crash midway leaves a prefix of the
/// log. A torn tail in the file that ends up last is cut as well.
pub fn truncate_log_after(disk: &dyn Disk, dir: &str, zxid: i64) -> Result<()> {
    let files = list_logs(disk, dir)?;
    for (name_zxid, file) in files.iter().rev() {
        if *name_zxid > zxid {
            disk.remove(file).map_err(io_err("remove", file))?;
            continue;
        }
        let bytes = disk.read(file).map_err(io_err("read", file))?;
        let parsed = parse_log_file(file, &bytes, *name_zxid, None)?;
        let first_newer = parsed.entries.iter().find(|(_, r)| r.header.zxid > zxid);
        let cut = match (first_newer, &parsed.bad) {
            (Some((off, _)), _) => *off,
            (None, Some(bad)) => {
                check_torn(file, &bytes, &parsed, bad)?;
                parsed.end
            }
            (None, None) if parsed.entries.is_empty() => 0,
            (None, None) => return Ok(()),
        };
        cut_file(disk, file, cut)?;
        return Ok(());
    }
    Ok(())
}

/// The file currently being appended to.
#[derive(Debug, Clone)]
struct OpenFile {
    path: String,
    /// Logical length, including bytes not yet handed to the disk.
    len: u64,
}

/// The txn log writer. It shares the [`Disk`] with the rest of the shell
/// (an `Arc`), but is meant to have one owner: the task that writes the log.
///
/// Appends go to the current file (created on the first append after
/// opening or rolling, named after that append's first zxid); [`sync`]
/// makes them durable; files roll at the size limit.
///
/// [`sync`]: TxnLog::sync
///
/// Invariants:
/// - zxids appended are strictly increasing and greater than the zxid the
///   log was opened with;
/// - only the current file can hold unsynced bytes (`dirty`); a file is
///   synced before the next one is created;
/// - a current file's first entry has the zxid its name says;
/// - after any I/O error the writer is poisoned and refuses further work:
///   reopen it after recovery.
pub struct TxnLog {
    disk: Arc<dyn Disk>,
    dir: String,
    file_bytes_max: u64,
    current: Option<OpenFile>,
    dirty: bool,
    last_zxid: i64,
    poisoned: bool,
}

impl fmt::Debug for TxnLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TxnLog")
            .field("dir", &self.dir)
            .field("file_bytes_max", &self.file_bytes_max)
            .field("current", &self.current)
            .field("dirty", &self.dirty)
            .field("last_zxid", &self.last_zxid)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl TxnLog {
    /// A writer for `dir` (created if missing) whose next record must have a
    /// zxid above `last_zxid`: pass the greater of the snapshot's zxid and
    /// the last zxid [`read_log`] returned. It always starts a new file.
    pub fn open(disk: Arc<dyn Disk>, dir: &str, last_zxid: i64) -> Result<TxnLog> {
        disk.create_dir_all(dir)
            .map_err(io_err("create_dir_all", dir))?;
        Ok(TxnLog {
            disk,
            dir: dir.to_string(),
            file_bytes_max: LOG_FILE_BYTES_DEFAULT,
            current: None,
            dirty: false,
            last_zxid,
            poisoned: false,
        })
    }

    /// Sets the size at which files roll (a single larger entry still fits,
    /// alone in its file).
    pub fn with_file_bytes_max(mut self, file_bytes_max: u64) -> TxnLog {
        self.file_bytes_max = file_bytes_max;
        self
    }

    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// The zxid of the last record appended (or the one opened with).
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Whether records have been appended since the last sync.
    pub fn has_unsynced(&self) -> bool {
        self.dirty
    }

    /// The path of the file being appended to, if one is open.
    pub fn current_file(&self) -> Option<&str> {
        self.current.as_ref().map(|f| f.path.as_str())
    }

    /// Appends a batch; not durable until [`sync`](TxnLog::sync). Zxids must
    /// increase strictly; a batch that breaks that is rejected whole.
    pub fn append(&mut self, records: &[TxnRecord]) -> Result<()> {
        self.check_usable()?;
        let entries = self.encode_batch(records)?;
        let result = self.write_entries(records, entries);
        self.poison_on_err(result)
    }

    /// Makes everything appended so far durable (one fsync).
    pub fn sync(&mut self) -> Result<()> {
        self.check_usable()?;
        let result = self.sync_current();
        self.poison_on_err(result)
    }

    /// Syncs and closes the current file; the next append starts a new one.
    pub fn roll(&mut self) -> Result<()> {
        self.check_usable()?;
        let result = self.roll_inner();
        self.poison_on_err(result)
    }

    /// Removes every record with zxid greater than `zxid` (ZAB TRUNC); see
    /// [`truncate_log_after`]. Records at or below it that were appended but
    /// not synced become durable. The next append starts a new file.
    pub fn truncate_after(&mut self, zxid: i64) -> Result<()> {
        self.check_usable()?;
        if zxid >= self.last_zxid {
            return Ok(());
        }
        self.current = None;
        self.dirty = false;
        let result = truncate_log_after(&*self.disk, &self.dir, zxid);
        self.last_zxid = zxid;
        self.poison_on_err(result)
    }

    fn check_usable(&self) -> Result<()> {
        match self.poisoned {
            true => Err(StorageError::Poisoned),
            false => Ok(()),
        }
    }

    fn poison_on_err<T>(&mut self, result: Result<T>) -> Result<T> {
        self.poisoned |= result.is_err();
        result
    }

    fn encode_batch(&self, records: &[TxnRecord]) -> Result<Vec<Vec<u8>>> {
        let mut prev = self.last_zxid;
        let mut entries = Vec::with_capacity(records.len());
        for r in records {
            let zxid = r.header.zxid;
            if zxid <= prev {
                let msg = format!("zxid {zxid:#x} appended after {prev:#x}");
                return Err(StorageError::Misuse(msg));
            }
            let entry = encode_entry(r);
            if entry.len() - ENTRY_HEADER_LEN > ENTRY_BYTES_MAX {
                let msg = format!(
                    "txn {zxid:#x} is {} bytes, over {ENTRY_BYTES_MAX}",
                    entry.len()
                );
                return Err(StorageError::Misuse(msg));
            }
            prev = zxid;
            entries.push(entry);
        }
        Ok(entries)
    }

    /// Appends the encoded entries with one disk write per file touched.
    fn write_entries(&mut self, records: &[TxnRecord], entries: Vec<Vec<u8>>) -> Result<()> {
        let mut pending = Vec::new();
        for (record, entry) in records.iter().zip(entries) {
            let entry_len = entry.len() as u64;
            if self.current.as_ref().is_some_and(|f| {
                f.len > FILE_HEADER_LEN as u64 && f.len + entry_len > self.file_bytes_max
            }) {
                self.flush(&mut pending)?;
                self.roll_inner()?;
            }
            if self.current.is_none() {
                self.create_file(record.header.zxid)?;
                pending.extend_from_slice(&file_header());
            }
            pending.extend_from_slice(&entry);
            if let Some(f) = self.current.as_mut() {
                f.len += entry_len;
            }
            self.last_zxid = record.header.zxid;
        }
        self.flush(&mut pending)
    }

    fn create_file(&mut self, first_zxid: i64) -> Result<()> {
        let path = join(&self.dir, &log_name(first_zxid));
        if self.disk.exists(&path).map_err(io_err("stat", &path))? {
            let msg = format!("{path} already exists; open the log with the recovered last zxid");
            return Err(StorageError::Misuse(msg));
        }
        self.current = Some(OpenFile {
            path,
            len: FILE_HEADER_LEN as u64,
        });
        Ok(())
    }

    fn flush(&mut self, pending: &mut Vec<u8>) -> Result<()> {
        let Some(f) = &self.current else {
            return Ok(());
        };
        if !pending.is_empty() {
            self.disk
                .append(&f.path, pending)
                .map_err(io_err("append", &f.path))?;
            pending.clear();
            self.dirty = true;
        }
        Ok(())
    }

    fn sync_current(&mut self) -> Result<()> {
        if let (true, Some(f)) = (self.dirty, &self.current) {
            self.disk.sync(&f.path).map_err(io_err("sync", &f.path))?;
        }
        self.dirty = false;
        Ok(())
    }

    fn roll_inner(&mut self) -> Result<()> {
        self.sync_current()?;
        self.current = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::MemDisk;
    use jute::{Acl, Txn, TxnHeader};
    use proptest::prelude::*;

    const DIR: &str = "data/log";

    fn rec(zxid: i64) -> TxnRecord {
        // Vary the size so entries do not all align.
        let txn = match zxid % 3 {
            0 => Txn::SetData {
                path: format!("/n{zxid}"),
                data: Some(vec![zxid as u8; (zxid % 17) as usize]),
                version: zxid as i32,
            },
            1 => Txn::Create {
                path: format!("/c{zxid}"),
                data: None,
                acl: Acl::open(),
                ephemeral_owner: 0,
                parent_cversion: 1,
            },
            _ => Txn::Multi(vec![
                Txn::Delete { path: "/x".into() },
                Txn::Error { err: -101 },
            ]),
        };
        TxnRecord {
            header: TxnHeader {
                session_id: 0x77,
                cxid: zxid as i32,
                zxid,
                time_ms: 1_000 + zxid,
                op: txn.op(),
            },
            txn,
        }
    }

    fn recs(zxids: std::ops::RangeInclusive<i64>) -> Vec<TxnRecord> {
        zxids.map(rec).collect()
    }

    fn zxids(records: &[TxnRecord]) -> Vec<i64> {
        records.iter().map(|r| r.header.zxid).collect()
    }

    fn new_disk() -> MemDisk {
        MemDisk::new()
    }

    fn open(disk: &MemDisk, last: i64, max: u64) -> TxnLog {
        TxnLog::open(Arc::new(disk.clone()), DIR, last)
            .unwrap()
            .with_file_bytes_max(max)
    }

    fn flip(disk: &MemDisk, path: &str, at: usize) {
        let mut b = disk.read(path).unwrap();
        b[at] ^= 0x5a;
        disk.write_atomic(path, &b).unwrap();
    }

    #[test]
    fn storage_log_round_trips_across_rolled_files() {
        let disk = new_disk();
        let mut log = open(&disk, 0, 400);
        for chunk in recs(1..=200).chunks(7) {
            log.append(chunk).unwrap();
            log.sync().unwrap();
        }
        let files = list_logs(&disk, DIR).unwrap();
        assert!(
            files.len() > 10,
            "expected rolling, got {} files",
            files.len()
        );
        for (z, path) in &files {
            assert!(disk.read(path).unwrap().len() as u64 <= 400 || *z > 0);
        }
        let replay = read_log(&disk, DIR, 0).unwrap();
        assert_eq!(replay.records, recs(1..=200));
        assert_eq!(replay.torn, None);
        assert_eq!(replay.last_zxid(), Some(200));
        // From a later zxid: only newer records, older files skipped.
        let tail = read_log(&disk, DIR, 150).unwrap();
        assert_eq!(zxids(&tail.records), (151..=200).collect::<Vec<_>>());
        assert!(read_log(&disk, DIR, 200).unwrap().records.is_empty());
    }

    #[test]
    fn storage_log_empty_or_missing_dir_is_empty() {
        let disk = new_disk();
        assert_eq!(read_log(&disk, DIR, 0).unwrap(), LogReplay::default());
    }

    #[test]
    fn storage_log_group_commit_is_one_sync_per_batch() {
        let disk = new_disk();
        let mut log = open(&disk, 0, LOG_FILE_BYTES_DEFAULT);
        let before = disk.stats();
        log.append(&recs(1..=50)).unwrap();
        assert!(log.has_unsynced());
        log.sync().unwrap();
        let after = disk.stats();
        assert_eq!(after.syncs - before.syncs, 1);
        assert_eq!(after.appends - before.appends, 1);
        // Syncing with nothing new is free.
        log.sync().unwrap();
        assert_eq!(disk.stats().syncs, after.syncs);
        // Unsynced records may vanish in a crash; synced ones survive.
        log.append(&recs(51..=60)).unwrap();
        disk.crash(None);
        assert_eq!(read_log(&disk, DIR, 0).unwrap().records, recs(1..=50));
    }

    #[test]
    fn storage_log_roll_syncs_before_the_next_file() {
        let disk = new_disk();
        let mut log = open(&disk, 0, LOG_FILE_BYTES_DEFAULT);
        log.append(&recs(1..=3)).unwrap();
        log.roll().unwrap();
        log.append(&recs(4..=6)).unwrap();
        assert_eq!(log.current_file(), Some("data/log/log.0000000000000004"));
        disk.crash(None);
        // The first file was synced by the roll; the second never was.
        assert_eq!(read_log(&disk, DIR, 0).unwrap().records, recs(1..=3));
    }

    #[test]
    fn storage_log_rejects_out_of_order_batches_whole() {
        let disk = new_disk();
        let mut log = open(&disk, 10, LOG_FILE_BYTES_DEFAULT);
        let err = log.append(&recs(5..=6)).unwrap_err();
        assert!(matches!(err, StorageError::Misuse(_)), "{err}");
        let mut batch = recs(11..=12);
        batch.push(rec(12));
        assert!(log.append(&batch).is_err());
        assert!(read_log(&disk, DIR, 0).unwrap().records.is_empty());
        // Misuse does not poison: a correct batch still goes through.
        log.append(&recs(11..=12)).unwrap();
        log.sync().unwrap();
        assert_eq!(read_log(&disk, DIR, 0).unwrap().records, recs(11..=12));
    }

    #[test]
    fn storage_log_refuses_to_overwrite_an_existing_file() {
        let disk = new_disk();
        let mut log = open(&disk, 0, LOG_FILE_BYTES_DEFAULT);
        log.append(&recs(1..=2)).unwrap();
        log.sync().unwrap();
        let mut stale = open(&disk, 0, LOG_FILE_BYTES_DEFAULT);
        assert!(matches!(
            stale.append(&recs(1..=1)),
            Err(StorageError::Misuse(_))
        ));
    }

    /// Writes `1..=n` synced, then appends `n + 1` without syncing and
    /// crashes keeping `tear` bytes of it. Returns the disk and the log path.
    fn torn_setup(n: i64, tear: usize) -> (MemDisk, String) {
        let disk = new_disk();
        let mut log = open(&disk, 0, LOG_FILE_BYTES_DEFAULT);
        log.append(&recs(1..=n)).unwrap();
        log.sync().unwrap();
        log.append(&[rec(n + 1)]).unwrap();
        let path = log.current_file().unwrap().to_string();
        disk.crash(Some(tear));
        (disk, path)
    }

    #[test]
    fn storage_log_torn_tail_at_every_offset_is_cut() {
        let entry_len = encode_entry(&rec(6)).len();
        let good_len = disk_len_after(5);
        for tear in 0..=entry_len {
            let (disk, path) = torn_setup(5, tear);
            let replay = read_log(&disk, DIR, 0).unwrap();
            if tear == entry_len {
                assert_eq!(replay.records, recs(1..=6));
                assert_eq!(replay.torn, None);
                continue;
            }
            assert_eq!(replay.records, recs(1..=5), "tear {tear}");
            match tear {
                0 => assert_eq!(replay.torn, None),
                _ => {
                    let torn = replay.torn.clone().unwrap();
                    assert_eq!(
                        (torn.offset, torn.bytes_cut),
                        (good_len as u64, tear as u64)
                    );
                    assert_eq!(torn.file, path);
                }
            }
            // The cut is durable and recovery is idempotent.
            disk.crash(None);
            assert_eq!(disk.read(&path).unwrap().len(), good_len);
            assert_eq!(read_log(&disk, DIR, 0).unwrap().torn, None);
            // And the log can be continued after recovery.
            let mut log = open(&disk, 5, LOG_FILE_BYTES_DEFAULT);
            log.append(&[rec(6)]).unwrap();
            log.sync().unwrap();
            assert_eq!(read_log(&disk, DIR, 0).unwrap().records, recs(1..=6));
        }
    }

    fn disk_len_after(n: i64) -> usize {
        FILE_HEADER_LEN
            + recs(1..=n)
                .iter()
                .map(|r| encode_entry(r).len())
                .sum::<usize>()
    }

    #[test]
    fn storage_log_zero_filled_or_garbage_tail_is_torn() {
        for junk in [vec![0u8; 300], vec![0xee; 5], vec![0, 0, 0, 40, 1, 2, 3, 4]] {
            let (disk, path) = torn_setup(4, 0);
            disk.append(&path, &junk).unwrap();
            disk.sync(&path).unwrap();
            let replay = read_log(&disk, DIR, 0).unwrap();
            assert_eq!(replay.records, recs(1..=4));
            assert_eq!(replay.torn.unwrap().bytes_cut, junk.len() as u64);
        }
    }

    #[test]
    fn storage_log_torn_header_of_newest_file_removes_it() {
        let header = file_header();
        for n in 0..=FILE_HEADER_LEN {
            let (disk, _) = torn_setup(3, 0);
            let newest = join(DIR, &log_name(4));
            disk.append(&newest, &header[..n]).unwrap();
            disk.sync(&newest).unwrap();
            let replay = read_log(&disk, DIR, 0).unwrap();
            assert_eq!(replay.records, recs(1..=3), "header bytes {n}");
            let torn = replay.torn.unwrap();
            assert!(torn.removed && torn.bytes_cut == n as u64 && torn.file == newest);
            assert!(!disk.exists(&newest).unwrap());
        }
    }

    #[test]
    fn storage_log_flipped_byte_in_the_middle_is_corruption() {
        let (disk, path) = torn_setup(10, 0);
        let second = FILE_HEADER_LEN + encode_entry(&rec(1)).len();
        // Payload byte, length byte, crc byte of the second entry.
        for at in [second + 20, second + 3, second + 5] {
            let (disk, path) = (disk.clone(), path.clone());
            let before = disk.read(&path).unwrap();
            flip(&disk, &path, at);
            let err = read_log(&disk, DIR, 0).unwrap_err().to_string();
            assert!(err.contains(&path), "{err}");
            assert!(err.contains(&format!("byte offset {second}")), "{err}");
            assert!(err.contains("corrupt in the middle"), "{err}");
            disk.write_atomic(&path, &before).unwrap();
        }
        // Nothing was cut by the failed recoveries.
        assert_eq!(read_log(&disk, DIR, 0).unwrap().records, recs(1..=10));
    }

    #[test]
    fn storage_log_damage_in_an_older_file_is_corruption() {
        let disk = new_disk();
        let mut log = open(&disk, 0, 300);
        log.append(&recs(1..=30)).unwrap();
        log.sync().unwrap();
        let files = list_logs(&disk, DIR).unwrap();
        assert!(files.len() >= 3);
        // Tear the end of the first file: fine if it were the last, not here.
        let first = &files[0].1;
        let len = disk.read(first).unwrap().len();
        disk.truncate(first, len as u64 - 1).unwrap();
        disk.sync(first).unwrap();
        let err = read_log(&disk, DIR, 0).unwrap_err();
        let StorageError::Corrupt { file, reason, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(file, first);
        assert!(reason.contains("not the newest"), "{err}");
    }

    #[test]
    fn storage_log_zxid_disorder_and_misnamed_files_are_corruption() {
        let disk = new_disk();
        let mut log = open(&disk, 0, LOG_FILE_BYTES_DEFAULT);
        log.append(&recs(1..=3)).unwrap();
        log.sync().unwrap();
        // A second file that repeats zxid 3.
        let other = join(DIR, &log_name(3));
        let mut bytes = file_header().to_vec();
        bytes.extend(encode_entry(&rec(3)));
        disk.write_atomic(&other, &bytes).unwrap();
        let err = read_log(&disk, DIR, 0).unwrap_err().to_string();
        assert!(
            err.contains(&other) && err.contains("does not follow"),
            "{err}"
        );
        // A file whose name does not match its first record.
        disk.remove(&other).unwrap();
        let misnamed = join(DIR, &log_name(9));
        disk.write_atomic(&misnamed, &bytes).unwrap();
        let err = read_log(&disk, DIR, 0).unwrap_err().to_string();
        assert!(
            err.contains(&misnamed) && err.contains("file name"),
            "{err}"
        );
    }

    #[test]
    fn storage_log_foreign_header_is_corruption_not_torn() {
        let disk = new_disk();
        disk.create_dir_all(DIR).unwrap();
        let path = join(DIR, &log_name(1));
        disk.write_atomic(&path, b"ZKLG\0\0\0\x02\0\0\0\0\0\0\0\0")
            .unwrap();
        let err = read_log(&disk, DIR, 0).unwrap_err().to_string();
        assert!(
            err.contains("bad file header") && err.contains("byte offset 0"),
            "{err}"
        );
        assert!(disk.exists(&path).unwrap());
    }

    #[test]
    fn storage_log_truncate_after_across_files() {
        for cut in [0, 1, 17, 18, 45, 60, 100] {
            let disk = new_disk();
            let mut log = open(&disk, 0, 300);
            log.append(&recs(1..=60)).unwrap();
            log.sync().unwrap();
            log.truncate_after(cut).unwrap();
            disk.crash(None);
            let kept = read_log(&disk, DIR, 0).unwrap();
            assert_eq!(kept.records, recs(1..=cut.min(60)), "cut {cut}");
            assert_eq!(kept.torn, None, "cut {cut}");
            // The writer continues after the truncation point.
            let next = cut.min(60) + 1;
            let mut log = open(&disk, next - 1, 300);
            log.append(&recs(next..=next + 2)).unwrap();
            log.sync().unwrap();
            let all = read_log(&disk, DIR, 0).unwrap().records;
            assert_eq!(all, recs(1..=next + 2), "cut {cut}");
        }
    }

    #[test]
    fn storage_log_truncate_after_keeps_writer_usable() {
        let disk = new_disk();
        let mut log = open(&disk, 0, LOG_FILE_BYTES_DEFAULT);
        log.append(&recs(1..=10)).unwrap();
        log.truncate_after(4).unwrap();
        assert_eq!(log.last_zxid(), 4);
        log.append(&recs(5..=6)).unwrap();
        log.sync().unwrap();
        disk.crash(None);
        assert_eq!(read_log(&disk, DIR, 0).unwrap().records, recs(1..=6));
    }

    #[test]
    fn storage_log_poisoned_after_io_error() {
        let disk = new_disk();
        let mut log = open(&disk, 0, LOG_FILE_BYTES_DEFAULT);
        log.append(&recs(1..=2)).unwrap();
        // Someone removed the file under us: the sync fails.
        disk.remove(log.current_file().unwrap()).unwrap();
        assert!(matches!(log.sync(), Err(StorageError::Io { .. })));
        assert!(matches!(
            log.append(&recs(3..=3)),
            Err(StorageError::Poisoned)
        ));
    }

    #[test]
    fn storage_log_huge_entry_gets_its_own_file() {
        let disk = new_disk();
        let mut log = open(&disk, 0, 200);
        let mut big = rec(2);
        big.txn = Txn::SetData {
            path: "/big".into(),
            data: Some(vec![7; 1000]),
            version: 1,
        };
        big.header.op = big.txn.op();
        let batch = vec![rec(1), big, rec(3)];
        log.append(&batch).unwrap();
        log.sync().unwrap();
        assert_eq!(list_logs(&disk, DIR).unwrap().len(), 3);
        assert_eq!(read_log(&disk, DIR, 0).unwrap().records, batch);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Append(u8),
        Sync,
        Roll,
        Crash(Option<usize>),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1u8..6).prop_map(Op::Append),
            3 => Just(Op::Sync),
            1 => Just(Op::Roll),
            1 => proptest::option::of(0usize..400).prop_map(Op::Crash),
        ]
    }

    /// Recovery as the server does it: read, then reopen the writer.
    fn recover(disk: &MemDisk, max: u64) -> (Vec<TxnRecord>, TxnLog) {
        let replay = read_log(disk, DIR, 0).unwrap();
        let last = replay.last_zxid().unwrap_or(0);
        (replay.records, open(disk, last, max))
    }

    proptest! {
        #[test]
        fn storage_log_random_crashes_keep_every_synced_record(
            ops in proptest::collection::vec(op(), 1..60),
            max in 150u64..600,
        ) {
            let disk = new_disk();
            let mut log = open(&disk, 0, max);
            let mut appended: Vec<TxnRecord> = Vec::new();
            let mut synced = 0usize;
            for op in ops {
                match op {
                    Op::Append(n) => {
                        let next = appended.len() as i64 + 1;
                        let batch = recs(next..=next + n as i64 - 1);
                        log.append(&batch).unwrap();
                        appended.extend(batch);
                    }
                    Op::Sync => {
                        log.sync().unwrap();
                        synced = appended.len();
                    }
                    Op::Roll => {
                        log.roll().unwrap();
                        synced = appended.len();
                    }
                    Op::Crash(tear) => {
                        disk.crash(tear);
                        let (records, reopened) = recover(&disk, max);
                        // A prefix of what was appended, holding all synced.
                        prop_assert!(records.len() >= synced);
                        prop_assert_eq!(&records[..], &appended[..records.len()]);
                        appended.truncate(records.len());
                        synced = records.len();
                        log = reopened;
                    }
                }
            }
            log.sync().unwrap();
            disk.crash(None);
            let (records, _) = recover(&disk, max);
            prop_assert_eq!(records, appended);
        }
    }
}
