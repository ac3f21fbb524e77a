//! Four-letter words ("4lw"): pure formatting of the answers.
//!
//! On a *new* client connection the first 4 bytes may be a command instead of a
//! frame length. The shell calls [`command`] on them: `None` means "not a known
//! command, treat the bytes as a frame length". Otherwise it fills a
//! [`ServerSnapshot`], asks [`side_effect`] whether it must do something first
//! (reset statistics, read the 8-byte `stmk` argument), calls [`answer`], writes
//! the text and closes the connection.
//!
//! Formats follow Apache ZooKeeper 3.8.0 byte for byte where the data exists
//! (checked against a running 3.8.0); see the reference, §4.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// Version string reported by `srvr`, `stat`, `mntr` and `envi`.
/// Starts with `3.8.` so clients that parse it (kazoo's `server_version()`
/// splits on `-` and then on `.`) see a 3.8 server.
pub const VERSION: &str = "3.8.0-rustzk, built on 2026-01-01 00:00 UTC";

/// ZooKeeper's answer for commands that need a serving server.
pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

/// ZooKeeper's default trace mask (what `gtmk` prints on a fresh server).
pub const DEFAULT_TRACE_MASK: i64 = 306;

/// A known four-letter command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Command {
    Conf,
    Cons,
    Crst,
    Dirs,
    Dump,
    Envi,
    Gtmk,
    Ruok,
    Stmk,
    Srvr,
    Srst,
    Stat,
    Wchc,
    Wchp,
    Wchs,
    Mntr,
    Isro,
    Hash,
    /// The telnet "interrupt process" sequence `ff f4 ff fd`: known to
    /// ZooKeeper (so never a frame length), answers nothing.
    TelnetClose,
}

impl Command {
    pub const ALL: [Command; 19] = [
        Command::Conf,
        Command::Cons,
        Command::Crst,
        Command::Dirs,
        Command::Dump,
        Command::Envi,
        Command::Gtmk,
        Command::Ruok,
        Command::Stmk,
        Command::Srvr,
        Command::Srst,
        Command::Stat,
        Command::Wchc,
        Command::Wchp,
        Command::Wchs,
        Command::Mntr,
        Command::Isro,
        Command::Hash,
        Command::TelnetClose,
    ];

    /// The name ZooKeeper uses in the whitelist and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Command::Conf => "conf",
            Command::Cons => "cons",
            Command::Crst => "crst",
            Command::Dirs => "dirs",
            Command::Dump => "dump",
            Command::Envi => "envi",
            Command::Gtmk => "gtmk",
            Command::Ruok => "ruok",
            Command::Stmk => "stmk",
            Command::Srvr => "srvr",
            Command::Srst => "srst",
            Command::Stat => "stat",
            Command::Wchc => "wchc",
            Command::Wchp => "wchp",
            Command::Wchs => "wchs",
            Command::Mntr => "mntr",
            Command::Isro => "isro",
            Command::Hash => "hash",
            Command::TelnetClose => "telnet close",
        }
    }

    /// The 4 bytes on the wire.
    pub fn bytes(self) -> [u8; 4] {
        match self {
            Command::TelnetClose => [0xff, 0xf4, 0xff, 0xfd],
            other => {
                let b = other.name().as_bytes();
                [b[0], b[1], b[2], b[3]]
            }
        }
    }

    pub fn from_bytes(b: &[u8; 4]) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.bytes() == *b)
    }

    pub fn from_name(name: &str) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.name() == name)
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }

    /// Whether ZooKeeper answers `NOT_SERVING` for this command while the
    /// server is not running (e.g. during leader election).
    pub fn needs_serving(self) -> bool {
        !matches!(
            self,
            Command::Ruok | Command::Envi | Command::Gtmk | Command::Stmk | Command::TelnetClose
        )
    }
}

/// The set of enabled four-letter words (`4lw.commands.whitelist`).
///
/// ZooKeeper semantics: comma list, entries trimmed, empty entries skipped,
/// `*` anywhere enables every command, unknown names are ignored, and `srvr`
/// is always enabled (zkServer.sh depends on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Whitelist {
    bits: u32,
}

impl Default for Whitelist {
    /// ZooKeeper's default: only `srvr`.
    fn default() -> Self {
        Whitelist {
            bits: Command::Srvr.bit(),
        }
    }
}

impl Whitelist {
    /// Every command (`*`).
    pub fn all() -> Self {
        Whitelist {
            bits: Command::ALL.iter().fold(0, |acc, c| acc | c.bit()),
        }
    }

    /// Parse the value of `4lw.commands.whitelist`.
    pub fn parse(value: &str) -> Self {
        let mut w = Whitelist::default();
        for item in value.split(',').map(str::trim) {
            if item == "*" {
                return Whitelist::all();
            }
            if let Some(c) = Command::from_name(item) {
                w.insert(c);
            }
        }
        w
    }

    /// Enable one more command (ZooKeeper adds `isro` when read-only mode is enabled).
    pub fn insert(&mut self, c: Command) {
        self.bits |= c.bit();
    }

    pub fn allows(&self, c: Command) -> bool {
        self.bits & c.bit() != 0
    }

    pub fn is_all(&self) -> bool {
        *self == Whitelist::all()
    }

    /// Enabled command names, in [`Command::ALL`] order.
    pub fn names(&self) -> Vec<&'static str> {
        Command::ALL
            .into_iter()
            .filter(|c| self.allows(*c))
            .map(Command::name)
            .collect()
    }
}

/// A value printed by `mntr`: integers as integers, other numbers as Java doubles.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    Int(i64),
    Float(f64),
    Text(String),
}

/// Leader-only statistics (`srvr` proposal sizes, `mntr` learner counts).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaderStats {
    pub learners: u64,
    pub synced_followers: u64,
    pub synced_non_voting_followers: u64,
    pub synced_observers: u64,
    pub pending_syncs: u64,
    /// -1 when no proposal yet (as ZooKeeper).
    pub last_proposal_size: i64,
    pub min_proposal_size: i64,
    pub max_proposal_size: i64,
    pub leader_uptime_ms: u64,
}

/// One client connection as `stat`, `cons` and `dump` show it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConnInfo {
    /// `ip:port` of the peer, Java style (see [`java_addr`]); printed with a leading `/`.
    pub addr: String,
    /// Selector interest ops: ZooKeeper shows 1 (read) for a client that is
    /// being read, 0 for the connection asking the four-letter word.
    pub interest_ops: u32,
    pub queued: u64,
    pub received: u64,
    pub sent: u64,
    /// 0 before the handshake; then `cons` shows the session fields.
    pub session_id: i64,
    /// Last operation, ZooKeeper's short names (`GETD`, `SETD`, `PING`, `NA`, ...).
    pub last_op: String,
    /// Wall-clock ms since the epoch when the connection was accepted.
    pub established_ms: i64,
    pub timeout_ms: i32,
    /// Printed only when >= 0.
    pub last_cxid: i64,
    pub last_zxid: i64,
    pub last_response_ms: i64,
    pub last_latency_ms: i64,
    pub min_latency_ms: i64,
    /// ZooKeeper prints the per-connection average as an integer.
    pub avg_latency_ms: i64,
    pub max_latency_ms: i64,
    /// Wall-clock ms since the epoch of the connection's idle-expiry bucket (`dump`).
    pub expire_at_ms: i64,
}

/// One session as `dump` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionInfo {
    pub id: i64,
    pub timeout_ms: i32,
    /// Wall-clock ms since the epoch of the session's expiry bucket.
    pub expire_at_ms: i64,
}

/// Everything the four-letter words print, filled in by the shell.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSnapshot {
    /// Usually [`VERSION`].
    pub version: String,
    /// `standalone`, `leader`, `follower`, `observer` or `read-only`.
    pub mode: String,
    /// False while not serving (election, start-up, shutdown).
    pub serving: bool,
    pub read_only: bool,
    pub latency_min_ms: i64,
    /// Rounded to 4 decimals when printed, as ZooKeeper does.
    pub latency_avg_ms: f64,
    pub latency_max_ms: i64,
    pub packets_received: u64,
    pub packets_sent: u64,
    pub num_alive_connections: u64,
    pub outstanding_requests: u64,
    pub last_zxid: i64,
    /// ZooKeeper reports 5 on a fresh server (root counted twice + 3 system nodes).
    pub node_count: u64,
    /// All watches (data + child), for `mntr` zk_watch_count.
    pub watch_count: u64,
    pub ephemerals_count: u64,
    pub approximate_data_size: u64,
    pub global_sessions: u64,
    pub local_sessions: u64,
    pub uptime_ms: u64,
    pub open_file_descriptor_count: Option<u64>,
    pub max_file_descriptor_count: Option<u64>,
    /// Quorum members only, e.g. `leading - broadcast`, `following - broadcast`.
    pub peer_state: Option<String>,
    /// Quorum members only: number of voting members.
    pub quorum_size: Option<u64>,
    /// Leader only.
    pub leader: Option<LeaderStats>,
    /// More `mntr` lines, appended in order; names without the `zk_` prefix.
    pub extra_metrics: Vec<(String, Metric)>,
    pub connections: Vec<ConnInfo>,
    /// Data watches only (exists/getData/addWatch), as `wchs`/`wchc`/`wchp` show.
    pub data_watches: Vec<(i64, String)>,
    pub sessions: Vec<SessionInfo>,
    pub ephemerals: Vec<(i64, Vec<String>)>,
    /// From `Config::to_conf_lines`; `dataDirSize`/`dataLogSize` are inserted here.
    pub conf_lines: Vec<(String, String)>,
    /// `envi` lines after `zookeeper.version` (host.name, os.name, user.dir, ...).
    pub env: Vec<(String, String)>,
    pub data_dir_size: u64,
    pub log_dir_size: u64,
    /// Current trace mask: printed by `gtmk`, and by `stmk` after the caller set it.
    pub trace_mask: i64,
}

impl Default for ServerSnapshot {
    fn default() -> Self {
        ServerSnapshot {
            version: VERSION.to_string(),
            mode: "standalone".to_string(),
            serving: true,
            read_only: false,
            latency_min_ms: 0,
            latency_avg_ms: 0.0,
            latency_max_ms: 0,
            packets_received: 0,
            packets_sent: 0,
            num_alive_connections: 0,
            outstanding_requests: 0,
            last_zxid: 0,
            node_count: 0,
            watch_count: 0,
            ephemerals_count: 0,
            approximate_data_size: 0,
            global_sessions: 0,
            local_sessions: 0,
            uptime_ms: 0,
            open_file_descriptor_count: None,
            max_file_descriptor_count: None,
            peer_state: None,
            quorum_size: None,
            leader: None,
            extra_metrics: Vec::new(),
            connections: Vec::new(),
            data_watches: Vec::new(),
            sessions: Vec::new(),
            ephemerals: Vec::new(),
            conf_lines: Vec::new(),
            env: Vec::new(),
            data_dir_size: 0,
            log_dir_size: 0,
            trace_mask: DEFAULT_TRACE_MASK,
        }
    }
}

/// What the caller must do before calling [`answer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SideEffect {
    /// `crst`: reset every connection's statistics.
    ResetConnectionStats,
    /// `srst`: reset the server's latency/packet statistics (and the leader's proposal sizes).
    ResetServerStats,
    /// `stmk`: read one more 8-byte big-endian long from the connection and make it
    /// the trace mask (`ServerSnapshot::trace_mask`); `answer` then prints it.
    ReadTraceMask,
}

/// The known command these 4 bytes name, if any. `None`: treat them as a frame length.
pub fn command(cmd: &[u8; 4]) -> Option<Command> {
    Command::from_bytes(cmd)
}

/// The side effect the command requires, if it is going to run
/// (known, whitelisted, and the server serving where that is needed).
pub fn side_effect(cmd: &[u8; 4], whitelist: &Whitelist, serving: bool) -> Option<SideEffect> {
    let c = command(cmd)?;
    if !whitelist.allows(c) || (c.needs_serving() && !serving) {
        return None;
    }
    match c {
        Command::Crst => Some(SideEffect::ResetConnectionStats),
        Command::Srst => Some(SideEffect::ResetServerStats),
        Command::Stmk => Some(SideEffect::ReadTraceMask),
        _ => None,
    }
}

/// The text to write back, or `None` if the 4 bytes are not a known command.
pub fn answer(cmd: &[u8; 4], whitelist: &Whitelist, s: &ServerSnapshot) -> Option<String> {
    let c = command(cmd)?;
    if !whitelist.allows(c) {
        return Some(format!(
            "{} is not executed because it is not in the whitelist.\n",
            c.name()
        ));
    }
    if c.needs_serving() && !s.serving {
        return Some(match c {
            // ZooKeeper's IsroCommand prints "null" and DigestCommand omits the newline.
            Command::Isro => "null".to_string(),
            Command::Hash => NOT_SERVING.to_string(),
            _ => format!("{NOT_SERVING}\n"),
        });
    }
    Some(match c {
        Command::Ruok => "imok".to_string(),
        Command::Isro => if s.read_only { "ro" } else { "rw" }.to_string(),
        Command::Srvr => stat(s, false),
        Command::Stat => stat(s, true),
        Command::Mntr => mntr(s),
        Command::Conf => conf(s),
        Command::Cons => cons(s),
        Command::Envi => envi(s),
        Command::Wchs => wchs(s),
        Command::Wchc => wchc(s),
        Command::Wchp => wchp(s),
        Command::Dump => dump(s),
        Command::Dirs => format!(
            "datadir_size: {}\nlogdir_size: {}\n",
            s.data_dir_size, s.log_dir_size
        ),
        Command::Crst => "Connection stats reset.\n".to_string(),
        Command::Srst => "Server stats reset.\n".to_string(),
        Command::Gtmk | Command::Stmk => s.trace_mask.to_string(),
        // We keep no digest log: ZooKeeper prints one line per logged digest.
        Command::Hash => String::new(),
        Command::TelnetClose => String::new(),
    })
}

/// `ip:port` the way Java's `InetSocketAddress.toString()` prints it after the
/// leading `/`: IPv6 addresses uncompressed and without brackets.
pub fn java_addr(addr: &SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) => format!("{}:{}", ip, addr.port()),
        IpAddr::V6(ip) => {
            let segs: Vec<String> = ip.segments().iter().map(|s| format!("{s:x}")).collect();
            format!("{}:{}", segs.join(":"), addr.port())
        }
    }
}

/// Java's `Double.toString` for the values we print.
pub fn java_double(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    let a = x.abs();
    if (1e-3..1e7).contains(&a) {
        let mut t = format!("{x}");
        if !t.contains('.') {
            t.push_str(".0");
        }
        t
    } else {
        let t = format!("{x:e}");
        let (mant, exp) = t.split_once('e').unwrap_or((&t, "0"));
        let mant = if mant.contains('.') {
            mant.to_string()
        } else {
            format!("{mant}.0")
        };
        format!("{mant}E{exp}")
    }
}

/// ZooKeeper's `AvgMinMaxCounter.getAvg()` rounds to 4 decimals (HALF_UP).
fn avg4(x: f64) -> f64 {
    if x.is_finite() {
        (x * 10_000.0).round() / 10_000.0
    } else {
        x
    }
}

fn hex(v: i64) -> String {
    // Java's Long.toHexString: two's complement, lower case, no padding.
    format!("{v:x}")
}

fn stat(s: &ServerSnapshot, with_clients: bool) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "Zookeeper version: {}", s.version);
    if s.read_only {
        o.push_str("READ-ONLY mode; serving only read-only clients\n");
    }
    if with_clients {
        o.push_str("Clients:\n");
        for c in &s.connections {
            conn_line(&mut o, c, true);
            o.push('\n');
        }
        o.push('\n');
    }
    let _ = writeln!(
        o,
        "Latency min/avg/max: {}/{}/{}",
        s.latency_min_ms,
        java_double(avg4(s.latency_avg_ms)),
        s.latency_max_ms
    );
    let _ = writeln!(o, "Received: {}", s.packets_received);
    let _ = writeln!(o, "Sent: {}", s.packets_sent);
    let _ = writeln!(o, "Connections: {}", s.num_alive_connections);
    let _ = writeln!(o, "Outstanding: {}", s.outstanding_requests);
    let _ = writeln!(o, "Zxid: 0x{}", hex(s.last_zxid));
    let _ = writeln!(o, "Mode: {}", s.mode);
    let _ = writeln!(o, "Node count: {}", s.node_count);
    if let (Some(l), "leader") = (&s.leader, s.mode.as_str()) {
        let _ = writeln!(
            o,
            "Proposal sizes last/min/max: {}/{}/{}",
            l.last_proposal_size, l.min_proposal_size, l.max_proposal_size
        );
    }
    o
}

fn conn_line(o: &mut String, c: &ConnInfo, brief: bool) {
    let _ = write!(
        o,
        " /{}[{:x}](queued={},recved={},sent={}",
        c.addr, c.interest_ops, c.queued, c.received, c.sent
    );
    if !brief && c.session_id != 0 {
        let _ = write!(
            o,
            ",sid=0x{},lop={},est={},to={}",
            hex(c.session_id),
            c.last_op,
            c.established_ms,
            c.timeout_ms
        );
        if c.last_cxid >= 0 {
            let _ = write!(o, ",lcxid=0x{}", hex(c.last_cxid));
        }
        let _ = write!(
            o,
            ",lzxid=0x{},lresp={},llat={},minlat={},avglat={},maxlat={}",
            hex(c.last_zxid),
            c.last_response_ms,
            c.last_latency_ms,
            c.min_latency_ms,
            c.avg_latency_ms,
            c.max_latency_ms
        );
    }
    o.push(')');
}

fn cons(s: &ServerSnapshot) -> String {
    let mut o = String::new();
    for c in &s.connections {
        conn_line(&mut o, c, false);
        o.push('\n');
    }
    o.push('\n');
    o
}

fn mntr(s: &ServerSnapshot) -> String {
    let mut lines: Vec<(&str, Metric)> = Vec::new();
    let i = |v: u64| Metric::Int(v as i64);
    lines.push(("version", Metric::Text(s.version.clone())));
    lines.push(("server_state", Metric::Text(s.mode.clone())));
    if let Some(p) = &s.peer_state {
        lines.push(("peer_state", Metric::Text(p.clone())));
    }
    lines.push(("ephemerals_count", i(s.ephemerals_count)));
    lines.push(("num_alive_connections", i(s.num_alive_connections)));
    lines.push(("avg_latency", Metric::Float(avg4(s.latency_avg_ms))));
    lines.push(("outstanding_requests", i(s.outstanding_requests)));
    lines.push(("znode_count", i(s.node_count)));
    lines.push(("global_sessions", i(s.global_sessions)));
    lines.push(("packets_sent", i(s.packets_sent)));
    lines.push(("packets_received", i(s.packets_received)));
    let leader = if s.mode == "leader" {
        s.leader.as_ref()
    } else {
        None
    };
    if let Some(l) = leader {
        lines.push(("synced_followers", i(l.synced_followers)));
    }
    lines.push(("watch_count", i(s.watch_count)));
    if let Some(l) = leader {
        lines.push((
            "synced_non_voting_followers",
            i(l.synced_non_voting_followers),
        ));
        lines.push(("synced_observers", i(l.synced_observers)));
    }
    lines.push(("min_latency", Metric::Int(s.latency_min_ms)));
    if let Some(v) = s.max_file_descriptor_count {
        lines.push(("max_file_descriptor_count", i(v)));
    }
    lines.push(("approximate_data_size", i(s.approximate_data_size)));
    if let Some(v) = s.open_file_descriptor_count {
        lines.push(("open_file_descriptor_count", i(v)));
    }
    if let Some(l) = leader {
        lines.push(("last_proposal_size", Metric::Int(l.last_proposal_size)));
        lines.push(("pending_syncs", i(l.pending_syncs)));
        lines.push(("leader_uptime", i(l.leader_uptime_ms)));
    }
    lines.push(("local_sessions", i(s.local_sessions)));
    lines.push(("uptime", i(s.uptime_ms)));
    lines.push(("max_latency", Metric::Int(s.latency_max_ms)));
    if let Some(l) = leader {
        lines.push(("learners", i(l.learners)));
    }
    if let Some(q) = s.quorum_size {
        lines.push(("quorum_size", i(q)));
    }
    if let Some(l) = leader {
        lines.push(("min_proposal_size", Metric::Int(l.min_proposal_size)));
        lines.push(("max_proposal_size", Metric::Int(l.max_proposal_size)));
    }
    let mut o = String::new();
    let extra = s.extra_metrics.iter().map(|(k, v)| (k.as_str(), v));
    for (k, v) in lines.iter().map(|(k, v)| (*k, v)).chain(extra) {
        let v = match v {
            Metric::Int(n) => n.to_string(),
            Metric::Float(f) => java_double(*f),
            Metric::Text(t) => t.clone(),
        };
        let _ = writeln!(o, "zk_{k}\t{v}");
    }
    o
}

fn conf(s: &ServerSnapshot) -> String {
    let mut o = String::new();
    let n = s.conf_lines.len();
    for (idx, (k, v)) in s.conf_lines.iter().enumerate() {
        if k == "membership:" {
            // ZooKeeper: println("membership: ") then the quorum verifier's
            // lines, the last of which ("version=<hex>") has no newline.
            o.push_str("membership: \n");
            continue;
        }
        let _ = write!(o, "{k}={v}");
        if !(k == "version" && idx + 1 == n) {
            o.push('\n');
        }
        match k.as_str() {
            "dataDir" => {
                let _ = writeln!(o, "dataDirSize={}", s.data_dir_size);
            }
            "dataLogDir" => {
                let _ = writeln!(o, "dataLogSize={}", s.log_dir_size);
            }
            _ => {}
        }
    }
    o
}

fn envi(s: &ServerSnapshot) -> String {
    let mut o = String::from("Environment:\n");
    let _ = writeln!(o, "zookeeper.version={}", s.version);
    for (k, v) in s.env.iter().filter(|(k, _)| k != "zookeeper.version") {
        let _ = writeln!(o, "{k}={v}");
    }
    o
}

/// Group pairs by their first element, keeping first-appearance order and
/// dropping duplicate values within a group.
fn group<K: PartialEq + Clone, V: PartialEq + Clone>(pairs: &[(K, V)]) -> Vec<(K, Vec<V>)> {
    let mut out: Vec<(K, Vec<V>)> = Vec::new();
    for (k, v) in pairs {
        match out.iter_mut().find(|(g, _)| g == k) {
            Some((_, vs)) => {
                if !vs.contains(v) {
                    vs.push(v.clone());
                }
            }
            None => out.push((k.clone(), vec![v.clone()])),
        }
    }
    out
}

fn wchs(s: &ServerSnapshot) -> String {
    let by_session = group(&s.data_watches);
    let swapped: Vec<(String, i64)> = s
        .data_watches
        .iter()
        .map(|(id, p)| (p.clone(), *id))
        .collect();
    let paths = group(&swapped).len();
    let total: usize = by_session.iter().map(|(_, ps)| ps.len()).sum();
    format!(
        "{} connections watching {} paths\nTotal watches:{}\n",
        by_session.len(),
        paths,
        total
    )
}

fn wchc(s: &ServerSnapshot) -> String {
    let mut o = String::new();
    for (id, paths) in group(&s.data_watches) {
        let _ = writeln!(o, "0x{}", hex(id));
        for p in paths {
            let _ = writeln!(o, "\t{p}");
        }
    }
    o.push('\n');
    o
}

fn wchp(s: &ServerSnapshot) -> String {
    let swapped: Vec<(String, i64)> = s
        .data_watches
        .iter()
        .map(|(id, p)| (p.clone(), *id))
        .collect();
    let mut o = String::new();
    for (path, ids) in group(&swapped) {
        let _ = writeln!(o, "{path}");
        for id in ids {
            let _ = writeln!(o, "\t0x{}", hex(id));
        }
    }
    o.push('\n');
    o
}

/// ZooKeeper's `ExpiryQueue.dump`: `Sets (B)/(N):` then each bucket in time order.
fn expiry_dump(o: &mut String, items: &[(i64, String)]) {
    let mut buckets: Vec<(i64, Vec<&str>)> = Vec::new();
    for (t, item) in items {
        match buckets.iter_mut().find(|(bt, _)| bt == t) {
            Some((_, v)) => v.push(item),
            None => buckets.push((*t, vec![item])),
        }
    }
    buckets.sort_by_key(|(t, _)| *t);
    let _ = writeln!(o, "Sets ({})/({}):", buckets.len(), items.len());
    for (t, v) in buckets {
        let _ = writeln!(o, "{} expire at {}:", v.len(), java_date(t));
        for item in v {
            let _ = writeln!(o, "\t{item}");
        }
    }
}

fn dump(s: &ServerSnapshot) -> String {
    let mut o = String::from("SessionTracker dump:\n");
    if s.mode == "follower" || s.mode == "observer" {
        // LearnerSessionTracker: sorted ids with their timeouts.
        let mut ss: Vec<&SessionInfo> = s.sessions.iter().collect();
        ss.sort_by_key(|x| x.id);
        let _ = writeln!(o, "Global Sessions({}):", ss.len());
        for x in ss {
            let _ = writeln!(o, "0x{}\t{}ms", hex(x.id), x.timeout_ms);
        }
    } else {
        o.push_str("Session ");
        let items: Vec<(i64, String)> = s
            .sessions
            .iter()
            .map(|x| (x.expire_at_ms, format!("0x{}", hex(x.id))))
            .collect();
        expiry_dump(&mut o, &items);
    }
    o.push_str("ephemeral nodes dump:\n");
    let _ = writeln!(o, "Sessions with Ephemerals ({}):", s.ephemerals.len());
    for (id, paths) in &s.ephemerals {
        let _ = writeln!(o, "0x{}:", hex(*id));
        for p in paths {
            let _ = writeln!(o, "\t{p}");
        }
    }
    o.push_str("Connections dump:\nConnections ");
    let items: Vec<(i64, String)> = s
        .connections
        .iter()
        .map(|c| {
            (
                c.expire_at_ms,
                format!("ip: /{} sessionId: 0x{}", c.addr, hex(c.session_id)),
            )
        })
        .collect();
    expiry_dump(&mut o, &items);
    o
}

/// Java's `Date.toString()` in UTC: `Sat Nov 21 20:04:55 UTC 2026`.
pub fn java_date(epoch_ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = epoch_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60,
        y
    )
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wl_all() -> Whitelist {
        Whitelist::all()
    }

    fn ans(cmd: &[u8; 4], s: &ServerSnapshot) -> String {
        answer(cmd, &wl_all(), s).expect("known command")
    }

    /// The idle fresh server of the 3.8.0 capture, asked from one connection.
    fn fresh() -> ServerSnapshot {
        ServerSnapshot {
            packets_received: 6,
            packets_sent: 5,
            num_alive_connections: 1,
            node_count: 5,
            approximate_data_size: 44,
            uptime_ms: 2129,
            ..ServerSnapshot::default()
        }
    }

    /// A server with one client session holding watches and ephemerals
    /// (values from the 3.8.0 capture).
    fn busy() -> ServerSnapshot {
        let sid = 0x1000004595e0000_i64;
        ServerSnapshot {
            latency_min_ms: 1,
            latency_avg_ms: 38.0 / 7.0,
            latency_max_ms: 18,
            packets_received: 10,
            packets_sent: 9,
            num_alive_connections: 2,
            last_zxid: 4,
            node_count: 8,
            watch_count: 3,
            ephemerals_count: 2,
            approximate_data_size: 61,
            global_sessions: 1,
            uptime_ms: 13667,
            connections: vec![
                ConnInfo {
                    addr: "127.0.0.1:55796".into(),
                    interest_ops: 1,
                    received: 7,
                    sent: 7,
                    session_id: sid,
                    last_op: "GETC".into(),
                    established_ms: 1795291464330,
                    timeout_ms: 30000,
                    last_cxid: 6,
                    last_zxid: 4,
                    last_response_ms: 292860,
                    last_latency_ms: 1,
                    min_latency_ms: 0,
                    avg_latency_ms: 5,
                    max_latency_ms: 18,
                    expire_at_ms: 1795291501000,
                    ..ConnInfo::default()
                },
                ConnInfo {
                    addr: "127.0.0.1:55800".into(),
                    interest_ops: 0,
                    received: 1,
                    last_cxid: -1,
                    expire_at_ms: 1795291481000,
                    ..ConnInfo::default()
                },
            ],
            data_watches: vec![(sid, "/p".into()), (sid, "/missing".into())],
            sessions: vec![SessionInfo {
                id: sid,
                timeout_ms: 30000,
                expire_at_ms: 1795291495000,
            }],
            ephemerals: vec![(sid, vec!["/eph1".into(), "/p/eph2".into()])],
            ..ServerSnapshot::default()
        }
    }

    #[test]
    fn unknown_bytes_are_not_commands() {
        assert_eq!(answer(&[0, 0, 0, 44], &wl_all(), &fresh()), None);
        assert_eq!(answer(b"xyzw", &wl_all(), &fresh()), None);
        assert_eq!(command(b"RUOK"), None);
        assert_eq!(command(b"ruok"), Some(Command::Ruok));
        assert_eq!(
            command(&[0xff, 0xf4, 0xff, 0xfd]),
            Some(Command::TelnetClose)
        );
        assert_eq!(ans(&[0xff, 0xf4, 0xff, 0xfd], &fresh()), "");
    }

    #[test]
    fn ruok_isro() {
        let mut s = fresh();
        assert_eq!(ans(b"ruok", &s), "imok");
        assert_eq!(ans(b"isro", &s), "rw");
        s.read_only = true;
        assert_eq!(ans(b"isro", &s), "ro");
        s.serving = false;
        assert_eq!(ans(b"ruok", &s), "imok");
        assert_eq!(ans(b"isro", &s), "null");
    }

    #[test]
    fn srvr_fresh_golden() {
        let want = "Zookeeper version: 3.8.0-rustzk, built on 2026-01-01 00:00 UTC\n\
                    Latency min/avg/max: 0/0.0/0\n\
                    Received: 6\n\
                    Sent: 5\n\
                    Connections: 1\n\
                    Outstanding: 0\n\
                    Zxid: 0x0\n\
                    Mode: standalone\n\
                    Node count: 5\n";
        assert_eq!(ans(b"srvr", &fresh()), want);
    }

    #[test]
    fn stat_busy_golden() {
        let want = "Zookeeper version: 3.8.0-rustzk, built on 2026-01-01 00:00 UTC\n\
                    Clients:\n \
                    /127.0.0.1:55796[1](queued=0,recved=7,sent=7)\n \
                    /127.0.0.1:55800[0](queued=0,recved=1,sent=0)\n\
                    \n\
                    Latency min/avg/max: 1/5.4286/18\n\
                    Received: 10\n\
                    Sent: 9\n\
                    Connections: 2\n\
                    Outstanding: 0\n\
                    Zxid: 0x4\n\
                    Mode: standalone\n\
                    Node count: 8\n";
        assert_eq!(ans(b"stat", &busy()), want);
    }

    #[test]
    fn stat_no_clients_and_read_only_and_leader() {
        let mut s = fresh();
        s.read_only = true;
        s.mode = "read-only".into();
        let out = ans(b"stat", &s);
        assert!(out.starts_with(
            "Zookeeper version: 3.8.0-rustzk, built on 2026-01-01 00:00 UTC\n\
             READ-ONLY mode; serving only read-only clients\nClients:\n\nLatency"
        ));
        assert!(out.ends_with("Mode: read-only\nNode count: 5\n"));

        let mut s = fresh();
        s.mode = "leader".into();
        s.last_zxid = 0x100000000;
        s.leader = Some(LeaderStats {
            last_proposal_size: -1,
            min_proposal_size: -1,
            max_proposal_size: -1,
            ..LeaderStats::default()
        });
        assert!(ans(b"srvr", &s).ends_with(
            "Zxid: 0x100000000\nMode: leader\nNode count: 5\nProposal sizes last/min/max: -1/-1/-1\n"
        ));
    }

    #[test]
    fn cons_golden() {
        let want = " /127.0.0.1:55796[1](queued=0,recved=7,sent=7,sid=0x1000004595e0000,\
                    lop=GETC,est=1795291464330,to=30000,lcxid=0x6,lzxid=0x4,lresp=292860,\
                    llat=1,minlat=0,avglat=5,maxlat=18)\n \
                    /127.0.0.1:55800[0](queued=0,recved=1,sent=0)\n\n";
        assert_eq!(ans(b"cons", &busy()), want);
        assert_eq!(ans(b"cons", &ServerSnapshot::default()), "\n");
        // Negative zxid prints as Java's unsigned hex; lcxid < 0 is omitted.
        let mut s = busy();
        s.connections.truncate(1);
        s.connections[0].last_cxid = -1;
        s.connections[0].last_zxid = -1;
        let out = ans(b"cons", &s);
        assert!(out.contains(",to=30000,lzxid=0xffffffffffffffff,lresp="));
    }

    #[test]
    fn mntr_fresh_golden() {
        let want = "zk_version\t3.8.0-rustzk, built on 2026-01-01 00:00 UTC\n\
                    zk_server_state\tstandalone\n\
                    zk_ephemerals_count\t0\n\
                    zk_num_alive_connections\t1\n\
                    zk_avg_latency\t0.0\n\
                    zk_outstanding_requests\t0\n\
                    zk_znode_count\t5\n\
                    zk_global_sessions\t0\n\
                    zk_packets_sent\t5\n\
                    zk_packets_received\t6\n\
                    zk_watch_count\t0\n\
                    zk_min_latency\t0\n\
                    zk_approximate_data_size\t44\n\
                    zk_local_sessions\t0\n\
                    zk_uptime\t2129\n\
                    zk_max_latency\t0\n";
        assert_eq!(ans(b"mntr", &fresh()), want);
    }

    #[test]
    fn mntr_leader_and_extras() {
        let mut s = busy();
        s.mode = "leader".into();
        s.peer_state = Some("leading - broadcast".into());
        s.quorum_size = Some(3);
        s.open_file_descriptor_count = Some(43);
        s.max_file_descriptor_count = Some(20000);
        s.leader = Some(LeaderStats {
            learners: 2,
            synced_followers: 2,
            last_proposal_size: -1,
            min_proposal_size: -1,
            max_proposal_size: -1,
            leader_uptime_ms: 332,
            ..LeaderStats::default()
        });
        s.extra_metrics = vec![
            ("fsynctime_avg".into(), Metric::Float(2.0)),
            ("snap_count".into(), Metric::Int(1)),
        ];
        let out = ans(b"mntr", &s);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "zk_version\t3.8.0-rustzk, built on 2026-01-01 00:00 UTC"
        );
        assert_eq!(lines[1], "zk_server_state\tleader");
        assert_eq!(lines[2], "zk_peer_state\tleading - broadcast");
        for l in [
            "zk_avg_latency\t5.4286",
            "zk_min_latency\t1",
            "zk_max_latency\t18",
            "zk_watch_count\t3",
            "zk_learners\t2",
            "zk_synced_followers\t2",
            "zk_synced_non_voting_followers\t0",
            "zk_synced_observers\t0",
            "zk_pending_syncs\t0",
            "zk_last_proposal_size\t-1",
            "zk_min_proposal_size\t-1",
            "zk_max_proposal_size\t-1",
            "zk_leader_uptime\t332",
            "zk_quorum_size\t3",
            "zk_open_file_descriptor_count\t43",
            "zk_max_file_descriptor_count\t20000",
        ] {
            assert!(lines.contains(&l), "missing {l:?} in {out}");
        }
        assert_eq!(lines[lines.len() - 2], "zk_fsynctime_avg\t2.0");
        assert_eq!(lines[lines.len() - 1], "zk_snap_count\t1");
        // Every line is key<TAB>value.
        assert!(lines.iter().all(|l| l.split('\t').count() == 2));
        // Followers carry no leader lines even if stats were left filled in.
        s.mode = "follower".into();
        assert!(!ans(b"mntr", &s).contains("zk_learners"));
    }

    #[test]
    fn conf_standalone_golden() {
        let s = ServerSnapshot {
            conf_lines: vec![
                ("clientPort".into(), "2191".into()),
                ("secureClientPort".into(), "-1".into()),
                ("dataDir".into(), "/tmp/zk/data".into()),
                ("dataLogDir".into(), "/tmp/zk/data".into()),
                ("tickTime".into(), "2000".into()),
                ("maxClientCnxns".into(), "0".into()),
                ("minSessionTimeout".into(), "4000".into()),
                ("maxSessionTimeout".into(), "40000".into()),
                ("clientPortListenBacklog".into(), "-1".into()),
                ("serverId".into(), "0".into()),
            ],
            data_dir_size: 457,
            log_dir_size: 457,
            ..fresh()
        };
        let want = "clientPort=2191\nsecureClientPort=-1\ndataDir=/tmp/zk/data\n\
                    dataDirSize=457\ndataLogDir=/tmp/zk/data\ndataLogSize=457\n\
                    tickTime=2000\nmaxClientCnxns=0\nminSessionTimeout=4000\n\
                    maxSessionTimeout=40000\nclientPortListenBacklog=-1\nserverId=0\n";
        assert_eq!(ans(b"conf", &s), want);
    }

    #[test]
    fn conf_quorum_membership_golden() {
        let s = ServerSnapshot {
            conf_lines: vec![
                ("serverId".into(), "1".into()),
                ("peerType".into(), "0".into()),
                ("membership:".into(), String::new()),
                ("server.1".into(), "127.0.0.1:2491:2591:participant".into()),
                ("server.2".into(), "127.0.0.1:2492:2592:participant".into()),
                ("version".into(), "100000000".into()),
            ],
            ..fresh()
        };
        let want = "serverId=1\npeerType=0\nmembership: \n\
                    server.1=127.0.0.1:2491:2591:participant\n\
                    server.2=127.0.0.1:2492:2592:participant\n\
                    version=100000000";
        assert_eq!(ans(b"conf", &s), want);
    }

    #[test]
    fn envi_golden() {
        let s = ServerSnapshot {
            env: vec![
                ("zookeeper.version".into(), "ignored".into()),
                ("host.name".into(), "localhost".into()),
                ("os.name".into(), "Linux".into()),
            ],
            ..fresh()
        };
        assert_eq!(
            ans(b"envi", &s),
            "Environment:\nzookeeper.version=3.8.0-rustzk, built on 2026-01-01 00:00 UTC\n\
             host.name=localhost\nos.name=Linux\n"
        );
        // kazoo's server_version(): version.split("-")[0] must be dotted integers.
        let digits = VERSION.split('-').next().unwrap();
        assert!(digits.starts_with("3.8."));
        assert!(digits.split('.').all(|p| p.parse::<u32>().is_ok()));
    }

    #[test]
    fn watches_golden() {
        let s = busy();
        assert_eq!(
            ans(b"wchs", &s),
            "1 connections watching 2 paths\nTotal watches:2\n"
        );
        assert_eq!(ans(b"wchc", &s), "0x1000004595e0000\n\t/p\n\t/missing\n\n");
        assert_eq!(
            ans(b"wchp", &s),
            "/p\n\t0x1000004595e0000\n/missing\n\t0x1000004595e0000\n\n"
        );
        let e = fresh();
        assert_eq!(
            ans(b"wchs", &e),
            "0 connections watching 0 paths\nTotal watches:0\n"
        );
        assert_eq!(ans(b"wchc", &e), "\n");
        assert_eq!(ans(b"wchp", &e), "\n");
        // Two sessions on one path: 2 connections, 1 path, 2 watches.
        let s2 = ServerSnapshot {
            data_watches: vec![(1, "/a".into()), (2, "/a".into())],
            ..fresh()
        };
        assert_eq!(
            ans(b"wchs", &s2),
            "2 connections watching 1 paths\nTotal watches:2\n"
        );
        assert_eq!(ans(b"wchp", &s2), "/a\n\t0x1\n\t0x2\n\n");
    }

    #[test]
    fn dump_golden() {
        let want = "SessionTracker dump:\n\
                    Session Sets (1)/(1):\n\
                    1 expire at Sat Nov 21 20:04:55 UTC 2026:\n\
                    \t0x1000004595e0000\n\
                    ephemeral nodes dump:\n\
                    Sessions with Ephemerals (1):\n\
                    0x1000004595e0000:\n\
                    \t/eph1\n\
                    \t/p/eph2\n\
                    Connections dump:\n\
                    Connections Sets (2)/(2):\n\
                    1 expire at Sat Nov 21 20:04:41 UTC 2026:\n\
                    \tip: /127.0.0.1:55800 sessionId: 0x0\n\
                    1 expire at Sat Nov 21 20:05:01 UTC 2026:\n\
                    \tip: /127.0.0.1:55796 sessionId: 0x1000004595e0000\n";
        assert_eq!(ans(b"dump", &busy()), want);
        let mut s = busy();
        s.mode = "follower".into();
        s.sessions.push(SessionInfo {
            id: 5,
            timeout_ms: 4000,
            expire_at_ms: 0,
        });
        assert!(ans(b"dump", &s).starts_with(
            "SessionTracker dump:\nGlobal Sessions(2):\n0x5\t4000ms\n0x1000004595e0000\t30000ms\nephemeral nodes dump:\n"
        ));
    }

    #[test]
    fn dirs_resets_trace_mask() {
        let s = ServerSnapshot {
            data_dir_size: 457,
            log_dir_size: 12,
            ..fresh()
        };
        assert_eq!(ans(b"dirs", &s), "datadir_size: 457\nlogdir_size: 12\n");
        assert_eq!(ans(b"crst", &s), "Connection stats reset.\n");
        assert_eq!(ans(b"srst", &s), "Server stats reset.\n");
        assert_eq!(ans(b"gtmk", &s), "306");
        assert_eq!(ans(b"hash", &s), "");
        let wl = Whitelist::all();
        assert_eq!(
            side_effect(b"crst", &wl, true),
            Some(SideEffect::ResetConnectionStats)
        );
        assert_eq!(
            side_effect(b"srst", &wl, true),
            Some(SideEffect::ResetServerStats)
        );
        assert_eq!(
            side_effect(b"stmk", &wl, true),
            Some(SideEffect::ReadTraceMask)
        );
        assert_eq!(
            side_effect(b"stmk", &wl, false),
            Some(SideEffect::ReadTraceMask)
        );
        assert_eq!(side_effect(b"srst", &wl, false), None);
        assert_eq!(side_effect(b"srst", &Whitelist::default(), true), None);
        assert_eq!(side_effect(b"mntr", &wl, true), None);
        assert_eq!(side_effect(b"abcd", &wl, true), None);
    }

    #[test]
    fn whitelist_rules() {
        let d = Whitelist::default();
        assert_eq!(d.names(), vec!["srvr"]);
        let s = fresh();
        assert_eq!(
            answer(b"mntr", &d, &s).unwrap(),
            "mntr is not executed because it is not in the whitelist.\n"
        );
        assert!(answer(b"srvr", &d, &s)
            .unwrap()
            .starts_with("Zookeeper version:"));
        // Trimmed, unknown names ignored, srvr always on.
        let w = Whitelist::parse(" ruok , bogus,stat,,");
        assert_eq!(w.names(), vec!["ruok", "srvr", "stat"]);
        assert!(!w.allows(Command::Isro));
        assert!(Whitelist::parse("ruok, *").is_all());
        assert!(Whitelist::parse("*").allows(Command::TelnetClose));
        assert_eq!(Whitelist::parse(""), Whitelist::default());
        let mut w = Whitelist::default();
        w.insert(Command::Isro);
        assert_eq!(w.names(), vec!["srvr", "isro"]);
    }

    #[test]
    fn not_serving() {
        let s = ServerSnapshot {
            serving: false,
            ..fresh()
        };
        let ns = "This ZooKeeper instance is not currently serving requests\n";
        for c in [
            b"srvr", b"stat", b"mntr", b"conf", b"cons", b"wchs", b"wchc", b"wchp", b"dump",
            b"dirs", b"crst", b"srst",
        ] {
            assert_eq!(ans(c, &s), ns, "{}", String::from_utf8_lossy(c));
        }
        assert_eq!(ans(b"hash", &s), ns.trim_end());
        assert_eq!(ans(b"ruok", &s), "imok");
        assert_eq!(ans(b"gtmk", &s), "306");
        assert!(ans(b"envi", &s).starts_with("Environment:\nzookeeper.version=3.8."));
        // The whitelist is checked first.
        assert_eq!(
            answer(b"stat", &Whitelist::default(), &s).unwrap(),
            "stat is not executed because it is not in the whitelist.\n"
        );
    }

    #[test]
    fn java_formats() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(1.0), "1.0");
        assert_eq!(java_double(5.4286), "5.4286");
        assert_eq!(java_double(719.0), "719.0");
        assert_eq!(java_double(0.0005), "5.0E-4");
        assert_eq!(java_double(12345678.0), "1.2345678E7");
        assert_eq!(java_double(avg4(1.57549999)), "1.5755");
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1795291495000), "Sat Nov 21 20:04:55 UTC 2026");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
        assert_eq!(
            java_addr(&"127.0.0.1:2181".parse().unwrap()),
            "127.0.0.1:2181"
        );
        assert_eq!(
            java_addr(&"[::1]:2181".parse().unwrap()),
            "0:0:0:0:0:0:0:1:2181"
        );
    }
}
