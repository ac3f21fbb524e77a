//! The messages ensemble servers exchange, and their binary encoding.
//!
//! One enum covers both of ZooKeeper's channels: election notifications
//! (FastLeaderElection) and the learner/leader packets (QuorumPacket types,
//! named as in ZooKeeper). Our ensemble is Rust-only, so the encoding is
//! ours: a one-byte tag then jute-style big-endian fields. Every field a
//! receiver acts on is explicit (no packed `zxid` doubling as an epoch).
//!
//! Acknowledgements and commits are cumulative: `Ack { zxid }` says every
//! proposal up to `zxid` is durable on the sender (a follower logs in zxid
//! order), and `Commit { zxid }` commits every proposal up to `zxid`. So a
//! lost ACK or COMMIT is repaired by the next one; a lost PROPOSAL is a gap
//! the follower detects (it then rejoins and resynchronises).

use crate::storage::{decode_snapshot, encode_snapshot, SnapshotData};
use jute::codec::{write_bool, write_buffer, write_i32, write_i64, write_vec};
use jute::{Id, Reader, Record, TxnRecord};

/// A server's state as announced in election notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PeerState {
    Looking,
    Following,
    Leading,
}

impl PeerState {
    fn code(self) -> i32 {
        match self {
            PeerState::Looking => 0,
            PeerState::Following => 1,
            PeerState::Leading => 2,
        }
    }

    fn from_code(c: i32) -> Option<PeerState> {
        match c {
            0 => Some(PeerState::Looking),
            1 => Some(PeerState::Following),
            2 => Some(PeerState::Leading),
            _ => None,
        }
    }
}

/// A vote: who should lead, and the history that candidate claims.
/// Votes order by (peer_epoch, zxid, leader): the greater vote wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vote {
    pub leader: u64,
    pub zxid: i64,
    pub peer_epoch: u64,
}

impl Vote {
    pub fn key(&self) -> (u64, i64, u64) {
        (self.peer_epoch, self.zxid, self.leader)
    }

    /// ZooKeeper's `totalOrderPredicate`: does `self` beat `other`?
    pub fn beats(&self, other: &Vote) -> bool {
        self.key() > other.key()
    }
}

/// A leader's answer to "is this session still alive?" (a re-attach).
/// Only `Expired` may make a client give its session up, so a leader says
/// it only when it is sure; otherwise `Unsure`, and the client retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCheck {
    /// Gone for good: closed by a committed closeSession, or never known to
    /// a leader that still has a quorum.
    Expired = 0,
    Valid = 1,
    /// Its close is in flight, or the leader cannot vouch for its view.
    Unsure = 2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// Election: the sender's state, current vote and election epoch
    /// (logical clock).
    Notification {
        state: PeerState,
        vote: Vote,
        election_epoch: u64,
    },
    /// Learner → leader: the learner's acceptedEpoch and log position.
    FollowerInfo {
        accepted_epoch: u64,
        last_zxid: i64,
        applied_zxid: i64,
    },
    /// Leader → learner: the epoch the leader proposes.
    LeaderInfo {
        epoch: u64,
    },
    /// Learner → leader: epoch accepted; the learner's currentEpoch and log
    /// position (so the leader can check no learner is more recent).
    AckEpoch {
        current_epoch: u64,
        last_zxid: i64,
        applied_zxid: i64,
    },
    /// Sync by difference: proposals after the learner's last zxid follow.
    Diff {
        zxid: i64,
    },
    /// Sync by truncation: drop every logged proposal after `zxid`, then
    /// the proposals after it follow.
    Trunc {
        zxid: i64,
    },
    /// Sync by snapshot: replace the state; proposals after it follow.
    Snap(Box<SnapshotData>),
    Proposal(Box<TxnRecord>),
    Commit {
        zxid: i64,
    },
    /// The learner is synchronised with the leader's history for `epoch`.
    NewLeader {
        epoch: u64,
    },
    /// Cumulative: everything up to `zxid` is durable on the sender.
    /// `newleader` marks the acknowledgement of NEWLEADER.
    Ack {
        zxid: i64,
        newleader: bool,
    },
    UpToDate,
    Ping {
        commit_zxid: i64,
    },
    /// Learner's answer to a ping: the sessions its clients touched since
    /// the previous answer.
    PingReply {
        sessions: Vec<i64>,
    },
    /// A write a learner's client sent, forwarded to the leader.
    Request {
        session: i64,
        cxid: i32,
        op: i32,
        body: Vec<u8>,
        auth: Vec<Id>,
    },
    /// A learner's client asked for a new session with this id.
    CreateSession {
        session: i64,
        timeout_ms: i32,
    },
    /// A client re-attached to a learner: is the session still valid?
    /// Answered by [`Msg::Revalidated`].
    Revalidate {
        session: i64,
        timeout_ms: i32,
    },
    Revalidated {
        session: i64,
        answer: SessionCheck,
    },
    /// A client `sync` on a learner; answered once the leader has committed
    /// everything it had proposed when it got the request.
    SyncReq {
        id: u64,
    },
    SyncDone {
        id: u64,
        zxid: i64,
    },
}

fn w_u64(o: &mut Vec<u8>, v: u64) {
    write_i64(o, v as i64)
}

fn r_u64(r: &mut Reader<'_>) -> jute::Result<u64> {
    Ok(r.read_i64()? as u64)
}

impl Msg {
    pub fn name(&self) -> &'static str {
        match self {
            Msg::Notification { .. } => "NOTIFICATION",
            Msg::FollowerInfo { .. } => "FOLLOWERINFO",
            Msg::LeaderInfo { .. } => "LEADERINFO",
            Msg::AckEpoch { .. } => "ACKEPOCH",
            Msg::Diff { .. } => "DIFF",
            Msg::Trunc { .. } => "TRUNC",
            Msg::Snap(_) => "SNAP",
            Msg::Proposal(_) => "PROPOSAL",
            Msg::Commit { .. } => "COMMIT",
            Msg::NewLeader { .. } => "NEWLEADER",
            Msg::Ack { .. } => "ACK",
            Msg::UpToDate => "UPTODATE",
            Msg::Ping { .. } => "PING",
            Msg::PingReply { .. } => "PINGREPLY",
            Msg::Request { .. } => "REQUEST",
            Msg::CreateSession { .. } => "CREATESESSION",
            Msg::Revalidate { .. } => "REVALIDATE",
            Msg::Revalidated { .. } => "REVALIDATED",
            Msg::SyncReq { .. } => "SYNC",
            Msg::SyncDone { .. } => "SYNCDONE",
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut o = Vec::new();
        match self {
            Msg::Notification {
                state,
                vote,
                election_epoch,
            } => {
                o.push(1);
                write_i32(&mut o, state.code());
                w_u64(&mut o, vote.leader);
                write_i64(&mut o, vote.zxid);
                w_u64(&mut o, vote.peer_epoch);
                w_u64(&mut o, *election_epoch);
            }
            Msg::FollowerInfo {
                accepted_epoch,
                last_zxid,
                applied_zxid,
            } => {
                o.push(2);
                w_u64(&mut o, *accepted_epoch);
                write_i64(&mut o, *last_zxid);
                write_i64(&mut o, *applied_zxid);
            }
            Msg::LeaderInfo { epoch } => {
                o.push(3);
                w_u64(&mut o, *epoch);
            }
            Msg::AckEpoch {
                current_epoch,
                last_zxid,
                applied_zxid,
            } => {
                o.push(4);
                w_u64(&mut o, *current_epoch);
                write_i64(&mut o, *last_zxid);
                write_i64(&mut o, *applied_zxid);
            }
            Msg::Diff { zxid } => {
                o.push(5);
                write_i64(&mut o, *zxid);
            }
            Msg::Trunc { zxid } => {
                o.push(6);
                write_i64(&mut o, *zxid);
            }
            Msg::Snap(s) => {
                o.push(7);
                write_buffer(&mut o, &encode_snapshot(s));
            }
            Msg::Proposal(r) => {
                o.push(8);
                r.write(&mut o);
            }
            Msg::Commit { zxid } => {
                o.push(9);
                write_i64(&mut o, *zxid);
            }
            Msg::NewLeader { epoch } => {
                o.push(10);
                w_u64(&mut o, *epoch);
            }
            Msg::Ack { zxid, newleader } => {
                o.push(11);
                write_i64(&mut o, *zxid);
                write_bool(&mut o, *newleader);
            }
            Msg::UpToDate => o.push(12),
            Msg::Ping { commit_zxid } => {
                o.push(13);
                write_i64(&mut o, *commit_zxid);
            }
            Msg::PingReply { sessions } => {
                o.push(14);
                write_i32(&mut o, sessions.len() as i32);
                for s in sessions {
                    write_i64(&mut o, *s);
                }
            }
            Msg::Request {
                session,
                cxid,
                op,
                body,
                auth,
            } => {
                o.push(15);
                write_i64(&mut o, *session);
                write_i32(&mut o, *cxid);
                write_i32(&mut o, *op);
                write_buffer(&mut o, body);
                write_vec(&mut o, auth);
            }
            Msg::CreateSession {
                session,
                timeout_ms,
            } => {
                o.push(16);
                write_i64(&mut o, *session);
                write_i32(&mut o, *timeout_ms);
            }
            Msg::Revalidate {
                session,
                timeout_ms,
            } => {
                o.push(17);
                write_i64(&mut o, *session);
                write_i32(&mut o, *timeout_ms);
            }
            Msg::Revalidated { session, answer } => {
                o.push(18);
                write_i64(&mut o, *session);
                o.push(*answer as u8);
            }
            Msg::SyncReq { id } => {
                o.push(19);
                w_u64(&mut o, *id);
            }
            Msg::SyncDone { id, zxid } => {
                o.push(20);
                w_u64(&mut o, *id);
                write_i64(&mut o, *zxid);
            }
        }
        o
    }

    /// Decode one message; `None` for anything malformed (a peer's protocol
    /// violation is dropped, never a panic).
    pub fn decode(bytes: &[u8]) -> Option<Msg> {
        let (&tag, rest) = bytes.split_first()?;
        let mut r = Reader::new(rest);
        let m = Self::decode_body(tag, &mut r).ok()??;
        r.finish().ok()?;
        Some(m)
    }

    fn decode_body(tag: u8, r: &mut Reader<'_>) -> jute::Result<Option<Msg>> {
        let m = match tag {
            1 => {
                let Some(state) = PeerState::from_code(r.read_i32()?) else {
                    return Ok(None);
                };
                let vote = Vote {
                    leader: r_u64(r)?,
                    zxid: r.read_i64()?,
                    peer_epoch: r_u64(r)?,
                };
                Msg::Notification {
                    state,
                    vote,
                    election_epoch: r_u64(r)?,
                }
            }
            2 => Msg::FollowerInfo {
                accepted_epoch: r_u64(r)?,
                last_zxid: r.read_i64()?,
                applied_zxid: r.read_i64()?,
            },
            3 => Msg::LeaderInfo { epoch: r_u64(r)? },
            4 => Msg::AckEpoch {
                current_epoch: r_u64(r)?,
                last_zxid: r.read_i64()?,
                applied_zxid: r.read_i64()?,
            },
            5 => Msg::Diff {
                zxid: r.read_i64()?,
            },
            6 => Msg::Trunc {
                zxid: r.read_i64()?,
            },
            7 => {
                let b = r.read_buffer()?;
                match decode_snapshot("SNAP", &b) {
                    Ok(s) => Msg::Snap(Box::new(s)),
                    Err(_) => return Ok(None),
                }
            }
            8 => Msg::Proposal(Box::new(TxnRecord::read(r)?)),
            9 => Msg::Commit {
                zxid: r.read_i64()?,
            },
            10 => Msg::NewLeader { epoch: r_u64(r)? },
            11 => Msg::Ack {
                zxid: r.read_i64()?,
                newleader: r.read_bool()?,
            },
            12 => Msg::UpToDate,
            13 => Msg::Ping {
                commit_zxid: r.read_i64()?,
            },
            14 => {
                let n = r.read_i32()?;
                if n < 0 || n as usize > r.remaining() / 8 {
                    return Ok(None);
                }
                let mut sessions = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    sessions.push(r.read_i64()?);
                }
                Msg::PingReply { sessions }
            }
            15 => Msg::Request {
                session: r.read_i64()?,
                cxid: r.read_i32()?,
                op: r.read_i32()?,
                body: r.read_buffer()?,
                auth: r.read_vec()?,
            },
            16 => Msg::CreateSession {
                session: r.read_i64()?,
                timeout_ms: r.read_i32()?,
            },
            17 => Msg::Revalidate {
                session: r.read_i64()?,
                timeout_ms: r.read_i32()?,
            },
            18 => {
                let session = r.read_i64()?;
                let answer = match r.take(1)?[0] {
                    0 => SessionCheck::Expired,
                    1 => SessionCheck::Valid,
                    2 => SessionCheck::Unsure,
                    _ => return Ok(None),
                };
                Msg::Revalidated { session, answer }
            }
            19 => Msg::SyncReq { id: r_u64(r)? },
            20 => Msg::SyncDone {
                id: r_u64(r)?,
                zxid: r.read_i64()?,
            },
            _ => return Ok(None),
        };
        Ok(Some(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jute::{Txn, TxnHeader};

    fn all() -> Vec<Msg> {
        let vote = Vote {
            leader: 3,
            zxid: 0x1_0000_0005,
            peer_epoch: 1,
        };
        let rec = TxnRecord {
            header: TxnHeader {
                session_id: 7,
                cxid: 2,
                zxid: 0x2_0000_0001,
                time_ms: 99,
                op: jute::op::SET_DATA,
            },
            txn: Txn::SetData {
                path: "/a".into(),
                data: Some(b"x".to_vec()),
                version: 1,
            },
        };
        vec![
            Msg::Notification {
                state: PeerState::Leading,
                vote,
                election_epoch: 4,
            },
            Msg::FollowerInfo {
                accepted_epoch: 2,
                last_zxid: 5,
                applied_zxid: 4,
            },
            Msg::LeaderInfo { epoch: 3 },
            Msg::AckEpoch {
                current_epoch: 2,
                last_zxid: 9,
                applied_zxid: 8,
            },
            Msg::Diff { zxid: 1 },
            Msg::Trunc { zxid: 2 },
            Msg::Snap(Box::new(SnapshotData {
                last_zxid: 3,
                sessions: vec![(1, 4000)],
                nodes: vec![],
            })),
            Msg::Proposal(Box::new(rec)),
            Msg::Commit { zxid: 4 },
            Msg::NewLeader { epoch: 5 },
            Msg::Ack {
                zxid: 6,
                newleader: true,
            },
            Msg::UpToDate,
            Msg::Ping { commit_zxid: 7 },
            Msg::PingReply {
                sessions: vec![1, 2, 3],
            },
            Msg::Request {
                session: 1,
                cxid: 2,
                op: 5,
                body: vec![1, 2],
                auth: vec![Id {
                    scheme: "digest".into(),
                    id: "u:x".into(),
                }],
            },
            Msg::CreateSession {
                session: 8,
                timeout_ms: 4000,
            },
            Msg::Revalidate {
                session: 8,
                timeout_ms: 4000,
            },
            Msg::Revalidated {
                session: 8,
                answer: SessionCheck::Expired,
            },
            Msg::Revalidated {
                session: 8,
                answer: SessionCheck::Unsure,
            },
            Msg::SyncReq { id: 9 },
            Msg::SyncDone { id: 9, zxid: 10 },
        ]
    }

    #[test]
    fn zab_msg_round_trips() {
        for m in all() {
            assert_eq!(Msg::decode(&m.encode()), Some(m.clone()), "{}", m.name());
        }
    }

    #[test]
    fn zab_msg_rejects_garbage_without_panicking() {
        for m in all() {
            let b = m.encode();
            for cut in 0..b.len() {
                let _ = Msg::decode(&b[..cut]);
            }
            let mut longer = b.clone();
            longer.push(0);
            assert_eq!(
                Msg::decode(&longer),
                None,
                "{} with a trailing byte",
                m.name()
            );
        }
        assert_eq!(Msg::decode(&[]), None);
        assert_eq!(Msg::decode(&[99]), None);
        assert_eq!(Msg::decode(&[14, 0x7f, 0xff, 0xff, 0xff]), None);
    }

    #[test]
    fn zab_votes_order_by_epoch_then_zxid_then_id() {
        let v = |e, z, id| Vote {
            leader: id,
            zxid: z,
            peer_epoch: e,
        };
        assert!(v(2, 0, 1).beats(&v(1, 100, 9)));
        assert!(v(1, 5, 1).beats(&v(1, 4, 9)));
        assert!(v(1, 5, 2).beats(&v(1, 5, 1)));
        assert!(!v(1, 5, 1).beats(&v(1, 5, 1)));
    }
}
