#![cfg(not(madsim))]
//! Plain operations as the Rust `zookeeper-client` 0.11 sends them: create2
//! (15) in every mode, createContainer (19), createTTL (21), getData, setData,
//! delete, exists, getChildren (8), getChildren2 (12), getAllChildrenNumber
//! (104), getEphemerals (103), getACL, multi (14), multiRead (22), sync (9).

use interop_rust_client::zk::{
    Acls, CreateMode, Error, MultiReadResult, MultiWriteError, MultiWriteResult,
};
use interop_rust_client::{bounded, ours_only, Env, ServerOpts};
use std::time::Duration;

fn all() -> zookeeper_client::CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_in_every_mode() {
    bounded(async {
        let env = Env::new("create").await;
        let c = env.connect().await;
        let sid = c.session_id().0;

        // Persistent, via create2: the reply carries the new node's Stat.
        let p = env.path("p");
        let (st, seq) = c.create(&p, b"hello", &all()).await.unwrap();
        assert_eq!(seq.into_i64(), -1);
        assert!(
            st.czxid > 0 && st.czxid == st.mzxid && st.czxid == st.pzxid,
            "{st:?}"
        );
        assert_eq!((st.version, st.cversion, st.aversion), (0, 0, 0));
        assert_eq!(
            (st.ephemeral_owner, st.data_length, st.num_children),
            (0, 5, 0)
        );
        assert!(st.ctime > 0 && st.ctime == st.mtime);
        let (data, st2) = c.get_data(&p).await.unwrap();
        assert_eq!((data.as_slice(), st2), (&b"hello"[..], st));

        // Ephemeral: owned by this session.
        let e = env.path("e");
        let (st, _) = c
            .create(
                &e,
                b"",
                &CreateMode::Ephemeral.with_acls(Acls::anyone_all()),
            )
            .await
            .unwrap();
        assert_eq!(st.ephemeral_owner, sid);
        // No children under an ephemeral.
        assert_eq!(
            c.create(&format!("{e}/x"), b"", &all()).await.unwrap_err(),
            Error::NoChildrenForEphemerals
        );

        // Sequential: the suffix is the parent's cversion, 10 digits.
        let dir = env.path("seq");
        c.create(&dir, b"", &all()).await.unwrap();
        let mut prev = None;
        for mode in [
            CreateMode::PersistentSequential,
            CreateMode::EphemeralSequential,
            CreateMode::PersistentSequential,
        ] {
            let (_, parent) = c.get_data(&dir).await.unwrap();
            let prefix = format!("{dir}/n-");
            let (st, seq) = c
                .create(&prefix, b"", &mode.with_acls(Acls::anyone_all()))
                .await
                .unwrap();
            assert_eq!(seq.into_i64(), parent.cversion as i64);
            assert_eq!(seq.to_string().len(), 10);
            let name = format!("n-{seq}");
            assert!(c.list_children(&dir).await.unwrap().contains(&name));
            let owner = if mode == CreateMode::EphemeralSequential {
                sid
            } else {
                0
            };
            assert_eq!(st.ephemeral_owner, owner);
            // A non-sequential sibling bumps cversion too.
            c.create(&format!("{dir}/plain-{seq}"), b"", &all())
                .await
                .unwrap();
            if let Some(p) = prev {
                assert_eq!(seq.into_i64(), p + 2);
            }
            prev = Some(seq.into_i64());
        }

        // Container (opcode 19). The server stores ephemeralOwner i64::MIN,
        // but clients see 0 (DataNode.copyStat exposes only session owners).
        let k = env.path("container");
        let (st, _) = c
            .create(
                &k,
                b"k",
                &CreateMode::Container.with_acls(Acls::anyone_all()),
            )
            .await
            .unwrap();
        assert_eq!(st.ephemeral_owner, 0, "{st:?}");
        assert_eq!(c.get_data(&k).await.unwrap(), (b"k".to_vec(), st));
        c.create(&format!("{k}/child"), b"", &all()).await.unwrap();
        assert_eq!(
            c.list_children(&k).await.unwrap(),
            vec!["child".to_string()]
        );

        // Errors.
        assert_eq!(
            c.create(&p, b"", &all()).await.unwrap_err(),
            Error::NodeExists
        );
        assert_eq!(
            c.create(&env.path("missing/x"), b"", &all())
                .await
                .unwrap_err(),
            Error::NoNode
        );
        assert_eq!(
            c.create(
                &env.path("noacl"),
                b"",
                &CreateMode::Persistent.with_acls(Acls::new(&[]))
            )
            .await
            .unwrap_err(),
            Error::InvalidAcl,
            "rejected client-side"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_nodes_need_extended_types() {
    bounded(async {
        let env = Env::new("ttl-off").await;
        ours_only!(
            env,
            "the external server's extendedTypesEnabled is not known"
        );
        let c = env.connect().await;
        let opts = CreateMode::Persistent
            .with_acls(Acls::anyone_all())
            .with_ttl(Duration::from_secs(60));
        assert_eq!(
            c.create(&env.path("t"), b"", &opts).await.unwrap_err(),
            Error::Unimplemented
        );
        assert_eq!(c.check_stat(&env.path("t")).await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_nodes() {
    bounded(async {
        let env = Env::with_opts(
            "ttl",
            ServerOpts::default().line("extendedTypesEnabled=true"),
        )
        .await;
        if env.is_external() && std::env::var("ZK_EXTERNAL_TTL").is_err() {
            eprintln!("skipped: set ZK_EXTERNAL_TTL=1 if the external server has extended types");
            return;
        }
        let c = env.connect().await;
        let ttl = Duration::from_millis(60_000);
        // createTTL (21). Stored ephemeralOwner is 0xFF << 56 | ttl, but
        // clients see 0, as for containers.
        let (st, seq) = c
            .create(
                &env.path("t"),
                b"ttl",
                &CreateMode::Persistent
                    .with_acls(Acls::anyone_all())
                    .with_ttl(ttl),
            )
            .await
            .unwrap();
        assert_eq!(seq.into_i64(), -1);
        assert_eq!(st.ephemeral_owner, 0, "{st:?}");
        assert_eq!(st.data_length, 3);
        assert_eq!(c.get_data(&env.path("t")).await.unwrap().1, st);
        let (st, seq) = c
            .create(
                &env.path("ts-"),
                b"",
                &CreateMode::PersistentSequential
                    .with_acls(Acls::anyone_all())
                    .with_ttl(ttl),
            )
            .await
            .unwrap();
        assert_eq!(st.ephemeral_owner, 0);
        let (_, got) = c.get_data(&env.path(&format!("ts-{seq}"))).await.unwrap();
        assert_eq!(got, st);
        // A TTL node still takes children and data like a persistent one.
        c.create(&env.path("t/c"), b"", &all()).await.unwrap();
        c.set_data(&env.path("t"), b"x", Some(0)).await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_versions_and_delete() {
    bounded(async {
        let env = Env::new("data").await;
        let c = env.connect().await;
        let n = env.path("n");
        let (created, _) = c.create(&n, b"v0", &all()).await.unwrap();

        let st = c.set_data(&n, b"v1", Some(0)).await.unwrap();
        assert_eq!(st.version, 1);
        assert_eq!(st.czxid, created.czxid);
        assert!(st.mzxid > created.mzxid);
        assert_eq!(st.data_length, 2);
        assert_eq!(
            c.set_data(&n, b"v2", Some(0)).await.unwrap_err(),
            Error::BadVersion
        );
        let st = c.set_data(&n, b"", None).await.unwrap();
        assert_eq!((st.version, st.data_length), (2, 0));
        let (data, got) = c.get_data(&n).await.unwrap();
        assert!(data.is_empty());
        assert_eq!(got, st);

        assert_eq!(c.check_stat(&n).await.unwrap(), Some(st));
        assert_eq!(c.check_stat(&env.path("none")).await.unwrap(), None);
        assert_eq!(
            c.get_data(&env.path("none")).await.unwrap_err(),
            Error::NoNode
        );
        assert_eq!(
            c.set_data(&env.path("none"), b"", None).await.unwrap_err(),
            Error::NoNode
        );

        // A large value (just under 1 MiB would be the limit; 512 KiB is fine).
        let big = vec![7u8; 512 * 1024];
        c.set_data(&n, &big, None).await.unwrap();
        assert_eq!(c.get_data(&n).await.unwrap().0, big);

        c.create(&env.path("n/child"), b"", &all()).await.unwrap();
        assert_eq!(c.delete(&n, None).await.unwrap_err(), Error::NotEmpty);
        assert_eq!(
            c.delete(&env.path("n/child"), Some(5)).await.unwrap_err(),
            Error::BadVersion
        );
        c.delete(&env.path("n/child"), Some(0)).await.unwrap();
        c.delete(&n, Some(3)).await.unwrap();
        assert_eq!(c.delete(&n, None).await.unwrap_err(), Error::NoNode);
        assert_eq!(c.check_stat(&n).await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_counts_ephemerals_acl() {
    bounded(async {
        let env = Env::new("children").await;
        let c = env.connect().await;
        let other = env.connect().await;
        let d = env.path("d");
        c.create(&d, b"", &all()).await.unwrap();
        for x in ["a", "b", "c"] {
            c.create(&format!("{d}/{x}"), b"", &all()).await.unwrap();
        }
        c.create(&format!("{d}/a/deep"), b"", &all()).await.unwrap();
        let eph = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
        c.create(&format!("{d}/e1"), b"", &eph).await.unwrap();
        c.create(&format!("{d}/a/e2"), b"", &eph).await.unwrap();
        other
            .create(&format!("{d}/theirs"), b"", &eph)
            .await
            .unwrap();

        // getChildren (8).
        let mut kids = c.list_children(&d).await.unwrap();
        kids.sort();
        assert_eq!(kids, ["a", "b", "c", "e1", "theirs"]);
        // getChildren2 (12): children plus the parent's Stat.
        let (mut kids2, st) = c.get_children(&d).await.unwrap();
        kids2.sort();
        assert_eq!(kids2, kids);
        assert_eq!(st.num_children, 5);
        assert_eq!(st.cversion, 5);
        let (_, st_d) = c.get_data(&d).await.unwrap();
        assert_eq!(st, st_d);
        assert_eq!(
            c.list_children(&env.path("none")).await.unwrap_err(),
            Error::NoNode
        );
        assert_eq!(
            c.get_children(&env.path("none")).await.unwrap_err(),
            Error::NoNode
        );
        assert!(c.list_children(&format!("{d}/b")).await.unwrap().is_empty());

        // getAllChildrenNumber (104): every descendant, not the node itself.
        assert_eq!(c.count_descendants_number(&d).await.unwrap(), 7);
        assert_eq!(
            c.count_descendants_number(&format!("{d}/a")).await.unwrap(),
            2
        );
        assert_eq!(
            c.count_descendants_number(&format!("{d}/b")).await.unwrap(),
            0
        );
        assert_eq!(
            c.count_descendants_number(&env.path("none"))
                .await
                .unwrap_err(),
            Error::NoNode
        );

        // getEphemerals (103): this session's ephemerals under a path prefix.
        let mut mine = c.list_ephemerals(&d).await.unwrap();
        mine.sort();
        assert_eq!(mine, [format!("{d}/a/e2"), format!("{d}/e1")]);
        assert_eq!(
            c.list_ephemerals(&format!("{d}/a")).await.unwrap(),
            [format!("{d}/a/e2")]
        );
        assert_eq!(
            other.list_ephemerals(&d).await.unwrap(),
            [format!("{d}/theirs")]
        );
        // The prefix is a string prefix, not a path: "<d>/e" matches "<d>/e1".
        assert_eq!(
            c.list_ephemerals(&format!("{d}/e")).await.unwrap(),
            [format!("{d}/e1")]
        );
        assert!(c
            .list_ephemerals(&env.path("none"))
            .await
            .unwrap()
            .is_empty());
        let all_mine = c.list_ephemerals("/").await.unwrap();
        assert_eq!(all_mine.len(), 2, "{all_mine:?}");

        // getACL.
        let (acl, st) = c.get_acl(&d).await.unwrap();
        assert_eq!(acl.len(), 1);
        assert_eq!((acl[0].scheme(), acl[0].id()), ("world", "anyone"));
        assert_eq!(acl[0].permission(), zookeeper_client::Permission::ALL);
        assert_eq!(st.aversion, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_write_success_and_failure() {
    bounded(async {
        let env = Env::new("multi").await;
        let c = env.connect().await;
        let a = env.path("a");
        c.create(&a, b"a0", &all()).await.unwrap();

        // Success: every result in order.
        let mut w = c.new_multi_writer();
        w.add_check_version(&a, 0).unwrap();
        w.add_create(&env.path("b"), b"b0", &all()).unwrap();
        w.add_create(
            &env.path("s-"),
            b"",
            &CreateMode::PersistentSequential.with_acls(Acls::anyone_all()),
        )
        .unwrap();
        w.add_set_data(&a, b"a1", Some(0)).unwrap();
        w.add_check_version(&a, 1).unwrap();
        w.add_delete(&env.path("b"), Some(0)).unwrap();
        let res = w.commit().await.unwrap();
        assert_eq!(res.len(), 6, "{res:?}");
        assert!(matches!(res[0], MultiWriteResult::Check));
        let MultiWriteResult::Create { path, stat } = &res[1] else {
            panic!("{res:?}")
        };
        assert_eq!(path, &env.path("b"));
        let MultiWriteResult::Create {
            path: seq_path,
            stat: seq_stat,
        } = &res[2]
        else {
            panic!("{res:?}")
        };
        assert!(
            seq_path.starts_with(&env.path("s-")) && seq_path.len() == env.path("s-").len() + 10
        );
        let MultiWriteResult::SetData { stat: set_stat } = &res[3] else {
            panic!("{res:?}")
        };
        assert_eq!(set_stat.version, 1);
        // A create2 sub-op's result: Apache 3.8.0 answers with result type
        // create (1), path only, so the client reports an invalid Stat
        // (ZOOKEEPER-4026); a server answering create2 (15) adds the Stat.
        // Either way, one transaction: every op has the same zxid.
        for st in [stat, seq_stat] {
            assert!(
                st.is_invalid() || st.czxid == set_stat.mzxid,
                "{st:?} vs {set_stat:?}"
            );
        }
        assert!(matches!(res[4], MultiWriteResult::Check));
        assert!(matches!(res[5], MultiWriteResult::Delete));
        assert_eq!(c.get_data(&a).await.unwrap().0, b"a1");
        assert_eq!(c.check_stat(&env.path("b")).await.unwrap(), None);
        assert!(c.check_stat(seq_path).await.unwrap().is_some());

        // Failure: the failing op's index and error; nothing applied.
        let (_, before) = c.get_data(&a).await.unwrap();
        let mut w = c.new_multi_writer();
        w.add_set_data(&a, b"nope", None).unwrap();
        w.add_create(&env.path("c"), b"", &all()).unwrap();
        w.add_check_version(&a, 0).unwrap(); // version is 1 (2 after op 0)
        w.add_delete(&env.path("zzz"), None).unwrap();
        let err = w.commit().await.unwrap_err();
        assert_eq!(
            err,
            MultiWriteError::OperationFailed {
                index: 2,
                source: Error::BadVersion
            }
        );
        let (data, after) = c.get_data(&a).await.unwrap();
        assert_eq!((data.as_slice(), after), (&b"a1"[..], before));
        assert_eq!(c.check_stat(&env.path("c")).await.unwrap(), None);

        // Failure of a later op (NoNode on delete), and of a create (NodeExists).
        let mut w = c.new_multi_writer();
        w.add_create(&env.path("c"), b"", &all()).unwrap();
        w.add_delete(&env.path("zzz"), None).unwrap();
        assert_eq!(
            w.commit().await.unwrap_err(),
            MultiWriteError::OperationFailed {
                index: 1,
                source: Error::NoNode
            }
        );
        let mut w = c.new_multi_writer();
        w.add_create(&a, b"", &all()).unwrap();
        assert_eq!(
            w.commit().await.unwrap_err(),
            MultiWriteError::OperationFailed {
                index: 0,
                source: Error::NodeExists
            }
        );
        assert_eq!(c.check_stat(&env.path("c")).await.unwrap(), None);

        // CheckWriter: a failed leading check is reported apart.
        let mut cw = c.new_check_writer(&a, Some(7)).unwrap();
        cw.add_create(&env.path("c"), b"", &all()).unwrap();
        assert!(matches!(
            cw.commit().await.unwrap_err(),
            zookeeper_client::CheckWriteError::CheckFailed {
                source: Error::BadVersion
            }
        ));
        let mut cw = c.new_check_writer(&a, Some(1)).unwrap();
        cw.add_create(&env.path("c"), b"", &all()).unwrap();
        assert_eq!(cw.commit().await.unwrap().len(), 1);
        assert!(c.check_stat(&env.path("c")).await.unwrap().is_some());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_read() {
    bounded(async {
        let env = Env::new("multiread").await;
        let c = env.connect().await;
        let a = env.path("a");
        c.create(&a, b"data-a", &all()).await.unwrap();
        c.create(&env.path("a/x"), b"", &all()).await.unwrap();
        c.create(&env.path("a/y"), b"", &all()).await.unwrap();

        let mut r = c.new_multi_reader();
        r.add_get_data(&a).unwrap();
        r.add_get_children(&a).unwrap();
        r.add_get_data(&env.path("missing")).unwrap();
        r.add_get_children(&env.path("missing")).unwrap();
        r.add_get_data(&env.path("a/x")).unwrap();
        let res = r.commit().await.unwrap();
        assert_eq!(res.len(), 5, "{res:?}");
        let (_, st_a) = c.get_data(&a).await.unwrap();
        match &res[0] {
            MultiReadResult::Data { data, stat } => {
                assert_eq!(data, b"data-a");
                assert_eq!(*stat, st_a);
            }
            other => panic!("{other:?}"),
        }
        match &res[1] {
            MultiReadResult::Children { children } => {
                let mut ch = children.clone();
                ch.sort();
                assert_eq!(ch, ["x", "y"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&res[2], MultiReadResult::Error { err: Error::NoNode }),
            "{res:?}"
        );
        assert!(
            matches!(&res[3], MultiReadResult::Error { err: Error::NoNode }),
            "{res:?}"
        );
        assert!(matches!(&res[4], MultiReadResult::Data { data, .. } if data.is_empty()));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_then_read() {
    bounded(async {
        let env = Env::new("sync").await;
        let writer = env.connect().await;
        let reader = env.connect().await;
        let n = env.path("n");
        writer.create(&n, b"1", &all()).await.unwrap();
        writer.set_data(&n, b"2", None).await.unwrap();
        reader.sync(&n).await.unwrap();
        assert_eq!(reader.get_data(&n).await.unwrap().0, b"2");
        // sync on a missing path still succeeds (it is not checked).
        reader.sync(&env.path("missing")).await.unwrap();
        reader.sync("/").await.unwrap();
    })
    .await;
}
