#![cfg(not(madsim))]
//! Watches as the Rust `zookeeper-client` 0.11 uses them: one-shot watches
//! set by getData / exists / getChildren(2), persistent and
//! persistent-recursive watches (addWatch 106), and their removal
//! (removeWatches 18, sent when a watcher is removed or dropped).

use std::time::Duration;

use interop_rust_client::zk::{Acls, AddWatchMode, CreateMode, EventType, SessionState};
use interop_rust_client::{bounded, eventually, fired, next_event, no_event, Env};

fn all() -> zookeeper_client::CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oneshot_watches() {
    bounded(async {
        let env = Env::new("oneshot").await;
        let c = env.connect().await;
        let w = env.connect().await; // makes the changes
        let n = env.path("n");
        c.create(&n, b"0", &all()).await.unwrap();

        // getData watch: NodeDataChanged.
        let (data, _, watcher) = c.get_and_watch_data(&n).await.unwrap();
        assert_eq!(data, b"0");
        w.set_data(&n, b"1", None).await.unwrap();
        let ev = fired(watcher).await;
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::NodeDataChanged, n.as_str())
        );
        assert_eq!(ev.session_state, SessionState::SyncConnected);

        // exists watch on a missing node: NodeCreated.
        let m = env.path("m");
        let (stat, watcher) = c.check_and_watch_stat(&m).await.unwrap();
        assert_eq!(stat, None);
        w.create(&m, b"", &all()).await.unwrap();
        let ev = fired(watcher).await;
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::NodeCreated, m.as_str())
        );

        // exists watch on an existing node: NodeDataChanged, then a fresh one: NodeDeleted.
        let (stat, watcher) = c.check_and_watch_stat(&m).await.unwrap();
        assert!(stat.is_some());
        w.set_data(&m, b"x", None).await.unwrap();
        assert_eq!(fired(watcher).await.event_type, EventType::NodeDataChanged);
        let (_, watcher) = c.check_and_watch_stat(&m).await.unwrap();
        w.delete(&m, None).await.unwrap();
        let ev = fired(watcher).await;
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::NodeDeleted, m.as_str())
        );

        // getChildren2 (12) watch: NodeChildrenChanged on create and on delete.
        let (kids, _, watcher) = c.get_and_watch_children(&n).await.unwrap();
        assert!(kids.is_empty());
        w.create(&format!("{n}/k"), b"", &all()).await.unwrap();
        let ev = fired(watcher).await;
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::NodeChildrenChanged, n.as_str())
        );
        // getChildren (8) watch.
        let (kids, watcher) = c.list_and_watch_children(&n).await.unwrap();
        assert_eq!(kids, ["k"]);
        w.delete(&format!("{n}/k"), None).await.unwrap();
        assert_eq!(
            fired(watcher).await.event_type,
            EventType::NodeChildrenChanged
        );
        // A child watch does not fire on the node's data change; it does on its deletion.
        let (_, _, child_w) = c.get_and_watch_children(&n).await.unwrap();
        let (_, _, data_w) = c.get_and_watch_data(&n).await.unwrap();
        w.set_data(&n, b"2", None).await.unwrap();
        assert_eq!(fired(data_w).await.event_type, EventType::NodeDataChanged);
        let (_, _, data_w) = c.get_and_watch_data(&n).await.unwrap();
        w.delete(&n, None).await.unwrap();
        let ev = fired(data_w).await;
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::NodeDeleted, n.as_str())
        );
        let ev = fired(child_w).await;
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::NodeDeleted, n.as_str())
        );

        // Watches on missing nodes via getData/getChildren: NoNode, no watch.
        assert_eq!(
            c.get_and_watch_data(&n).await.unwrap_err(),
            zookeeper_client::Error::NoNode
        );
        assert_eq!(
            c.get_and_watch_children(&n).await.unwrap_err(),
            zookeeper_client::Error::NoNode
        );

        // One-shot: after firing, the server holds no watch for this client.
        let p = env.path("p");
        c.create(&p, b"", &all()).await.unwrap();
        let (_, _, watcher) = c.get_and_watch_data(&p).await.unwrap();
        w.set_data(&p, b"1", None).await.unwrap();
        fired(watcher).await;
        assert!(env.data_watches(c.session_id().0).await.is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_watch() {
    bounded(async {
        let env = Env::new("persistent").await;
        let c = env.connect().await;
        let w = env.connect().await;
        let p = env.path("p");
        // addWatch (106) PERSISTENT on a node that does not exist yet.
        let mut watcher = c.watch(&p, AddWatchMode::Persistent).await.unwrap();
        w.create(&p, b"", &all()).await.unwrap();
        let ev = next_event(&mut watcher).await;
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::NodeCreated, p.as_str())
        );
        w.create(&format!("{p}/c"), b"", &all()).await.unwrap();
        let ev = next_event(&mut watcher).await;
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::NodeChildrenChanged, p.as_str())
        );
        w.set_data(&p, b"1", None).await.unwrap();
        let ev = next_event(&mut watcher).await;
        assert_eq!(ev.event_type, EventType::NodeDataChanged);
        // Not recursive: nothing for the child's own changes or grandchildren.
        w.set_data(&format!("{p}/c"), b"1", None).await.unwrap();
        w.create(&format!("{p}/c/g"), b"", &all()).await.unwrap();
        no_event(&mut watcher, QUIET).await;
        // It keeps firing (not one-shot), and survives the node's deletion.
        w.set_data(&p, b"2", None).await.unwrap();
        assert_eq!(
            next_event(&mut watcher).await.event_type,
            EventType::NodeDataChanged
        );
        w.delete(&format!("{p}/c/g"), None).await.unwrap();
        w.delete(&format!("{p}/c"), None).await.unwrap();
        let ev = next_event(&mut watcher).await;
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::NodeChildrenChanged, p.as_str())
        );
        w.delete(&p, None).await.unwrap();
        let ev = next_event(&mut watcher).await;
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::NodeDeleted, p.as_str())
        );
        w.create(&p, b"", &all()).await.unwrap();
        assert_eq!(
            next_event(&mut watcher).await.event_type,
            EventType::NodeCreated
        );
        no_event(&mut watcher, QUIET).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_recursive_watch() {
    bounded(async {
        let env = Env::new("recursive").await;
        let c = env.connect().await;
        let w = env.connect().await;
        let r = env.path("r");
        let mut watcher = c
            .watch(&r, AddWatchMode::PersistentRecursive)
            .await
            .unwrap();
        w.create(&r, b"", &all()).await.unwrap();
        let x = format!("{r}/x");
        let y = format!("{r}/x/y");
        w.create(&x, b"", &all()).await.unwrap();
        w.create(&y, b"", &all()).await.unwrap();
        w.set_data(&y, b"1", None).await.unwrap();
        w.set_data(&r, b"1", None).await.unwrap();
        w.delete(&y, None).await.unwrap();
        // A sibling outside the subtree with a common string prefix.
        w.create(&format!("{r}x"), b"", &all()).await.unwrap();
        let mut got = Vec::new();
        for _ in 0..6 {
            let ev = next_event(&mut watcher).await;
            got.push((ev.event_type, ev.path));
        }
        assert_eq!(
            got,
            [
                (EventType::NodeCreated, r.clone()),
                (EventType::NodeCreated, x.clone()),
                (EventType::NodeCreated, y.clone()),
                (EventType::NodeDataChanged, y.clone()),
                (EventType::NodeDataChanged, r.clone()),
                (EventType::NodeDeleted, y.clone()),
            ]
        );
        // Never NodeChildrenChanged, nothing outside the subtree.
        no_event(&mut watcher, QUIET).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_removal() {
    bounded(async {
        let env = Env::new("removal").await;
        let c = env.connect().await;
        let w = env.connect().await;
        let sid = c.session_id().0;
        let (o, p, q) = (env.path("o"), env.path("p"), env.path("q"));
        for n in [&o, &p, &q] {
            w.create(n, b"", &all()).await.unwrap();
        }
        // The server's data-table watches of `c`, from the `wchp` 4lw.
        let watches = || env.data_watches(sid);

        let pw = c.watch(&p, AddWatchMode::Persistent).await.unwrap();
        let rw = c
            .watch(&q, AddWatchMode::PersistentRecursive)
            .await
            .unwrap();
        let (_, _, ow) = c.get_and_watch_data(&o).await.unwrap();
        assert_eq!(watches().await, [o.clone(), p.clone(), q.clone()]);

        // Removing a persistent watcher: removeWatches(p, Any) (18) succeeds.
        #[allow(deprecated)]
        pw.remove().await.unwrap();
        assert_eq!(watches().await, [o.clone(), q.clone()]);
        // Removing a one-shot data watcher.
        #[allow(deprecated)]
        ow.remove().await.unwrap();
        assert_eq!(watches().await, std::slice::from_ref(&q));
        // Dropping the last watcher of a path removes it too (not awaited).
        drop(rw);
        eventually(
            "the dropped watcher is removed on the server",
            Duration::from_secs(5),
            || async { watches().await.is_empty() },
        )
        .await;

        // A new watcher on a path whose watch was removed works.
        let (_, _, again) = c.get_and_watch_data(&p).await.unwrap();
        w.set_data(&p, b"1", None).await.unwrap();
        assert_eq!(fired(again).await.event_type, EventType::NodeDataChanged);

        // Removing a child watch while a data watch on the same node stays:
        // removeWatches(p, Children); the data watch still fires.
        let (_, _, cw) = c.get_and_watch_children(&p).await.unwrap();
        let (_, _, dw) = c.get_and_watch_data(&p).await.unwrap();
        #[allow(deprecated)]
        cw.remove().await.unwrap();
        assert_eq!(watches().await, std::slice::from_ref(&p));
        w.create(&format!("{p}/k"), b"", &all()).await.unwrap();
        w.set_data(&p, b"2", None).await.unwrap();
        assert_eq!(fired(dw).await.event_type, EventType::NodeDataChanged);
        assert!(watches().await.is_empty());
    })
    .await;
}
