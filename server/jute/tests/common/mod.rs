//! Proptest strategies shared by the round-trip and fuzz suites. Every
//! strategy generates values that survive encode -> decode unchanged.
#![allow(dead_code)]

use jute::request::{MultiOp, MultiResult};
use jute::txn::{Txn, TxnHeader, TxnRecord};
use jute::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};

/// Any UTF-8 string (possibly empty, possibly multi-byte).
pub fn s() -> BoxedStrategy<String> {
    proptest::string::string_regex("(?s).{0,12}")
        .unwrap()
        .boxed()
}

pub fn buf() -> BoxedStrategy<Vec<u8>> {
    vec(any::<u8>(), 0..24).boxed()
}

pub fn nbuf() -> BoxedStrategy<Option<Vec<u8>>> {
    proptest::option::of(buf()).boxed()
}

pub fn strs() -> BoxedStrategy<Vec<String>> {
    vec(s(), 0..5).boxed()
}

pub fn id() -> BoxedStrategy<Id> {
    (s(), s())
        .prop_map(|(scheme, id)| Id { scheme, id })
        .boxed()
}

pub fn acl() -> BoxedStrategy<Acl> {
    (any::<i32>(), id())
        .prop_map(|(perms, id)| Acl { perms, id })
        .boxed()
}

pub fn acls() -> BoxedStrategy<Vec<Acl>> {
    vec(acl(), 0..4).boxed()
}

pub fn stat() -> BoxedStrategy<Stat> {
    (
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        any::<i32>(),
        any::<i32>(),
        any::<i32>(),
        any::<i64>(),
        any::<i32>(),
        any::<i32>(),
        any::<i64>(),
    )
        .prop_map(
            |(
                czxid,
                mzxid,
                ctime,
                mtime,
                version,
                cversion,
                aversion,
                ephemeral_owner,
                data_length,
                num_children,
                pzxid,
            )| Stat {
                czxid,
                mzxid,
                ctime,
                mtime,
                version,
                cversion,
                aversion,
                ephemeral_owner,
                data_length,
                num_children,
                pzxid,
            },
        )
        .boxed()
}

pub fn client_info() -> BoxedStrategy<ClientInfo> {
    (s(), s())
        .prop_map(|(auth_scheme, user)| ClientInfo { auth_scheme, user })
        .boxed()
}

pub fn request_header() -> BoxedStrategy<RequestHeader> {
    (any::<i32>(), any::<i32>())
        .prop_map(|(xid, op)| RequestHeader { xid, op })
        .boxed()
}

pub fn reply_header() -> BoxedStrategy<ReplyHeader> {
    (any::<i32>(), any::<i64>(), any::<i32>())
        .prop_map(|(xid, zxid, err)| ReplyHeader { xid, zxid, err })
        .boxed()
}

pub fn auth_packet() -> BoxedStrategy<AuthPacket> {
    (any::<i32>(), s(), buf())
        .prop_map(|(auth_type, scheme, auth)| AuthPacket {
            auth_type,
            scheme,
            auth,
        })
        .boxed()
}

pub fn create_request() -> BoxedStrategy<CreateRequest> {
    (s(), nbuf(), acls(), any::<i32>())
        .prop_map(|(path, data, acl, flags)| CreateRequest {
            path,
            data,
            acl,
            flags,
        })
        .boxed()
}

pub fn create_ttl_request() -> BoxedStrategy<CreateTtlRequest> {
    (s(), nbuf(), acls(), any::<i32>(), any::<i64>())
        .prop_map(|(path, data, acl, flags, ttl)| CreateTtlRequest {
            path,
            data,
            acl,
            flags,
            ttl,
        })
        .boxed()
}

pub fn delete_request() -> BoxedStrategy<DeleteRequest> {
    (s(), any::<i32>())
        .prop_map(|(path, version)| DeleteRequest { path, version })
        .boxed()
}

pub fn exists_request() -> BoxedStrategy<ExistsRequest> {
    (s(), any::<bool>())
        .prop_map(|(path, watch)| ExistsRequest { path, watch })
        .boxed()
}

pub fn get_data_request() -> BoxedStrategy<GetDataRequest> {
    (s(), any::<bool>())
        .prop_map(|(path, watch)| GetDataRequest { path, watch })
        .boxed()
}

pub fn set_data_request() -> BoxedStrategy<SetDataRequest> {
    (s(), nbuf(), any::<i32>())
        .prop_map(|(path, data, version)| SetDataRequest {
            path,
            data,
            version,
        })
        .boxed()
}

pub fn get_acl_request() -> BoxedStrategy<GetAclRequest> {
    s().prop_map(|path| GetAclRequest { path }).boxed()
}

pub fn set_acl_request() -> BoxedStrategy<SetAclRequest> {
    (s(), acls(), any::<i32>())
        .prop_map(|(path, acl, version)| SetAclRequest { path, acl, version })
        .boxed()
}

pub fn get_children_request() -> BoxedStrategy<GetChildrenRequest> {
    (s(), any::<bool>())
        .prop_map(|(path, watch)| GetChildrenRequest { path, watch })
        .boxed()
}

pub fn check_version_request() -> BoxedStrategy<CheckVersionRequest> {
    (s(), any::<i32>())
        .prop_map(|(path, version)| CheckVersionRequest { path, version })
        .boxed()
}

pub fn sync_request() -> BoxedStrategy<SyncRequest> {
    s().prop_map(|path| SyncRequest { path }).boxed()
}

pub fn reconfig_request() -> BoxedStrategy<ReconfigRequest> {
    (s(), s(), s(), any::<i64>())
        .prop_map(
            |(joining_servers, leaving_servers, new_members, cur_config_id)| ReconfigRequest {
                joining_servers,
                leaving_servers,
                new_members,
                cur_config_id,
            },
        )
        .boxed()
}

pub fn remove_watches_request() -> BoxedStrategy<RemoveWatchesRequest> {
    (s(), any::<i32>())
        .prop_map(|(path, watcher_type)| RemoveWatchesRequest { path, watcher_type })
        .boxed()
}

pub fn add_watch_request() -> BoxedStrategy<AddWatchRequest> {
    (s(), any::<i32>())
        .prop_map(|(path, mode)| AddWatchRequest { path, mode })
        .boxed()
}

pub fn set_watches() -> BoxedStrategy<SetWatches> {
    (any::<i64>(), strs(), strs(), strs())
        .prop_map(
            |(relative_zxid, data_watches, exist_watches, child_watches)| SetWatches {
                relative_zxid,
                data_watches,
                exist_watches,
                child_watches,
            },
        )
        .boxed()
}

pub fn set_watches2() -> BoxedStrategy<SetWatches2> {
    (any::<i64>(), strs(), strs(), strs(), strs(), strs())
        .prop_map(|(relative_zxid, d, e, c, p, pr)| SetWatches2 {
            relative_zxid,
            data_watches: d,
            exist_watches: e,
            child_watches: c,
            persistent_watches: p,
            persistent_recursive_watches: pr,
        })
        .boxed()
}

pub fn path_request() -> BoxedStrategy<PathRequest> {
    s().prop_map(|path| PathRequest { path }).boxed()
}

pub fn multi_header() -> BoxedStrategy<MultiHeader> {
    (any::<i32>(), any::<bool>(), any::<i32>())
        .prop_map(|(op, done, err)| MultiHeader { op, done, err })
        .boxed()
}

pub fn create_response() -> BoxedStrategy<CreateResponse> {
    s().prop_map(|path| CreateResponse { path }).boxed()
}

pub fn create2_response() -> BoxedStrategy<Create2Response> {
    (s(), stat())
        .prop_map(|(path, stat)| Create2Response { path, stat })
        .boxed()
}

pub fn stat_response() -> BoxedStrategy<StatResponse> {
    stat().prop_map(|stat| StatResponse { stat }).boxed()
}

pub fn get_data_response() -> BoxedStrategy<GetDataResponse> {
    (nbuf(), stat())
        .prop_map(|(data, stat)| GetDataResponse { data, stat })
        .boxed()
}

pub fn get_acl_response() -> BoxedStrategy<GetAclResponse> {
    (acls(), stat())
        .prop_map(|(acl, stat)| GetAclResponse { acl, stat })
        .boxed()
}

pub fn get_children_response() -> BoxedStrategy<GetChildrenResponse> {
    strs()
        .prop_map(|children| GetChildrenResponse { children })
        .boxed()
}

pub fn get_children2_response() -> BoxedStrategy<GetChildren2Response> {
    (strs(), stat())
        .prop_map(|(children, stat)| GetChildren2Response { children, stat })
        .boxed()
}

pub fn sync_response() -> BoxedStrategy<SyncResponse> {
    s().prop_map(|path| SyncResponse { path }).boxed()
}

pub fn get_ephemerals_response() -> BoxedStrategy<GetEphemeralsResponse> {
    strs()
        .prop_map(|ephemerals| GetEphemeralsResponse { ephemerals })
        .boxed()
}

pub fn get_all_children_number_response() -> BoxedStrategy<GetAllChildrenNumberResponse> {
    any::<i32>()
        .prop_map(|total_number| GetAllChildrenNumberResponse { total_number })
        .boxed()
}

pub fn who_am_i_response() -> BoxedStrategy<WhoAmIResponse> {
    vec(client_info(), 0..4)
        .prop_map(|client_info| WhoAmIResponse { client_info })
        .boxed()
}

pub fn error_response() -> BoxedStrategy<ErrorResponse> {
    any::<i32>().prop_map(|err| ErrorResponse { err }).boxed()
}

pub fn watcher_event() -> BoxedStrategy<WatcherEvent> {
    (any::<i32>(), any::<i32>(), s())
        .prop_map(|(event_type, state, path)| WatcherEvent {
            event_type,
            state,
            path,
        })
        .boxed()
}

pub fn connect_request() -> BoxedStrategy<ConnectRequest> {
    (
        any::<i32>(),
        any::<i64>(),
        any::<i32>(),
        any::<i64>(),
        buf(),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(
            |(protocol_version, last_zxid_seen, timeout_ms, session_id, passwd, read_only)| {
                ConnectRequest {
                    protocol_version,
                    last_zxid_seen,
                    timeout_ms,
                    session_id,
                    passwd,
                    read_only,
                }
            },
        )
        .boxed()
}

pub fn connect_response() -> BoxedStrategy<ConnectResponse> {
    (
        any::<i32>(),
        any::<i32>(),
        any::<i64>(),
        buf(),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(
            |(protocol_version, timeout_ms, session_id, passwd, read_only)| ConnectResponse {
                protocol_version,
                timeout_ms,
                session_id,
                passwd,
                read_only,
            },
        )
        .boxed()
}

pub fn txn_header() -> BoxedStrategy<TxnHeader> {
    (
        any::<i64>(),
        any::<i32>(),
        any::<i64>(),
        any::<i64>(),
        any::<i32>(),
    )
        .prop_map(|(session_id, cxid, zxid, time_ms, op)| TxnHeader {
            session_id,
            cxid,
            zxid,
            time_ms,
            op,
        })
        .boxed()
}

/// One of the opcodes that carry a `CreateRequest`.
pub fn create_op() -> BoxedStrategy<i32> {
    prop_oneof![
        Just(op::CREATE),
        Just(op::CREATE2),
        Just(op::CREATE_CONTAINER)
    ]
    .boxed()
}

/// A sub-op allowed in `multi` (14).
pub fn write_multi_op() -> BoxedStrategy<MultiOp> {
    prop_oneof![
        (create_op(), create_request()).prop_map(|(op, req)| MultiOp::Create { op, req }),
        create_ttl_request().prop_map(MultiOp::CreateTtl),
        delete_request().prop_map(MultiOp::Delete),
        set_data_request().prop_map(MultiOp::SetData),
        check_version_request().prop_map(MultiOp::Check),
    ]
    .boxed()
}

/// A sub-op allowed in `multiRead` (22).
pub fn read_multi_op() -> BoxedStrategy<MultiOp> {
    prop_oneof![
        get_data_request().prop_map(MultiOp::GetData),
        get_children_request().prop_map(MultiOp::GetChildren),
    ]
    .boxed()
}

pub fn request() -> BoxedStrategy<Request> {
    Union::new(vec![
        (create_op(), create_request())
            .prop_map(|(op, req)| Request::Create { op, req })
            .boxed(),
        create_ttl_request().prop_map(Request::CreateTtl).boxed(),
        delete_request().prop_map(Request::Delete).boxed(),
        exists_request().prop_map(Request::Exists).boxed(),
        get_data_request().prop_map(Request::GetData).boxed(),
        set_data_request().prop_map(Request::SetData).boxed(),
        get_acl_request().prop_map(Request::GetAcl).boxed(),
        set_acl_request().prop_map(Request::SetAcl).boxed(),
        (any::<bool>(), get_children_request())
            .prop_map(|(with_stat, req)| Request::GetChildren { with_stat, req })
            .boxed(),
        sync_request().prop_map(Request::Sync).boxed(),
        Just(Request::Ping).boxed(),
        vec(write_multi_op(), 0..5).prop_map(Request::Multi).boxed(),
        vec(read_multi_op(), 0..5)
            .prop_map(Request::MultiRead)
            .boxed(),
        reconfig_request().prop_map(Request::Reconfig).boxed(),
        remove_watches_request()
            .prop_map(Request::CheckWatches)
            .boxed(),
        remove_watches_request()
            .prop_map(Request::RemoveWatches)
            .boxed(),
        auth_packet().prop_map(Request::Auth).boxed(),
        // setWatches (101) cannot carry persistent watches.
        set_watches()
            .prop_map(|s| Request::SetWatches {
                v2: false,
                req: SetWatches2 {
                    relative_zxid: s.relative_zxid,
                    data_watches: s.data_watches,
                    exist_watches: s.exist_watches,
                    child_watches: s.child_watches,
                    ..Default::default()
                },
            })
            .boxed(),
        set_watches2()
            .prop_map(|req| Request::SetWatches { v2: true, req })
            .boxed(),
        buf().prop_map(Request::Sasl).boxed(),
        path_request().prop_map(Request::GetEphemerals).boxed(),
        path_request()
            .prop_map(Request::GetAllChildrenNumber)
            .boxed(),
        add_watch_request().prop_map(Request::AddWatch).boxed(),
        Just(Request::WhoAmI).boxed(),
        Just(Request::CloseSession).boxed(),
    ])
    .boxed()
}

pub fn multi_result() -> BoxedStrategy<MultiResult> {
    prop_oneof![
        s().prop_map(MultiResult::Create),
        (s(), stat()).prop_map(|(p, st)| MultiResult::Create2(p, st)),
        Just(MultiResult::Delete),
        stat().prop_map(MultiResult::SetData),
        Just(MultiResult::Check),
        (nbuf(), stat()).prop_map(|(d, st)| MultiResult::GetData(d, st)),
        strs().prop_map(MultiResult::GetChildren),
        any::<i32>().prop_map(MultiResult::Error),
    ]
    .boxed()
}

/// Any transaction except `Multi` (which may not nest).
pub fn leaf_txn() -> BoxedStrategy<Txn> {
    Union::new(vec![
        (s(), nbuf(), acls(), any::<i64>(), any::<i32>())
            .prop_map(
                |(path, data, acl, ephemeral_owner, parent_cversion)| Txn::Create {
                    path,
                    data,
                    acl,
                    ephemeral_owner,
                    parent_cversion,
                },
            )
            .boxed(),
        s().prop_map(|path| Txn::Delete { path }).boxed(),
        s().prop_map(|path| Txn::DeleteContainer { path }).boxed(),
        (s(), nbuf(), any::<i32>())
            .prop_map(|(path, data, version)| Txn::SetData {
                path,
                data,
                version,
            })
            .boxed(),
        (s(), acls(), any::<i32>())
            .prop_map(|(path, acl, version)| Txn::SetAcl { path, acl, version })
            .boxed(),
        (s(), any::<i32>())
            .prop_map(|(path, version)| Txn::Check { path, version })
            .boxed(),
        any::<i32>()
            .prop_map(|timeout_ms| Txn::CreateSession { timeout_ms })
            .boxed(),
        Just(Txn::CloseSession).boxed(),
        any::<i32>().prop_map(|err| Txn::Error { err }).boxed(),
    ])
    .boxed()
}

pub fn txn() -> BoxedStrategy<Txn> {
    prop_oneof![
        3 => leaf_txn(),
        1 => vec(leaf_txn(), 0..5).prop_map(Txn::Multi),
    ]
    .boxed()
}

pub fn txn_record() -> BoxedStrategy<TxnRecord> {
    (txn_header(), txn())
        .prop_map(|(mut header, txn)| {
            header.op = txn.op();
            TxnRecord { header, txn }
        })
        .boxed()
}
