"""Minimal hand-written ZooKeeper wire protocol helpers (struct.pack only).

Used by the raw-socket interop tests. Everything here follows reference §1:
frames are `int len` + body, big-endian jute encoding, ConnectRequest has no
RequestHeader and carries a trailing readOnly byte.
"""

import os
import socket
import struct
import time

# opcodes (§1.5)
OP_CREATE = 1
OP_DELETE = 2
OP_EXISTS = 3
OP_GETDATA = 4
OP_SETDATA = 5
OP_GETCHILDREN = 8
OP_PING = 11
OP_GETCHILDREN2 = 12
OP_CLOSE = -11

# error codes (§1.10)
OK = 0
UNIMPLEMENTED = -6
BAD_ARGUMENTS = -8
NO_NODE = -101
NODE_EXISTS = -110
NOT_EMPTY = -111
SESSION_EXPIRED = -112

WORLD_ANYONE_ALL = [(31, "world", "anyone")]


def zk_hosts():
    return os.environ.get("ZK_HOSTS", "127.0.0.1:2181")


def first_addr(hosts=None):
    """(host, port) of the first server in a kazoo-style host list."""
    first = (hosts or zk_hosts()).split("/")[0].split(",")[0]
    host, _, port = first.rpartition(":")
    return host or "127.0.0.1", int(port)


# ---------------------------------------------------------------- encoders
def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def boolean(v):
    return b"\x01" if v else b"\x00"


def buffer(b):
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def ustring(s):
    if s is None:
        return i32(-1)
    if isinstance(s, str):
        s = s.encode("utf-8")
    return i32(len(s)) + s


def acl_vector(acls=WORLD_ANYONE_ALL):
    out = i32(len(acls))
    for perms, scheme, ident in acls:
        out += i32(perms) + ustring(scheme) + ustring(ident)
    return out


def create_body(path, data=b"", flags=0, acls=WORLD_ANYONE_ALL):
    return ustring(path) + buffer(data) + acl_vector(acls) + i32(flags)


def delete_body(path, version=-1):
    return ustring(path) + i32(version)


def path_watch_body(path, watch=False):
    return ustring(path) + boolean(watch)


def setdata_body(path, data, version=-1):
    return ustring(path) + buffer(data) + i32(version)


def connect_request(timeout_ms=10000, session_id=0, passwd=b"\0" * 16,
                    last_zxid=0, read_only=False, protocol_version=0):
    return (i32(protocol_version) + i64(last_zxid) + i32(timeout_ms)
            + i64(session_id) + buffer(passwd) + boolean(read_only))


def frame(body):
    return i32(len(body)) + body


# ---------------------------------------------------------------- decoders
class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("short record")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def buffer(self):
        n = self.i32()
        return None if n < 0 else self.take(n)

    def ustring(self):
        b = self.buffer()
        return None if b is None else b.decode("utf-8")

    def stat(self):
        """Stat (68 bytes) as a dict."""
        names = ["czxid", "mzxid", "ctime", "mtime", "version", "cversion",
                 "aversion", "ephemeralOwner", "dataLength", "numChildren", "pzxid"]
        vals = struct.unpack(">qqqqiiiqiiq", self.take(68))
        return dict(zip(names, vals))

    def remaining(self):
        return len(self.data) - self.pos


class ConnectionClosed(Exception):
    pass


class RawConn:
    """One TCP connection speaking raw frames."""

    def __init__(self, hosts=None, io_timeout=10.0):
        self.addr = first_addr(hosts)
        self.sock = socket.create_connection(self.addr, timeout=io_timeout)
        self.sock.settimeout(io_timeout)
        self.xid = 0
        self.session_id = 0
        self.passwd = None
        self.negotiated_timeout = None

    # -- raw I/O
    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, body):
        self.sock.sendall(frame(body))

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except (ConnectionResetError, BrokenPipeError) as e:
                raise ConnectionClosed(str(e))
            if not chunk:
                raise ConnectionClosed("EOF after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return buf

    def recv_frame(self):
        (n,) = struct.unpack(">i", self._recv_exact(4))
        if n < 0 or n > 0xFFFFF + 1024:
            raise ValueError("bad frame length from server: %d" % n)
        return self._recv_exact(n)

    def wait_closed(self, timeout=10.0):
        """True if the server closes the connection within `timeout` s.

        Any bytes the server sends before closing are collected in
        self.trailing (e.g. a ConnectResponse or an error header).
        """
        self.trailing = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
            self.trailing += chunk
        return False

    # -- protocol
    def handshake(self, timeout_ms=10000, session_id=0, passwd=b"\0" * 16,
                  last_zxid=0, read_only=False):
        self.send_frame(connect_request(timeout_ms, session_id, passwd,
                                        last_zxid, read_only))
        r = Reader(self.recv_frame())
        proto = r.i32()
        timeout = r.i32()
        sid = r.i64()
        pw = r.buffer()
        ro = None
        if r.remaining() >= 1:
            ro = r.take(1) != b"\x00"
        self.session_id, self.passwd, self.negotiated_timeout = sid, pw, timeout
        return proto, timeout, sid, pw, ro

    def send_request(self, op, body=b"", xid=None):
        if xid is None:
            self.xid += 1
            xid = self.xid
        self.send_frame(i32(xid) + i32(op) + body)
        return xid

    def recv_reply(self, collect_events=None):
        """Next non-notification reply: (xid, zxid, err, Reader(body))."""
        while True:
            r = Reader(self.recv_frame())
            xid, zxid, err = r.i32(), r.i64(), r.i32()
            if xid == -1:
                if collect_events is not None:
                    collect_events.append((r.i32(), r.i32(), r.ustring()))
                continue
            return xid, zxid, err, r

    def call(self, op, body=b""):
        xid = self.send_request(op, body)
        rxid, zxid, err, r = self.recv_reply()
        assert rxid == xid, "reply xid %d != request xid %d" % (rxid, xid)
        return zxid, err, r

    def create(self, path, data=b"", flags=0):
        zxid, err, r = self.call(OP_CREATE, create_body(path, data, flags))
        return err, (r.ustring() if err == 0 else None)

    def delete(self, path, version=-1):
        return self.call(OP_DELETE, delete_body(path, version))[1]

    def exists(self, path):
        return self.call(OP_EXISTS, path_watch_body(path))[1]

    def get_data(self, path):
        zxid, err, r = self.call(OP_GETDATA, path_watch_body(path))
        return err, (r.buffer() if err == 0 else None)

    def set_data(self, path, data, version=-1):
        return self.call(OP_SETDATA, setdata_body(path, data, version))[1]

    def ping(self):
        self.send_request(OP_PING, xid=-2)
        rxid, zxid, err, _ = self.recv_reply()
        assert rxid == -2 and err == 0, (rxid, err)

    def close_session(self):
        try:
            self.call(OP_CLOSE)
        finally:
            self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def four_letter(cmd, hosts=None, timeout=5.0):
    """Send a four-letter word, return the whole text reply."""
    s = socket.create_connection(first_addr(hosts), timeout=timeout)
    try:
        s.sendall(cmd.encode("ascii"))
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return out.decode("utf-8", "replace")
    finally:
        s.close()
