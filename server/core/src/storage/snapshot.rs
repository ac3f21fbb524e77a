//! Snapshots: the whole data tree and session table at one zxid, written
//! atomically and verified by a checksum.
//!
//! # File format (this project's own)
//!
//! A snapshot is named `snapshot.<16 hex digits>` after its `last_zxid`:
//!
//! ```text
//! "ZKSS", u32 version = 1
//! long last_zxid
//! int session count, then per session: long session id, int timeout ms
//! int node count, then per node (parents before children, by convention):
//!     ustring path, nbuffer data, vector<Acl> acl,
//!     long czxid, long mzxid, long ctime, long mtime,
//!     int version, int cversion, int aversion,
//!     long ephemeral_owner, long pzxid
//! u32 crc32c of every byte before it
//! ```
//!
//! Integers are big-endian jute primitives. `cversion` is the *stored* child
//! counter (what sequential names and replayed creates build on), not a
//! client-visible derivative.
//!
//! A snapshot is written with [`Disk::write_atomic`], so a crash leaves
//! either no file or a complete one; the checksum catches later damage, and
//! [`latest_valid_snapshot`] then falls back to an older snapshot (the log
//! files it needs are kept by [`purge`](super::purge)).

use crc32c::crc32c;
use jute::codec::{write_i32, write_i64, write_nbuffer, write_string, write_vec};
use jute::{Acl, JuteError, Reader, Record};

use super::{io_err, join, list_zxid_files, zxid_name, Result, StorageError};
use crate::disk::Disk;

const MAGIC: &[u8; 4] = b"ZKSS";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 8;
const CRC_LEN: usize = 4;
const SNAP_PREFIX: &str = "snapshot.";

/// One znode as stored in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub path: String,
    pub data: Option<Vec<u8>>,
    pub acl: Vec<Acl>,
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    /// The stored child-create counter.
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub pzxid: i64,
}

impl Record for NodeRecord {
    /// path, data and acl lengths, six longs, three ints.
    const MIN_LEN: usize = 3 * 4 + 6 * 8 + 3 * 4;

    fn write(&self, out: &mut Vec<u8>) {
        write_string(out, &self.path);
        write_nbuffer(out, &self.data);
        write_vec(out, &self.acl);
        for v in [self.czxid, self.mzxid, self.ctime, self.mtime] {
            write_i64(out, v);
        }
        for v in [self.version, self.cversion, self.aversion] {
            write_i32(out, v);
        }
        write_i64(out, self.ephemeral_owner);
        write_i64(out, self.pzxid);
    }

    fn read(r: &mut Reader<'_>) -> jute::Result<Self> {
        Ok(NodeRecord {
            path: r.read_string()?,
            data: r.read_nbuffer()?,
            acl: r.read_vec()?,
            czxid: r.read_i64()?,
            mzxid: r.read_i64()?,
            ctime: r.read_i64()?,
            mtime: r.read_i64()?,
            version: r.read_i32()?,
            cversion: r.read_i32()?,
            aversion: r.read_i32()?,
            ephemeral_owner: r.read_i64()?,
            pzxid: r.read_i64()?,
        })
    }
}

/// Everything a server needs to rebuild its state at `last_zxid`, before
/// replaying the log from there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotData {
    pub last_zxid: i64,
    /// `(session id, timeout ms)` of every live session.
    pub sessions: Vec<(i64, i32)>,
    pub nodes: Vec<NodeRecord>,
}

/// The file name (not path) of the snapshot at `zxid`.
pub fn snapshot_name(zxid: i64) -> String {
    zxid_name(SNAP_PREFIX, zxid)
}

/// Snapshot files in `dir` as `(zxid, path)`, oldest first.
pub fn list_snapshots(disk: &dyn Disk, dir: &str) -> Result<Vec<(i64, String)>> {
    list_zxid_files(disk, dir, SNAP_PREFIX)
}

/// Encodes a snapshot in the file format above (also usable as the payload
/// a leader streams to a learner for SNAP).
pub fn encode_snapshot(snap: &SnapshotData) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    write_i64(&mut out, snap.last_zxid);
    write_i32(&mut out, count(snap.sessions.len()));
    for &(id, timeout_ms) in &snap.sessions {
        write_i64(&mut out, id);
        write_i32(&mut out, timeout_ms);
    }
    write_i32(&mut out, count(snap.nodes.len()));
    for node in &snap.nodes {
        node.write(&mut out);
    }
    let crc = crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn count(n: usize) -> i32 {
    i32::try_from(n).expect("snapshot holds more than i32::MAX items")
}

/// Decodes and verifies a snapshot; `file` names it in errors.
pub fn decode_snapshot(file: &str, bytes: &[u8]) -> Result<SnapshotData> {
    let corrupt = |offset: usize, reason: String| StorageError::Corrupt {
        file: file.to_string(),
        offset: offset as u64,
        reason,
    };
    if bytes.len() < HEADER_LEN + CRC_LEN {
        return Err(corrupt(
            0,
            format!("too short for a snapshot ({} bytes)", bytes.len()),
        ));
    }
    if &bytes[..4] != MAGIC || bytes[4..8] != VERSION.to_be_bytes() {
        return Err(corrupt(
            0,
            "bad header (not a ZKSS version 1 snapshot)".into(),
        ));
    }
    let (covered, stored) = bytes.split_at(bytes.len() - CRC_LEN);
    if crc32c(covered).to_be_bytes() != stored {
        return Err(corrupt(covered.len(), "snapshot checksum mismatch".into()));
    }
    let mut r = Reader::new(&covered[HEADER_LEN..]);
    decode_body(&mut r).map_err(|e| {
        let offset = HEADER_LEN + r.position();
        corrupt(
            offset,
            format!("undecodable snapshot despite valid checksum: {e}"),
        )
    })
}

fn decode_body(r: &mut Reader<'_>) -> jute::Result<SnapshotData> {
    let last_zxid = r.read_i64()?;
    let n = r.read_i32()?;
    if n < 0 || n as usize > r.remaining() / 12 {
        return Err(JuteError::BadLength(n as i64));
    }
    let sessions = (0..n)
        .map(|_| Ok((r.read_i64()?, r.read_i32()?)))
        .collect::<jute::Result<_>>()?;
    let nodes = r.read_vec()?;
    r.finish()?;
    Ok(SnapshotData {
        last_zxid,
        sessions,
        nodes,
    })
}

/// Writes `snap` atomically as `<dir>/snapshot.<last_zxid>` (creating `dir`)
/// and returns its path.
pub fn write_snapshot(disk: &dyn Disk, dir: &str, snap: &SnapshotData) -> Result<String> {
    disk.create_dir_all(dir)
        .map_err(io_err("create_dir_all", dir))?;
    let path = join(dir, &snapshot_name(snap.last_zxid));
    disk.write_atomic(&path, &encode_snapshot(snap))
        .map_err(io_err("write", &path))?;
    Ok(path)
}

/// Reads and verifies one snapshot file, checking its name against its zxid.
pub(super) fn read_snapshot(disk: &dyn Disk, name_zxid: i64, path: &str) -> Result<SnapshotData> {
    let bytes = disk.read(path).map_err(io_err("read", path))?;
    let snap = decode_snapshot(path, &bytes)?;
    if snap.last_zxid != name_zxid {
        return Err(StorageError::Corrupt {
            file: path.to_string(),
            offset: HEADER_LEN as u64,
            reason: format!(
                "last zxid {:#x} does not match the file name",
                snap.last_zxid
            ),
        });
    }
    Ok(snap)
}

/// The snapshot [`latest_valid_snapshot`] chose.
#[derive(Debug)]
pub struct SnapshotLoad {
    pub path: String,
    pub data: SnapshotData,
    /// Newer snapshots that failed to verify (each a `Corrupt` error naming
    /// its file), newest first. The caller should log them.
    pub skipped: Vec<StorageError>,
}

/// The newest snapshot in `dir` that verifies, skipping (and reporting in
/// [`SnapshotLoad::skipped`]) newer ones that do not. `None` if there are no
/// snapshot files at all.
///
/// If snapshot files exist but none verifies, that is an error (the newest
/// one's): starting from an empty tree would silently lose whatever the
/// purged log files held.
pub fn latest_valid_snapshot(disk: &dyn Disk, dir: &str) -> Result<Option<SnapshotLoad>> {
    let mut skipped = Vec::new();
    for (zxid, path) in list_snapshots(disk, dir)?.into_iter().rev() {
        match read_snapshot(disk, zxid, &path) {
            Ok(data) => {
                return Ok(Some(SnapshotLoad {
                    path,
                    data,
                    skipped,
                }))
            }
            Err(e @ StorageError::Corrupt { .. }) => skipped.push(e),
            Err(e) => return Err(e),
        }
    }
    match skipped.into_iter().next() {
        None => Ok(None),
        Some(StorageError::Corrupt {
            file,
            offset,
            reason,
        }) => Err(StorageError::Corrupt {
            file,
            offset,
            reason: format!(
                "{reason}; no snapshot in {dir} verifies, refusing to start from an empty tree"
            ),
        }),
        Some(other) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::MemDisk;
    use proptest::prelude::*;

    const DIR: &str = "data";

    fn node(path: &str, zxid: i64) -> NodeRecord {
        NodeRecord {
            path: path.into(),
            data: (zxid % 2 == 0).then(|| vec![1, 2, 3]),
            acl: Acl::open(),
            czxid: zxid,
            mzxid: zxid + 1,
            ctime: 100,
            mtime: 200,
            version: 3,
            cversion: 4,
            aversion: 5,
            ephemeral_owner: 0x1234,
            pzxid: zxid + 2,
        }
    }

    fn snap(zxid: i64) -> SnapshotData {
        SnapshotData {
            last_zxid: zxid,
            sessions: vec![(0x100, 30_000), (0x101, 4_000)],
            nodes: vec![node("", 0), node("/a", zxid), node("/a/b", zxid + 7)],
        }
    }

    #[test]
    fn storage_snapshot_round_trips() {
        let disk = MemDisk::new();
        let path = write_snapshot(&disk, DIR, &snap(0x1_0000_0009)).unwrap();
        assert_eq!(path, "data/snapshot.0000000100000009");
        let load = latest_valid_snapshot(&disk, DIR).unwrap().unwrap();
        assert_eq!((load.path, load.data), (path, snap(0x1_0000_0009)));
        assert!(load.skipped.is_empty());
        let empty = SnapshotData::default();
        assert_eq!(
            decode_snapshot("x", &encode_snapshot(&empty)).unwrap(),
            empty
        );
    }

    #[test]
    fn storage_snapshot_missing_dir_has_none() {
        assert!(latest_valid_snapshot(&MemDisk::new(), DIR)
            .unwrap()
            .is_none());
    }

    #[test]
    fn storage_snapshot_checksum_failure_falls_back_to_older() {
        let disk = MemDisk::new();
        write_snapshot(&disk, DIR, &snap(10)).unwrap();
        write_snapshot(&disk, DIR, &snap(20)).unwrap();
        let newest = write_snapshot(&disk, DIR, &snap(30)).unwrap();
        let mut bytes = disk.read(&newest).unwrap();
        bytes[40] ^= 1;
        disk.write_atomic(&newest, &bytes).unwrap();
        // A truncated one in between is skipped too.
        let middle = join(DIR, &snapshot_name(20));
        let bytes = disk.read(&middle).unwrap();
        disk.write_atomic(&middle, &bytes[..bytes.len() / 2])
            .unwrap();

        let load = latest_valid_snapshot(&disk, DIR).unwrap().unwrap();
        assert_eq!(load.data, snap(10));
        let skipped: Vec<String> = load.skipped.iter().map(|e| e.to_string()).collect();
        assert_eq!(skipped.len(), 2);
        assert!(
            skipped[0].contains(&newest) && skipped[0].contains("checksum"),
            "{skipped:?}"
        );
        assert!(skipped[1].contains(&middle), "{skipped:?}");
    }

    #[test]
    fn storage_snapshot_misnamed_or_foreign_files() {
        let disk = MemDisk::new();
        disk.create_dir_all(DIR).unwrap();
        disk.write_atomic("data/snapshot.0000000000000005", &encode_snapshot(&snap(4)))
            .unwrap();
        disk.write_atomic("data/snapshot.0000000000000006", b"ZKSN\0\0\0\x02junkjunk")
            .unwrap();
        disk.write_atomic("data/snapshot.0000000000000007.tmp", b"x")
            .unwrap();
        // None verifies: an error naming the newest, not an empty start.
        let err = latest_valid_snapshot(&disk, DIR).unwrap_err().to_string();
        assert!(err.contains("snapshot.0000000000000006"), "{err}");
        assert!(
            err.contains("bad header") && err.contains("refusing"),
            "{err}"
        );
        disk.remove("data/snapshot.0000000000000006").unwrap();
        let err = latest_valid_snapshot(&disk, DIR).unwrap_err().to_string();
        assert!(err.contains("file name"), "{err}");
    }

    #[test]
    fn storage_snapshot_valid_crc_but_bad_body_is_corrupt() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&VERSION.to_be_bytes());
        write_i64(&mut bytes, 1);
        write_i32(&mut bytes, i32::MAX); // absurd session count
        let crc = crc32c(&bytes);
        bytes.extend_from_slice(&crc.to_be_bytes());
        let err = decode_snapshot("s", &bytes).unwrap_err().to_string();
        assert!(err.contains("undecodable"), "{err}");
    }

    proptest! {
        #[test]
        fn storage_snapshot_decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_snapshot("g", &bytes);
            let mut framed = MAGIC.to_vec();
            framed.extend_from_slice(&VERSION.to_be_bytes());
            framed.extend_from_slice(&bytes);
            let crc = crc32c(&framed);
            framed.extend_from_slice(&crc.to_be_bytes());
            let _ = decode_snapshot("g", &framed);
        }

        #[test]
        fn storage_snapshot_round_trip_any(
            zxid in any::<i64>(),
            sessions in proptest::collection::vec((any::<i64>(), any::<i32>()), 0..5),
            paths in proptest::collection::vec("/[a-z]{0,8}", 0..5),
        ) {
            let s = SnapshotData {
                last_zxid: zxid,
                sessions,
                nodes: paths.iter().enumerate().map(|(i, p)| node(p, i as i64)).collect(),
            };
            prop_assert_eq!(decode_snapshot("p", &encode_snapshot(&s)).unwrap(), s);
        }
    }
}
