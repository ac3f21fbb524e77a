//! Sessions (SessionTrackerImpl): ids, passwords, timeouts and expiry.
//!
//! A session is created by a createSession transaction and ends by a
//! closeSession transaction (explicit close or expiry). Every request from a
//! session touches it, pushing its deadline to `now + timeout`, rounded up to
//! the next tick boundary like ZooKeeper's expiry buckets; the server expires
//! sessions whose deadline has passed when a tick arrives. Once expiry or
//! close has been decided the session is *closing*: its requests get
//! SessionExpired while the closeSession transaction is on its way.
//!
//! Session ids are `((now_ms << 24) >>> 8) | (server_id << 56)`, incremented
//! per new session. The password is a pure function of the id, so any server
//! (and the same server after a restart) can verify a reattach.

use sha1::{Digest, Sha1};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: i64,
    pub timeout_ms: i32,
    pub deadline_ms: i64,
    pub closing: bool,
}

/// Invariants:
/// - every session's deadline is a multiple of `tick_ms`;
/// - `next_id` never repeats an id handed out since start-up.
#[derive(Debug, Clone)]
pub struct SessionTracker {
    sessions: BTreeMap<i64, Session>,
    next_id: i64,
    tick_ms: i64,
}

/// The 16-byte password of a session.
pub fn password(session_id: i64) -> Vec<u8> {
    let mut h = Sha1::new();
    h.update(b"zk-rs session password v1");
    h.update(session_id.to_be_bytes());
    h.finalize()[..16].to_vec()
}

pub fn initial_session_id(now_ms: i64, server_id: u8) -> i64 {
    let base = ((now_ms << 24) as u64 >> 8) as i64;
    base | ((server_id as i64) << 56)
}

impl SessionTracker {
    pub fn new(now_ms: i64, server_id: u8, tick_ms: i64) -> SessionTracker {
        SessionTracker {
            sessions: BTreeMap::new(),
            next_id: initial_session_id(now_ms, server_id),
            tick_ms: tick_ms.max(1),
        }
    }

    /// Allocate an id for a new session (the session exists once its
    /// createSession transaction is applied).
    pub fn next_session_id(&mut self) -> i64 {
        let mut id = self.next_id;
        if id == i64::MIN || id == 0 {
            id = id.wrapping_add(1);
        }
        self.next_id = id.wrapping_add(1);
        id
    }

    fn round_up(&self, t: i64) -> i64 {
        (t + self.tick_ms - 1) / self.tick_ms * self.tick_ms
    }

    pub fn add(&mut self, id: i64, timeout_ms: i32, now_ms: i64) {
        let deadline_ms = self.round_up(now_ms + timeout_ms as i64);
        self.sessions.insert(
            id,
            Session {
                id,
                timeout_ms,
                deadline_ms,
                closing: false,
            },
        );
    }

    pub fn remove(&mut self, id: i64) {
        self.sessions.remove(&id);
    }

    pub fn get(&self, id: i64) -> Option<&Session> {
        self.sessions.get(&id)
    }

    pub fn is_live(&self, id: i64) -> bool {
        self.sessions.get(&id).is_some_and(|s| !s.closing)
    }

    /// Touch a session; false if it is unknown or closing.
    pub fn touch(&mut self, id: i64, now_ms: i64) -> bool {
        let tick = self.tick_ms;
        match self.sessions.get_mut(&id) {
            Some(s) if !s.closing => {
                let d = now_ms + s.timeout_ms as i64;
                s.deadline_ms = (d + tick - 1) / tick * tick;
                true
            }
            _ => false,
        }
    }

    pub fn set_timeout(&mut self, id: i64, timeout_ms: i32, now_ms: i64) {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.timeout_ms = timeout_ms;
        }
        self.touch(id, now_ms);
    }

    pub fn set_closing(&mut self, id: i64) {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.closing = true;
        }
    }

    /// Forget every closing mark: the closeSession transactions they were
    /// waiting for were never committed (a leader change discarded them),
    /// so the sessions are live again until expired or closed anew.
    pub fn clear_closing(&mut self) {
        for s in self.sessions.values_mut() {
            s.closing = false;
        }
    }

    /// Sessions whose deadline has passed, now marked closing.
    pub fn expire(&mut self, now_ms: i64) -> Vec<i64> {
        let mut out = Vec::new();
        for s in self.sessions.values_mut() {
            if !s.closing && s.deadline_ms <= now_ms {
                s.closing = true;
                out.push(s.id);
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }

    pub fn validate(&self) {
        for s in self.sessions.values() {
            assert_eq!(
                s.deadline_ms % self.tick_ms,
                0,
                "session deadline off-bucket"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_server_id_and_increment() {
        let mut t = SessionTracker::new(1_700_000_000_000, 1, 2000);
        let a = t.next_session_id();
        let b = t.next_session_id();
        assert_eq!((a as u64) >> 56, 1);
        assert_eq!(b, a + 1);
    }

    #[test]
    fn expiry_is_bucketed() {
        let mut t = SessionTracker::new(0, 1, 2000);
        t.add(7, 4000, 1000);
        assert_eq!(t.get(7).unwrap().deadline_ms, 6000);
        assert!(t.expire(5999).is_empty());
        assert_eq!(t.expire(6000), vec![7]);
        assert!(!t.touch(7, 6000), "closing sessions cannot be revived");
    }

    #[test]
    fn password_is_deterministic() {
        assert_eq!(password(5), password(5));
        assert_ne!(password(5), password(6));
        assert_eq!(password(5).len(), 16);
    }
}
