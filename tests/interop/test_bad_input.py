"""Raw-socket robustness tests: malformed frames, handshakes, opcodes, paths.

Every expectation below is what Apache ZooKeeper 3.8.0 does (reference §1.2,
§1.3, §1.4, §1.9, §2.12, checked against the live server). After each test an
autouse fixture proves the server still serves a fresh, well-behaved client.
"""

import random
import time
import uuid

import pytest

import zkwire
from zkwire import (
    BAD_ARGUMENTS,
    NO_NODE,
    OP_CREATE,
    OP_GETDATA,
    OP_SETDATA,
    RawConn,
    connect_request,
    create_body,
    i32,
    setdata_body,
    ustring,
    buffer,
)

MAX_FRAME = 0xFFFFF
CLOSE_WAIT = 5.0
MARSHALLING_ERROR = -5
INVALID_ACL = -114


def good_client_roundtrip():
    c = RawConn()
    try:
        _, timeout, sid, _, _ = c.handshake()
        assert timeout > 0 and sid != 0
        p = "/it-ok-" + uuid.uuid4().hex
        assert c.create(p, b"ok", flags=1) == (0, p)
        assert c.get_data(p) == (0, b"ok")
        c.ping()
        c.close_session()
    finally:
        c.close()


@pytest.fixture(autouse=True)
def server_still_serves():
    good_client_roundtrip()  # precondition: the server is healthy
    yield
    good_client_roundtrip()


@pytest.fixture
def sess():
    c = RawConn()
    c.handshake()
    yield c
    try:
        c.close_session()
    except Exception:
        pass
    c.close()


@pytest.fixture
def raw_root(sess):
    path = "/it-bad-" + uuid.uuid4().hex
    assert sess.create(path) == (0, path)
    yield path
    # best-effort cleanup of children made by the tests
    c = RawConn()
    try:
        c.handshake()
        _, err, r = c.call(zkwire.OP_GETCHILDREN, zkwire.path_watch_body(path))
        if err == 0:
            for _ in range(r.i32()):
                c.delete(path + "/" + r.ustring())
        c.delete(path)
        c.close_session()
    finally:
        c.close()


def assert_closed(conn, what, allow_bytes=False):
    assert conn.wait_closed(CLOSE_WAIT), "server did not close the connection after " + what
    if not allow_bytes:
        assert conn.trailing == b"", "unexpected reply to %s: %r" % (what, conn.trailing)


# ------------------------------------------------------------ framing before the handshake
@pytest.mark.parametrize("length", [MAX_FRAME + 1, 0x7FFFFFFF, 0x01000000])
def test_first_frame_too_long_closes(length):
    c = RawConn()
    try:
        c.send_raw(i32(length) + b"\0" * 64)
        assert_closed(c, "frame length 0x%x" % length)
    finally:
        c.close()


@pytest.mark.parametrize("length", [-1, -5, -0x80000000])
def test_first_frame_negative_length_closes(length):
    c = RawConn()
    try:
        c.send_raw(i32(length) + b"\0" * 16)
        assert_closed(c, "negative frame length %d" % length)
    finally:
        c.close()


def test_first_frame_zero_length_closes():
    c = RawConn()
    try:
        c.send_raw(i32(0))
        assert_closed(c, "a zero-length ConnectRequest")
    finally:
        c.close()


def test_unknown_four_letter_word_closes_silently():
    c = RawConn()
    try:
        c.send_raw(b"xxxx")  # 0x78787878 read as a length: far too long
        assert_closed(c, "unknown 4lw 'xxxx'")
    finally:
        c.close()


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_garbage_handshake_closes(seed):
    rnd = random.Random(seed)
    body = rnd.randbytes(45)
    c = RawConn()
    try:
        c.send_raw(i32(len(body)) + body)
        # closed; if anything was sent first it can only be an "invalid session"
        # ConnectResponse (timeOut 0, sessionId 0)
        assert_closed(c, "random handshake bytes", allow_bytes=True)
        if c.trailing:
            r = zkwire.Reader(c.trailing[4:])
            r.i32()
            assert r.i32() == 0 and r.i64() == 0, c.trailing
    finally:
        c.close()


def test_pure_random_bytes_then_close():
    rnd = random.Random(42)
    c = RawConn()
    try:
        c.send_raw(b"\x7f" + rnd.randbytes(200))  # first int far above the limit
        assert_closed(c, "200 random bytes")
    finally:
        c.close()


def test_truncated_connect_request_closes():
    c = RawConn()
    try:
        c.send_frame(i32(1) + i32(3))  # 8 bytes: not a ConnectRequest
        assert_closed(c, "an 8-byte ConnectRequest")
    finally:
        c.close()


def test_client_ahead_of_server_zxid_closes():
    c = RawConn()
    try:
        c.send_frame(connect_request(last_zxid=1 << 62))
        assert_closed(c, "lastZxidSeen beyond the server's zxid")
    finally:
        c.close()


def test_unknown_session_gets_invalid_response_then_close():
    c = RawConn()
    try:
        c.send_frame(connect_request(session_id=0x0100000000001234, passwd=b"x" * 16))
        r = zkwire.Reader(c.recv_frame())
        assert r.i32() == 0  # protocolVersion
        assert r.i32() == 0  # timeOut 0 = invalid
        assert r.i64() == 0  # sessionId 0
        assert r.buffer() == b"\0" * 16
        assert c.wait_closed(CLOSE_WAIT)
    finally:
        c.close()


def test_half_frame_then_client_disconnects():
    c = RawConn()
    c.handshake()
    c.send_raw(i32(100) + b"\0" * 10)  # promise 100 bytes, send 10, vanish
    c.close()


# ------------------------------------------------------------ framing inside a session
@pytest.mark.parametrize("length", [MAX_FRAME + 1, 0x7FFFFFFF])
def test_session_frame_too_long_closes(sess, length):
    sess.send_raw(i32(length) + b"\0" * 64)
    assert_closed(sess, "frame length 0x%x in a session" % length)


@pytest.mark.parametrize("length", [-1, -100])
def test_session_negative_length_closes(sess, length):
    sess.send_raw(i32(length))
    assert_closed(sess, "negative frame length in a session")


def test_frame_at_limit_is_accepted(sess, raw_root):
    """A frame of exactly jute.maxbuffer (0xfffff) bytes is fine; one more is not."""
    p = raw_root + "/big"
    assert sess.create(p)[0] == 0
    overhead = 4 + 4 + 4 + len(p.encode()) + 4 + 4
    body = i32(77) + i32(OP_SETDATA) + setdata_body(p, b"z" * (MAX_FRAME - overhead))
    assert len(body) == MAX_FRAME
    sess.send_frame(body)
    xid, zxid, err, r = sess.recv_reply()
    assert (xid, err) == (77, 0)
    stat = r.stat()
    assert stat["dataLength"] == MAX_FRAME - overhead
    assert stat["version"] == 1
    c = RawConn()
    try:
        c.handshake()
        try:
            c.send_frame(i32(78) + i32(OP_SETDATA) + setdata_body(p, b"z" * (MAX_FRAME + 1 - overhead)))
        except (ConnectionResetError, BrokenPipeError):
            # The server may close on reading the length, before the client
            # has finished sending the body: that is the expected outcome.
            return
        assert_closed(c, "a frame of 0x100000 bytes")
    finally:
        c.close()


@pytest.mark.parametrize("opcode", [99, 0, -3, 1000])
def test_unknown_opcode_gets_unimplemented_then_close(sess, opcode):
    xid = sess.send_request(opcode, b"\0" * 8)
    rxid, zxid, err, r = sess.recv_reply()
    assert (rxid, zxid, err) == (xid, -1, -6)
    assert r.remaining() == 0
    assert_closed(sess, "an unknown opcode %d" % opcode)


def test_requests_pipelined_before_bad_opcode(sess, raw_root):
    """Writes pipelined before an unknown opcode are still applied.

    Apache 3.8.0 answers the unknown opcode straight from its I/O layer, so
    the -6 reply may overtake the replies of earlier pipelined requests (which
    are then lost with the connection). So: replies that do arrive are
    correct, the -6 reply arrives, the connection closes, the create applied.
    """
    p = raw_root + "/pipe"
    sess.send_frame(i32(1) + i32(OP_CREATE) + create_body(p, b"d"))
    sess.send_frame(i32(2) + i32(OP_GETDATA) + zkwire.path_watch_body(p))
    sess.send_frame(i32(3) + i32(99))
    replies = {}
    while True:
        try:
            xid, zxid, err, r = sess.recv_reply()
        except zkwire.ConnectionClosed:
            break
        replies[xid] = (zxid, err, r)
    assert 3 in replies, "no Unimplemented reply"
    assert replies[3][:2] == (-1, -6)
    if 1 in replies:
        assert replies[1][1] == 0 and replies[1][2].ustring() == p
    if 2 in replies:
        assert replies[2][1] == 0 and replies[2][2].buffer() == b"d"
    assert set(replies) <= {1, 2, 3}
    c = RawConn()
    try:
        c.handshake()
        deadline = time.monotonic() + 3
        while c.get_data(p)[0] == NO_NODE and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.get_data(p) == (0, b"d")
        c.close_session()
    finally:
        c.close()


# ------------------------------------------------------------ undecodable bodies keep the session
@pytest.mark.parametrize("name,body", [
    ("create path longer than frame", i32(OP_CREATE) + i32(1000) + b"/ab"),
    ("getData path longer than frame", i32(OP_GETDATA) + i32(5) + b"/a"),
    ("setData buffer length 2^31-1", i32(OP_SETDATA) + ustring("/") + i32(0x7FFFFFFF) + i32(-1)),
])
def test_marshalling_error_keeps_connection(sess, name, body):
    sess.send_frame(i32(41) + body)
    xid, zxid, err, r = sess.recv_reply()
    assert (xid, err) == (41, MARSHALLING_ERROR), name
    assert r.remaining() == 0
    sess.ping()  # the connection and the session survive


def test_create_bad_acl_and_flags(sess, raw_root):
    p = raw_root + "/acl"
    # null ACL vector and empty ACL list -> InvalidACL
    for acl in (i32(-1), i32(0)):
        body = i32(OP_CREATE) + ustring(p) + buffer(b"") + acl + i32(0)
        _, err, _ = sess.call(OP_CREATE, body[4:])
        assert err == INVALID_ACL
    # unknown CreateMode flag -> BadArguments
    assert sess.call(OP_CREATE, create_body(p, flags=9))[1] == BAD_ARGUMENTS
    assert sess.exists(p) == NO_NODE


# ------------------------------------------------------------ path validation (§2.12)
def test_invalid_paths_create(sess, raw_root):
    r = raw_root
    expected = {
        # no usable parent: the parent lookup fails before full validation
        "a/b": NO_NODE,
        "/a//b": NO_NODE,
        r + "//b": NO_NODE,
        "/nonexistent-parent/": NO_NODE,
        "/a/./b": NO_NODE,
        r + "/./b": NO_NODE,
        r + "/x/..": NO_NODE,
        # parent exists (or no slash at all): full validation rejects it
        "a": BAD_ARGUMENTS,
        "": BAD_ARGUMENTS,
        r + "/": BAD_ARGUMENTS,
        r + "/.": BAD_ARGUMENTS,
        r + "/..": BAD_ARGUMENTS,
        r + "/a\x00b": BAD_ARGUMENTS,
        r + "/a\x01": BAD_ARGUMENTS,
        r + "/a\x1f": BAD_ARGUMENTS,
        r + "/a\x7f": BAD_ARGUMENTS,
        r + "/a\u0085": BAD_ARGUMENTS,
        r + "/a\ue000": BAD_ARGUMENTS,
        r + "/a\ufff5": BAD_ARGUMENTS,
    }
    got = {p: sess.create(p)[0] for p in expected}
    assert got == expected
    # still nothing under the root
    _, err, rd = sess.call(zkwire.OP_GETCHILDREN, zkwire.path_watch_body(r))
    assert err == 0 and rd.i32() == 0


def test_valid_unusual_paths_create(sess, raw_root):
    r = raw_root
    for name in ["...", ".a", "a.", "a b", "\u00e9", "\ud7ff", "-", "a:b@c"]:
        assert sess.create(r + "/" + name) == (0, r + "/" + name), name
    # a sequential create on "parent/" yields "parent/<10 digits>"
    err, path = sess.create(r + "/", flags=2)
    assert err == 0 and path == r + "/%010d" % 8


def test_invalid_paths_other_ops(sess, raw_root):
    r = raw_root
    bad = ["a/b", "a", "/a//b", r + "//b", r + "/", r + "/.", r + "/x/..", ""]
    for p in bad:
        # setData validates the full path first
        assert sess.set_data(p, b"x") == BAD_ARGUMENTS, repr(p)
    deletes = {"a": BAD_ARGUMENTS, "": BAD_ARGUMENTS, r + "/a\x00b": BAD_ARGUMENTS,
               "a/b": NO_NODE, "/a//b": NO_NODE, r + "//b": NO_NODE,
               r + "/": NO_NODE, r + "/.": NO_NODE}
    assert {p: sess.delete(p) for p in deletes} == deletes
    # reads just look the path up
    for p in ["a/b", "a", "/a//b", r + "/", r + "/."]:
        assert sess.get_data(p)[0] == NO_NODE, repr(p)
        assert sess.exists(p) == NO_NODE, repr(p)
    # exists rejects NUL
    assert sess.exists(r + "/a\x00b") == BAD_ARGUMENTS


@pytest.mark.parametrize("path", ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"])
def test_delete_system_nodes_rejected(sess, path):
    assert sess.delete(path) == BAD_ARGUMENTS
    assert sess.exists(path) == 0


def test_many_bad_connections_then_kazoo_works(hosts):
    for i in range(20):
        c = RawConn()
        try:
            c.send_raw(i32(-1 - i))
            c.wait_closed(CLOSE_WAIT)
        finally:
            c.close()
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=hosts, timeout=10.0)
    zk.start(timeout=15)
    try:
        p = zk.create("/it-after-bad-", b"x", sequence=True, ephemeral=True)
        assert zk.get(p)[0] == b"x"
    finally:
        zk.stop()
        zk.close()
