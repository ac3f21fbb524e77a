//! The project's client against the real server, in the simulator: every
//! operation, pipelining, watches, pings, reconnects, expiry, timeouts.
#![cfg(madsim)]

use jute::{CreateMode, ErrorCode, EventType, KeeperState};
use madsim::runtime::{Handle, NodeHandle, Runtime};
use sim::client::{Client, ClientConfig, ClientEvent, ZkError};
use sim::faultdisk::FaultDisk;
use sim::runner::{start_server, CLIENT_PORT, SERVER_IP};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::time::{sleep, timeout, Instant};

fn cfg(session_timeout_ms: i32) -> ClientConfig {
    let mut c = ClientConfig::new(vec![SocketAddr::new(IpAddr::V4(SERVER_IP), CLIENT_PORT)]);
    c.session_timeout_ms = session_timeout_ms;
    c.request_timeout_ms = 1_000;
    c
}

fn cluster() -> sim::scenario::Cluster {
    sim::scenario::Cluster {
        tick_ms: 200,
        min_session_timeout_ms: 1_000,
        ..Default::default()
    }
}

/// Run `test` on a client node next to a fresh server; it gets the server's
/// node id and the disk.
fn sim<F, Fut>(seed: u64, test: F)
where
    F: FnOnce(NodeHandle, FaultDisk) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    std::thread::spawn(move || {
        let rt = Runtime::with_seed_and_config(seed, madsim::Config::default());
        rt.block_on(async move {
            let h = Handle::current();
            let disk = FaultDisk::default();
            let server = start_server(&h, &cluster(), disk.clone(), None);
            let node = h
                .create_node()
                .name("c1")
                .ip(IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1)))
                .build();
            sleep(Duration::from_millis(50)).await;
            node.spawn(test(server, disk)).await.unwrap();
        });
    })
    .join()
    .unwrap();
}

fn code<T: std::fmt::Debug>(r: Result<T, ZkError>) -> ErrorCode {
    r.unwrap_err().code().expect("a server error")
}

#[test]
fn every_operation_returns_its_reply_and_zxid() {
    sim(1, |_, _| async {
        let (c, _ev) = Client::connect(cfg(4000)).await.unwrap();
        let s = c.session();
        assert_ne!(s.session_id, 0);
        assert_eq!(s.timeout_ms, 4000);
        assert_eq!(s.passwd.len(), 16);
        assert_eq!(s.read_only, Some(false));

        let r = c.create("/a", b"x", CreateMode::Persistent).await.unwrap();
        assert_eq!(r.value.0, "/a");
        assert_eq!(r.value.1.czxid, r.zxid);
        let z1 = r.zxid;
        assert_eq!(
            code(c.create("/a", b"y", CreateMode::Persistent).await),
            ErrorCode::NodeExists
        );
        let e = c.create("/a/e", b"", CreateMode::Ephemeral).await.unwrap();
        assert_eq!(e.value.1.ephemeral_owner, s.session_id);
        let q = c
            .create("/a/q-", b"", CreateMode::PersistentSequential)
            .await
            .unwrap();
        assert_eq!(q.value.0, "/a/q-0000000001");
        let k = c.create("/k", b"", CreateMode::Container).await.unwrap();
        assert_eq!(k.value.0, "/k");

        let g = c.get_data("/a", false).await.unwrap();
        assert_eq!(g.value.0.as_deref(), Some(&b"x"[..]));
        assert!(g.zxid >= z1);
        let st = c.set_data("/a", b"y", 0).await.unwrap();
        assert_eq!(st.value.version, 1);
        assert_eq!(st.value.mzxid, st.zxid);
        assert_eq!(code(c.set_data("/a", b"z", 0).await), ErrorCode::BadVersion);
        assert_eq!(
            c.exists("/a", false).await.unwrap().value.unwrap().version,
            1
        );
        assert_eq!(c.exists("/nope", false).await.unwrap().value, None);
        assert_eq!(code(c.get_data("/nope", false).await), ErrorCode::NoNode);
        let mut kids = c.get_children("/a", false).await.unwrap().value.0;
        kids.sort();
        assert_eq!(kids, vec!["e", "q-0000000001"]);
        assert_eq!(code(c.delete("/a", -1).await), ErrorCode::NotEmpty);

        use jute::request::{MultiOp, MultiResult};
        let ok = c
            .multi(vec![
                MultiOp::Check(jute::CheckVersionRequest {
                    path: "/a".into(),
                    version: 1,
                }),
                MultiOp::SetData(jute::SetDataRequest {
                    path: "/a".into(),
                    data: Some(b"m".to_vec()),
                    version: -1,
                }),
            ])
            .await
            .unwrap();
        assert!(
            matches!(ok.value[..], [MultiResult::Check, MultiResult::SetData(_)]),
            "{ok:?}"
        );
        let bad = c
            .multi(vec![
                MultiOp::Check(jute::CheckVersionRequest {
                    path: "/a".into(),
                    version: 99,
                }),
                MultiOp::Delete(jute::DeleteRequest {
                    path: "/k".into(),
                    version: -1,
                }),
            ])
            .await;
        let results = match bad {
            Ok(r) => r.value,
            Err(e) => panic!("multi with a failing op: {e:?}"),
        };
        assert!(
            results
                .iter()
                .any(|r| *r == MultiResult::Error(ErrorCode::BadVersion.code())),
            "{results:?}"
        );
        assert!(
            c.exists("/k", false).await.unwrap().value.is_some(),
            "failed multi changed nothing"
        );
        assert_eq!(c.sync("/a").await.unwrap().value, "/a");
        c.delete("/a/q-0000000001", -1).await.unwrap();

        let closed = c.close().await.unwrap();
        assert!(closed.zxid > z1);
        assert_eq!(c.get_data("/a", false).await.unwrap_err(), ZkError::Closed);
        let (c2, _) = Client::connect(cfg(4000)).await.unwrap();
        assert_eq!(
            c2.exists("/a/e", false).await.unwrap().value,
            None,
            "ephemeral gone with its session"
        );
    });
}

#[test]
fn pipelined_requests_are_matched_in_order() {
    sim(2, |_, _| async {
        let (c, _ev) = Client::connect(cfg(4000)).await.unwrap();
        for i in 0..50 {
            c.create(
                &format!("/p{i}"),
                format!("v{i}").as_bytes(),
                CreateMode::Persistent,
            )
            .await
            .unwrap();
        }
        let t0 = Instant::now();
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let c = c.clone();
                tokio::spawn(async move { (i, c.get_data(&format!("/p{i}"), false).await) })
            })
            .collect();
        for h in handles {
            let (i, r) = h.await.unwrap();
            assert_eq!(r.unwrap().value.0.unwrap(), format!("v{i}").into_bytes());
        }
        let pipelined = t0.elapsed();
        let t1 = Instant::now();
        for i in 0..50 {
            c.get_data(&format!("/p{i}"), false).await.unwrap();
        }
        let one_by_one = t1.elapsed();
        assert!(
            pipelined * 3 < one_by_one,
            "not pipelined: {pipelined:?} vs {one_by_one:?} one at a time"
        );
    });
}

#[test]
fn watches_are_delivered_on_the_channel() {
    sim(3, |_, _| async {
        let (c, mut ev) = Client::connect(cfg(4000)).await.unwrap();
        let (other, _) = Client::connect(cfg(4000)).await.unwrap();
        assert_eq!(
            ev.recv().await,
            Some(ClientEvent::State(KeeperState::SyncConnected))
        );
        c.create("/w", b"", CreateMode::Persistent).await.unwrap();
        c.get_data("/w", true).await.unwrap();
        assert_eq!(c.exists("/later", true).await.unwrap().value, None);
        c.get_children("/w", true).await.unwrap();
        other.set_data("/w", b"1", -1).await.unwrap();
        other
            .create("/later", b"", CreateMode::Persistent)
            .await
            .unwrap();
        other
            .create("/w/kid", b"", CreateMode::Persistent)
            .await
            .unwrap();
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(
                timeout(Duration::from_secs(2), ev.recv())
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        assert_eq!(
            got,
            vec![
                ClientEvent::Watch {
                    event: EventType::NodeDataChanged,
                    path: "/w".into()
                },
                ClientEvent::Watch {
                    event: EventType::NodeCreated,
                    path: "/later".into()
                },
                ClientEvent::Watch {
                    event: EventType::NodeChildrenChanged,
                    path: "/w".into()
                },
            ]
        );
        // One-shot: a second change fires nothing.
        other.set_data("/w", b"2", -1).await.unwrap();
        assert!(timeout(Duration::from_millis(500), ev.recv())
            .await
            .is_err());
    });
}

#[test]
fn pings_keep_an_idle_session_alive() {
    sim(4, |_, _| async {
        let (c, _ev) = Client::connect(cfg(1500)).await.unwrap();
        let id = c.session_id();
        sleep(Duration::from_secs(10)).await;
        c.create("/alive", b"", CreateMode::Ephemeral)
            .await
            .unwrap();
        assert_eq!(c.session_id(), id);
    });
}

#[test]
fn partition_gives_unknown_then_the_session_reconnects() {
    sim(5, |server, _| async move {
        let (c, _ev) = Client::connect(cfg(6000)).await.unwrap();
        let id = c.session_id();
        c.create("/x", b"0", CreateMode::Persistent).await.unwrap();
        let net = madsim::net::NetSim::current();
        let me = madsim::plugin::node();
        net.clog_link(me, server.id());
        net.clog_link(server.id(), me);
        let t0 = Instant::now();
        let r = c.set_data("/x", b"1", -1).await;
        assert!(r.as_ref().unwrap_err().is_indeterminate(), "{r:?}");
        assert!(
            t0.elapsed() <= Duration::from_millis(1_100),
            "no hang: {:?}",
            t0.elapsed()
        );
        sleep(Duration::from_millis(2_000)).await;
        net.unclog_link(me, server.id());
        net.unclog_link(server.id(), me);
        sleep(Duration::from_millis(1_500)).await;
        let g = c.get_data("/x", false).await.unwrap();
        assert_eq!(c.session_id(), id, "same session after reconnect");
        assert!(c.session().last_zxid_seen >= g.zxid);
    });
}

#[test]
fn expiry_is_surfaced_as_an_error_and_an_event() {
    sim(6, |server, _| async move {
        let (c, mut ev) = Client::connect(cfg(1500)).await.unwrap();
        c.create("/eph", b"", CreateMode::Ephemeral).await.unwrap();
        let net = madsim::net::NetSim::current();
        let me = madsim::plugin::node();
        net.clog_link(me, server.id());
        net.clog_link(server.id(), me);
        sleep(Duration::from_secs(5)).await;
        net.unclog_link(me, server.id());
        net.unclog_link(server.id(), me);
        sleep(Duration::from_secs(2)).await;
        assert_eq!(
            c.get_data("/eph", false).await.unwrap_err(),
            ZkError::SessionExpired
        );
        let mut states = Vec::new();
        while let Ok(e) = ev.try_recv() {
            states.push(e);
        }
        assert!(
            states.contains(&ClientEvent::State(KeeperState::Expired)),
            "{states:?}"
        );
        let (c2, _) = Client::connect(cfg(1500)).await.unwrap();
        assert_eq!(c2.exists("/eph", false).await.unwrap().value, None);
    });
}

#[test]
fn session_survives_a_server_restart() {
    sim(7, |server, disk| async move {
        let (c, _ev) = Client::connect(cfg(8000)).await.unwrap();
        let id = c.session_id();
        let w = c
            .create("/durable", b"d", CreateMode::Persistent)
            .await
            .unwrap();
        let h = Handle::current();
        h.kill(server.id());
        disk.mem().crash(None);
        sleep(Duration::from_millis(500)).await;
        h.restart(server.id());
        sleep(Duration::from_millis(2_000)).await;
        let g = c.get_data("/durable", false).await.unwrap();
        assert_eq!(g.value.0.unwrap(), b"d");
        assert!(g.zxid >= w.zxid);
        assert_eq!(c.session_id(), id);
    });
}

#[test]
fn persistent_watches_survive_a_restart_and_the_trace_says_so() {
    sim(8, |server, disk| async move {
        let mut c = cfg(8000);
        c.trace = true;
        let (c, mut ev) = Client::connect(c).await.unwrap();
        let (other, _) = Client::connect(cfg(8000)).await.unwrap();
        for p in ["/p", "/r", "/q"] {
            c.create(p, b"", CreateMode::Persistent).await.unwrap();
        }
        c.add_watch("/p", false).await.unwrap();
        c.add_watch("/r", true).await.unwrap();
        let d = c.get_data("/q", true).await.unwrap();
        // The restart drops every watch on the server; SetWatches2 brings
        // them back (nothing changed meanwhile: no replay).
        let h = Handle::current();
        h.kill(server.id());
        disk.mem().crash(None);
        sleep(Duration::from_millis(500)).await;
        h.restart(server.id());
        sleep(Duration::from_millis(3_000)).await;
        other
            .create("/p/x", b"", CreateMode::Persistent)
            .await
            .unwrap();
        other
            .create("/r/y", b"", CreateMode::Persistent)
            .await
            .unwrap();
        for p in ["/q", "/q", "/p", "/r"] {
            other.set_data(p, b"1", -1).await.unwrap();
        }
        c.exists("/p", false).await.unwrap();
        let mut trace = Vec::new();
        while let Ok(Some(e)) = timeout(Duration::from_millis(200), ev.recv()).await {
            if let ClientEvent::Trace(t) = e {
                trace.push((t.conn, t.what));
            }
        }
        use sim::client::{TraceKind as K, WatchKind as W};
        let added: Vec<W> = trace
            .iter()
            .filter_map(|(_, w)| match w {
                K::WatchAdded { kind, zxid, .. } => {
                    assert!(*zxid <= d.zxid);
                    Some(*kind)
                }
                _ => None,
            })
            .collect();
        assert_eq!(added, vec![W::Persistent, W::PersistentRecursive, W::Data]);
        assert!(
            trace.iter().any(|(n, w)| *n == 2
                && matches!(w, K::Connected { set_watches: true, server } if !server.is_empty())),
            "{trace:?}"
        );
        assert!(
            trace
                .iter()
                .any(|(n, w)| *n == 2 && matches!(w, K::WatchesRestored { err: 0, .. })),
            "{trace:?}"
        );
        let events: Vec<(EventType, String)> = trace
            .into_iter()
            .filter_map(|(n, w)| match w {
                K::Event { event, path } if n == 2 => Some((event, path)),
                _ => None,
            })
            .collect();
        // Persistent /p: its children and data; recursive /r: the created
        // descendant and its data, never NodeChildrenChanged; one-shot /q:
        // the first change only.
        assert_eq!(
            events,
            vec![
                (EventType::NodeChildrenChanged, "/p".into()),
                (EventType::NodeCreated, "/r/y".into()),
                (EventType::NodeDataChanged, "/q".into()),
                (EventType::NodeDataChanged, "/p".into()),
                (EventType::NodeDataChanged, "/r".into()),
            ]
        );
    });
}
