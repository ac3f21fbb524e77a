//! The roles' behaviour: `impl Server` for everything quorum mode adds.
//! See the module docs of [`crate::zab`] for the protocol.

use super::election::Decision;
use super::*;
use crate::acl::AuthInfo;
#[cfg(madsim)]
use crate::bugs::Bug;
use crate::cover::{self, Mark};
use crate::server::{reply_kind, ConnState, Effect, Entry, ReplyKind, Server};
use crate::ConnId;
use jute::{ErrorCode, Reader, Txn, TxnHeader};

impl Server {
    /// Put a fresh server into quorum mode: it starts looking.
    pub fn enter_ensemble(&mut self, cfg: EnsembleConfig, rec: ZabRecovered) {
        #[allow(unused_mut)]
        let mut zab = Zab::new(cfg, rec, &self.tree);
        #[cfg(madsim)]
        {
            zab.election.same_epoch_only = self.bug(Bug::Zk1732);
        }
        self.zab = Some(Box::new(zab));
        self.look("start-up");
    }

    /// Effects produced outside [`Server::handle`] (e.g. by
    /// [`Server::enter_ensemble`]).
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.out)
    }

    fn z(&self) -> &Zab {
        self.zab.as_deref().expect("quorum mode")
    }

    fn zm(&mut self) -> &mut Zab {
        self.zab.as_deref_mut().expect("quorum mode")
    }

    /// "standalone", "leader", "follower" or "looking".
    pub fn role_name(&self) -> &'static str {
        match self.zab.as_deref().map(|z| &z.role) {
            None => "standalone",
            Some(Role::Looking) => "looking",
            Some(Role::Leading(_)) => "leader",
            Some(Role::Following(_)) => "follower",
        }
    }

    /// The server's currentEpoch (0 standalone).
    pub fn current_epoch(&self) -> u64 {
        self.zab.as_deref().map_or(0, |z| z.current_epoch)
    }

    /// The server's acceptedEpoch (0 standalone).
    pub fn accepted_epoch(&self) -> u64 {
        self.zab.as_deref().map_or(0, |z| z.accepted_epoch)
    }

    /// The leader this server follows or is (None while looking).
    pub fn leader_id(&self) -> Option<u64> {
        match &self.zab.as_deref()?.role {
            Role::Looking => None,
            Role::Leading(_) => Some(self.z().cfg.my_id),
            Role::Following(f) => Some(f.leader),
        }
    }

    /// Last zxid logged (handed to the disk), in quorum mode.
    pub fn logged_zxid(&self) -> i64 {
        self.zab
            .as_deref()
            .map_or(self.tree.last_zxid(), |z| z.logged)
    }

    /// Zxid up to which the leader has committed (leader only).
    /// The highest zxid this server has told the ensemble is durable in
    /// its log (its ACKs; a leader's own durable log). After a power
    /// failure the disk must still hold it.
    pub fn acked_zxid(&self) -> i64 {
        self.zab.as_deref().map_or(0, |z| z.acked)
    }

    pub fn commit_zxid(&self) -> Option<i64> {
        match &self.zab.as_deref()?.role {
            Role::Leading(l) if l.phase == LeaderPhase::Established => Some(l.commit),
            _ => None,
        }
    }

    /// The transactions this server has logged that are still in memory.
    pub fn history(&self) -> impl Iterator<Item = &TxnRecord> {
        self.zab
            .as_deref()
            .into_iter()
            .flat_map(|z| z.history.iter())
    }

    /// Whether clients are served.
    pub fn serving(&self) -> bool {
        match self.zab.as_deref().map(|z| &z.role) {
            None => true,
            Some(Role::Looking) => false,
            Some(Role::Leading(l)) => l.phase == LeaderPhase::Established,
            Some(Role::Following(f)) => f.phase == FollowerPhase::Broadcast { up_to_date: true },
        }
    }

    pub(crate) fn is_follower(&self) -> bool {
        matches!(
            self.zab.as_deref().map(|z| &z.role),
            Some(Role::Following(_))
        )
    }

    pub(crate) fn my_id(&self) -> u64 {
        self.zab
            .as_deref()
            .map_or(self.cfg.server_id as u64, |z| z.cfg.my_id)
    }

    fn quorum(&self, n: usize) -> bool {
        n * 2 > self.z().cfg.voters.len()
    }

    fn peer_send(&mut self, to: u64, m: &Msg) {
        if let Msg::Ack { zxid, .. } = m {
            let z = self.zm();
            z.acked = z.acked.max(*zxid);
        }
        self.out.push(Effect::PeerSend {
            to,
            bytes: m.encode(),
        });
    }

    fn leader(&self) -> Option<&Leader> {
        match &self.zab.as_deref()?.role {
            Role::Leading(l) => Some(l),
            _ => None,
        }
    }

    fn leader_mut(&mut self) -> Option<&mut Leader> {
        match &mut self.zab.as_deref_mut()?.role {
            Role::Leading(l) => Some(l),
            _ => None,
        }
    }

    fn follower(&self) -> Option<&Follower> {
        match &self.zab.as_deref()?.role {
            Role::Following(f) => Some(f),
            _ => None,
        }
    }

    fn follower_mut(&mut self) -> Option<&mut Follower> {
        match &mut self.zab.as_deref_mut()?.role {
            Role::Following(f) => Some(f),
            _ => None,
        }
    }

    fn tick_ms(&self) -> i64 {
        self.cfg.tick_ms.max(1)
    }

    // ---- role changes ------------------------------------------------

    /// Back to election: stop serving, forget pending client work, vote.
    fn look(&mut self, why: &str) {
        let was = self.role_name();
        tracing::info!(
            id = self.my_id(),
            was,
            why,
            zxid = format_args!("{:#x}", self.z().logged),
            "looking for a leader"
        );
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for c in conns {
            self.close(c);
        }
        self.overlay = Default::default();
        for f in self.inflight.iter_mut() {
            f.origin = None;
        }
        // Closing marks wait for closeSession transactions of this role
        // (a leader's expiry, a client's close forwarded by a follower);
        // whichever of them committed comes back with the next leader's
        // sync, and the rest never will. Kept, a mark would answer the
        // session's requests here with SessionExpired while it lives on.
        self.sessions.clear_closing();
        let now = self.now_ms;
        let z = self.zm();
        // ZK-4646: what was still queued for the log writer is lost.
        #[cfg(madsim)]
        z.held_for_log.clear();
        z.role = Role::Looking;
        z.pending_fwd.clear();
        z.syncs.clear();
        z.revalidating.clear();
        z.touched.clear();
        z.elections += 1;
        let (logged, epoch) = (z.logged, z.current_epoch);
        let sends = z.election.start(now, logged, epoch);
        for (to, m) in sends {
            self.peer_send(to, &m);
        }
    }

    fn decided(&mut self, d: Decision) {
        if d.leader == self.my_id() {
            self.lead();
        } else {
            self.follow(d.leader);
        }
    }

    fn lead(&mut self) {
        // Our whole log is the new epoch's initial history: apply it.
        let logged = self.z().logged;
        if logged > self.tree.last_zxid() {
            cover::hit(Mark::NewEpochWithUncommitted);
        }
        self.apply_upto(logged);
        let now = self.now_ms;
        let my_id = self.my_id();
        let accepted = self.z().accepted_epoch;
        tracing::info!(id = my_id, zxid = format_args!("{logged:#x}"), "leading");
        let leader = Leader {
            epoch: 0,
            phase: LeaderPhase::Discovery,
            started_ms: now,
            learners: BTreeMap::new(),
            initial_last: logged,
            current_written: false,
            commit: logged,
            owners: BTreeMap::new(),
            pending_syncs: VecDeque::new(),
            last_ping_ms: now,
        };
        self.zm().role = Role::Leading(Box::new(leader));
        let _ = accepted;
        self.try_choose_epoch();
    }

    fn follow(&mut self, leader: u64) {
        let now = self.now_ms;
        tracing::info!(id = self.my_id(), leader, "following");
        let commit_seen = self.tree.last_zxid();
        self.zm().role = Role::Following(Box::new(Follower {
            leader,
            epoch: 0,
            phase: FollowerPhase::Discovery,
            commit_seen,
            last_heard_ms: now,
            info_sent_ms: now,
        }));
        self.send_follower_info();
    }

    fn send_follower_info(&mut self) {
        let m = Msg::FollowerInfo {
            accepted_epoch: self.z().accepted_epoch,
            last_zxid: self.z().logged,
            applied_zxid: self.tree.last_zxid(),
        };
        let now = self.now_ms;
        let f = self.follower_mut().expect("following");
        f.info_sent_ms = now;
        let leader = f.leader;
        self.peer_send(leader, &m);
    }

    fn write_epoch(&mut self, file: EpochFile, epoch: u64) {
        let z = self.zm();
        z.epoch_write_covers = z.logged;
        match file {
            EpochFile::Accepted => z.accepted_epoch = epoch,
            EpochFile::Current => z.current_epoch = epoch,
        }
        self.out.push(Effect::WriteEpoch { file, epoch });
    }

    // ---- inputs ------------------------------------------------------

    pub(crate) fn zab_tick(&mut self) {
        let now = self.now_ms;
        match &self.z().role {
            Role::Looking => {
                let (sends, d) = self.zm().election.on_tick(now);
                for (to, m) in sends {
                    self.peer_send(to, &m);
                }
                if let Some(d) = d {
                    self.decided(d);
                }
            }
            Role::Leading(_) => self.leader_tick(),
            Role::Following(f) => {
                let ticks = match f.phase {
                    FollowerPhase::Broadcast { .. } => self.z().cfg.sync_limit,
                    _ => self.z().cfg.init_limit,
                };
                if now - f.last_heard_ms > ticks as i64 * self.tick_ms() {
                    return self.look("the leader went silent");
                }
                if f.phase == FollowerPhase::Discovery && now - f.info_sent_ms >= self.tick_ms() / 2
                {
                    // The leader may not have been leading yet: say it again.
                    self.send_follower_info();
                }
            }
        }
    }

    pub(crate) fn zab_persisted(&mut self, zxid: i64) {
        let z = self.zm();
        z.durable = z.durable.max(zxid).min(z.logged);
        match &self.z().role {
            Role::Looking => {}
            Role::Leading(_) => {
                // The leader counts its own log as an acknowledgement.
                let z = self.zm();
                z.acked = z.acked.max(z.durable);
                self.check_established();
                self.leader_commit();
            }
            Role::Following(f) => {
                if matches!(f.phase, FollowerPhase::Broadcast { .. }) {
                    let (leader, durable) = (f.leader, self.z().durable);
                    self.peer_send(
                        leader,
                        &Msg::Ack {
                            zxid: durable,
                            newleader: false,
                        },
                    );
                }
                self.follower_apply();
            }
        }
    }

    pub(crate) fn on_epoch_written(&mut self, file: EpochFile, epoch: u64) {
        if self.zab.is_none() {
            return;
        }
        let covers = self.z().epoch_write_covers;
        let z = self.zm();
        z.durable = z.durable.max(covers).min(z.logged);
        match &self.z().role {
            Role::Looking => {}
            Role::Leading(l) => match (file, l.phase) {
                (EpochFile::Accepted, LeaderPhase::AwaitAcceptedWrite) if epoch == l.epoch => {
                    self.send_leader_infos()
                }
                (EpochFile::Current, _) if epoch == l.epoch => {
                    self.leader_mut().expect("leading").current_written = true;
                    self.check_established();
                }
                _ => {}
            },
            Role::Following(f) => match (file, f.phase) {
                (EpochFile::Accepted, FollowerPhase::AwaitAcceptedWrite) if epoch == f.epoch => {
                    self.send_ack_epoch()
                }
                (EpochFile::Current, FollowerPhase::AwaitCurrentWrite) if epoch == f.epoch => {
                    self.ack_newleader();
                    // ZK-4646: the synced proposals reach the log writer
                    // only now, after the ACK.
                    #[cfg(madsim)]
                    {
                        let held = std::mem::take(&mut self.zm().held_for_log);
                        if !held.is_empty() {
                            self.out.push(Effect::Persist { records: held });
                        }
                    }
                    self.follower_apply();
                }
                _ => {}
            },
        }
    }

    pub(crate) fn on_peer(&mut self, from: u64, bytes: &[u8]) {
        if self.zab.is_none() || from == self.my_id() || !self.z().cfg.voters.contains(&from) {
            return;
        }
        let Some(m) = Msg::decode(bytes) else {
            tracing::warn!(from, "undecodable peer message dropped");
            return;
        };
        match m {
            Msg::Notification {
                state,
                vote,
                election_epoch,
            } => self.on_notification(from, state, vote, election_epoch),
            m @ (Msg::FollowerInfo { .. }
            | Msg::AckEpoch { .. }
            | Msg::Ack { .. }
            | Msg::PingReply { .. }
            | Msg::Request { .. }
            | Msg::CreateSession { .. }
            | Msg::Revalidate { .. }
            | Msg::SyncReq { .. }) => {
                if self.leader().is_some() {
                    self.leader_on(from, m);
                }
            }
            m => {
                if self.follower().is_some_and(|f| f.leader == from) {
                    self.follower_mut().expect("following").last_heard_ms = self.now_ms;
                    self.follower_on(m);
                }
            }
        }
    }

    pub(crate) fn on_peer_lost(&mut self, from: u64) {
        if self.follower().is_some_and(|f| f.leader == from) {
            self.look("the connection from the leader broke");
        } else if let Some(l) = self.leader_mut() {
            // It will rejoin with FOLLOWERINFO and be synced again.
            l.learners.remove(&from);
        }
    }

    fn on_notification(&mut self, from: u64, state: PeerState, vote: Vote, ee: u64) {
        let now = self.now_ms;
        match &self.z().role {
            Role::Looking => {
                let (sends, d) = self
                    .zm()
                    .election
                    .on_notification(now, from, state, vote, ee);
                for (to, m) in sends {
                    self.peer_send(to, &m);
                }
                if let Some(d) = d {
                    self.decided(d);
                }
            }
            role => {
                if state == PeerState::Looking {
                    let my_state = match role {
                        Role::Leading(_) => PeerState::Leading,
                        _ => PeerState::Following,
                    };
                    let m = Msg::Notification {
                        state: my_state,
                        vote: self.z().election.proposal(),
                        election_epoch: self.z().election.logical_clock,
                    };
                    self.peer_send(from, &m);
                }
            }
        }
    }

    // ---- leader ------------------------------------------------------

    fn try_choose_epoch(&mut self) {
        let my_accepted = self.z().accepted_epoch;
        let Some(l) = self.leader() else { return };
        if l.phase != LeaderPhase::Discovery {
            return;
        }
        let n = l.learners.len() + 1;
        if !self.quorum(n) {
            return;
        }
        let max = l
            .learners
            .values()
            .map(|x| x.accepted_epoch)
            .chain([my_accepted, self.z().current_epoch])
            .max()
            .unwrap_or(0);
        // ZK-335: the epoch from the last logged zxids (see bugs.rs).
        #[cfg(madsim)]
        let max = if self.bug(crate::bugs::Bug::Zk335) {
            let l = self.leader().expect("leading");
            l.learners
                .values()
                .map(|x| epoch_of(x.info_zxid))
                .chain([epoch_of(self.z().logged)])
                .max()
                .unwrap_or(0)
        } else {
            max
        };
        let epoch = max + 1;
        let l = self.leader_mut().expect("leading");
        l.epoch = epoch;
        l.phase = LeaderPhase::AwaitAcceptedWrite;
        self.write_epoch(EpochFile::Accepted, epoch);
    }

    fn send_leader_infos(&mut self) {
        let l = self.leader_mut().expect("leading");
        l.phase = LeaderPhase::AwaitAckEpochs;
        let epoch = l.epoch;
        let to: Vec<u64> = l
            .learners
            .iter()
            .filter(|(_, x)| x.state == LearnerState::Info)
            .map(|(id, _)| *id)
            .collect();
        for id in to {
            self.peer_send(id, &Msg::LeaderInfo { epoch });
        }
        self.check_epoch_acks();
    }

    fn check_epoch_acks(&mut self) {
        let Some(l) = self.leader() else { return };
        if l.phase != LeaderPhase::AwaitAckEpochs {
            return;
        }
        let n = 1 + l
            .learners
            .values()
            .filter(|x| x.state >= LearnerState::AckedEpoch)
            .count();
        if !self.quorum(n) {
            return;
        }
        let epoch = l.epoch;
        self.leader_mut().expect("leading").phase = LeaderPhase::Syncing;
        self.write_epoch(EpochFile::Current, epoch);
        let ready: Vec<u64> = self
            .leader()
            .expect("leading")
            .learners
            .iter()
            .filter(|(_, x)| x.state == LearnerState::AckedEpoch)
            .map(|(id, _)| *id)
            .collect();
        for id in ready {
            self.sync_learner(id);
        }
    }

    fn leader_on(&mut self, from: u64, m: Msg) {
        let now = self.now_ms;
        if let Some(x) = self.leader_mut().expect("leading").learners.get_mut(&from) {
            x.last_heard_ms = now;
        }
        match m {
            Msg::FollowerInfo {
                accepted_epoch,
                last_zxid,
                ..
            } => self.on_follower_info(from, accepted_epoch, last_zxid),
            Msg::AckEpoch {
                current_epoch,
                last_zxid,
                applied_zxid,
            } => self.on_ack_epoch(from, current_epoch, last_zxid, applied_zxid),
            Msg::Ack { zxid, newleader } => self.on_ack(from, zxid, newleader),
            Msg::PingReply { sessions }
                if self
                    .leader()
                    .is_some_and(|l| l.learners.contains_key(&from)) =>
            {
                for s in sessions {
                    self.sessions.touch(s, now);
                }
            }
            Msg::Request {
                session,
                cxid,
                op,
                body,
                auth,
            } => self.on_forwarded(from, session, cxid, op, &body, auth),
            Msg::CreateSession {
                session,
                timeout_ms,
            } if self.z().is_established_leader() => {
                self.leader_mut()
                    .expect("leading")
                    .owners
                    .insert(session, from);
                self.propose(session, 0, Txn::CreateSession { timeout_ms }, None);
            }
            Msg::Revalidate {
                session,
                timeout_ms,
            } => {
                let answer = if self.z().is_established_leader() {
                    self.session_check(session)
                } else {
                    SessionCheck::Unsure
                };
                if answer == SessionCheck::Valid {
                    self.leader_mut()
                        .expect("leading")
                        .owners
                        .insert(session, from);
                    self.sessions.set_timeout(session, timeout_ms, now);
                }
                self.peer_send(from, &Msg::Revalidated { session, answer });
            }
            Msg::SyncReq { id } if self.z().is_established_leader() => {
                let target = self.next_zxid - 1;
                let l = self.leader_mut().expect("leading");
                l.pending_syncs.push_back((from, id, target));
                self.release_syncs();
            }
            _ => {}
        }
    }

    fn on_follower_info(&mut self, from: u64, accepted_epoch: u64, last_zxid: i64) {
        let now = self.now_ms;
        let l = self.leader_mut().expect("leading");
        l.learners.insert(
            from,
            Learner {
                state: LearnerState::Info,
                accepted_epoch,
                info_zxid: last_zxid,
                position: None,
                acked: 0,
                last_heard_ms: now,
            },
        );
        l.pending_syncs.retain(|(f, _, _)| *f != from);
        let (phase, epoch) = (l.phase, l.epoch);
        match phase {
            LeaderPhase::Discovery => self.try_choose_epoch(),
            LeaderPhase::AwaitAcceptedWrite => {}
            _ => self.peer_send(from, &Msg::LeaderInfo { epoch }),
        }
    }

    fn on_ack_epoch(&mut self, from: u64, current: u64, last: i64, applied: i64) {
        let (my_current, my_last) = (
            self.z().current_epoch,
            self.leader().expect("leading").initial_last,
        );
        let l = self.leader_mut().expect("leading");
        let Some(x) = l.learners.get_mut(&from) else {
            return;
        };
        if x.state != LearnerState::Info {
            return;
        }
        x.state = LearnerState::AckedEpoch;
        x.position = Some((current, last, applied));
        let phase = l.phase;
        if phase < LeaderPhase::Syncing && (current, last) > (my_current, my_last) {
            // A learner has seen more than we have: we must not lead.
            return self.look("a follower is more recent than the leader");
        }
        match phase {
            LeaderPhase::AwaitAckEpochs => self.check_epoch_acks(),
            LeaderPhase::Syncing | LeaderPhase::Established => self.sync_learner(from),
            _ => {}
        }
    }

    /// Bring one learner to our history: DIFF, TRUNC or SNAP, the
    /// proposals after the common point, the commit point, NEWLEADER.
    fn sync_learner(&mut self, id: u64) {
        let l = self.leader().expect("leading");
        let epoch = l.epoch;
        let commit = l.commit;
        let Some((_, last, applied)) = l.learners.get(&id).and_then(|x| x.position) else {
            return;
        };
        let z = self.z();
        let common = if z.in_history(last) {
            Some(last)
        } else {
            // Our last zxid of the learner's epoch, if we have one.
            let e = epoch_of(last);
            z.history
                .iter()
                .rev()
                .map(|r| r.header.zxid)
                .chain([z.history_base])
                .find(|x| epoch_of(*x) == e && *x < last)
                .filter(|x| z.in_history(*x))
        };
        // ZK-2845: what the learner applied is not looked at.
        #[cfg(madsim)]
        let applied = if self.bug(Bug::Zk2845) {
            i64::MIN
        } else {
            applied
        };
        let common = common.filter(|c| *c <= z.logged && applied <= *c);
        let from = match common {
            Some(c) if c == last => {
                if z.logged > c {
                    cover::hit(Mark::SyncDiff);
                }
                self.peer_send(id, &Msg::Diff { zxid: c });
                c
            }
            // ZK-5010: DIFF where TRUNC is due.
            #[cfg(madsim)]
            Some(c) if self.bug(Bug::Zk5010) => {
                cover::hit(Mark::SyncDiff);
                self.peer_send(id, &Msg::Diff { zxid: c });
                c
            }
            Some(c) => {
                cover::hit(Mark::SyncTrunc);
                self.peer_send(id, &Msg::Trunc { zxid: c });
                c
            }
            None => {
                cover::hit(Mark::SyncSnap);
                let zx = self.tree.last_zxid();
                let snap = self.snapshot_data(zx);
                self.peer_send(id, &Msg::Snap(Box::new(snap)));
                zx
            }
        };
        let missing: Vec<TxnRecord> = self
            .z()
            .history
            .iter()
            .filter(|r| r.header.zxid > from)
            .filter(|r| !self.z().not_in_committed_log(r.header.zxid))
            .cloned()
            .collect();
        for r in missing {
            self.peer_send(id, &Msg::Proposal(Box::new(r)));
        }
        self.peer_send(id, &Msg::Commit { zxid: commit });
        self.peer_send(id, &Msg::NewLeader { epoch });
        let x = self
            .leader_mut()
            .expect("leading")
            .learners
            .get_mut(&id)
            .expect("learner");
        x.state = LearnerState::Syncing;
        x.acked = 0;
    }

    fn on_ack(&mut self, from: u64, zxid: i64, newleader: bool) {
        let established = self.z().is_established_leader();
        let commit = self.leader().expect("leading").commit;
        let l = self.leader_mut().expect("leading");
        let Some(x) = l.learners.get_mut(&from) else {
            return;
        };
        if newleader {
            if x.state != LearnerState::Syncing {
                return;
            }
            x.state = LearnerState::Synced;
            x.acked = zxid;
            if established {
                x.state = LearnerState::UpToDate;
                self.peer_send(from, &Msg::Commit { zxid: commit });
                self.peer_send(from, &Msg::UpToDate);
            } else {
                self.check_established();
            }
        } else if x.counts() {
            x.acked = x.acked.max(zxid);
        }
        self.leader_commit();
    }

    fn check_established(&mut self) {
        let durable = self.z().durable;
        let Some(l) = self.leader() else { return };
        if l.phase != LeaderPhase::Syncing || !l.current_written || durable < l.initial_last {
            return;
        }
        let n = 1 + l.learners.values().filter(|x| x.counts()).count();
        if !self.quorum(n) {
            return;
        }
        let epoch = l.epoch;
        tracing::info!(id = self.my_id(), epoch, "epoch established, serving");
        let l = self.leader_mut().expect("leading");
        l.phase = LeaderPhase::Established;
        let synced: Vec<u64> = l
            .learners
            .iter_mut()
            .filter(|(_, x)| x.state == LearnerState::Synced)
            .map(|(id, x)| {
                x.state = LearnerState::UpToDate;
                *id
            })
            .collect();
        for id in synced {
            self.peer_send(id, &Msg::UpToDate);
        }
        self.next_zxid = make_zxid(epoch, 1);
        // Every session gets a full timeout from now (ZooKeeper's new
        // leader does the same).
        // Closing marks belong to closeSession proposals of an older epoch
        // that were never committed; without clearing them such a session
        // would never be expired again.
        self.sessions.clear_closing();
        let now = self.now_ms;
        let ids: Vec<i64> = self.sessions.iter().map(|s| s.id).collect();
        for id in ids {
            self.sessions.touch(id, now);
        }
        self.last_reap_ms = now;
    }

    /// Commit everything a quorum (our own durable log included) has.
    fn leader_commit(&mut self) {
        let durable = self.z().durable;
        let Some(l) = self.leader() else { return };
        if l.phase != LeaderPhase::Established {
            return;
        }
        let mut acks: Vec<i64> = l
            .learners
            .values()
            .filter(|x| x.counts())
            .map(|x| x.acked)
            .chain([durable])
            .collect();
        acks.sort_unstable_by(|a, b| b.cmp(a));
        let q = self.z().cfg.voters.len() / 2 + 1;
        let Some(&c) = acks.get(q - 1) else { return };
        let c = c.min(self.z().logged);
        if c <= l.commit {
            return;
        }
        self.leader_mut().expect("leading").commit = c;
        self.apply_upto(c);
        let to: Vec<u64> = self
            .leader()
            .expect("leading")
            .learners
            .iter()
            .filter(|(_, x)| x.forwarding())
            .map(|(id, _)| *id)
            .collect();
        for id in to {
            self.peer_send(id, &Msg::Commit { zxid: c });
        }
        self.release_syncs();
    }

    fn release_syncs(&mut self) {
        let Some(l) = self.leader_mut() else { return };
        let commit = l.commit;
        let mut done = Vec::new();
        while l
            .pending_syncs
            .front()
            .is_some_and(|(_, _, t)| *t <= commit)
        {
            done.push(l.pending_syncs.pop_front().expect("checked"));
        }
        for (to, id, zxid) in done {
            self.peer_send(to, &Msg::SyncDone { id, zxid });
        }
    }

    fn leader_tick(&mut self) {
        let now = self.now_ms;
        let tick = self.tick_ms();
        let (init, sync) = (
            self.z().cfg.init_limit as i64,
            self.z().cfg.sync_limit as i64,
        );
        let l = self.leader().expect("leading");
        let established = l.phase == LeaderPhase::Established;
        if !established && now - l.started_ms > init * tick {
            cover::hit(Mark::LeaderStepDown);
            return self.look("no quorum synced within initLimit");
        }
        let limit = if established { sync } else { init } * tick;
        let l = self.leader_mut().expect("leading");
        l.learners.retain(|_, x| now - x.last_heard_ms <= limit);
        let live = l.learners.values().filter(|x| x.counts()).count();
        if established && !self.quorum(1 + live) {
            cover::hit(Mark::LeaderStepDown);
            return self.look("not sufficient followers synced");
        }
        let l = self.leader_mut().expect("leading");
        if now - l.last_ping_ms >= tick / 2 {
            l.last_ping_ms = now;
            let commit = l.commit;
            let to: Vec<u64> = l.learners.keys().copied().collect();
            for id in to {
                self.peer_send(
                    id,
                    &Msg::Ping {
                        commit_zxid: commit,
                    },
                );
            }
        }
        if established {
            self.on_tick();
        }
    }

    /// A new transaction was proposed (leader): log it, send it.
    pub(crate) fn zab_proposed(&mut self, r: &TxnRecord) {
        self.zm().push_history(r);
        let Some(l) = self.leader() else { return };
        let to: Vec<u64> = l
            .learners
            .iter()
            .filter(|(_, x)| x.forwarding())
            .map(|(id, _)| *id)
            .collect();
        let m = Msg::Proposal(Box::new(r.clone()));
        for id in to {
            self.peer_send(id, &m);
        }
    }

    fn on_forwarded(
        &mut self,
        from: u64,
        session: i64,
        cxid: i32,
        op: i32,
        body: &[u8],
        auth: Vec<jute::Id>,
    ) {
        if !self.z().is_established_leader() {
            return;
        }
        let mut r = Reader::new(body);
        let Ok(req) = Request::decode(op, &mut r) else {
            tracing::warn!(from, op, "undecodable forwarded request dropped");
            return;
        };
        if !req.is_write() {
            return;
        }
        let txn = if !self.sessions.is_live(session) {
            Txn::Error {
                err: ErrorCode::SessionExpired.code(),
            }
        } else if self.session_moved(session, from) {
            Txn::Error {
                err: ErrorCode::SessionMoved.code(),
            }
        } else {
            self.sessions.touch(session, self.now_ms);
            if req == Request::CloseSession {
                self.sessions.set_closing(session);
            }
            self.prep_txn(&AuthInfo { ids: auth }, session, req).0
        };
        self.propose(session, cxid, txn, None);
    }

    /// Record `by` as the session's server if none is known; true if the
    /// session belongs to another server (SessionMoved).
    pub(crate) fn session_moved(&mut self, session: i64, by: u64) -> bool {
        let Some(l) = self.leader_mut() else {
            return false;
        };
        match l.owners.get(&session) {
            Some(o) if *o != by => {
                cover::hit(Mark::SessionMoved);
                true
            }
            Some(_) => false,
            None => {
                l.owners.insert(session, by);
                false
            }
        }
    }

    /// The leader's own client attached to (or created) this session.
    pub(crate) fn claim_session(&mut self, session: i64) {
        let me = self.my_id();
        if let Some(l) = self.leader_mut() {
            l.owners.insert(session, me);
        }
    }

    // ---- follower ----------------------------------------------------

    /// Acknowledge NEWLEADER with everything logged, and enter broadcast
    /// (not yet serving: UPTODATE comes after).
    fn ack_newleader(&mut self) {
        let logged = self.z().logged;
        let f = self.follower_mut().expect("following");
        f.phase = FollowerPhase::Broadcast { up_to_date: false };
        let leader = f.leader;
        self.peer_send(
            leader,
            &Msg::Ack {
                zxid: logged,
                newleader: true,
            },
        );
    }

    fn send_ack_epoch(&mut self) {
        let m = Msg::AckEpoch {
            current_epoch: self.z().current_epoch,
            last_zxid: self.z().logged,
            applied_zxid: self.tree.last_zxid(),
        };
        let f = self.follower_mut().expect("following");
        f.phase = FollowerPhase::Syncing;
        let leader = f.leader;
        self.peer_send(leader, &m);
    }

    fn follower_on(&mut self, m: Msg) {
        let f = self.follower().expect("following");
        let (phase, leader) = (f.phase, f.leader);
        // Waiting for currentEpoch to be durable is still part of the sync:
        // the leader already forwards new proposals and commits, which a
        // slow disk makes sure arrive meanwhile.
        let in_sync = phase == FollowerPhase::Syncing;
        let syncing = in_sync || phase == FollowerPhase::AwaitCurrentWrite;
        let broadcasting = matches!(phase, FollowerPhase::Broadcast { .. });
        match m {
            Msg::LeaderInfo { epoch } if phase == FollowerPhase::Discovery => {
                let accepted = self.z().accepted_epoch;
                // ZK-335: no acceptedEpoch to hold the leader to.
                #[cfg(madsim)]
                let accepted = if self.bug(crate::bugs::Bug::Zk335) {
                    epoch_of(self.z().logged).min(accepted)
                } else {
                    accepted
                };
                if epoch < accepted {
                    return self.look("the leader's epoch is older than ours");
                }
                self.follower_mut().expect("following").epoch = epoch;
                if epoch > accepted {
                    self.follower_mut().expect("following").phase =
                        FollowerPhase::AwaitAcceptedWrite;
                    self.write_epoch(EpochFile::Accepted, epoch);
                } else {
                    self.send_ack_epoch();
                }
            }
            Msg::Diff { .. } if in_sync => {}
            Msg::Trunc { zxid } if in_sync => self.truncate(zxid),
            Msg::Snap(data) if in_sync => self.install_snapshot(*data),
            Msg::Proposal(r) if syncing || broadcasting => self.log_proposal(*r),
            // ZK-4394: a COMMIT for a proposal no longer pending, between
            // the NEWLEADER ACK and UPTODATE, is an internal error.
            #[cfg(madsim)]
            Msg::Commit { zxid }
                if self.bug(Bug::Zk4394)
                    && phase == (FollowerPhase::Broadcast { up_to_date: false })
                    && zxid <= self.tree.last_zxid() =>
            {
                self.out.push(Effect::Stop {
                    reason: format!(
                        "NullPointerException: COMMIT {zxid:#x} for a proposal no longer pending (ZK-4394)"
                    ),
                });
            }
            Msg::Commit { zxid } if syncing || broadcasting => {
                let f = self.follower_mut().expect("following");
                f.commit_seen = f.commit_seen.max(zxid);
                if broadcasting {
                    self.follower_apply();
                }
            }
            Msg::NewLeader { epoch } if in_sync => {
                let f = self.follower_mut().expect("following");
                if epoch != f.epoch {
                    return self.look("NEWLEADER for another epoch");
                }
                f.phase = FollowerPhase::AwaitCurrentWrite;
                self.write_epoch(EpochFile::Current, epoch);
                // ZK-3911: NEWLEADER acknowledged on receipt, before the
                // synced proposals (and currentEpoch) are durable.
                #[cfg(madsim)]
                if self.bug(Bug::Zk3911) {
                    self.ack_newleader();
                }
            }
            Msg::UpToDate if broadcasting => {
                self.follower_mut().expect("following").phase =
                    FollowerPhase::Broadcast { up_to_date: true };
                tracing::info!(id = self.my_id(), leader, "up to date, serving");
                let durable = self.z().durable;
                self.peer_send(
                    leader,
                    &Msg::Ack {
                        zxid: durable,
                        newleader: false,
                    },
                );
                self.follower_apply();
            }
            Msg::Ping { .. } => {
                let sessions: Vec<i64> =
                    std::mem::take(&mut self.zm().touched).into_iter().collect();
                self.peer_send(leader, &Msg::PingReply { sessions });
            }
            Msg::Revalidated { session, answer } => self.on_revalidated(session, answer),
            Msg::SyncDone { id, zxid } => {
                if let Some(s) = self.zm().syncs.get_mut(&id) {
                    s.target = Some(zxid);
                }
                self.check_syncs();
            }
            other => {
                tracing::debug!(
                    msg = other.name(),
                    ?phase,
                    "unexpected message from the leader"
                );
            }
        }
    }

    fn truncate(&mut self, zxid: i64) {
        // ZK-2845: the learner keeps what it applied.
        #[cfg(madsim)]
        let keep_tree = self.bug(Bug::Zk2845);
        #[cfg(not(madsim))]
        let keep_tree = false;
        if self.tree.last_zxid() > zxid && !keep_tree {
            // The leader chose TRUNC although we applied past it: it must
            // not, so do not obey; start over.
            return self.look("TRUNC below our applied state");
        }
        self.inflight.retain(|f| f.record.header.zxid <= zxid);
        let z = self.zm();
        while z.history.back().is_some_and(|r| r.header.zxid > zxid) {
            z.history.pop_back();
        }
        if z.history_base > zxid {
            z.history.clear();
            z.history_base = zxid;
        }
        z.logged = zxid;
        z.durable = z.durable.min(zxid);
        z.acked = z.acked.min(zxid);
        self.out.push(Effect::Truncate { zxid });
    }

    fn install_snapshot(&mut self, data: crate::storage::SnapshotData) {
        cover::hit(Mark::SnapInstalled);
        let zx = data.last_zxid;
        self.tree = crate::recovery::tree_from_records(&data.nodes, zx);
        let old: Vec<i64> = self.sessions.iter().map(|s| s.id).collect();
        for id in old {
            self.sessions.remove(id);
        }
        for (id, t) in &data.sessions {
            self.sessions.add(*id, *t, self.now_ms);
        }
        self.inflight.clear();
        self.overlay = Default::default();
        self.since_snapshot = 0;
        let z = self.zm();
        z.history.clear();
        z.history_base = zx;
        z.logged = zx;
        z.durable = zx;
        z.acked = z.acked.min(zx);
        let f = self.follower_mut().expect("following");
        f.commit_seen = f.commit_seen.max(zx);
        self.out.push(Effect::InstallSnapshot(Box::new(data)));
    }

    fn log_proposal(&mut self, r: TxnRecord) {
        let z = r.header.zxid;
        let logged = self.z().logged;
        if z <= logged {
            return; // already have it
        }
        let next_in_epoch = z == logged + 1;
        let new_epoch = epoch_of(z) > epoch_of(logged) && counter_of(z) == 1;
        if !next_in_epoch && !new_epoch {
            cover::hit(Mark::FollowerGap);
            return self.look("a gap in the proposals");
        }
        self.zm().push_history(&r);
        #[cfg(madsim)]
        let syncing = self
            .follower()
            .is_some_and(|f| f.phase == FollowerPhase::Syncing);
        // ZK-4925: received during sync, so not in the committed log.
        #[cfg(madsim)]
        if self.bug(Bug::Zk4925) && syncing {
            self.zm().sync_only.insert(z);
        }
        // ZK-4646: queued for the log writer, handed over only after the
        // NEWLEADER ACK (with what arrives until then, in order).
        #[cfg(madsim)]
        if self.bug(Bug::Zk4646)
            && self.follower().is_some_and(|f| {
                matches!(
                    f.phase,
                    FollowerPhase::Syncing | FollowerPhase::AwaitCurrentWrite
                )
            })
        {
            self.zm().held_for_log.push(r.clone());
            self.inflight.push_back(InFlight {
                record: r,
                origin: None,
            });
            return;
        }
        self.out.push(Effect::Persist {
            records: vec![r.clone()],
        });
        self.inflight.push_back(InFlight {
            record: r,
            origin: None,
        });
    }

    /// Apply what is both committed and durable here.
    fn follower_apply(&mut self) {
        let Some(f) = self.follower() else { return };
        if !matches!(f.phase, FollowerPhase::Broadcast { .. }) {
            return;
        }
        let upto = f.commit_seen.min(self.z().durable);
        self.apply_upto(upto);
        self.check_syncs();
    }

    /// A write from one of our clients goes to the leader.
    pub(crate) fn forward_write(
        &mut self,
        conn: ConnId,
        session: i64,
        xid: i32,
        op: i32,
        req: Request,
        body: Vec<u8>,
    ) {
        let token = self.new_token();
        let kind = reply_kind(&req);
        if kind == ReplyKind::CloseSession {
            self.sessions.set_closing(session);
        }
        let now = self.now_ms;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.push(Entry::Write(token), now);
        let auth = c.auth.ids.clone();
        let origin = Origin {
            conn,
            xid,
            kind,
            token,
        };
        self.zm()
            .pending_fwd
            .entry(session)
            .or_default()
            .push_back(Fwd { cxid: xid, origin });
        let leader = self.follower().expect("following").leader;
        self.peer_send(
            leader,
            &Msg::Request {
                session,
                cxid: xid,
                op,
                body,
                auth,
            },
        );
    }

    pub(crate) fn forward_create_session(&mut self, session: i64, timeout_ms: i32, origin: Origin) {
        let conn = origin.conn;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.state = ConnState::Establishing;
        }
        self.zm()
            .pending_fwd
            .entry(session)
            .or_default()
            .push_back(Fwd { cxid: 0, origin });
        let leader = self.follower().expect("following").leader;
        self.peer_send(
            leader,
            &Msg::CreateSession {
                session,
                timeout_ms,
            },
        );
    }

    pub(crate) fn forward_revalidate(
        &mut self,
        conn: ConnId,
        session: i64,
        timeout_ms: i32,
        read_only: Option<bool>,
    ) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.state = ConnState::Establishing;
        }
        let first = !self.z().revalidating.contains_key(&session);
        self.zm()
            .revalidating
            .entry(session)
            .or_default()
            .push(Reattach {
                conn,
                timeout_ms,
                read_only,
            });
        if first {
            let leader = self.follower().expect("following").leader;
            self.peer_send(
                leader,
                &Msg::Revalidate {
                    session,
                    timeout_ms,
                },
            );
        }
    }

    fn on_revalidated(&mut self, session: i64, answer: SessionCheck) {
        let waiting = self.zm().revalidating.remove(&session).unwrap_or_default();
        // Valid at the leader but not yet applied here (this learner lags
        // behind its creation): no answer yet, the client comes back.
        let answer = match answer {
            SessionCheck::Valid if self.sessions.get(session).is_none() => SessionCheck::Unsure,
            a => a,
        };
        for r in waiting {
            if !self.conns.contains_key(&r.conn) {
                continue;
            }
            match answer {
                SessionCheck::Valid => {
                    if let Some(old) = self.session_conn.get(&session).copied() {
                        if old != r.conn {
                            self.close(old);
                        }
                    }
                    self.sessions
                        .set_timeout(session, r.timeout_ms, self.now_ms);
                    self.establish(r.conn, session, r.timeout_ms, r.read_only);
                }
                SessionCheck::Expired => self.refuse_session(r.conn, r.read_only),
                SessionCheck::Unsure => self.close(r.conn),
            }
        }
    }

    /// Whether this server leads an established epoch and has heard from
    /// a quorum (itself included) within syncLimit ticks, by its own clock
    /// now. A leader that was paused or cut off may hold a stale view
    /// until its next tick makes it step down; it must not tell a client
    /// that its session is gone on the strength of that view.
    pub(crate) fn leader_vouches(&self) -> bool {
        let Some(l) = self.leader() else { return false };
        if l.phase != LeaderPhase::Established {
            return false;
        }
        let limit = self.z().cfg.sync_limit as i64 * self.tick_ms();
        let heard = l
            .learners
            .values()
            .filter(|x| x.counts() && self.now_ms - x.last_heard_ms <= limit)
            .count();
        self.quorum(1 + heard)
    }

    /// The origin of a transaction a learner forwarded for its client.
    pub(crate) fn forwarded_origin(&mut self, hdr: &TxnHeader) -> Option<Origin> {
        let z = self.zab.as_deref_mut()?;
        let q = z.pending_fwd.get_mut(&hdr.session_id)?;
        if q.front().is_some_and(|f| f.cxid == hdr.cxid) {
            let f = q.pop_front().expect("checked");
            if q.is_empty() {
                z.pending_fwd.remove(&hdr.session_id);
            }
            return Some(f.origin);
        }
        None
    }

    /// A client `sync` in quorum mode: wait until the leader's commits as
    /// of now are applied here.
    pub(crate) fn zab_sync(&mut self, conn: ConnId, xid: i32, req: Request) {
        let token = self.new_token();
        let now = self.now_ms;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.push(Entry::Wait(token), now);
        let target = match self.follower() {
            Some(f) => {
                let leader = f.leader;
                self.peer_send(leader, &Msg::SyncReq { id: token });
                None
            }
            None => Some(self.next_zxid - 1),
        };
        self.zm().syncs.insert(
            token,
            SyncWait {
                conn,
                xid,
                req,
                target,
            },
        );
        self.check_syncs();
    }

    fn check_syncs(&mut self) {
        let applied = self.tree.last_zxid();
        let Some(z) = self.zab.as_deref_mut() else {
            return;
        };
        let ready: Vec<u64> = z
            .syncs
            .iter()
            .filter(|(_, s)| s.target.is_some_and(|t| t <= applied))
            .map(|(t, _)| *t)
            .collect();
        for token in ready {
            let s = self.zm().syncs.remove(&token).expect("ready");
            if let Some(c) = self.conns.get_mut(&s.conn) {
                if let Some(e) = c
                    .queue
                    .iter_mut()
                    .find(|e| matches!(e, Entry::Wait(t) if *t == token))
                {
                    *e = Entry::Read(s.xid, s.req);
                }
                self.drain(s.conn);
            }
        }
    }

    /// After a transaction was applied.
    pub(crate) fn zab_applied(&mut self) {
        if self.leader().is_some() {
            self.check_syncs();
        }
    }
}
