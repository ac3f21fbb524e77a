#!/usr/bin/env python3
"""Real-process crash test: kill -9 mid-stream, restart, no acknowledged write lost.

    ZK_SERVER_CMD='target/release/zk-server /tmp/x/zoo.cfg' ZK_PORT=22182 \
        python tests/interop/crash_test.py [--rounds 4] [--torn-tail]

Environment:
  ZK_SERVER_CMD   shell command that runs the server in the FOREGROUND (it is
                  started as `bash -c "exec $ZK_SERVER_CMD"` in its own process
                  group; for Apache use tests/interop/apache-fg.sh DIR PORT)
  ZK_PORT         its client port on 127.0.0.1
  ZK_LOG_DIR      directory holding the txn log (needed by --torn-tail); the
                  newest file under it (recursive) matching ZK_TORN_GLOB
                  (default "*", e.g. "log.*") gets 1-48 garbage bytes appended
  ZK_CRASH_ROUNDS rounds (default 4); ZK_TORN_TAIL=1 same as --torn-tail
  ZK_CRASH_SEED   RNG seed (default: time based, printed)
  ZK_SERVER_LOG   file collecting the server's output (default: a temp file)

Each round: start the server, wait for `ruok` and a session, verify everything
known so far, run a pipelined kazoo writer (sequential/plain creates, setData,
deletes, multi) recording every ACKNOWLEDGED write, kill -9 the server by PID
at a random moment, optionally append garbage to the newest file under
ZK_LOG_DIR (torn tail), and go round again. After the last crash the server is
started once more, verified and stopped. Checks after every restart:
acknowledged creates/sets/deletes/multis are all there (values never older
than the last acknowledged one), unacknowledged ops are all-or-nothing
(multi), nothing appears that was never written, zxids and the sequential
counter never go backwards, and the killed sessions' ephemerals expire.
"""

import argparse
import glob
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NoNodeError
from kazoo.retry import KazooRetry

HOST = "127.0.0.1"
WINDOW = 32  # outstanding async requests in the writer
START_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0


def log(msg):
    print("crash_test: " + msg, flush=True)


class Failure(Exception):
    pass


def four_letter(port, cmd, timeout=2.0):
    s = socket.create_connection((HOST, port), timeout=timeout)
    try:
        s.sendall(cmd.encode())
        out = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return out.decode("utf-8", "replace")
            out += chunk
    finally:
        s.close()


def port_open(port):
    try:
        socket.create_connection((HOST, port), timeout=0.5).close()
        return True
    except OSError:
        return False


class Server:
    def __init__(self, cmd, port, log_path):
        self.cmd, self.port, self.log_path = cmd, port, log_path
        self.proc = None

    def start(self):
        if port_open(self.port):
            raise Failure("port %d already in use before start" % self.port)
        logf = open(self.log_path, "ab")
        logf.write(b"\n==== crash_test: starting server ====\n")
        logf.flush()
        self.proc = subprocess.Popen(["bash", "-c", "exec " + self.cmd],
                                     stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        logf.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failure("server exited with %s during startup" % self.proc.returncode)
            try:
                if four_letter(self.port, "ruok") == "imok":
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise Failure("server not answering ruok after %.0fs" % START_TIMEOUT)

    def kill9(self):
        pid = self.proc.pid
        try:
            os.killpg(pid, signal.SIGKILL)  # pid == pgid: it leads its own group
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        return pid

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass


def connect(port, timeout=10.0):
    zk = KazooClient(hosts="%s:%d" % (HOST, port), timeout=timeout,
                     connection_retry=KazooRetry(max_tries=-1, max_delay=1.0),
                     command_retry=KazooRetry(max_tries=5, max_delay=1.0))
    zk.start(timeout=30)
    return zk


def close_client(zk):
    def go():
        try:
            zk.stop()
            zk.close()
        except Exception:
            pass
    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(15)


class Model:
    """What the server must hold, learnt from acknowledged replies."""

    def __init__(self, base):
        self.base = base
        self.lock = threading.Lock()
        self.must_exist = {}      # path -> data
        self.must_not_exist = set()
        self.in_doubt = {}        # path -> data it would have if it exists
        self.kv_min = {}          # key path -> lowest acceptable int value
        self.kv_issued = {}       # key path -> set of int values ever sent
        self.seq_issued = {}      # data -> None (unacked sequential creates)
        self.multi_pairs = []     # (a, b, data, acked)
        self.max_zxid = 0
        self.max_seq = -1
        self.ephemerals = []      # ephemeral paths of sessions that were killed
        self.acked = 0

    def note_zxid(self, z):
        if z and z > self.max_zxid:
            self.max_zxid = z


def writer_round(zk, model, rnd, rng, kill_evt, failed_evt, min_acks):
    """Issue pipelined writes until the server dies. Returns ops issued."""
    b = model.base
    sem = threading.Semaphore(WINDOW)
    pending = [0]
    pend_lock = threading.Lock()
    first_acks = threading.Event()
    issued = 0
    g0 = rnd * 1000000
    cb_errors = []

    def done(fn):
        def cb(async_result):
            try:
                ok = async_result.successful()
                value = async_result.value if ok else async_result.exception
                if ok:
                    with model.lock:
                        try:
                            fn(value)
                        except Exception as e:  # reported by the writer
                            cb_errors.append(e)
                            failed_evt.set()
                        model.acked += 1
                        if model.acked >= min_acks:
                            first_acks.set()
                        model.note_zxid(zk.last_zxid)
                else:
                    failed_evt.set()
            finally:
                with pend_lock:
                    pending[0] -= 1
                sem.release()
        return cb

    keys = ["%s/kv/k%d" % (b, i) for i in range(8)]
    g = g0
    while not failed_evt.is_set():
        if not sem.acquire(timeout=0.2):
            continue
        if failed_evt.is_set():
            sem.release()
            break
        g += 1
        data = str(g).encode()
        r = rng.random()
        deletable = []
        if 0.82 <= r < 0.92:
            with model.lock:
                deletable = [p for p in model.must_exist if p.startswith(b + "/plain/")]
        with pend_lock:
            pending[0] += 1
        if r < 0.35:
            with model.lock:
                model.seq_issued[data] = None
            a = zk.create_async(b + "/seq/n-", data, sequence=True)

            def on_seq(path, data=data):
                model.must_exist[path] = data
                model.seq_issued.pop(data, None)
                model.max_seq = max(model.max_seq, int(path[-10:]))
            a.rawlink(done(on_seq))
        elif r < 0.60:
            p = "%s/plain/g%d" % (b, g)
            with model.lock:
                model.in_doubt[p] = data
            a = zk.create_async(p, data)

            def on_create(_, p=p, data=data):
                model.in_doubt.pop(p, None)
                model.must_exist[p] = data
            a.rawlink(done(on_create))
        elif r < 0.82:
            k = keys[g % len(keys)]
            with model.lock:
                model.kv_issued.setdefault(k, set()).add(g)
            a = zk.set_async(k, data)

            def on_set(_, k=k, g=g):
                model.kv_min[k] = max(model.kv_min.get(k, -1), g)
            a.rawlink(done(on_set))
        elif r < 0.92 and deletable:
            p = rng.choice(deletable)
            with model.lock:
                model.in_doubt[p] = model.must_exist.pop(p)
            a = zk.delete_async(p)

            def on_delete(_, p=p):
                model.in_doubt.pop(p, None)
                model.must_not_exist.add(p)
            a.rawlink(done(on_delete))
        else:
            pa, pb = "%s/multi/g%da" % (b, g), "%s/multi/g%db" % (b, g)
            entry = [pa, pb, data, False]
            with model.lock:
                model.multi_pairs.append(entry)
            t = zk.transaction()
            t.create(pa, data)
            t.create(pb, data)
            a = t.commit_async()

            def on_multi(results, entry=entry):
                if any(isinstance(x, Exception) for x in results):
                    raise Failure("multi failed on a live server: %r" % (results,))
                entry[3] = True
            a.rawlink(done(on_multi))
        issued += 1
        if kill_evt.is_set():
            break
        if not first_acks.is_set() and issued > min_acks * 50:
            raise Failure("server acknowledges no writes")
    # in-flight ops finish with ConnectionLoss once the socket is gone
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with pend_lock:
            if pending[0] == 0:
                break
        time.sleep(0.05)
    if cb_errors:
        raise cb_errors[0]
    return issued


def verify(port, model, label):
    """Check the restarted server against the model; then learn its state."""
    zk = connect(port)
    errors = []
    try:
        b = model.base
        with model.lock:
            must_exist = dict(model.must_exist)
            must_not = set(model.must_not_exist)
            in_doubt = dict(model.in_doubt)
            kv_min = dict(model.kv_min)
            kv_issued = {k: set(v) for k, v in model.kv_issued.items()}
            seq_issued = set(model.seq_issued)
            pairs = [list(p) for p in model.multi_pairs]

        children = {}
        for sub in ("seq", "plain", "multi"):
            children[sub] = set(zk.get_children(b + "/" + sub))
        # acknowledged creates (incl. sequential) with their data
        asyncs = {p: zk.get_async(p) for p in must_exist}
        for p, a in asyncs.items():
            try:
                data, _ = a.get(timeout=20)
            except NoNodeError:
                errors.append("LOST acknowledged node %s" % p)
                continue
            if data != must_exist[p]:
                errors.append("node %s has %r, acknowledged %r" % (p, data, must_exist[p]))
        for p in must_not:
            sub, name = p[len(b) + 1:].split("/", 1)
            if name in children.get(sub, ()):
                errors.append("acknowledged delete undone: %s exists" % p)
        # nothing that was never written
        known_plain = {p.rsplit("/", 1)[1] for p in list(must_exist) + list(in_doubt) + list(must_not)
                       if p.startswith(b + "/plain/")}
        for name in children["plain"] - known_plain:
            errors.append("unexpected node %s/plain/%s" % (b, name))
        seq_known = {p.rsplit("/", 1)[1] for p in must_exist if p.startswith(b + "/seq/")}
        for name in children["seq"] - seq_known:
            data, _ = zk.get("%s/seq/%s" % (b, name))
            if data not in seq_issued:
                errors.append("unexpected sequential node %s with %r" % (name, data))
        # kv: never older than the last acknowledged value, never invented
        for k, issued in kv_issued.items():
            data, _ = zk.get(k)
            v = int(data) if data else -1
            if v < kv_min.get(k, -1):
                errors.append("%s = %d older than acknowledged %d" % (k, v, kv_min[k]))
            if v != -1 and v not in issued:
                errors.append("%s = %d was never written" % (k, v))
        # multi: all-or-nothing, acknowledged ones present
        for pa, pb, data, acked in pairs:
            ea = pa.rsplit("/", 1)[1] in children["multi"]
            eb = pb.rsplit("/", 1)[1] in children["multi"]
            if ea != eb:
                errors.append("multi torn: %s=%s %s=%s" % (pa, ea, pb, eb))
            if acked and not (ea and eb):
                errors.append("LOST acknowledged multi %s" % pa)
        # zxid and sequence counter never go backwards
        probe = zk.create(b + "/seq/n-", b"probe", sequence=True)
        czxid = zk.exists(probe).czxid
        if czxid <= model.max_zxid:
            errors.append("zxid went backwards: new write 0x%x <= acknowledged 0x%x"
                          % (czxid, model.max_zxid))
        if int(probe[-10:]) <= model.max_seq:
            errors.append("sequential counter went backwards: %s after %d" % (probe, model.max_seq))
        if errors:
            raise Failure("%s: %d problem(s):\n  " % (label, len(errors)) + "\n  ".join(errors[:30]))

        # learn the recovered state: from now on it must persist as seen
        with model.lock:
            model.must_exist[probe] = b"probe"
            model.max_seq = max(model.max_seq, int(probe[-10:]))
            model.note_zxid(czxid)
            for p, data in in_doubt.items():
                sub, name = p[len(b) + 1:].split("/", 1)
                model.in_doubt.pop(p, None)
                if name in children[sub]:
                    model.must_exist[p] = data
                else:
                    model.must_not_exist.add(p)
            for name in children["seq"] - seq_known:
                p = "%s/seq/%s" % (b, name)
                data, _ = zk.get(p)
                model.must_exist[p] = data
                model.seq_issued.pop(data, None)
                model.max_seq = max(model.max_seq, int(name[-10:]))
            model.seq_issued.clear()  # the rest were never applied
            for k in kv_issued:
                data, _ = zk.get(k)
                model.kv_min[k] = int(data) if data else -1
            model.multi_pairs = []
            for pa, pb, data, acked in pairs:
                if pa.rsplit("/", 1)[1] in children["multi"]:
                    model.must_exist[pa] = data
                    model.must_exist[pb] = data
                else:
                    model.must_not_exist.update((pa, pb))
        checked = len(must_exist) + len(must_not)
        return checked
    finally:
        close_client(zk)


def wait_ephemerals_gone(port, model, timeout=40.0):
    if not model.ephemerals:
        return 0.0
    zk = connect(port)
    t0 = time.monotonic()
    try:
        while True:
            left = [p for p in model.ephemerals if zk.exists(p) is not None]
            if not left:
                model.ephemerals = []
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise Failure("ephemerals of killed sessions still present after %.0fs: %s"
                              % (timeout, left))
            time.sleep(0.25)
    finally:
        close_client(zk)


def tear_tail(log_dir, rng):
    pattern = os.environ.get("ZK_TORN_GLOB", "*")
    files = [f for f in glob.glob(os.path.join(log_dir, "**", pattern), recursive=True)
             if os.path.isfile(f)]
    if not files:
        raise Failure("--torn-tail: no file under ZK_LOG_DIR=%s" % log_dir)
    newest = max(files, key=lambda f: (os.path.getmtime(f), f))
    junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 48)))
    with open(newest, "ab") as f:
        f.write(junk)
    return newest, len(junk)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("ZK_CRASH_ROUNDS", "4")))
    ap.add_argument("--torn-tail", action="store_true",
                    default=os.environ.get("ZK_TORN_TAIL", "") not in ("", "0"))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("ZK_CRASH_SEED", "0")) or None)
    ap.add_argument("--min-acks", type=int, default=100,
                    help="acknowledged writes before the kill timer starts")
    args = ap.parse_args()
    # kazoo logs every dropped connection; the kills make that expected noise
    logging.basicConfig(level=logging.ERROR, format="%(name)s: %(message)s")

    cmd = os.environ.get("ZK_SERVER_CMD")
    port = int(os.environ.get("ZK_PORT", "0"))
    if not cmd or not port:
        print("crash_test: set ZK_SERVER_CMD and ZK_PORT", file=sys.stderr)
        return 2
    log_dir = os.environ.get("ZK_LOG_DIR")
    if args.torn_tail and not log_dir:
        print("crash_test: --torn-tail needs ZK_LOG_DIR", file=sys.stderr)
        return 2
    seed = args.seed or int(time.time() * 1000) % 1000000007
    rng = random.Random(seed)
    server_log = os.environ.get("ZK_SERVER_LOG") or tempfile.mkstemp(prefix="crash-server-", suffix=".log")[1]
    log("seed=%d rounds=%d torn_tail=%s port=%d server_log=%s"
        % (seed, args.rounds, args.torn_tail, port, server_log))
    log("server: %s" % cmd)

    server = Server(cmd, port, server_log)
    model = Model("/crash-" + uuid.uuid4().hex[:12])
    passed = failed = 0
    t_start = time.monotonic()
    try:
        server.start()
        zk = connect(port)
        for sub in ("seq", "plain", "multi", "kv", "eph"):
            zk.ensure_path(model.base + "/" + sub)
        for i in range(8):
            zk.create("%s/kv/k%d" % (model.base, i), b"")
        model.note_zxid(zk.last_zxid)
        close_client(zk)

        for rnd in range(1, args.rounds + 1):
            t0 = time.monotonic()
            zk = connect(port, timeout=6.0)
            eph = "%s/eph/r%d" % (model.base, rnd)
            zk.create(eph, b"", ephemeral=True)
            model.ephemerals.append(eph)
            kill_evt, failed_evt = threading.Event(), threading.Event()
            result = {}

            def run_writer():
                try:
                    result["issued"] = writer_round(zk, model, rnd, rng, kill_evt,
                                                    failed_evt, args.min_acks)
                except BaseException as e:  # noqa: B902
                    result["error"] = e
                    failed_evt.set()

            acked_before = model.acked
            wt = threading.Thread(target=run_writer, daemon=True)
            wt.start()
            # wait for some acknowledged writes, then kill at a random moment
            deadline = time.monotonic() + 30
            while model.acked - acked_before < args.min_acks and time.monotonic() < deadline \
                    and not failed_evt.is_set():
                time.sleep(0.01)
            if model.acked - acked_before < args.min_acks:
                raise Failure("round %d: only %d writes acknowledged in 30s (%s)"
                              % (rnd, model.acked - acked_before, result.get("error")))
            time.sleep(rng.uniform(0.05, 1.5))
            pid = server.kill9()
            kill_evt.set()
            wt.join(30)
            if wt.is_alive():
                raise Failure("round %d: writer did not stop after the kill" % rnd)
            if "error" in result:
                raise result["error"]
            close_client(zk)
            acked_round = model.acked - acked_before
            torn = ""
            if args.torn_tail:
                f, n = tear_tail(log_dir, rng)
                torn = ", appended %d garbage bytes to %s" % (n, f)
            server.start()
            try:
                checked = verify(port, model, "round %d" % rnd)
                gone = wait_ephemerals_gone(port, model)
            except Failure:
                failed += 1
                raise
            passed += 1
            log("round %d OK: %d writes issued, %d acknowledged, killed pid %d%s; "
                "restart verified %d paths, killed sessions' ephemerals gone after %.1fs (%.1fs)"
                % (rnd, result.get("issued", 0), acked_round, pid, torn, checked, gone,
                   time.monotonic() - t0))
        # one more clean restart (SIGTERM) must keep everything too
        server.stop()
        server.start()
        verify(port, model, "final clean restart")
        passed += 1
        log("final clean restart OK")
    except (Failure, KazooException, OSError) as e:
        log("FAILED: %s" % e)
        try:
            with open(server_log, "rb") as f:
                tail = f.read()[-3000:].decode("utf-8", "replace")
            log("tail of server log:\n" + tail)
        except OSError:
            pass
        failed = max(failed, 1)
    finally:
        server.stop()
    log("%d acknowledged writes in total, %.1fs" % (model.acked, time.monotonic() - t_start))
    print("crash_test: %d passed, %d failed" % (passed, failed), flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
