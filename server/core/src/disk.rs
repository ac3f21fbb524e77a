//! The disk the server persists to, as a trait with an explicit durability
//! contract, and [`MemDisk`], an in-memory model of that contract with crashes.
//!
//! ZooKeeper's safety rests on a few durability facts: a follower ACKs a
//! proposal only after it is on disk, the epoch files are replaced
//! atomically, and recovery never invents or reorders data. Real file systems
//! keep those facts only if the code calls `fsync` on the right file *and*
//! directory at the right time, and the simulator cannot check that unless
//! the disk is a model it controls. So everything that persists goes through
//! [`Disk`], whose contract is small and exact:
//!
//! - Data reaches durability only through [`Disk::sync`] (for appends and
//!   truncations), [`Disk::write_atomic`], [`Disk::remove`] and
//!   [`Disk::create_dir_all`] (which are durable when they return).
//! - A crash may lose anything appended to or truncated from a file since the
//!   last `sync` of that file, and may *tear* an unsynced appended tail:
//!   any prefix of it may survive. A file that was never synced (or written
//!   atomically) may vanish entirely.
//!
//! [`MemDisk`] implements exactly that and no more, deterministically, so the
//! simulator can crash a node at any point and the storage tests can check
//! recovery against every possible torn write. The real implementation is
//! `zkserver::fsdisk::FsDisk` in the shell crate.
//!
//! Paths are relative to a root the implementation owns and use `/` between
//! components; see [`components`] for what is accepted.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

/// A blocking, durable file store rooted at a directory the implementation
/// owns. Object safe; shared between tasks, hence `Send + Sync`.
///
/// Contract (every implementation must keep it; [`MemDisk`] models it):
///
/// - `list(dir)`: names of the regular files directly in `dir`, sorted
///   bytewise. Subdirectories are not listed. `NotFound` if `dir` is missing.
/// - `read(path)`: the file's current contents. `NotFound` if missing.
/// - `append(path, bytes)`: appends, creating the file if missing (its
///   directory must exist, else `NotFound`). **Not durable** until
///   [`sync`](Disk::sync).
/// - `sync(path)`: makes the file's current contents *and* its directory
///   entry durable (fsync of the file and of its directory).
/// - `write_atomic(path, bytes)`: durably replaces the whole file: after a
///   crash the file holds either the old or the new contents, never a mix;
///   when the call returns the new contents are durable.
/// - `truncate(path, len)`: shortens the file to `len` bytes (`len` larger
///   than the file is `InvalidInput`). Durable after `sync`.
/// - `remove(path)`: deletes the file; durable when it returns.
/// - `create_dir_all(dir)`: creates `dir` and missing ancestors; durable when
///   it returns.
/// - `exists(path)`: whether a file or directory exists at `path`.
///
/// Crashes: anything appended or truncated since the last `sync` of a file
/// may be lost; an unsynced appended tail may be torn (any prefix of it
/// survives); a file never synced nor written atomically may vanish.
///
/// Errors are `std::io::Error`; a path rejected by [`components`] is
/// `InvalidInput`.
pub trait Disk: Send + Sync {
    fn list(&self, dir: &str) -> io::Result<Vec<String>>;
    fn read(&self, path: &str) -> io::Result<Vec<u8>>;
    fn append(&self, path: &str, bytes: &[u8]) -> io::Result<()>;
    fn sync(&self, path: &str) -> io::Result<()>;
    fn write_atomic(&self, path: &str, bytes: &[u8]) -> io::Result<()>;
    fn truncate(&self, path: &str, len: u64) -> io::Result<()>;
    fn remove(&self, path: &str) -> io::Result<()>;
    fn create_dir_all(&self, dir: &str) -> io::Result<()>;
    fn exists(&self, path: &str) -> io::Result<bool>;
}

/// Splits a relative path into its components, rejecting anything that could
/// escape the root or that two implementations might read differently:
/// a leading `/`, empty components (`a//b`, trailing `/`), `.`, `..`, `\` and
/// NUL. The empty path is the root itself and has no components.
pub fn components(path: &str) -> io::Result<Vec<&str>> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = path.split('/').collect();
    let bad = parts
        .iter()
        .any(|c| c.is_empty() || *c == "." || *c == ".." || c.contains(['\\', '\0']));
    if bad {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "invalid disk path {path:?}: must be relative, '/'-separated, without '.' or '..'"
            ),
        ));
    }
    Ok(parts)
}

/// The directory part of a valid path (`""` for a file in the root).
pub fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

fn not_found(what: &str, path: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{what} {path:?} not found"),
    )
}

/// One file of a [`MemDisk`].
#[derive(Debug, Clone, Default)]
struct MemFile {
    /// What reads see.
    current: Vec<u8>,
    /// What survives a crash; `None` while the directory entry is not durable.
    durable: Option<Vec<u8>>,
    /// `durable` is a prefix of `current` (appends keep it so; a truncation
    /// below it breaks it until the next sync), so a sync only has to copy
    /// the new tail instead of the whole file.
    prefix: bool,
}

impl MemFile {
    /// The bytes appended since the last sync, if the file has only grown
    /// since then (a truncation since the sync leaves nothing to tear).
    fn unsynced_tail(&self) -> Option<&[u8]> {
        let durable = self.durable.as_ref()?;
        self.current
            .strip_prefix(durable.as_slice())
            .filter(|tail| !tail.is_empty())
    }
}

#[derive(Debug, Default)]
struct MemState {
    /// Directories (always durable). The root `""` is implicit.
    dirs: BTreeSet<String>,
    files: BTreeMap<String, MemFile>,
    stats: MemDiskStats,
}

impl MemState {
    fn dir_exists(&self, dir: &str) -> bool {
        dir.is_empty() || self.dirs.contains(dir)
    }

    fn file_mut(&mut self, path: &str) -> io::Result<&mut MemFile> {
        self.files
            .get_mut(path)
            .ok_or_else(|| not_found("file", path))
    }

    fn crash(&mut self, keep: &mut dyn FnMut(&str, usize) -> usize) {
        let files = std::mem::take(&mut self.files);
        for (path, file) in files {
            let Some(durable) = &file.durable else {
                continue;
            };
            let mut image = durable.clone();
            if let Some(tail) = file.unsynced_tail() {
                let n = keep(&path, tail.len()).min(tail.len());
                image.extend_from_slice(&tail[..n]);
            }
            let survivor = MemFile {
                current: image.clone(),
                durable: Some(image),
                prefix: true,
            };
            self.files.insert(path, survivor);
        }
    }
}

/// Operation counters of a [`MemDisk`], for tests that check how often the
/// code syncs (group commit: one sync per batch, not per record).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemDiskStats {
    pub appends: u64,
    pub bytes_appended: u64,
    pub syncs: u64,
    pub atomic_writes: u64,
}

/// An in-memory [`Disk`] that models crashes. Cloning shares the state, so
/// the simulator can keep a clone outside a node, [`crash`](MemDisk::crash)
/// it when the node is killed, and hand it to the restarted node.
///
/// Each file has a current image (what reads see) and a durable image (what
/// a crash leaves). `sync` copies current to durable; a crash resets every
/// file to its durable image, optionally keeping a prefix of the unsynced
/// appended tail (a torn write), and drops files that were never made
/// durable. Everything is kept in `BTreeMap`s: deterministic.
///
/// Invariants:
/// - every file's directory exists (directories are never removed);
/// - a file whose `durable` image is `None` has never been synced or written
///   atomically since it was created;
/// - after a crash, `current == durable` for every surviving file.
#[derive(Debug, Clone, Default)]
pub struct MemDisk {
    state: Arc<Mutex<MemState>>,
}

impl MemDisk {
    pub fn new() -> MemDisk {
        MemDisk::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemState> {
        // A panic elsewhere while holding the lock leaves consistent maps;
        // the test that panicked reports the real failure.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Crash: every file reverts to its durable image. With `Some(n)`, each
    /// file keeps the first `n` bytes of its unsynced appended tail (a torn
    /// write); `None` keeps none of it. Files never made durable vanish.
    pub fn crash(&self, tear: Option<usize>) {
        let n = tear.unwrap_or(0);
        self.crash_with(&mut |_, tail_len| n.min(tail_len));
    }

    /// Crash, choosing per file how many bytes of its unsynced appended tail
    /// survive: `keep(path, tail_len)` (clamped to `tail_len`). Called in
    /// path order, only for files with such a tail, so a seeded RNG in the
    /// closure gives reproducible tears.
    pub fn crash_with(&self, keep: &mut dyn FnMut(&str, usize) -> usize) {
        self.lock().crash(keep);
    }

    /// Counters of the operations performed so far.
    pub fn stats(&self) -> MemDiskStats {
        self.lock().stats
    }

    /// Bytes appended to `path` since its last sync that a crash could lose.
    pub fn unsynced_bytes(&self, path: &str) -> usize {
        let state = self.lock();
        state.files.get(path).map_or(0, |f| match &f.durable {
            Some(_) => f.unsynced_tail().map_or(0, <[u8]>::len),
            None => f.current.len(),
        })
    }
}

impl Disk for MemDisk {
    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        components(dir)?;
        let state = self.lock();
        if !state.dir_exists(dir) {
            return Err(not_found("directory", dir));
        }
        // BTreeMap order is bytewise order of the full path; names in one
        // directory share the prefix, so they come out sorted.
        let names = state
            .files
            .keys()
            .filter(|p| parent(p) == dir)
            .map(|p| p.rsplit('/').next().unwrap_or(p).to_string())
            .collect();
        Ok(names)
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        components(path)?;
        let state = self.lock();
        let file = state
            .files
            .get(path)
            .ok_or_else(|| not_found("file", path))?;
        Ok(file.current.clone())
    }

    fn append(&self, path: &str, bytes: &[u8]) -> io::Result<()> {
        components(path)?;
        let mut state = self.lock();
        if !state.dir_exists(parent(path)) {
            return Err(not_found("directory", parent(path)));
        }
        if state.dirs.contains(path) {
            return Err(io::Error::other(format!("{path:?} is a directory")));
        }
        state.stats.appends += 1;
        state.stats.bytes_appended += bytes.len() as u64;
        let file = state.files.entry(path.to_string()).or_default();
        file.current.extend_from_slice(bytes);
        Ok(())
    }

    fn sync(&self, path: &str) -> io::Result<()> {
        components(path)?;
        let mut state = self.lock();
        state.stats.syncs += 1;
        let file = state.file_mut(path)?;
        match (&mut file.durable, file.prefix) {
            (Some(d), true) => {
                let n = d.len();
                d.extend_from_slice(&file.current[n..]);
            }
            _ => {
                file.durable = Some(file.current.clone());
                file.prefix = true;
            }
        }
        Ok(())
    }

    fn write_atomic(&self, path: &str, bytes: &[u8]) -> io::Result<()> {
        components(path)?;
        let mut state = self.lock();
        if !state.dir_exists(parent(path)) {
            return Err(not_found("directory", parent(path)));
        }
        state.stats.atomic_writes += 1;
        let file = MemFile {
            current: bytes.to_vec(),
            durable: Some(bytes.to_vec()),
            prefix: true,
        };
        state.files.insert(path.to_string(), file);
        Ok(())
    }

    fn truncate(&self, path: &str, len: u64) -> io::Result<()> {
        components(path)?;
        let mut state = self.lock();
        let file = state.file_mut(path)?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > file.current.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "truncate {path:?} to {len} bytes: file has only {}",
                    file.current.len()
                ),
            ));
        }
        file.current.truncate(len);
        if file.durable.as_ref().is_some_and(|d| d.len() > len) {
            file.prefix = false;
        }
        Ok(())
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        components(path)?;
        let mut state = self.lock();
        match state.files.remove(path) {
            Some(_) => Ok(()),
            None => Err(not_found("file", path)),
        }
    }

    fn create_dir_all(&self, dir: &str) -> io::Result<()> {
        let parts = components(dir)?;
        let mut state = self.lock();
        let mut prefix = String::new();
        for part in parts {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            if state.files.contains_key(&prefix) {
                return Err(io::Error::other(format!("{prefix:?} is a file")));
            }
            state.dirs.insert(prefix.clone());
        }
        Ok(())
    }

    fn exists(&self, path: &str) -> io::Result<bool> {
        components(path)?;
        let state = self.lock();
        Ok(state.dir_exists(path) || state.files.contains_key(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk() -> MemDisk {
        let d = MemDisk::new();
        d.create_dir_all("log").unwrap();
        d
    }

    #[test]
    fn unsynced_new_file_vanishes_on_crash() {
        let d = disk();
        d.append("log/a", b"hello").unwrap();
        assert_eq!(d.unsynced_bytes("log/a"), 5);
        d.crash(Some(3));
        assert!(!d.exists("log/a").unwrap());
        assert_eq!(d.list("log").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn crash_keeps_synced_prefix_and_drops_tail() {
        let d = disk();
        d.append("log/a", b"abc").unwrap();
        d.sync("log/a").unwrap();
        d.append("log/a", b"defgh").unwrap();
        assert_eq!(d.read("log/a").unwrap(), b"abcdefgh");
        d.crash(None);
        assert_eq!(d.read("log/a").unwrap(), b"abc");
        assert_eq!(d.unsynced_bytes("log/a"), 0);
    }

    #[test]
    fn torn_crash_keeps_a_prefix_of_the_tail() {
        let d = disk();
        d.append("log/a", b"abc").unwrap();
        d.sync("log/a").unwrap();
        d.append("log/a", b"defgh").unwrap();
        d.crash(Some(2));
        assert_eq!(d.read("log/a").unwrap(), b"abcde");
        // What survived a crash is durable: a second crash keeps it.
        d.crash(None);
        assert_eq!(d.read("log/a").unwrap(), b"abcde");
        // Tear larger than the tail keeps the whole tail.
        d.append("log/a", b"xy").unwrap();
        d.crash(Some(100));
        assert_eq!(d.read("log/a").unwrap(), b"abcdexy");
    }

    #[test]
    fn crash_with_chooses_per_file() {
        let d = disk();
        for p in ["log/a", "log/b"] {
            d.append(p, b"0").unwrap();
            d.sync(p).unwrap();
            d.append(p, b"1234").unwrap();
        }
        let mut seen = Vec::new();
        d.crash_with(&mut |p, n| {
            seen.push((p.to_string(), n));
            if p == "log/a" {
                1
            } else {
                9
            }
        });
        assert_eq!(seen, vec![("log/a".into(), 4), ("log/b".into(), 4)]);
        assert_eq!(d.read("log/a").unwrap(), b"01");
        assert_eq!(d.read("log/b").unwrap(), b"01234");
    }

    #[test]
    fn truncate_is_durable_only_after_sync() {
        let d = disk();
        d.append("log/a", b"abcdef").unwrap();
        d.sync("log/a").unwrap();
        d.truncate("log/a", 2).unwrap();
        assert_eq!(d.read("log/a").unwrap(), b"ab");
        // Truncated then regrown: no tail of the durable image to tear.
        d.append("log/a", b"zz").unwrap();
        d.crash(Some(10));
        assert_eq!(d.read("log/a").unwrap(), b"abcdef");
        d.truncate("log/a", 2).unwrap();
        d.sync("log/a").unwrap();
        d.crash(None);
        assert_eq!(d.read("log/a").unwrap(), b"ab");
        assert_eq!(
            d.truncate("log/a", 3).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn write_atomic_and_remove_are_durable() {
        let d = disk();
        d.write_atomic("log/e", b"1").unwrap();
        d.append("log/a", b"x").unwrap();
        d.sync("log/a").unwrap();
        d.remove("log/a").unwrap();
        d.crash(None);
        assert_eq!(d.read("log/e").unwrap(), b"1");
        assert!(!d.exists("log/a").unwrap());
        assert_eq!(
            d.remove("log/a").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn list_is_sorted_and_excludes_subdirectories() {
        let d = disk();
        d.create_dir_all("log/sub/deeper").unwrap();
        for p in ["log/c", "log/a", "log/b", "log/sub/x", "top"] {
            d.write_atomic(p, b"").unwrap();
        }
        assert_eq!(d.list("log").unwrap(), vec!["a", "b", "c"]);
        assert_eq!(d.list("").unwrap(), vec!["top"]);
        assert_eq!(d.list("log/sub").unwrap(), vec!["x"]);
        assert!(d.exists("log/sub/deeper").unwrap());
        assert_eq!(d.list("nope").unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn missing_directory_and_bad_paths_are_errors() {
        let d = disk();
        assert_eq!(
            d.append("snap/x", b"1").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(d.read("log/x").unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(d.sync("log/x").unwrap_err().kind(), io::ErrorKind::NotFound);
        for bad in ["/abs", "a/../b", "a//b", "a/", "./a", "a\\b"] {
            assert_eq!(
                d.append(bad, b"1").unwrap_err().kind(),
                io::ErrorKind::InvalidInput,
                "{bad}"
            );
        }
    }

    #[test]
    fn clones_share_state_and_stats_count() {
        let d = disk();
        let other = d.clone();
        other.append("log/a", b"abc").unwrap();
        other.append("log/a", b"de").unwrap();
        other.sync("log/a").unwrap();
        assert_eq!(d.read("log/a").unwrap(), b"abcde");
        let s = d.stats();
        assert_eq!((s.appends, s.bytes_appended, s.syncs), (2, 5, 1));
    }

    #[test]
    fn usable_as_trait_object() {
        let d: Arc<dyn Disk> = Arc::new(disk());
        d.append("log/a", b"1").unwrap();
        assert!(d.exists("log/a").unwrap());
    }
}
