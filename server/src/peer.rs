//! The peer mesh: how ensemble servers carry ZAB messages to each other.
//!
//! The mesh moves opaque frames between servers that know each other by
//! server id. It is a lossy, per-sender-FIFO datagram service built on TCP,
//! and deliberately nothing more: the ZAB state machine above it detects gaps
//! itself (zxids, epochs, timeouts, resync by DIFF/TRUNC/SNAP), so the
//! transport never retransmits, acknowledges or deduplicates.
//!
//! # One connection per direction
//!
//! Server `a` sends to `b` only over a connection that `a` dialed; `b` only
//! reads from it (and `a` only watches its read side for the close). The
//! reverse direction is a separate connection that `b` dialed. So there is
//! no "who dials whom" tie-break (ZooKeeper's QuorumCnxManager drops the
//! connection from the smaller id and redials; that dance is where its
//! races live), each end owns exactly the socket it writes to, and a peer
//! that restarts simply redials and replaces its old incoming connection.
//!
//! # Wire format
//!
//! A dialer writes a 16-byte handshake, [`MAGIC`] then its server id as a
//! big-endian `u64`, then frames, each a big-endian `u32` length and that
//! many bytes. Nothing is ever written back.
//!
//! # Sending (one dialer task per peer)
//!
//! [`Mesh::send`] puts the frame on an unbounded channel to the peer's dialer
//! task and returns at once. The task moves frames into its own outbox,
//! bounded by [`OUTBOX_FRAMES_MAX`] frames and [`OUTBOX_BYTES_MAX`] bytes
//! (the oldest frames are dropped beyond that), so memory stays bounded
//! whether the peer is down, slow or clogged: the task drains the channel
//! even while it waits for a connect, a backoff or a write. Frames the
//! receiver would refuse (longer than `max_frame`) are dropped at
//! [`Mesh::send`], so they cannot cost the connection everything behind them.
//!
//! While connected, the task writes everything in the outbox as one batch
//! (capped at [`BATCH_BYTES`] per write) and flushes it. A slow write is
//! waited on, never timed out. On any error, or when the peer closes its end
//! (a restart), the connection is dropped and the frames written into it
//! are lost; the task backs off ([`BACKOFF_MIN`] doubling to [`BACKOFF_MAX`],
//! reset once a connection has lived [`BACKOFF_MAX`]) and redials.
//! [`CONNECT_TIMEOUT`] bounds a connect, as a partitioned link may hang.
//!
//! # Receiving (one listener, one reader task per connection)
//!
//! The listener accepts anything; a reader has [`HANDSHAKE_TIMEOUT`] to see
//! a handshake with the right magic and the id of a known peer (not this
//! server's own), else the socket is closed. At most
//! [`PENDING_HANDSHAKES_MAX`] sockets may be waiting for their handshake at
//! once; more are closed at once. A frame longer than `max_frame`, EOF or
//! an error closes only that connection. When a second connection arrives
//! from the same peer id, the older one is dropped: frames it already
//! delivered stay delivered, later ones are not, and delivery is decided
//! under a lock so that no frame of the old connection can follow a frame
//! of the new one. Frames go to the inbox as [`PeerEvent::Frame`].
//!
//! # Lifetime
//!
//! Dialer tasks end when every clone of the [`Mesh`] is dropped; the
//! listener and readers end then too, or when the inbox is closed. Under
//! madsim, killing the node drops all of them.
//!
//! # Determinism
//!
//! Every `select!` is `biased` (tokio's default branch choice draws from an
//! RNG the simulation does not control); maps are `BTreeMap`s; time comes
//! from `tokio::time`, which madsim simulates.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, oneshot};

/// The first bytes of every peer connection.
pub const MAGIC: [u8; 8] = *b"ZKRSPEER";
/// Handshake length: [`MAGIC`] and the dialer's id.
pub const HANDSHAKE_LEN: usize = 16;
/// How long a connect may take before it counts as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long an accepted socket may take to send its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// The first pause before redialing a peer.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest pause before redialing a peer.
pub const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Frames a dialer keeps for its peer; the oldest go first beyond this.
pub const OUTBOX_FRAMES_MAX: usize = 10_000;
/// Bytes (frame payloads) a dialer keeps for its peer.
pub const OUTBOX_BYTES_MAX: usize = 64 << 20;
/// The most bytes handed to one write (at least one frame is).
pub const BATCH_BYTES: usize = 1 << 20;
/// Accepted sockets that may wait for their handshake at once.
pub const PENDING_HANDSHAKES_MAX: usize = 64;

/// What the mesh delivers to the server's event loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// One frame from peer `from`, in the order that peer sent it.
    Frame { from: u64, bytes: Vec<u8> },
    /// Peer `from`'s live incoming connection ended (closed, reset, or a
    /// bad frame) without being replaced: it crashed, restarted or broke
    /// off. A peer that merely goes silent (a partition) does not cause
    /// this; ZAB's own timeouts cover that.
    Lost { from: u64 },
}

/// This server's end of the mesh: a queue to each peer's dialer task.
/// Cloning is cheap (one `Arc`); the tasks stop when the last clone drops.
///
/// Invariants:
/// - there is one dialer (and queue) per peer id, never one for `my_id`;
/// - a queued frame is at most `max_frame` bytes.
#[derive(Clone)]
pub struct Mesh {
    inner: Arc<Inner>,
}

struct Inner {
    my_id: u64,
    max_frame: usize,
    peers: BTreeMap<u64, mpsc::UnboundedSender<Vec<u8>>>,
    /// Never written: dropping it (with the last `Mesh`) stops the listener
    /// and the readers.
    ///
    /// A broadcast channel, not a `watch`: tokio's `watch` spreads waiters
    /// over shards picked by a process-global random number, so the order
    /// in which the stopping tasks wake (and the whole simulation after it)
    /// would differ from one run to the next.
    _alive: broadcast::Sender<()>,
}

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mesh")
            .field("my_id", &self.inner.my_id)
            .field("peers", &self.inner.peers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Mesh {
    /// Bind `listen` and start dialing every peer in `peers` (ids other than
    /// `my_id`). Incoming frames from known peers are delivered on `inbox`.
    /// Fails only if `listen` cannot be bound.
    pub async fn start(
        my_id: u64,
        listen: SocketAddr,
        peers: BTreeMap<u64, SocketAddr>,
        max_frame: usize,
        inbox: mpsc::UnboundedSender<PeerEvent>,
    ) -> io::Result<Mesh> {
        let listener = TcpListener::bind(listen).await?;
        let (alive_tx, alive_rx) = broadcast::channel(1);
        let peers: BTreeMap<u64, SocketAddr> =
            peers.into_iter().filter(|(id, _)| *id != my_id).collect();
        let mut queues = BTreeMap::new();
        let mut redial = BTreeMap::new();
        for (id, addr) in &peers {
            let (tx, rx) = mpsc::unbounded_channel();
            let (wake_tx, wake_rx) = mpsc::unbounded_channel();
            tokio::spawn(dialer(my_id, *id, *addr, rx, wake_rx));
            queues.insert(*id, tx);
            redial.insert(*id, wake_tx);
        }
        let inbound = Arc::new(Inbound {
            my_id,
            known: peers.keys().copied().collect(),
            max_frame,
            inbox,
            current: Mutex::new(Current::default()),
            pending: AtomicUsize::new(0),
            redial,
        });
        tokio::spawn(accept_loop(listener, inbound, alive_rx));
        Ok(Mesh {
            inner: Arc::new(Inner {
                my_id,
                max_frame,
                peers: queues,
                _alive: alive_tx,
            }),
        })
    }

    /// Queue one frame for peer `to`; never blocks, never fails loudly.
    /// Frames to unknown ids (or this server's own) are dropped, and so are
    /// frames longer than `max_frame`, which the peer would refuse.
    pub fn send(&self, to: u64, frame: Vec<u8>) {
        if frame.len() > self.inner.max_frame || frame.len() > u32::MAX as usize {
            tracing::warn!(to, len = frame.len(), "peer frame over max_frame; dropped");
            return;
        }
        match self.inner.peers.get(&to) {
            // A closed queue means the node is going down: nothing to do.
            Some(q) => drop(q.send(frame)),
            None => tracing::debug!(to, "frame for an unknown peer id; dropped"),
        }
    }

    /// This server's id.
    pub fn my_id(&self) -> u64 {
        self.inner.my_id
    }
}

// ---------------------------------------------------------------- sending

/// Frames waiting for a connection or a write, bounded; the oldest are
/// dropped first.
///
/// Invariants:
/// - `bytes` is the sum of the queued frames' lengths;
/// - `frames.len() <= OUTBOX_FRAMES_MAX` and `bytes <= OUTBOX_BYTES_MAX`
///   between calls.
#[derive(Default)]
struct Outbox {
    frames: VecDeque<Vec<u8>>,
    bytes: usize,
    /// Frames dropped since the last report.
    dropped: u64,
}

impl Outbox {
    fn push(&mut self, frame: Vec<u8>) {
        self.bytes += frame.len();
        self.frames.push_back(frame);
        while self.frames.len() > OUTBOX_FRAMES_MAX || self.bytes > OUTBOX_BYTES_MAX {
            let Some(old) = self.frames.pop_front() else {
                break;
            };
            self.bytes -= old.len();
            self.dropped += 1;
        }
    }

    fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
    }

    /// Move frames, encoded, onto `buf` until it holds about
    /// [`BATCH_BYTES`] (always at least one frame).
    fn take_batch(&mut self, buf: &mut Vec<u8>) {
        let mut taken = 0;
        while let Some(f) = self.frames.front() {
            if taken > 0 && buf.len() + 4 + f.len() > BATCH_BYTES {
                break;
            }
            let f = self.frames.pop_front().expect("front exists");
            self.bytes -= f.len();
            buf.extend_from_slice(&(f.len() as u32).to_be_bytes());
            buf.extend_from_slice(&f);
            taken += 1;
        }
    }

    /// Log (once) that frames were dropped since the last report.
    fn report_drops(&mut self, to: u64) {
        if self.dropped > 0 {
            tracing::warn!(
                to,
                dropped = self.dropped,
                "peer outbox full; oldest frames dropped"
            );
            self.dropped = 0;
        }
    }
}

/// Why a dialer stopped waiting.
enum Stop {
    /// Every `Mesh` clone is gone: the task ends.
    MeshDropped,
    /// The connection is over (the peer closed it, or an I/O error).
    Broken(io::Error),
}

/// Dial `to` at `addr` and write its frames, reconnecting forever, until the
/// queue closes. When a connection breaks, the frames still queued for it
/// are dropped with it: they were meant for a session the peer may no
/// longer have (a restarted follower would take an old proposal for a gap
/// and resynchronize again). A signal on `dialed_us` (the peer connected
/// to us: it restarted, or its link came back) ends a backoff at once.
async fn dialer(
    my_id: u64,
    to: u64,
    addr: SocketAddr,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    mut dialed_us: mpsc::UnboundedReceiver<()>,
) {
    let mut outbox = Outbox::default();
    let mut backoff = BACKOFF_MIN;
    loop {
        let connect = tokio::time::timeout(CONNECT_TIMEOUT, connect(addr));
        let stream = match drive(connect, &mut rx, &mut outbox, None).await {
            Err(_) => return,
            Ok(Ok(Ok(s))) => Some(s),
            Ok(Ok(Err(e))) => {
                tracing::debug!(to, %addr, "connecting to peer failed: {e}");
                None
            }
            Ok(Err(_)) => {
                tracing::debug!(to, %addr, "connecting to peer timed out");
                None
            }
        };
        if let Some(stream) = stream {
            tracing::debug!(to, %addr, "connected to peer");
            let since = tokio::time::Instant::now();
            match send_over(stream, my_id, to, &mut rx, &mut outbox).await {
                Stop::MeshDropped => return,
                Stop::Broken(e) => {
                    tracing::debug!(to, %addr, "peer connection closed: {e}");
                    outbox.clear();
                }
            }
            if since.elapsed() >= BACKOFF_MAX {
                backoff = BACKOFF_MIN;
            }
        }
        // The peer may have dialed us while this connection was dying.
        let mut woken = false;
        while dialed_us.try_recv().is_ok() {
            woken = true;
        }
        if !woken {
            let pause = tokio::time::sleep(backoff);
            let wake = async {
                let _ = dialed_us.recv().await;
            };
            let either = async {
                tokio::select! {
                    biased;
                    _ = pause => false,
                    _ = wake => true,
                }
            };
            match drive(either, &mut rx, &mut outbox, None).await {
                Err(_) => return,
                Ok(w) => woken = w,
            }
        }
        if woken {
            backoff = BACKOFF_MIN;
        } else {
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }
}

async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    // Loopback TCP can connect a socket to itself when nobody listens on a
    // port in the ephemeral range; that is no peer.
    if stream.local_addr()? == stream.peer_addr()? {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "connected to itself",
        ));
    }
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Write the handshake and then the outbox over `stream` until it breaks or
/// the queue closes.
async fn send_over(
    stream: TcpStream,
    my_id: u64,
    to: u64,
    rx: &mut mpsc::UnboundedReceiver<Vec<u8>>,
    outbox: &mut Outbox,
) -> Stop {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut buf = Vec::with_capacity(HANDSHAKE_LEN);
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&my_id.to_be_bytes());
    let mut scratch = [0u8; 64];
    loop {
        if outbox.is_empty() && buf.is_empty() {
            // Idle: wait for a frame, and notice the peer closing its end
            // (it never writes, so any read result but data ends this).
            tokio::select! {
                biased;
                f = rx.recv() => match f {
                    Some(f) => outbox.push(f),
                    None => return Stop::MeshDropped,
                },
                r = rd.read(&mut scratch) => if let Err(stop) = peer_read(r) {
                    return stop;
                },
            }
            continue;
        }
        outbox.report_drops(to);
        outbox.take_batch(&mut buf);
        // Flush every batch: madsim holds written data until a flush.
        let write = async {
            wr.write_all(&buf).await?;
            wr.flush().await
        };
        match drive(write, rx, outbox, Some(&mut rd)).await {
            Ok(Ok(())) => buf.clear(),
            Ok(Err(e)) => return Stop::Broken(e),
            Err(stop) => return stop,
        }
    }
}

/// What a read on the sending side of a connection means: the peer never
/// writes, so EOF or an error is the end of the connection.
fn peer_read(r: io::Result<usize>) -> Result<(), Stop> {
    match r {
        Ok(0) => Err(Stop::Broken(io::ErrorKind::UnexpectedEof.into())),
        Ok(_) => Ok(()),
        Err(e) => Err(Stop::Broken(e)),
    }
}

/// Run `fut` to completion while moving queued frames into the outbox (so
/// the channel never grows past the outbox bounds) and, if given, watching
/// the connection's read side for the peer closing it.
async fn drive<T>(
    fut: impl Future<Output = T>,
    rx: &mut mpsc::UnboundedReceiver<Vec<u8>>,
    outbox: &mut Outbox,
    mut rd: Option<&mut ReadHalf<TcpStream>>,
) -> Result<T, Stop> {
    tokio::pin!(fut);
    let mut scratch = [0u8; 64];
    loop {
        tokio::select! {
            biased;
            out = &mut fut => return Ok(out),
            f = rx.recv() => match f {
                Some(f) => outbox.push(f),
                None => return Err(Stop::MeshDropped),
            },
            r = read_some(rd.as_deref_mut(), &mut scratch) => peer_read(r)?,
        }
    }
}

async fn read_some(rd: Option<&mut ReadHalf<TcpStream>>, buf: &mut [u8]) -> io::Result<usize> {
    match rd {
        Some(rd) => rd.read(buf).await,
        None => std::future::pending().await,
    }
}

// -------------------------------------------------------------- receiving

/// What the listener and its readers share.
struct Inbound {
    my_id: u64,
    known: BTreeSet<u64>,
    max_frame: usize,
    inbox: mpsc::UnboundedSender<PeerEvent>,
    current: Mutex<Current>,
    /// Per peer: tells its dialer that the peer just connected to us.
    redial: BTreeMap<u64, mpsc::UnboundedSender<()>>,
    /// Accepted sockets still waiting for their handshake.
    pending: AtomicUsize,
}

/// The live incoming connection of each peer.
///
/// Invariants:
/// - at most one entry per peer id, the most recent connection's;
/// - only the connection whose generation is in `live` delivers frames.
#[derive(Default)]
struct Current {
    next_gen: u64,
    /// Peer id -> (generation, the sender whose drop stops that reader).
    live: BTreeMap<u64, (u64, oneshot::Sender<()>)>,
}

impl Current {
    fn is_live(&self, from: u64, gen: u64) -> bool {
        self.live.get(&from).is_some_and(|(g, _)| *g == gen)
    }
}

/// Counts a socket among those waiting for a handshake while it lives.
struct PendingGuard<'a>(&'a AtomicUsize);

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn accept_loop(listener: TcpListener, ctx: Arc<Inbound>, mut alive: broadcast::Receiver<()>) {
    loop {
        tokio::select! {
            biased;
            _ = alive.recv() => return,
            _ = ctx.inbox.closed() => return,
            r = listener.accept() => match r {
                Ok((stream, addr)) => {
                    tokio::spawn(serve_peer(stream, addr, ctx.clone(), alive.resubscribe()));
                }
                Err(e) => {
                    tracing::warn!("peer accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
}

/// Read one incoming peer connection until it ends, is replaced, or the
/// mesh stops.
async fn serve_peer(
    mut stream: TcpStream,
    addr: SocketAddr,
    ctx: Arc<Inbound>,
    mut alive: broadcast::Receiver<()>,
) {
    let Some(from) = handshake(&mut stream, addr, &ctx).await else {
        return;
    };
    let (gen, mut replaced) = ctx.register(from);
    tracing::debug!(from, %addr, "peer connected");
    if let Some(w) = ctx.redial.get(&from) {
        let _ = w.send(());
    }
    let mut len_bytes = [0u8; 4];
    loop {
        let read = tokio::select! {
            biased;
            _ = alive.recv() => break,
            _ = &mut replaced => break,
            r = stream.read_exact(&mut len_bytes) => r,
        };
        if let Err(e) = read {
            tracing::debug!(from, %addr, "peer connection ended: {e}");
            break;
        }
        let len = u32::from_be_bytes(len_bytes) as usize;
        if len > ctx.max_frame {
            tracing::warn!(from, %addr, len, "peer frame over max_frame; closing");
            break;
        }
        let mut body = vec![0u8; len];
        let read = tokio::select! {
            biased;
            _ = alive.recv() => break,
            _ = &mut replaced => break,
            r = stream.read_exact(&mut body) => r,
        };
        if let Err(e) = read {
            tracing::debug!(from, %addr, "peer connection ended mid-frame: {e}");
            break;
        }
        if !ctx.deliver(from, gen, body) {
            break;
        }
    }
    ctx.unregister(from, gen);
}

/// Read and check the handshake; the peer's id if it is acceptable.
async fn handshake(stream: &mut TcpStream, addr: SocketAddr, ctx: &Inbound) -> Option<u64> {
    if ctx.pending.fetch_add(1, Ordering::Relaxed) >= PENDING_HANDSHAKES_MAX {
        ctx.pending.fetch_sub(1, Ordering::Relaxed);
        tracing::warn!(%addr, "too many peer handshakes in progress; closing");
        return None;
    }
    let _guard = PendingGuard(&ctx.pending);
    let mut hello = [0u8; HANDSHAKE_LEN];
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.read_exact(&mut hello)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::debug!(%addr, "peer handshake failed: {e}");
            return None;
        }
        Err(_) => {
            tracing::warn!(%addr, "peer handshake timed out; closing");
            return None;
        }
    }
    let (magic, id) = hello.split_at(MAGIC.len());
    let id = u64::from_be_bytes(id.try_into().expect("8 bytes"));
    if magic != MAGIC {
        tracing::warn!(%addr, "bad peer handshake magic; closing");
        None
    } else if id == ctx.my_id || !ctx.known.contains(&id) {
        tracing::warn!(%addr, id, "peer handshake from an unknown server id; closing");
        None
    } else {
        Some(id)
    }
}

impl Inbound {
    /// Make this connection `from`'s live one; the previous one's reader
    /// stops (its oneshot sender is dropped here).
    fn register(&self, from: u64) -> (u64, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let mut cur = self.current.lock().expect("peer registry");
        cur.next_gen += 1;
        let gen = cur.next_gen;
        if cur.live.insert(from, (gen, tx)).is_some() {
            tracing::debug!(from, "new connection from peer replaces the old one");
        }
        (gen, rx)
    }

    fn unregister(&self, from: u64, gen: u64) {
        let mut cur = self.current.lock().expect("peer registry");
        if cur.is_live(from, gen) {
            cur.live.remove(&from);
            let _ = self.inbox.send(PeerEvent::Lost { from });
        }
    }

    /// Deliver a frame if this connection is still `from`'s live one; under
    /// the lock, so a replaced connection cannot deliver after its
    /// successor. False when the reader should stop.
    fn deliver(&self, from: u64, gen: u64, bytes: Vec<u8>) -> bool {
        let cur = self.current.lock().expect("peer registry");
        if !cur.is_live(from, gen) {
            return false;
        }
        self.inbox.send(PeerEvent::Frame { from, bytes }).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(buf: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut rest = buf;
        while !rest.is_empty() {
            let (len, tail) = rest.split_at(4);
            let len = u32::from_be_bytes(len.try_into().unwrap()) as usize;
            out.push(tail[..len].to_vec());
            rest = &tail[len..];
        }
        out
    }

    #[test]
    fn outbox_drops_oldest_beyond_the_frame_bound() {
        let mut o = Outbox::default();
        for i in 0..OUTBOX_FRAMES_MAX + 5 {
            o.push((i as u32).to_be_bytes().to_vec());
        }
        assert_eq!(o.frames.len(), OUTBOX_FRAMES_MAX);
        assert_eq!(o.dropped, 5);
        assert_eq!(o.bytes, OUTBOX_FRAMES_MAX * 4);
        assert_eq!(o.frames.front().unwrap(), &5u32.to_be_bytes().to_vec());
    }

    #[test]
    fn outbox_drops_oldest_beyond_the_byte_bound() {
        let mut o = Outbox::default();
        let big = OUTBOX_BYTES_MAX / 4;
        for i in 0..5u8 {
            o.push(vec![i; big]);
        }
        assert_eq!(o.frames.len(), 4);
        assert_eq!(o.bytes, 4 * big);
        assert_eq!(o.frames.front().unwrap()[0], 1);
        // A frame alone over the bound cannot be kept at all.
        o.push(vec![9; OUTBOX_BYTES_MAX + 1]);
        assert!(o.is_empty());
        assert_eq!(o.bytes, 0);
    }

    #[test]
    fn batches_are_capped_but_never_empty() {
        let mut o = Outbox::default();
        o.push(vec![1; BATCH_BYTES + 10]);
        o.push(vec![2; 10]);
        o.push(vec![3; 0]);
        let mut buf = Vec::new();
        o.take_batch(&mut buf);
        assert_eq!(decode(&buf), vec![vec![1; BATCH_BYTES + 10]]);
        buf.clear();
        o.take_batch(&mut buf);
        assert_eq!(decode(&buf), vec![vec![2; 10], vec![]]);
        assert!(o.is_empty());
        assert_eq!(o.bytes, 0);
    }
}
