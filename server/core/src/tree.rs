//! The data tree: znodes, their stats, and the application of transactions.
//!
//! The tree is pure data (ZooKeeper's DataTree). It changes only by
//! [`DataTree::apply`], which takes a transaction that request preparation
//! already validated, so applying never fails for a live server. Applying a
//! prefix of the log twice gives the same tree as applying it once (a create
//! of an existing node or a delete of a missing one is skipped, counters only
//! move forward). Replaying an *older* transaction over a *later* tree is not
//! safe in general, which is why snapshots are taken consistently at exactly
//! their zxid and recovery replays only transactions after it.
//!
//! Stat rules (reference §2.3): `cversion` is stored as the number of child
//! creations ever made under the node; the client sees
//! `2 * stored - num_children`, which counts creates plus deletes. Container
//! and TTL nodes store a marker in `ephemeral_owner` and show 0 to clients.

use crate::path;
use jute::txn::{CONTAINER_OWNER, TTL_MARKER, TTL_MAX_MS};
use jute::{Acl, EventType, Stat, Txn, TxnHeader};
use std::collections::{BTreeMap, BTreeSet};

/// One znode.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    pub data: Option<Vec<u8>>,
    pub acl: Vec<Acl>,
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    /// Stored child-create counter (not the client-visible cversion).
    pub cversion: i32,
    pub aversion: i32,
    /// Stored owner: session id, [`CONTAINER_OWNER`], TTL encoding, or 0.
    pub ephemeral_owner: i64,
    pub pzxid: i64,
    pub children: BTreeSet<String>,
}

/// What kind of node a stored `ephemeral_owner` describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    Persistent,
    Session(i64),
    Container,
    Ttl(i64),
}

pub fn owner_kind(owner: i64) -> OwnerKind {
    if owner == 0 {
        OwnerKind::Persistent
    } else if owner == CONTAINER_OWNER {
        OwnerKind::Container
    } else if (owner as u64) >> 56 == 0xFF {
        OwnerKind::Ttl(owner & TTL_MAX_MS)
    } else {
        OwnerKind::Session(owner)
    }
}

pub fn ttl_owner(ttl_ms: i64) -> i64 {
    TTL_MARKER | (ttl_ms & TTL_MAX_MS)
}

impl Node {
    pub fn data_len(&self) -> i32 {
        self.data.as_ref().map_or(0, |d| d.len() as i32)
    }

    /// The stat a client sees.
    pub fn stat(&self) -> Stat {
        let n = self.children.len() as i32;
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion.wrapping_mul(2).wrapping_sub(n),
            aversion: self.aversion,
            ephemeral_owner: match owner_kind(self.ephemeral_owner) {
                OwnerKind::Session(s) => s,
                _ => 0,
            },
            data_length: self.data_len(),
            num_children: n,
            pzxid: self.pzxid,
        }
    }

    pub fn session_owner(&self) -> Option<i64> {
        match owner_kind(self.ephemeral_owner) {
            OwnerKind::Session(s) => Some(s),
            _ => None,
        }
    }
}

/// A change that may fire watches, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub path: String,
    pub event: EventType,
}

/// The data tree.
///
/// Invariants:
/// - `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config` exist.
/// - every node but `/` has its parent in `nodes`, and the parent's
///   `children` names exactly the nodes whose parent it is;
/// - `ephemerals[s]` is exactly the set of paths whose owner is session `s`;
///   `containers`/`ttls` likewise index container and TTL nodes;
/// - a node owned by a session has no children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataTree {
    nodes: BTreeMap<String, Node>,
    ephemerals: BTreeMap<i64, BTreeSet<String>>,
    containers: BTreeSet<String>,
    ttls: BTreeSet<String>,
    last_zxid: i64,
    /// Sum of every node's [`node_hash`], kept up to date on each change
    /// (ZooKeeper's incremental digest): [`DataTree::digest`] is O(1).
    digest: u64,
}

/// One node's contribution to the tree digest: FNV-1a over its path and a
/// canonical encoding of data, ACL, stat and owner, then mixed so that the
/// wrapping sum of many of them stays well spread.
fn node_hash(path: &str, n: &Node) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    let mut eat = |b: &[u8]| {
        for x in b {
            h ^= *x as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    };
    eat(path.as_bytes());
    let mut buf = Vec::new();
    jute::codec::write_nbuffer(&mut buf, &n.data);
    jute::codec::write_vec(&mut buf, &n.acl);
    jute::Record::write(&n.stat(), &mut buf);
    jute::codec::write_i64(&mut buf, n.ephemeral_owner);
    eat(&buf);
    // splitmix64 finalizer
    let mut z = h;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

/// System nodes hold empty (not null) data, as ZooKeeper's
/// `new DataNode(new byte[0], ...)`: clients read `b""`, not null.
fn system_node(acl: Vec<Acl>) -> Node {
    Node {
        data: Some(Vec::new()),
        acl,
        ..Node::default()
    }
}

impl DataTree {
    /// A fresh tree with the system nodes, stats as on a fresh ZooKeeper.
    pub fn new() -> DataTree {
        let mut nodes = BTreeMap::new();
        let mut root = system_node(Acl::open());
        root.children.insert("zookeeper".into());
        let mut zk = system_node(Acl::open());
        zk.children.insert("quota".into());
        zk.children.insert("config".into());
        let mut config = system_node(vec![Acl::new(jute::perms::READ, "world", "anyone")]);
        config.aversion = -1;
        nodes.insert("/".into(), root);
        nodes.insert("/zookeeper".into(), zk);
        nodes.insert("/zookeeper/quota".into(), system_node(Acl::open()));
        nodes.insert("/zookeeper/config".into(), config);
        let mut t = DataTree {
            nodes,
            ephemerals: BTreeMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            last_zxid: 0,
            digest: 0,
        };
        t.digest = t.full_digest();
        t
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Count of znodes as ZooKeeper reports it (its map holds the root twice).
    pub fn node_count(&self) -> usize {
        self.nodes.len() + 1
    }

    pub fn nodes(&self) -> impl Iterator<Item = (&String, &Node)> {
        self.nodes.iter()
    }

    pub fn ephemerals_of(&self, session: i64) -> impl Iterator<Item = &String> {
        self.ephemerals.get(&session).into_iter().flatten()
    }

    pub fn ephemerals(&self) -> &BTreeMap<i64, BTreeSet<String>> {
        &self.ephemerals
    }

    pub fn containers(&self) -> &BTreeSet<String> {
        &self.containers
    }

    pub fn ttls(&self) -> &BTreeSet<String> {
        &self.ttls
    }

    pub fn approximate_data_size(&self) -> u64 {
        self.nodes
            .iter()
            .map(|(p, n)| (p.len() + n.data_len() as usize) as u64)
            .sum()
    }

    /// Number of descendants of `path` (getAllChildrenNumber).
    pub fn descendant_count(&self, path: &str) -> usize {
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        self.nodes
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter(|(p, _)| p.as_str() != "/")
            .count()
    }

    /// Apply one transaction; returns the watch triggers it caused, in order.
    pub fn apply(&mut self, hdr: &TxnHeader, txn: &Txn) -> Vec<Trigger> {
        let mut out = Vec::new();
        self.apply_inner(hdr, txn, &mut out);
        if hdr.zxid > self.last_zxid {
            self.last_zxid = hdr.zxid;
        }
        out
    }

    fn apply_inner(&mut self, hdr: &TxnHeader, txn: &Txn, out: &mut Vec<Trigger>) {
        match txn {
            Txn::Create {
                path,
                data,
                acl,
                ephemeral_owner,
                parent_cversion,
            } => self.create(
                hdr,
                path,
                data,
                acl,
                *ephemeral_owner,
                *parent_cversion,
                out,
            ),
            Txn::Delete { path } | Txn::DeleteContainer { path } => {
                self.delete(path, hdr.zxid, out)
            }
            Txn::SetData {
                path,
                data,
                version,
            } => {
                self.unhash(path);
                if let Some(n) = self.nodes.get_mut(path) {
                    n.data = data.clone();
                    n.version = *version;
                    n.mzxid = hdr.zxid;
                    n.mtime = hdr.time_ms;
                    self.rehash(path);
                    out.push(Trigger {
                        path: path.clone(),
                        event: EventType::NodeDataChanged,
                    });
                }
            }
            Txn::SetAcl { path, acl, version } => {
                self.unhash(path);
                if let Some(n) = self.nodes.get_mut(path) {
                    n.acl = acl.clone();
                    n.aversion = *version;
                    self.rehash(path);
                }
            }
            Txn::CloseSession => {
                let paths: Vec<String> = self.ephemerals_of(hdr.session_id).cloned().collect();
                for p in paths {
                    self.delete(&p, hdr.zxid, out);
                }
            }
            Txn::Multi(txns) => {
                for t in txns {
                    self.apply_inner(hdr, t, out);
                }
            }
            Txn::Check { .. } | Txn::CreateSession { .. } | Txn::Error { .. } => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        hdr: &TxnHeader,
        path: &str,
        data: &Option<Vec<u8>>,
        acl: &[Acl],
        owner: i64,
        parent_cversion: i32,
        out: &mut Vec<Trigger>,
    ) {
        let Some(parent_path) = path::parent(path) else {
            return;
        };
        if self.nodes.contains_key(path) || !self.nodes.contains_key(parent_path) {
            return; // replay over a fuzzy snapshot, or no parent
        }
        self.unhash(parent_path);
        let parent = self.nodes.get_mut(parent_path).expect("checked");
        parent.children.insert(path::name(path).to_string());
        if parent_cversion > parent.cversion {
            parent.cversion = parent_cversion;
        }
        if hdr.zxid > parent.pzxid {
            parent.pzxid = hdr.zxid;
        }
        self.rehash(parent_path);
        let node = Node {
            data: data.clone(),
            acl: acl.to_vec(),
            czxid: hdr.zxid,
            mzxid: hdr.zxid,
            ctime: hdr.time_ms,
            mtime: hdr.time_ms,
            ephemeral_owner: owner,
            pzxid: hdr.zxid,
            ..Node::default()
        };
        self.index_owner(path, owner);
        self.nodes.insert(path.into(), node);
        self.rehash(path);
        out.push(Trigger {
            path: path.into(),
            event: EventType::NodeCreated,
        });
        out.push(Trigger {
            path: parent_path.into(),
            event: EventType::NodeChildrenChanged,
        });
    }

    /// Record a node in the ephemeral / container / TTL index its owner
    /// value puts it in.
    fn index_owner(&mut self, path: &str, owner: i64) {
        match owner_kind(owner) {
            OwnerKind::Session(s) => {
                self.ephemerals.entry(s).or_default().insert(path.into());
            }
            OwnerKind::Container => {
                self.containers.insert(path.into());
            }
            OwnerKind::Ttl(_) => {
                self.ttls.insert(path.into());
            }
            OwnerKind::Persistent => {}
        }
    }

    fn delete(&mut self, path: &str, zxid: i64, out: &mut Vec<Trigger>) {
        let Some(parent_path) = path::parent(path) else {
            return;
        };
        self.unhash(path);
        let Some(node) = self.nodes.remove(path) else {
            return;
        };
        match owner_kind(node.ephemeral_owner) {
            OwnerKind::Session(s) => {
                if let Some(set) = self.ephemerals.get_mut(&s) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&s);
                    }
                }
            }
            OwnerKind::Container => {
                self.containers.remove(path);
            }
            OwnerKind::Ttl(_) => {
                self.ttls.remove(path);
            }
            OwnerKind::Persistent => {}
        }
        self.unhash(parent_path);
        if let Some(parent) = self.nodes.get_mut(parent_path) {
            parent.children.remove(path::name(path));
            if zxid > parent.pzxid {
                parent.pzxid = zxid;
            }
        }
        self.rehash(parent_path);
        out.push(Trigger {
            path: path.into(),
            event: EventType::NodeDeleted,
        });
        out.push(Trigger {
            path: parent_path.into(),
            event: EventType::NodeChildrenChanged,
        });
    }

    /// Insert a node wholesale (snapshot loading). Parents must come first.
    pub fn insert_raw(&mut self, path: &str, node: Node) {
        let mut node = node;
        node.children.clear();
        if let Some(pp) = path::parent(path) {
            self.unhash(pp);
            if let Some(parent) = self.nodes.get_mut(pp) {
                parent.children.insert(path::name(path).into());
            }
            self.rehash(pp);
        } else {
            // The root: keep the existing children (system nodes).
            node.children = self
                .nodes
                .get("/")
                .map(|r| r.children.clone())
                .unwrap_or_default();
        }
        self.index_owner(path, node.ephemeral_owner);
        if let Some(existing) = self.nodes.get(path) {
            node.children = existing.children.clone();
        }
        self.unhash(path);
        self.nodes.insert(path.into(), node);
        self.rehash(path);
    }

    fn unhash(&mut self, path: &str) {
        if let Some(n) = self.nodes.get(path) {
            self.digest = self.digest.wrapping_sub(node_hash(path, n));
        }
    }

    fn rehash(&mut self, path: &str) {
        if let Some(n) = self.nodes.get(path) {
            self.digest = self.digest.wrapping_add(node_hash(path, n));
        }
    }

    pub fn set_last_zxid(&mut self, zxid: i64) {
        self.last_zxid = zxid;
    }

    /// A digest of the whole tree (paths, data, stats, ACLs), for replica
    /// agreement checks: the sum of every node's hash, maintained
    /// incrementally, so it costs nothing to ask after every transaction.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// The digest recomputed from scratch (what [`DataTree::validate`]
    /// compares the incremental one with).
    pub fn full_digest(&self) -> u64 {
        self.nodes
            .iter()
            .fold(0u64, |acc, (p, n)| acc.wrapping_add(node_hash(p, n)))
    }

    /// Check every invariant; panics with a description on violation.
    pub fn validate(&self) {
        assert_eq!(
            self.digest,
            self.full_digest(),
            "incremental digest drifted"
        );
        for sys in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
            assert!(self.nodes.contains_key(sys), "system node {sys} missing");
        }
        let mut eph: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
        let mut containers = BTreeSet::new();
        let mut ttls = BTreeSet::new();
        for (p, n) in &self.nodes {
            for c in &n.children {
                let cp = path::join(p, c);
                assert!(self.nodes.contains_key(&cp), "{p} lists missing child {c}");
            }
            match owner_kind(n.ephemeral_owner) {
                OwnerKind::Session(s) => {
                    assert!(n.children.is_empty(), "ephemeral {p} has children");
                    eph.entry(s).or_default().insert(p.clone());
                }
                OwnerKind::Container => {
                    containers.insert(p.clone());
                }
                OwnerKind::Ttl(_) => {
                    ttls.insert(p.clone());
                }
                OwnerKind::Persistent => {}
            }
            if p == "/" {
                continue;
            }
            let pp = path::parent(p).expect("non-root has a parent");
            let parent = self
                .nodes
                .get(pp)
                .unwrap_or_else(|| panic!("{p}: parent missing"));
            assert!(
                parent.children.contains(path::name(p)),
                "{pp} does not list child {p}"
            );
        }
        assert_eq!(eph, self.ephemerals, "ephemeral index out of sync");
        assert_eq!(containers, self.containers, "container index out of sync");
        assert_eq!(ttls, self.ttls, "ttl index out of sync");
    }
}
