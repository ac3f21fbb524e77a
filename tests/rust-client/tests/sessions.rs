#![cfg(not(madsim))]
//! Sessions and reconnects with the Rust `zookeeper-client` 0.11: session
//! timeout negotiation and pings, close (-11), expiry seen by the client,
//! resuming a session by id, and reconnects that
//! re-register watches with SetWatches (101, xid -8) so that changes made
//! while the client was away are delivered.

use std::time::Duration;

use interop_rust_client::zk::{Acls, Client, CreateMode, Error, EventType, SessionState};
use interop_rust_client::{
    bounded, connect_to, eventually, fired, ours_only, wait_state, Env, Proxy, EVENT_TIMEOUT,
};

fn all() -> zookeeper_client::CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_timeout_pings_and_close() {
    bounded(async {
        let env = Env::new("session").await;
        let min = env.opts.tick_ms as u64 * 2;
        let max = env.opts.tick_ms as u64 * 20;
        let (min, max) = if env.is_external() {
            (4000, 40000)
        } else {
            (min, max)
        };

        // The negotiated timeout is clamped to [min, max].
        let short = connect_to(&env.addr, Duration::from_millis(min / 2)).await;
        assert_eq!(short.session_timeout(), Duration::from_millis(min));
        let long = connect_to(&env.addr, Duration::from_millis(max * 2)).await;
        assert_eq!(long.session_timeout(), Duration::from_millis(max));
        drop(long);

        // An idle client keeps its session alive with pings for several timeouts.
        let e = env.path("e");
        short
            .create(
                &e,
                b"",
                &CreateMode::Ephemeral.with_acls(Acls::anyone_all()),
            )
            .await
            .unwrap();
        let mut state = short.state_watcher();
        tokio::time::sleep(Duration::from_millis(min * 3)).await;
        assert_eq!(state.state(), SessionState::SyncConnected);
        let (_, st) = short.get_data(&e).await.unwrap();
        assert_eq!(st.ephemeral_owner, short.session_id().0);

        // Dropping the last handle closes the session (-11): its ephemerals go at once.
        let observer = env.connect().await;
        let (_, watcher) = observer.check_and_watch_stat(&e).await.unwrap();
        drop(short);
        let ev = tokio::time::timeout(
            Duration::from_millis(min / 2).max(Duration::from_secs(1)),
            watcher.changed(),
        )
        .await
        .expect("ephemeral not deleted promptly on close");
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::NodeDeleted, e.as_str())
        );
        assert_eq!(observer.check_stat(&e).await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_is_seen_by_the_client() {
    bounded(async {
        let env = Env::new("expiry").await;
        let proxy = Proxy::start(&env.addr).await;
        let timeout = Duration::from_millis(if env.is_external() { 4000 } else { 1000 });
        let c = connect_to(&proxy.addr, timeout).await;
        assert_eq!(c.session_timeout(), timeout);
        let observer = env.connect().await;
        let e = env.path("e");
        c.create(
            &e,
            b"",
            &CreateMode::Ephemeral.with_acls(Acls::anyone_all()),
        )
        .await
        .unwrap();
        let (_, _, data_watch) = c.get_and_watch_data(&e).await.unwrap();
        let (_, gone) = observer.check_and_watch_stat(&e).await.unwrap();
        let mut state = c.state_watcher();

        // Cut the client off; the server expires the session and deletes its ephemeral.
        proxy.cut();
        wait_state(&mut state, SessionState::Disconnected).await;
        let ev = tokio::time::timeout(timeout * 3 + EVENT_TIMEOUT, gone.changed())
            .await
            .expect("the server did not expire the session");
        assert_eq!(ev.event_type, EventType::NodeDeleted);
        // Let the client in again: it learns that its session expired.
        proxy.resume();
        wait_state(&mut state, SessionState::Expired).await;
        // Its watchers get the terminal session event.
        let ev = fired(data_watch).await;
        assert_eq!(
            (ev.event_type, ev.session_state),
            (EventType::Session, SessionState::Expired)
        );
        assert_eq!(c.get_data(&e).await.unwrap_err(), Error::SessionExpired);
        assert_eq!(observer.check_stat(&e).await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_session_id_is_refused() {
    bounded(async {
        let env = Env::new("expired-id").await;
        // A detached session: dropping the client does not close it.
        let timeout = Duration::from_millis(if env.is_external() { 4000 } else { 1000 });
        let c = env
            .connect_with(
                Client::connector()
                    .with_session_timeout(timeout)
                    .with_detached(),
            )
            .await;
        let e = env.path("e");
        c.create(
            &e,
            b"",
            &CreateMode::Ephemeral.with_acls(Acls::anyone_all()),
        )
        .await
        .unwrap();
        let session = c.session().clone();
        // Resuming a live session from another client works (same id).
        drop(c);
        let again = env
            .connect_with(
                Client::connector()
                    .with_session(session.clone())
                    .with_detached(),
            )
            .await;
        assert_eq!(again.session_id(), session.id());
        assert_eq!(
            again.get_data(&e).await.unwrap().1.ephemeral_owner,
            session.id().0
        );
        drop(again);
        // Once expired, the id is refused: the connect response has session id 0.
        let observer = env.connect().await;
        eventually(
            "the detached session expires",
            timeout * 3 + EVENT_TIMEOUT,
            || async { observer.check_stat(&e).await.unwrap().is_none() },
        )
        .await;
        let err = tokio::time::timeout(
            EVENT_TIMEOUT,
            Client::connector().with_session(session).connect(&env.addr),
        )
        .await
        .expect("connect with an expired session timed out")
        .unwrap_err();
        assert_eq!(err, Error::SessionExpired);
    })
    .await;
}

/// Set one-shot watches of every kind, make changes while the client is cut
/// off, and check that on reconnect (SetWatches, xid -8) the client gets the
/// events for what it missed and that the untouched watches still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_replays_missed_events() {
    bounded(async {
        let env = Env::new("reconnect").await;
        let proxy = Proxy::start(&env.addr).await;
        let c = connect_to(&proxy.addr, Duration::from_secs(4)).await;
        let w = env.connect().await;
        let sid = c.session_id();
        let p = |s: &str| env.path(s);
        for n in [
            "data",
            "child",
            "gone",
            "gone-child",
            "stable",
            "stable-child",
        ] {
            w.create(&p(n), b"", &all()).await.unwrap();
        }
        let e = p("eph");
        c.create(
            &e,
            b"",
            &CreateMode::Ephemeral.with_acls(Acls::anyone_all()),
        )
        .await
        .unwrap();
        let (_, _, data_w) = c.get_and_watch_data(&p("data")).await.unwrap();
        let (_, exist_w) = c.check_and_watch_stat(&p("new")).await.unwrap();
        let (_, _, child_w) = c.get_and_watch_children(&p("child")).await.unwrap();
        let (_, _, gone_w) = c.get_and_watch_data(&p("gone")).await.unwrap();
        let (_, gone_child_w) = c.list_and_watch_children(&p("gone-child")).await.unwrap();
        let (_, _, stable_w) = c.get_and_watch_data(&p("stable")).await.unwrap();
        let (_, stable_exist_w) = c.check_and_watch_stat(&p("stable-new")).await.unwrap();
        let (_, _, stable_child_w) = c.get_and_watch_children(&p("stable-child")).await.unwrap();
        let mut state = c.state_watcher();

        proxy.cut();
        wait_state(&mut state, SessionState::Disconnected).await;
        w.set_data(&p("data"), b"1", None).await.unwrap();
        w.create(&p("new"), b"", &all()).await.unwrap();
        w.create(&p("child/k"), b"", &all()).await.unwrap();
        w.delete(&p("gone"), None).await.unwrap();
        w.delete(&p("gone-child"), None).await.unwrap();
        proxy.resume();
        wait_state(&mut state, SessionState::SyncConnected).await;
        assert_eq!(c.session_id(), sid);

        let ev = fired(data_w).await;
        assert_eq!(
            (ev.event_type, ev.path),
            (EventType::NodeDataChanged, p("data"))
        );
        let ev = fired(exist_w).await;
        assert_eq!((ev.event_type, ev.path), (EventType::NodeCreated, p("new")));
        let ev = fired(child_w).await;
        assert_eq!(
            (ev.event_type, ev.path),
            (EventType::NodeChildrenChanged, p("child"))
        );
        let ev = fired(gone_w).await;
        assert_eq!(
            (ev.event_type, ev.path),
            (EventType::NodeDeleted, p("gone"))
        );
        let ev = fired(gone_child_w).await;
        assert_eq!(
            (ev.event_type, ev.path),
            (EventType::NodeDeleted, p("gone-child"))
        );

        // The untouched watches were re-registered and fire on later changes.
        w.set_data(&p("stable"), b"1", None).await.unwrap();
        w.create(&p("stable-new"), b"", &all()).await.unwrap();
        w.create(&p("stable-child/k"), b"", &all()).await.unwrap();
        assert_eq!(fired(stable_w).await.event_type, EventType::NodeDataChanged);
        assert_eq!(
            fired(stable_exist_w).await.event_type,
            EventType::NodeCreated
        );
        assert_eq!(
            fired(stable_child_w).await.event_type,
            EventType::NodeChildrenChanged
        );

        // Same session: the ephemeral is still ours.
        assert_eq!(c.get_data(&e).await.unwrap().1.ephemeral_owner, sid.0);
    })
    .await;
}

/// Our server restarts (same data directory) while a client is connected:
/// the session and its ephemeral survive, and the client reconnects and
/// gets the events for changes made while it was away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_keeps_session_and_watches() {
    bounded(async {
        let mut env = Env::with_opts(
            "restart",
            interop_rust_client::ServerOpts::default().line("maxSessionTimeout=10000"),
        )
        .await;
        ours_only!(env, "restarts our in-process server");
        let port = env.port();
        let c = connect_to(&env.addr, Duration::from_secs(10)).await;
        let sid = c.session_id();
        let (d, k, e) = (env.path("d"), env.path("k"), env.path("e"));
        c.create(&d, b"0", &all()).await.unwrap();
        c.create(&k, b"", &all()).await.unwrap();
        c.create(
            &e,
            b"",
            &CreateMode::Ephemeral.with_acls(Acls::anyone_all()),
        )
        .await
        .unwrap();
        let (_, _, data_w) = c.get_and_watch_data(&d).await.unwrap();
        let (_, _, child_w) = c.get_and_watch_children(&k).await.unwrap();
        let (_, _, eph_w) = c.get_and_watch_data(&e).await.unwrap();
        let mut state = c.state_watcher();

        // Stop, then change things through the same data on another port.
        env.stop_server();
        wait_state(&mut state, SessionState::Disconnected).await;
        let side = env.start_server(Some(env.free_port())).await;
        {
            let w = connect_to(&format!("127.0.0.1:{side}"), Duration::from_secs(4)).await;
            assert_eq!(w.get_data(&e).await.unwrap().1.ephemeral_owner, sid.0);
            w.set_data(&d, b"1", None).await.unwrap();
            w.create(&format!("{k}/x"), b"", &all()).await.unwrap();
        }
        env.stop_server();
        // Back on the original port: the client reconnects to the same session.
        env.start_server(Some(port)).await;
        wait_state(&mut state, SessionState::SyncConnected).await;
        assert_eq!(c.session_id(), sid);
        let ev = fired(data_w).await;
        assert_eq!(
            (ev.event_type, ev.path),
            (EventType::NodeDataChanged, d.clone())
        );
        let ev = fired(child_w).await;
        assert_eq!(
            (ev.event_type, ev.path),
            (EventType::NodeChildrenChanged, k.clone())
        );
        assert_eq!(c.get_data(&d).await.unwrap().0, b"1");
        // The ephemeral survived and its watch was re-registered.
        let w = env.connect().await;
        w.set_data(&e, b"x", None).await.unwrap();
        assert_eq!(fired(eph_w).await.event_type, EventType::NodeDataChanged);
        assert_eq!(c.get_data(&e).await.unwrap().1.ephemeral_owner, sid.0);
    })
    .await;
}
