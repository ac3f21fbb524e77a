#![cfg(not(madsim))]
//! Harness for the interop tests with the Rust `zookeeper-client` 0.11
//! (`tests/*.rs`): our server started in-process on a free loopback port
//! with a throw-away data directory, a TCP proxy that can cut the client off
//! (for reconnect and expiry tests), and small bounded-wait helpers.
//!
//! Real build only: `cargo real test -p interop-rust-client`. In the default
//! simulated build this crate compiles to nothing.
//!
//! `ZK_EXTERNAL=host:port` points every test at an already running server
//! instead (e.g. Apache ZooKeeper 3.8.0 from `shared/peer/zk-standalone.sh`),
//! to check what the real thing does. Each test then works under its own
//! unique base path; tests that must restart or reconfigure the server are
//! skipped there (they say so on stderr). `ZK_EXTERNAL_TTL=1` says the
//! external server has `zookeeper.extendedTypesEnabled=true`.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use zookeeper_client::{
    Acls, Client, CreateMode, OneshotWatcher, PersistentWatcher, SessionState, StateWatcher,
    WatchedEvent,
};

pub use zookeeper_client as zk;

/// Upper bound for one whole test.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(90);
/// Upper bound for one expected event or state change.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Run a test body with an overall time limit; everything it owns (server,
/// proxy, temp dir, clients) is dropped, and so cleaned up, either way.
pub async fn bounded<F: Future<Output = ()>>(f: F) {
    if tokio::time::timeout(TEST_TIMEOUT, f).await.is_err() {
        panic!("test did not finish within {TEST_TIMEOUT:?}");
    }
}

/// The address of the external server to test instead of ours, if any.
pub fn external() -> Option<String> {
    std::env::var("ZK_EXTERNAL").ok().filter(|s| !s.is_empty())
}

/// A temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "zk-rust-client-{}-{}-{}-{}",
            name,
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            unique()
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unique() -> u128 {
    std::time::UNIX_EPOCH
        .elapsed()
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Settings for our in-process server.
#[derive(Clone, Debug)]
pub struct ServerOpts {
    pub tick_ms: u32,
    /// Extra zoo.cfg lines.
    pub extra: Vec<String>,
}

impl Default for ServerOpts {
    fn default() -> Self {
        ServerOpts {
            tick_ms: 200,
            extra: Vec::new(),
        }
    }
}

impl ServerOpts {
    pub fn line(mut self, l: &str) -> Self {
        self.extra.push(l.to_string());
        self
    }
}

/// Our server, running on its own thread and tokio runtime so that stopping
/// it (dropping the runtime) closes its listener and every connection.
pub struct LocalServer {
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

impl LocalServer {
    /// Start on `port`, or on a free port (retrying if it gets taken).
    pub async fn start(dir: &Path, port: Option<u16>, opts: &ServerOpts) -> LocalServer {
        let mut last = String::new();
        for _ in 0..20 {
            let p = port.unwrap_or_else(free_port);
            match Self::try_start(dir, p, opts).await {
                Ok(s) => return s,
                Err(e) => {
                    last = e;
                    if port.is_some() && !last.contains("binding client port") {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        panic!("could not start our server: {last}");
    }

    async fn try_start(dir: &Path, port: u16, opts: &ServerOpts) -> Result<LocalServer, String> {
        let mut text = format!(
            "tickTime={}\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n\
             4lw.commands.whitelist=*\nmaxClientCnxns=0\n",
            opts.tick_ms,
            dir.display(),
            port
        );
        for l in &opts.extra {
            text.push_str(l);
            text.push('\n');
        }
        let cfg = zkserver::config::Config::parse(&text, "interop-rust-client.cfg")
            .map_err(|e| e.to_string())?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (err_tx, err_rx) = std::sync::mpsc::channel::<String>();
        let thread = std::thread::Builder::new()
            .name(format!("zk-server-{port}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("server runtime");
                let res = rt.block_on(async move {
                    let (disk, dirs) =
                        zkserver::fsdisk::FsDisk::for_dirs(&cfg.data_dir, &cfg.data_log_dir)?;
                    tokio::select! {
                        r = zkserver::run::run(
                            cfg,
                            Arc::new(disk),
                            dirs,
                            Arc::new(zkserver::clock::SystemClock),
                        ) => r,
                        _ = stop_rx => Ok(()),
                    }
                });
                rt.shutdown_timeout(Duration::from_secs(5));
                if let Err(e) = res {
                    let _ = err_tx.send(format!("{e:#}"));
                }
            })
            .expect("spawn server thread");
        let mut server = LocalServer {
            port,
            stop: Some(stop_tx),
            thread: Some(thread),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(e) = err_rx.try_recv() {
                server.stop();
                return Err(e);
            }
            let p = port;
            let srvr = tokio::task::spawn_blocking(move || four_letter_sync(p, "srvr"))
                .await
                .unwrap_or_default();
            if srvr.contains("Zookeeper version") {
                return Ok(server);
            }
            if Instant::now() > deadline {
                server.stop();
                return Err(format!("server on port {port} did not answer srvr"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stop the server: its runtime is dropped, closing every socket.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn four_letter_sync(port: u16, cmd: &str) -> String {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    if s.write_all(cmd.as_bytes()).is_err() {
        return String::new();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// One test's server (ours or the external one) and its base path.
pub struct Env {
    /// `host:port` of the server.
    pub addr: String,
    /// A persistent node created for this test; work under it.
    pub base: String,
    pub opts: ServerOpts,
    // Field order: the server stops before its directory is removed.
    server: Option<LocalServer>,
    dir: Option<TempDir>,
}

impl Env {
    pub async fn new(name: &str) -> Env {
        Env::with_opts(name, ServerOpts::default()).await
    }

    pub async fn with_opts(name: &str, opts: ServerOpts) -> Env {
        let (addr, server, dir) = match external() {
            Some(a) => (a, None, None),
            None => {
                let dir = TempDir::new(name);
                let s = LocalServer::start(dir.path(), None, &opts).await;
                (format!("127.0.0.1:{}", s.port), Some(s), Some(dir))
            }
        };
        let base = format!(
            "/rc-{name}-{}-{}",
            std::process::id(),
            unique() % 1_000_000_000
        );
        let env = Env {
            addr,
            base,
            opts,
            server,
            dir,
        };
        let c = env.connect().await;
        c.create(
            &env.base,
            b"",
            &CreateMode::Persistent.with_acls(Acls::anyone_all()),
        )
        .await
        .expect("create base node");
        env
    }

    pub fn is_external(&self) -> bool {
        self.server.is_none()
    }

    /// `base/rel`.
    pub fn path(&self, rel: &str) -> String {
        format!("{}/{}", self.base, rel)
    }

    pub async fn connect(&self) -> Client {
        connect_to(&self.addr, Duration::from_secs(4)).await
    }

    pub async fn connect_with(&self, connector: zk::Connector) -> Client {
        tokio::time::timeout(EVENT_TIMEOUT, connector.connect(&self.addr))
            .await
            .expect("connect timed out")
            .expect("connect")
    }

    pub fn port(&self) -> u16 {
        self.addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in addr")
    }

    /// Send a four-letter word to the server and return the answer.
    pub async fn four_letter(&self, cmd: &str) -> String {
        let (port, cmd) = (self.port(), cmd.to_string());
        tokio::task::spawn_blocking(move || four_letter_sync(port, &cmd))
            .await
            .unwrap_or_default()
    }

    /// Data-table watches (`wchp`) of `session` on paths under this test's
    /// base path, as the server reports them: sorted paths.
    pub async fn data_watches(&self, session: i64) -> Vec<String> {
        let out = self.four_letter("wchp").await;
        let sid = format!("0x{session:x}");
        let mut paths = Vec::new();
        let mut cur: Option<&str> = None;
        for line in out.lines() {
            if let Some(id) = line.strip_prefix('\t') {
                if let Some(p) = cur {
                    if id.trim() == sid
                        && (p == self.base || p.starts_with(&format!("{}/", self.base)))
                    {
                        paths.push(p.to_string());
                    }
                }
            } else if !line.is_empty() {
                cur = Some(line);
            }
        }
        paths.sort();
        paths
    }

    /// Our server only: stop it (the data directory stays).
    pub fn stop_server(&mut self) {
        let s = self.server.as_mut().expect("not with an external server");
        s.stop();
    }

    /// Our server only: start it again on `port` (default: its own port)
    /// with the same data directory.
    pub async fn start_server(&mut self, port: Option<u16>) -> u16 {
        let dir = self.dir.as_ref().expect("not with an external server");
        let old = self
            .server
            .as_ref()
            .expect("not with an external server")
            .port;
        let s = LocalServer::start(dir.path(), Some(port.unwrap_or(old)), &self.opts).await;
        let p = s.port;
        self.server = Some(s);
        p
    }

    /// A port nobody listens on right now.
    pub fn free_port(&self) -> u16 {
        free_port()
    }
}

pub async fn connect_to(addr: &str, session_timeout: Duration) -> Client {
    let connector = Client::connector().with_session_timeout(session_timeout);
    tokio::time::timeout(EVENT_TIMEOUT, connector.connect(addr))
        .await
        .unwrap_or_else(|_| panic!("connecting to {addr} timed out"))
        .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"))
}

/// Skip a test that cannot run against an external server.
#[macro_export]
macro_rules! ours_only {
    ($env:expr, $why:expr) => {
        if $env.is_external() {
            eprintln!("skipped against an external server: {}", $why);
            return;
        }
    };
}

/// Await `f` for at most [`EVENT_TIMEOUT`]; panic naming `what` otherwise.
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(EVENT_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| panic!("no answer within {EVENT_TIMEOUT:?}: {what}"))
}

/// The next event of a persistent watcher, within [`EVENT_TIMEOUT`].
pub async fn next_event(w: &mut PersistentWatcher) -> WatchedEvent {
    tokio::time::timeout(EVENT_TIMEOUT, w.changed())
        .await
        .expect("no watch event within the time limit")
}

/// Assert that a persistent watcher gets nothing for `d`.
pub async fn no_event(w: &mut PersistentWatcher, d: Duration) {
    if let Ok(ev) = tokio::time::timeout(d, w.changed()).await {
        panic!("unexpected watch event {ev:?}");
    }
}

/// The event of a one-shot watcher, within [`EVENT_TIMEOUT`].
pub async fn fired(w: OneshotWatcher) -> WatchedEvent {
    tokio::time::timeout(EVENT_TIMEOUT, w.changed())
        .await
        .expect("one-shot watch did not fire within the time limit")
}

/// Wait until the client's session reaches `want`.
pub async fn wait_state(w: &mut StateWatcher, want: SessionState) {
    let fut = async {
        let mut s = w.state();
        while s != want {
            s = w.changed().await;
        }
    };
    if tokio::time::timeout(EVENT_TIMEOUT * 2, fut).await.is_err() {
        panic!("session did not reach {want:?} (now {:?})", w.peek_state());
    }
}

/// Poll `f` until it returns true, every 50 ms, for at most `limit`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if f().await {
            return;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(Clone, Copy, Debug)]
struct ProxyState {
    open: bool,
    generation: u64,
}

/// A TCP proxy in front of the server that can cut every client connection
/// and refuse new ones (accepted and closed at once) until resumed.
pub struct Proxy {
    pub addr: String,
    ctl: watch::Sender<ProxyState>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr").to_string();
        let (ctl, _) = watch::channel(ProxyState {
            open: true,
            generation: 0,
        });
        let ctl2 = ctl.clone();
        let upstream = upstream.to_string();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut down, _)) = listener.accept().await else {
                    continue;
                };
                let mut rx = ctl2.subscribe();
                let st = *rx.borrow_and_update();
                if !st.open {
                    drop(down);
                    continue;
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut up) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let _ = down.set_nodelay(true);
                    let _ = up.set_nodelay(true);
                    let cut = async {
                        loop {
                            if rx.changed().await.is_err() {
                                return;
                            }
                            if rx.borrow().generation != st.generation {
                                return;
                            }
                        }
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut down, &mut up) => {}
                        _ = cut => {}
                    }
                });
            }
        });
        Proxy { addr, ctl, task }
    }

    /// Close every proxied connection and refuse new ones.
    pub fn cut(&self) {
        self.ctl.send_modify(|s| {
            s.open = false;
            s.generation += 1;
        });
    }

    /// Accept connections again.
    pub fn resume(&self) {
        self.ctl.send_modify(|s| s.open = true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}
