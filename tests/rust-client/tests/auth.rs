#![cfg(not(madsim))]
//! Authentication and ACLs with the Rust `zookeeper-client` 0.11: auth (100)
//! — which this client sends with an ordinary xid, not -4, and matches by
//! xid — whoami (107), digest identities, and the permission each operation
//! needs (getACL 6, setACL 7 included).

use std::time::Duration;

use interop_rust_client::zk::{
    Acl, Acls, AuthId, AuthUser, Client, CreateMode, Error, Permission, SessionState,
};
use interop_rust_client::{bounded, wait_state, within, Env};

fn all() -> zookeeper_client::CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

/// `alice:secret` as the digest provider stores it.
const ALICE_DIGEST: &str = "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoami_and_digest_auth() {
    bounded(async {
        let env = Env::new("whoami").await;
        let c = env.connect().await;

        // whoami (107): the ip identity only, then plus the digest user.
        let users = c.list_auth_users().await.unwrap();
        assert_eq!(users, [AuthUser::new("ip", "127.0.0.1")]);
        // The client sends auth with an ordinary xid and matches the reply
        // by it: the server must echo the request's xid (Apache does), not -4.
        within(
            "the auth (100) reply, matched by the request's xid",
            c.auth("digest", b"alice:secret"),
        )
        .await
        .unwrap();
        let mut users = c.list_auth_users().await.unwrap();
        users.sort_by(|a, b| a.scheme().cmp(b.scheme()));
        assert_eq!(
            users,
            [
                AuthUser::new("digest", "alice"),
                AuthUser::new("ip", "127.0.0.1")
            ]
        );
        // A second identity adds to the first.
        within("auth reply", c.auth("digest", b"bob:hunter2"))
            .await
            .unwrap();
        let mut users = c.list_auth_users().await.unwrap();
        users.sort_by(|a, b| (a.scheme(), a.user()).cmp(&(b.scheme(), b.user())));
        assert_eq!(
            users,
            [
                AuthUser::new("digest", "alice"),
                AuthUser::new("digest", "bob"),
                AuthUser::new("ip", "127.0.0.1")
            ]
        );

        // Auth given to the connector is sent right after the handshake.
        let connector = Client::connector()
            .with_session_timeout(Duration::from_secs(4))
            .with_auth("digest", b"alice:secret");
        let c2 = env.connect_with(connector).await;
        let users = c2.list_auth_users().await.unwrap();
        assert!(
            users.contains(&AuthUser::new("digest", "alice")),
            "{users:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_with_unknown_scheme_fails_the_session() {
    bounded(async {
        let env = Env::new("authfail").await;
        let c = env.connect().await;
        let mut state = c.state_watcher();
        assert_eq!(
            within("auth reply", c.auth("nosuchscheme", b"x"))
                .await
                .unwrap_err(),
            Error::AuthFailed
        );
        wait_state(&mut state, SessionState::AuthFailed).await;
        assert_eq!(c.get_data("/").await.unwrap_err(), Error::AuthFailed);
    })
    .await;
}

/// Permission checks that need no authentication: world:anyone ACLs
/// without some permissions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_checks_per_operation() {
    bounded(async {
        let env = Env::new("acl").await;
        let c = env.connect().await;
        let anyone = |p: Permission| [Acl::new(p, AuthId::anyone())];

        // Write-only: reads need READ, getACL READ or ADMIN, setData WRITE.
        let wo = env.path("wo");
        let wo_acl = anyone(Permission::WRITE);
        c.create(
            &wo,
            b"w",
            &CreateMode::Persistent.with_acls(Acls::new(&wo_acl)),
        )
        .await
        .unwrap();
        // exists on an existing node needs READ from 3.8.4 (ZOOKEEPER-2590,
        // what our server does); 3.8.0-3.8.3 checked nothing.
        match c.check_stat(&wo).await {
            Err(Error::NoAuth) => {}
            Ok(Some(st)) if env.is_external() => assert_eq!(st.data_length, 1),
            other => panic!("exists without READ: {other:?}"),
        }
        // exists on a missing node is never refused.
        assert_eq!(c.check_stat(&format!("{wo}/none")).await.unwrap(), None);
        assert_eq!(c.get_data(&wo).await.unwrap_err(), Error::NoAuth);
        assert_eq!(c.list_children(&wo).await.unwrap_err(), Error::NoAuth);
        assert_eq!(c.get_children(&wo).await.unwrap_err(), Error::NoAuth);
        assert_eq!(c.get_acl(&wo).await.unwrap_err(), Error::NoAuth);
        let st = c.set_data(&wo, b"ww", Some(0)).await.unwrap();
        assert_eq!(st.version, 1);
        // Reading through multiRead is checked per op.
        let mut r = c.new_multi_reader();
        r.add_get_data(&wo).unwrap();
        let res = r.commit().await.unwrap();
        assert!(
            matches!(
                &res[0],
                zookeeper_client::MultiReadResult::Error { err: Error::NoAuth }
            ),
            "{res:?}"
        );

        // Admin-only: getACL works with ADMIN alone, setACL needs ADMIN.
        let ad = env.path("admin");
        let ad_acl = anyone(Permission::ADMIN);
        c.create(
            &ad,
            b"",
            &CreateMode::Persistent.with_acls(Acls::new(&ad_acl)),
        )
        .await
        .unwrap();
        let (acl, st) = c.get_acl(&ad).await.unwrap();
        assert_eq!(acl, ad_acl);
        assert_eq!(st.aversion, 0);
        assert_eq!(
            c.set_acl(&ad, &anyone(Permission::ALL), Some(3))
                .await
                .unwrap_err(),
            Error::BadVersion
        );
        let st = c
            .set_acl(&ad, &anyone(Permission::ALL), Some(0))
            .await
            .unwrap();
        assert_eq!(st.aversion, 1);
        assert_eq!(c.get_data(&ad).await.unwrap().1.aversion, 1);

        // Read-only: writes, child creation and setACL are refused; the
        // node's own deletion is governed by its parent's ACL.
        let ro = env.path("ro");
        c.create(
            &ro,
            b"r",
            &CreateMode::Persistent.with_acls(Acls::anyone_read()),
        )
        .await
        .unwrap();
        assert_eq!(c.get_data(&ro).await.unwrap().0, b"r");
        assert_eq!(
            c.set_data(&ro, b"x", None).await.unwrap_err(),
            Error::NoAuth
        );
        assert_eq!(
            c.create(&format!("{ro}/c"), b"", &all()).await.unwrap_err(),
            Error::NoAuth
        );
        assert_eq!(
            c.set_acl(&ro, &anyone(Permission::ALL), None)
                .await
                .unwrap_err(),
            Error::NoAuth
        );
        let mut w = c.new_multi_writer();
        w.add_set_data(&ro, b"x", None).unwrap();
        assert_eq!(
            w.commit().await.unwrap_err(),
            zookeeper_client::MultiWriteError::OperationFailed {
                index: 0,
                source: Error::NoAuth
            }
        );
        c.delete(&ro, None).await.unwrap();

        // No DELETE on the parent: its children cannot be deleted.
        let nd = env.path("nodelete");
        let nd_acl = [Acl::new(
            Permission::READ | Permission::WRITE | Permission::CREATE | Permission::ADMIN,
            AuthId::anyone(),
        )];
        c.create(
            &nd,
            b"",
            &CreateMode::Persistent.with_acls(Acls::new(&nd_acl)),
        )
        .await
        .unwrap();
        c.create(&format!("{nd}/k"), b"", &all()).await.unwrap();
        assert_eq!(
            c.delete(&format!("{nd}/k"), None).await.unwrap_err(),
            Error::NoAuth
        );

        // CREATOR_ALL ("auth", "") without any authenticated identity.
        assert_eq!(
            c.create(
                &env.path("x"),
                b"",
                &CreateMode::Persistent.with_acls(Acls::creator_all())
            )
            .await
            .unwrap_err(),
            Error::InvalidAcl
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_acls() {
    bounded(async {
        let env = Env::new("digest").await;
        let alice = env.connect().await;
        let anon = env.connect().await;
        within("auth reply", alice.auth("digest", b"alice:secret"))
            .await
            .unwrap();

        // CREATOR_ALL ("auth", ""): the server stores alice's digest id.
        let secret = env.path("secret");
        alice
            .create(
                &secret,
                b"s",
                &CreateMode::Persistent.with_acls(Acls::creator_all()),
            )
            .await
            .unwrap();
        let (acl, _) = alice.get_acl(&secret).await.unwrap();
        assert_eq!(
            acl,
            [Acl::new(
                Permission::ALL,
                AuthId::new("digest", ALICE_DIGEST)
            )]
        );
        assert_eq!(alice.get_data(&secret).await.unwrap().0, b"s");

        // Without the identity: NoAuth.
        assert_eq!(anon.get_data(&secret).await.unwrap_err(), Error::NoAuth);
        assert_eq!(
            anon.set_data(&secret, b"x", None).await.unwrap_err(),
            Error::NoAuth
        );
        assert_eq!(
            anon.create(&format!("{secret}/c"), b"", &all())
                .await
                .unwrap_err(),
            Error::NoAuth
        );
        // A wrong password: the auth succeeds, but it is another identity.
        within("auth reply", anon.auth("digest", b"alice:wrong"))
            .await
            .unwrap();
        assert_eq!(anon.get_data(&secret).await.unwrap_err(), Error::NoAuth);
        // The right one, later in the same session.
        within("auth reply", anon.auth("digest", b"alice:secret"))
            .await
            .unwrap();
        assert_eq!(anon.get_data(&secret).await.unwrap().0, b"s");

        // An explicit digest ACL set by setACL.
        let open = env.path("open");
        alice.create(&open, b"", &all()).await.unwrap();
        let restricted = [Acl::new(
            Permission::ALL,
            AuthId::new("digest", ALICE_DIGEST),
        )];
        alice.set_acl(&open, &restricted, Some(0)).await.unwrap();
        let bob = env
            .connect_with(
                Client::connector()
                    .with_session_timeout(Duration::from_secs(4))
                    .with_auth("digest", b"bob:hunter2"),
            )
            .await;
        assert_eq!(bob.get_data(&open).await.unwrap_err(), Error::NoAuth);
        let alice2 = env
            .connect_with(
                Client::connector()
                    .with_session_timeout(Duration::from_secs(4))
                    .with_auth("digest", b"alice:secret"),
            )
            .await;
        alice2.set_data(&open, b"t", None).await.unwrap();
        assert_eq!(alice.get_data(&open).await.unwrap().0, b"t");

        // getACL with READ but without ADMIN masks digest ids as `user:x`.
        let shared = env.path("shared");
        let shared_acl = [
            Acl::new(Permission::READ, AuthId::anyone()),
            Acl::new(Permission::ALL, AuthId::new("digest", ALICE_DIGEST)),
        ];
        alice
            .create(
                &shared,
                b"",
                &CreateMode::Persistent.with_acls(Acls::new(&shared_acl)),
            )
            .await
            .unwrap();
        assert_eq!(alice.get_acl(&shared).await.unwrap().0, shared_acl);
        assert_eq!(
            bob.get_acl(&shared).await.unwrap().0,
            [
                Acl::new(Permission::READ, AuthId::anyone()),
                Acl::new(Permission::ALL, AuthId::new("digest", "alice:x")),
            ]
        );
    })
    .await;
}
