//! Watches: what ZooKeeper promises about notifications (reference §2.4,
//! §2.5), judged from the client's trace and the changes the history
//! proves ([`super::changes`]), without the server's watch code.
//!
//! Notifications carry no zxid, so the checker rebuilds, per connection,
//! the server's watch tables from the registrations the client recorded
//! (`watch_added`, with the reply zxid at which the server registered it)
//! and from SetWatches (re-registration on a new connection), replays the
//! proven changes in zxid order against them, and so knows which events
//! the connection must receive, in which order. Then it demands:
//!
//! - **Every event is explained**: a delivered event matches one expected
//!   trigger (path and type); a one-shot watch fires at most once (a second
//!   event has nothing to match); nothing fires for a change before the
//!   watch was registered.
//! - **Zxid order**: a connection's events match triggers in zxid order;
//!   a trigger skipped by a later event is lost.
//! - **Event before the data**: an event arrives while the client's last
//!   zxid is still below the change's zxid: no reply that shows the new
//!   state came first.
//! - **Nothing lost while the session lives**: every trigger whose zxid
//!   the client saw on that connection (its last zxid when the connection
//!   ended: the next handshake's, or the session's last) was delivered.
//!   Triggers above it may be lost with the connection.
//! - **SetWatches**: on a new connection the client re-registers its table
//!   with its last zxid; before the reply the server reports exactly what
//!   changed meanwhile (a data watch: NodeDeleted if the node is gone,
//!   NodeDataChanged if its mzxid is newer; an exist watch: NodeCreated if
//!   it exists; a child watch: NodeDeleted, or NodeChildrenChanged if its
//!   pzxid is newer); the rest is registered again at the reply's zxid.
//!   Persistent watches are re-registered without replay: their changes
//!   in between are not notified (documented).
//! - **Persistent-recursive** watches get every Created/Deleted/DataChanged
//!   at and under their path and never NodeChildrenChanged; persistent ones
//!   get the path's own events and NodeChildrenChanged.
//!
//! The documented window is accepted by construction: a one-shot watch
//! fires on the first change after its registration and is gone; the
//! changes until the client registers again expect nothing.
//!
//! Where an unknown write (or an unmodelled path) makes the triggers
//! uncertain, the checker is lenient for that path from the first zxid the
//! unknown change could have had: events there are accepted, and nothing
//! there is demanded. The notes say how much was lenient.

use super::changes::{parent, under, Change, Changes, Kind};
use super::{CheckResult, OpRec};
use crate::history::{Event, Ty};
use std::collections::{BTreeMap, BTreeSet};

pub const NAME: &str = "watch";

const CHILDREN: &str = "NodeChildrenChanged";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Standard,
    Persistent,
    Recursive,
}

/// The server's watch tables for one connection (model).
#[derive(Debug, Default, Clone)]
struct Tables {
    data: BTreeMap<String, Mode>,
    child: BTreeMap<String, Mode>,
}

impl Tables {
    fn add(&mut self, kind: &str, path: &str) {
        let p = path.to_string();
        match kind {
            "data" | "exist" => {
                self.data.insert(p, Mode::Standard);
            }
            "child" => {
                self.child.insert(p, Mode::Standard);
            }
            "persistent" => {
                self.data.insert(p.clone(), Mode::Persistent);
                self.child.insert(p, Mode::Persistent);
            }
            "persistent_recursive" => {
                self.data.insert(p.clone(), Mode::Recursive);
                self.child.insert(p, Mode::Recursive);
            }
            _ => {}
        }
    }

    /// The (path, event) notifications one change sends this connection
    /// (at most one per pair); one-shot watches that fire are removed.
    fn fire(&mut self, ch: &Change) -> BTreeSet<(String, &'static str)> {
        let mut out = BTreeSet::new();
        let p = ch.path.as_str();
        let ev = ch.kind.event();
        if let Some(m) = self.data.get(p).copied() {
            out.insert((p.to_string(), ev));
            if m == Mode::Standard {
                self.data.remove(p);
            }
        }
        if ch.kind == Kind::Deleted {
            if let Some(m) = self.child.get(p).copied() {
                if m != Mode::Recursive {
                    out.insert((p.to_string(), ev));
                    if m == Mode::Standard {
                        self.child.remove(p);
                    }
                }
            }
        }
        let mut a = p;
        while a != "/" {
            a = parent(a);
            if self.data.get(a) == Some(&Mode::Recursive) {
                out.insert((p.to_string(), ev));
                break;
            }
        }
        if ch.kind != Kind::DataChanged {
            let par = parent(p);
            if let Some(m) = self.child.get(par).copied() {
                if m != Mode::Recursive {
                    out.insert((par.to_string(), CHILDREN));
                    if m == Mode::Standard {
                        self.child.remove(par);
                    }
                }
            }
        }
        out
    }
}

/// The client's watch table (model of what it re-registers).
#[derive(Debug, Default, Clone)]
struct ClientTable {
    lists: BTreeMap<&'static str, BTreeSet<String>>,
}

const KINDS: [&str; 5] = [
    "data",
    "exist",
    "child",
    "persistent",
    "persistent_recursive",
];

impl ClientTable {
    fn add(&mut self, kind: &str, path: &str) {
        if let Some(k) = KINDS.iter().find(|k| **k == kind) {
            self.lists.entry(k).or_default().insert(path.to_string());
        }
    }

    fn fired(&mut self, event: &str, path: &str) {
        let drop: &[&str] = match event {
            "NodeCreated" | "NodeDataChanged" => &["data", "exist"],
            "NodeDeleted" => &["data", "exist", "child"],
            CHILDREN => &["child"],
            _ => &[],
        };
        for k in drop {
            if let Some(s) = self.lists.get_mut(k) {
                s.remove(path);
            }
        }
    }

    fn list(&self, kind: &str) -> impl Iterator<Item = &String> {
        self.lists.get(kind).into_iter().flatten()
    }
}

/// Paths where the checker must be lenient, from a zxid on.
#[derive(Debug, Default)]
struct Lenient {
    /// Path -> from.
    paths: BTreeMap<String, i64>,
    /// (subtree root, or `parent/*` for unknown children, from).
    subtrees: Vec<(String, i64)>,
}

impl Lenient {
    fn mark(&mut self, path: &str, from: i64) {
        let e = self.paths.entry(path.to_string()).or_insert(from);
        *e = (*e).min(from);
    }

    /// Lenient for `path` at zxid `z` (None: at any zxid).
    fn at(&self, path: &str, z: Option<i64>) -> bool {
        let ok = |f: i64| z.is_none_or(|z| f <= z);
        self.paths.get(path).is_some_and(|f| ok(*f))
            || self.subtrees.iter().any(|(q, f)| {
                let hit = match q.strip_suffix("/*") {
                    Some(par) => under(path, par) && path != par,
                    None => q == path,
                };
                hit && ok(*f)
            })
    }
}

/// One expected notification.
#[derive(Debug, Clone)]
struct Trig {
    zxid: i64,
    path: String,
    event: &'static str,
    strict: bool,
    done: bool,
    /// History index of the change's proof.
    at: usize,
}

#[derive(Debug, Default)]
struct Stats {
    sessions: usize,
    conns: usize,
    registrations: usize,
    events: usize,
    strict_matched: usize,
    replays: usize,
    lenient: BTreeSet<String>,
}

/// The watch verdict.
pub fn check(events: &[Event], ops: &[OpRec<'_>], changes: &Changes) -> CheckResult {
    let mut r = CheckResult::new(NAME);
    let mut by_session: BTreeMap<i64, Vec<(usize, &Event)>> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        if matches!(
            e.ty,
            Ty::Connected | Ty::WatchAdded | Ty::WatchEvent | Ty::WatchesRestored
        ) {
            by_session
                .entry(e.session.unwrap_or(0))
                .or_default()
                .push((i, e));
        }
    }
    let watching: BTreeSet<i64> = by_session
        .iter()
        .filter(|(_, v)| v.iter().any(|(_, e)| e.ty != Ty::Connected))
        .map(|(s, _)| *s)
        .collect();
    if watching.is_empty() {
        r.notes.push("no watches in this history".into());
        return r;
    }
    let mut last: BTreeMap<i64, i64> = BTreeMap::new();
    for o in ops {
        if let Some(z) = o.zxid() {
            let l = last.entry(o.session()).or_insert(z);
            *l = (*l).max(z);
        }
    }
    let all = changes.all();
    let mut st = Stats::default();
    for s in &watching {
        let items = &by_session[s];
        let mut session_last = last.get(s).copied().unwrap_or(0);
        for (_, e) in items {
            session_last = session_last.max(e.last_zxid.unwrap_or(0));
            if e.ty == Ty::WatchAdded {
                session_last = session_last.max(e.zxid.unwrap_or(0));
            }
        }
        st.sessions += 1;
        check_session(*s, items, session_last, changes, &all, &mut r, &mut st);
    }
    r.notes.push(format!(
        "{} sessions, {} connections, {} registrations, {} events ({} matched to a proven change, {} in SetWatches replays)",
        st.sessions, st.conns, st.registrations, st.events, st.strict_matched, st.replays
    ));
    if !st.lenient.is_empty() {
        let some: Vec<&String> = st.lenient.iter().take(5).collect();
        r.notes.push(format!(
            "lenient (unknown writes or unmodelled) on {} paths, e.g. {some:?}",
            st.lenient.len()
        ));
    }
    if changes.unknown > 0 {
        r.notes.push(format!(
            "{} unknown writes, {} resolved by a read of their value",
            changes.unknown, changes.resolved
        ));
    }
    r
}

fn check_session(
    s: i64,
    items: &[(usize, &Event)],
    session_last: i64,
    ch: &Changes,
    all: &[&Change],
    r: &mut CheckResult,
    st: &mut Stats,
) {
    // Split by connection, in order.
    let mut conns: Vec<(u32, Vec<(usize, &Event)>)> = Vec::new();
    for (i, e) in items {
        let c = e.conn.unwrap_or(0);
        match conns.last_mut() {
            Some((n, v)) if *n == c => v.push((*i, e)),
            _ => conns.push((c, vec![(*i, e)])),
        }
    }
    let mut table = ClientTable::default();
    for k in 0..conns.len() {
        let end = match conns.get(k + 1) {
            Some((_, v)) => v
                .first()
                .filter(|(_, e)| e.ty == Ty::Connected)
                .and_then(|(_, e)| e.last_zxid)
                .unwrap_or(session_last),
            None => session_last,
        };
        st.conns += 1;
        let ctx = Conn {
            session: s,
            conn: conns[k].0,
            items: &conns[k].1,
            end,
            ch,
            all,
        };
        ctx.check(&mut table, r, st);
    }
}

struct Conn<'a> {
    session: i64,
    conn: u32,
    items: &'a [(usize, &'a Event)],
    /// The client's last zxid when this connection ended.
    end: i64,
    ch: &'a Changes,
    all: &'a [&'a Change],
}

impl Conn<'_> {
    fn who(&self) -> String {
        format!(
            "session 0x{:x} connection {}",
            self.session as u64, self.conn
        )
    }

    /// Is the state of `p` at `z` (and, for `kids`, its child list)
    /// certain?
    fn state_certain(&self, p: &str, z: i64, kids: bool) -> bool {
        let list = self.ch.of(p);
        let from = list[..list.partition_point(|c| c.zxid <= z)]
            .last()
            .map_or(i64::MIN, |c| c.zxid);
        let own = self.ch.uncertain_from(p, from).is_some_and(|f| f < z);
        let children = kids
            && self
                .ch
                .children_uncertain_from(p, from)
                .is_some_and(|f| f < z);
        !own && !children
    }

    fn check(&self, table: &mut ClientTable, r: &mut CheckResult, st: &mut Stats) {
        let (first_i, first) = self.items[0];
        let connected = (first.ty == Ty::Connected).then_some(first);
        let rel = connected.and_then(|e| e.last_zxid).unwrap_or(0);
        let sent = connected.is_some_and(|e| e.detail.as_deref() == Some("set_watches"));
        let snapshot = table.clone();
        let restored = self
            .items
            .iter()
            .position(|(_, e)| e.ty == Ty::WatchesRestored);
        let restore = restored
            .map(|i| self.items[i].1)
            .filter(|e| e.error.is_none())
            .and_then(|e| e.zxid);
        let mut lenient = Lenient::default();
        let mut server = Tables::default();
        // Registrations as (zxid, kind, path), in order.
        let mut regs: Vec<(i64, String, String)> = Vec::new();
        // Expected SetWatches replay events (a multiset).
        let mut replay: Vec<(String, &'static str)> = Vec::new();
        if sent {
            match restore {
                Some(zs) => self.restore(&snapshot, rel, zs, &mut replay, &mut regs, &mut lenient),
                None => {
                    for k in KINDS {
                        for p in snapshot.list(k) {
                            lenient.mark(p, i64::MIN);
                        }
                    }
                }
            }
        }
        for (_, e) in self.items.iter().filter(|(_, e)| e.ty == Ty::WatchAdded) {
            st.registrations += 1;
            regs.push((
                e.zxid.unwrap_or(0),
                e.watch.clone().unwrap_or_default(),
                e.path.clone().unwrap_or_default(),
            ));
        }
        for (a, kind, p) in &regs {
            self.mark_uncertain(kind, p, *a, &mut lenient);
        }
        let mut trigs = self.triggers(&mut server, &regs, &lenient);
        for p in lenient.paths.keys() {
            st.lenient.insert(p.clone());
        }
        for (q, _) in &lenient.subtrees {
            st.lenient.insert(q.clone());
        }

        // Deliveries, in order.
        let replay_until = if sent {
            restored.unwrap_or(self.items.len())
        } else {
            0
        };
        let mut cursor = i64::MIN;
        for (n, (i, e)) in self.items.iter().enumerate() {
            match e.ty {
                Ty::WatchAdded => table.add(
                    e.watch.as_deref().unwrap_or(""),
                    e.path.as_deref().unwrap_or(""),
                ),
                Ty::WatchEvent => {
                    st.events += 1;
                    let path = e.path.as_deref().unwrap_or("");
                    let event = e.event.as_deref().unwrap_or("");
                    table.fired(event, path);
                    if n < replay_until {
                        st.replays += 1;
                        self.match_replay(*i, e, &mut replay, &lenient, r);
                    } else {
                        self.match_live(*i, e, &mut trigs, &mut cursor, &lenient, r, st);
                    }
                }
                _ => {}
            }
        }
        if restore.is_some() {
            for (p, ev) in replay.iter().filter(|(p, _)| !lenient.at(p, None)) {
                r.violation_with(
                    format!(
                        "{}: SetWatches (relative zxid {rel}) was answered without the {ev} for {p} the server owed",
                        self.who()
                    ),
                    [first_i],
                );
            }
        }
        for t in trigs
            .iter()
            .filter(|t| t.strict && !t.done && t.zxid <= self.end)
        {
            r.violation_with(
                format!(
                    "{}: lost event: {} {} (change at zxid {}) was never delivered, though the client saw zxid {} on this connection",
                    self.who(),
                    t.event,
                    t.path,
                    t.zxid,
                    self.end
                ),
                [first_i, t.at],
            );
        }
    }

    /// SetWatches at `zs` against the client's table: expected replay
    /// events and re-registrations.
    fn restore(
        &self,
        snap: &ClientTable,
        rel: i64,
        zs: i64,
        replay: &mut Vec<(String, &'static str)>,
        regs: &mut Vec<(i64, String, String)>,
        lenient: &mut Lenient,
    ) {
        for (kind, kids) in [("data", false), ("exist", false), ("child", true)] {
            for p in snap.list(kind) {
                if !self.state_certain(p, zs, kids) {
                    lenient.mark(p, i64::MIN);
                    continue;
                }
                let n = self.ch.state_at(p, zs);
                let ev = match kind {
                    "data" if !n.exists => Some("NodeDeleted"),
                    "data" if n.mzxid.is_some_and(|m| m > rel) => Some("NodeDataChanged"),
                    "exist" if n.exists => Some("NodeCreated"),
                    "child" if !n.exists => Some("NodeDeleted"),
                    "child" if n.pzxid.is_some_and(|m| m > rel) => Some(CHILDREN),
                    _ => None,
                };
                match ev {
                    Some(ev) => replay.push((p.clone(), ev)),
                    None => regs.push((zs, kind.to_string(), p.clone())),
                }
            }
        }
        for kind in ["persistent", "persistent_recursive"] {
            for p in snap.list(kind) {
                regs.push((zs, kind.to_string(), p.clone()));
            }
        }
    }

    /// Be lenient where unknown changes may fire (or have fired) a watch
    /// registered at `a`.
    fn mark_uncertain(&self, kind: &str, p: &str, a: i64, lenient: &mut Lenient) {
        let ch = self.ch;
        let from = match kind {
            "data" | "exist" => ch.uncertain_from(p, a),
            "child" | "persistent" => ch.children_uncertain_from(p, a),
            "persistent_recursive" => {
                lenient.subtrees.extend(ch.subtree_uncertain(p, a));
                None
            }
            _ => None,
        };
        if let Some(f) = from {
            lenient.mark(p, f);
        }
    }

    /// Replay the proven changes against the registrations: the
    /// notifications this connection must get.
    fn triggers(
        &self,
        server: &mut Tables,
        regs: &[(i64, String, String)],
        lenient: &Lenient,
    ) -> Vec<Trig> {
        let mut order: Vec<&(i64, String, String)> = regs.iter().collect();
        order.sort_by_key(|(a, _, _)| *a);
        let Some(start) = order.first().map(|(a, _, _)| *a) else {
            return Vec::new();
        };
        let mut next = 0;
        let mut out = Vec::new();
        let from = self.all.partition_point(|c| c.zxid <= start);
        for c in &self.all[from..] {
            while next < order.len() && order[next].0 < c.zxid {
                server.add(&order[next].1, &order[next].2);
                next += 1;
            }
            for (path, event) in server.fire(c) {
                out.push(Trig {
                    zxid: c.zxid,
                    strict: !lenient.at(&path, Some(c.zxid)),
                    path,
                    event,
                    done: false,
                    at: c.at,
                });
            }
        }
        out
    }

    fn match_replay(
        &self,
        i: usize,
        e: &Event,
        replay: &mut Vec<(String, &'static str)>,
        lenient: &Lenient,
        r: &mut CheckResult,
    ) {
        let path = e.path.as_deref().unwrap_or("");
        let event = e.event.as_deref().unwrap_or("");
        if let Some(k) = replay.iter().position(|(p, ev)| p == path && *ev == event) {
            replay.remove(k);
        } else if !lenient.at(path, None) {
            r.violation_with(
                format!(
                    "{}: {event} {path} during SetWatches, but nothing the client re-registered had changed that way",
                    self.who()
                ),
                [i],
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn match_live(
        &self,
        i: usize,
        e: &Event,
        trigs: &mut [Trig],
        cursor: &mut i64,
        lenient: &Lenient,
        r: &mut CheckResult,
        st: &mut Stats,
    ) {
        let path = e.path.as_deref().unwrap_or("");
        let event = e.event.as_deref().unwrap_or("");
        let stamp = e.last_zxid.unwrap_or(0);
        let found = trigs
            .iter()
            .position(|t| !t.done && t.path == path && t.event == event && t.zxid >= *cursor);
        let Some(k) = found else {
            if !lenient.at(path, None) {
                r.violation_with(
                    format!(
                        "{}: unexpected {event} {path} (last zxid {stamp}): no watch of this connection was due to fire for it (a one-shot watch firing twice, an event for a change before its registration, or out of zxid order)",
                        self.who()
                    ),
                    [i],
                );
            }
            return;
        };
        trigs[k].done = true;
        let t = trigs[k].clone();
        if !t.strict {
            return;
        }
        st.strict_matched += 1;
        if stamp >= t.zxid {
            r.violation_with(
                format!(
                    "{}: {event} {path} for the change at zxid {} arrived after a reply with zxid {stamp}: the client could see the new state before the event",
                    self.who(),
                    t.zxid
                ),
                [i, t.at],
            );
        }
        for s in trigs
            .iter_mut()
            .filter(|s| s.strict && !s.done && s.zxid < t.zxid)
        {
            s.done = true;
            r.violation_with(
                format!(
                    "{}: lost event: {} {} (change at zxid {}) was skipped; the next event delivered was for zxid {}",
                    self.who(),
                    s.event,
                    s.path,
                    s.zxid,
                    t.zxid
                ),
                [i, s.at],
            );
        }
        *cursor = t.zxid;
    }
}

#[cfg(test)]
mod tests {
    use super::super::changes::fixture::hx;
    use super::super::{pair_ops, Verdict};
    use super::*;

    fn run(text: &str) -> CheckResult {
        let ev = hx(text);
        let (ops, p) = pair_ops(&ev);
        assert!(p.is_empty(), "{p:?}");
        let ch = Changes::build(&ev, &ops);
        check(&ev, &ops, &ch)
    }

    fn passes(text: &str) {
        let r = run(text);
        assert_eq!(r.verdict, Verdict::Pass, "{r:#?}");
    }

    fn fails(text: &str, what: &str) {
        let r = run(text);
        assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
        assert!(
            r.violations.iter().any(|v| v.contains(what)),
            "wanted {what:?}: {r:#?}"
        );
    }

    /// Writer client 1 (session 0x1) sets /k three times; watcher client 2
    /// (session 0x2) reads with a watch at zxid 2, gets the event for zxid
    /// 3, misses zxid 4 (not registered: the documented window),
    /// re-registers at zxid 4 and gets zxid 5's event.
    const ONE_SHOT: &str = r#"
        1 invoke client=1 session=0x1 op_id=1 op=create path=/k value=a
        2 ok client=1 session=0x1 op_id=1 zxid=2
        3 connected client=2 session=0x2 conn=1 last_zxid=0
        4 invoke client=2 session=0x2 op_id=2 op=get_data path=/k watch=data
        5 watch_added client=2 session=0x2 conn=1 last_zxid=2 path=/k watch=data zxid=2
        6 ok client=2 session=0x2 op_id=2 zxid=2 value=a version=0 mzxid=2
        7 invoke client=1 session=0x1 op_id=3 op=set_data path=/k value=b version=-1
        8 watch_event client=2 session=0x2 conn=1 last_zxid=2 path=/k event=NodeDataChanged
        9 ok client=1 session=0x1 op_id=3 zxid=3 version=1 mzxid=3
        10 invoke client=1 session=0x1 op_id=4 op=set_data path=/k value=c version=-1
        11 ok client=1 session=0x1 op_id=4 zxid=4 version=2 mzxid=4
        12 invoke client=2 session=0x2 op_id=5 op=get_data path=/k watch=data
        13 watch_added client=2 session=0x2 conn=1 last_zxid=4 path=/k watch=data zxid=4
        14 ok client=2 session=0x2 op_id=5 zxid=4 value=c version=2 mzxid=4
        15 invoke client=1 session=0x1 op_id=6 op=set_data path=/k value=d version=-1
        16 watch_event client=2 session=0x2 conn=1 last_zxid=4 path=/k event=NodeDataChanged
        17 ok client=1 session=0x1 op_id=6 zxid=5 version=3 mzxid=5
        18 invoke client=2 session=0x2 op_id=7 op=exists path=/k
        19 ok client=2 session=0x2 op_id=7 zxid=5 exists=true version=3 mzxid=5
    "#;

    #[test]
    fn one_shot_window_is_accepted() {
        passes(ONE_SHOT);
    }

    #[test]
    fn a_lost_one_shot_event_is_caught() {
        // The first event never came, though the watcher later saw zxid 5.
        fails(
            &ONE_SHOT.replace(
                "8 watch_event client=2 session=0x2 conn=1 last_zxid=2 path=/k event=NodeDataChanged",
                "",
            ),
            "lost event",
        );
    }

    #[test]
    fn a_one_shot_watch_firing_twice_is_caught() {
        let twice = ONE_SHOT.replace(
            "11 ok client=1 session=0x1 op_id=4 zxid=4 version=2 mzxid=4",
            "11 ok client=1 session=0x1 op_id=4 zxid=4 version=2 mzxid=4\n11.5 watch_event client=2 session=0x2 conn=1 last_zxid=3 path=/k event=NodeDataChanged",
        );
        fails(&twice, "unexpected NodeDataChanged");
    }

    #[test]
    fn an_event_after_the_data_is_caught() {
        // The watcher had already seen zxid 3 (a reply) when the event for
        // zxid 3 arrived.
        fails(
            &ONE_SHOT.replace(
                "8 watch_event client=2 session=0x2 conn=1 last_zxid=2",
                "8 watch_event client=2 session=0x2 conn=1 last_zxid=3",
            ),
            "arrived after a reply",
        );
    }

    #[test]
    fn an_event_for_a_change_before_registration_is_caught() {
        // Registered at zxid 4, yet an event arrives with no change after 4.
        let text = ONE_SHOT.replace(
            "16 watch_event client=2 session=0x2 conn=1 last_zxid=4 path=/k event=NodeDataChanged",
            "",
        );
        let text = text.replace(
            "15 invoke client=1 session=0x1 op_id=6 op=set_data path=/k value=d version=-1",
            "14.5 watch_event client=2 session=0x2 conn=1 last_zxid=4 path=/k event=NodeDeleted\n15 invoke client=1 session=0x1 op_id=6 op=set_data path=/k value=d version=-1",
        );
        fails(&text, "unexpected NodeDeleted");
    }

    /// A persistent watch on /p and a recursive one on /r (session 0x2),
    /// writes by session 0x1.
    const PERSISTENT: &str = r#"
        1 invoke client=1 session=0x1 op_id=1 op=create path=/p value=a
        2 ok client=1 session=0x1 op_id=1 zxid=1
        3 invoke client=1 session=0x1 op_id=2 op=create path=/r value=a
        4 ok client=1 session=0x1 op_id=2 zxid=2
        5 connected client=2 session=0x2 conn=1 last_zxid=0
        6 invoke client=2 session=0x2 op_id=3 op=add_watch path=/p watch=persistent
        7 watch_added client=2 session=0x2 conn=1 last_zxid=2 path=/p watch=persistent zxid=2
        8 ok client=2 session=0x2 op_id=3 zxid=2
        9 invoke client=2 session=0x2 op_id=4 op=add_watch path=/r watch=persistent_recursive
        10 watch_added client=2 session=0x2 conn=1 last_zxid=2 path=/r watch=persistent_recursive zxid=2
        11 ok client=2 session=0x2 op_id=4 zxid=2
        12 invoke client=1 session=0x1 op_id=5 op=set_data path=/p value=b version=-1
        13 watch_event client=2 session=0x2 conn=1 last_zxid=2 path=/p event=NodeDataChanged
        14 ok client=1 session=0x1 op_id=5 zxid=3 version=1 mzxid=3
        15 invoke client=1 session=0x1 op_id=6 op=create path=/p/x value=c
        16 watch_event client=2 session=0x2 conn=1 last_zxid=2 path=/p event=NodeChildrenChanged
        17 ok client=1 session=0x1 op_id=6 zxid=4
        18 invoke client=1 session=0x1 op_id=7 op=create path=/r/y value=d
        19 watch_event client=2 session=0x2 conn=1 last_zxid=2 path=/r/y event=NodeCreated
        20 ok client=1 session=0x1 op_id=7 zxid=5
        21 invoke client=1 session=0x1 op_id=8 op=set_data path=/p value=e version=-1
        22 watch_event client=2 session=0x2 conn=1 last_zxid=2 path=/p event=NodeDataChanged
        23 ok client=1 session=0x1 op_id=8 zxid=6 version=2 mzxid=6
        24 invoke client=2 session=0x2 op_id=9 op=get_data path=/p
        25 ok client=2 session=0x2 op_id=9 zxid=6 value=e version=2 mzxid=6
    "#;

    #[test]
    fn persistent_and_recursive_watches_pass() {
        passes(PERSISTENT);
    }

    #[test]
    fn a_persistent_watch_losing_one_event_is_caught() {
        fails(
            &PERSISTENT.replace(
                "13 watch_event client=2 session=0x2 conn=1 last_zxid=2 path=/p event=NodeDataChanged",
                "",
            ),
            "lost event",
        );
    }

    #[test]
    fn a_recursive_watch_never_gets_children_changed() {
        fails(
            &PERSISTENT.replace(
                "19 watch_event client=2 session=0x2 conn=1 last_zxid=2 path=/r/y event=NodeCreated",
                "19 watch_event client=2 session=0x2 conn=1 last_zxid=2 path=/r/y event=NodeCreated\n19.5 watch_event client=2 session=0x2 conn=1 last_zxid=2 path=/r event=NodeChildrenChanged",
            ),
            "unexpected NodeChildrenChanged /r",
        );
    }

    #[test]
    fn events_out_of_zxid_order_are_caught() {
        // zxid 4's event before zxid 3's.
        let text = PERSISTENT
            .replace(
                "13 watch_event client=2 session=0x2 conn=1 last_zxid=2 path=/p event=NodeDataChanged",
                "",
            )
            .replace(
                "16 watch_event client=2 session=0x2 conn=1 last_zxid=2 path=/p event=NodeChildrenChanged",
                "16 watch_event client=2 session=0x2 conn=1 last_zxid=2 path=/p event=NodeChildrenChanged\n16.5 watch_event client=2 session=0x2 conn=1 last_zxid=2 path=/p event=NodeDataChanged",
            );
        let r = run(&text);
        assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
    }

    /// The watcher (0x2) registers at zxid 2, loses its connection with
    /// last zxid 2; /k changes at 3 and 4 meanwhile; it reconnects and
    /// SetWatches (relative zxid 2) is answered at zxid 4, preceded by one
    /// NodeDataChanged. Its exist watch on /n (created at 4) replays
    /// NodeCreated; its persistent watch on /p is re-registered without
    /// replay (the change at 3 is not owed).
    const RECONNECT: &str = r#"
        1 invoke client=1 session=0x1 op_id=1 op=create path=/k value=a
        2 ok client=1 session=0x1 op_id=1 zxid=1
        3 invoke client=1 session=0x1 op_id=9 op=create path=/p value=a
        4 ok client=1 session=0x1 op_id=9 zxid=2
        5 connected client=2 session=0x2 conn=1 last_zxid=0
        6 invoke client=2 session=0x2 op_id=2 op=get_data path=/k watch=data
        7 watch_added client=2 session=0x2 conn=1 last_zxid=2 path=/k watch=data zxid=2
        8 ok client=2 session=0x2 op_id=2 zxid=2 value=a version=0 mzxid=1
        9 invoke client=2 session=0x2 op_id=3 op=exists path=/n watch=data
        10 watch_added client=2 session=0x2 conn=1 last_zxid=2 path=/n watch=exist zxid=2
        11 ok client=2 session=0x2 op_id=3 zxid=2 exists=false
        12 invoke client=2 session=0x2 op_id=8 op=add_watch path=/p watch=persistent
        13 watch_added client=2 session=0x2 conn=1 last_zxid=2 path=/p watch=persistent zxid=2
        14 ok client=2 session=0x2 op_id=8 zxid=2
        15 invoke client=1 session=0x1 op_id=4 op=set_data path=/k value=b version=-1
        16 ok client=1 session=0x1 op_id=4 zxid=3 version=1 mzxid=3
        17 invoke client=1 session=0x1 op_id=10 op=set_data path=/p value=b version=-1
        18 ok client=1 session=0x1 op_id=10 zxid=4 version=1 mzxid=4
        19 invoke client=1 session=0x1 op_id=5 op=create path=/n value=c
        20 ok client=1 session=0x1 op_id=5 zxid=5
        21 connected client=2 session=0x2 conn=2 last_zxid=2 detail=set_watches
        22 watch_event client=2 session=0x2 conn=2 last_zxid=2 path=/k event=NodeDataChanged
        23 watch_event client=2 session=0x2 conn=2 last_zxid=2 path=/n event=NodeCreated
        24 watches_restored client=2 session=0x2 conn=2 last_zxid=2 zxid=5
        25 invoke client=1 session=0x1 op_id=11 op=set_data path=/p value=c version=-1
        26 watch_event client=2 session=0x2 conn=2 last_zxid=2 path=/p event=NodeDataChanged
        27 ok client=1 session=0x1 op_id=11 zxid=6 version=2 mzxid=6
        28 invoke client=2 session=0x2 op_id=6 op=get_data path=/k
        29 ok client=2 session=0x2 op_id=6 zxid=6 value=b version=1 mzxid=3
    "#;

    #[test]
    fn set_watches_replay_passes() {
        passes(RECONNECT);
    }

    #[test]
    fn a_replay_that_misses_a_change_is_caught() {
        fails(
            &RECONNECT.replace(
                "22 watch_event client=2 session=0x2 conn=2 last_zxid=2 path=/k event=NodeDataChanged",
                "",
            ),
            "SetWatches (relative zxid 2) was answered without the NodeDataChanged for /k",
        );
    }

    #[test]
    fn a_replay_of_an_unchanged_watch_is_caught() {
        // /p is persistent: no replay is owed for it.
        fails(
            &RECONNECT.replace(
                "23 watch_event client=2 session=0x2 conn=2 last_zxid=2 path=/n event=NodeCreated",
                "23 watch_event client=2 session=0x2 conn=2 last_zxid=2 path=/n event=NodeCreated\n23.5 watch_event client=2 session=0x2 conn=2 last_zxid=2 path=/p event=NodeDataChanged",
            ),
            "during SetWatches",
        );
    }

    #[test]
    fn a_persistent_watch_lost_after_reconnect_is_caught() {
        fails(
            &RECONNECT.replace(
                "26 watch_event client=2 session=0x2 conn=2 last_zxid=2 path=/p event=NodeDataChanged",
                "",
            ),
            "lost event: NodeDataChanged /p",
        );
    }

    #[test]
    fn an_unknown_write_makes_the_path_lenient() {
        // The first setData's outcome is unknown and its value never read:
        // the watcher may or may not get an event for it.
        let text = ONE_SHOT
            .replace(
                "9 ok client=1 session=0x1 op_id=3 zxid=3 version=1 mzxid=3",
                "9 info client=1 session=0x1 op_id=3 error=timeout",
            )
            .replace(
                "14 ok client=2 session=0x2 op_id=5 zxid=4 value=c version=2 mzxid=4",
                "14 ok client=2 session=0x2 op_id=5 zxid=4 value=c",
            );
        passes(&text);
        passes(&text.replace(
            "8 watch_event client=2 session=0x2 conn=1 last_zxid=2 path=/k event=NodeDataChanged",
            "",
        ));
    }
}
