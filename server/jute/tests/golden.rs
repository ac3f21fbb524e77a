//! Golden bytes: every record, request, multi and transaction encoding checked
//! against byte arrays written by hand from the protocol (zookeeper-3.8.md §1:
//! big-endian, `int` length prefixes, -1 for null buffers/strings/vectors).

use jute::codec::Reader;
use jute::request::{read_multi, read_multi_results, write_multi, write_multi_results};
use jute::request::{MultiOp, MultiResult};
use jute::txn::{Txn, TxnHeader, TxnRecord, CONTAINER_OWNER, TTL_MARKER};
use jute::*;
use std::fmt::Debug;

/// Concatenate hand-written pieces.
fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// `value` encodes to exactly `expected`, and `expected` decodes to `value`.
#[track_caller]
fn check<R: Record + PartialEq + Debug>(value: &R, expected: &[u8]) {
    assert_eq!(jute::to_bytes(value), expected, "encoding of {value:?}");
    assert_eq!(
        &jute::from_bytes::<R>(expected).expect("decode"),
        value,
        "decoding of {expected:02x?}"
    );
}

/// Decode only (for inputs a conforming writer would not produce).
#[track_caller]
fn decodes_to<R: Record + PartialEq + Debug>(bytes: &[u8], value: &R) {
    assert_eq!(&jute::from_bytes::<R>(bytes).expect("decode"), value);
}

/// A distinctive Stat whose every field exercises byte order and sign.
fn stat() -> Stat {
    Stat {
        czxid: 0x0000_0001_0000_0002,
        mzxid: 0x0000_0001_0000_0005,
        ctime: 0x0000_018B_CFE5_6800,
        mtime: 0x0000_018B_CFE5_6BE8,
        version: 3,
        cversion: -1,
        aversion: 0x0102_0304,
        ephemeral_owner: 0x7201_2345_6789_ABCD,
        data_length: 5,
        num_children: 0,
        pzxid: -2,
    }
}

#[rustfmt::skip]
const STAT: [u8; 68] = [
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, // czxid
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05, // mzxid
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, // ctime
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x6b, 0xe8, // mtime
    0x00, 0x00, 0x00, 0x03,                         // version
    0xff, 0xff, 0xff, 0xff,                         // cversion
    0x01, 0x02, 0x03, 0x04,                         // aversion
    0x72, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, // ephemeralOwner
    0x00, 0x00, 0x00, 0x05,                         // dataLength
    0x00, 0x00, 0x00, 0x00,                         // numChildren
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, // pzxid
];

/// `vector<ACL>` holding just world:anyone with all permissions.
#[rustfmt::skip]
const OPEN_ACL: &[u8] = &[
    0x00, 0x00, 0x00, 0x01,                                     // count 1
    0x00, 0x00, 0x00, 0x1f,                                     // perms ALL
    0x00, 0x00, 0x00, 0x05, b'w', b'o', b'r', b'l', b'd',       // scheme
    0x00, 0x00, 0x00, 0x06, b'a', b'n', b'y', b'o', b'n', b'e', // id
];

const NULL: &[u8] = &[0xff, 0xff, 0xff, 0xff];

// ---------------------------------------------------------------------------
// Primitives
// ---------------------------------------------------------------------------

#[test]
fn primitives() {
    check(&0x0102_0304i32, &[0x01, 0x02, 0x03, 0x04]);
    check(&-2i32, &[0xff, 0xff, 0xff, 0xfe]);
    check(&i32::MIN, &[0x80, 0, 0, 0]);
    check(
        &0x0102_0304_0506_0708i64,
        &[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08],
    );
    check(&-1i64, &[0xff; 8]);
    check(&true, &[0x01]);
    check(&false, &[0x00]);
    check(&String::from("/zk"), &[0, 0, 0, 3, b'/', b'z', b'k']);
    check(&String::new(), &[0, 0, 0, 0]);
    // UTF-8 length is in bytes, not chars.
    check(&String::from("é"), &[0, 0, 0, 2, 0xc3, 0xa9]);
    // Any non-zero boolean byte reads as true.
    decodes_to(&[0x02], &true);
    decodes_to(&[0xff], &true);
    // Null ustring reads as "".
    decodes_to(NULL, &String::new());
}

// ---------------------------------------------------------------------------
// Data records
// ---------------------------------------------------------------------------

#[test]
fn id() {
    check(
        &Id {
            scheme: "digest".into(),
            id: "u:p".into(),
        },
        &cat(&[&[0, 0, 0, 6], b"digest", &[0, 0, 0, 3], b"u:p"]),
    );
}

#[test]
fn id_kazoo_null_strings_decode_as_empty() {
    // kazoo writes "" as a null ustring (-1).
    decodes_to(&cat(&[NULL, NULL]), &Id::default());
    decodes_to(
        &cat(&[&[0, 0, 0, 5], b"world", NULL]),
        &Id {
            scheme: "world".into(),
            id: String::new(),
        },
    );
}

#[test]
fn acl() {
    check(
        &Acl::new(perms::READ | perms::WRITE, "ip", "10.0.0.1"),
        &cat(&[
            &[0, 0, 0, 3],
            &[0, 0, 0, 2],
            b"ip",
            &[0, 0, 0, 8],
            b"10.0.0.1",
        ]),
    );
    // OPEN_ACL_UNSAFE as a vector.
    let mut out = Vec::new();
    jute::codec::write_vec(&mut out, &Acl::open());
    assert_eq!(out, OPEN_ACL);
}

#[test]
fn stat_is_68_bytes() {
    assert_eq!(STAT.len(), 68);
    check(&stat(), &STAT);
    assert_eq!(jute::to_bytes(&Stat::default()), [0u8; 68]);
}

#[test]
fn client_info() {
    check(
        &ClientInfo {
            auth_scheme: "ip".into(),
            user: "127.0.0.1".into(),
        },
        &cat(&[&[0, 0, 0, 2], b"ip", &[0, 0, 0, 9], b"127.0.0.1"]),
    );
}

// ---------------------------------------------------------------------------
// Headers, connect, auth
// ---------------------------------------------------------------------------

#[test]
fn request_header() {
    // A ping.
    check(
        &RequestHeader { xid: -2, op: 11 },
        &[0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 0x0b],
    );
    check(
        &RequestHeader {
            xid: 0x0100_0000,
            op: 105,
        },
        &[0x01, 0, 0, 0, 0, 0, 0, 0x69],
    );
}

#[test]
fn reply_header() {
    // Notification header: xid -1, zxid -1, err 0.
    check(
        &ReplyHeader {
            xid: -1,
            zxid: -1,
            err: 0,
        },
        &[
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
        ],
    );
    // NoNode reply (16 bytes, no body).
    check(
        &ReplyHeader {
            xid: 7,
            zxid: 0x0000_0001_0000_0003,
            err: ErrorCode::NoNode.code(),
        },
        &[0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0x9b],
    );
}

#[test]
fn auth_packet() {
    check(
        &AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: b"u:p".to_vec(),
        },
        &cat(&[
            &[0, 0, 0, 0],
            &[0, 0, 0, 6],
            b"digest",
            &[0, 0, 0, 3],
            b"u:p",
        ]),
    );
    // `buffer` auth: null reads as empty.
    decodes_to(
        &cat(&[&[0, 0, 0, 0], &[0, 0, 0, 2], b"ip", NULL]),
        &AuthPacket {
            auth_type: 0,
            scheme: "ip".into(),
            auth: vec![],
        },
    );
}

fn connect_request(read_only: Option<bool>) -> ConnectRequest {
    ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0x0000_0001_0000_0002,
        timeout_ms: 30_000,
        session_id: 0,
        passwd: vec![0; 16],
        read_only,
    }
}

#[rustfmt::skip]
const CONNECT_REQUEST: [u8; 44] = [
    0x00, 0x00, 0x00, 0x00,                         // protocolVersion
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, // lastZxidSeen
    0x00, 0x00, 0x75, 0x30,                         // timeOut 30000
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // sessionId
    0x00, 0x00, 0x00, 0x10,                         // passwd length 16
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

#[test]
fn connect_request_with_and_without_read_only() {
    let with_ro = cat(&[&CONNECT_REQUEST, &[0x01]]);
    assert_eq!(with_ro.len(), 45);
    check(&connect_request(Some(true)), &with_ro);
    check(
        &connect_request(Some(false)),
        &cat(&[&CONNECT_REQUEST, &[0x00]]),
    );
    // An old client without the trailing byte.
    check(&connect_request(None), &CONNECT_REQUEST);
    let decoded: ConnectRequest = jute::from_bytes(&CONNECT_REQUEST).unwrap();
    assert_eq!(decoded.read_only, None);
    // Anything after the readOnly byte is trailing garbage.
    assert_eq!(
        jute::from_bytes::<ConnectRequest>(&cat(&[&CONNECT_REQUEST, &[1, 2]])),
        Err(JuteError::Trailing(1))
    );
    // Truncated before the password ends.
    assert!(matches!(
        jute::from_bytes::<ConnectRequest>(&CONNECT_REQUEST[..40]),
        Err(JuteError::BadLength(16))
    ));
}

#[test]
fn connect_response_36_vs_37_bytes() {
    let mut resp = ConnectResponse {
        protocol_version: 0,
        timeout_ms: 4000,
        session_id: 0x0100_0a0b_0c0d_0001,
        passwd: (0u8..16).collect(),
        read_only: None,
    };
    #[rustfmt::skip]
    let base: [u8; 36] = [
        0x00, 0x00, 0x00, 0x00,                         // protocolVersion
        0x00, 0x00, 0x0f, 0xa0,                         // timeOut 4000
        0x01, 0x00, 0x0a, 0x0b, 0x0c, 0x0d, 0x00, 0x01, // sessionId
        0x00, 0x00, 0x00, 0x10,                         // passwd length 16
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    ];
    check(&resp, &base);
    resp.read_only = Some(false);
    let with_ro = cat(&[&base, &[0]]);
    assert_eq!(with_ro.len(), 37);
    check(&resp, &with_ro);
    resp.read_only = Some(true);
    check(&resp, &cat(&[&base, &[1]]));

    // The "session expired" answer: timeOut 0, id 0, 16 zero bytes, readOnly 0.
    let expired = ConnectResponse {
        passwd: vec![0; 16],
        read_only: Some(false),
        ..Default::default()
    };
    let mut bytes = vec![0u8; 37];
    bytes[19] = 16;
    check(&expired, &bytes);
}

// ---------------------------------------------------------------------------
// Request records
// ---------------------------------------------------------------------------

fn create_request(data: Option<Vec<u8>>) -> CreateRequest {
    CreateRequest {
        path: "/a".into(),
        data,
        acl: Acl::open(),
        flags: 3,
    }
}

#[test]
fn create_request_null_vs_empty_data() {
    let path = &[0, 0, 0, 2, b'/', b'a'][..];
    let flags = &[0, 0, 0, 3][..];
    check(
        &create_request(Some(b"hi".to_vec())),
        &cat(&[path, &[0, 0, 0, 2, b'h', b'i'], OPEN_ACL, flags]),
    );
    // Null data is -1 and stays null.
    let null = cat(&[path, NULL, OPEN_ACL, flags]);
    check(&create_request(None), &null);
    assert_eq!(jute::from_bytes::<CreateRequest>(&null).unwrap().data, None);
    // Empty data is 0 and stays empty.
    let empty = cat(&[path, &[0, 0, 0, 0], OPEN_ACL, flags]);
    check(&create_request(Some(vec![])), &empty);
    assert_eq!(
        jute::from_bytes::<CreateRequest>(&empty).unwrap().data,
        Some(vec![])
    );
    // A null ACL vector reads as empty.
    decodes_to(
        &cat(&[path, NULL, NULL, flags]),
        &CreateRequest {
            acl: vec![],
            ..create_request(None)
        },
    );
}

#[test]
fn create_ttl_request() {
    check(
        &CreateTtlRequest {
            path: "/t".into(),
            data: Some(vec![]),
            acl: Acl::open(),
            flags: CreateMode::PersistentWithTtl.code(),
            ttl: 1000,
        },
        &cat(&[
            &[0, 0, 0, 2, b'/', b't'],
            &[0, 0, 0, 0],
            OPEN_ACL,
            &[0, 0, 0, 5],
            &[0, 0, 0, 0, 0, 0, 0x03, 0xe8],
        ]),
    );
}

#[test]
fn delete_request() {
    check(
        &DeleteRequest {
            path: "/a".into(),
            version: -1,
        },
        &[0, 0, 0, 2, b'/', b'a', 0xff, 0xff, 0xff, 0xff],
    );
}

#[test]
fn exists_request() {
    let v = ExistsRequest {
        path: "/a".into(),
        watch: true,
    };
    check(&v, &[0, 0, 0, 2, b'/', b'a', 1]);
    decodes_to(&[0, 0, 0, 2, b'/', b'a', 0x80], &v);
}

#[test]
fn get_data_request() {
    check(
        &GetDataRequest {
            path: "/a".into(),
            watch: false,
        },
        &[0, 0, 0, 2, b'/', b'a', 0],
    );
    // kazoo's null path.
    decodes_to(
        &[0xff, 0xff, 0xff, 0xff, 1],
        &GetDataRequest {
            path: String::new(),
            watch: true,
        },
    );
}

#[test]
fn set_data_request() {
    check(
        &SetDataRequest {
            path: "/a".into(),
            data: Some(b"v".to_vec()),
            version: 4,
        },
        &[0, 0, 0, 2, b'/', b'a', 0, 0, 0, 1, b'v', 0, 0, 0, 4],
    );
    check(
        &SetDataRequest {
            path: "/a".into(),
            data: None,
            version: -1,
        },
        &[
            0, 0, 0, 2, b'/', b'a', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
    );
}

#[test]
fn get_acl_request() {
    check(&GetAclRequest { path: "/".into() }, &[0, 0, 0, 1, b'/']);
}

#[test]
fn set_acl_request() {
    check(
        &SetAclRequest {
            path: "/a".into(),
            acl: vec![Acl::new(31, "auth", "")],
            version: 2,
        },
        &cat(&[
            &[0, 0, 0, 2, b'/', b'a'],
            &[0, 0, 0, 1],
            &[0, 0, 0, 0x1f],
            &[0, 0, 0, 4],
            b"auth",
            &[0, 0, 0, 0],
            &[0, 0, 0, 2],
        ]),
    );
}

#[test]
fn get_children_request() {
    check(
        &GetChildrenRequest {
            path: "/".into(),
            watch: true,
        },
        &[0, 0, 0, 1, b'/', 1],
    );
}

#[test]
fn check_version_request() {
    check(
        &CheckVersionRequest {
            path: "/a".into(),
            version: i32::MAX,
        },
        &[0, 0, 0, 2, b'/', b'a', 0x7f, 0xff, 0xff, 0xff],
    );
}

#[test]
fn sync_request() {
    check(&SyncRequest { path: "/".into() }, &[0, 0, 0, 1, b'/']);
}

#[test]
fn reconfig_request() {
    let v = ReconfigRequest {
        joining_servers: "s4".into(),
        leaving_servers: String::new(),
        new_members: String::new(),
        cur_config_id: -1,
    };
    check(
        &v,
        &cat(&[
            &[0, 0, 0, 2],
            b"s4",
            &[0, 0, 0, 0],
            &[0, 0, 0, 0],
            &[0xff; 8],
        ]),
    );
    // kazoo sends the empty fields as null strings.
    decodes_to(&cat(&[&[0, 0, 0, 2], b"s4", NULL, NULL, &[0xff; 8]]), &v);
}

#[test]
fn remove_watches_request() {
    check(
        &RemoveWatchesRequest {
            path: "/w".into(),
            watcher_type: WatcherType::Any.code(),
        },
        &[0, 0, 0, 2, b'/', b'w', 0, 0, 0, 3],
    );
}

#[test]
fn add_watch_request() {
    check(
        &AddWatchRequest {
            path: "/w".into(),
            mode: AddWatchMode::PersistentRecursive.code(),
        },
        &[0, 0, 0, 2, b'/', b'w', 0, 0, 0, 1],
    );
}

fn set_watches() -> SetWatches {
    SetWatches {
        relative_zxid: 0x10,
        data_watches: vec!["/a".into()],
        exist_watches: vec![],
        child_watches: vec!["/b".into(), "/c".into()],
    }
}

#[rustfmt::skip]
const SET_WATCHES: &[u8] = &[
    0, 0, 0, 0, 0, 0, 0, 0x10,                   // relativeZxid
    0, 0, 0, 1, 0, 0, 0, 2, b'/', b'a',          // dataWatches
    0, 0, 0, 0,                                  // existWatches
    0, 0, 0, 2, 0, 0, 0, 2, b'/', b'b', 0, 0, 0, 2, b'/', b'c', // childWatches
];

#[test]
fn set_watches_record() {
    check(&set_watches(), SET_WATCHES);
    // Null vectors read as empty.
    decodes_to(&cat(&[&[0; 8], NULL, NULL, NULL]), &SetWatches::default());
}

#[test]
fn set_watches2_record() {
    check(
        &SetWatches2 {
            relative_zxid: 0x10,
            data_watches: vec!["/a".into()],
            exist_watches: vec![],
            child_watches: vec!["/b".into(), "/c".into()],
            persistent_watches: vec!["/p".into()],
            persistent_recursive_watches: vec![],
        },
        &cat(&[
            SET_WATCHES,
            &[0, 0, 0, 1, 0, 0, 0, 2, b'/', b'p'],
            &[0, 0, 0, 0],
        ]),
    );
}

#[test]
fn path_request() {
    check(
        &PathRequest { path: "/p".into() },
        &[0, 0, 0, 2, b'/', b'p'],
    );
    decodes_to(NULL, &PathRequest::default());
}

#[test]
fn multi_header() {
    check(
        &MultiHeader {
            op: -1,
            done: true,
            err: -1,
        },
        &[0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff],
    );
    check(
        &MultiHeader {
            op: 1,
            done: false,
            err: -1,
        },
        &[0, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0xff],
    );
}

// ---------------------------------------------------------------------------
// Response records
// ---------------------------------------------------------------------------

#[test]
fn create_response() {
    check(
        &CreateResponse {
            path: "/a0000000001".into(),
        },
        &cat(&[&[0, 0, 0, 12], b"/a0000000001"]),
    );
}

#[test]
fn create2_response() {
    check(
        &Create2Response {
            path: "/a".into(),
            stat: stat(),
        },
        &cat(&[&[0, 0, 0, 2, b'/', b'a'], &STAT]),
    );
}

#[test]
fn stat_response() {
    check(&StatResponse { stat: stat() }, &STAT);
}

#[test]
fn get_data_response_null_vs_empty() {
    check(
        &GetDataResponse {
            data: Some(b"hello".to_vec()),
            stat: stat(),
        },
        &cat(&[&[0, 0, 0, 5], b"hello", &STAT]),
    );
    let null = cat(&[NULL, &STAT]);
    check(
        &GetDataResponse {
            data: None,
            stat: stat(),
        },
        &null,
    );
    assert_eq!(
        jute::from_bytes::<GetDataResponse>(&null).unwrap().data,
        None
    );
    let empty = cat(&[&[0, 0, 0, 0], &STAT]);
    check(
        &GetDataResponse {
            data: Some(vec![]),
            stat: stat(),
        },
        &empty,
    );
    assert_eq!(
        jute::from_bytes::<GetDataResponse>(&empty).unwrap().data,
        Some(vec![])
    );
}

#[test]
fn get_acl_response() {
    check(
        &GetAclResponse {
            acl: Acl::open(),
            stat: stat(),
        },
        &cat(&[OPEN_ACL, &STAT]),
    );
}

#[test]
fn get_children_response() {
    check(
        &GetChildrenResponse {
            children: vec!["a".into(), "bc".into()],
        },
        &[0, 0, 0, 2, 0, 0, 0, 1, b'a', 0, 0, 0, 2, b'b', b'c'],
    );
    check(&GetChildrenResponse { children: vec![] }, &[0, 0, 0, 0]);
    decodes_to(NULL, &GetChildrenResponse { children: vec![] });
}

#[test]
fn get_children2_response() {
    check(
        &GetChildren2Response {
            children: vec!["x".into()],
            stat: stat(),
        },
        &cat(&[&[0, 0, 0, 1, 0, 0, 0, 1, b'x'], &STAT]),
    );
}

#[test]
fn sync_response() {
    check(&SyncResponse { path: "/".into() }, &[0, 0, 0, 1, b'/']);
}

#[test]
fn get_ephemerals_response() {
    check(
        &GetEphemeralsResponse {
            ephemerals: vec!["/e1".into(), "/e2".into()],
        },
        &cat(&[&[0, 0, 0, 2], &[0, 0, 0, 3], b"/e1", &[0, 0, 0, 3], b"/e2"]),
    );
}

#[test]
fn get_all_children_number_response() {
    check(
        &GetAllChildrenNumberResponse { total_number: 42 },
        &[0, 0, 0, 42],
    );
}

#[test]
fn who_am_i_response() {
    check(
        &WhoAmIResponse {
            client_info: vec![
                ClientInfo {
                    auth_scheme: "ip".into(),
                    user: "127.0.0.1".into(),
                },
                ClientInfo {
                    auth_scheme: "digest".into(),
                    user: "bob".into(),
                },
            ],
        },
        &cat(&[
            &[0, 0, 0, 2],
            &[0, 0, 0, 2],
            b"ip",
            &[0, 0, 0, 9],
            b"127.0.0.1",
            &[0, 0, 0, 6],
            b"digest",
            &[0, 0, 0, 3],
            b"bob",
        ]),
    );
}

#[test]
fn error_response() {
    // addWatch's success body is ErrorResponse(0): 4 zero bytes.
    check(&ErrorResponse { err: 0 }, &[0, 0, 0, 0]);
    check(
        &ErrorResponse {
            err: ErrorCode::NoWatcher.code(),
        },
        &[0xff, 0xff, 0xff, 0x87],
    );
}

#[test]
fn watcher_event() {
    check(
        &WatcherEvent {
            event_type: EventType::NodeDataChanged.code(),
            state: KeeperState::SyncConnected.code(),
            path: "/a".into(),
        },
        &[0, 0, 0, 3, 0, 0, 0, 3, 0, 0, 0, 2, b'/', b'a'],
    );
}

#[test]
fn txn_header() {
    check(
        &TxnHeader {
            session_id: 0x0100_0000_0000_0001,
            cxid: 5,
            zxid: 0x0000_0002_0000_0001,
            time_ms: 0x0000_018B_CFE5_6800,
            op: op::CREATE,
        },
        &[
            0x01, 0, 0, 0, 0, 0, 0, 0x01, // sessionId
            0, 0, 0, 5, // cxid
            0, 0, 0, 2, 0, 0, 0, 1, // zxid
            0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, // time
            0, 0, 0, 1, // type
        ],
    );
}

// ---------------------------------------------------------------------------
// Malformed input gives the right error
// ---------------------------------------------------------------------------

#[test]
fn decode_errors() {
    // Negative length other than -1.
    assert_eq!(
        jute::from_bytes::<PathRequest>(&[0xff, 0xff, 0xff, 0xfe]),
        Err(JuteError::BadLength(-2))
    );
    assert_eq!(
        jute::from_bytes::<PathRequest>(&[0x80, 0, 0, 0]),
        Err(JuteError::BadLength(i32::MIN as i64))
    );
    // Length larger than what follows.
    assert_eq!(
        jute::from_bytes::<PathRequest>(&[0x7f, 0xff, 0xff, 0xff, b'/']),
        Err(JuteError::BadLength(i32::MAX as i64))
    );
    // A vector count no input could hold.
    assert_eq!(
        jute::from_bytes::<GetChildrenResponse>(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0]),
        Err(JuteError::BadLength(i32::MAX as i64))
    );
    // Truncated fixed-width field.
    assert_eq!(
        jute::from_bytes::<DeleteRequest>(&[0, 0, 0, 1, b'/', 0xff]),
        Err(JuteError::Eof { needed: 3 })
    );
    assert_eq!(
        jute::from_bytes::<Stat>(&STAT[..67]),
        Err(JuteError::Eof { needed: 1 })
    );
    // Invalid UTF-8.
    assert_eq!(
        jute::from_bytes::<PathRequest>(&[0, 0, 0, 2, 0xc3, 0x28]),
        Err(JuteError::Utf8)
    );
    // Trailing bytes.
    assert_eq!(
        jute::from_bytes::<ErrorResponse>(&[0, 0, 0, 0, 9, 9]),
        Err(JuteError::Trailing(2))
    );
    assert_eq!(
        jute::from_bytes::<Stat>(&[]),
        Err(JuteError::Eof { needed: 8 })
    );
}

// ---------------------------------------------------------------------------
// Request bodies, by opcode
// ---------------------------------------------------------------------------

/// `req` has opcode `opcode`, its body encodes to `body`, and `body` decodes
/// (consuming every byte) back to `req`.
#[track_caller]
fn check_request(req: &Request, opcode: i32, body: &[u8]) {
    assert_eq!(req.op(), opcode, "{req:?}");
    let mut out = Vec::new();
    req.write_body(&mut out);
    assert_eq!(out, body, "body of {req:?}");
    let mut r = Reader::new(body);
    assert_eq!(&Request::decode(opcode, &mut r).expect("decode"), req);
    assert!(r.is_empty(), "{} bytes left", r.remaining());
}

#[test]
fn request_bodies() {
    let path = &[0, 0, 0, 2, b'/', b'a'][..];
    let create = cat(&[path, &[0, 0, 0, 1, b'x'], OPEN_ACL, &[0, 0, 0, 0]]);
    let create_req = CreateRequest {
        path: "/a".into(),
        data: Some(b"x".to_vec()),
        acl: Acl::open(),
        flags: 0,
    };
    for opcode in [1, 15, 19] {
        check_request(
            &Request::Create {
                op: opcode,
                req: create_req.clone(),
            },
            opcode,
            &create,
        );
    }
    check_request(
        &Request::CreateTtl(CreateTtlRequest {
            path: "/a".into(),
            data: None,
            acl: vec![],
            flags: 6,
            ttl: 0xFF_FFFF_FFFF,
        }),
        21,
        &cat(&[
            path,
            NULL,
            &[0, 0, 0, 0],
            &[0, 0, 0, 6],
            &[0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff],
        ]),
    );
    check_request(
        &Request::Delete(DeleteRequest {
            path: "/a".into(),
            version: 3,
        }),
        2,
        &cat(&[path, &[0, 0, 0, 3]]),
    );
    check_request(
        &Request::Exists(ExistsRequest {
            path: "/a".into(),
            watch: true,
        }),
        3,
        &cat(&[path, &[1]]),
    );
    check_request(
        &Request::GetData(GetDataRequest {
            path: "/a".into(),
            watch: false,
        }),
        4,
        &cat(&[path, &[0]]),
    );
    check_request(
        &Request::SetData(SetDataRequest {
            path: "/a".into(),
            data: Some(vec![]),
            version: -1,
        }),
        5,
        &cat(&[path, &[0, 0, 0, 0], NULL]),
    );
    check_request(
        &Request::GetAcl(GetAclRequest { path: "/a".into() }),
        6,
        path,
    );
    check_request(
        &Request::SetAcl(SetAclRequest {
            path: "/a".into(),
            acl: Acl::open(),
            version: 0,
        }),
        7,
        &cat(&[path, OPEN_ACL, &[0, 0, 0, 0]]),
    );
    check_request(
        &Request::GetChildren {
            with_stat: false,
            req: GetChildrenRequest {
                path: "/a".into(),
                watch: true,
            },
        },
        8,
        &cat(&[path, &[1]]),
    );
    check_request(
        &Request::GetChildren {
            with_stat: true,
            req: GetChildrenRequest {
                path: "/a".into(),
                watch: false,
            },
        },
        12,
        &cat(&[path, &[0]]),
    );
    check_request(&Request::Sync(SyncRequest { path: "/a".into() }), 9, path);
    check_request(&Request::Ping, 11, &[]);
    check_request(
        &Request::Reconfig(ReconfigRequest {
            joining_servers: String::new(),
            leaving_servers: "3".into(),
            new_members: String::new(),
            cur_config_id: 0x1_0000_0000,
        }),
        16,
        &[
            0, 0, 0, 0, 0, 0, 0, 1, b'3', 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0,
        ],
    );
    check_request(
        &Request::CheckWatches(RemoveWatchesRequest {
            path: "/a".into(),
            watcher_type: 2,
        }),
        17,
        &cat(&[path, &[0, 0, 0, 2]]),
    );
    check_request(
        &Request::RemoveWatches(RemoveWatchesRequest {
            path: "/a".into(),
            watcher_type: 1,
        }),
        18,
        &cat(&[path, &[0, 0, 0, 1]]),
    );
    check_request(
        &Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: b"a:b".to_vec(),
        }),
        100,
        &cat(&[&[0, 0, 0, 0, 0, 0, 0, 6], b"digest", &[0, 0, 0, 3], b"a:b"]),
    );
    check_request(
        &Request::Sasl(vec![0xde, 0xad]),
        102,
        &[0, 0, 0, 2, 0xde, 0xad],
    );
    check_request(
        &Request::GetEphemerals(PathRequest { path: "/a".into() }),
        103,
        path,
    );
    check_request(
        &Request::GetAllChildrenNumber(PathRequest { path: "/a".into() }),
        104,
        path,
    );
    check_request(
        &Request::AddWatch(AddWatchRequest {
            path: "/a".into(),
            mode: 0,
        }),
        106,
        &cat(&[path, &[0, 0, 0, 0]]),
    );
    check_request(&Request::WhoAmI, 107, &[]);
    check_request(&Request::CloseSession, -11, &[]);
}

#[test]
fn kazoo_null_prefix_in_get_ephemerals() {
    let mut r = Reader::new(NULL);
    assert_eq!(
        Request::decode(103, &mut r).unwrap(),
        Request::GetEphemerals(PathRequest {
            path: String::new()
        })
    );
    // A null SASL token reads as empty.
    let mut r = Reader::new(NULL);
    assert_eq!(Request::decode(102, &mut r).unwrap(), Request::Sasl(vec![]));
}

#[test]
fn set_watches_101_normalised_to_set_watches2_shape() {
    let sw = set_watches();
    let expected = Request::SetWatches {
        v2: false,
        req: SetWatches2 {
            relative_zxid: 0x10,
            data_watches: sw.data_watches.clone(),
            exist_watches: vec![],
            child_watches: sw.child_watches.clone(),
            persistent_watches: vec![],
            persistent_recursive_watches: vec![],
        },
    };
    // 101 carries only the four SetWatches fields, and re-encodes to them.
    check_request(&expected, 101, SET_WATCHES);

    // 105 carries all six.
    let body2 = cat(&[SET_WATCHES, &[0, 0, 0, 0], &[0, 0, 0, 1, 0, 0, 0, 1, b'/']]);
    check_request(
        &Request::SetWatches {
            v2: true,
            req: SetWatches2 {
                relative_zxid: 0x10,
                data_watches: sw.data_watches,
                exist_watches: vec![],
                child_watches: sw.child_watches,
                persistent_watches: vec![],
                persistent_recursive_watches: vec!["/".into()],
            },
        },
        105,
        &body2,
    );
}

#[test]
fn unknown_opcodes() {
    // 0 (notification), 13 (top-level check), 99 and other unassigned or
    // server-internal numbers take the "unimplemented" path.
    for opcode in [0, 13, 99, 10, 20, -10, -1, 23, 108, i32::MIN, i32::MAX] {
        let body = [0, 0, 0, 2, b'/', b'a', 0, 0, 0, 0];
        let mut r = Reader::new(&body);
        assert_eq!(
            Request::decode(opcode, &mut r),
            Err(JuteError::Unknown {
                what: "opcode",
                value: opcode
            }),
            "opcode {opcode}"
        );
        let mut r = Reader::new(&[]);
        assert_eq!(
            Request::decode(opcode, &mut r),
            Err(JuteError::Unknown {
                what: "opcode",
                value: opcode
            })
        );
    }
}

// ---------------------------------------------------------------------------
// multi / multiRead requests
// ---------------------------------------------------------------------------

const DONE: &[u8] = &[0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff];

#[test]
fn multi_request_create_delete_set_data_check() {
    let ops = vec![
        MultiOp::Create {
            op: 1,
            req: CreateRequest {
                path: "/a".into(),
                data: Some(b"x".to_vec()),
                acl: Acl::open(),
                flags: 0,
            },
        },
        MultiOp::Delete(DeleteRequest {
            path: "/b".into(),
            version: -1,
        }),
        MultiOp::SetData(SetDataRequest {
            path: "/c".into(),
            data: Some(b"yz".to_vec()),
            version: 3,
        }),
        MultiOp::Check(CheckVersionRequest {
            path: "/d".into(),
            version: 7,
        }),
    ];
    #[rustfmt::skip]
    let expected = cat(&[
        &[0, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0xff],  // MultiHeader(create, false, -1)
        &[0, 0, 0, 2, b'/', b'a'],
        &[0, 0, 0, 1, b'x'],
        OPEN_ACL,
        &[0, 0, 0, 0],
        &[0, 0, 0, 2, 0, 0xff, 0xff, 0xff, 0xff],  // MultiHeader(delete, false, -1)
        &[0, 0, 0, 2, b'/', b'b', 0xff, 0xff, 0xff, 0xff],
        &[0, 0, 0, 5, 0, 0xff, 0xff, 0xff, 0xff],  // MultiHeader(setData, false, -1)
        &[0, 0, 0, 2, b'/', b'c', 0, 0, 0, 2, b'y', b'z', 0, 0, 0, 3],
        &[0, 0, 0, 13, 0, 0xff, 0xff, 0xff, 0xff], // MultiHeader(check, false, -1)
        &[0, 0, 0, 2, b'/', b'd', 0, 0, 0, 7],
        DONE,                                      // MultiHeader(-1, true, -1)
    ]);
    let mut out = Vec::new();
    write_multi(&ops, &mut out);
    assert_eq!(out, expected);
    check_request(&Request::Multi(ops.clone()), 14, &expected);
    assert_eq!(
        ops.iter().map(MultiOp::op).collect::<Vec<_>>(),
        [1, 2, 5, 13]
    );
    assert_eq!(
        ops.iter().map(MultiOp::path).collect::<Vec<_>>(),
        ["/a", "/b", "/c", "/d"]
    );
}

#[test]
fn multi_request_create_variants() {
    // create2 and createContainer carry CreateRequest; createTTL carries
    // CreateTTLRequest.
    let req = CreateRequest {
        path: "/c".into(),
        data: None,
        acl: vec![],
        flags: 4,
    };
    let create_body = &[
        0, 0, 0, 2, b'/', b'c', 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 4,
    ][..];
    let ops = vec![
        MultiOp::Create {
            op: 15,
            req: req.clone(),
        },
        MultiOp::Create { op: 19, req },
        MultiOp::CreateTtl(CreateTtlRequest {
            path: "/t".into(),
            data: Some(vec![]),
            acl: vec![],
            flags: 5,
            ttl: 1,
        }),
    ];
    let expected = cat(&[
        &[0, 0, 0, 15, 0, 0xff, 0xff, 0xff, 0xff],
        create_body,
        &[0, 0, 0, 19, 0, 0xff, 0xff, 0xff, 0xff],
        create_body,
        &[0, 0, 0, 21, 0, 0xff, 0xff, 0xff, 0xff],
        &[0, 0, 0, 2, b'/', b't', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5],
        &[0, 0, 0, 0, 0, 0, 0, 1],
        DONE,
    ]);
    check_request(&Request::Multi(ops), 14, &expected);
}

#[test]
fn empty_multi_is_just_done_header() {
    check_request(&Request::Multi(vec![]), 14, DONE);
    check_request(&Request::MultiRead(vec![]), 22, DONE);
}

#[test]
fn multi_read_request() {
    let ops = vec![
        MultiOp::GetData(GetDataRequest {
            path: "/a".into(),
            watch: false,
        }),
        MultiOp::GetChildren(GetChildrenRequest {
            path: "/".into(),
            watch: true,
        }),
    ];
    let expected = cat(&[
        &[0, 0, 0, 4, 0, 0xff, 0xff, 0xff, 0xff],
        &[0, 0, 0, 2, b'/', b'a', 0],
        &[0, 0, 0, 8, 0, 0xff, 0xff, 0xff, 0xff],
        &[0, 0, 0, 1, b'/', 1],
        DONE,
    ]);
    check_request(&Request::MultiRead(ops), 22, &expected);
}

#[test]
fn multi_request_errors() {
    let delete = cat(&[
        &[0, 0, 0, 2, 0, 0xff, 0xff, 0xff, 0xff],
        &[0, 0, 0, 2, b'/', b'b', 0xff, 0xff, 0xff, 0xff],
    ]);
    let get_data = cat(&[
        &[0, 0, 0, 4, 0, 0xff, 0xff, 0xff, 0xff],
        &[0, 0, 0, 2, b'/', b'a', 0],
    ]);
    // A write sub-op in multiRead, a read sub-op in multi.
    assert_eq!(
        Request::decode(22, &mut Reader::new(&cat(&[&delete, DONE]))),
        Err(JuteError::Multi("read and write sub-ops mixed"))
    );
    assert_eq!(
        Request::decode(14, &mut Reader::new(&cat(&[&get_data, DONE]))),
        Err(JuteError::Multi("read and write sub-ops mixed"))
    );
    assert_eq!(
        Request::decode(14, &mut Reader::new(&cat(&[&delete, &get_data, DONE]))),
        Err(JuteError::Multi("read and write sub-ops mixed"))
    );
    // Sub-op types that may not appear in a multi.
    for sub in [3, 9, 12, 14, 22, 100, 0, -1] {
        let body = cat(&[&[0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], DONE]);
        let mut body = body;
        body[..4].copy_from_slice(&i32::to_be_bytes(sub));
        assert_eq!(
            read_multi(&mut Reader::new(&body), false),
            Err(JuteError::Multi("unknown sub-op type")),
            "sub-op {sub}"
        );
    }
    // Missing done header.
    assert!(matches!(
        Request::decode(14, &mut Reader::new(&delete)),
        Err(JuteError::Eof { .. })
    ));
    // Any non-zero `done` byte ends the list, whatever the type says.
    let mut r = Reader::new(&[0, 0, 0, 2, 7, 0, 0, 0, 0]);
    assert_eq!(read_multi(&mut r, false), Ok(vec![]));
}

// ---------------------------------------------------------------------------
// multi results
// ---------------------------------------------------------------------------

#[test]
fn multi_results_success() {
    let results = vec![
        MultiResult::Create("/a".into()),
        MultiResult::Create2("/b".into(), stat()),
        MultiResult::Delete,
        MultiResult::SetData(stat()),
        MultiResult::Check,
    ];
    let expected = cat(&[
        &[0, 0, 0, 1, 0, 0, 0, 0, 0],
        &[0, 0, 0, 2, b'/', b'a'],
        &[0, 0, 0, 15, 0, 0, 0, 0, 0],
        &[0, 0, 0, 2, b'/', b'b'],
        &STAT,
        &[0, 0, 0, 2, 0, 0, 0, 0, 0],
        &[0, 0, 0, 5, 0, 0, 0, 0, 0],
        &STAT,
        &[0, 0, 0, 13, 0, 0, 0, 0, 0],
        DONE,
    ]);
    let mut out = Vec::new();
    write_multi_results(&results, &mut out);
    assert_eq!(out, expected);
    let mut r = Reader::new(&expected);
    assert_eq!(read_multi_results(&mut r).unwrap(), results);
    assert!(r.is_empty());
}

#[test]
fn multi_results_failed() {
    // Failed multi: every result is type -1; earlier ops report 0, the failing
    // op its code, later ops -2. The code appears in the header and again in
    // the ErrorResponse body.
    let results = vec![
        MultiResult::Error(0),
        MultiResult::Error(ErrorCode::NoNode.code()),
        MultiResult::Error(ErrorCode::RuntimeInconsistency.code()),
    ];
    #[rustfmt::skip]
    let expected = cat(&[
        &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0], &[0, 0, 0, 0],
        &[0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0x9b], &[0xff, 0xff, 0xff, 0x9b],
        &[0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0xfe], &[0xff, 0xff, 0xff, 0xfe],
        DONE,
    ]);
    let mut out = Vec::new();
    write_multi_results(&results, &mut out);
    assert_eq!(out, expected);
    let mut r = Reader::new(&expected);
    assert_eq!(read_multi_results(&mut r).unwrap(), results);
    assert!(r.is_empty());
}

#[test]
fn multi_read_results() {
    let results = vec![
        MultiResult::GetData(Some(b"hello".to_vec()), stat()),
        MultiResult::GetData(None, stat()),
        MultiResult::GetData(Some(vec![]), stat()),
        MultiResult::GetChildren(vec!["x".into(), "yz".into()]),
        MultiResult::GetChildren(vec![]),
        MultiResult::Error(ErrorCode::NoNode.code()),
    ];
    #[rustfmt::skip]
    let expected = cat(&[
        &[0, 0, 0, 4, 0, 0, 0, 0, 0], &[0, 0, 0, 5], b"hello", &STAT,
        &[0, 0, 0, 4, 0, 0, 0, 0, 0], NULL, &STAT,
        &[0, 0, 0, 4, 0, 0, 0, 0, 0], &[0, 0, 0, 0], &STAT,
        &[0, 0, 0, 8, 0, 0, 0, 0, 0], &[0, 0, 0, 2, 0, 0, 0, 1, b'x', 0, 0, 0, 2, b'y', b'z'],
        &[0, 0, 0, 8, 0, 0, 0, 0, 0], &[0, 0, 0, 0],
        &[0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0x9b], &[0xff, 0xff, 0xff, 0x9b],
        DONE,
    ]);
    let mut out = Vec::new();
    write_multi_results(&results, &mut out);
    assert_eq!(out, expected);
    let mut r = Reader::new(&expected);
    assert_eq!(read_multi_results(&mut r).unwrap(), results);
    assert!(r.is_empty());
}

#[test]
fn empty_multi_results() {
    let mut out = Vec::new();
    write_multi_results(&[], &mut out);
    assert_eq!(out, DONE);
    assert_eq!(read_multi_results(&mut Reader::new(DONE)), Ok(vec![]));
}

#[test]
fn multi_results_unknown_type() {
    let body = cat(&[&[0, 0, 0, 3, 0, 0, 0, 0, 0], DONE]);
    assert_eq!(
        read_multi_results(&mut Reader::new(&body)),
        Err(JuteError::Multi("unknown result type"))
    );
}

// ---------------------------------------------------------------------------
// Transactions (this project's own layout, documented in txn.rs)
// ---------------------------------------------------------------------------

/// `txn` has type `opcode`, encodes to `body`, and `body` decodes back.
#[track_caller]
fn check_txn(txn: &Txn, opcode: i32, body: &[u8]) {
    assert_eq!(txn.op(), opcode);
    let mut out = Vec::new();
    txn.write(&mut out);
    assert_eq!(out, body, "body of {txn:?}");
    let mut r = Reader::new(body);
    assert_eq!(&Txn::read(opcode, &mut r).expect("decode"), txn);
    assert!(r.is_empty());
}

#[test]
fn txn_bodies() {
    let path = &[0, 0, 0, 2, b'/', b'a'][..];
    check_txn(
        &Txn::Create {
            path: "/a".into(),
            data: Some(b"d".to_vec()),
            acl: Acl::open(),
            ephemeral_owner: 0x0100_0000_0000_0001,
            parent_cversion: 9,
        },
        1,
        &cat(&[
            path,
            &[0, 0, 0, 1, b'd'],
            OPEN_ACL,
            &[0x01, 0, 0, 0, 0, 0, 0, 0x01],
            &[0, 0, 0, 9],
        ]),
    );
    // Null data stays null; container / TTL owners.
    check_txn(
        &Txn::Create {
            path: "/a".into(),
            data: None,
            acl: vec![],
            ephemeral_owner: CONTAINER_OWNER,
            parent_cversion: 0,
        },
        1,
        &cat(&[
            path,
            NULL,
            &[0, 0, 0, 0],
            &[0x80, 0, 0, 0, 0, 0, 0, 0],
            &[0, 0, 0, 0],
        ]),
    );
    check_txn(
        &Txn::Create {
            path: "/a".into(),
            data: Some(vec![]),
            acl: vec![],
            ephemeral_owner: TTL_MARKER | 1000,
            parent_cversion: -1,
        },
        1,
        &cat(&[
            path,
            &[0, 0, 0, 0],
            &[0, 0, 0, 0],
            &[0xff, 0, 0, 0, 0, 0, 0x03, 0xe8],
            NULL,
        ]),
    );
    check_txn(&Txn::Delete { path: "/a".into() }, 2, path);
    check_txn(&Txn::DeleteContainer { path: "/a".into() }, 20, path);
    check_txn(
        &Txn::SetData {
            path: "/a".into(),
            data: None,
            version: 2,
        },
        5,
        &cat(&[path, NULL, &[0, 0, 0, 2]]),
    );
    check_txn(
        &Txn::SetAcl {
            path: "/a".into(),
            acl: Acl::open(),
            version: 1,
        },
        7,
        &cat(&[path, OPEN_ACL, &[0, 0, 0, 1]]),
    );
    check_txn(
        &Txn::Check {
            path: "/a".into(),
            version: 4,
        },
        13,
        &cat(&[path, &[0, 0, 0, 4]]),
    );
    check_txn(
        &Txn::CreateSession { timeout_ms: 30_000 },
        -10,
        &[0, 0, 0x75, 0x30],
    );
    check_txn(&Txn::CloseSession, -11, &[]);
    check_txn(&Txn::Error { err: -101 }, -1, &[0xff, 0xff, 0xff, 0x9b]);
}

#[test]
fn txn_multi() {
    let txn = Txn::Multi(vec![
        Txn::Delete { path: "/a".into() },
        Txn::Check {
            path: "/b".into(),
            version: 1,
        },
        Txn::CloseSession,
    ]);
    #[rustfmt::skip]
    let body = cat(&[
        &[0, 0, 0, 3],                                     // count
        &[0, 0, 0, 2], &[0, 0, 0, 6], &[0, 0, 0, 2, b'/', b'a'],
        &[0, 0, 0, 13], &[0, 0, 0, 10], &[0, 0, 0, 2, b'/', b'b', 0, 0, 0, 1],
        &[0xff, 0xff, 0xff, 0xf5], &[0, 0, 0, 0],
    ]);
    check_txn(&txn, 14, &body);
    check_txn(&Txn::Multi(vec![]), 14, &[0, 0, 0, 0]);
}

#[test]
fn txn_record() {
    let rec = TxnRecord {
        header: TxnHeader {
            session_id: 2,
            cxid: 1,
            zxid: 0x0000_0001_0000_0001,
            time_ms: 1,
            op: -1,
        },
        txn: Txn::Error { err: -110 },
    };
    check(
        &rec,
        &[
            0, 0, 0, 0, 0, 0, 0, 2, // sessionId
            0, 0, 0, 1, // cxid
            0, 0, 0, 1, 0, 0, 0, 1, // zxid
            0, 0, 0, 0, 0, 0, 0, 1, // time
            0xff, 0xff, 0xff, 0xff, // type error
            0xff, 0xff, 0xff, 0x92, // err -110
        ],
    );
}

#[test]
fn txn_errors() {
    assert_eq!(
        Txn::read(99, &mut Reader::new(&[])),
        Err(JuteError::Unknown {
            what: "txn type",
            value: 99
        })
    );
    // A nested multi.
    let nested = [0, 0, 0, 1, 0, 0, 0, 14, 0, 0, 0, 4, 0, 0, 0, 0];
    assert_eq!(
        Txn::read(14, &mut Reader::new(&nested)),
        Err(JuteError::Multi("nested multi txn"))
    );
    // A sub-txn body with bytes its type does not use.
    let trailing = [0, 0, 0, 1, 0xff, 0xff, 0xff, 0xf5, 0, 0, 0, 1, 0];
    assert_eq!(
        Txn::read(14, &mut Reader::new(&trailing)),
        Err(JuteError::Trailing(1))
    );
    // A count larger than the input can hold.
    assert_eq!(
        Txn::read(14, &mut Reader::new(&[0, 0, 0, 2, 0, 0, 0, 0])),
        Err(JuteError::BadLength(2))
    );
    assert_eq!(
        Txn::read(14, &mut Reader::new(&[0xff, 0xff, 0xff, 0xff])),
        Err(JuteError::BadLength(-1))
    );
}
