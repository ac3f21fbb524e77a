//! Round-trip properties: for arbitrary values, encode -> decode gives back
//! the original, and decoding consumes exactly the encoded bytes.

mod common;

use common::*;
use jute::codec::Reader;
use jute::request::{read_multi, read_multi_results, write_multi, write_multi_results};
use jute::txn::{Txn, TxnRecord};
use jute::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Encode, decode with `from_bytes` (which rejects trailing bytes), compare;
/// then decode again with junk appended and check the reader stops exactly at
/// the end of the record (records whose encoding is self-delimiting only).
fn roundtrip<R: Record + PartialEq + std::fmt::Debug>(
    v: &R,
    self_delimiting: bool,
) -> std::result::Result<(), TestCaseError> {
    let bytes = jute::to_bytes(v);
    let back: R = jute::from_bytes(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, v);
    // Re-encoding the decoded value is byte-identical.
    prop_assert_eq!(jute::to_bytes(&back), bytes.clone());
    if self_delimiting {
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[0xAB, 0xCD, 0xEF]);
        let mut r = Reader::new(&padded);
        let back = R::read(&mut r).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, v);
        prop_assert_eq!(r.position(), bytes.len());
        prop_assert_eq!(r.rest(), &[0xAB, 0xCD, 0xEF][..]);
    }
    Ok(())
}

macro_rules! roundtrip_tests {
    ($($name:ident: $ty:ty = $strat:expr;)*) => {
        proptest! {
            $(
                #[test]
                fn $name(v in $strat) {
                    roundtrip::<$ty>(&v, true)?;
                }
            )*
        }
    };
}

roundtrip_tests! {
    rt_i32: i32 = any::<i32>();
    rt_i64: i64 = any::<i64>();
    rt_bool: bool = any::<bool>();
    rt_string: String = s();
    rt_id: Id = id();
    rt_acl: Acl = acl();
    rt_stat: Stat = stat();
    rt_client_info: ClientInfo = client_info();
    rt_request_header: RequestHeader = request_header();
    rt_reply_header: ReplyHeader = reply_header();
    rt_auth_packet: AuthPacket = auth_packet();
    rt_create_request: CreateRequest = create_request();
    rt_create_ttl_request: CreateTtlRequest = create_ttl_request();
    rt_delete_request: DeleteRequest = delete_request();
    rt_exists_request: ExistsRequest = exists_request();
    rt_get_data_request: GetDataRequest = get_data_request();
    rt_set_data_request: SetDataRequest = set_data_request();
    rt_get_acl_request: GetAclRequest = get_acl_request();
    rt_set_acl_request: SetAclRequest = set_acl_request();
    rt_get_children_request: GetChildrenRequest = get_children_request();
    rt_check_version_request: CheckVersionRequest = check_version_request();
    rt_sync_request: SyncRequest = sync_request();
    rt_reconfig_request: ReconfigRequest = reconfig_request();
    rt_remove_watches_request: RemoveWatchesRequest = remove_watches_request();
    rt_add_watch_request: AddWatchRequest = add_watch_request();
    rt_set_watches: SetWatches = set_watches();
    rt_set_watches2: SetWatches2 = set_watches2();
    rt_path_request: PathRequest = path_request();
    rt_multi_header: MultiHeader = multi_header();
    rt_create_response: CreateResponse = create_response();
    rt_create2_response: Create2Response = create2_response();
    rt_stat_response: StatResponse = stat_response();
    rt_get_data_response: GetDataResponse = get_data_response();
    rt_get_acl_response: GetAclResponse = get_acl_response();
    rt_get_children_response: GetChildrenResponse = get_children_response();
    rt_get_children2_response: GetChildren2Response = get_children2_response();
    rt_sync_response: SyncResponse = sync_response();
    rt_get_ephemerals_response: GetEphemeralsResponse = get_ephemerals_response();
    rt_get_all_children_number_response: GetAllChildrenNumberResponse =
        get_all_children_number_response();
    rt_who_am_i_response: WhoAmIResponse = who_am_i_response();
    rt_error_response: ErrorResponse = error_response();
    rt_watcher_event: WatcherEvent = watcher_event();
    rt_txn_header: TxnHeader = txn_header();
    rt_txn_record: TxnRecord = txn_record();
}

proptest! {
    // ConnectRequest/ConnectResponse end with an optional byte, so they only
    // round-trip when they span the whole frame.
    #[test]
    fn rt_connect_request(v in connect_request()) {
        roundtrip(&v, false)?;
        let len = jute::to_bytes(&v).len();
        prop_assert_eq!(len, 4 + 8 + 4 + 8 + 4 + v.passwd.len() + usize::from(v.read_only.is_some()));
    }

    #[test]
    fn rt_connect_response(v in connect_response()) {
        roundtrip(&v, false)?;
        let len = jute::to_bytes(&v).len();
        prop_assert_eq!(len, 4 + 4 + 8 + 4 + v.passwd.len() + usize::from(v.read_only.is_some()));
    }

    #[test]
    fn rt_stat_is_68_bytes(v in stat()) {
        prop_assert_eq!(jute::to_bytes(&v).len(), 68);
    }

    #[test]
    fn rt_request(req in request()) {
        let mut body = Vec::new();
        req.write_body(&mut body);
        let mut r = Reader::new(&body);
        let back = Request::decode(req.op(), &mut r)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(r.is_empty(), "{} bytes left over", r.remaining());
        prop_assert_eq!(back.op(), req.op());
        prop_assert_eq!(&back, &req);
        let mut again = Vec::new();
        back.write_body(&mut again);
        prop_assert_eq!(again, body);
    }

    #[test]
    fn rt_multi_write_ops(ops in vec(write_multi_op(), 0..8)) {
        let mut body = Vec::new();
        write_multi(&ops, &mut body);
        let mut r = Reader::new(&body);
        prop_assert_eq!(read_multi(&mut r, false).map_err(|e| TestCaseError::fail(e.to_string()))?, ops.clone());
        prop_assert!(r.is_empty());
        // The same body is not a valid multiRead unless it is empty.
        let mut r = Reader::new(&body);
        prop_assert_eq!(read_multi(&mut r, true).is_ok(), ops.is_empty());
    }

    #[test]
    fn rt_multi_read_ops(ops in vec(read_multi_op(), 0..8)) {
        let mut body = Vec::new();
        write_multi(&ops, &mut body);
        let mut r = Reader::new(&body);
        prop_assert_eq!(read_multi(&mut r, true).map_err(|e| TestCaseError::fail(e.to_string()))?, ops.clone());
        prop_assert!(r.is_empty());
        let mut r = Reader::new(&body);
        prop_assert_eq!(read_multi(&mut r, false).is_ok(), ops.is_empty());
    }

    #[test]
    fn rt_multi_results(results in vec(multi_result(), 0..8)) {
        let mut body = Vec::new();
        write_multi_results(&results, &mut body);
        let mut r = Reader::new(&body);
        let back = read_multi_results(&mut r).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(r.is_empty());
        prop_assert_eq!(back, results);
    }

    #[test]
    fn rt_txn(t in txn()) {
        let mut body = Vec::new();
        t.write(&mut body);
        let mut r = Reader::new(&body);
        let back = Txn::read(t.op(), &mut r).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(r.is_empty(), "{} bytes left over", r.remaining());
        prop_assert_eq!(back, t);
    }

    #[test]
    fn rt_txn_record_stream(recs in vec(txn_record(), 0..6)) {
        // Records written back to back (as in a log) read back in sequence.
        let mut out = Vec::new();
        for rec in &recs {
            rec.write(&mut out);
        }
        let mut r = Reader::new(&out);
        let mut back = Vec::new();
        while !r.is_empty() {
            back.push(TxnRecord::read(&mut r).map_err(|e| TestCaseError::fail(e.to_string()))?);
        }
        prop_assert_eq!(back, recs);
    }

    #[test]
    fn rt_header_plus_request(xid in any::<i32>(), req in request()) {
        // A full client frame body: RequestHeader then the op's record.
        let mut frame = jute::to_bytes(&RequestHeader { xid, op: req.op() });
        req.write_body(&mut frame);
        let mut r = Reader::new(&frame);
        let h = RequestHeader::read(&mut r).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(h.xid, xid);
        let back = Request::decode(h.op, &mut r).map_err(|e| TestCaseError::fail(e.to_string()))?;
        r.finish().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, req);
    }
}
