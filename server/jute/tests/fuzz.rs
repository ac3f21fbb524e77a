//! Hostile input: every decoder, fed arbitrary or adversarially mutated
//! bytes, returns Ok or Err without panicking, and allocates no more than a
//! small multiple of the input size (a length prefix alone can never make it
//! reserve memory). Allocation is measured per thread by a counting global
//! allocator.

mod common;

use jute::codec::Reader;
use jute::request::{read_multi, read_multi_results, write_multi_results};
use jute::txn::{Txn, TxnRecord};
use jute::*;
use proptest::collection::vec;
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

// ---------------------------------------------------------------------------
// Counting allocator
// ---------------------------------------------------------------------------

struct Counting;

thread_local! {
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static TOTAL: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = ACTIVE.try_with(|a| {
        if a.get() {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
            let _ = TOTAL.try_with(|t| t.set(t.get().saturating_add(size)));
        }
    });
}

// SAFETY: forwards every call to `System` unchanged; only records sizes in
// const-initialised, destructor-free thread-locals (which never allocate).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Run `f`, returning (largest single allocation, total bytes allocated) on
/// this thread while it ran. The result is dropped inside the measurement.
fn measure<T>(f: impl FnOnce() -> T) -> (usize, usize) {
    LARGEST.with(|l| l.set(0));
    TOTAL.with(|t| t.set(0));
    ACTIVE.with(|a| a.set(true));
    let out = f();
    ACTIVE.with(|a| a.set(false));
    drop(out);
    (LARGEST.with(Cell::get), TOTAL.with(Cell::get))
}

/// What an input of `len` bytes may cost: decoded values are at most a small
/// constant factor larger than their encoding (a 4-byte string prefix becomes
/// a 24-byte `String`, a 9-byte multi result header a ~100-byte enum), plus
/// vector doubling, plus a fixed allowance for small first allocations.
fn budget(len: usize) -> usize {
    64 * len + 4096
}

/// Decode `bytes` with `f` (a named decoder); it must not panic (a panic fails
/// the test) and must stay within budget.
#[track_caller]
fn guarded<T>(name: &str, bytes: &[u8], f: impl FnOnce(&[u8]) -> T) {
    let (largest, total) = measure(|| f(bytes));
    let limit = budget(bytes.len());
    assert!(
        largest <= limit && total <= limit,
        "{name}: {}-byte input allocated largest={largest} total={total} (budget {limit}): {:02x?}",
        bytes.len(),
        &bytes[..bytes.len().min(64)]
    );
}

#[test]
fn allocation_counter_is_live() {
    // The harness must actually see allocations, or every budget check above
    // would pass vacuously.
    let (largest, total) = measure(|| vec![0u8; 1 << 20]);
    assert!(largest >= 1 << 20 && total >= 1 << 20);
    let (largest, _) = measure(|| {
        jute::from_bytes::<GetChildrenResponse>(&[0, 0, 0, 1, 0, 0, 0, 3, b'a', b'b', b'c'])
    });
    assert!(largest > 0);
    let (largest, total) = measure(|| 1 + 1);
    assert_eq!((largest, total), (0, 0));
}

// ---------------------------------------------------------------------------
// Every decoder
// ---------------------------------------------------------------------------

/// Decode as one record type, both as a whole frame and as a prefix; if the
/// whole-frame decode succeeds, the value must re-encode and decode to itself.
fn record<R: Record + PartialEq + std::fmt::Debug>(name: &str, bytes: &[u8]) {
    guarded(name, bytes, |b| {
        let mut r = Reader::new(b);
        let _ = R::read(&mut r);
        assert!(r.position() <= b.len());
    });
    guarded(name, bytes, |b| {
        if let Ok(v) = jute::from_bytes::<R>(b) {
            let again = jute::to_bytes(&v);
            assert_eq!(jute::from_bytes::<R>(&again).as_ref(), Ok(&v), "{name}");
        }
    });
}

fn every_record(bytes: &[u8]) {
    macro_rules! each {
        ($($t:ty),* $(,)?) => { $( record::<$t>(stringify!($t), bytes); )* };
    }
    each!(
        i32,
        i64,
        bool,
        String,
        Id,
        Acl,
        Stat,
        ClientInfo,
        RequestHeader,
        ReplyHeader,
        AuthPacket,
        CreateRequest,
        CreateTtlRequest,
        DeleteRequest,
        ExistsRequest,
        GetDataRequest,
        SetDataRequest,
        GetAclRequest,
        SetAclRequest,
        GetChildrenRequest,
        CheckVersionRequest,
        SyncRequest,
        ReconfigRequest,
        RemoveWatchesRequest,
        AddWatchRequest,
        SetWatches,
        SetWatches2,
        PathRequest,
        MultiHeader,
        CreateResponse,
        Create2Response,
        StatResponse,
        GetDataResponse,
        GetAclResponse,
        GetChildrenResponse,
        GetChildren2Response,
        SyncResponse,
        GetEphemeralsResponse,
        GetAllChildrenNumberResponse,
        WhoAmIResponse,
        ErrorResponse,
        WatcherEvent,
        ConnectRequest,
        ConnectResponse,
        TxnHeader,
        TxnRecord,
    );
}

fn every_request(bytes: &[u8]) {
    for opcode in -11..=110 {
        guarded(&format!("Request::decode({opcode})"), bytes, |b| {
            let mut r = Reader::new(b);
            if let Ok(req) = Request::decode(opcode, &mut r) {
                // Whatever decodes re-encodes to something that decodes the same.
                let consumed = r.position();
                let mut body = Vec::new();
                req.write_body(&mut body);
                let mut r2 = Reader::new(&body);
                assert_eq!(Request::decode(req.op(), &mut r2).as_ref(), Ok(&req));
                assert!(consumed <= b.len());
            }
        });
    }
}

fn every_txn(bytes: &[u8]) {
    for opcode in -11..=110 {
        guarded(&format!("Txn::read({opcode})"), bytes, |b| {
            if let Ok(t) = Txn::read(opcode, &mut Reader::new(b)) {
                let mut body = Vec::new();
                t.write(&mut body);
                assert_eq!(Txn::read(t.op(), &mut Reader::new(&body)).as_ref(), Ok(&t));
            }
        });
    }
}

fn every_multi(bytes: &[u8]) {
    guarded("read_multi_results", bytes, |b| {
        if let Ok(res) = read_multi_results(&mut Reader::new(b)) {
            let mut out = Vec::new();
            write_multi_results(&res, &mut out);
            assert_eq!(
                read_multi_results(&mut Reader::new(&out)).as_ref(),
                Ok(&res)
            );
        }
    });
    guarded("read_multi(write)", bytes, |b| {
        let _ = read_multi(&mut Reader::new(b), false);
    });
    guarded("read_multi(read)", bytes, |b| {
        let _ = read_multi(&mut Reader::new(b), true);
    });
}

/// Feed `bytes` to every decoder the crate has.
fn everything(bytes: &[u8]) {
    every_record(bytes);
    every_request(bytes);
    every_txn(bytes);
    every_multi(bytes);
}

// ---------------------------------------------------------------------------
// Hand-picked hostile inputs
// ---------------------------------------------------------------------------

const HOSTILE: [i32; 10] = [
    i32::MAX,
    i32::MIN,
    -2,
    -1,
    0x4000_0000,
    0x1000_0000,
    0x0100_0000,
    1_000_000,
    65_536,
    0x7fff_fff0,
];

/// A hostile `int` spliced at every offset of small buffers (zeros, 0xff,
/// and a "valid-ish" pattern), so that every length/count field of every
/// decoder sees every hostile value.
#[test]
fn hostile_lengths_at_every_offset() {
    for fill in [0x00u8, 0xff, 0x01] {
        for len in [4usize, 10, 16, 33, 48, 80] {
            for at in 0..=len - 4 {
                for v in HOSTILE {
                    let mut b = vec![fill; len];
                    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
                    everything(&b);
                }
            }
        }
    }
}

/// A 10-byte input claiming 2^31-1 (or 2^30) elements fails at once, with
/// BadLength, and without a large allocation.
#[test]
fn huge_vector_counts_fail_fast() {
    for count in [i32::MAX, 0x4000_0000, 0x0100_0000] {
        let c = count.to_be_bytes();
        let ten = [c[0], c[1], c[2], c[3], 0, 0, 0, 1, b'a', 0];
        let start = std::time::Instant::now();

        macro_rules! vec_first {
            ($($t:ty),*) => {$(
                let (largest, _) = measure(|| {
                    assert_eq!(
                        jute::from_bytes::<$t>(&ten),
                        Err(JuteError::BadLength(count as i64)),
                        stringify!($t)
                    );
                });
                assert!(largest < 256, "{}: allocated {largest}", stringify!($t));
            )*};
        }
        vec_first!(
            GetChildrenResponse,
            GetEphemeralsResponse,
            WhoAmIResponse,
            GetAclResponse,
            GetChildren2Response
        );

        // Vectors behind a fixed prefix: SetWatches (after a long), SetAcl and
        // Create (after a path), and a multi txn.
        let mut sw = vec![0u8; 8];
        sw.extend_from_slice(&ten);
        let mut acl = vec![0, 0, 0, 0];
        acl.extend_from_slice(&ten);
        let mut create = vec![0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        create.extend_from_slice(&ten);
        let (largest, _) = measure(|| {
            assert_eq!(
                jute::from_bytes::<SetWatches>(&sw),
                Err(JuteError::BadLength(count as i64))
            );
            assert_eq!(
                jute::from_bytes::<SetWatches2>(&sw),
                Err(JuteError::BadLength(count as i64))
            );
            assert_eq!(
                jute::from_bytes::<SetAclRequest>(&acl),
                Err(JuteError::BadLength(count as i64))
            );
            assert_eq!(
                jute::from_bytes::<CreateRequest>(&create),
                Err(JuteError::BadLength(count as i64))
            );
            assert_eq!(
                Request::decode(op::SET_WATCHES, &mut Reader::new(&sw)),
                Err(JuteError::BadLength(count as i64))
            );
            assert_eq!(
                Txn::read(op::MULTI, &mut Reader::new(&ten)),
                Err(JuteError::BadLength(count as i64))
            );
            // A getChildren multi result claiming `count` children.
            let mut mr = vec![0, 0, 0, 8, 0, 0, 0, 0, 0];
            mr.extend_from_slice(&ten);
            assert_eq!(
                read_multi_results(&mut Reader::new(&mr)),
                Err(JuteError::BadLength(count as i64))
            );
        });
        assert!(largest < 256, "allocated {largest}");
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }
}

#[test]
fn huge_buffer_and_string_lengths_fail_fast() {
    for len in [i32::MAX, 0x4000_0000, 11] {
        let l = len.to_be_bytes();
        let ten = [l[0], l[1], l[2], l[3], 1, 2, 3, 4, 5, 6];
        let (largest, _) = measure(|| {
            let bad = JuteError::BadLength(len as i64);
            assert_eq!(jute::from_bytes::<String>(&ten), Err(bad.clone()));
            assert_eq!(jute::from_bytes::<PathRequest>(&ten), Err(bad));
            assert_eq!(
                jute::from_bytes::<GetDataResponse>(&ten).map(|_| ()),
                Err(JuteError::BadLength(len as i64))
            );
            assert_eq!(
                Request::decode(op::SASL, &mut Reader::new(&ten)),
                Err(JuteError::BadLength(len as i64))
            );
        });
        assert!(largest < 256, "allocated {largest}");
    }
    // Negative lengths other than -1.
    for len in [-2i32, -100, i32::MIN] {
        let l = len.to_be_bytes();
        assert_eq!(
            jute::from_bytes::<PathRequest>(&l),
            Err(JuteError::BadLength(len as i64))
        );
        assert_eq!(
            jute::from_bytes::<GetChildrenResponse>(&l),
            Err(JuteError::BadLength(len as i64))
        );
    }
}

/// The largest vector a small input can legitimately claim (count == bytes
/// remaining) still fails cleanly and within budget.
#[test]
fn counts_equal_to_remaining_bytes() {
    for n in [1usize, 7, 100, 4096] {
        let mut b = (n as i32).to_be_bytes().to_vec();
        b.resize(4 + n, 0);
        everything(&b);
        // n strings need at least 4n bytes: rejected up front.
        assert_eq!(
            jute::from_bytes::<GetChildrenResponse>(&b),
            Err(JuteError::BadLength(n as i64))
        );
        // n Acls need 12n bytes but the bound is only 1 per element: the
        // element reads run out instead.
        assert!(matches!(
            jute::from_bytes::<GetAclResponse>(&b),
            Err(JuteError::Eof { .. })
        ));
        // With 4n bytes, n empty strings are valid.
        b.resize(4 + 4 * n, 0);
        everything(&b);
        let ok = jute::from_bytes::<GetChildrenResponse>(&b).unwrap();
        assert_eq!(ok.children, vec![String::new(); n]);
    }
}

/// A multi of many tiny sub-ops stays within budget, and so does a long run
/// of 9-byte multi results (the worst expansion ratio in the crate).
#[test]
fn many_small_multi_entries() {
    let mut results = vec![0u8; 0];
    for _ in 0..20_000 {
        results.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 0, 0]); // Delete
    }
    results.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff]);
    guarded("many multi results", &results, |b| {
        assert_eq!(
            read_multi_results(&mut Reader::new(b)).unwrap().len(),
            20_000
        );
    });

    let mut ops = Vec::new();
    for _ in 0..20_000 {
        ops.extend_from_slice(&[0, 0, 0, 13, 0, 0xff, 0xff, 0xff, 0xff]); // check
        ops.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]); // path "", version 0
    }
    ops.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff]);
    guarded("many multi ops", &ops, |b| {
        let req = Request::decode(op::MULTI, &mut Reader::new(b)).unwrap();
        assert!(matches!(req, Request::Multi(v) if v.len() == 20_000));
    });

    // A multi txn of many CloseSession bodies (8 bytes each).
    let mut txn = 10_000i32.to_be_bytes().to_vec();
    for _ in 0..10_000 {
        txn.extend_from_slice(&[0xff, 0xff, 0xff, 0xf5, 0, 0, 0, 0]);
    }
    guarded("many sub-txns", &txn, |b| {
        let t = Txn::read(op::MULTI, &mut Reader::new(b)).unwrap();
        assert!(matches!(t, Txn::Multi(v) if v.len() == 10_000));
    });
}

#[test]
fn multi_op_limit() {
    // More than MULTI_OPS_MAX sub-ops is rejected.
    let n = jute::request::MULTI_OPS_MAX + 1;
    let mut ops = Vec::with_capacity(n * 17 + 9);
    for _ in 0..n {
        ops.extend_from_slice(&[0, 0, 0, 13, 0, 0xff, 0xff, 0xff, 0xff]);
        ops.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    }
    ops.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(
        Request::decode(op::MULTI, &mut Reader::new(&ops)),
        Err(JuteError::Multi("too many sub-ops"))
    );
}

#[test]
fn empty_and_tiny_inputs() {
    everything(&[]);
    for b in 0..=255u8 {
        everything(&[b]);
    }
    everything(&[0xff; 9]);
    everything(&[0x00; 9]);
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

/// A mutation applied to a valid encoding.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    Splice(usize, i32),
    Insert(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1..=255u8).prop_map(|(i, x)| Mutation::Flip(i, x)),
        (
            any::<usize>(),
            prop_oneof![proptest::sample::select(HOSTILE.to_vec()), any::<i32>()]
        )
            .prop_map(|(i, v)| Mutation::Splice(i, v)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::Insert(i, x)),
    ]
}

fn mutate(mut b: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        match *m {
            Mutation::Truncate(i) => b.truncate(i % (b.len() + 1)),
            Mutation::Flip(i, x) if !b.is_empty() => {
                let i = i % b.len();
                b[i] ^= x;
            }
            Mutation::Splice(i, v) if b.len() >= 4 => {
                let i = i % (b.len() - 3);
                b[i..i + 4].copy_from_slice(&v.to_be_bytes());
            }
            Mutation::Insert(i, x) => {
                let i = i % (b.len() + 1);
                b.insert(i, x);
            }
            _ => {}
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in vec(any::<u8>(), 0..200)) {
        everything(&bytes);
    }

    /// Bytes that begin with a plausible small length/count prefix, so the
    /// decoders get past the first field more often than with random bytes.
    #[test]
    fn arbitrary_bytes_small_prefixes(
        prefix in vec(0..6i32, 1..4),
        rest in vec(prop_oneof![Just(0u8), Just(1u8), Just(0xffu8), any::<u8>()], 0..80),
    ) {
        let mut bytes = Vec::new();
        for p in prefix {
            bytes.extend_from_slice(&p.to_be_bytes());
        }
        bytes.extend_from_slice(&rest);
        everything(&bytes);
    }

    #[test]
    fn mutated_requests(
        xid in any::<i32>(),
        req in common::request(),
        muts in vec(mutation(), 1..4),
    ) {
        let mut body = Vec::new();
        req.write_body(&mut body);
        let body = mutate(body, &muts);
        for opcode in [req.op(), op::MULTI, op::MULTI_READ] {
            guarded("mutated request", &body, |b| {
                let _ = Request::decode(opcode, &mut Reader::new(b));
            });
        }
        // Also as a whole frame body, header included.
        let mut frame = jute::to_bytes(&RequestHeader { xid, op: req.op() });
        req.write_body(&mut frame);
        let frame = mutate(frame, &muts);
        guarded("mutated frame", &frame, |b| {
            let mut r = Reader::new(b);
            if let Ok(h) = RequestHeader::read(&mut r) {
                let _ = Request::decode(h.op, &mut r);
            }
        });
    }

    #[test]
    fn mutated_multi_results(
        results in vec(common::multi_result(), 0..6),
        muts in vec(mutation(), 1..4),
    ) {
        let mut body = Vec::new();
        write_multi_results(&results, &mut body);
        let body = mutate(body, &muts);
        every_multi(&body);
    }

    #[test]
    fn mutated_txn_records(
        rec in common::txn_record(),
        muts in vec(mutation(), 1..4),
    ) {
        let bytes = mutate(jute::to_bytes(&rec), &muts);
        record::<TxnRecord>("mutated TxnRecord", &bytes);
        let mut body = Vec::new();
        rec.txn.write(&mut body);
        let body = mutate(body, &muts);
        for opcode in [rec.txn.op(), op::MULTI] {
            guarded("mutated txn", &body, |b| {
                let _ = Txn::read(opcode, &mut Reader::new(b));
            });
        }
    }

    #[test]
    fn mutated_records(
        a in common::create_request(),
        b in common::get_acl_response(),
        c in common::set_watches2(),
        d in common::who_am_i_response(),
        e in common::connect_request(),
        muts in vec(mutation(), 1..4),
    ) {
        for bytes in [
            jute::to_bytes(&a),
            jute::to_bytes(&b),
            jute::to_bytes(&c),
            jute::to_bytes(&d),
            jute::to_bytes(&e),
        ] {
            every_record(&mutate(bytes, &muts));
        }
    }
}
