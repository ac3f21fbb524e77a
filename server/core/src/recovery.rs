//! Start-up recovery: newest valid snapshot, then the log after it.
//!
//! Snapshots are consistent (taken between two applied transactions), and
//! applying a transaction is idempotent, so replaying records the snapshot
//! already contains is harmless. Session state is rebuilt from the snapshot's
//! session table plus the createSession/closeSession transactions replayed.

use crate::disk::Disk;
use crate::storage::{self, NodeRecord, StorageError, TornTail};
use crate::tree::{DataTree, Node};
use jute::Txn;
use std::collections::BTreeMap;

/// What a server starts from.
#[derive(Debug)]
pub struct Recovered {
    pub tree: DataTree,
    /// Live sessions: (id, timeout ms).
    pub sessions: Vec<(i64, i32)>,
    pub snapshot_zxid: Option<i64>,
    pub replayed: usize,
    pub torn: Option<TornTail>,
    /// ZAB epoch files (absent on a server that never joined an ensemble).
    pub accepted_epoch: Option<u64>,
    pub current_epoch: Option<u64>,
    /// The replayed transactions (the newest `crate::zab::HISTORY_MAX`),
    /// which ZAB keeps for DIFF sync, and the zxid they start after.
    pub tail: Vec<jute::TxnRecord>,
    pub tail_base: i64,
}

pub const ACCEPTED_EPOCH: &str = "acceptedEpoch";
pub const CURRENT_EPOCH: &str = "currentEpoch";

/// Build a tree from snapshot node records (parents come before children).
pub fn tree_from_records(nodes: &[NodeRecord], last_zxid: i64) -> DataTree {
    let mut tree = DataTree::new();
    for r in nodes {
        tree.insert_raw(
            &r.path,
            Node {
                data: r.data.clone(),
                acl: r.acl.clone(),
                czxid: r.czxid,
                mzxid: r.mzxid,
                ctime: r.ctime,
                mtime: r.mtime,
                version: r.version,
                cversion: r.cversion,
                aversion: r.aversion,
                ephemeral_owner: r.ephemeral_owner,
                pzxid: r.pzxid,
                children: Default::default(),
            },
        );
    }
    tree.set_last_zxid(last_zxid);
    tree
}

pub fn recover(disk: &dyn Disk, snap_dir: &str, log_dir: &str) -> Result<Recovered, StorageError> {
    let accepted_epoch = storage::read_epoch(disk, &format!("{snap_dir}/{ACCEPTED_EPOCH}"))?;
    let current_epoch = storage::read_epoch(disk, &format!("{snap_dir}/{CURRENT_EPOCH}"))?;
    let snap = storage::latest_valid_snapshot(disk, snap_dir)?;
    let (mut tree, mut sessions, snapshot_zxid) = match snap {
        Some(load) => {
            let d = load.data;
            let tree = tree_from_records(&d.nodes, d.last_zxid);
            let sessions: BTreeMap<i64, i32> = d.sessions.iter().copied().collect();
            (tree, sessions, Some(d.last_zxid))
        }
        None => (DataTree::new(), BTreeMap::new(), None),
    };
    let replay = storage::read_log(disk, log_dir, snapshot_zxid.unwrap_or(0))?;
    let replayed = replay.records.len();
    if replay.torn.is_some() {
        crate::cover::hit(crate::cover::Mark::TornLogTail);
    }
    for r in &replay.records {
        tree.apply(&r.header, &r.txn);
        match r.txn {
            Txn::CreateSession { timeout_ms } => {
                sessions.insert(r.header.session_id, timeout_ms);
            }
            Txn::CloseSession => {
                sessions.remove(&r.header.session_id);
            }
            _ => {}
        }
    }
    let mut tail_base = snapshot_zxid.unwrap_or(0);
    let mut records = replay.records;
    if records.len() > crate::zab::HISTORY_MAX {
        let cut = records.len() - crate::zab::HISTORY_MAX;
        tail_base = records[cut - 1].header.zxid;
        records.drain(..cut);
    }
    Ok(Recovered {
        tail: records,
        tail_base,
        tree,
        sessions: sessions.into_iter().collect(),
        snapshot_zxid,
        replayed,
        torn: replay.torn,
        accepted_epoch,
        current_epoch,
    })
}
