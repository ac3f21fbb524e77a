//! The ZAB epoch files `acceptedEpoch` and `currentEpoch`: one decimal
//! number each (as ZooKeeper writes them), replaced atomically so a crash
//! leaves the old value or the new one, never neither.
//!
//! The core decides when they are written: acceptedEpoch before ACKEPOCH,
//! currentEpoch before the ACK of NEWLEADER.

use std::io;

use super::{io_err, Result, StorageError};
use crate::disk::{parent, Disk};

/// Largest epoch file accepted; the longest u64 is 20 digits.
const EPOCH_BYTES_MAX: usize = 64;

/// The epoch stored at `path`, or `None` if the file does not exist.
/// Surrounding whitespace is allowed; anything else is corruption.
pub fn read_epoch(disk: &dyn Disk, path: &str) -> Result<Option<u64>> {
    let bytes = match disk.read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", path)(e)),
    };
    let parsed = (bytes.len() <= EPOCH_BYTES_MAX)
        .then(|| std::str::from_utf8(&bytes).ok())
        .flatten()
        .map(str::trim)
        .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok());
    match parsed {
        Some(epoch) => Ok(Some(epoch)),
        None => Err(StorageError::Corrupt {
            file: path.to_string(),
            offset: 0,
            reason: format!(
                "not a decimal epoch: {:?}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(EPOCH_BYTES_MAX)])
            ),
        }),
    }
}

/// Durably replaces the epoch at `path` (creating its directory).
pub fn write_epoch(disk: &dyn Disk, path: &str, epoch: u64) -> Result<()> {
    let dir = parent(path);
    disk.create_dir_all(dir)
        .map_err(io_err("create_dir_all", dir))?;
    disk.write_atomic(path, epoch.to_string().as_bytes())
        .map_err(io_err("write", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::MemDisk;

    const PATH: &str = "data/version-2/acceptedEpoch";

    #[test]
    fn storage_epoch_round_trips_and_survives_crash() {
        let disk = MemDisk::new();
        assert_eq!(read_epoch(&disk, PATH).unwrap(), None);
        write_epoch(&disk, PATH, 1).unwrap();
        write_epoch(&disk, PATH, u64::MAX).unwrap();
        disk.crash(None);
        assert_eq!(disk.read(PATH).unwrap(), u64::MAX.to_string().as_bytes());
        assert_eq!(read_epoch(&disk, PATH).unwrap(), Some(u64::MAX));
    }

    #[test]
    fn storage_epoch_accepts_whitespace_rejects_garbage() {
        let disk = MemDisk::new();
        disk.create_dir_all("data/version-2").unwrap();
        disk.write_atomic(PATH, b"7\n").unwrap();
        assert_eq!(read_epoch(&disk, PATH).unwrap(), Some(7));
        for bad in [
            &b""[..],
            b"-1",
            b"+3",
            b"1 2",
            b"x",
            b"99999999999999999999999",
            &[0xff],
        ] {
            disk.write_atomic(PATH, bad).unwrap();
            let err = read_epoch(&disk, PATH).unwrap_err().to_string();
            assert!(
                err.contains(PATH) && err.contains("not a decimal epoch"),
                "{err}"
            );
        }
    }
}
