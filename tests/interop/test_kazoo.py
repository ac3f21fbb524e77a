"""Black-box interop tests driven through kazoo 2.11 (plus a few raw frames).

Server under test: env ZK_HOSTS (default 127.0.0.1:2181), standalone,
tickTime 2000 (env ZK_TICK_TIME), all four-letter words whitelisted.
Every test works under its own /it-<uuid> root (fixture `root`) and cleans up.
Behaviour asserted here is the one Apache ZooKeeper 3.8.0 shows (reference §1-§2).
"""

import os
import re
import threading
import time

import pytest
from kazoo.client import KazooState
from kazoo.exceptions import (
    LockTimeout,
    BadVersionError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.protocol.states import EventType
from kazoo.recipe.barrier import Barrier, DoubleBarrier
from kazoo.recipe.counter import Counter
from kazoo.recipe.election import Election
from kazoo.recipe.lock import Lock
from kazoo.recipe.party import Party
from kazoo.recipe.queue import LockingQueue, Queue
from kazoo.recipe.watchers import ChildrenWatch, DataWatch

import zkwire

TICK_MS = int(os.environ.get("ZK_TICK_TIME", "2000"))
EXPECT_MODE = os.environ.get("ZK_EXPECT_MODE", "standalone")
SEQ_RE = re.compile(r"^(\D*)(\d{10})$")


def wait_until(pred, timeout=10.0, interval=0.05, msg="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, msg))


def run_threads(targets, timeout=20.0):
    """Run callables in daemon threads; re-raise the first error; bounded."""
    errors = []

    def wrap(fn):
        def inner():
            try:
                fn()
            except BaseException as e:  # noqa: B902
                errors.append(e)
        return inner

    threads = [threading.Thread(target=wrap(t), daemon=True) for t in targets]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    alive = [t for t in threads if t.is_alive()]
    if errors:
        raise errors[0]
    assert not alive, "%d thread(s) still running after %.0fs" % (len(alive), timeout)


# ------------------------------------------------------------------ CRUD
def test_crud_roundtrip(zk, root):
    p = root + "/node"
    assert zk.exists(p) is None
    assert zk.create(p, b"v1") == p
    data, stat = zk.get(p)
    assert data == b"v1"
    assert stat.version == 0 and stat.dataLength == 2
    st = zk.set(p, b"value-2")
    assert st.version == 1 and st.dataLength == 7
    assert zk.get(p)[0] == b"value-2"
    zk.create(p + "/a", b"")
    zk.create(p + "/b", b"x")
    assert sorted(zk.get_children(p)) == ["a", "b"]
    assert zk.exists(p).numChildren == 2
    zk.delete(p + "/a")
    zk.delete(p + "/b")
    assert zk.get_children(p) == []
    zk.delete(p)
    assert zk.exists(p) is None
    with pytest.raises(NoNodeError):
        zk.get(p)
    with pytest.raises(NoNodeError):
        zk.get_children(p)
    with pytest.raises(NoNodeError):
        zk.set(p, b"x")
    with pytest.raises(NoNodeError):
        zk.delete(p)


def test_create2_and_getchildren2(zk, root):
    # include_data=True makes kazoo use create2 (15) and getChildren2 (12)
    p = root + "/c2"
    path, stat = zk.create(p, b"abc", include_data=True)
    assert path == p
    assert stat.dataLength == 3 and stat.version == 0
    assert stat.czxid == stat.mzxid == stat.pzxid
    zk.create(p + "/k1")
    children, pstat = zk.get_children(p, include_data=True)
    assert children == ["k1"]
    assert pstat.numChildren == 1 and pstat.czxid == stat.czxid


def test_errors(zk, root):
    p = root + "/e"
    zk.create(p)
    with pytest.raises(NodeExistsError):
        zk.create(p)
    with pytest.raises(NoNodeError):
        zk.create(root + "/missing/child")
    zk.create(p + "/kid")
    with pytest.raises(NotEmptyError):
        zk.delete(p)
    eph = root + "/eph"
    zk.create(eph, ephemeral=True)
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create(eph + "/x")
    zk.delete(p, recursive=True)
    assert zk.exists(p) is None


def test_versions_and_bad_version(zk, root):
    p = root + "/v"
    zk.create(p, b"0")
    with pytest.raises(BadVersionError):
        zk.set(p, b"x", version=5)
    assert zk.set(p, b"1", version=0).version == 1
    assert zk.set(p, b"2", version=1).version == 2
    assert zk.set(p, b"3", version=-1).version == 3
    # setData with identical bytes still bumps the version
    assert zk.set(p, b"3").version == 4
    with pytest.raises(BadVersionError):
        zk.delete(p, version=3)
    assert zk.get(p)[0] == b"3"
    zk.delete(p, version=4)
    assert zk.exists(p) is None


def test_null_vs_empty_data(zk, root):
    zk.create(root + "/null", None)
    zk.create(root + "/empty", b"")
    dn, sn = zk.get(root + "/null")
    de, se = zk.get(root + "/empty")
    assert dn is None
    assert de == b""
    assert sn.dataLength == 0 and se.dataLength == 0
    zk.set(root + "/empty", None)
    assert zk.get(root + "/empty")[0] is None
    zk.set(root + "/null", b"")
    assert zk.get(root + "/null")[0] == b""


def test_large_value_roundtrip(zk, root):
    blob = bytes(range(256)) * 2000  # 512000 bytes, below jute.maxbuffer
    zk.create(root + "/big", blob)
    data, stat = zk.get(root + "/big")
    assert data == blob and stat.dataLength == len(blob)


def test_unicode_paths_and_sync(zk, root):
    p = root + "/ünï-çødé ✓"
    zk.create(p, "välue".encode())
    assert zk.get(p)[0] == "välue".encode()
    assert "ünï-çødé ✓" in zk.get_children(root)
    assert zk.sync(root) == root


# ------------------------------------------------------------- ephemerals
def test_ephemeral_vanishes_on_close(make_client, root):
    a = make_client()
    b = make_client()
    p = root + "/eph"
    a.create(p, b"mine", ephemeral=True)
    st = b.exists(p)
    assert st is not None
    assert st.ephemeralOwner == a.client_id[0]
    assert st.ephemeralOwner != 0
    assert b.exists(root).ephemeralOwner == 0
    a.stop()
    # closeSession is applied before its reply: the node is gone right away
    assert b.exists(p) is None


# ------------------------------------------------------------- sequentials
def test_sequential_naming(zk, root):
    par = root + "/seq"
    zk.create(par)
    n0 = zk.create(par + "/n-", b"", sequence=True)
    n1 = zk.create(par + "/n-", b"", sequence=True)
    assert n0 == par + "/n-0000000000"
    assert n1 == par + "/n-0000000001"
    zk.create(par + "/plain")  # non-sequential creates bump the counter too
    zk.delete(n1)  # deletes do not decrement it
    n3 = zk.create(par + "/n-", b"", sequence=True)
    assert n3 == par + "/n-0000000003"
    e4 = zk.create(par + "/e", b"", sequence=True, ephemeral=True)
    assert e4 == par + "/e0000000004"
    assert zk.exists(e4).ephemeralOwner == zk.client_id[0]
    # sequential create on "parent/" is allowed: the name is just the digits
    d5 = zk.create(par + "/", b"", sequence=True)
    assert d5 == par + "/0000000005"
    for name in zk.get_children(par):
        if name != "plain":
            assert SEQ_RE.match(name), name


def test_sequential_concurrent_unique(make_client, root):
    clients = [make_client() for _ in range(3)]
    made = []
    lock = threading.Lock()

    def worker(c):
        def go():
            for _ in range(15):
                p = c.create(root + "/q-", b"", sequence=True)
                with lock:
                    made.append(p)
        return go

    run_threads([worker(c) for c in clients], timeout=30)
    assert len(made) == 45 and len(set(made)) == 45
    nums = sorted(int(p[-10:]) for p in made)
    assert nums == list(range(45))


# ------------------------------------------------------------- Stat fields
def test_stat_fields(zk, root):
    par = root + "/st"
    zk.create(par, b"hello")
    st = zk.exists(par)
    assert st.czxid == st.mzxid == st.pzxid
    assert st.version == 0 and st.cversion == 0 and st.aversion == 0
    assert st.dataLength == 5 and st.numChildren == 0
    assert st.ephemeralOwner == 0
    assert st.ctime == st.mtime and st.ctime > 0
    assert abs(st.ctime / 1000.0 - time.time()) < 300

    st2 = zk.set(par, b"hello world")
    assert st2.czxid == st.czxid and st2.mzxid > st.mzxid
    assert st2.version == 1 and st2.dataLength == 11
    assert st2.pzxid == st.pzxid  # data change does not touch pzxid
    assert st2.mtime >= st.mtime and st2.ctime == st.ctime

    kids = [zk.create(par + "/k%d" % i) for i in range(3)]
    st3 = zk.exists(par)
    assert st3.numChildren == 3
    assert st3.cversion == 3  # three creates
    kst = zk.exists(kids[2])
    assert st3.pzxid == kst.czxid  # pzxid = zxid of the last child change
    assert st3.mzxid == st2.mzxid and st3.version == 1

    zk.delete(kids[0])
    st4 = zk.exists(par)
    assert st4.numChildren == 2
    assert st4.cversion == 4  # visible cversion = creates + deletes (§2.3)
    assert st4.pzxid > st3.pzxid

    zk.set(kids[1], b"x")  # child data change: parent untouched
    st5 = zk.exists(par)
    assert (st5.cversion, st5.pzxid, st5.mzxid) == (st4.cversion, st4.pzxid, st4.mzxid)

    # ephemeral owner
    e = zk.create(par + "/eph", ephemeral=True)
    assert zk.exists(e).ephemeralOwner == zk.client_id[0]
    assert zk.exists(par + "/k1").ephemeralOwner == 0


def test_system_nodes(zk):
    assert "zookeeper" in zk.get_children("/")
    assert zk.exists("/zookeeper") is not None
    assert set(["quota", "config"]) <= set(zk.get_children("/zookeeper"))


# ------------------------------------------------------------- watches
def test_raw_watches_one_shot(make_client, root):
    zk = make_client()
    other = make_client()
    p = root + "/w"
    events = []
    got = threading.Event()

    def cb(ev):
        events.append(ev)
        got.set()

    # exists-watch on a missing node fires NodeCreated
    assert zk.exists(p, watch=cb) is None
    other.create(p, b"1")
    assert got.wait(10)
    assert events[-1].type == EventType.CREATED and events[-1].path == p

    # data watch: fires once, even for identical bytes
    got.clear()
    zk.get(p, watch=cb)
    other.set(p, b"1")
    assert got.wait(10)
    assert events[-1].type == EventType.CHANGED
    n = len(events)
    other.set(p, b"2")  # watch was consumed: no further event
    time.sleep(0.5)
    assert len(events) == n

    # child watch: child create fires CHILD, child data change does not
    got.clear()
    zk.get_children(p, watch=cb)
    other.create(p + "/c")
    assert got.wait(10)
    assert events[-1].type == EventType.CHILD and events[-1].path == p
    got.clear()
    zk.get_children(p, watch=cb)
    other.set(p + "/c", b"zz")
    time.sleep(0.5)
    assert not got.is_set()
    other.delete(p + "/c")
    assert got.wait(10)
    assert events[-1].type == EventType.CHILD

    # data watch sees the delete
    got.clear()
    zk.get(p, watch=cb)
    other.delete(p)
    assert got.wait(10)
    assert events[-1].type == EventType.DELETED and events[-1].path == p


def test_watch_event_before_reply(make_client, root):
    """A session's own write: its watch event arrives before the write returns."""
    zk = make_client()
    p = root + "/own"
    zk.create(p, b"a")
    seen = []
    zk.get(p, watch=lambda ev: seen.append(ev.type))
    zk.set(p, b"b")
    # kazoo dispatches watch callbacks on its handler thread; allow a moment
    wait_until(lambda: seen, timeout=5, msg="own watch event")
    assert seen == [EventType.CHANGED]


def test_data_watch_recipe(make_client, root):
    zk = make_client()
    other = make_client()
    p = root + "/dw"
    other.create(p, b"v0")
    seen = []
    cond = threading.Condition()

    def watcher(data, stat, event):
        with cond:
            seen.append((data, stat.version if stat else None,
                         event.type if event else None))
            cond.notify_all()

    DataWatch(zk, p, watcher)

    def wait_len(n):
        with cond:
            assert cond.wait_for(lambda: len(seen) >= n, timeout=10), seen

    wait_len(1)
    assert seen[0] == (b"v0", 0, None)
    other.set(p, b"v1")
    wait_len(2)
    assert seen[1] == (b"v1", 1, EventType.CHANGED)
    other.set(p, b"v2")
    wait_len(3)
    assert seen[2] == (b"v2", 2, EventType.CHANGED)
    other.delete(p)
    wait_len(4)
    assert seen[3] == (None, None, EventType.DELETED)
    other.create(p, b"again")
    wait_len(5)
    assert seen[4] == (b"again", 0, EventType.CREATED)


def test_children_watch_recipe(make_client, root):
    zk = make_client()
    other = make_client()
    p = root + "/cw"
    other.create(p)
    seen = []
    cond = threading.Condition()

    def watcher(children):
        with cond:
            seen.append(sorted(children))
            cond.notify_all()

    ChildrenWatch(zk, p, watcher)

    def wait_for(expected):
        with cond:
            assert cond.wait_for(lambda: seen and seen[-1] == expected, timeout=10), seen

    wait_for([])
    other.create(p + "/a")
    wait_for(["a"])
    other.create(p + "/b", ephemeral=True)
    wait_for(["a", "b"])
    other.delete(p + "/a")
    wait_for(["b"])
    other.stop()  # ephemeral child goes with the session
    wait_for([])


# ------------------------------------------------------------- recipes
def test_lock_recipe(make_client, root):
    c1, c2 = make_client(), make_client()
    path = root + "/lock"
    l1 = Lock(c1, path, "one")
    l2 = Lock(c2, path, "two")
    assert l1.acquire(timeout=10)
    assert l2.acquire(blocking=False) is False
    with pytest.raises(LockTimeout):
        l2.acquire(timeout=1)
    assert "one" in l2.contenders()
    acquired = threading.Event()

    def second():
        assert l2.acquire(timeout=15)
        acquired.set()
        l2.release()

    t = threading.Thread(target=second, daemon=True)
    t.start()
    time.sleep(0.3)
    assert not acquired.is_set()
    l1.release()
    assert acquired.wait(15)
    t.join(5)

    # mutual exclusion across 2 clients x 2 threads
    state = {"inside": 0, "max": 0, "count": 0}

    def worker(c, ident):
        def go():
            lk = Lock(c, path, ident)
            for _ in range(5):
                assert lk.acquire(timeout=15)
                try:
                    state["inside"] += 1
                    state["max"] = max(state["max"], state["inside"])
                    time.sleep(0.01)
                    state["count"] += 1
                    state["inside"] -= 1
                finally:
                    lk.release()
        return go

    run_threads([worker(c1, "a"), worker(c1, "b"), worker(c2, "c"), worker(c2, "d")],
                timeout=45)
    assert state["max"] == 1 and state["count"] == 20


def test_election_recipe(make_client, root):
    c1, c2 = make_client(), make_client()
    path = root + "/election"
    e1, e2 = Election(c1, path, "first"), Election(c2, path, "second")
    leaders = []
    release = {"first": threading.Event(), "second": threading.Event()}
    became = threading.Condition()

    def lead(name):
        with became:
            leaders.append(name)
            became.notify_all()
        release[name].wait(20)

    t1 = threading.Thread(target=e1.run, args=(lead, "first"), daemon=True)
    t1.start()
    with became:
        assert became.wait_for(lambda: leaders == ["first"], timeout=10)
    t2 = threading.Thread(target=e2.run, args=(lead, "second"), daemon=True)
    t2.start()
    wait_until(lambda: len(e1.contenders()) == 2, msg="two contenders")
    assert e1.contenders() == ["first", "second"]
    time.sleep(0.3)
    assert leaders == ["first"]
    release["first"].set()
    with became:
        assert became.wait_for(lambda: leaders == ["first", "second"], timeout=10)
    release["second"].set()
    t1.join(10)
    t2.join(10)
    assert not t1.is_alive() and not t2.is_alive()


def test_barrier_recipe(make_client, root):
    c1, c2 = make_client(), make_client()
    path = root + "/barrier"
    b1, b2 = Barrier(c1, path), Barrier(c2, path)
    b1.create()
    assert not b2.wait(timeout=0.5)
    result = {}

    def waiter():
        result["ok"] = b2.wait(timeout=15)

    t = threading.Thread(target=waiter, daemon=True)
    t.start()
    time.sleep(0.3)
    assert "ok" not in result
    assert b1.remove()
    t.join(15)
    assert result.get("ok") is True
    assert b2.wait(timeout=1)


def test_double_barrier_recipe(make_client, root):
    n = 3
    clients = [make_client() for _ in range(n)]
    path = root + "/dbarrier"
    entered, left = [], []
    lock = threading.Lock()
    gate = threading.Event()

    def member(i, c):
        def go():
            db = DoubleBarrier(c, path, n, identifier="m%d" % i)
            if i == n - 1:
                # the last member joins late: nobody may pass enter() before it
                assert gate.wait(15)
            db.enter()
            with lock:
                entered.append((i, time.monotonic()))
            db.leave()
            with lock:
                left.append(i)
        return go

    threads = [threading.Thread(target=member(i, c), daemon=True)
               for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    time.sleep(0.7)
    assert entered == []
    gate_time = time.monotonic()
    gate.set()
    for t in threads:
        t.join(20)
    assert all(not t.is_alive() for t in threads)
    assert sorted(i for i, _ in entered) == list(range(n))
    assert all(ts >= gate_time for _, ts in entered)
    assert sorted(left) == list(range(n))


def test_counter_recipe(make_client, root):
    c1, c2 = make_client(), make_client()
    path = root + "/counter"

    def bump(c):
        def go():
            cnt = Counter(c, path)
            for _ in range(15):
                cnt += 1
        return go

    run_threads([bump(c1), bump(c1), bump(c2)], timeout=45)
    assert Counter(c2, path).value == 45
    cnt = Counter(c1, path)
    cnt -= 5
    assert Counter(c2, path).value == 40


def test_queue_recipe(make_client, root):
    c1, c2 = make_client(), make_client()
    path = root + "/queue"
    q1, q2 = Queue(c1, path), Queue(c2, path)
    q1.put(b"low", priority=200)
    q1.put(b"first")
    q1.put(b"second")
    q1.put(b"urgent", priority=1)
    assert len(q2) == 4
    assert q2.get() == b"urgent"
    assert q1.get() == b"first"
    assert q2.get() == b"second"
    assert q1.get() == b"low"
    assert q2.get() is None
    # concurrent consumers never get the same item
    for i in range(20):
        q1.put(b"item-%d" % i)
    got = []
    lock = threading.Lock()

    def consume(q):
        def go():
            while True:
                item = q.get()
                if item is None:
                    return
                with lock:
                    got.append(item)
        return go

    run_threads([consume(q1), consume(q2)], timeout=30)
    assert sorted(got) == sorted(b"item-%d" % i for i in range(20))


def test_locking_queue_recipe(make_client, root):
    c1, c2 = make_client(), make_client()
    path = root + "/lqueue"
    q1, q2 = LockingQueue(c1, path), LockingQueue(c2, path)
    q1.put(b"a")
    q1.put_all([b"b", b"c"])
    assert len(q2) == 3
    assert q1.get(timeout=5) == b"a"
    assert q1.holds_lock()
    # the item is locked by q1, q2 gets the next one
    assert q2.get(timeout=5) == b"b"
    assert q1.release()  # a goes back
    assert q2.consume()  # b is gone
    assert q2.get(timeout=5) == b"a"
    assert q2.consume()
    assert q1.get(timeout=5) == b"c"
    assert q1.consume()
    assert len(q2) == 0
    # a blocking get is woken by a put from the other client
    result = {}

    def getter():
        result["v"] = q2.get(timeout=15)

    t = threading.Thread(target=getter, daemon=True)
    t.start()
    time.sleep(0.3)
    q1.put(b"late")
    t.join(15)
    assert result.get("v") == b"late"
    assert q2.consume()
    assert q1.get(timeout=0.5) is None


def test_party_recipe(make_client, root):
    clients = [make_client() for _ in range(3)]
    path = root + "/party"
    parties = [Party(c, path, "member-%d" % i) for i, c in enumerate(clients)]
    for p in parties:
        p.join()
    assert len(parties[0]) == 3
    assert sorted(parties[1]) == ["member-0", "member-1", "member-2"]
    parties[1].leave()
    assert sorted(parties[0]) == ["member-0", "member-2"]
    clients[2].stop()  # session end removes the ephemeral member
    assert sorted(parties[0]) == ["member-0"]


# ------------------------------------------------------------- transactions
def test_transaction_commit(zk, root):
    a, b = root + "/ta", root + "/tb"
    zk.create(a, b"0")
    t = zk.transaction()
    t.check(a, 0)
    t.set_data(a, b"1")
    t.create(b, b"new")
    t.create(b + "/s-", b"", sequence=True)
    t.delete(b + "/s-0000000000")
    results = t.commit()
    assert results[0] is True
    assert results[1].version == 1
    assert results[2] == b
    assert results[3] == b + "/s-0000000000"
    assert results[4] is True
    sa, sb = zk.exists(a), zk.exists(b)
    # all ops of a multi share one zxid
    assert sa.mzxid == sb.czxid
    assert zk.get(a)[0] == b"1"
    assert zk.get_children(b) == []
    assert sb.cversion == 2


def test_transaction_failure_rolls_back(zk, root):
    a = root + "/fa"
    zk.create(a, b"orig")
    before = zk.exists(a)
    t = zk.transaction()
    t.create(root + "/new1", b"x")
    t.set_data(a, b"changed")
    t.check(a, 7)  # wrong version -> BadVersion
    t.create(root + "/new2", b"y")
    results = t.commit()
    assert len(results) == 4
    assert isinstance(results[0], RolledBackError)
    assert isinstance(results[1], RolledBackError)
    assert isinstance(results[2], BadVersionError)
    assert isinstance(results[3], RuntimeInconsistency)
    assert zk.exists(root + "/new1") is None
    assert zk.exists(root + "/new2") is None
    data, st = zk.get(a)
    assert data == b"orig" and st.version == before.version

    # other failure kinds report their own code
    t = zk.transaction()
    t.create(a, b"dup")
    results = t.commit()
    assert isinstance(results[0], NodeExistsError)
    t = zk.transaction()
    t.create(root + "/x1")
    t.delete(root + "/nope")
    results = t.commit()
    assert isinstance(results[0], RolledBackError)
    assert isinstance(results[1], NoNodeError)
    assert zk.exists(root + "/x1") is None
    # a failed multi must not advance the parent's child counter
    assert zk.create(root + "/s-", sequence=True).endswith("%010d" % 1)


# ------------------------------------------------------------- sessions
def _state_recorder(client):
    states = []
    cond = threading.Condition()

    def listener(state):
        with cond:
            states.append(state)
            cond.notify_all()

    client.add_listener(listener)
    return states, cond


def _close_session_raw(session_id, passwd, attempts=5):
    """Attach to an existing session on a new socket and close it (closeSession)."""
    last = None
    for _ in range(attempts):
        conn = zkwire.RawConn()
        try:
            _, timeout, sid, _, _ = conn.handshake(10000, session_id, passwd)
            assert timeout > 0 and sid == session_id, "reattach refused"
            zxid, err, _ = conn.call(zkwire.OP_CLOSE)
            assert err == 0
            assert conn.wait_closed(5), "server kept the socket open after closeSession"
            return
        except zkwire.ConnectionClosed as e:  # the owner stole the session back
            last = e
            time.sleep(0.2)
        finally:
            conn.close()
    raise AssertionError("could not close the session: %s" % last)


def test_session_expired_via_client_id(make_client, root):
    """kazoo-harness style: a 2nd client attaches with A's id and closes it."""
    a = make_client(timeout=6.0)
    observer = make_client()
    states, cond = _state_recorder(a)
    p = root + "/eph-a"
    a.create(p, b"", ephemeral=True)
    sid, pw = a.client_id
    b = make_client(start=False, client_id=(sid, pw), timeout=6.0)
    b.start(timeout=15)
    assert b.client_id[0] == sid
    b.stop()  # sends closeSession for A's session
    wait_until(lambda: observer.exists(p) is None, timeout=10, msg="ephemeral gone")
    with cond:
        assert cond.wait_for(lambda: KazooState.LOST in states, timeout=15), states
    # kazoo then starts a brand-new session
    wait_until(lambda: a.connected, timeout=15, msg="A reconnected with a new session")
    assert a.client_id[0] != sid
    assert a.exists(p) is None


def test_session_expired_raw_close(make_client, root):
    a = make_client(timeout=6.0)
    observer = make_client()
    states, cond = _state_recorder(a)
    p = root + "/eph-raw"
    a.create(p, b"", ephemeral=True)
    sid, pw = a.client_id
    _close_session_raw(sid, pw)
    assert observer.exists(p) is None
    with cond:
        assert cond.wait_for(lambda: KazooState.LOST in states, timeout=15), states
    # the dead session can no longer be attached: timeOut 0 reply, then close
    conn = zkwire.RawConn()
    try:
        _, timeout, rsid, rpw, _ = conn.handshake(10000, sid, pw)
        assert (timeout, rsid, rpw) == (0, 0, b"\0" * 16)
        assert conn.wait_closed(5)
    finally:
        conn.close()


def test_reattach_closes_old_connection(make_client, root):
    a = make_client()
    states, cond = _state_recorder(a)
    p = root + "/still-there"
    a.create(p, b"", ephemeral=True)
    sid, pw = a.client_id
    conn = zkwire.RawConn()
    try:
        _, timeout, rsid, _, _ = conn.handshake(10000, sid, pw)
        assert timeout > 0 and rsid == sid
        with cond:
            assert cond.wait_for(lambda: KazooState.SUSPENDED in states, timeout=10), states
    finally:
        conn.close()
    # A reconnects to the same (still valid) session; the ephemeral survives
    with cond:
        assert cond.wait_for(lambda: states[-1] == KazooState.CONNECTED, timeout=15), states
    assert KazooState.LOST not in states
    assert a.client_id[0] == sid
    assert a.exists(p).ephemeralOwner == sid


def test_session_times_out_naturally(make_client, root):
    """Raw session (timeout 4000 ms) creates an ephemeral, then goes silent."""
    observer = make_client()
    conn = zkwire.RawConn()
    p = root + "/eph-timeout"
    try:
        _, timeout, sid, pw, _ = conn.handshake(timeout_ms=4000)
        assert timeout == max(4000, 2 * TICK_MS) and sid != 0
        err, created = conn.create(p, b"raw", flags=1)
        assert err == 0 and created == p
        silent_since = time.monotonic()
        assert observer.exists(p).ephemeralOwner == sid
        wait_until(lambda: observer.exists(p) is None, timeout=14,
                   interval=0.1, msg="ephemeral of the silent session to vanish")
        elapsed = time.monotonic() - silent_since
        # expiry happens after the timeout (bucketed by tickTime), not before
        assert elapsed >= timeout / 1000.0 - 0.5, elapsed
        assert conn.wait_closed(5), "expired session's socket not closed"
    finally:
        conn.close()
    # and the id is dead
    conn = zkwire.RawConn()
    try:
        _, t2, s2, _, _ = conn.handshake(4000, sid, pw)
        assert (t2, s2) == (0, 0)
    finally:
        conn.close()


def test_pings_keep_session_alive(make_client, root):
    observer = make_client()
    conn = zkwire.RawConn()
    p = root + "/eph-pinged"
    try:
        _, timeout, sid, _, _ = conn.handshake(timeout_ms=4000)
        assert conn.create(p, b"", flags=1)[0] == 0
        end = time.monotonic() + 2.0 * timeout / 1000.0
        while time.monotonic() < end:
            conn.ping()
            time.sleep(timeout / 3000.0)
        assert observer.exists(p) is not None
    finally:
        conn.close()


def test_timeout_negotiation():
    for requested, expected in [(1, 2 * TICK_MS), (4000, max(4000, 2 * TICK_MS)),
                                (15000, 15000), (10 ** 7, 20 * TICK_MS)]:
        conn = zkwire.RawConn()
        try:
            proto, timeout, sid, pw, ro = conn.handshake(timeout_ms=requested)
            assert proto == 0
            assert timeout == expected, (requested, timeout)
            assert sid != 0 and len(pw) == 16 and ro is False
            conn.close_session()
        finally:
            conn.close()


def test_client_id_reconnect_keeps_session(make_client, root):
    a = make_client()
    p = root + "/persist-eph"
    a.create(p, b"", ephemeral=True)
    sid, pw = a.client_id
    # a kazoo client resuming the same session sees the same ephemeral owner
    b = make_client(start=False, client_id=(sid, pw))
    b.start(timeout=15)
    assert b.client_id[0] == sid
    assert b.exists(p).ephemeralOwner == sid
    b.stop()  # closes the shared session
    a.stop()


# ------------------------------------------------------------- 4lw
def test_four_letter_words():
    assert zkwire.four_letter("ruok") == "imok"
    srvr = zkwire.four_letter("srvr")
    assert "Mode: %s" % EXPECT_MODE in srvr
    assert re.search(r"^Zookeeper version: ", srvr, re.M)
    assert re.search(r"^Zxid: 0x[0-9a-f]+$", srvr, re.M)
    assert re.search(r"^Node count: \d+$", srvr, re.M)
    mntr = zkwire.four_letter("mntr")
    assert re.search(r"^zk_version\t", mntr, re.M)
    assert re.search(r"^zk_server_state\t%s$" % EXPECT_MODE, mntr, re.M)
    assert re.search(r"^zk_znode_count\t\d+$", mntr, re.M)


def test_kazoo_server_version_and_command(zk):
    # kazoo's own 4lw helpers: envi (zookeeper.version=) and command()
    v = zk.server_version()
    assert isinstance(v, tuple) and len(v) >= 2
    assert zk.command(b"ruok") == "imok"
