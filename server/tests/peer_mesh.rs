//! The peer mesh (`zkserver::peer`) end to end, in both builds.
//!
//! Simulated (`cargo test`): each server is a madsim node at
//! `10.0.0.<id>:2888`, a restart is a node kill and restart, and raw test
//! clients run on a node of their own. Real (`cargo real test`): every
//! server is on loopback with a port the OS picked, a restart drops the
//! `Mesh` and starts a new one on the same port, and every test is bounded
//! in wall time. The test bodies are shared; only [`Cluster`] differs.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use zkserver::peer::{Mesh, PeerEvent, HANDSHAKE_TIMEOUT, MAGIC, OUTBOX_FRAMES_MAX};

type Inbox = mpsc::UnboundedReceiver<PeerEvent>;

/// Every test must finish within this (simulated or wall) time.
const TEST_LIMIT: Duration = Duration::from_secs(60);
const MAX_FRAME: usize = 1 << 20;

#[cfg(madsim)]
mod env {
    use super::*;
    use madsim::runtime::{Handle, NodeHandle};
    use madsim::task::NodeId;
    use std::net::{IpAddr, Ipv4Addr};

    /// Simulated servers, one madsim node each, plus a node for raw clients.
    pub struct Cluster {
        handle: Handle,
        nodes: BTreeMap<u64, NodeId>,
        client: NodeHandle,
        pub addrs: BTreeMap<u64, SocketAddr>,
    }

    impl Cluster {
        pub async fn new(ids: &[u64]) -> Cluster {
            let handle = Handle::current();
            let mut nodes = BTreeMap::new();
            let mut addrs = BTreeMap::new();
            for &id in ids {
                let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, id as u8));
                let node = handle
                    .create_node()
                    .name(format!("server{id}"))
                    .ip(ip)
                    .build();
                nodes.insert(id, node.id());
                addrs.insert(id, SocketAddr::new(ip, 2888));
            }
            let client = handle
                .create_node()
                .name("client")
                .ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)))
                .build();
            Cluster {
                handle,
                nodes,
                client,
                addrs,
            }
        }

        /// Start server `id`'s mesh on its node.
        pub async fn start(&self, id: u64, max_frame: usize) -> (Mesh, Inbox) {
            // A fresh handle: one taken before a restart spawns nowhere.
            let node = self.handle.get_node(self.nodes[&id]).expect("node");
            let (tx, rx) = mpsc::unbounded_channel();
            let (listen, peers) = (self.addrs[&id], self.addrs.clone());
            let mesh = node
                .spawn(async move { Mesh::start(id, listen, peers, max_frame, tx).await })
                .await
                .expect("start task")
                .expect("bind");
            (mesh, rx)
        }

        /// Crash server `id`: kill its node (every task and socket of the
        /// mesh goes) and restart it empty, ready for [`Cluster::start`].
        pub async fn stop(&self, id: u64, mesh: Mesh) {
            drop(mesh);
            self.handle.kill(self.nodes[&id]);
            self.handle.restart(self.nodes[&id]);
        }

        /// Run raw-client code on the client node.
        pub async fn client<F>(&self, fut: F) -> F::Output
        where
            F: Future + Send + 'static,
            F::Output: Send + 'static,
        {
            self.client.spawn(fut).await.expect("client task")
        }
    }
}

#[cfg(not(madsim))]
mod env {
    use super::*;

    /// Real servers on loopback.
    pub struct Cluster {
        pub addrs: BTreeMap<u64, SocketAddr>,
    }

    impl Cluster {
        pub async fn new(ids: &[u64]) -> Cluster {
            // Peers need every port up front: let the OS pick free ones.
            // (Another process could take one in between; unlikely enough.)
            let addrs = ids
                .iter()
                .map(|&id| {
                    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind :0");
                    (id, l.local_addr().expect("local addr"))
                })
                .collect();
            Cluster { addrs }
        }

        pub async fn start(&self, id: u64, max_frame: usize) -> (Mesh, Inbox) {
            let (listen, peers) = (self.addrs[&id], self.addrs.clone());
            // A stopped mesh frees its port once its listener task notices.
            for _ in 0..50 {
                let (tx, rx) = mpsc::unbounded_channel();
                match Mesh::start(id, listen, peers.clone(), max_frame, tx).await {
                    Ok(mesh) => return (mesh, rx),
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
            panic!("could not bind {listen}");
        }

        /// Stop server `id`: dropping the last `Mesh` ends its tasks and
        /// closes its sockets.
        pub async fn stop(&self, _id: u64, mesh: Mesh) {
            drop(mesh);
        }

        pub async fn client<F>(&self, fut: F) -> F::Output
        where
            F: Future + Send + 'static,
            F::Output: Send + 'static,
        {
            tokio::spawn(fut).await.expect("client task")
        }
    }
}

use env::Cluster;

/// Run a test body within [`TEST_LIMIT`].
async fn bounded(body: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_LIMIT, body)
        .await
        .expect("test took too long");
}

/// A frame carrying a sequence number, padded so that some frames are
/// large (batching) and some empty apart from the number.
fn frame(seq: u64) -> Vec<u8> {
    let pad = match seq % 10 {
        0 => 100_000,
        3 => 0,
        n => n as usize * 10,
    };
    let mut f = seq.to_be_bytes().to_vec();
    f.resize(8 + pad, seq as u8);
    f
}

/// A frame that is just a sequence number (for servers with a small
/// `max_frame`).
fn small(seq: u64) -> Vec<u8> {
    seq.to_be_bytes().to_vec()
}

fn small_seq(bytes: &[u8]) -> u64 {
    u64::from_be_bytes(bytes.try_into().expect("8 bytes"))
}

fn seq_of(bytes: &[u8]) -> u64 {
    assert!(bytes.len() >= 8, "short frame");
    let seq = u64::from_be_bytes(bytes[..8].try_into().unwrap());
    assert_eq!(bytes, frame(seq).as_slice(), "frame {seq} corrupted");
    seq
}

/// The next `n` frames of an inbox, as (from, bytes).
async fn take(rx: &mut Inbox, n: usize) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let ev = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} frames arrived", out.len()))
            .expect("inbox open");
        if let PeerEvent::Frame { from, bytes } = ev {
            out.push((from, bytes));
        }
    }
    out
}

/// Nothing more arrives for a while.
async fn quiet(rx: &mut Inbox) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Ok(ev) = rx.try_recv() {
        assert!(
            matches!(ev, PeerEvent::Lost { .. }),
            "unexpected extra frame"
        );
    }
}

/// Sequence numbers per sender.
fn by_sender(frames: &[(u64, Vec<u8>)]) -> BTreeMap<u64, Vec<u64>> {
    let mut m: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (from, bytes) in frames {
        m.entry(*from).or_default().push(seq_of(bytes));
    }
    m
}

/// Whether the server closes `s` within `within` (EOF or a reset).
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 64];
    let wait = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, wait).await.is_ok()
}

fn hello(id: u64) -> Vec<u8> {
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(&id.to_be_bytes());
    h
}

fn encode(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

async fn write(s: &mut TcpStream, bytes: &[u8]) {
    s.write_all(bytes).await.expect("write");
    s.flush().await.expect("flush");
}

#[cfg_attr(madsim, madsim::test)]
#[cfg_attr(not(madsim), tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn three_nodes_all_to_all_in_order() {
    bounded(async {
        let ids = [1, 2, 3];
        let c = Cluster::new(&ids).await;
        let mut nodes = BTreeMap::new();
        for id in ids {
            nodes.insert(id, c.start(id, MAX_FRAME).await);
        }
        const N: u64 = 300;
        for seq in 0..N {
            for from in ids {
                for to in ids.into_iter().filter(|&to| to != from) {
                    nodes[&from].0.send(to, frame(seq));
                }
            }
        }
        for (id, (_, rx)) in nodes.iter_mut() {
            let got = by_sender(&take(rx, 2 * N as usize).await);
            let others: Vec<u64> = ids.into_iter().filter(|o| o != id).collect();
            assert_eq!(got.keys().copied().collect::<Vec<_>>(), others);
            for seqs in got.values() {
                assert_eq!(*seqs, (0..N).collect::<Vec<_>>(), "server {id}");
            }
            quiet(rx).await;
        }
    })
    .await;
}

#[cfg_attr(madsim, madsim::test)]
#[cfg_attr(not(madsim), tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn late_peer_gets_queued_frames_up_to_the_bound() {
    bounded(async {
        let c = Cluster::new(&[1, 2, 3]).await;
        let (m1, mut rx1) = c.start(1, MAX_FRAME).await;
        let (m2, _rx2) = c.start(2, MAX_FRAME).await;
        // Small frames, more than the outbox keeps: the oldest 100 go.
        let extra = 100u64;
        for seq in 0..OUTBOX_FRAMES_MAX as u64 + extra {
            m1.send(3, small(seq));
        }
        for seq in 0..10u64 {
            m2.send(3, frame(seq));
        }
        // Several failed dials later, server 3 comes up.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (m3, mut rx3) = c.start(3, MAX_FRAME).await;
        let got = take(&mut rx3, OUTBOX_FRAMES_MAX + 10).await;
        let from1: Vec<u64> = got
            .iter()
            .filter(|(f, _)| *f == 1)
            .map(|(_, b)| small_seq(b))
            .collect();
        let from2: Vec<u64> = got
            .iter()
            .filter(|(f, _)| *f == 2)
            .map(|(_, b)| seq_of(b))
            .collect();
        assert_eq!(
            from1,
            (extra..OUTBOX_FRAMES_MAX as u64 + extra).collect::<Vec<_>>()
        );
        assert_eq!(from2, (0..10).collect::<Vec<_>>());
        quiet(&mut rx3).await;
        // And the late server can talk back.
        m3.send(1, frame(7));
        assert_eq!(by_sender(&take(&mut rx1, 1).await)[&3], vec![7]);
    })
    .await;
}

#[cfg_attr(madsim, madsim::test)]
#[cfg_attr(not(madsim), tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn restarted_peer_gets_new_frames() {
    bounded(async {
        let c = Cluster::new(&[1, 2]).await;
        let (m1, mut rx1) = c.start(1, MAX_FRAME).await;
        let (m2, mut rx2) = c.start(2, MAX_FRAME).await;
        m1.send(2, frame(0));
        m2.send(1, frame(0));
        assert_eq!(by_sender(&take(&mut rx2, 1).await)[&1], vec![0]);
        assert_eq!(by_sender(&take(&mut rx1, 1).await)[&2], vec![0]);

        c.stop(2, m2).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Sent while server 2 is down: queued or lost, never reordered.
        for seq in 1..6 {
            m1.send(2, frame(seq));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (m2, mut rx2) = c.start(2, MAX_FRAME).await;
        // Sent after the restart: all of them arrive.
        for seq in 6..20 {
            m1.send(2, frame(seq));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut seqs = Vec::new();
        while seqs.last() != Some(&19) {
            seqs.extend(&by_sender(&take(&mut rx2, 1).await)[&1]);
        }
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "reordered: {seqs:?}");
        assert!(seqs[0] >= 1, "frame 0 delivered twice: {seqs:?}");
        assert!(
            (6..20).all(|s| seqs.contains(&s)),
            "lost after the restart: {seqs:?}"
        );
        // The restarted server's own dialer reaches server 1 (whose reader
        // of the dead connection gave way to the new one).
        m2.send(1, frame(1));
        assert_eq!(by_sender(&take(&mut rx1, 1).await)[&2], vec![1]);
        quiet(&mut rx1).await;
    })
    .await;
}

#[cfg_attr(madsim, madsim::test)]
#[cfg_attr(not(madsim), tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn bad_inbound_connections_are_closed_without_harm() {
    bounded(async {
        // Server 4 is configured but never runs: it can be impersonated, and
        // dialing it fails forever without disturbing anyone.
        let c = Cluster::new(&[1, 2, 4]).await;
        let (_m1, mut rx1) = c.start(1, 1024).await;
        let (m2, _rx2) = c.start(2, 1024).await;
        m2.send(1, small(1));
        assert_eq!(take(&mut rx1, 1).await, vec![(2, small(1))]);

        let target = c.addrs[&1];
        let closed = c
            .client(async move {
                let mut results = Vec::new();
                let short = Duration::from_secs(2);
                let mut bad_magic = b"GARBAGE!".to_vec();
                bad_magic.extend_from_slice(&2u64.to_be_bytes());
                let cases: [(&str, Vec<u8>); 4] = [
                    ("bad magic", bad_magic),
                    ("unknown id", hello(9)),
                    ("own id", hello(1)),
                    ("oversized frame", {
                        let mut b = hello(4);
                        b.extend(encode(b"before"));
                        b.extend_from_slice(&1025u32.to_be_bytes());
                        b.extend_from_slice(&[0; 100]);
                        b
                    }),
                ];
                for (what, bytes) in cases {
                    let mut s = TcpStream::connect(target).await.expect("connect");
                    write(&mut s, &bytes).await;
                    results.push((what, closed_within(&mut s, short).await));
                }
                // Half a handshake, then EOF.
                let mut s = TcpStream::connect(target).await.expect("connect");
                write(&mut s, &MAGIC[..5]).await;
                drop(s);
                // Silence: closed once the handshake times out.
                let mut s = TcpStream::connect(target).await.expect("connect");
                let limit = HANDSHAKE_TIMEOUT + Duration::from_secs(2);
                results.push(("silent", closed_within(&mut s, limit).await));
                results
            })
            .await;
        for (what, was_closed) in closed {
            assert!(was_closed, "{what}: connection left open");
        }
        // The impersonated frame before the oversized one was delivered;
        // nothing else from the bad connections was.
        let got = take(&mut rx1, 1).await;
        assert_eq!(got, vec![(4, b"before".to_vec())]);
        // Server 2's connection was never disturbed: nothing lost.
        for seq in 2..50 {
            m2.send(1, small(seq));
        }
        let got = take(&mut rx1, 48).await;
        assert!(got.iter().all(|(from, _)| *from == 2));
        let seqs: Vec<u64> = got.iter().map(|(_, b)| small_seq(b)).collect();
        assert_eq!(seqs, (2..50).collect::<Vec<_>>());
        quiet(&mut rx1).await;
    })
    .await;
}

#[cfg_attr(madsim, madsim::test)]
#[cfg_attr(not(madsim), tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn a_second_connection_from_a_peer_replaces_the_first() {
    bounded(async {
        let c = Cluster::new(&[1, 4]).await;
        let (_m1, mut rx1) = c.start(1, MAX_FRAME).await;
        let target = c.addrs[&1];
        let (mut old, mut new) = c
            .client(async move {
                let mut old = TcpStream::connect(target).await.expect("connect");
                write(&mut old, &[hello(4), encode(b"old 1")].concat()).await;
                (old, TcpStream::connect(target).await.expect("connect"))
            })
            .await;
        assert_eq!(take(&mut rx1, 1).await, vec![(4, b"old 1".to_vec())]);
        let old_closed = c
            .client(async move {
                write(&mut new, &[hello(4), encode(b"new 1")].concat()).await;
                // Give the new connection's handshake time to register.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let _ = old.write_all(&encode(b"old 2")).await;
                let _ = old.flush().await;
                write(&mut new, &encode(b"new 2")).await;
                let closed = closed_within(&mut old, Duration::from_secs(2)).await;
                (closed, new)
            })
            .await;
        assert!(old_closed.0, "the replaced connection stays open");
        assert_eq!(
            take(&mut rx1, 2).await,
            vec![(4, b"new 1".to_vec()), (4, b"new 2".to_vec())]
        );
        quiet(&mut rx1).await;
    })
    .await;
}

#[cfg_attr(madsim, madsim::test)]
#[cfg_attr(not(madsim), tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn frames_to_unknown_ids_or_over_max_frame_are_dropped() {
    bounded(async {
        let c = Cluster::new(&[1, 2]).await;
        let (m1, _rx1) = c.start(1, 1024).await;
        let (_m2, mut rx2) = c.start(2, 1024).await;
        m1.send(99, b"nobody".to_vec());
        m1.send(1, b"myself".to_vec());
        m1.send(2, vec![7; 1025]);
        m1.send(2, vec![8; 1024]);
        m1.send(2, Vec::new());
        assert_eq!(
            take(&mut rx2, 2).await,
            vec![(1, vec![8; 1024]), (1, Vec::new())]
        );
        quiet(&mut rx2).await;
    })
    .await;
}

#[cfg_attr(madsim, madsim::test)]
#[cfg_attr(not(madsim), tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn dropping_the_mesh_stops_its_tasks() {
    bounded(async {
        let c = Cluster::new(&[1, 2]).await;
        let (m1, mut rx1) = c.start(1, MAX_FRAME).await;
        let (m2, _rx2) = c.start(2, MAX_FRAME).await;
        m2.send(1, frame(1));
        assert_eq!(by_sender(&take(&mut rx1, 1).await)[&2], vec![1]);
        // The listener and the readers hold the inbox's only senders: once
        // they have ended, the inbox reports closed.
        drop(m1);
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            while rx1.recv().await.is_some() {}
        })
        .await;
        assert!(closed.is_ok(), "mesh tasks still running");
        // Its port is free again.
        let (_m1, mut rx1) = c.start(1, MAX_FRAME).await;
        m2.send(1, frame(2));
        let mut seqs = Vec::new();
        while seqs.last() != Some(&3) {
            // A frame written into the old connection may be lost; keep
            // sending until one made it through the new one.
            m2.send(1, frame(3));
            let ev = tokio::time::timeout(Duration::from_secs(3), rx1.recv()).await;
            if let Ok(Some(PeerEvent::Frame { from, bytes })) = ev {
                assert_eq!(from, 2);
                seqs.push(seq_of(&bytes));
            }
        }
        assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "{seqs:?}");
    })
    .await;
}
