//! [`FsDisk`]: the real [`Disk`], on `std::fs`, keeping the durability
//! contract documented on the trait.
//!
//! - `append` writes through an `O_APPEND` handle (cached, a few at a time);
//!   the data sits in the page cache until `sync`.
//! - `sync` is `fsync` of the file, plus `fsync` of its directory the first
//!   time (so a new file's directory entry survives a crash too).
//! - `write_atomic` writes `<name>.tmp`, fsyncs it, renames it over the
//!   target and fsyncs the directory.
//! - `remove` and `create_dir_all` fsync the directories they change.
//!
//! Paths are checked with [`zkcore::disk::components`], so nothing can
//! escape the root. Blocking calls: the shell runs them on the task that owns
//! the disk work, never on the event loop.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use zkcore::disk::{components, parent, Disk};

use crate::run::Dirs;

/// Open append handles kept at most; more are closed and reopened on demand.
const APPEND_HANDLES_MAX: usize = 8;
/// Files remembered as having a durable directory entry, at most.
const DURABLE_ENTRIES_MAX: usize = 1024;

#[derive(Default)]
struct Cache {
    appenders: BTreeMap<String, Arc<File>>,
    /// Files whose directory entry is known durable: their `sync` skips the
    /// directory fsync.
    durable_entries: BTreeSet<String>,
}

impl Cache {
    fn forget(&mut self, path: &str) {
        self.appenders.remove(path);
        self.durable_entries.remove(path);
    }
}

/// A [`Disk`] rooted at a directory of the real file system.
///
/// Invariants:
/// - every path used is `root` joined with components accepted by
///   [`components`];
/// - a cached append handle refers to the file currently at its path (it is
///   dropped whenever the path is replaced or removed);
/// - a path is in `durable_entries` only after its directory was fsynced
///   with the entry present, and leaves it when the file is removed.
pub struct FsDisk {
    root: PathBuf,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for FsDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsDisk").field("root", &self.root).finish()
    }
}

impl FsDisk {
    /// A disk rooted at `root`, which is created if missing.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<FsDisk> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        Ok(FsDisk {
            root,
            cache: Mutex::new(Cache::default()),
        })
    }

    /// A disk for zoo.cfg's `dataDir` and `dataLogDir`, rooted at their
    /// deepest common ancestor, and the `version-2` directories inside them
    /// (ZooKeeper's layout) as paths for that disk: snapshots and epoch
    /// files in `<dataDir>/version-2`, logs in `<dataLogDir>/version-2`.
    pub fn for_dirs(data_dir: &Path, data_log_dir: &Path) -> io::Result<(FsDisk, Dirs)> {
        fs::create_dir_all(data_dir)?;
        fs::create_dir_all(data_log_dir)?;
        let data = fs::canonicalize(data_dir)?;
        let log = fs::canonicalize(data_log_dir)?;
        let root = common_ancestor(&data, &log);
        let disk = FsDisk::new(&root)?;
        let dirs = Dirs {
            snap: relative(&root, &data.join("version-2"))?,
            log: relative(&root, &log.join("version-2"))?,
        };
        disk.create_dir_all(&dirs.snap)?;
        disk.create_dir_all(&dirs.log)?;
        Ok((disk, dirs))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn full(&self, path: &str) -> io::Result<PathBuf> {
        let mut full = self.root.clone();
        full.extend(components(path)?);
        Ok(full)
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn appender(&self, path: &str, full: &Path) -> io::Result<Arc<File>> {
        if let Some(f) = self.cache().appenders.get(path) {
            return Ok(f.clone());
        }
        let file = Arc::new(OpenOptions::new().create(true).append(true).open(full)?);
        let mut cache = self.cache();
        if cache.appenders.len() >= APPEND_HANDLES_MAX {
            cache.appenders.clear();
        }
        cache.appenders.insert(path.to_string(), file.clone());
        Ok(file)
    }

    /// fsync of `path`'s directory, recorded so later syncs can skip it.
    fn sync_entry(&self, path: &str) -> io::Result<()> {
        fsync_dir(&self.full(parent(path))?)?;
        let mut cache = self.cache();
        if cache.durable_entries.len() >= DURABLE_ENTRIES_MAX {
            cache.durable_entries.clear();
        }
        cache.durable_entries.insert(path.to_string());
        Ok(())
    }
}

/// fsync of a directory: makes the entries created, renamed or removed in
/// it durable.
fn fsync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn common_ancestor(a: &Path, b: &Path) -> PathBuf {
    a.components()
        .zip(b.components())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect()
}

/// `path` relative to `root` as a `/`-separated disk path.
fn relative(root: &Path, path: &Path) -> io::Result<String> {
    let rest = path.strip_prefix(root).map_err(|_| {
        invalid(format!(
            "{} is not under {}",
            path.display(),
            root.display()
        ))
    })?;
    let parts = rest
        .components()
        .map(|c| match c {
            Component::Normal(s) => s
                .to_str()
                .ok_or_else(|| invalid(format!("{} is not valid UTF-8", path.display()))),
            _ => Err(invalid(format!(
                "unexpected component in {}",
                path.display()
            ))),
        })
        .collect::<io::Result<Vec<&str>>>()?;
    Ok(parts.join("/"))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl Disk for FsDisk {
    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(self.full(dir)?)? {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                continue;
            }
            // Names that are not UTF-8 cannot be ours; skip them.
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        fs::read(self.full(path)?)
    }

    fn append(&self, path: &str, bytes: &[u8]) -> io::Result<()> {
        let full = self.full(path)?;
        let file = self.appender(path, &full)?;
        (&*file).write_all(bytes)
    }

    fn sync(&self, path: &str) -> io::Result<()> {
        let full = self.full(path)?;
        let cached = self.cache().appenders.get(path).cloned();
        match cached {
            Some(f) => f.sync_all()?,
            None => File::open(&full)?.sync_all()?,
        }
        if self.cache().durable_entries.contains(path) {
            return Ok(());
        }
        self.sync_entry(path)
    }

    fn write_atomic(&self, path: &str, bytes: &[u8]) -> io::Result<()> {
        let full = self.full(path)?;
        let mut tmp_name = full.clone().into_os_string();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &full)?;
        // The cached handle, if any, is the replaced inode.
        self.cache().forget(path);
        self.sync_entry(path)
    }

    fn truncate(&self, path: &str, len: u64) -> io::Result<()> {
        let full = self.full(path)?;
        let f = OpenOptions::new().write(true).open(&full)?;
        let size = f.metadata()?.len();
        if len > size {
            return Err(invalid(format!(
                "truncate {path:?} to {len} bytes: file has only {size}"
            )));
        }
        f.set_len(len)
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        let full = self.full(path)?;
        fs::remove_file(&full)?;
        self.cache().forget(path);
        fsync_dir(&self.full(parent(path))?)
    }

    fn create_dir_all(&self, dir: &str) -> io::Result<()> {
        let mut cur = self.root.clone();
        for part in components(dir)? {
            let parent_dir = cur.clone();
            cur.push(part);
            match fs::create_dir(&cur) {
                Ok(()) => fsync_dir(&parent_dir)?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && cur.is_dir() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn exists(&self, path: &str) -> io::Result<bool> {
        match fs::metadata(self.full(path)?) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zkcore::storage::{self, SnapshotData, TxnLog};

    /// A unique scratch directory, removed on drop (even if the test fails).
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("zk-fsdisk-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn fsdisk_keeps_the_disk_contract() {
        let scratch = Scratch::new("contract");
        let disk = FsDisk::new(&scratch.0).unwrap();
        disk.create_dir_all("a/b").unwrap();
        disk.create_dir_all("a/b").unwrap();
        assert!(disk.exists("a/b").unwrap());
        assert_eq!(
            disk.append("nope/x", b"1").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );

        disk.append("a/f2", b"abc").unwrap();
        disk.append("a/f2", b"def").unwrap();
        disk.sync("a/f2").unwrap();
        disk.sync("a/f2").unwrap();
        assert_eq!(disk.read("a/f2").unwrap(), b"abcdef");
        disk.write_atomic("a/f1", b"one").unwrap();
        // Listing: sorted, files only, no leftover tmp file.
        assert_eq!(disk.list("a").unwrap(), vec!["f1", "f2"]);

        disk.truncate("a/f2", 2).unwrap();
        disk.sync("a/f2").unwrap();
        assert_eq!(disk.read("a/f2").unwrap(), b"ab");
        assert_eq!(
            disk.truncate("a/f2", 9).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        disk.append("a/f2", b"Z").unwrap();
        assert_eq!(disk.read("a/f2").unwrap(), b"abZ");

        // Replacing a file that has a cached append handle, then appending.
        disk.write_atomic("a/f2", b"new").unwrap();
        disk.append("a/f2", b"+").unwrap();
        assert_eq!(disk.read("a/f2").unwrap(), b"new+");

        disk.remove("a/f2").unwrap();
        assert!(!disk.exists("a/f2").unwrap());
        assert_eq!(disk.list("a").unwrap(), vec!["f1"]);
        for bad in ["../escape", "/abs", "a//f1"] {
            assert_eq!(
                disk.read(bad).unwrap_err().kind(),
                io::ErrorKind::InvalidInput
            );
        }
        assert_eq!(disk.list("zz").unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn fsdisk_for_dirs_and_storage_end_to_end() {
        let scratch = Scratch::new("dirs");
        let (disk, dirs) =
            FsDisk::for_dirs(&scratch.0.join("data"), &scratch.0.join("logs")).unwrap();
        assert_eq!(disk.root(), fs::canonicalize(&scratch.0).unwrap());
        assert_eq!(
            (dirs.snap.as_str(), dirs.log.as_str()),
            ("data/version-2", "logs/version-2")
        );
        let disk: Arc<dyn Disk> = Arc::new(disk);

        let records: Vec<jute::TxnRecord> = (1..=20)
            .map(|zxid| {
                let txn = jute::Txn::CreateSession { timeout_ms: 4000 };
                jute::TxnRecord {
                    header: jute::TxnHeader {
                        session_id: zxid,
                        cxid: 0,
                        zxid,
                        time_ms: 0,
                        op: txn.op(),
                    },
                    txn,
                }
            })
            .collect();
        let mut log = TxnLog::open(disk.clone(), &dirs.log, 0)
            .unwrap()
            .with_file_bytes_max(200);
        log.append(&records).unwrap();
        log.sync().unwrap();
        assert!(storage::list_logs(&*disk, &dirs.log).unwrap().len() > 1);
        let replay = storage::read_log(&*disk, &dirs.log, 0).unwrap();
        assert_eq!(replay.records, records);

        let snap = SnapshotData {
            last_zxid: 20,
            ..SnapshotData::default()
        };
        storage::write_snapshot(&*disk, &dirs.snap, &snap).unwrap();
        let load = storage::latest_valid_snapshot(&*disk, &dirs.snap)
            .unwrap()
            .unwrap();
        assert_eq!(load.data, snap);

        let epoch = format!("{}/acceptedEpoch", dirs.snap);
        storage::write_epoch(&*disk, &epoch, 3).unwrap();
        assert_eq!(storage::read_epoch(&*disk, &epoch).unwrap(), Some(3));
        assert_eq!(
            fs::read_to_string(scratch.0.join("data/version-2/acceptedEpoch")).unwrap(),
            "3"
        );
    }

    #[test]
    fn fsdisk_common_ancestor_and_relative() {
        let root = common_ancestor(Path::new("/a/b/c"), Path::new("/a/b/d/e"));
        assert_eq!(root, Path::new("/a/b"));
        assert_eq!(relative(&root, Path::new("/a/b/d/e")).unwrap(), "d/e");
        assert_eq!(
            common_ancestor(Path::new("/x"), Path::new("/y")),
            Path::new("/")
        );
        assert_eq!(relative(Path::new("/a"), Path::new("/a")).unwrap(), "");
    }
}
