//! The project's own asynchronous ZooKeeper client, over `tokio::net::TcpStream`
//! (madsim's simulated socket in the default build, real tokio under
//! `cargo real`).
//!
//! One background *session task* owns the connection; [`Client`] handles
//! (cheap to clone) send it commands and await their replies. The protocol:
//!
//! - **Handshake**: `ConnectRequest{protocolVersion 0, lastZxidSeen, timeout,
//!   sessionId, passwd, readOnly}` and its `ConnectResponse`. A response with
//!   `timeout_ms <= 0` means the session is gone: the client becomes
//!   *expired* for good ([`ZkError::SessionExpired`]).
//! - **Requests** carry increasing xids and are pipelined: any number may be
//!   in flight. The server answers a connection's requests in order, so
//!   replies are matched against a FIFO of sent requests; a reply whose xid is
//!   not the head's is a protocol violation and drops the connection.
//!   Special xids: -1 notification, -2 ping, -4 auth, -8 setWatches.
//! - **Pings** go out when nothing was sent for a third of the negotiated
//!   timeout; if nothing at all is *received* for two thirds of it the
//!   connection is declared dead (this is what turns a clogged link, which
//!   delays rather than drops, into a reconnect).
//! - **Reconnect** uses the same session id and password and the highest
//!   zxid seen, then re-registers watches with `SetWatches` (`SetWatches2`
//!   when it holds persistent watches) before anything else is sent.
//!   Backoff doubles from `reconnect_min_ms` to `reconnect_max_ms`.
//! - **Watches** (one-shot data/exist/child, and persistent or
//!   persistent-recursive ones from `addWatch`) are kept in a table as
//!   ZKWatchManager does: a registration is recorded when its reply
//!   arrives, a one-shot one is dropped when its event arrives. With
//!   [`ClientConfig::trace`], the session task also reports, in the order it
//!   saw them, every connection, registration, notification and SetWatches
//!   reply, stamped with the last zxid seen ([`Trace`]): what a watch
//!   checker needs to judge the server.
//! - **Outcomes**: every request ends in exactly one of: a reply (its zxid is
//!   returned with the value, and with [`ZkError::Server`] errors), or an
//!   error that says whether the request may have executed
//!   ([`ZkError::is_indeterminate`]): lost connection and request timeout
//!   are *unknown*; a request still queued when the session expired, the
//!   client closed, or its caller's timeout ran out ([`ZkError::NotSent`])
//!   was never sent and never executes.
//!
//! Invariants:
//! - replies are delivered to callers in the order the requests were sent
//!   on that connection; a caller that gave up (timeout) is skipped, never
//!   handed someone else's reply;
//! - `last_zxid_seen` never decreases;
//! - after expiry or close no request is sent again.

use jute::request::{read_multi_results, write_multi, MultiOp, MultiResult};
use jute::{
    op, xid, Acl, AddWatchMode, AddWatchRequest, ConnectRequest, ConnectResponse, Create2Response,
    CreateMode, CreateRequest, CreateTtlRequest, DeleteRequest, ErrorCode, EventType,
    ExistsRequest, GetChildren2Response, GetChildrenRequest, GetDataRequest, GetDataResponse,
    KeeperState, Reader, Record, ReplyHeader, RequestHeader, SetDataRequest, SetWatches,
    SetWatches2, Stat, StatResponse, SyncRequest, SyncResponse, WatcherEvent,
};
use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep, sleep_until, timeout, Instant};

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Servers to try, round robin.
    pub servers: Vec<SocketAddr>,
    /// Requested session timeout; the server negotiates it.
    pub session_timeout_ms: i32,
    /// How long a caller waits for a reply before giving up (outcome unknown).
    pub request_timeout_ms: u64,
    /// Budget for one TCP connect plus handshake.
    pub connect_timeout_ms: u64,
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
    /// How long [`Client::connect`] keeps trying before it gives up.
    pub initial_connect_ms: u64,
    /// The `readOnly` byte sent in the handshake.
    pub read_only: bool,
    /// Largest reply frame accepted.
    pub frame_bytes_max: usize,
    /// Report [`ClientEvent::Trace`] items on the event channel.
    pub trace: bool,
}

impl ClientConfig {
    pub fn new(servers: Vec<SocketAddr>) -> ClientConfig {
        ClientConfig {
            servers,
            session_timeout_ms: 10_000,
            request_timeout_ms: 5_000,
            connect_timeout_ms: 1_000,
            reconnect_min_ms: 50,
            reconnect_max_ms: 1_000,
            initial_connect_ms: 5_000,
            read_only: false,
            frame_bytes_max: 16 << 20,
            trace: false,
        }
    }
}

/// Why a request has no normal result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZkError {
    /// The server answered with an error code: a definite outcome. `zxid`
    /// is the reply header's (for a failed write, the error transaction's).
    #[error("{code:?} (zxid {zxid})")]
    Server { code: ErrorCode, zxid: i64 },
    /// The connection broke after the request was sent: it may have executed.
    #[error("connection lost: outcome unknown")]
    ConnectionLoss,
    /// No reply within the request timeout: it may have executed.
    #[error("request timed out: outcome unknown")]
    Timeout,
    /// No reply within the request timeout, and the request had not been
    /// sent yet (no connection): it never executes.
    #[error("request timed out before it could be sent")]
    NotSent,
    /// The session is gone; the request was never sent.
    #[error("session expired")]
    SessionExpired,
    /// The client was closed; the request was never sent.
    #[error("client closed")]
    Closed,
    /// No session could be established.
    #[error("could not connect: {0}")]
    Connect(String),
    /// The server broke the protocol (bad frame, xid out of order): outcome unknown.
    #[error("protocol violation: {0}")]
    Protocol(String),
}

impl ZkError {
    /// True when the request may or may not have executed.
    pub fn is_indeterminate(&self) -> bool {
        matches!(
            self,
            ZkError::ConnectionLoss | ZkError::Timeout | ZkError::Protocol(_)
        )
    }

    /// The server's error code, if the server answered.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ZkError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A successful result and the zxid of its reply header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<T> {
    pub value: T,
    pub zxid: i64,
}

pub type ZkResult<T> = Result<Reply<T>, ZkError>;

/// What the client tells its owner besides replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// A watch fired.
    Watch { event: EventType, path: String },
    /// The connection state changed (SyncConnected, Disconnected, Expired, Closed).
    State(KeeperState),
    /// What the session task saw (only with [`ClientConfig::trace`]).
    Trace(Trace),
}

/// One item of the client's trace: the session, the connection (numbered
/// from 1 per session task) and the last zxid seen when it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    pub session: i64,
    pub conn: u32,
    pub last_zxid: i64,
    pub what: TraceKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceKind {
    /// A connection was established (`last_zxid` is what the handshake
    /// sent); `set_watches`: the watch table is being re-registered.
    Connected { set_watches: bool, server: String },
    /// A server refused to re-attach the session (ConnectResponse with
    /// timeout 0): the client now treats the session as expired.
    Refused { server: String },
    /// The client recorded a watch registration (its reply had `zxid`).
    WatchAdded {
        kind: WatchKind,
        path: String,
        zxid: i64,
    },
    /// A notification arrived.
    Event { event: EventType, path: String },
    /// The reply to SetWatches arrived (`err` 0: re-registered).
    WatchesRestored { zxid: i64, err: i32 },
}

/// The session as last negotiated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionInfo {
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub timeout_ms: i32,
    pub read_only: Option<bool>,
    pub last_zxid_seen: i64,
    pub state: Option<KeeperState>,
}

#[derive(Debug)]
struct RawReply {
    zxid: i64,
    err: i32,
    body: Vec<u8>,
}

type ReplyTx = oneshot::Sender<Result<RawReply, ZkError>>;

/// A watch as the client's table keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WatchKind {
    /// One-shot, on an existing node's data (getData, exists).
    Data,
    /// One-shot, on a missing node's creation (exists).
    Exist,
    /// One-shot, on a node's children (getChildren).
    Child,
    /// addWatch PERSISTENT.
    Persistent,
    /// addWatch PERSISTENT_RECURSIVE.
    PersistentRecursive,
}

impl WatchKind {
    /// The name the history uses.
    pub fn name(self) -> &'static str {
        match self {
            WatchKind::Data => "data",
            WatchKind::Exist => "exist",
            WatchKind::Child => "child",
            WatchKind::Persistent => "persistent",
            WatchKind::PersistentRecursive => "persistent_recursive",
        }
    }
}

/// Where a request is, shared by the caller and the session task so that a
/// caller who gives up can tell whether the request was ever sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Queued,
    Sent,
    /// The caller gave up before it was sent: it must never be sent.
    Cancelled,
}

#[derive(Debug)]
struct Pending {
    op: i32,
    body: Vec<u8>,
    watch: Option<(WatchKind, String)>,
    reply: ReplyTx,
    stage: Arc<Mutex<Stage>>,
}

fn stage_lock(m: &Mutex<Stage>) -> std::sync::MutexGuard<'_, Stage> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug)]
struct Sent {
    xid: i32,
    op: i32,
    watch: Option<(WatchKind, String)>,
    reply: ReplyTx,
}

/// A handle on one session. Clones share the session.
#[derive(Debug, Clone)]
pub struct Client {
    cmd: mpsc::UnboundedSender<Pending>,
    shared: Arc<Mutex<SessionInfo>>,
    request_timeout: Duration,
}

impl Client {
    /// Establish a new session (retrying until `initial_connect_ms`), and
    /// return it with the channel of watch and state events.
    pub async fn connect(
        cfg: ClientConfig,
    ) -> Result<(Client, mpsc::UnboundedReceiver<ClientEvent>), ZkError> {
        assert!(!cfg.servers.is_empty(), "ClientConfig.servers is empty");
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (first_tx, first_rx) = oneshot::channel();
        let shared = Arc::new(Mutex::new(SessionInfo::default()));
        let task = SessionTask {
            request_timeout: Duration::from_millis(cfg.request_timeout_ms),
            cfg,
            cmd_rx,
            events: ev_tx,
            shared: shared.clone(),
            session: SessionInfo::default(),
            next_xid: 1,
            queue: VecDeque::new(),
            watches: Watches::default(),
            conn: 0,
            next_server: 0,
            server: String::new(),
            first: Some(first_tx),
        };
        let request_timeout = task.request_timeout;
        tokio::spawn(task.run());
        match first_rx.await {
            Ok(Ok(())) => Ok((
                Client {
                    cmd: cmd_tx,
                    shared,
                    request_timeout,
                },
                ev_rx,
            )),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ZkError::Connect("session task ended".into())),
        }
    }

    pub fn session(&self) -> SessionInfo {
        lock(&self.shared).clone()
    }

    pub fn session_id(&self) -> i64 {
        lock(&self.shared).session_id
    }

    fn terminal_error(&self) -> ZkError {
        match lock(&self.shared).state {
            Some(KeeperState::Expired) => ZkError::SessionExpired,
            _ => ZkError::Closed,
        }
    }

    async fn call(
        &self,
        op: i32,
        body: Vec<u8>,
        watch: Option<(WatchKind, String)>,
    ) -> Result<RawReply, ZkError> {
        let (tx, rx) = oneshot::channel();
        let stage = Arc::new(Mutex::new(Stage::Queued));
        let p = Pending {
            op,
            body,
            watch,
            reply: tx,
            stage: stage.clone(),
        };
        if self.cmd.send(p).is_err() {
            return Err(self.terminal_error());
        }
        match timeout(self.request_timeout, rx).await {
            Err(_) => {
                let mut st = stage_lock(&stage);
                if *st == Stage::Queued {
                    *st = Stage::Cancelled;
                    Err(ZkError::NotSent)
                } else {
                    Err(ZkError::Timeout)
                }
            }
            Ok(Err(_)) => Err(self.terminal_error()),
            Ok(Ok(r)) => r,
        }
    }

    /// Send a request and decode a successful reply body with `decode`.
    async fn request<T>(
        &self,
        op: i32,
        body: Vec<u8>,
        watch: Option<(WatchKind, String)>,
        decode: impl FnOnce(&[u8]) -> Result<T, jute::JuteError>,
    ) -> ZkResult<T> {
        let raw = self.call(op, body, watch).await?;
        if raw.err != 0 {
            let code = ErrorCode::from_code(raw.err)
                .ok_or_else(|| ZkError::Protocol(format!("unknown error code {}", raw.err)))?;
            return Err(ZkError::Server {
                code,
                zxid: raw.zxid,
            });
        }
        let value = decode(&raw.body)
            .map_err(|e| ZkError::Protocol(format!("bad reply body for op {op}: {e}")))?;
        Ok(Reply {
            value,
            zxid: raw.zxid,
        })
    }

    /// `create` with open ACL: returns the created path (with the sequence
    /// suffix for sequential modes) and its stat (create2).
    pub async fn create(
        &self,
        path: &str,
        data: &[u8],
        mode: CreateMode,
    ) -> ZkResult<(String, Stat)> {
        self.create_with(path, Some(data.to_vec()), Acl::open(), mode, None)
            .await
    }

    /// `create` with every option: any [`CreateMode`] (containers use
    /// createContainer, TTL modes createTTL and need `ttl_ms`).
    pub async fn create_with(
        &self,
        path: &str,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        mode: CreateMode,
        ttl_ms: Option<i64>,
    ) -> ZkResult<(String, Stat)> {
        let flags = mode.code();
        let mut body = Vec::new();
        let opc = if mode.is_ttl() {
            CreateTtlRequest {
                path: path.into(),
                data,
                acl,
                flags,
                ttl: ttl_ms.unwrap_or(-1),
            }
            .write(&mut body);
            op::CREATE_TTL
        } else {
            CreateRequest {
                path: path.into(),
                data,
                acl,
                flags,
            }
            .write(&mut body);
            if mode.is_container() {
                op::CREATE_CONTAINER
            } else {
                op::CREATE2
            }
        };
        self.request(opc, body, None, |b| {
            let r: Create2Response = jute::from_bytes(b)?;
            Ok((r.path, r.stat))
        })
        .await
    }

    pub async fn delete(&self, path: &str, version: i32) -> ZkResult<()> {
        let body = jute::to_bytes(&DeleteRequest {
            path: path.into(),
            version,
        });
        self.request(op::DELETE, body, None, |_| Ok(())).await
    }

    /// `exists`: `None` when the node does not exist (NoNode is not an error
    /// here). With `watch`, sets a data watch (or an exist watch if absent).
    pub async fn exists(&self, path: &str, watch: bool) -> ZkResult<Option<Stat>> {
        let body = jute::to_bytes(&ExistsRequest {
            path: path.into(),
            watch,
        });
        let w = watch.then(|| (WatchKind::Data, path.to_string()));
        match self
            .request(op::EXISTS, body, w, |b| {
                Ok(jute::from_bytes::<StatResponse>(b)?.stat)
            })
            .await
        {
            Ok(r) => Ok(Reply {
                value: Some(r.value),
                zxid: r.zxid,
            }),
            Err(ZkError::Server {
                code: ErrorCode::NoNode,
                zxid,
            }) => Ok(Reply { value: None, zxid }),
            Err(e) => Err(e),
        }
    }

    /// `getData`: the data (`None` for a null buffer) and stat.
    pub async fn get_data(&self, path: &str, watch: bool) -> ZkResult<(Option<Vec<u8>>, Stat)> {
        let body = jute::to_bytes(&GetDataRequest {
            path: path.into(),
            watch,
        });
        let w = watch.then(|| (WatchKind::Data, path.to_string()));
        self.request(op::GET_DATA, body, w, |b| {
            let r: GetDataResponse = jute::from_bytes(b)?;
            Ok((r.data, r.stat))
        })
        .await
    }

    pub async fn set_data(&self, path: &str, data: &[u8], version: i32) -> ZkResult<Stat> {
        let body = jute::to_bytes(&SetDataRequest {
            path: path.into(),
            data: Some(data.to_vec()),
            version,
        });
        self.request(op::SET_DATA, body, None, |b| {
            Ok(jute::from_bytes::<StatResponse>(b)?.stat)
        })
        .await
    }

    /// `getChildren2`: child names (server order) and the parent's stat.
    pub async fn get_children(&self, path: &str, watch: bool) -> ZkResult<(Vec<String>, Stat)> {
        let body = jute::to_bytes(&GetChildrenRequest {
            path: path.into(),
            watch,
        });
        let w = watch.then(|| (WatchKind::Child, path.to_string()));
        self.request(op::GET_CHILDREN2, body, w, |b| {
            let r: GetChildren2Response = jute::from_bytes(b)?;
            Ok((r.children, r.stat))
        })
        .await
    }

    /// `addWatch`: a persistent (or, with `recursive`, persistent-recursive)
    /// watch on `path`, kept until the session ends (and re-registered on
    /// reconnect with SetWatches2).
    pub async fn add_watch(&self, path: &str, recursive: bool) -> ZkResult<()> {
        let (mode, kind) = if recursive {
            (
                AddWatchMode::PersistentRecursive,
                WatchKind::PersistentRecursive,
            )
        } else {
            (AddWatchMode::Persistent, WatchKind::Persistent)
        };
        let body = jute::to_bytes(&AddWatchRequest {
            path: path.into(),
            mode: mode.code(),
        });
        self.request(op::ADD_WATCH, body, Some((kind, path.to_string())), |_| {
            Ok(())
        })
        .await
    }

    /// `multi`: all-or-nothing. The per-op results say which op failed.
    pub async fn multi(&self, ops: Vec<MultiOp>) -> ZkResult<Vec<MultiResult>> {
        let mut body = Vec::new();
        write_multi(&ops, &mut body);
        self.request(op::MULTI, body, None, |b| {
            let mut r = Reader::new(b);
            let res = read_multi_results(&mut r)?;
            r.finish()?;
            Ok(res)
        })
        .await
    }

    pub async fn sync(&self, path: &str) -> ZkResult<String> {
        let body = jute::to_bytes(&SyncRequest { path: path.into() });
        self.request(op::SYNC, body, None, |b| {
            Ok(jute::from_bytes::<SyncResponse>(b)?.path)
        })
        .await
    }

    /// Close the session (a closeSession transaction: its zxid is returned).
    /// The client is unusable afterwards.
    pub async fn close(&self) -> ZkResult<()> {
        self.request(op::CLOSE_SESSION, Vec::new(), None, |_| Ok(()))
            .await
    }
}

fn lock(m: &Mutex<SessionInfo>) -> std::sync::MutexGuard<'_, SessionInfo> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Watches registered on the server for this session (ZKWatchManager).
#[derive(Debug, Default)]
struct Watches {
    data: BTreeSet<String>,
    exist: BTreeSet<String>,
    child: BTreeSet<String>,
    persistent: BTreeSet<String>,
    recursive: BTreeSet<String>,
}

impl Watches {
    fn add(&mut self, kind: WatchKind, path: String) {
        match kind {
            WatchKind::Data => self.data.insert(path),
            WatchKind::Exist => self.exist.insert(path),
            WatchKind::Child => self.child.insert(path),
            WatchKind::Persistent => self.persistent.insert(path),
            WatchKind::PersistentRecursive => self.recursive.insert(path),
        };
    }

    /// A fired watch is gone (one-shot), as in ZKWatchManager.materialize;
    /// persistent ones stay.
    fn fired(&mut self, event: EventType, path: &str) {
        match event {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                self.data.remove(path);
                self.exist.remove(path);
            }
            EventType::NodeDeleted => {
                self.data.remove(path);
                self.exist.remove(path);
                self.child.remove(path);
            }
            EventType::NodeChildrenChanged => {
                self.child.remove(path);
            }
            _ => {}
        }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.exist.is_empty()
            && self.child.is_empty()
            && !self.has_persistent()
    }

    fn has_persistent(&self) -> bool {
        !self.persistent.is_empty() || !self.recursive.is_empty()
    }
}

/// How a connection ended.
enum End {
    /// Lost (EOF, error, read timeout, protocol violation): reconnect.
    Lost(String),
    /// Session closed by request, or every handle dropped: stop.
    Stop,
}

struct SessionTask {
    cfg: ClientConfig,
    request_timeout: Duration,
    cmd_rx: mpsc::UnboundedReceiver<Pending>,
    events: mpsc::UnboundedSender<ClientEvent>,
    shared: Arc<Mutex<SessionInfo>>,
    session: SessionInfo,
    next_xid: i32,
    /// Requests not yet sent (waiting for a connection).
    queue: VecDeque<Pending>,
    watches: Watches,
    /// Connections established so far (the current one's number).
    conn: u32,
    next_server: usize,
    /// Address of the server of the current (or last) connection.
    server: String,
    /// Reports the outcome of the first connection to [`Client::connect`].
    first: Option<oneshot::Sender<Result<(), ZkError>>>,
}

type Halves = (
    tokio::io::ReadHalf<TcpStream>,
    tokio::io::WriteHalf<TcpStream>,
);

impl SessionTask {
    async fn run(mut self) {
        let started = Instant::now();
        let mut backoff = self.cfg.reconnect_min_ms;
        loop {
            match self.connect_once().await {
                Ok(Some(halves)) => {
                    backoff = self.cfg.reconnect_min_ms;
                    if let Some(f) = self.first.take() {
                        let _ = f.send(Ok(()));
                    }
                    self.set_state(KeeperState::SyncConnected);
                    match self.serve(halves).await {
                        End::Stop => return self.finish(KeeperState::Closed),
                        End::Lost(why) => {
                            tracing::debug!(
                                session = self.session.session_id,
                                "connection lost: {why}"
                            );
                            self.set_state(KeeperState::Disconnected);
                        }
                    }
                }
                Ok(None) => return self.finish(KeeperState::Expired),
                Err(e) => {
                    if self.first.is_some()
                        && started.elapsed() >= Duration::from_millis(self.cfg.initial_connect_ms)
                    {
                        let f = self.first.take().expect("checked");
                        let _ = f.send(Err(ZkError::Connect(e)));
                        return;
                    }
                }
            }
            if !self.wait_backoff(Duration::from_millis(backoff)).await {
                return self.finish(KeeperState::Closed);
            }
            backoff = (backoff * 2).min(self.cfg.reconnect_max_ms);
        }
    }

    fn trace(&self, what: TraceKind) {
        if self.cfg.trace {
            let _ = self.events.send(ClientEvent::Trace(Trace {
                session: self.session.session_id,
                conn: self.conn,
                last_zxid: self.session.last_zxid_seen,
                what,
            }));
        }
    }

    fn set_state(&mut self, st: KeeperState) {
        self.session.state = Some(st);
        *lock(&self.shared) = self.session.clone();
        let _ = self.events.send(ClientEvent::State(st));
    }

    /// Terminal state: nothing queued was sent, so those requests definitely
    /// did not execute.
    fn finish(mut self, st: KeeperState) {
        self.set_state(st);
        let err = if st == KeeperState::Expired {
            ZkError::SessionExpired
        } else {
            ZkError::Closed
        };
        for p in self.queue.drain(..) {
            let _ = p.reply.send(Err(err.clone()));
        }
        self.cmd_rx.close();
        while let Ok(p) = self.cmd_rx.try_recv() {
            let _ = p.reply.send(Err(err.clone()));
        }
    }

    /// Sleep, queueing requests meanwhile. False when every handle is gone
    /// or a close was requested while disconnected.
    async fn wait_backoff(&mut self, d: Duration) -> bool {
        let until = Instant::now() + d;
        loop {
            tokio::select! {
                biased;
                _ = sleep_until(until) => break,
                cmd = self.cmd_rx.recv() => match cmd {
                    None => return false,
                    Some(p) if p.op == op::CLOSE_SESSION => {
                        // Cannot reach the server: close locally.
                        let _ = p.reply.send(Err(ZkError::Closed));
                        return false;
                    }
                    Some(p) => self.queue.push_back(p),
                }
            }
        }
        self.queue
            .retain(|p| *stage_lock(&p.stage) != Stage::Cancelled && !p.reply.is_closed());
        true
    }

    /// One connect + handshake. `Ok(None)`: the session expired.
    async fn connect_once(&mut self) -> Result<Option<Halves>, String> {
        let n = self.cfg.servers.len();
        let addr = self.cfg.servers[self.next_server % n];
        self.next_server += 1;
        let budget = Duration::from_millis(self.cfg.connect_timeout_ms);
        let stream = match timeout(budget, TcpStream::connect(addr)).await {
            Err(_) => return Err(format!("connect to {addr} timed out")),
            Ok(Err(e)) => return Err(format!("connect to {addr}: {e}")),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        let (mut rd, mut wr) = tokio::io::split(stream);
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.session.last_zxid_seen,
            timeout_ms: self.cfg.session_timeout_ms,
            session_id: self.session.session_id,
            passwd: if self.session.passwd.is_empty() {
                vec![0; 16]
            } else {
                self.session.passwd.clone()
            },
            read_only: Some(self.cfg.read_only),
        };
        write_frame(&mut wr, &jute::to_bytes(&req))
            .await
            .map_err(|e| format!("handshake write: {e}"))?;
        let frame = match timeout(budget, read_frame(&mut rd, self.cfg.frame_bytes_max)).await {
            Err(_) => return Err("handshake timed out".into()),
            Ok(Err(e)) => return Err(format!("handshake read: {e}")),
            Ok(Ok(f)) => f,
        };
        let resp: ConnectResponse =
            jute::from_bytes(&frame).map_err(|e| format!("bad ConnectResponse: {e}"))?;
        if resp.timeout_ms <= 0 {
            if self.session.session_id == 0 {
                return Err("server refused a new session".into());
            }
            self.trace(TraceKind::Refused {
                server: addr.to_string(),
            });
            return Ok(None);
        }
        self.session.session_id = resp.session_id;
        self.session.passwd = resp.passwd;
        self.session.timeout_ms = resp.timeout_ms;
        self.session.read_only = resp.read_only;
        self.server = addr.to_string();
        Ok(Some((rd, wr)))
    }

    /// Run one established connection until it ends.
    async fn serve(&mut self, (rd, mut wr): Halves) -> End {
        let (frame_tx, mut frame_rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(reader_task(rd, frame_tx, self.cfg.frame_bytes_max));
        let end = self.serve_inner(&mut wr, &mut frame_rx).await;
        reader.abort();
        end
    }

    async fn serve_inner(
        &mut self,
        wr: &mut tokio::io::WriteHalf<TcpStream>,
        frames: &mut mpsc::UnboundedReceiver<Result<Vec<u8>, String>>,
    ) -> End {
        let t = self.session.timeout_ms.max(3) as u64;
        let ping_every = Duration::from_millis(t / 3);
        let read_timeout = Duration::from_millis(t * 2 / 3);
        let mut sent: VecDeque<Sent> = VecDeque::new();
        let mut last_recv = Instant::now();
        let mut last_send = Instant::now();
        let end = 'conn: {
            self.conn += 1;
            let set_watches = !self.watches.is_empty();
            self.trace(TraceKind::Connected {
                set_watches,
                server: self.server.clone(),
            });
            if let Err(e) = self.send_set_watches(wr).await {
                break 'conn End::Lost(e);
            }
            while let Some(p) = self.queue.pop_front() {
                if let Err(e) = self.send_request(wr, p, &mut sent).await {
                    break 'conn End::Lost(e);
                }
                last_send = Instant::now();
            }
            loop {
                tokio::select! {
                biased;
                    f = frames.recv() => match f {
                        Some(Ok(frame)) => {
                            last_recv = Instant::now();
                            match self.on_frame(&frame, &mut sent) {
                                Ok(true) => break 'conn End::Stop,
                                Ok(false) => {}
                                Err(e) => break 'conn End::Lost(e),
                            }
                        }
                        Some(Err(e)) => break 'conn End::Lost(e),
                        None => break 'conn End::Lost("reader ended".into()),
                    },
                    cmd = self.cmd_rx.recv() => match cmd {
                        None => break 'conn End::Stop,
                        Some(p) => {
                            if let Err(e) = self.send_request(wr, p, &mut sent).await {
                                break 'conn End::Lost(e);
                            }
                            last_send = Instant::now();
                        }
                    },
                    _ = sleep_until(last_send + ping_every) => {
                        let mut f = Vec::new();
                        RequestHeader { xid: xid::PING, op: op::PING }.write(&mut f);
                        if let Err(e) = write_frame(wr, &f).await {
                            break 'conn End::Lost(format!("ping write: {e}"));
                        }
                        last_send = Instant::now();
                    },
                    _ = sleep_until(last_recv + read_timeout) => {
                        break 'conn End::Lost(format!("nothing received for {read_timeout:?}"));
                    },
                }
            }
        };
        // Whatever was sent and not answered may or may not have executed.
        let err = match &end {
            End::Lost(why) if why.starts_with("protocol") => ZkError::Protocol(why.clone()),
            _ => ZkError::ConnectionLoss,
        };
        for s in sent.drain(..) {
            let _ = s.reply.send(Err(err.clone()));
        }
        end
    }

    async fn send_set_watches(
        &mut self,
        wr: &mut tokio::io::WriteHalf<TcpStream>,
    ) -> Result<(), String> {
        if self.watches.is_empty() {
            return Ok(());
        }
        let mut f = Vec::new();
        let w = &self.watches;
        let list = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>();
        if w.has_persistent() {
            RequestHeader {
                xid: xid::SET_WATCHES,
                op: op::SET_WATCHES2,
            }
            .write(&mut f);
            SetWatches2 {
                relative_zxid: self.session.last_zxid_seen,
                data_watches: list(&w.data),
                exist_watches: list(&w.exist),
                child_watches: list(&w.child),
                persistent_watches: list(&w.persistent),
                persistent_recursive_watches: list(&w.recursive),
            }
            .write(&mut f);
        } else {
            RequestHeader {
                xid: xid::SET_WATCHES,
                op: op::SET_WATCHES,
            }
            .write(&mut f);
            SetWatches {
                relative_zxid: self.session.last_zxid_seen,
                data_watches: list(&w.data),
                exist_watches: list(&w.exist),
                child_watches: list(&w.child),
            }
            .write(&mut f);
        }
        write_frame(wr, &f)
            .await
            .map_err(|e| format!("setWatches write: {e}"))
    }

    async fn send_request(
        &mut self,
        wr: &mut tokio::io::WriteHalf<TcpStream>,
        p: Pending,
        sent: &mut VecDeque<Sent>,
    ) -> Result<(), String> {
        {
            let mut st = stage_lock(&p.stage);
            if *st == Stage::Cancelled || p.reply.is_closed() {
                // The caller gave up before it was sent: it never executes.
                return Ok(());
            }
            *st = Stage::Sent;
        }
        let x = self.next_xid;
        self.next_xid = if x >= i32::MAX - 1 { 1 } else { x + 1 };
        let mut f = Vec::with_capacity(8 + p.body.len());
        RequestHeader { xid: x, op: p.op }.write(&mut f);
        f.extend_from_slice(&p.body);
        sent.push_back(Sent {
            xid: x,
            op: p.op,
            watch: p.watch,
            reply: p.reply,
        });
        write_frame(wr, &f)
            .await
            .map_err(|e| format!("request write: {e}"))
    }

    /// Handle one frame. `Ok(true)`: the session was closed.
    fn on_frame(&mut self, frame: &[u8], sent: &mut VecDeque<Sent>) -> Result<bool, String> {
        let mut r = Reader::new(frame);
        let hdr = ReplyHeader::read(&mut r).map_err(|e| format!("protocol: bad header: {e}"))?;
        match hdr.xid {
            xid::NOTIFICATION => {
                let ev = WatcherEvent::read(&mut r)
                    .map_err(|e| format!("protocol: bad notification: {e}"))?;
                let Some(event) = EventType::from_code(ev.event_type) else {
                    return Err(format!("protocol: unknown event type {}", ev.event_type));
                };
                self.watches.fired(event, &ev.path);
                self.trace(TraceKind::Event {
                    event,
                    path: ev.path.clone(),
                });
                let _ = self.events.send(ClientEvent::Watch {
                    event,
                    path: ev.path,
                });
                return Ok(false);
            }
            xid::SET_WATCHES => {
                self.trace(TraceKind::WatchesRestored {
                    zxid: hdr.zxid,
                    err: hdr.err,
                });
                return Ok(false);
            }
            xid::PING | xid::AUTH => return Ok(false),
            _ => {}
        }
        let Some(head) = sent.pop_front() else {
            return Err(format!(
                "protocol: reply xid {} with nothing pending",
                hdr.xid
            ));
        };
        if head.xid != hdr.xid {
            let msg = format!(
                "protocol: reply xid {} but {} was sent first",
                hdr.xid, head.xid
            );
            let _ = head.reply.send(Err(ZkError::Protocol(msg.clone())));
            return Err(msg);
        }
        if hdr.zxid > self.session.last_zxid_seen {
            self.session.last_zxid_seen = hdr.zxid;
            lock(&self.shared).last_zxid_seen = hdr.zxid;
        }
        if let Some((kind, path)) = head.watch {
            let kind = if hdr.err == 0 {
                Some(kind)
            } else if head.op == op::EXISTS && hdr.err == ErrorCode::NoNode.code() {
                Some(WatchKind::Exist)
            } else {
                None
            };
            if let Some(kind) = kind {
                self.watches.add(kind, path.clone());
                self.trace(TraceKind::WatchAdded {
                    kind,
                    path,
                    zxid: hdr.zxid,
                });
            }
        }
        let _ = head.reply.send(Ok(RawReply {
            zxid: hdr.zxid,
            err: hdr.err,
            body: r.rest().to_vec(),
        }));
        Ok(head.op == op::CLOSE_SESSION)
    }
}

async fn reader_task<R: AsyncRead + Unpin>(
    mut rd: R,
    out: mpsc::UnboundedSender<Result<Vec<u8>, String>>,
    max: usize,
) {
    loop {
        let r = read_frame(&mut rd, max).await.map_err(|e| e.to_string());
        let stop = r.is_err();
        if out.send(r).is_err() || stop {
            return;
        }
    }
}

async fn read_frame<R: AsyncRead + Unpin>(rd: &mut R, max: usize) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    rd.read_exact(&mut len).await?;
    let n = i32::from_be_bytes(len);
    if n < 0 || n as usize > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("protocol: frame length {n}"),
        ));
    }
    let mut body = vec![0u8; n as usize];
    rd.read_exact(&mut body).await?;
    Ok(body)
}

async fn write_frame<W: AsyncWrite + Unpin>(wr: &mut W, body: &[u8]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as i32).to_be_bytes());
    buf.extend_from_slice(body);
    wr.write_all(&buf).await?;
    wr.flush().await
}

/// Sleep helper re-exported for workloads (simulated time under madsim).
pub async fn pause_ms(ms: u64) {
    sleep(Duration::from_millis(ms)).await
}
