//! Golden scripts for the server state machine: sessions, watches, the
//! request pipeline and its error paths.
//!
//! Each `tests/golden/*.txt` file is a script, a `----` line, and the
//! expected output. The runner executes the script against a fresh
//! [`Server`], echoes every command (`> ...`, comments too) and prints every
//! effect in readable form: decoded replies, notifications, persisted
//! transactions, closes. `UPDATE_GOLDEN=1 cargo test -p zk-core --test
//! golden` rewrites the expected output; review the diff before keeping it.
//!
//! Commands (NAME is a connection name; options are `key=value`):
//!
//! ```text
//! config tick=2000 min=4000 max=40000 extended skip_acl superdigest=super:<digest>
//!        outstanding=N container=MS snap=N   (first command only)
//! connect NAME [timeout=MS] [session=ID] [passwd=zero|ok|wrong] [lastzxid=Z] [ip=A] [nord]
//! reconnect NAME [as=NEW] [timeout=MS] [passwd=wrong] [lastzxid=Z]
//! disconnect NAME
//! create NAME PATH [DATA|null] [flags=F] [op=create|create2|container|ttl] [ttl=MS] [acl=SPEC]
//! delete NAME PATH [version=V]          setdata NAME PATH DATA [version=V]
//! getdata NAME PATH [watch]             exists NAME PATH [watch]
//! getchildren NAME PATH [watch]         getchildren2 NAME PATH [watch]
//! getacl NAME PATH                      setacl NAME PATH acl=SPEC [version=V]
//! sync NAME PATH   ping NAME   whoami NAME   close NAME (closeSession)
//! getephemerals NAME PATH               allchildren NAME PATH
//! auth NAME SCHEME TEXT
//! multi NAME SUB ; SUB ; ...            (SUB: create/delete/setdata/check as above, no NAME)
//! multiread NAME getdata PATH ; getchildren PATH
//! setwatches NAME rel=Z [data=P,P] [exist=P] [child=P] [persistent=P] [recursive=P] [v2] [xid=X]
//! addwatch NAME PATH persistent|recursive
//! removewatches NAME PATH data|children|any   checkwatches NAME PATH data|children|any
//! raw NAME op=N [xid=X] [body=HEX]       (any request header + body)
//! rawconnect NAME body=HEX               (a new connection's first frame, as is)
//! persist all|next|ZXID                  autopersist on|off
//! tick [+MS]                             (advance the clock, then a Tick input)
//! ```
//!
//! ACL SPEC: comma-separated `scheme:id:perms`, perms as a number or letters
//! from `crwda`. Xids count from 1 per connection name.

mod common;

use common::*;
use jute::request::read_multi_results;
use jute::txn::TxnRecord;
use jute::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use zkcore::server::{Effect, Input, Server, ServerConfig};
use zkcore::tree::DataTree;
use zkcore::ConnId;

/// What a connection sent under one xid, so its reply can be decoded.
#[derive(Debug, Clone)]
enum Sent {
    Req(Request),
    Raw,
}

struct Conn {
    id: ConnId,
    next_xid: i32,
    sent: BTreeMap<i32, Sent>,
    awaiting_connect: bool,
    session: i64,
    passwd: Vec<u8>,
    timeout: i32,
    last_zxid: i64,
}

struct Runner {
    cfg: ServerConfig,
    server: Option<Server>,
    now: i64,
    conns: BTreeMap<String, Conn>,
    /// Every connection ever opened, by id, with its label.
    labels: BTreeMap<ConnId, String>,
    next_conn: u64,
    pending: Vec<TxnRecord>,
    autopersist: bool,
    out: Vec<String>,
}

type Opts = BTreeMap<String, String>;

/// Split tokens into positional words and `key=value` options (a bare word
/// listed in `flags` becomes an option with an empty value).
fn parse_args<'a>(toks: &[&'a str], flags: &[&str]) -> (Vec<&'a str>, Opts) {
    let mut pos = Vec::new();
    let mut opts = Opts::new();
    for t in toks {
        if let Some((k, v)) = t.split_once('=') {
            opts.insert(k.to_string(), v.to_string());
        } else if flags.contains(t) {
            opts.insert(t.to_string(), String::new());
        } else {
            pos.push(*t);
        }
    }
    (pos, opts)
}

fn num(s: &str) -> i64 {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let v = match s.strip_prefix("0x") {
        Some(h) => i64::from_str_radix(h, 16),
        None => s.parse(),
    }
    .unwrap_or_else(|_| panic!("not a number: {s}"));
    if neg {
        -v
    } else {
        v
    }
}

fn opt_num(o: &Opts, k: &str, default: i64) -> i64 {
    o.get(k).map_or(default, |v| num(v))
}

fn perms_of(s: &str) -> i32 {
    if s.chars().all(|c| c.is_ascii_digit()) {
        return s.parse().expect("perms");
    }
    s.chars()
        .map(|c| match c {
            'r' => perms::READ,
            'w' => perms::WRITE,
            'c' => perms::CREATE,
            'd' => perms::DELETE,
            'a' => perms::ADMIN,
            _ => panic!("bad perm letter {c}"),
        })
        .sum()
}

fn parse_acl(spec: &str) -> Vec<Acl> {
    if spec.is_empty() {
        return Vec::new();
    }
    spec.split(',')
        .map(|e| {
            let (scheme, rest) = e.split_once(':').expect("scheme:id:perms");
            let (id, p) = rest.rsplit_once(':').expect("scheme:id:perms");
            Acl::new(perms_of(p), scheme, id)
        })
        .collect()
}

fn parse_data(s: Option<&&str>) -> Option<Vec<u8>> {
    match s {
        None => Some(Vec::new()),
        Some(&"null") => None,
        Some(d) => Some(d.as_bytes().to_vec()),
    }
}

fn watcher_type(s: &str) -> i32 {
    match s {
        "children" => WatcherType::Children.code(),
        "data" => WatcherType::Data.code(),
        "any" => WatcherType::Any.code(),
        other => num(other) as i32,
    }
}

fn list(o: &Opts, k: &str) -> Vec<String> {
    o.get(k).map_or(Vec::new(), |v| {
        v.split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    })
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A create request (or multi sub-op) from `PATH [DATA] options`.
fn create_req(toks: &[&str]) -> Request {
    let (pos, o) = parse_args(toks, &[]);
    let path = pos[0].to_string();
    let data = parse_data(pos.get(1));
    let acl = o.get("acl").map_or_else(Acl::open, |s| parse_acl(s));
    let flags = opt_num(&o, "flags", 0) as i32;
    match o.get("op").map(String::as_str).unwrap_or("create") {
        "ttl" => Request::CreateTtl(CreateTtlRequest {
            path,
            data,
            acl,
            flags,
            ttl: opt_num(&o, "ttl", 1000),
        }),
        other => {
            let op = match other {
                "create" => op::CREATE,
                "create2" => op::CREATE2,
                "container" => op::CREATE_CONTAINER,
                n => num(n) as i32,
            };
            Request::Create {
                op,
                req: CreateRequest {
                    path,
                    data,
                    acl,
                    flags,
                },
            }
        }
    }
}

fn sub_op(toks: &[&str]) -> MultiOp {
    let (pos, o) = parse_args(&toks[1..], &[]);
    let version = opt_num(&o, "version", -1) as i32;
    match toks[0] {
        "create" => match create_req(&toks[1..]) {
            Request::Create { op, req } => MultiOp::Create { op, req },
            Request::CreateTtl(r) => MultiOp::CreateTtl(r),
            _ => unreachable!(),
        },
        "delete" => MultiOp::Delete(DeleteRequest {
            path: pos[0].into(),
            version,
        }),
        "setdata" => MultiOp::SetData(SetDataRequest {
            path: pos[0].into(),
            data: parse_data(pos.get(1)),
            version,
        }),
        "check" => MultiOp::Check(CheckVersionRequest {
            path: pos[0].into(),
            version,
        }),
        "getdata" => MultiOp::GetData(GetDataRequest {
            path: pos[0].into(),
            watch: false,
        }),
        "getchildren" => MultiOp::GetChildren(GetChildrenRequest {
            path: pos[0].into(),
            watch: false,
        }),
        other => panic!("unknown multi sub-op {other}"),
    }
}

fn sub_ops(toks: &[&str]) -> Vec<MultiOp> {
    toks.split(|t| *t == ";")
        .filter(|s| !s.is_empty())
        .map(sub_op)
        .collect()
}

/// The request a command line asks for (commands that send one).
fn request(cmd: &str, toks: &[&str]) -> Option<Request> {
    let (pos, o) = parse_args(toks, &["watch"]);
    let path = || pos[0].to_string();
    let watch = o.contains_key("watch");
    let version = opt_num(&o, "version", -1) as i32;
    Some(match cmd {
        "create" => create_req(toks),
        "delete" => Request::Delete(DeleteRequest {
            path: path(),
            version,
        }),
        "setdata" => Request::SetData(SetDataRequest {
            path: path(),
            data: parse_data(pos.get(1)),
            version,
        }),
        "getdata" => Request::GetData(GetDataRequest {
            path: path(),
            watch,
        }),
        "exists" => Request::Exists(ExistsRequest {
            path: path(),
            watch,
        }),
        "getchildren" | "getchildren2" => Request::GetChildren {
            with_stat: cmd == "getchildren2",
            req: GetChildrenRequest {
                path: path(),
                watch,
            },
        },
        "getacl" => Request::GetAcl(GetAclRequest { path: path() }),
        "setacl" => Request::SetAcl(SetAclRequest {
            path: path(),
            acl: parse_acl(o.get("acl").expect("acl=")),
            version,
        }),
        "sync" => Request::Sync(SyncRequest { path: path() }),
        "ping" => Request::Ping,
        "whoami" => Request::WhoAmI,
        "close" => Request::CloseSession,
        "getephemerals" => Request::GetEphemerals(PathRequest { path: path() }),
        "allchildren" => Request::GetAllChildrenNumber(PathRequest { path: path() }),
        "auth" => Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: pos[0].into(),
            auth: pos[1].as_bytes().to_vec(),
        }),
        "multi" => Request::Multi(sub_ops(toks)),
        "multiread" => Request::MultiRead(sub_ops(toks)),
        "setwatches" => {
            let (_, o) = parse_args(toks, &["v2"]);
            let req = SetWatches2 {
                relative_zxid: opt_num(&o, "rel", 0),
                data_watches: list(&o, "data"),
                exist_watches: list(&o, "exist"),
                child_watches: list(&o, "child"),
                persistent_watches: list(&o, "persistent"),
                persistent_recursive_watches: list(&o, "recursive"),
            };
            let v2 = o.contains_key("v2")
                || !req.persistent_watches.is_empty()
                || !req.persistent_recursive_watches.is_empty();
            Request::SetWatches { v2, req }
        }
        "addwatch" => Request::AddWatch(AddWatchRequest {
            path: path(),
            mode: match pos[1] {
                "persistent" => AddWatchMode::Persistent.code(),
                "recursive" => AddWatchMode::PersistentRecursive.code(),
                n => num(n) as i32,
            },
        }),
        "removewatches" | "checkwatches" => {
            let r = RemoveWatchesRequest {
                path: path(),
                watcher_type: watcher_type(pos[1]),
            };
            if cmd == "removewatches" {
                Request::RemoveWatches(r)
            } else {
                Request::CheckWatches(r)
            }
        }
        _ => return None,
    })
}

fn passwd_str(session: i64, p: &[u8]) -> String {
    if p.iter().all(|b| *b == 0) {
        format!("zero({})", p.len())
    } else if session != 0 && p == zkcore::session::password(session).as_slice() {
        "ok".into()
    } else {
        format!("{p:02x?}")
    }
}

/// A reply body, decoded as the client that sent `req` would.
fn body_lines(req: &Request, body: &[u8]) -> Vec<String> {
    let one = |s: String| vec![s];
    match req {
        Request::Create { op: o, .. } if *o == op::CREATE => {
            one(format!("path={}", decode::<CreateResponse>(body).path))
        }
        Request::Create { .. } | Request::CreateTtl(_) => {
            let r = decode::<Create2Response>(body);
            one(format!("path={} {}", r.path, stat_str(&r.stat)))
        }
        Request::SetData(_) | Request::SetAcl(_) | Request::Exists(_) => {
            one(stat_str(&decode::<StatResponse>(body).stat))
        }
        Request::GetData(_) => {
            let r = decode::<GetDataResponse>(body);
            one(format!("data={} {}", data_str(&r.data), stat_str(&r.stat)))
        }
        Request::GetChildren {
            with_stat: false, ..
        } => one(format!(
            "children=[{}]",
            decode::<GetChildrenResponse>(body).children.join(",")
        )),
        Request::GetChildren { .. } => {
            let r = decode::<GetChildren2Response>(body);
            one(format!(
                "children=[{}] {}",
                r.children.join(","),
                stat_str(&r.stat)
            ))
        }
        Request::GetAcl(_) => {
            let r = decode::<GetAclResponse>(body);
            one(format!("acl={} {}", acl_str(&r.acl), stat_str(&r.stat)))
        }
        Request::Sync(_) => one(format!("path={}", decode::<SyncResponse>(body).path)),
        Request::WhoAmI => {
            let r = decode::<WhoAmIResponse>(body);
            let v: Vec<String> = r
                .client_info
                .iter()
                .map(|c| format!("{}:{}", c.auth_scheme, c.user))
                .collect();
            one(format!("clientInfo=[{}]", v.join(",")))
        }
        Request::GetEphemerals(_) => one(format!(
            "ephemerals=[{}]",
            decode::<GetEphemeralsResponse>(body).ephemerals.join(",")
        )),
        Request::GetAllChildrenNumber(_) => one(format!(
            "totalNumber={}",
            decode::<GetAllChildrenNumberResponse>(body).total_number
        )),
        Request::AddWatch(_) => one(format!(
            "ErrorResponse{{err={}}}",
            decode::<ErrorResponse>(body).err
        )),
        Request::Multi(_) | Request::MultiRead(_) => {
            let mut r = Reader::new(body);
            let res = read_multi_results(&mut r).expect("multi results");
            r.finish().expect("nothing after the results");
            let mut v = vec![format!("results={}", res.len())];
            v.extend(
                res.iter()
                    .enumerate()
                    .map(|(i, x)| format!("    [{i}] {}", multi_result_str(x))),
            );
            v
        }
        _ if body.is_empty() => vec![],
        _ => one(format!("body={body:02x?}")),
    }
}

impl Runner {
    fn new() -> Runner {
        Runner {
            cfg: test_config(),
            server: None,
            now: 0,
            conns: BTreeMap::new(),
            labels: BTreeMap::new(),
            next_conn: 1,
            pending: Vec::new(),
            autopersist: false,
            out: Vec::new(),
        }
    }

    fn server(&mut self) -> &mut Server {
        if self.server.is_none() {
            self.server = Some(Server::new(
                self.cfg.clone(),
                self.now,
                DataTree::new(),
                vec![],
            ));
        }
        self.server.as_mut().expect("just made")
    }

    fn step(&mut self, input: Input) {
        let now = self.now;
        let effects = self.server().handle(now, input);
        self.server().validate();
        for e in effects {
            self.effect(e);
        }
    }

    fn label(&self, id: ConnId) -> String {
        self.labels
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("{id:?}"))
    }

    fn conn_by_id(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns.values_mut().find(|c| c.id == id)
    }

    fn effect(&mut self, e: Effect) {
        match e {
            Effect::Persist { records } => {
                for r in records {
                    self.out.push(record_str(&r));
                    self.pending.push(r);
                }
            }
            Effect::Send { conn, frame } => {
                let label = self.label(conn);
                for l in self.decode_frame(conn, &frame) {
                    self.out.push(format!("{label} <- {l}"));
                }
            }
            Effect::Close { conn } => {
                let l = self.label(conn);
                self.out.push(format!("close {l}"));
            }
            Effect::Throttle { conn, paused } => {
                let l = self.label(conn);
                self.out.push(format!("throttle {l} paused={paused}"));
            }
            Effect::Snapshot { zxid } => self.out.push(format!("snapshot zxid={}", hex(zxid))),
            other => panic!("a standalone server never asks for {other:?}"),
        }
    }

    fn decode_frame(&mut self, id: ConnId, frame: &[u8]) -> Vec<String> {
        let Some(c) = self.conn_by_id(id) else {
            return vec![format!("frame to a superseded connection: {frame:02x?}")];
        };
        if c.awaiting_connect {
            c.awaiting_connect = false;
            let r: ConnectResponse = decode(frame);
            if r.session_id != 0 {
                c.session = r.session_id;
                c.passwd = r.passwd.clone();
                c.timeout = r.timeout_ms;
            }
            let ro = r
                .read_only
                .map_or(String::new(), |b| format!(" readOnly={b}"));
            return vec![format!(
                "connect protocolVersion={} timeout={} session={} passwd={}{ro}",
                r.protocol_version,
                r.timeout_ms,
                hex(r.session_id),
                passwd_str(r.session_id, &r.passwd)
            )];
        }
        let (h, body) = split_reply(frame);
        if h.xid == xid::NOTIFICATION {
            let ev: WatcherEvent = decode(body);
            let mut s = format!("event {} {}", event_name(ev.event_type), ev.path);
            if h.zxid != -1 || h.err != 0 || ev.state != KeeperState::SyncConnected.code() {
                s += &format!(" (zxid={} err={} state={})", h.zxid, h.err, ev.state);
            }
            return vec![s];
        }
        if h.zxid > 0 {
            c.last_zxid = c.last_zxid.max(h.zxid);
        }
        let head = format!(
            "reply xid={} zxid={} err={}",
            h.xid,
            hex(h.zxid),
            err_name(h.err)
        );
        let sent = c.sent.remove(&h.xid);
        let mut lines = match (&sent, h.err) {
            (Some(Sent::Req(req)), 0) => body_lines(req, body),
            (_, _) if body.is_empty() => vec![],
            _ => vec![format!("body={body:02x?}")],
        };
        if sent.is_none() {
            lines.push("(unexpected xid)".into());
        }
        match lines.first() {
            Some(l) if !l.starts_with("    ") => {
                let first = format!("{head} {l}");
                lines[0] = first;
                lines
            }
            _ => {
                lines.insert(0, head);
                lines
            }
        }
    }

    fn persist_upto(&mut self, zxid: i64) {
        self.out.push(format!("-- persisted {}", hex(zxid)));
        self.pending.retain(|r| r.header.zxid > zxid);
        self.step(Input::Persisted { zxid });
    }

    /// Open a connection under `name` and send `req`. A name reused for a
    /// new connection relabels the old one `name#k`; xids continue.
    fn open(&mut self, name: &str, req: ConnectRequest, ip: String, from: Option<&str>) {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        if let Some(old) = self.conns.get(name) {
            let n = self.labels.values().filter(|l| l.starts_with(name)).count();
            self.labels.insert(old.id, format!("{name}#{n}"));
        }
        self.labels.insert(id, name.to_string());
        let prev = self.conns.get(from.unwrap_or(name));
        let conn = Conn {
            id,
            next_xid: prev.map_or(1, |p| p.next_xid),
            sent: BTreeMap::new(),
            awaiting_connect: true,
            session: 0,
            passwd: Vec::new(),
            timeout: 0,
            last_zxid: prev.map_or(0, |p| p.last_zxid),
        };
        self.conns.insert(name.to_string(), conn);
        self.step(Input::Connected { conn: id, ip });
        self.step(Input::Frame {
            conn: id,
            bytes: to_bytes(&req),
        });
    }

    fn connect(&mut self, name: &str, toks: &[&str]) {
        let (_, o) = parse_args(toks, &["nord"]);
        let session = opt_num(&o, "session", 0);
        let passwd = match o.get("passwd").map(String::as_str) {
            None | Some("zero") => vec![0; 16],
            Some("ok") => zkcore::session::password(session),
            Some("wrong") => vec![7; 16],
            Some(h) => unhex(h),
        };
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: opt_num(&o, "lastzxid", 0),
            timeout_ms: opt_num(&o, "timeout", 4000) as i32,
            session_id: session,
            passwd,
            read_only: (!o.contains_key("nord")).then_some(false),
        };
        let ip = o.get("ip").cloned().unwrap_or_else(|| "127.0.0.1".into());
        self.open(name, req, ip, None);
    }

    /// Reattach `name`'s session on a new connection, as a client does after
    /// losing its socket: same id and password, its lastZxidSeen.
    fn reconnect(&mut self, name: &str, toks: &[&str]) {
        let (_, o) = parse_args(toks, &[]);
        let old = self
            .conns
            .get(name)
            .expect("reconnect of a known connection");
        let passwd = match o.get("passwd").map(String::as_str) {
            Some("wrong") => vec![7; 16],
            _ => old.passwd.clone(),
        };
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: opt_num(&o, "lastzxid", old.last_zxid),
            timeout_ms: opt_num(&o, "timeout", old.timeout as i64) as i32,
            session_id: old.session,
            passwd,
            read_only: Some(false),
        };
        let new_name = o.get("as").cloned().unwrap_or_else(|| name.to_string());
        self.open(&new_name, req, "127.0.0.1".into(), Some(name));
    }

    fn send(&mut self, name: &str, xid: Option<i32>, req: Request) {
        let c = self
            .conns
            .get_mut(name)
            .unwrap_or_else(|| panic!("unknown connection {name}"));
        let xid = xid.unwrap_or_else(|| match req {
            Request::Ping => xid::PING,
            Request::Auth(_) => xid::AUTH,
            _ => {
                c.next_xid += 1;
                c.next_xid - 1
            }
        });
        c.sent.insert(xid, Sent::Req(req.clone()));
        let bytes = request_frame(xid, &req);
        let conn = c.id;
        self.step(Input::Frame { conn, bytes });
    }

    fn raw(&mut self, name: &str, toks: &[&str]) {
        let (_, o) = parse_args(toks, &[]);
        let c = self.conns.get_mut(name).expect("known connection");
        let xid = match o.get("xid") {
            Some(x) => num(x) as i32,
            None => {
                c.next_xid += 1;
                c.next_xid - 1
            }
        };
        c.sent.insert(xid, Sent::Raw);
        let mut bytes = to_bytes(&RequestHeader {
            xid,
            op: opt_num(&o, "op", 0) as i32,
        });
        bytes.extend(unhex(o.get("body").map_or("", String::as_str)));
        let conn = c.id;
        self.step(Input::Frame { conn, bytes });
    }

    fn configure(&mut self, toks: &[&str]) {
        assert!(self.server.is_none(), "config must come first");
        let (_, o) = parse_args(toks, &["extended", "skip_acl"]);
        let c = &mut self.cfg;
        c.tick_ms = opt_num(&o, "tick", c.tick_ms);
        c.min_session_timeout_ms = opt_num(&o, "min", c.min_session_timeout_ms as i64) as i32;
        c.max_session_timeout_ms = opt_num(&o, "max", c.max_session_timeout_ms as i64) as i32;
        c.extended_types = o.contains_key("extended");
        c.skip_acl = o.contains_key("skip_acl");
        c.super_digest = o.get("superdigest").cloned();
        c.max_cnxn_outstanding = opt_num(&o, "outstanding", c.max_cnxn_outstanding as i64) as usize;
        c.container_check_interval_ms = opt_num(&o, "container", c.container_check_interval_ms);
        c.snap_count = opt_num(&o, "snap", c.snap_count as i64) as u64;
    }

    fn command(&mut self, line: &str) {
        let toks: Vec<&str> = line.split_whitespace().collect();
        let (cmd, rest) = (toks[0], &toks[1..]);
        match cmd {
            "config" => self.configure(rest),
            "autopersist" => self.autopersist = rest.first() == Some(&"on"),
            "persist" => {
                let z = match rest.first().copied().unwrap_or("all") {
                    "all" => self.pending.last().map(|r| r.header.zxid),
                    "next" => self.pending.first().map(|r| r.header.zxid),
                    z => Some(num(z)),
                };
                match z {
                    Some(z) => self.persist_upto(z),
                    None => self.out.push("(nothing to persist)".into()),
                }
            }
            "tick" => {
                if let Some(t) = rest.first() {
                    self.now += num(t.trim_start_matches('+'));
                }
                self.out.push(format!("-- now {}", self.now));
                self.step(Input::Tick);
            }
            "connect" => self.connect(rest[0], &rest[1..]),
            "reconnect" => self.reconnect(rest[0], &rest[1..]),
            "disconnect" => {
                let conn = self.conns[rest[0]].id;
                self.step(Input::Disconnected { conn });
            }
            "raw" => self.raw(rest[0], &rest[1..]),
            "rawconnect" => {
                let (_, o) = parse_args(&rest[1..], &[]);
                let id = ConnId(self.next_conn);
                self.next_conn += 1;
                self.labels.insert(id, rest[0].to_string());
                self.step(Input::Connected {
                    conn: id,
                    ip: "127.0.0.1".into(),
                });
                let bytes = unhex(o.get("body").map_or("", String::as_str));
                self.step(Input::Frame { conn: id, bytes });
            }
            _ => {
                let (_, o) = parse_args(&rest[1..], &[]);
                let xid = o.get("xid").map(|x| num(x) as i32);
                let args: Vec<&str> = rest[1..]
                    .iter()
                    .copied()
                    .filter(|t| !t.starts_with("xid="))
                    .collect();
                let req = request(cmd, &args).unwrap_or_else(|| panic!("unknown command {cmd}"));
                self.send(rest[0], xid, req);
            }
        }
        while self.autopersist {
            match self.pending.last() {
                Some(r) => {
                    let z = r.header.zxid;
                    self.persist_upto(z)
                }
                None => break,
            }
        }
    }

    fn run(mut self, script: &str) -> String {
        for line in script.lines() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                self.out.push(t.to_string());
                continue;
            }
            self.out.push(format!("> {t}"));
            self.command(t);
        }
        let mut s = self.out.join("\n");
        s.push('\n');
        s
    }
}

const SEPARATOR: &str = "----\n";

fn golden_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/golden exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    files
}

fn first_difference(want: &str, got: &str) -> String {
    for (i, (w, g)) in want.lines().zip(got.lines()).enumerate() {
        if w != g {
            return format!("line {}:\n  want: {w}\n   got: {g}", i + 1);
        }
    }
    format!(
        "lengths differ: want {} lines, got {}",
        want.lines().count(),
        got.lines().count()
    )
}

#[test]
fn golden_scripts() {
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let files = golden_files();
    assert!(!files.is_empty(), "no golden scripts found");
    let mut failures = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read script");
        let (script, want) = match text.find(&format!("\n{SEPARATOR}")) {
            Some(i) => (&text[..i + 1], &text[i + 1 + SEPARATOR.len()..]),
            None => (text.as_str(), ""),
        };
        let got = Runner::new().run(script);
        if got == want {
            continue;
        }
        if update {
            std::fs::write(&f, format!("{script}{SEPARATOR}{got}")).expect("write golden");
            eprintln!("updated {}", f.display());
        } else {
            failures.push(format!(
                "{}: {}\n--- full output ---\n{got}",
                f.display(),
                first_difference(want, &got)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatches (UPDATE_GOLDEN=1 to rewrite, then review):\n{}",
        failures.join("\n\n")
    );
}
