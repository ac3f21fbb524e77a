//! `zoo.cfg`: ZooKeeper 3.8's configuration file, parsed into typed settings.
//!
//! The file is Java-properties-like: `key=value` lines, `#`/`!` comment lines,
//! blank lines, keys and values trimmed; a repeated key takes its last value.
//! Every bad value stops start-up with an error naming the file, the line, the
//! key and what was wrong. Keys ZooKeeper would turn into `zookeeper.<key>`
//! system properties and that we do not know are kept in [`Config::extra`].
//!
//! [`Config::parse`] is pure; [`Config::load`] reads the file and, like
//! ZooKeeper, `dataDir/myid`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::fourlw::{Command, Whitelist};

pub const DEFAULT_TICK_MS: u32 = 3000;
pub const DEFAULT_MAX_CLIENT_CNXNS: u32 = 60;
pub const DEFAULT_SNAP_COUNT: u32 = 100_000;
pub const MIN_SNAP_RETAIN_COUNT: u32 = 3;
pub const DEFAULT_JUTE_MAX_BUFFER: u32 = 0xfffff;
pub const DEFAULT_GLOBAL_OUTSTANDING_LIMIT: u32 = 1000;
pub const DEFAULT_MAX_CNXN_OUTSTANDING: u32 = 1000;
/// ZooKeeper's `zookeeper.preAllocSize` default, in KiB (64 MiB).
pub const DEFAULT_PRE_ALLOC_SIZE_KB: u64 = 65536;

/// A configuration error. Display: `file:line: key: message`, with the line
/// and key parts left out when they do not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    /// 1-based line of the offending entry.
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(k) = &self.key {
            write!(f, ": {k}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Role of an ensemble member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PeerRole {
    #[default]
    Participant,
    Observer,
}

impl PeerRole {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerRole::Participant => "participant",
            PeerRole::Observer => "observer",
        }
    }
}

/// A `host:port` pair as written in the file (host not resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

/// One `server.N=host:quorumPort:electionPort[:participant|observer][;[clientAddr:]clientPort]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    pub id: u64,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    pub role: PeerRole,
    /// Client address from the `;` part; host defaults to `0.0.0.0` as in ZooKeeper.
    pub client: Option<HostPort>,
}

impl ServerSpec {
    /// The value as ZooKeeper prints it in `conf`'s membership section.
    pub fn to_zk_string(&self) -> String {
        let mut s = format!(
            "{}:{}:{}:{}",
            bracket(&self.host),
            self.quorum_port,
            self.election_port,
            self.role.as_str()
        );
        if let Some(c) = &self.client {
            s.push_str(&format!(";{}:{}", bracket(&c.host), c.port));
        }
        s
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// The server's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `tickTime` (ms): the base time unit. Default 3000, must be > 0.
    pub tick_ms: u32,
    /// `dataDir` (required): snapshots, `myid`.
    pub data_dir: PathBuf,
    /// `dataLogDir`: transaction logs; defaults to `data_dir`.
    pub data_log_dir: PathBuf,
    /// `clientPort`. In a quorum config it may come from this server's `server.N`
    /// line instead (resolved by [`Config::apply_myid`]). 0 asks the OS for a port.
    pub client_port: u16,
    /// `clientPortAddress`: address the client port binds (default 0.0.0.0).
    pub client_port_address: IpAddr,
    /// `clientPortListenBacklog` (-1 = system default).
    pub client_port_listen_backlog: i32,
    /// `maxClientCnxns`: connections per client IP, 0 = unlimited (default 60).
    pub max_client_cnxns: u32,
    /// `maxCnxns`: total connections, 0 = unlimited (default 0).
    pub max_cnxns: u32,
    /// `minSessionTimeout` (ms), default 2 × tick.
    pub min_session_timeout_ms: u32,
    /// `maxSessionTimeout` (ms), default 20 × tick.
    pub max_session_timeout_ms: u32,
    /// `snapCount`: transactions between snapshots (default 100000, >= 2).
    pub snap_count: u32,
    /// `preAllocSize` (KiB): transaction log pre-allocation (default 65536).
    pub pre_alloc_size_kb: u64,
    /// `forceSync` (yes/no, default yes): fsync the transaction log.
    pub force_sync: bool,
    /// `autopurge.snapRetainCount` (default 3; smaller values become 3).
    pub autopurge_snap_retain_count: u32,
    /// `autopurge.purgeInterval` (hours, 0 = never; default 0).
    pub autopurge_purge_interval_hours: u32,
    /// `4lw.commands.whitelist` (default: `srvr` only).
    pub four_letter_whitelist: Whitelist,
    /// `jute.maxbuffer`: largest request/znode payload (default 0xfffff).
    pub jute_max_buffer: u32,
    /// `extendedTypesEnabled` (default false): TTL nodes.
    pub extended_types_enabled: bool,
    /// `globalOutstandingLimit` (default 1000): throttle threshold.
    pub global_outstanding_limit: u32,
    /// `maxCnxnOutstanding` (ours, default 1000): requests in flight per connection.
    pub max_cnxn_outstanding: u32,
    /// `readonlymode.enabled` (default false). ZooKeeper reads this only as a
    /// JVM system property; we accept it in the file. Also enables `isro`.
    pub read_only_mode_enabled: bool,
    /// `initLimit` (ticks), required in quorum mode.
    pub init_limit: Option<u32>,
    /// `syncLimit` (ticks), required in quorum mode.
    pub sync_limit: Option<u32>,
    /// `connectToLearnerMasterLimit` (ticks).
    pub connect_to_learner_master_limit: Option<u32>,
    /// `electionAlg`: only 3.
    pub election_alg: u32,
    /// `peerType` (default participant); the `server.N` line wins if they differ.
    pub peer_type: PeerRole,
    /// `server.N` lines, sorted by id.
    pub servers: Vec<ServerSpec>,
    /// `version` (hex): version of the quorum configuration (default 0).
    pub quorum_config_version: u64,
    /// `standaloneEnabled` (default true).
    pub standalone_enabled: bool,
    /// `reconfigEnabled` (default false).
    pub reconfig_enabled: bool,
    /// `skipACL` (yes/no, default no).
    pub skip_acl: bool,
    /// `DigestAuthenticationProvider.superDigest` (`user:base64(sha1)`).
    pub super_digest: Option<String>,
    /// `leaderServes` (yes/no, default yes).
    pub leader_serves: bool,
    /// `localSessionsEnabled` (default false).
    pub local_sessions_enabled: bool,
    /// `localSessionsUpgradingEnabled` (default false).
    pub local_sessions_upgrading_enabled: bool,
    /// `syncEnabled` (default true): observers log transactions.
    pub sync_enabled: bool,
    /// `quorumListenOnAllIPs` (default false).
    pub quorum_listen_on_all_ips: bool,
    /// This server's id, from `dataDir/myid` (see [`Config::apply_myid`]).
    pub server_id: Option<u64>,
    /// Other keys, as given (ZooKeeper makes them `zookeeper.<key>` system properties).
    pub extra: BTreeMap<String, String>,
}

impl Config {
    /// All defaults, with the two settings that have none.
    pub fn new(data_dir: impl Into<PathBuf>, client_port: u16) -> Config {
        let data_dir = data_dir.into();
        Config {
            tick_ms: DEFAULT_TICK_MS,
            data_log_dir: data_dir.clone(),
            data_dir,
            client_port,
            client_port_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            client_port_listen_backlog: -1,
            max_client_cnxns: DEFAULT_MAX_CLIENT_CNXNS,
            max_cnxns: 0,
            min_session_timeout_ms: 2 * DEFAULT_TICK_MS,
            max_session_timeout_ms: 20 * DEFAULT_TICK_MS,
            snap_count: DEFAULT_SNAP_COUNT,
            pre_alloc_size_kb: DEFAULT_PRE_ALLOC_SIZE_KB,
            force_sync: true,
            autopurge_snap_retain_count: MIN_SNAP_RETAIN_COUNT,
            autopurge_purge_interval_hours: 0,
            four_letter_whitelist: Whitelist::default(),
            jute_max_buffer: DEFAULT_JUTE_MAX_BUFFER,
            extended_types_enabled: false,
            global_outstanding_limit: DEFAULT_GLOBAL_OUTSTANDING_LIMIT,
            max_cnxn_outstanding: DEFAULT_MAX_CNXN_OUTSTANDING,
            read_only_mode_enabled: false,
            init_limit: None,
            sync_limit: None,
            connect_to_learner_master_limit: None,
            election_alg: 3,
            peer_type: PeerRole::Participant,
            servers: Vec::new(),
            quorum_config_version: 0,
            standalone_enabled: true,
            reconfig_enabled: false,
            skip_acl: false,
            super_digest: None,
            leader_serves: true,
            local_sessions_enabled: false,
            local_sessions_upgrading_enabled: false,
            sync_enabled: true,
            quorum_listen_on_all_ips: false,
            server_id: None,
            extra: BTreeMap::new(),
        }
    }

    /// Quorum mode iff there are server lines and (`standaloneEnabled=false`
    /// or more than one voting member) — ZooKeeper's `isDistributed`.
    pub fn is_quorum(&self) -> bool {
        !self.servers.is_empty() && (!self.standalone_enabled || self.voting_members() > 1)
    }

    /// Number of participants among the server lines.
    pub fn voting_members(&self) -> usize {
        self.servers
            .iter()
            .filter(|s| s.role == PeerRole::Participant)
            .count()
    }

    /// This server's `server.N` line, once `server_id` is known.
    pub fn my_server(&self) -> Option<&ServerSpec> {
        let id = self.server_id?;
        self.servers.iter().find(|s| s.id == id)
    }

    /// Where to listen for clients.
    pub fn client_address(&self) -> SocketAddr {
        SocketAddr::new(self.client_port_address, self.client_port)
    }

    /// Read and parse a config file, then `dataDir/myid` if it exists.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: None,
            key: None,
            message: format!("cannot read: {e}"),
        })?;
        let mut cfg = Config::parse(&text, &file)?;
        let myid_path = cfg.data_dir.join("myid");
        let myid = if myid_path.is_file() {
            Some(
                std::fs::read_to_string(&myid_path).map_err(|e| ConfigError {
                    file: myid_path.display().to_string(),
                    line: None,
                    key: None,
                    message: format!("cannot read: {e}"),
                })?,
            )
        } else {
            None
        };
        cfg.apply_myid(myid.as_deref(), &myid_path.display().to_string())?;
        Ok(cfg)
    }

    /// Take the server id from the contents of `dataDir/myid` (`None`: no such
    /// file), as ZooKeeper does: required in quorum mode, and then this server's
    /// `server.N` line must exist; its client address (if any) becomes the
    /// client address, and its role the peer type. `file` names the myid file
    /// in errors.
    pub fn apply_myid(&mut self, contents: Option<&str>, file: &str) -> Result<(), ConfigError> {
        let err = |message: String| ConfigError {
            file: file.to_string(),
            line: None,
            key: None,
            message,
        };
        let Some(text) = contents else {
            if self.is_quorum() {
                return Err(err("myid file is missing (required in quorum mode)".into()));
            }
            return Ok(());
        };
        let first = text.lines().next().unwrap_or("").trim();
        let id: u64 = first
            .parse()
            .map_err(|_| err(format!("expected a server id, got {first:?}")))?;
        self.server_id = Some(id);
        if !self.is_quorum() {
            return Ok(());
        }
        let me = self
            .my_server()
            .cloned()
            .ok_or_else(|| err(format!("server id {id} has no server.{id} line")))?;
        self.peer_type = me.role;
        if let Some(c) = &me.client {
            let ip = parse_ip(&c.host).ok_or_else(|| {
                err(format!(
                    "server.{id}: client address {:?} is not an IP address",
                    c.host
                ))
            })?;
            if self.client_port != 0 && self.client_port != c.port {
                return Err(err(format!(
                    "clientPort {} differs from the client port {} on the server.{id} line",
                    self.client_port, c.port
                )));
            }
            self.client_port = c.port;
            if !ip.is_unspecified() {
                self.client_port_address = ip;
            }
        } else if self.client_port == 0 {
            return Err(err(format!(
                "clientPort is not set and the server.{id} line has no client port"
            )));
        }
        Ok(())
    }

    /// The `conf` four-letter word's lines, in ZooKeeper's order.
    /// `dataDirSize`/`dataLogSize` are runtime values: the 4lw formatter
    /// inserts them after `dataDir`/`dataLogDir`. In quorum mode the entry
    /// `("membership:", "")` stands for ZooKeeper's `membership: ` line.
    pub fn to_conf_lines(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = Vec::new();
        let mut put = |k: &str, val: String| v.push((k.to_string(), val));
        put("clientPort", self.client_port.to_string());
        put("secureClientPort", "-1".into());
        put("dataDir", self.data_dir.display().to_string());
        put("dataLogDir", self.data_log_dir.display().to_string());
        put("tickTime", self.tick_ms.to_string());
        put("maxClientCnxns", self.max_client_cnxns.to_string());
        put("minSessionTimeout", self.min_session_timeout_ms.to_string());
        put("maxSessionTimeout", self.max_session_timeout_ms.to_string());
        put(
            "clientPortListenBacklog",
            self.client_port_listen_backlog.to_string(),
        );
        let quorum = self.is_quorum();
        let sid = if quorum {
            self.server_id.unwrap_or(0)
        } else {
            0
        };
        put("serverId", sid.to_string());
        if quorum {
            let me = self.my_server();
            put("initLimit", self.init_limit.unwrap_or(0).to_string());
            put("syncLimit", self.sync_limit.unwrap_or(0).to_string());
            put("electionAlg", self.election_alg.to_string());
            put(
                "electionPort",
                me.map(|s| s.election_port.to_string()).unwrap_or_default(),
            );
            put(
                "quorumPort",
                me.map(|s| s.quorum_port.to_string()).unwrap_or_default(),
            );
            let pt = match self.peer_type {
                PeerRole::Participant => "0",
                PeerRole::Observer => "1",
            };
            put("peerType", pt.into());
            put("membership:", String::new());
            for s in &self.servers {
                put(&format!("server.{}", s.id), s.to_zk_string());
            }
            put("version", format!("{:x}", self.quorum_config_version));
        }
        v
    }

    /// Parse the text of a config file; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let entries = read_entries(text, file)?;
        let p = Parser { file };
        let mut c = Config::new(PathBuf::new(), 0);
        let mut data_dir = None;
        let mut data_log_dir = None;
        let mut client_port = None;
        let mut client_port_address: Option<&Entry> = None;
        let mut tick: Option<&Entry> = None;
        let mut min_to: Option<(&Entry, Option<u32>)> = None;
        let mut max_to: Option<(&Entry, Option<u32>)> = None;
        let mut servers: Vec<(ServerSpec, &Entry)> = Vec::new();

        for e in &entries {
            let k = e.key.as_str();
            match k {
                "tickTime" => {
                    c.tick_ms = p.positive(e)?;
                    tick = Some(e);
                }
                "dataDir" => data_dir = Some(p.path(e)?),
                "dataLogDir" => data_log_dir = Some(p.path(e)?),
                "clientPort" => client_port = Some(p.port(e)?),
                "clientPortAddress" => {
                    c.client_port_address = parse_ip(&e.value).ok_or_else(|| {
                        p.err(e, format!("expected an IP address, got {:?}", e.value))
                    })?;
                    client_port_address = Some(e);
                }
                "clientPortListenBacklog" => c.client_port_listen_backlog = p.int(e)?,
                "maxClientCnxns" => c.max_client_cnxns = p.non_negative(e)?,
                "maxCnxns" => c.max_cnxns = p.non_negative(e)?,
                "minSessionTimeout" => min_to = Some((e, p.timeout(e)?)),
                "maxSessionTimeout" => max_to = Some((e, p.timeout(e)?)),
                "snapCount" => {
                    let n: u32 = p.non_negative(e)?;
                    if n < 2 {
                        return Err(p.err(e, format!("must be at least 2, got {n}")));
                    }
                    c.snap_count = n;
                }
                "preAllocSize" => c.pre_alloc_size_kb = p.positive(e)?,
                "forceSync" => c.force_sync = p.yes_no(e)?,
                "autopurge.snapRetainCount" => {
                    let n: i64 = p.int(e)?;
                    c.autopurge_snap_retain_count =
                        n.clamp(MIN_SNAP_RETAIN_COUNT as i64, u32::MAX as i64) as u32;
                }
                "autopurge.purgeInterval" => {
                    let n: i64 = p.int(e)?;
                    c.autopurge_purge_interval_hours = n.clamp(0, u32::MAX as i64) as u32;
                }
                "4lw.commands.whitelist" => c.four_letter_whitelist = Whitelist::parse(&e.value),
                "jute.maxbuffer" => c.jute_max_buffer = p.positive_hex_ok(e)?,
                "extendedTypesEnabled" => c.extended_types_enabled = p.true_false(e)?,
                "globalOutstandingLimit" => c.global_outstanding_limit = p.positive(e)?,
                "maxCnxnOutstanding" => c.max_cnxn_outstanding = p.positive(e)?,
                "readonlymode.enabled" => c.read_only_mode_enabled = p.true_false(e)?,
                "initLimit" => c.init_limit = Some(p.positive(e)?),
                "syncLimit" => c.sync_limit = Some(p.positive(e)?),
                "connectToLearnerMasterLimit" => {
                    c.connect_to_learner_master_limit = Some(p.positive(e)?)
                }
                "electionAlg" => {
                    if e.value != "3" {
                        return Err(p.err(e, format!("only 3 is supported, got {:?}", e.value)));
                    }
                }
                "peerType" => c.peer_type = p.role(e, &e.value)?,
                "version" => {
                    c.quorum_config_version = u64::from_str_radix(&e.value, 16).map_err(|_| {
                        p.err(e, format!("expected a hexadecimal number, got {:?}", e.value))
                    })?
                }
                "standaloneEnabled" => c.standalone_enabled = p.true_false(e)?,
                "reconfigEnabled" => c.reconfig_enabled = p.true_false(e)?,
                "skipACL" => c.skip_acl = p.yes_no(e)?,
                "DigestAuthenticationProvider.superDigest" => {
                    match e.value.split_once(':') {
                        Some((u, d)) if !u.is_empty() && !d.is_empty() => {}
                        _ => {
                            return Err(p.err(
                                e,
                                format!("expected user:base64-sha1-digest, got {:?}", e.value),
                            ))
                        }
                    }
                    c.super_digest = Some(e.value.clone());
                }
                "leaderServes" => c.leader_serves = p.yes_no(e)?,
                "localSessionsEnabled" => c.local_sessions_enabled = p.true_false(e)?,
                "localSessionsUpgradingEnabled" => {
                    c.local_sessions_upgrading_enabled = p.true_false(e)?
                }
                "syncEnabled" => c.sync_enabled = p.true_false(e)?,
                "quorumListenOnAllIPs" => c.quorum_listen_on_all_ips = p.true_false(e)?,
                "dynamicConfigFile" => {
                    return Err(p.err(
                        e,
                        "a separate dynamic config file is not supported; put the server.N lines in this file".into(),
                    ))
                }
                _ if k.starts_with("server.") => servers.push((p.server(e)?, e)),
                _ if k.starts_with("group.") || k.starts_with("weight.") => {
                    return Err(p.err(e, "hierarchical quorums are not supported".into()))
                }
                // AdminServer and metrics-provider settings: accepted, not used.
                _ if k.starts_with("admin.") || k.starts_with("metricsProvider.") => {}
                _ => {
                    c.extra.insert(e.key.clone(), e.value.clone());
                }
            }
        }

        c.data_dir = data_dir.ok_or_else(|| p.missing("dataDir"))?;
        c.data_log_dir = data_log_dir.unwrap_or_else(|| c.data_dir.clone());

        // Session timeouts: -1 or absent means 2x / 20x tickTime.
        let min_v = min_to.and_then(|(_, v)| v);
        let max_v = max_to.and_then(|(_, v)| v);
        c.min_session_timeout_ms = min_v.unwrap_or_else(|| c.tick_ms.saturating_mul(2));
        c.max_session_timeout_ms = max_v.unwrap_or_else(|| c.tick_ms.saturating_mul(20));
        if c.min_session_timeout_ms > c.max_session_timeout_ms {
            let (e, key) = match (min_to, max_to) {
                (Some((e, Some(_))), _) => (Some(e), "minSessionTimeout"),
                (_, Some((e, Some(_)))) => (Some(e), "maxSessionTimeout"),
                _ => (tick, "tickTime"),
            };
            return Err(ConfigError {
                file: file.to_string(),
                line: e.map(|e| e.line),
                key: Some(key.to_string()),
                message: format!(
                    "minSessionTimeout ({}) must not be larger than maxSessionTimeout ({})",
                    c.min_session_timeout_ms, c.max_session_timeout_ms
                ),
            });
        }

        // Server lines: unique ids, and ZooKeeper's membership rules.
        servers.sort_by_key(|(s, _)| s.id);
        for w in servers.windows(2) {
            if w[0].0.id == w[1].0.id {
                return Err(p.err(
                    w[1].1,
                    format!(
                        "server id {} is also given on line {}",
                        w[1].0.id, w[0].1.line
                    ),
                ));
            }
        }
        c.servers = servers.iter().map(|(s, _)| s.clone()).collect();
        let voters = c.voting_members();
        let observers = c.servers.len() - voters;
        let first_server = servers.first().map(|(_, e)| *e);
        let quorum_err = |message: &str| ConfigError {
            file: file.to_string(),
            line: first_server.map(|e| e.line),
            key: first_server.map(|e| e.key.clone()),
            message: message.to_string(),
        };
        if voters == 0 {
            if !c.standalone_enabled {
                return Err(quorum_err(
                    "standaloneEnabled=false needs at least one participant server.N line",
                ));
            }
            if observers > 0 {
                return Err(quorum_err("observers without participants"));
            }
        } else if voters == 1 && c.standalone_enabled && observers > 0 {
            return Err(quorum_err(
                "observers without a quorum (one participant and standaloneEnabled=true)",
            ));
        }

        if c.is_quorum() {
            if c.init_limit.is_none() {
                return Err(p.missing_quorum("initLimit"));
            }
            if c.sync_limit.is_none() {
                return Err(p.missing_quorum("syncLimit"));
            }
        }

        match client_port {
            Some(port) => c.client_port = port,
            None => {
                if let Some(e) = client_port_address {
                    return Err(p.err(e, "clientPortAddress is set but clientPort is not".into()));
                }
                let all_have_client = c.servers.iter().all(|s| s.client.is_some());
                if !(c.is_quorum() && all_have_client) {
                    return Err(p.missing("clientPort"));
                }
            }
        }

        if c.read_only_mode_enabled {
            c.four_letter_whitelist.insert(Command::Isro);
        }
        Ok(c)
    }
}

/// `localhost` or an IP literal (IPv6 with or without brackets).
fn parse_ip(s: &str) -> Option<IpAddr> {
    if s.eq_ignore_ascii_case("localhost") {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let s = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

#[derive(Debug)]
struct Entry {
    key: String,
    value: String,
    line: usize,
}

/// Split into entries; a repeated key keeps its last value (at its last line).
fn read_entries(text: &str, file: &str) -> Result<Vec<Entry>, ConfigError> {
    let mut out: Vec<Entry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(ConfigError {
                file: file.to_string(),
                line: Some(i + 1),
                key: None,
                message: format!("expected key=value, got {line:?}"),
            });
        };
        let key = k.trim().to_string();
        if key.is_empty() {
            return Err(ConfigError {
                file: file.to_string(),
                line: Some(i + 1),
                key: None,
                message: format!("missing key before '=' in {line:?}"),
            });
        }
        out.retain(|e| e.key != key);
        out.push(Entry {
            key,
            value: v.trim().to_string(),
            line: i + 1,
        });
    }
    Ok(out)
}

struct Parser<'a> {
    file: &'a str,
}

impl Parser<'_> {
    fn err(&self, e: &Entry, message: String) -> ConfigError {
        ConfigError {
            file: self.file.to_string(),
            line: Some(e.line),
            key: Some(e.key.clone()),
            message,
        }
    }

    fn missing(&self, key: &str) -> ConfigError {
        ConfigError {
            file: self.file.to_string(),
            line: None,
            key: Some(key.to_string()),
            message: "missing required key".into(),
        }
    }

    fn missing_quorum(&self, key: &str) -> ConfigError {
        ConfigError {
            file: self.file.to_string(),
            line: None,
            key: Some(key.to_string()),
            message: "missing required key (quorum mode)".into(),
        }
    }

    fn int<T: std::str::FromStr>(&self, e: &Entry) -> Result<T, ConfigError> {
        e.value
            .parse()
            .map_err(|_| self.err(e, format!("expected an integer, got {:?}", e.value)))
    }

    fn positive<T: std::str::FromStr + Default + PartialOrd>(
        &self,
        e: &Entry,
    ) -> Result<T, ConfigError> {
        match e.value.parse::<T>() {
            Ok(n) if n > T::default() && fits_i32(&e.value) => Ok(n),
            _ => Err(self.err(e, format!("expected a positive integer, got {:?}", e.value))),
        }
    }

    fn non_negative<T: std::str::FromStr>(&self, e: &Entry) -> Result<T, ConfigError> {
        match e.value.parse::<T>() {
            Ok(n) if fits_i32(&e.value) => Ok(n),
            _ => Err(self.err(
                e,
                format!("expected a non-negative integer, got {:?}", e.value),
            )),
        }
    }

    /// `jute.maxbuffer` is read with Java's `Integer.decode`: `0x` hex allowed.
    fn positive_hex_ok(&self, e: &Entry) -> Result<u32, ConfigError> {
        let v = e.value.as_str();
        let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
            Some(h) => u32::from_str_radix(h, 16).ok(),
            None => v.parse().ok(),
        };
        match parsed {
            Some(n) if n > 0 && n <= i32::MAX as u32 => Ok(n),
            _ => Err(self.err(e, format!("expected a positive integer, got {v:?}"))),
        }
    }

    /// A session timeout: positive ms, or -1 for the default.
    fn timeout(&self, e: &Entry) -> Result<Option<u32>, ConfigError> {
        if e.value == "-1" {
            return Ok(None);
        }
        match e.value.parse::<u32>() {
            Ok(n) if n > 0 && fits_i32(&e.value) => Ok(Some(n)),
            _ => Err(self.err(
                e,
                format!(
                    "expected a positive number of milliseconds (or -1 for the default), got {:?}",
                    e.value
                ),
            )),
        }
    }

    fn port(&self, e: &Entry) -> Result<u16, ConfigError> {
        e.value
            .parse()
            .map_err(|_| self.err(e, format!("expected a port number, got {:?}", e.value)))
    }

    fn path(&self, e: &Entry) -> Result<PathBuf, ConfigError> {
        if e.value.is_empty() {
            return Err(self.err(e, "expected a directory, got an empty value".into()));
        }
        Ok(PathBuf::from(&e.value))
    }

    /// Keys ZooKeeper parses with `parseBoolean`: `true`/`false`, any case.
    fn true_false(&self, e: &Entry) -> Result<bool, ConfigError> {
        match e.value.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(self.err(e, format!("expected true or false, got {:?}", e.value))),
        }
    }

    /// System-property switches ZooKeeper compares with "yes"/"no".
    fn yes_no(&self, e: &Entry) -> Result<bool, ConfigError> {
        match e.value.as_str() {
            "yes" => Ok(true),
            "no" => Ok(false),
            _ => Err(self.err(e, format!("expected yes or no, got {:?}", e.value))),
        }
    }

    fn role(&self, e: &Entry, s: &str) -> Result<PeerRole, ConfigError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "participant" => Ok(PeerRole::Participant),
            "observer" => Ok(PeerRole::Observer),
            _ => Err(self.err(
                e,
                format!("expected participant or observer, got {:?}", s.trim()),
            )),
        }
    }

    /// `server.N=host:quorumPort:electionPort[:participant|observer][;[clientAddr:]clientPort]`
    fn server(&self, e: &Entry) -> Result<ServerSpec, ConfigError> {
        let n = &e.key["server.".len()..];
        let id: u64 = match n.parse() {
            Ok(id) if id <= 255 => id,
            _ => {
                return Err(self.err(
                    e,
                    format!("expected server.N with N a server id from 0 to 255, got server.{n:?}"),
                ))
            }
        };
        let bad = |why: &str| {
            self.err(
                e,
                format!(
                    "{why}; expected host:quorumPort:electionPort[:participant|observer][;[clientAddress:]clientPort], got {:?}",
                    e.value
                ),
            )
        };
        let mut halves = e.value.split(';');
        let server_part = halves.next().unwrap_or("").trim();
        let client_part = halves.next().map(str::trim);
        if halves.next().is_some() {
            return Err(bad("more than one ';'"));
        }
        if server_part.contains('|') {
            return Err(bad("multiple addresses per server are not supported"));
        }
        let parts = host_and_port(server_part).map_err(|w| bad(&w))?;
        if parts.len() < 3 || parts.len() > 4 {
            return Err(bad("wrong number of ':'-separated fields"));
        }
        let host = parts[0].clone();
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        let port = |s: &str, what: &str| -> Result<u16, ConfigError> {
            match s.parse::<u16>() {
                Ok(p) if p > 0 => Ok(p),
                _ => Err(bad(&format!("{what} {s:?} is not a port number"))),
            }
        };
        let quorum_port = port(&parts[1], "quorum port")?;
        let election_port = port(&parts[2], "election port")?;
        if quorum_port == election_port {
            return Err(bad("quorum and election ports must differ"));
        }
        let role = match parts.get(3) {
            Some(r) => self.role(e, r)?,
            None => PeerRole::Participant,
        };
        let client = match client_part {
            None => None,
            Some(cp) => {
                let cparts = host_and_port(cp).map_err(|w| bad(&w))?;
                let (chost, cport) = match cparts.as_slice() {
                    [p] => ("0.0.0.0".to_string(), p.as_str()),
                    [h, p] => (h.clone(), p.as_str()),
                    _ => return Err(bad("client address must be [host:]port")),
                };
                if parse_ip(&chost).is_none() {
                    return Err(bad(&format!(
                        "client address {chost:?} is not an IP address"
                    )));
                }
                Some(HostPort {
                    host: chost,
                    port: port(cport, "client port")?,
                })
            }
        };
        Ok(ServerSpec {
            id,
            host,
            quorum_port,
            election_port,
            role,
            client,
        })
    }
}

/// Java ints: ZooKeeper parses these keys with `Integer.parseInt`.
fn fits_i32(v: &str) -> bool {
    v.parse::<i64>()
        .map(|n| n <= i32::MAX as i64)
        .unwrap_or(false)
}

/// ZooKeeper's `ConfigUtils.getHostAndPort`: `[v6]:a:b` or `host:a:b`.
fn host_and_port(s: &str) -> Result<Vec<String>, String> {
    if let Some(rest) = s.strip_prefix('[') {
        let i = rest
            .find(']')
            .ok_or_else(|| "'[' without matching ']'".to_string())?;
        let host = &rest[..i];
        let after = &rest[i + 1..];
        let Some(ports) = after.strip_prefix(':') else {
            return Err("expected ':' after ']'".into());
        };
        if ports.is_empty() {
            return Err("no port after ':'".into());
        }
        let mut v = vec![host.to_string()];
        v.extend(ports.split(':').map(str::to_string));
        Ok(v)
    } else {
        Ok(s.split(':').map(str::to_string).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "zoo.cfg")
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    const MIN: &str = "dataDir=/tmp/zk\nclientPort=2181\n";

    #[test]
    fn defaults() {
        let c = parse(MIN).unwrap();
        assert_eq!(c, Config::new("/tmp/zk", 2181));
        assert_eq!(c.tick_ms, 3000);
        assert_eq!(c.data_log_dir, PathBuf::from("/tmp/zk"));
        assert_eq!(c.client_port_address, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(c.max_client_cnxns, 60);
        assert_eq!(c.min_session_timeout_ms, 6000);
        assert_eq!(c.max_session_timeout_ms, 60000);
        assert_eq!(c.snap_count, 100000);
        assert_eq!(c.autopurge_snap_retain_count, 3);
        assert_eq!(c.autopurge_purge_interval_hours, 0);
        assert_eq!(c.four_letter_whitelist.names(), vec!["srvr"]);
        assert_eq!(c.jute_max_buffer, 0xfffff);
        assert!(!c.extended_types_enabled);
        assert_eq!(c.global_outstanding_limit, 1000);
        assert_eq!(c.max_cnxn_outstanding, 1000);
        assert_eq!((c.init_limit, c.sync_limit), (None, None));
        assert!(c.standalone_enabled && !c.reconfig_enabled && !c.skip_acl);
        assert!(c.force_sync && c.leader_serves && c.sync_enabled);
        assert!(c.servers.is_empty() && !c.is_quorum());
        assert_eq!(c.client_address(), "0.0.0.0:2181".parse().unwrap());
        // Timeouts follow tickTime.
        let c = parse("tickTime=2000\ndataDir=d\nclientPort=1\n").unwrap();
        assert_eq!(
            (c.min_session_timeout_ms, c.max_session_timeout_ms),
            (4000, 40000)
        );
    }

    #[test]
    fn every_key() {
        let text = "\
# comment
! another comment

  tickTime = 2000
dataDir=/var/zk
dataLogDir=/var/zklog
clientPort=2182
clientPortAddress=127.0.0.1
clientPortListenBacklog=50
maxClientCnxns=0
maxCnxns=100
minSessionTimeout=1000
maxSessionTimeout=-1
snapCount=2
preAllocSize=1024
forceSync=no
autopurge.snapRetainCount=1
autopurge.purgeInterval=24
4lw.commands.whitelist=mntr, ruok
jute.maxbuffer=0x100000
extendedTypesEnabled=true
globalOutstandingLimit=5
maxCnxnOutstanding=7
readonlymode.enabled=true
initLimit=10
syncLimit=5
connectToLearnerMasterLimit=3
electionAlg=3
peerType=participant
standaloneEnabled=TRUE
reconfigEnabled=true
skipACL=yes
DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=
leaderServes=no
localSessionsEnabled=true
localSessionsUpgradingEnabled=true
syncEnabled=false
quorumListenOnAllIPs=true
version=100000000
admin.enableServer=false
admin.serverPort=8080
metricsProvider.className=org.apache.zookeeper.metrics.impl.DefaultMetricsProvider
serverCnxnFactory=org.apache.zookeeper.server.NIOServerCnxnFactory
";
        let c = parse(text).unwrap();
        assert_eq!(c.tick_ms, 2000);
        assert_eq!(c.data_dir, PathBuf::from("/var/zk"));
        assert_eq!(c.data_log_dir, PathBuf::from("/var/zklog"));
        assert_eq!(c.client_address(), "127.0.0.1:2182".parse().unwrap());
        assert_eq!(c.client_port_listen_backlog, 50);
        assert_eq!(c.max_client_cnxns, 0);
        assert_eq!(c.max_cnxns, 100);
        assert_eq!(c.min_session_timeout_ms, 1000);
        assert_eq!(c.max_session_timeout_ms, 40000);
        assert_eq!(c.snap_count, 2);
        assert_eq!(c.pre_alloc_size_kb, 1024);
        assert!(!c.force_sync);
        assert_eq!(c.autopurge_snap_retain_count, 3);
        assert_eq!(c.autopurge_purge_interval_hours, 24);
        assert_eq!(
            c.four_letter_whitelist.names(),
            vec!["ruok", "srvr", "mntr", "isro"]
        );
        assert_eq!(c.jute_max_buffer, 0x100000);
        assert!(c.extended_types_enabled);
        assert_eq!(c.global_outstanding_limit, 5);
        assert_eq!(c.max_cnxn_outstanding, 7);
        assert!(c.read_only_mode_enabled);
        assert_eq!(c.init_limit, Some(10));
        assert_eq!(c.sync_limit, Some(5));
        assert_eq!(c.connect_to_learner_master_limit, Some(3));
        assert_eq!(c.election_alg, 3);
        assert_eq!(c.peer_type, PeerRole::Participant);
        assert!(c.standalone_enabled && c.reconfig_enabled && c.skip_acl);
        assert_eq!(
            c.super_digest.as_deref(),
            Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=")
        );
        assert!(!c.leader_serves && !c.sync_enabled);
        assert!(c.local_sessions_enabled && c.local_sessions_upgrading_enabled);
        assert!(c.quorum_listen_on_all_ips);
        assert_eq!(c.quorum_config_version, 0x100000000);
        // admin.* and metricsProvider.* are ignored; other keys kept.
        assert_eq!(
            c.extra,
            BTreeMap::from([(
                "serverCnxnFactory".to_string(),
                "org.apache.zookeeper.server.NIOServerCnxnFactory".to_string()
            )])
        );
    }

    #[test]
    fn duplicates_later_wins_and_odd_values() {
        let c = parse("dataDir=a\nclientPort=1\nclientPort=2\ntickTime=5\ntickTime=7\n").unwrap();
        assert_eq!((c.client_port, c.tick_ms), (2, 7));
        // A later good value hides an earlier bad one (Java Properties keeps the last).
        assert!(parse("dataDir=a\nclientPort=x\nclientPort=3\n").is_ok());
        // Values keep inner '=' and spaces.
        let c = parse("dataDir=/a b=c\nclientPort=1\n").unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/a b=c"));
        // Negative purge interval means off; clientPort 0 = OS-chosen port.
        let c = parse("dataDir=a\nclientPort=0\nautopurge.purgeInterval=-5\n").unwrap();
        assert_eq!((c.client_port, c.autopurge_purge_interval_hours), (0, 0));
        let c = parse("dataDir=a\nclientPort=1\nclientPortAddress=localhost\n").unwrap();
        assert_eq!(c.client_port_address, IpAddr::V4(Ipv4Addr::LOCALHOST));
        let c = parse("dataDir=a\nclientPort=1\nclientPortAddress=::1\n").unwrap();
        assert_eq!(c.client_address(), "[::1]:1".parse().unwrap());
    }

    #[test]
    fn error_messages_name_file_line_key() {
        let cases: &[(&str, &str)] = &[
            (
                "dataDir=a\nclientPort=1\ntickTime=abc\n",
                r#"zoo.cfg:3: tickTime: expected a positive integer, got "abc""#,
            ),
            (
                "tickTime=0\ndataDir=a\nclientPort=1\n",
                r#"zoo.cfg:1: tickTime: expected a positive integer, got "0""#,
            ),
            (
                "dataDir=a\nclientPort=70000\n",
                r#"zoo.cfg:2: clientPort: expected a port number, got "70000""#,
            ),
            (
                "dataDir=a\nclientPort=1\nclientPortAddress=example.com\n",
                r#"zoo.cfg:3: clientPortAddress: expected an IP address, got "example.com""#,
            ),
            (
                "dataDir=a\nclientPort=1\nmaxClientCnxns=-1\n",
                r#"zoo.cfg:3: maxClientCnxns: expected a non-negative integer, got "-1""#,
            ),
            (
                "dataDir=a\nclientPort=1\nsnapCount=1\n",
                "zoo.cfg:3: snapCount: must be at least 2, got 1",
            ),
            (
                "dataDir=a\nclientPort=1\nforceSync=true\n",
                r#"zoo.cfg:3: forceSync: expected yes or no, got "true""#,
            ),
            (
                "dataDir=a\nclientPort=1\nstandaloneEnabled=yes\n",
                r#"zoo.cfg:3: standaloneEnabled: expected true or false, got "yes""#,
            ),
            (
                "dataDir=a\nclientPort=1\nelectionAlg=1\n",
                r#"zoo.cfg:3: electionAlg: only 3 is supported, got "1""#,
            ),
            (
                "dataDir=a\nclientPort=1\npeerType=leader\n",
                r#"zoo.cfg:3: peerType: expected participant or observer, got "leader""#,
            ),
            (
                "dataDir=a\nclientPort=1\nminSessionTimeout=0\n",
                r#"zoo.cfg:3: minSessionTimeout: expected a positive number of milliseconds (or -1 for the default), got "0""#,
            ),
            (
                "dataDir=a\nclientPort=1\njute.maxbuffer=0xZZ\n",
                r#"zoo.cfg:3: jute.maxbuffer: expected a positive integer, got "0xZZ""#,
            ),
            (
                "dataDir=a\nclientPort=1\nautopurge.snapRetainCount=three\n",
                r#"zoo.cfg:3: autopurge.snapRetainCount: expected an integer, got "three""#,
            ),
            (
                "dataDir=a\nclientPort=1\nDigestAuthenticationProvider.superDigest=nocolon\n",
                r#"zoo.cfg:3: DigestAuthenticationProvider.superDigest: expected user:base64-sha1-digest, got "nocolon""#,
            ),
            (
                "dataDir=a\nclientPort=1\ninitLimit=2147483648\n",
                r#"zoo.cfg:3: initLimit: expected a positive integer, got "2147483648""#,
            ),
            (
                "dataDir=a\nclientPort=1\nversion=xyz\n",
                r#"zoo.cfg:3: version: expected a hexadecimal number, got "xyz""#,
            ),
            ("clientPort=1\n", "zoo.cfg: dataDir: missing required key"),
            ("dataDir=a\n", "zoo.cfg: clientPort: missing required key"),
            (
                "dataDir=a\nclientPortAddress=127.0.0.1\n",
                "zoo.cfg:2: clientPortAddress: clientPortAddress is set but clientPort is not",
            ),
            (
                "dataDir=\nclientPort=1\n",
                "zoo.cfg:1: dataDir: expected a directory, got an empty value",
            ),
            (
                "dataDir=a\n\nclientPort 2181\n",
                r#"zoo.cfg:3: expected key=value, got "clientPort 2181""#,
            ),
            ("dataDir=a\n=5\n", r#"zoo.cfg:2: missing key before '=' in "=5""#),
            (
                "dataDir=a\nclientPort=1\ndynamicConfigFile=/x\n",
                "zoo.cfg:3: dynamicConfigFile: a separate dynamic config file is not supported; put the server.N lines in this file",
            ),
            (
                "dataDir=a\nclientPort=1\ngroup.1=1:2\n",
                "zoo.cfg:3: group.1: hierarchical quorums are not supported",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(&err(text), want, "config:\n{text}");
        }
    }

    #[test]
    fn session_timeout_bounds() {
        assert_eq!(
            err("dataDir=a\nclientPort=1\nminSessionTimeout=5000\nmaxSessionTimeout=4000\n"),
            "zoo.cfg:3: minSessionTimeout: minSessionTimeout (5000) must not be larger than maxSessionTimeout (4000)"
        );
        // min above the default max (20 x tick) is rejected too, as in ZooKeeper.
        assert_eq!(
            err("tickTime=100\ndataDir=a\nclientPort=1\nminSessionTimeout=5000\n"),
            "zoo.cfg:4: minSessionTimeout: minSessionTimeout (5000) must not be larger than maxSessionTimeout (2000)"
        );
        assert_eq!(
            err("tickTime=2000\ndataDir=a\nclientPort=1\nmaxSessionTimeout=3000\n"),
            "zoo.cfg:4: maxSessionTimeout: minSessionTimeout (4000) must not be larger than maxSessionTimeout (3000)"
        );
        let c =
            parse("dataDir=a\nclientPort=1\nminSessionTimeout=7\nmaxSessionTimeout=7\n").unwrap();
        assert_eq!((c.min_session_timeout_ms, c.max_session_timeout_ms), (7, 7));
    }

    #[test]
    fn whitelist_parsing() {
        let wl = |v: &str| {
            parse(&format!(
                "dataDir=a\nclientPort=1\n4lw.commands.whitelist={v}\n"
            ))
            .unwrap()
            .four_letter_whitelist
        };
        assert!(wl("*").is_all());
        assert!(wl("ruok , *").is_all());
        assert_eq!(
            wl("stat, ruok ,nope,").names(),
            vec!["ruok", "srvr", "stat"]
        );
        assert_eq!(wl("").names(), vec!["srvr"]);
        assert_eq!(wl("conf,cons,crst,dirs,dump,envi,gtmk,ruok,stmk,srst,stat,wchc,wchp,wchs,mntr,isro,hash").names().len(), 18);
    }

    const ENSEMBLE: &str = "\
tickTime=2000
dataDir=/var/zk
clientPort=2181
initLimit=10
syncLimit=5
server.3=zk3.example:2890:3890
server.1=127.0.0.1:2888:3888:participant
server.2=[::1]:2889:3889:PARTICIPANT;2182
server.4=10.0.0.4:2891:3891:observer;127.0.0.1:2184
";

    #[test]
    fn server_lines() {
        let c = parse(ENSEMBLE).unwrap();
        assert!(c.is_quorum());
        assert_eq!(c.voting_members(), 3);
        let ids: Vec<u64> = c.servers.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![1, 2, 3, 4]);
        assert_eq!(
            c.servers[1],
            ServerSpec {
                id: 2,
                host: "::1".into(),
                quorum_port: 2889,
                election_port: 3889,
                role: PeerRole::Participant,
                client: Some(HostPort {
                    host: "0.0.0.0".into(),
                    port: 2182
                }),
            }
        );
        assert_eq!(c.servers[2].host, "zk3.example");
        assert_eq!(c.servers[2].client, None);
        assert_eq!(c.servers[3].role, PeerRole::Observer);
        assert_eq!(
            c.servers[3].to_zk_string(),
            "10.0.0.4:2891:3891:observer;127.0.0.1:2184"
        );
        assert_eq!(
            c.servers[1].to_zk_string(),
            "[::1]:2889:3889:participant;0.0.0.0:2182"
        );
    }

    #[test]
    fn bad_server_lines() {
        let base = "dataDir=a\nclientPort=1\ninitLimit=5\nsyncLimit=2\n";
        let bad = |line: &str| err(&format!("{base}{line}\n"));
        let fmt = "expected host:quorumPort:electionPort[:participant|observer][;[clientAddress:]clientPort]";
        assert_eq!(
            bad("server.1=h:2888"),
            format!(
                "zoo.cfg:5: server.1: wrong number of ':'-separated fields; {fmt}, got \"h:2888\""
            )
        );
        assert_eq!(
            bad("server.1=h:2888:3888:participant:x"),
            format!("zoo.cfg:5: server.1: wrong number of ':'-separated fields; {fmt}, got \"h:2888:3888:participant:x\"")
        );
        assert_eq!(
            bad("server.1=h:x:3888"),
            format!("zoo.cfg:5: server.1: quorum port \"x\" is not a port number; {fmt}, got \"h:x:3888\"")
        );
        assert_eq!(
            bad("server.1=h:2888:2888"),
            format!("zoo.cfg:5: server.1: quorum and election ports must differ; {fmt}, got \"h:2888:2888\"")
        );
        assert_eq!(
            bad("server.1=h:2888:3888:boss"),
            "zoo.cfg:5: server.1: expected participant or observer, got \"boss\""
        );
        assert_eq!(
            bad("server.1=h:2888:3888;1:2:3"),
            format!("zoo.cfg:5: server.1: client address must be [host:]port; {fmt}, got \"h:2888:3888;1:2:3\"")
        );
        assert_eq!(
            bad("server.1=h:2888:3888;a;b"),
            format!("zoo.cfg:5: server.1: more than one ';'; {fmt}, got \"h:2888:3888;a;b\"")
        );
        assert_eq!(
            bad("server.1=a:1:2|b:1:2"),
            format!("zoo.cfg:5: server.1: multiple addresses per server are not supported; {fmt}, got \"a:1:2|b:1:2\"")
        );
        assert_eq!(
            bad("server.1=[::1:2888:3888"),
            format!("zoo.cfg:5: server.1: '[' without matching ']'; {fmt}, got \"[::1:2888:3888\"")
        );
        assert_eq!(
            bad("server.1=h:1:2;host.example:2181"),
            format!("zoo.cfg:5: server.1: client address \"host.example\" is not an IP address; {fmt}, got \"h:1:2;host.example:2181\"")
        );
        assert_eq!(
            bad("server.x=h:1:2"),
            "zoo.cfg:5: server.x: expected server.N with N a server id from 0 to 255, got server.\"x\""
        );
        assert_eq!(
            err(&format!(
                "{base}server.1=h:1:2\nserver.01=h:3:4\nserver.2=h:5:6\n"
            )),
            "zoo.cfg:6: server.01: server id 1 is also given on line 5"
        );
        // Membership rules.
        assert_eq!(
            err("dataDir=a\nclientPort=1\nserver.1=h:1:2:observer\n"),
            "zoo.cfg:3: server.1: observers without participants"
        );
        assert_eq!(
            err("dataDir=a\nclientPort=1\nserver.1=h:1:2\nserver.2=h:3:4:observer\n"),
            "zoo.cfg:3: server.1: observers without a quorum (one participant and standaloneEnabled=true)"
        );
        assert_eq!(
            err("dataDir=a\nclientPort=1\nstandaloneEnabled=false\n"),
            "zoo.cfg: standaloneEnabled=false needs at least one participant server.N line"
        );
        assert_eq!(
            err("dataDir=a\nclientPort=1\nserver.1=h:1:2\nserver.2=h:3:4\nsyncLimit=2\n"),
            "zoo.cfg: initLimit: missing required key (quorum mode)"
        );
        assert_eq!(
            err("dataDir=a\nclientPort=1\nserver.1=h:1:2\nserver.2=h:3:4\ninitLimit=2\n"),
            "zoo.cfg: syncLimit: missing required key (quorum mode)"
        );
    }

    #[test]
    fn quorum_rule() {
        // One participant + standaloneEnabled (default) = standalone.
        let c = parse("dataDir=a\nclientPort=1\nserver.1=h:1:2\n").unwrap();
        assert!(!c.is_quorum());
        let c = parse(
            "dataDir=a\nclientPort=1\nstandaloneEnabled=false\ninitLimit=1\nsyncLimit=1\nserver.1=h:1:2\n",
        )
        .unwrap();
        assert!(c.is_quorum());
    }

    #[test]
    fn myid_and_client_port_from_server_line() {
        let text = "dataDir=a\ninitLimit=5\nsyncLimit=2\n\
                    server.1=127.0.0.1:2888:3888;127.0.0.1:2181\n\
                    server.2=127.0.0.1:2889:3889;2182\n\
                    server.3=127.0.0.1:2890:3890:observer;2183\n";
        let c = parse(text).unwrap();
        assert_eq!(c.client_port, 0);
        let mut c1 = c.clone();
        c1.apply_myid(Some("1\n"), "a/myid").unwrap();
        assert_eq!(c1.server_id, Some(1));
        assert_eq!(c1.client_address(), "127.0.0.1:2181".parse().unwrap());
        let mut c3 = c.clone();
        c3.apply_myid(Some(" 3 "), "a/myid").unwrap();
        assert_eq!(c3.client_address(), "0.0.0.0:2183".parse().unwrap());
        assert_eq!(c3.peer_type, PeerRole::Observer);
        let mut bad = c.clone();
        assert_eq!(
            bad.apply_myid(None, "a/myid").unwrap_err().to_string(),
            "a/myid: myid file is missing (required in quorum mode)"
        );
        assert_eq!(
            bad.apply_myid(Some("x"), "a/myid").unwrap_err().to_string(),
            "a/myid: expected a server id, got \"x\""
        );
        assert_eq!(
            bad.apply_myid(Some("9"), "a/myid").unwrap_err().to_string(),
            "a/myid: server id 9 has no server.9 line"
        );
        // Without client ports on the server lines, clientPort is required.
        assert_eq!(
            err("dataDir=a\ninitLimit=5\nsyncLimit=2\nserver.1=h:1:2\nserver.2=h:3:4;5\n"),
            "zoo.cfg: clientPort: missing required key"
        );
        let mut c = parse(ENSEMBLE).unwrap();
        assert_eq!(
            c.apply_myid(Some("2"), "m").unwrap_err().to_string(),
            "m: clientPort 2181 differs from the client port 2182 on the server.2 line"
        );
        // Standalone: myid optional and only recorded.
        let mut s = parse(MIN).unwrap();
        s.apply_myid(None, "m").unwrap();
        s.apply_myid(Some("7"), "m").unwrap();
        assert_eq!(s.server_id, Some(7));
    }

    #[test]
    fn conf_lines() {
        let c =
            parse("tickTime=2000\ndataDir=/tmp/zk\nclientPort=2191\nmaxClientCnxns=0\n").unwrap();
        let want: Vec<(String, String)> = [
            ("clientPort", "2191"),
            ("secureClientPort", "-1"),
            ("dataDir", "/tmp/zk"),
            ("dataLogDir", "/tmp/zk"),
            ("tickTime", "2000"),
            ("maxClientCnxns", "0"),
            ("minSessionTimeout", "4000"),
            ("maxSessionTimeout", "40000"),
            ("clientPortListenBacklog", "-1"),
            ("serverId", "0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(c.to_conf_lines(), want);

        let mut q = parse(
            "tickTime=2000\ndataDir=/d\nclientPort=2391\ninitLimit=10\nsyncLimit=5\n\
             server.1=127.0.0.1:2491:2591\nserver.2=127.0.0.1:2492:2592\nserver.3=127.0.0.1:2493:2593\n\
             version=100000000\n",
        )
        .unwrap();
        q.apply_myid(Some("1"), "m").unwrap();
        let lines = q.to_conf_lines();
        let text: Vec<String> = lines[9..].iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            text,
            vec![
                "serverId=1",
                "initLimit=10",
                "syncLimit=5",
                "electionAlg=3",
                "electionPort=2591",
                "quorumPort=2491",
                "peerType=0",
                "membership:=",
                "server.1=127.0.0.1:2491:2591:participant",
                "server.2=127.0.0.1:2492:2592:participant",
                "server.3=127.0.0.1:2493:2593:participant",
                "version=100000000",
            ]
        );
    }

    #[test]
    fn shipped_zoo_cfg_parses() {
        let text = include_str!("../zoo.cfg");
        let c = Config::parse(text, "server/zoo.cfg").unwrap();
        assert_eq!(c.tick_ms, 2000);
        assert_eq!(c.data_dir, PathBuf::from("data/zk"));
        assert_eq!(c.client_address(), "127.0.0.1:2181".parse().unwrap());
        assert_eq!(c.max_client_cnxns, 60);
        assert!(c.four_letter_whitelist.is_all());
        assert!(!c.is_quorum());
        assert!(c.extra.is_empty(), "unexpected keys: {:?}", c.extra);
    }

    #[test]
    fn load_reads_file_and_myid() {
        let dir = std::env::temp_dir().join(format!("zkcfg-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "dataDir={}\ninitLimit=5\nsyncLimit=2\nclientPort=2181\nserver.1=h:1:2\nserver.2=h:3:4\n",
                dir.display()
            ),
        )
        .unwrap();
        let e = Config::load(&cfg).unwrap_err();
        assert!(e
            .to_string()
            .ends_with("myid: myid file is missing (required in quorum mode)"));
        std::fs::write(dir.join("myid"), "2\n").unwrap();
        let c = Config::load(&cfg).unwrap();
        assert_eq!(c.server_id, Some(2));
        let missing = Config::load(dir.join("nope.cfg")).unwrap_err();
        assert!(missing.to_string().contains("nope.cfg: cannot read:"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
