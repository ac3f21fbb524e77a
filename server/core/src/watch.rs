//! Watches (WatchManager): which connections want which events.
//!
//! Two tables map a path to the connections watching it and each watch's
//! mode. The *data* table is filled by getData/exists (exists registers even
//! on a missing node); the *child* table by getChildren. `addWatch` registers
//! in both tables with a persistent mode. One mode per (connection, path,
//! table): a later registration overwrites it.
//!
//! Firing rules (reference §2.4): NodeCreated / NodeDataChanged go to the data
//! table at the node; NodeDeleted to both tables at the node; NodeChildrenChanged
//! to the child table at the parent (never to persistent-recursive watches).
//! Persistent-recursive watches on any ancestor receive the node's
//! Created/Deleted/DataChanged events. A connection receives at most one event
//! per trigger. Standard (one-shot) watches are removed when they fire;
//! persistent ones stay until removed or the connection closes.

use crate::path;
use crate::ConnId;
use jute::EventType;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WatchMode {
    Standard,
    Persistent,
    PersistentRecursive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Data,
    Child,
}

type PathTable = BTreeMap<String, BTreeMap<ConnId, WatchMode>>;

/// Watch registrations of all connections.
///
/// Invariants:
/// - `by_conn` is exactly the inverse of the two tables;
/// - no table entry has an empty connection map;
/// - `recursive` counts registrations with mode PersistentRecursive.
#[derive(Debug, Default, Clone)]
pub struct WatchManager {
    data: PathTable,
    child: PathTable,
    by_conn: BTreeMap<ConnId, BTreeSet<(String, bool)>>,
    recursive: usize,
}

impl WatchManager {
    fn table(&mut self, t: Table) -> &mut PathTable {
        match t {
            Table::Data => &mut self.data,
            Table::Child => &mut self.child,
        }
    }

    pub fn add(&mut self, conn: ConnId, path: &str, table: Table, mode: WatchMode) {
        let old = self
            .table(table)
            .entry(path.to_string())
            .or_default()
            .insert(conn, mode);
        if old == Some(WatchMode::PersistentRecursive) {
            self.recursive -= 1;
        }
        if mode == WatchMode::PersistentRecursive {
            self.recursive += 1;
        }
        self.by_conn
            .entry(conn)
            .or_default()
            .insert((path.to_string(), table == Table::Data));
    }

    /// Remove one registration; true if there was one.
    pub fn remove(&mut self, conn: ConnId, path: &str, table: Table) -> bool {
        let t = self.table(table);
        let Some(m) = t.get_mut(path) else {
            return false;
        };
        let Some(mode) = m.remove(&conn) else {
            return false;
        };
        if m.is_empty() {
            t.remove(path);
        }
        if mode == WatchMode::PersistentRecursive {
            self.recursive -= 1;
        }
        if let Some(s) = self.by_conn.get_mut(&conn) {
            s.remove(&(path.to_string(), table == Table::Data));
            if s.is_empty() {
                self.by_conn.remove(&conn);
            }
        }
        true
    }

    pub fn contains(&self, conn: ConnId, path: &str, table: Table) -> bool {
        let t = match table {
            Table::Data => &self.data,
            Table::Child => &self.child,
        };
        t.get(path).is_some_and(|m| m.contains_key(&conn))
    }

    /// Drop every watch of a connection (it closed).
    pub fn remove_conn(&mut self, conn: ConnId) {
        let Some(entries) = self.by_conn.get(&conn).cloned() else {
            return;
        };
        for (p, is_data) in entries {
            self.remove(conn, &p, if is_data { Table::Data } else { Table::Child });
        }
    }

    /// The connections to notify for `event` on `path`, in connection order;
    /// fires (removes) one-shot watches.
    pub fn trigger(&mut self, path: &str, event: EventType) -> Vec<ConnId> {
        let mut hit: BTreeSet<ConnId> = BTreeSet::new();
        let mut fired: Vec<(ConnId, Table)> = Vec::new();
        let mut take = |t: &PathTable, table: Table, p: &str, pred: &dyn Fn(WatchMode) -> bool| {
            if let Some(m) = t.get(p) {
                for (c, mode) in m {
                    if pred(*mode) {
                        hit.insert(*c);
                        if *mode == WatchMode::Standard {
                            fired.push((*c, table));
                        }
                    }
                }
            }
        };
        match event {
            EventType::NodeChildrenChanged => {
                take(&self.child, Table::Child, path, &|m| {
                    m != WatchMode::PersistentRecursive
                });
            }
            EventType::NodeCreated | EventType::NodeDataChanged | EventType::NodeDeleted => {
                take(&self.data, Table::Data, path, &|_| true);
                if event == EventType::NodeDeleted {
                    take(&self.child, Table::Child, path, &|m| {
                        m != WatchMode::PersistentRecursive
                    });
                }
                if self.recursive > 0 {
                    for a in path::ancestors(path) {
                        take(&self.data, Table::Data, a, &|m| {
                            m == WatchMode::PersistentRecursive
                        });
                    }
                }
            }
            _ => {}
        }
        for (c, table) in fired {
            self.remove(c, path, table);
        }
        hit.into_iter().collect()
    }

    /// Data-table watches as (connection, path), for the wchc/wchp/wchs words.
    pub fn data_watches(&self) -> Vec<(ConnId, String)> {
        let mut v = Vec::new();
        for (p, m) in &self.data {
            for c in m.keys() {
                v.push((*c, p.clone()));
            }
        }
        v
    }

    pub fn count(&self) -> usize {
        self.data.values().map(|m| m.len()).sum::<usize>()
            + self.child.values().map(|m| m.len()).sum::<usize>()
    }

    pub fn validate(&self) {
        let mut inv: BTreeMap<ConnId, BTreeSet<(String, bool)>> = BTreeMap::new();
        let mut rec = 0;
        for (t, is_data) in [(&self.data, true), (&self.child, false)] {
            for (p, m) in t {
                assert!(!m.is_empty(), "empty watch entry for {p}");
                for (c, mode) in m {
                    inv.entry(*c).or_default().insert((p.clone(), is_data));
                    if *mode == WatchMode::PersistentRecursive {
                        rec += 1;
                    }
                }
            }
        }
        assert_eq!(inv, self.by_conn, "watch reverse index out of sync");
        assert_eq!(rec, self.recursive, "recursive watch count out of sync");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventType::*;

    #[test]
    fn one_shot_fires_once() {
        let mut w = WatchManager::default();
        w.add(ConnId(1), "/a", Table::Data, WatchMode::Standard);
        assert_eq!(w.trigger("/a", NodeDataChanged), vec![ConnId(1)]);
        assert!(w.trigger("/a", NodeDataChanged).is_empty());
        w.validate();
    }

    #[test]
    fn delete_dedupes_and_children_changed_goes_to_parent() {
        let mut w = WatchManager::default();
        w.add(ConnId(1), "/a", Table::Data, WatchMode::Standard);
        w.add(ConnId(1), "/a", Table::Child, WatchMode::Standard);
        w.add(ConnId(2), "/", Table::Child, WatchMode::Standard);
        assert_eq!(w.trigger("/a", NodeDeleted), vec![ConnId(1)]);
        assert_eq!(w.trigger("/", NodeChildrenChanged), vec![ConnId(2)]);
        assert_eq!(w.count(), 0);
        w.validate();
    }

    #[test]
    fn persistent_recursive() {
        let mut w = WatchManager::default();
        for t in [Table::Data, Table::Child] {
            w.add(ConnId(1), "/r", t, WatchMode::PersistentRecursive);
            w.add(ConnId(2), "/p", t, WatchMode::Persistent);
        }
        assert_eq!(w.trigger("/r/x/y", NodeCreated), vec![ConnId(1)]);
        assert!(w.trigger("/r", NodeChildrenChanged).is_empty());
        assert_eq!(w.trigger("/p", NodeChildrenChanged), vec![ConnId(2)]);
        assert!(w.trigger("/p/x", NodeCreated).is_empty());
        assert_eq!(w.trigger("/p", NodeDataChanged), vec![ConnId(2)]);
        assert_eq!(w.count(), 4);
        w.remove_conn(ConnId(1));
        w.validate();
        assert_eq!(w.count(), 2);
    }
}
