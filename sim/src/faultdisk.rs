//! The server's disk in the simulator: a [`MemDisk`] (durable image plus
//! unsynced writes, kept by the driver so it survives the node being
//! killed) behind a switch that models power failing *during* an fsync.
//!
//! Once [`FaultDisk::arm_power_loss`] is called, the next `sync` or
//! `write_atomic` fails, and so does every operation after it, until
//! [`FaultDisk::reset`] (the machine is off). The server stops on the storage
//! error (as it must: it cannot know what reached the disk); the driver then
//! kills the node and crashes the disk, which drops or tears whatever was
//! appended since the last successful sync. Without that switch, a kill in
//! the simulator can only land *between* the server's synchronous disk
//! batches, where nothing is ever left unsynced.
//!
//! Invariants: while tripped, nothing reaches the underlying disk; clones
//! share both the disk and the switch.

use std::io;
use std::sync::{Arc, Mutex};
use zkcore::disk::{Disk, MemDisk};

#[derive(Debug, Default)]
struct Switch {
    armed: bool,
    tripped: bool,
    /// Sabotage for testing the testbed: `sync` reports success without
    /// making anything durable (a disk with a lying write cache).
    lying: bool,
    /// Every write and sync fails with an I/O error (a failing disk; the
    /// power stays on and nothing already written is lost).
    failing: bool,
}

#[derive(Debug, Clone, Default)]
pub struct FaultDisk {
    disk: MemDisk,
    switch: Arc<Mutex<Switch>>,
}

impl FaultDisk {
    pub fn new(disk: MemDisk) -> FaultDisk {
        FaultDisk {
            disk,
            switch: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Switch> {
        self.switch.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The underlying disk (for crashes and inspection).
    pub fn mem(&self) -> &MemDisk {
        &self.disk
    }

    /// Power fails during the next sync / atomic write.
    pub fn arm_power_loss(&self) {
        self.lock().armed = true;
    }

    /// Whether power has failed.
    pub fn tripped(&self) -> bool {
        self.lock().tripped
    }

    /// Power is back (call after the crash, before the restart).
    pub fn reset(&self) {
        let mut s = self.lock();
        s.armed = false;
        s.tripped = false;
    }

    /// Fail (true) or stop failing (false) every write and sync.
    pub fn set_failing(&self, on: bool) {
        self.lock().failing = on;
    }

    /// Make `sync` a silent no-op from now on (sabotage: the checkers must
    /// then find acknowledged writes lost in a crash).
    pub fn lie_about_sync(&self) {
        self.lock().lying = true;
    }

    /// Fail if power is off; trip if armed and this is a durability point.
    fn gate(&self, durability_point: bool) -> io::Result<()> {
        let mut s = self.lock();
        if s.armed && durability_point {
            s.tripped = true;
        }
        if s.tripped {
            return Err(io::Error::other("simulated power loss"));
        }
        Ok(())
    }

    /// Fail if the disk is failing (writes and syncs only).
    fn gate_write(&self, durability_point: bool) -> io::Result<()> {
        self.gate(durability_point)?;
        if self.lock().failing {
            return Err(io::Error::other("simulated disk I/O error"));
        }
        Ok(())
    }
}

impl Disk for FaultDisk {
    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        self.gate(false)?;
        self.disk.list(dir)
    }
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        self.gate(false)?;
        self.disk.read(path)
    }
    fn append(&self, path: &str, bytes: &[u8]) -> io::Result<()> {
        self.gate_write(false)?;
        self.disk.append(path, bytes)
    }
    fn sync(&self, path: &str) -> io::Result<()> {
        self.gate_write(true)?;
        if self.lock().lying {
            return Ok(());
        }
        self.disk.sync(path)
    }
    fn write_atomic(&self, path: &str, bytes: &[u8]) -> io::Result<()> {
        self.gate_write(true)?;
        self.disk.write_atomic(path, bytes)
    }
    fn truncate(&self, path: &str, len: u64) -> io::Result<()> {
        self.gate_write(false)?;
        self.disk.truncate(path, len)
    }
    fn remove(&self, path: &str) -> io::Result<()> {
        self.gate(true)?;
        self.disk.remove(path)
    }
    fn create_dir_all(&self, dir: &str) -> io::Result<()> {
        self.gate(true)?;
        self.disk.create_dir_all(dir)
    }
    fn exists(&self, path: &str) -> io::Result<bool> {
        self.gate(false)?;
        self.disk.exists(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_loss_trips_at_the_next_sync_and_tears_the_tail() {
        let d = FaultDisk::new(MemDisk::new());
        d.create_dir_all("log").unwrap();
        d.append("log/a", b"abc").unwrap();
        d.sync("log/a").unwrap();
        d.arm_power_loss();
        d.append("log/a", b"defg").unwrap();
        assert!(!d.tripped());
        assert!(d.sync("log/a").is_err());
        assert!(d.tripped());
        assert!(d.append("log/a", b"x").is_err());
        assert_eq!(d.mem().unsynced_bytes("log/a"), 4);
        d.mem().crash(Some(2));
        d.reset();
        assert_eq!(d.read("log/a").unwrap(), b"abcde");
    }
}
