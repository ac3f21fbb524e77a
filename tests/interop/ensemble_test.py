#!/usr/bin/env python3
"""3-server ensemble: kill -9 the leader under kazoo load, restart it, no acknowledged write lost.

    .venv/bin/python tests/interop/ensemble_test.py --target apache|ours \\
        [--binary PATH] [--rounds N] [--seconds S] [--tick MS] [--keep]

Starts three servers on 127.0.0.1 (fresh temp dir, one zoo.cfg, dataDir and
myid per server, free ports below the ephemeral range), waits until `srvr`
shows one leader and two followers, then runs a pipelined kazoo writer
(client connected to all three) that creates /ens/k-<n> with data str(n) and
records every create whose reply came back OK as ACKNOWLEDGED (ConnectionLoss,
SessionExpired and the like are UNKNOWN: maybe applied, maybe not).

Each round: S seconds of load, find the leader by `srvr`, kill -9 it, keep
writing while the other two elect a new leader (fail-over time: kill -> srvr
shows a new leader, and kill -> first acknowledged write issued after the
kill), then restart the killed server with the same config and wait until it
serves again as follower (or leader).

At the end the writer stops; EACH server is checked on its own (a kazoo client
connected to that server only: sync('/ens'), get_children('/ens'), get of every
acknowledged key): every acknowledged key present with its data, nothing that
was never written. After a quiet period all three must report the same Zxid.

Targets:
  ours    <binary> <zoo.cfg>   (default binary: target/release/zk-server; it
          reads myid from dataDir)
  apache  Apache ZooKeeper 3.8.0 from the Debian package, launched like
          ../shared/peer/zk-common.sh does (java -cp ... QuorumPeerMain
          <zoo.cfg>); ZK_PEER_DIR points at that folder if it is elsewhere.
          ZK_HEAP (default here 256m), ZK_FORCE_SYNC etc. are honoured.

Every child is killed at exit (finally + atexit + SIGINT/SIGTERM/SIGHUP), and a
watchdog ends the run after --max-seconds (default 174 s). Exit 0 on success,
1 on a lost write or any other failure (with the servers' log tails).
Prints "ensemble_test: N passed, M failed" last (the .ci/run counting format).
"""

import argparse
import atexit
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (ConnectionClosedError, ConnectionLoss, OperationTimeoutError,
                              SessionExpiredError, SessionMovedError)
from kazoo.protocol.states import KeeperState
from kazoo.retry import KazooRetry

HOST = "127.0.0.1"
N_SERVERS = 3
WINDOW = 64               # outstanding async creates in the writer
SESSION_TIMEOUT = 4.0     # kazoo session timeout (s); tickTime=200 caps it at 4 s
READY_TIMEOUT = 60.0      # initial leader election
FAILOVER_TIMEOUT = 30.0   # new leader / first ack after a kill
REJOIN_TIMEOUT = 60.0     # killed server serving again after its restart
LOAD_ACK_TIMEOUT = 20.0   # a round's load phase must see acknowledgements
DRAIN_TIMEOUT = 20.0      # in-flight writes after the writer stops
ZXID_TIMEOUT = 20.0       # all three report the same zxid
RECONNECT_GIVE_UP = 15.0  # writer replaces a client disconnected this long

# Errors after which a create may or may not have been applied.
UNKNOWN_ERRORS = (ConnectionLoss, SessionExpiredError, ConnectionClosedError,
                  OperationTimeoutError, SessionMovedError)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The JVM command of ../shared/peer/zk-common.sh (zk_launch), in the foreground
# (exec, so the child's PID is the JVM's). $1 = peer dir, $2 = zoo.cfg.
APACHE_LAUNCH = r'''
set -eu
. "$1/zk-common.sh"
zk_require_java
cp=$ZK_CLASSPATH
[ "$ZK_CNXN_FACTORY" = netty ] && cp="$cp:$ZK_CP_NETTY"
# shellcheck disable=SC2086
exec "$ZK_JAVA" -Xms"$ZK_HEAP" -Xmx"$ZK_HEAP" \
  -Dfile.encoding=UTF-8 -Djava.awt.headless=true \
  -Dorg.slf4j.simpleLogger.defaultLogLevel="$ZK_LOG_LEVEL" \
  -Dorg.slf4j.simpleLogger.showDateTime=true \
  -Dzookeeper.forceSync="$ZK_FORCE_SYNC" \
  -Dzookeeper.DigestAuthenticationProvider.superDigest="$ZK_SUPER_DIGEST" \
  -Dzookeeper.admin.enableServer=false \
  ${ZK_JVM_OPTS:-} \
  -cp "$cp" org.apache.zookeeper.server.quorum.QuorumPeerMain "$2"
'''


def log(msg):
    print("ensemble_test: " + msg, flush=True)


class Failure(Exception):
    pass


# ------------------------------------------------------------------ processes

PROCS = {}                # pid -> Popen, every child ever started and not reaped
PROCS_LOCK = threading.Lock()


def kill_all():
    """SIGKILL every child we started (each leads its own process group)."""
    with PROCS_LOCK:
        procs = list(PROCS.values())
        PROCS.clear()
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


class Interrupted(Failure):
    pass


def on_signal(signum, _frame):
    kill_all()
    raise Interrupted("interrupted by %s" % signal.Signals(signum).name)


def four_letter(port, cmd, timeout=1.5):
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


def srvr(port):
    """`srvr` as a dict ({} if the server does not answer or is not serving)."""
    try:
        out = four_letter(port, "srvr")
    except OSError:
        return {}
    d = {}
    for line in out.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            d[k.strip()] = v.strip()
    return d


def port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def pick_ports(n, rng):
    """n free consecutive-ish loopback ports below the ephemeral range (so a
    client socket's local port cannot take a restarted server's port)."""
    for _ in range(200):
        base = rng.randrange(12000, 32000 - n)
        ports = list(range(base, base + n))
        if all(port_free(p) for p in ports):
            return ports
    raise Failure("no %d free ports found on %s" % (n, HOST))


class Server:
    def __init__(self, sid, target, binary, tmp, client_port, peer_dir):
        self.sid, self.target, self.binary = sid, target, binary
        self.dir = os.path.join(tmp, "s%d" % sid)
        self.data_dir = os.path.join(self.dir, "data")
        self.cfg = os.path.join(self.dir, "zoo.cfg")
        self.log_path = os.path.join(tmp, "s%d.log" % sid)
        self.port = client_port
        self.peer_dir = peer_dir
        self.proc = None
        self.cfg_text = None

    def write_config(self, tick, quorum_ports, elect_ports, client_ports):
        os.makedirs(self.data_dir, exist_ok=True)
        with open(os.path.join(self.data_dir, "myid"), "w") as f:
            f.write("%d\n" % self.sid)
        lines = [
            "# generated by tests/interop/ensemble_test.py (server %d)" % self.sid,
            "tickTime=%d" % tick,
            "initLimit=10",
            "syncLimit=5",
            "dataDir=%s" % self.data_dir,
            "clientPort=%d" % client_ports[self.sid - 1],
            "clientPortAddress=%s" % HOST,
            "maxClientCnxns=0",
            "admin.enableServer=false",
            "4lw.commands.whitelist=*",
        ]
        for j in range(1, N_SERVERS + 1):
            lines.append("server.%d=%s:%d:%d" % (j, HOST, quorum_ports[j - 1], elect_ports[j - 1]))
        self.cfg_text = "\n".join(lines) + "\n"
        self._put_config()

    def _put_config(self):
        # Same static config on every start (Apache may split it into a
        # dynamic file; start from the static one like zk-ensemble.sh).
        for name in os.listdir(self.dir):
            if name.startswith("zoo.cfg.dynamic") or name == "zoo.cfg.bak":
                os.unlink(os.path.join(self.dir, name))
        with open(self.cfg, "w") as f:
            f.write(self.cfg_text)

    def start(self):
        if self.alive():
            raise Failure("s%d is already running" % self.sid)
        self._put_config()
        if self.target == "ours":
            cmd = [self.binary, self.cfg]
        else:
            cmd = ["bash", "-c", APACHE_LAUNCH, "apache-launch", self.peer_dir, self.cfg]
        env = dict(os.environ)
        env.setdefault("ZK_HEAP", "256m")
        env.setdefault("NO_COLOR", "1")
        logf = open(self.log_path, "ab")
        logf.write(b"\n==== ensemble_test: starting s%d ====\n" % self.sid)
        logf.flush()
        try:
            self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.dir, env=env,
                                         start_new_session=True)
        finally:
            logf.close()
        with PROCS_LOCK:
            PROCS[self.proc.pid] = self.proc
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        pid = self.proc.pid
        try:
            os.killpg(pid, signal.SIGKILL)  # pid == pgid: it leads its own session
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        with PROCS_LOCK:
            PROCS.pop(pid, None)
        return pid

    def mode(self):
        return srvr(self.port).get("Mode")

    def tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - n))
                return f.read().decode("utf-8", "replace")
        except OSError as e:
            return "(no log: %s)" % e


def roles(servers):
    return {s.sid: (s.mode() if s.alive() else "dead") for s in servers}


def wait_for_quorum(servers, members, timeout, what):
    """Wait until, among `members` (running servers), exactly one says leader
    and the rest follower. Returns (leader sid, seconds waited)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    last = {}
    standalone_since = None
    while True:
        for s in members:
            if not s.alive():
                raise Failure("%s: s%d exited with %s" % (what, s.sid, s.proc.returncode))
        last = {s.sid: s.mode() for s in members}
        if "standalone" in last.values():
            standalone_since = standalone_since or time.monotonic()
            if time.monotonic() - standalone_since > 5:
                raise Failure("%s: server(s) run standalone, not as an ensemble (modes %s)"
                              % (what, last))
        else:
            standalone_since = None
        leaders = [sid for sid, m in last.items() if m == "leader"]
        followers = [sid for sid, m in last.items() if m == "follower"]
        if len(leaders) == 1 and len(followers) == len(members) - 1:
            return leaders[0], time.monotonic() - t0
        if time.monotonic() > deadline:
            raise Failure("%s: no single leader after %.0fs; modes %s" % (what, timeout, last))
        time.sleep(0.05)


# ------------------------------------------------------------------ clients

def new_client(hosts, timeout=SESSION_TIMEOUT):
    return KazooClient(hosts=hosts, timeout=timeout,
                       connection_retry=KazooRetry(max_tries=-1, delay=0.05, max_delay=0.5),
                       command_retry=KazooRetry(max_tries=5, delay=0.1, max_delay=1.0))


def close_client(zk, wait=10):
    def go():
        try:
            zk.stop()
            zk.close()
        except Exception:
            pass
    t = threading.Thread(target=go, daemon=True)
    t.start()
    if wait:
        t.join(wait)
    return t


class Writer:
    """Pipelined creates of /ens/k-<n>; acknowledged vs unknown bookkeeping."""

    def __init__(self, hosts):
        self.hosts = hosts
        self.lock = threading.Lock()
        self.acked = {}           # n -> ack time (monotonic)
        self.unknown = {}         # n -> error name
        self.errors = Counter()   # error name -> count
        self.bad = []             # outcomes that must never happen
        self.issued = 0
        self.inflight = 0
        self.sem = threading.Semaphore(WINDOW)
        self.stop_evt = threading.Event()
        self.thread = None
        self.zk = None
        self.gen = 0
        self.expired_gen = -1
        self.clients = 0
        self.old_clients = []
        self.disconnected_since = None
        self.watch_t = None       # fail-over probe: issue time threshold
        self.first_ack = None     # first ack of a write issued at/after watch_t
        self.loop_error = None

    # client management -----------------------------------------------------
    def _connect(self):
        zk = new_client(self.hosts)
        gen = self.gen + 1

        def listener(state, gen=gen):
            if state == KazooState.LOST:
                self.expired_gen = gen
        zk.add_listener(listener)
        zk.start(timeout=30)
        self.zk, self.gen = zk, gen
        self.clients += 1
        self.disconnected_since = None

    def _replace(self, why):
        old = self.zk
        log("writer: new kazoo client (%s)" % why)
        self.old_clients.append(close_client(old, wait=0))
        self._connect()

    def start(self):
        self._connect()
        self.thread = threading.Thread(target=self._run, name="writer", daemon=True)
        self.thread.start()

    # load loop ---------------------------------------------------------------
    def _run(self):
        try:
            n = 0
            while not self.stop_evt.is_set():
                zk = self.zk
                st = zk.client_state
                now = time.monotonic()
                if st == KeeperState.CONNECTED:
                    self.disconnected_since = None
                elif self.disconnected_since is None:
                    self.disconnected_since = now
                if self.expired_gen == self.gen:
                    self._replace("session expired")
                    continue
                if st in (KeeperState.EXPIRED_SESSION, KeeperState.CLOSED, KeeperState.AUTH_FAILED):
                    self._replace("client state %s" % st)
                    continue
                if self.disconnected_since is not None and \
                        now - self.disconnected_since > RECONNECT_GIVE_UP:
                    self._replace("disconnected for %.0fs" % (now - self.disconnected_since))
                    continue
                if not self.sem.acquire(timeout=0.1):
                    continue
                if st != KeeperState.CONNECTED:
                    time.sleep(0.01)  # queued until reconnect; do not spin
                n += 1
                path = "/ens/k-%d" % n
                t = time.monotonic()
                with self.lock:
                    self.issued = n
                    self.inflight += 1
                try:
                    a = zk.create_async(path, str(n).encode())
                except Exception as e:  # client closing under us
                    self._done(n, t, path, None, e)
                    continue
                a.rawlink(lambda a, n=n, t=t, path=path: self._cb(n, t, path, a))
        except BaseException as e:  # noqa: B902 - reported by stop()
            self.loop_error = e

    def _cb(self, n, t, path, a):
        try:
            ok = a.successful()
            self._done(n, t, path, a.value if ok else None, None if ok else a.exception)
        except BaseException as e:  # noqa: B902
            with self.lock:
                self.bad.append("callback for %s crashed: %r" % (path, e))

    def _done(self, n, t, path, value, exc):
        now = time.monotonic()
        with self.lock:
            try:
                if exc is None:
                    if value != path:
                        self.bad.append("create %s answered path %r" % (path, value))
                    else:
                        self.acked[n] = now
                        if self.watch_t is not None and self.first_ack is None and t >= self.watch_t:
                            self.first_ack = now
                else:
                    name = type(exc).__name__
                    self.errors[name] += 1
                    self.unknown[n] = name
                    if not isinstance(exc, UNKNOWN_ERRORS):
                        self.bad.append("create %s failed with %s: %s" % (path, name, exc))
            finally:
                self.inflight -= 1
        self.sem.release()

    # probes for the driver ---------------------------------------------------
    def n_acked(self):
        with self.lock:
            return len(self.acked)

    def arm(self, t):
        with self.lock:
            self.watch_t, self.first_ack = t, None

    def first_ack_after(self):
        with self.lock:
            return self.first_ack

    def stop(self):
        self.stop_evt.set()
        if self.thread:
            self.thread.join(15)
            if self.thread.is_alive():
                raise Failure("writer thread did not stop")
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < deadline:
            with self.lock:
                if self.inflight == 0:
                    break
            time.sleep(0.05)
        with self.lock:
            left = self.inflight
        if self.zk is not None:
            close_client(self.zk, wait=15)
        for t in self.old_clients:
            t.join(5)
        if left:
            log("writer: %d writes still unanswered after %.0fs (counted unknown)"
                % (left, DRAIN_TIMEOUT))
        if self.loop_error is not None:
            raise Failure("writer loop crashed: %r" % (self.loop_error,))


# ------------------------------------------------------------------ checks

def check_server(s, acked, issued):
    """Everything acknowledged is on server s (client connected only to s)."""
    zk = new_client("%s:%d" % (HOST, s.port), timeout=10.0)
    zk.start(timeout=30)
    try:
        zk.sync("/ens")
        children = set(zk.get_children("/ens"))
        errors = []
        missing = sorted(n for n in acked if "k-%d" % n not in children)
        if missing:
            errors.append("LOST %d acknowledged write(s) on s%d, e.g. %s"
                          % (len(missing), s.sid, ", ".join("/ens/k-%d" % n for n in missing[:10])))
        extra = []
        for c in children:
            try:
                n = int(c[2:]) if c.startswith("k-") else -1
            except ValueError:
                n = -1
            if not 1 <= n <= issued:
                extra.append(c)
        if extra:
            errors.append("s%d holds %d node(s) never written: %s"
                          % (s.sid, len(extra), ", ".join(sorted(extra)[:10])))
        present = [n for n in sorted(acked) if "k-%d" % n in children]
        wrong = []
        for i in range(0, len(present), 2000):
            batch = present[i:i + 2000]
            asyncs = [(n, zk.get_async("/ens/k-%d" % n)) for n in batch]
            for n, a in asyncs:
                data, _ = a.get(timeout=30)
                if data != str(n).encode():
                    wrong.append((n, data))
        if wrong:
            errors.append("s%d: %d acknowledged node(s) with wrong data, e.g. %s"
                          % (s.sid, len(wrong), ", ".join("/ens/k-%d=%r" % w for w in wrong[:5])))
        n_unknown_applied = len(children) - len(present) - len(extra)
        return len(children), n_unknown_applied, errors
    finally:
        close_client(zk)


def wait_same_zxid(servers, timeout=ZXID_TIMEOUT):
    """All servers report one Zxid, unchanged over two polls 0.5 s apart."""
    deadline = time.monotonic() + timeout
    prev = None
    last = {}
    while time.monotonic() < deadline:
        last = {s.sid: srvr(s.port).get("Zxid") for s in servers}
        vals = set(last.values())
        if len(vals) == 1 and None not in vals and last == prev:
            return vals.pop()
        prev = last
        time.sleep(0.5)
    raise Failure("servers do not agree on the zxid after %.0fs of quiet: %s" % (timeout, last))


# ------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", choices=("ours", "apache"), required=True)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "zk-server"),
                    help="our server binary (--target ours)")
    ap.add_argument("--rounds", type=int, default=3, help="leader kills (default 3)")
    ap.add_argument("--seconds", type=float, default=3.0,
                    help="seconds of load before each kill (default 3)")
    ap.add_argument("--tick", type=int, default=200, help="tickTime in ms (default 200)")
    ap.add_argument("--max-seconds", type=float, default=None,
                    help="watchdog: fail the whole run after this long "
                    "(default 90 + rounds * (seconds + 25): 174 s for the defaults)")
    ap.add_argument("--seed", type=int, default=None, help="port-choice RNG seed")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, data)")
    args = ap.parse_args()
    if args.max_seconds is None:
        args.max_seconds = 90 + args.rounds * (args.seconds + 25)
    # kazoo logs every dropped connection; the kills make that expected noise
    logging.basicConfig(level=logging.CRITICAL, format="%(name)s: %(message)s")

    peer_dir = os.environ.get("ZK_PEER_DIR") or os.path.join(os.path.dirname(ROOT), "shared", "peer")
    if args.target == "ours":
        if not os.access(args.binary, os.X_OK):
            log("no executable %s (cargo real build --release -p server)" % args.binary)
            print("ensemble_test: 0 passed, 1 failed", flush=True)
            return 1
    elif not os.path.isfile(os.path.join(peer_dir, "zk-common.sh")):
        log("%s/zk-common.sh not found (set ZK_PEER_DIR)" % peer_dir)
        print("ensemble_test: 0 passed, 1 failed", flush=True)
        return 1

    atexit.register(kill_all)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    def watchdog():
        log("FAILED: watchdog: run exceeded %.0fs; killing the servers" % args.max_seconds)
        kill_all()
        print("ensemble_test: 0 passed, 1 failed", flush=True)
        os._exit(1)
    wd = threading.Timer(args.max_seconds, watchdog)
    wd.daemon = True
    wd.start()

    rng = random.Random(args.seed)
    tmp = tempfile.mkdtemp(prefix="zk-ensemble-")
    t_start = time.monotonic()
    ports = pick_ports(3 * N_SERVERS, rng)
    client_ports = ports[0:3]
    quorum_ports = ports[3:6]
    elect_ports = ports[6:9]
    servers = [Server(i, args.target, args.binary, tmp, client_ports[i - 1], peer_dir)
               for i in range(1, N_SERVERS + 1)]
    for s in servers:
        s.write_config(args.tick, quorum_ports, elect_ports, client_ports)
    what = args.binary if args.target == "ours" else "Apache ZooKeeper (%s)" % peer_dir
    log("target=%s (%s) rounds=%d load=%.1fs tickTime=%d tmp=%s"
        % (args.target, what, args.rounds, args.seconds, args.tick, tmp))
    log("client ports %s, quorum %s, election %s" % (client_ports, quorum_ports, elect_ports))

    writer = None
    rounds = []
    ok = False
    try:
        for s in servers:
            log("s%d started, pid %d" % (s.sid, s.start()))
        wait_for_quorum(servers, servers, READY_TIMEOUT, "initial election")
        log("ensemble up after %.1fs: %s" % (time.monotonic() - t_start, roles(servers)))

        hosts = ",".join("%s:%d" % (HOST, p) for p in client_ports)
        zk = new_client(hosts)
        zk.start(timeout=30)
        zk.ensure_path("/ens")
        close_client(zk)

        writer = Writer(hosts)
        writer.start()

        for rnd in range(1, args.rounds + 1):
            # load phase: the full ensemble must acknowledge writes
            a0 = writer.n_acked()
            time.sleep(args.seconds)
            deadline = time.monotonic() + LOAD_ACK_TIMEOUT
            while writer.n_acked() == a0 and time.monotonic() < deadline:
                time.sleep(0.05)
            if writer.n_acked() == a0:
                raise Failure("round %d: no write acknowledged in %.0fs of load"
                              % (rnd, args.seconds + LOAD_ACK_TIMEOUT))
            leader, _ = wait_for_quorum(servers, servers, 10, "round %d before the kill" % rnd)
            victim = servers[leader - 1]
            survivors = [s for s in servers if s is not victim]
            acked_before = writer.n_acked()
            t_kill = time.monotonic()
            writer.arm(t_kill)
            pid = victim.kill9()
            t_killed = time.monotonic()
            # new leader among the survivors, and the first acknowledged write
            new_leader, _ = wait_for_quorum(servers, survivors, FAILOVER_TIMEOUT,
                                            "round %d fail-over" % rnd)
            t_leader = time.monotonic() - t_kill
            deadline = t_kill + FAILOVER_TIMEOUT
            while writer.first_ack_after() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            fa = writer.first_ack_after()
            if fa is None:
                raise Failure("round %d: no write acknowledged within %.0fs of killing the leader"
                              % (rnd, FAILOVER_TIMEOUT))
            t_ack = fa - t_kill
            # restart the killed server, same config
            t_restart = time.monotonic()
            new_pid = victim.start()
            wait_for_quorum(servers, servers, REJOIN_TIMEOUT,
                            "round %d rejoin of s%d" % (rnd, victim.sid))
            t_rejoin = time.monotonic() - t_restart
            acked_round = writer.n_acked() - a0
            rounds.append((rnd, victim.sid, new_leader, t_leader, t_ack, t_rejoin))
            log("round %d: killed leader s%d (pid %d, kill took %.2fs); s%d leads after %.2fs "
                "(srvr); first acknowledged write after the kill %.2fs; s%d restarted (pid %d), "
                "%s again after %.2fs; %d writes acknowledged this round (%d before the kill)"
                % (rnd, victim.sid, pid, t_killed - t_kill, new_leader, t_leader, t_ack,
                   victim.sid, new_pid, victim.mode(), t_rejoin, acked_round,
                   acked_before - a0))

        # a little load on the healed ensemble, then stop
        time.sleep(min(1.0, args.seconds))
        writer.stop()
        with writer.lock:
            acked = set(writer.acked)
            unknown = dict(writer.unknown)
            errors = dict(writer.errors)
            bad = list(writer.bad)
            issued = writer.issued
        log("writer stopped: %d issued, %d acknowledged, %d unknown %s, %d kazoo client(s)"
            % (issued, len(acked), len(unknown), errors or "", writer.clients))
        if bad:
            raise Failure("%d impossible write outcome(s):\n  %s"
                          % (len(bad), "\n  ".join(bad[:20])))
        if not acked:
            raise Failure("no write was acknowledged")

        problems = []
        for s in servers:
            n_children, n_applied, errs = check_server(s, acked, issued)
            problems.extend(errs)
            if errs:
                log("s%d (%s): %d children under /ens: BAD: %s"
                    % (s.sid, s.mode(), n_children, "; ".join(errs)))
            else:
                log("s%d (%s): %d children under /ens: all %d acknowledged present with their "
                    "data, %d of the %d unknown were applied"
                    % (s.sid, s.mode(), n_children, len(acked), n_applied, len(unknown)))
        if problems:
            raise Failure("acknowledged writes not on every server:\n  " + "\n  ".join(problems))
        zxid = wait_same_zxid(servers)
        log("all %d servers report Zxid %s after a quiet period; modes %s"
            % (len(servers), zxid, roles(servers)))

        log("summary: %d acknowledged writes, %d unknown (%s), %d issued; %d server(s) "
            "checked, none lost an acknowledged write"
            % (len(acked), len(unknown),
               ", ".join("%s %d" % kv for kv in sorted(errors.items())) or "none",
               issued, len(servers)))
        for rnd, victim, new_leader, t_leader, t_ack, t_rejoin in rounds:
            log("  round %d: leader s%d killed -> s%d elected %.2fs, first ack %.2fs, "
                "s%d rejoined %.2fs after restart" % (rnd, victim, new_leader, t_leader, t_ack,
                                                    victim, t_rejoin))
        if rounds:
            log("  fail-over (first ack after kill): min %.2fs, max %.2fs"
                % (min(r[4] for r in rounds), max(r[4] for r in rounds)))
        ok = True
    except (Failure, OSError) as e:
        log("FAILED: %s" % e)
    except Exception as e:  # kazoo errors and the like
        log("FAILED: %s: %s" % (type(e).__name__, e))
    finally:
        if writer is not None and not writer.stop_evt.is_set():
            try:
                writer.stop_evt.set()
                if writer.zk is not None:
                    close_client(writer.zk, wait=5)
            except Exception:
                pass
        if not ok:
            for s in servers:
                log("---- tail of %s ----\n%s" % (s.log_path, s.tail()))
        kill_all()
        wd.cancel()
        if ok and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log("kept %s" % tmp)
    log("%s in %.1fs" % ("OK" if ok else "FAILED", time.monotonic() - t_start))
    print("ensemble_test: %d passed, %d failed" % (1 if ok else 0, 0 if ok else 1), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
