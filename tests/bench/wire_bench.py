#!/usr/bin/env python3
"""Side-by-side write/read throughput of a ZooKeeper-wire server (a benchmark, not a test).

    python tests/bench/wire_bench.py HOST:PORT [--conns 8] [--ops 20000] [--window 256] [--op create|set|get]

Opens C sessions, each in its own process, and pipelines N requests per session with at
most W outstanding, using pre-encoded frames so the client is not the bottleneck.
Prints ops/s and per-request latency percentiles. Used to compare this server with
Apache ZooKeeper on loopback (same machine, same client).
"""
import argparse
import multiprocessing as mp
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "interop"))
from zkwire import RawConn  # noqa: E402


def frame(body):
    return struct.pack(">i", len(body)) + body


def s(x):
    b = x.encode()
    return struct.pack(">i", len(b)) + b


def req(xid, op, path, data, i):
    if op == "create":
        body = s(f"{path}/n{i}") + struct.pack(">i", len(data)) + data
        body += struct.pack(">i", 1) + struct.pack(">i", 31) + s("world") + s("anyone") + struct.pack(">i", 0)
        return frame(struct.pack(">ii", xid, 1) + body)
    if op == "set":
        return frame(struct.pack(">ii", xid, 5) + s(path) + struct.pack(">i", len(data)) + data + struct.pack(">i", -1))
    return frame(struct.pack(">ii", xid, 4) + s(path) + b"\x00")


def worker(args, idx, q):
    c = RawConn(args.hosts)
    c.handshake(timeout_ms=30000)
    path = f"/bench-{os.getpid()}-{idx}"
    c.create(path)
    sock = c.sock
    data = b"x" * args.size
    frames = [req(i + 100, args.op, path, data, i) for i in range(args.ops)]
    sent_at = [0.0] * args.ops
    lat = []
    buf = b""
    nxt = 0
    done = 0
    t0 = time.perf_counter()
    while done < args.ops:
        out = []
        while nxt < args.ops and nxt - done < args.window:
            sent_at[nxt] = time.perf_counter()
            out.append(frames[nxt])
            nxt += 1
        if out:
            sock.sendall(b"".join(out))
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise SystemExit("server closed the connection")
        buf += chunk
        now = time.perf_counter()
        while len(buf) >= 4:
            (n,) = struct.unpack(">i", buf[:4])
            if len(buf) < 4 + n:
                break
            xid, _, err = struct.unpack(">iqi", buf[4:20])
            buf = buf[4 + n:]
            if xid < 0:
                continue
            if err != 0:
                raise SystemExit(f"error {err} on xid {xid}")
            lat.append(now - sent_at[xid - 100])
            done += 1
    q.put((time.perf_counter() - t0, lat))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hosts")
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--ops", type=int, default=20000)
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--op", choices=["create", "set", "get"], default="create")
    args = ap.parse_args()
    q = mp.Queue()
    ps = [mp.Process(target=worker, args=(args, i, q)) for i in range(args.conns)]
    t0 = time.perf_counter()
    for p in ps:
        p.start()
    res = [q.get() for _ in ps]
    wall = time.perf_counter() - t0
    for p in ps:
        p.join()
    lat = sorted(x for _, l in res for x in l)
    total = len(lat)
    pct = lambda p: lat[min(total - 1, int(p * total))] * 1000  # noqa: E731
    print(f"{args.hosts} op={args.op} conns={args.conns} window={args.window} size={args.size}: "
          f"{total / max(t for t, _ in res):,.0f} ops/s  p50={pct(0.5):.2f}ms p99={pct(0.99):.2f}ms "
          f"(wall {wall:.1f}s incl. connect)")


if __name__ == "__main__":
    main()
