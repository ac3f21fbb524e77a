//! Fast Leader Election (ZooKeeper's `FastLeaderElection`) as a pure state
//! machine.
//!
//! A LOOKING server bumps its logical clock (the *election epoch*), votes
//! for itself with its (currentEpoch, last logged zxid, id) and tells every
//! voter. Votes order by (peer epoch, zxid, id). On a notification from a
//! LOOKING peer:
//! - a higher election epoch: adopt it, forget the votes received so far,
//!   vote for the better of the peer's vote and our own initial vote;
//! - a lower one: answer the peer with our vote (it is behind);
//! - the same: adopt the peer's vote if it beats ours.
//!
//! When a quorum of the votes received in this election epoch (ours
//! included) equals our proposal, we wait `finalize_ms` for a better vote;
//! none comes → decided. Notifications from servers already FOLLOWING or
//! LEADING let a latecomer join an established leader: when a quorum of them
//! agrees on a leader that itself says LEADING. Notifications are re-sent
//! with a doubling interval while looking, since the mesh can lose them.
//!
//! Invariants: `recv` only holds votes of the current election epoch; the
//! proposal never gets worse within one election epoch.

use super::msg::{Msg, PeerState, Vote};
use std::collections::{BTreeMap, BTreeSet};

/// Wait for a better vote after reaching a quorum (ZooKeeper: 200 ms).
pub const FINALIZE_MS: i64 = 200;
const RESEND_MIN_MS: i64 = 200;
const RESEND_MAX_MS: i64 = 3_200;

/// The outcome of an election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub leader: u64,
    /// The agreed vote (for the state's notifications from now on).
    pub vote: Vote,
    pub election_epoch: u64,
}

#[derive(Debug, Clone)]
pub struct Election {
    my_id: u64,
    voters: BTreeSet<u64>,
    /// The logical clock: the election epoch.
    pub logical_clock: u64,
    initial: Vote,
    proposal: Vote,
    recv: BTreeMap<u64, Vote>,
    /// Votes from servers that are FOLLOWING or LEADING, with their state
    /// and election epoch.
    out_of_election: BTreeMap<u64, (PeerState, Vote, u64)>,
    finalize_at: Option<i64>,
    resend_at: i64,
    resend_ms: i64,
    /// ZK-1732 (simulation only): notifications from FOLLOWING/LEADING
    /// servers count only in our own election epoch.
    #[cfg(madsim)]
    pub same_epoch_only: bool,
}

/// Messages to send: (to, message).
pub type Sends = Vec<(u64, Msg)>;

impl Election {
    pub fn new(my_id: u64, voters: BTreeSet<u64>) -> Election {
        let v = Vote {
            leader: my_id,
            zxid: 0,
            peer_epoch: 0,
        };
        Election {
            my_id,
            voters,
            logical_clock: 0,
            initial: v,
            proposal: v,
            recv: BTreeMap::new(),
            out_of_election: BTreeMap::new(),
            finalize_at: None,
            resend_at: 0,
            resend_ms: RESEND_MIN_MS,
            #[cfg(madsim)]
            same_epoch_only: false,
        }
    }

    pub fn is_quorum(&self, n: usize) -> bool {
        n * 2 > self.voters.len()
    }

    pub fn proposal(&self) -> Vote {
        self.proposal
    }

    /// Start looking (again): a new election epoch, a vote for ourselves.
    pub fn start(&mut self, now_ms: i64, last_zxid: i64, current_epoch: u64) -> Sends {
        self.logical_clock += 1;
        self.initial = Vote {
            leader: self.my_id,
            zxid: last_zxid,
            peer_epoch: current_epoch,
        };
        self.proposal = self.initial;
        self.recv.clear();
        self.out_of_election.clear();
        self.recv.insert(self.my_id, self.proposal);
        self.finalize_at = None;
        self.resend_ms = RESEND_MIN_MS;
        self.resend_at = now_ms + self.resend_ms;
        self.broadcast()
    }

    fn notification(&self) -> Msg {
        Msg::Notification {
            state: PeerState::Looking,
            vote: self.proposal,
            election_epoch: self.logical_clock,
        }
    }

    fn broadcast(&self) -> Sends {
        let m = self.notification();
        self.voters
            .iter()
            .filter(|v| **v != self.my_id)
            .map(|v| (*v, m.clone()))
            .collect()
    }

    fn adopt(&mut self, v: Vote) {
        self.proposal = v;
        self.recv.insert(self.my_id, v);
        self.finalize_at = None;
    }

    /// A notification arrived while we are LOOKING.
    pub fn on_notification(
        &mut self,
        now_ms: i64,
        from: u64,
        state: PeerState,
        vote: Vote,
        election_epoch: u64,
    ) -> (Sends, Option<Decision>) {
        if !self.voters.contains(&from) {
            return (Vec::new(), None);
        }
        let mut sends = Vec::new();
        match state {
            PeerState::Looking => {
                if election_epoch > self.logical_clock {
                    self.logical_clock = election_epoch;
                    self.recv.clear();
                    let better = if vote.beats(&self.initial) {
                        vote
                    } else {
                        self.initial
                    };
                    self.adopt(better);
                    sends = self.broadcast();
                } else if election_epoch < self.logical_clock {
                    return (vec![(from, self.notification())], None);
                } else if vote.beats(&self.proposal) {
                    self.adopt(vote);
                    sends = self.broadcast();
                }
                self.recv.insert(from, vote);
                if self.finalize_at.is_none() && self.quorum_for(&self.proposal) {
                    self.finalize_at = Some(now_ms + FINALIZE_MS);
                }
                (sends, None)
            }
            PeerState::Following | PeerState::Leading => {
                // ZK-1732: an established ensemble in another election
                // epoch is not listened to; a restarted server (its clock
                // back at 1) can never join it.
                #[cfg(madsim)]
                if self.same_epoch_only && election_epoch != self.logical_clock {
                    return (sends, None);
                }
                if election_epoch == self.logical_clock {
                    self.recv.insert(from, vote);
                }
                self.out_of_election
                    .insert(from, (state, vote, election_epoch));
                (sends, self.join_established(vote, election_epoch))
            }
        }
    }

    fn quorum_for(&self, v: &Vote) -> bool {
        let n = self.recv.values().filter(|x| *x == v).count();
        self.is_quorum(n)
    }

    /// A leader is established when a quorum of non-looking servers agrees
    /// on it and it says itself that it leads.
    fn join_established(&mut self, vote: Vote, election_epoch: u64) -> Option<Decision> {
        let agree = self
            .out_of_election
            .values()
            .filter(|(_, v, _)| v.leader == vote.leader && v.peer_epoch == vote.peer_epoch)
            .count();
        let confirmed = self
            .out_of_election
            .get(&vote.leader)
            .is_some_and(|(s, v, _)| *s == PeerState::Leading && v.leader == vote.leader);
        // Counting ourselves: we would follow it.
        if confirmed && self.is_quorum(agree + 1) && vote.leader != self.my_id {
            self.logical_clock = self.logical_clock.max(election_epoch);
            self.proposal = vote;
            return Some(Decision {
                leader: vote.leader,
                vote,
                election_epoch: self.logical_clock,
            });
        }
        None
    }

    /// Time passed: finalize a quorum that stood for `FINALIZE_MS`, or
    /// re-send our vote.
    pub fn on_tick(&mut self, now_ms: i64) -> (Sends, Option<Decision>) {
        if let Some(at) = self.finalize_at {
            if now_ms >= at && self.quorum_for(&self.proposal) {
                let d = Decision {
                    leader: self.proposal.leader,
                    vote: self.proposal,
                    election_epoch: self.logical_clock,
                };
                return (Vec::new(), Some(d));
            }
        }
        if now_ms >= self.resend_at {
            self.resend_ms = (self.resend_ms * 2).min(RESEND_MAX_MS);
            self.resend_at = now_ms + self.resend_ms;
            return (self.broadcast(), None);
        }
        (Vec::new(), None)
    }

    pub fn validate(&self) {
        // (A proposal may be worse than our own vote once we joined an
        // established leader.)
        assert!(self.voters.contains(&self.my_id) || self.voters.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voters(n: u64) -> BTreeSet<u64> {
        (1..=n).collect()
    }

    /// Deliver every message among `n` electing servers until all decide.
    fn run(n: u64, zxids: &[i64], epochs: &[u64]) -> Vec<Decision> {
        let mut es: Vec<Election> = (1..=n).map(|i| Election::new(i, voters(n))).collect();
        let mut q: std::collections::VecDeque<(u64, u64, Msg)> = Default::default();
        for (i, e) in es.iter_mut().enumerate() {
            for (to, m) in e.start(0, zxids[i], epochs[i]) {
                q.push_back((i as u64 + 1, to, m));
            }
        }
        let mut decided: Vec<Option<Decision>> = vec![None; n as usize];
        let mut now = 0;
        for _ in 0..10_000 {
            if decided.iter().all(Option::is_some) {
                break;
            }
            if let Some((from, to, m)) = q.pop_front() {
                let e = &mut es[to as usize - 1];
                if decided[to as usize - 1].is_some() {
                    continue;
                }
                let Msg::Notification {
                    state,
                    vote,
                    election_epoch,
                } = m
                else {
                    unreachable!()
                };
                let (s, d) = e.on_notification(now, from, state, vote, election_epoch);
                for (t, m) in s {
                    q.push_back((to, t, m));
                }
                if d.is_some() {
                    decided[to as usize - 1] = d;
                }
            } else {
                now += 50;
                for (i, e) in es.iter_mut().enumerate() {
                    if decided[i].is_some() {
                        continue;
                    }
                    let (s, d) = e.on_tick(now);
                    for (t, m) in s {
                        q.push_back((i as u64 + 1, t, m));
                    }
                    decided[i] = d;
                }
            }
            for e in &es {
                e.validate();
            }
        }
        decided.into_iter().map(|d| d.expect("decided")).collect()
    }

    #[test]
    fn election_picks_highest_epoch_then_zxid_then_id() {
        let d = run(3, &[5, 5, 5], &[1, 1, 1]);
        assert!(d.iter().all(|x| x.leader == 3));
        let d = run(3, &[9, 5, 5], &[1, 1, 1]);
        assert!(d.iter().all(|x| x.leader == 1));
        let d = run(5, &[100, 5, 5, 1, 1], &[1, 2, 1, 1, 1]);
        assert!(d.iter().all(|x| x.leader == 2));
    }

    #[test]
    fn election_latecomer_joins_an_established_leader() {
        let mut e = Election::new(3, voters(3));
        e.start(0, 0, 0);
        let v = Vote {
            leader: 2,
            zxid: 7,
            peer_epoch: 1,
        };
        let (_, d) = e.on_notification(0, 1, PeerState::Following, v, 5);
        assert!(d.is_none(), "the leader has not confirmed yet");
        let (_, d) = e.on_notification(0, 2, PeerState::Leading, v, 5);
        assert_eq!(d.map(|d| d.leader), Some(2));
    }

    #[test]
    fn election_answers_a_peer_from_an_older_round() {
        let mut e = Election::new(1, voters(3));
        e.start(0, 0, 0);
        e.start(0, 0, 0);
        let v = Vote {
            leader: 2,
            zxid: 0,
            peer_epoch: 0,
        };
        let (s, _) = e.on_notification(0, 2, PeerState::Looking, v, 1);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].0, 2);
    }
}
