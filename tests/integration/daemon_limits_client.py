#!/usr/bin/env python3
"""Attack and probe client for tests/integration/daemon_limits.sh, also used
by hand to measure a daemon (docs/daemons/cvm-agentd.md, "Limits").

It speaks HTTP/1.1 over a unix socket (--unix PATH) or TCP (--tcp HOST:PORT,
optionally from --src ADDR) and prints one JSON object with what it saw. It
asserts nothing: the calling script compares the numbers with its bounds.
It exits 2 only when it cannot run at all.

Modes:
  flood      N connections each announce a --body byte body and send all of
             it but the last byte, then hold for --hold seconds.
  slowloris  N connections send a request line and then one header byte
             every --every seconds for --duration seconds.
  probe      a legitimate client: --count requests, one every --interval.
  raw        one connection sends --data (with \\r \\n \\xHH escapes) and
             reports the status line, body and whether the server closed.

flood and slowloris take --probe (a legitimate client runs in a thread while
the attack holds) and --pid PID (the daemon's resident memory is sampled from
/proc/PID/status every 20 ms).
"""

import argparse
import errno
import json
import os
import resource
import selectors
import socket
import sys
import threading
import time

PROBE_REQUEST = (b"POST /Version HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                 b"Connection: close\r\n\r\n")


def now_ms():
    return time.monotonic() * 1000.0


_src_next = [0]


def connect(args, timeout=5.0):
    if args.unix:
        # A unix socket's connect() fails with EAGAIN, rather than waiting,
        # while the listen backlog is full: retry until `timeout`.
        deadline = time.monotonic() + timeout
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            try:
                s.connect(args.unix)
                break
            except BlockingIOError:
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.005)
    else:
        host, port = args.tcp.rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout)
        if args.src:
            # A comma-separated list: one source address after the other.
            srcs = args.src.split(",")
            s.bind((srcs[_src_next[0] % len(srcs)], 0))
            _src_next[0] += 1
        s.connect((host, int(port)))
    return s


def read_response(s, limit_s, wait_close=False):
    """Reads one response (or, with wait_close, until the server closes)
    within `limit_s` seconds; returns (raw bytes, closed)."""
    deadline = time.monotonic() + limit_s
    chunks = []
    closed = False
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        except OSError:
            closed = True
            break
        if not d:
            closed = True
            break
        chunks.append(d)
        raw = b"".join(chunks)
        head, sep, body = raw.partition(b"\r\n\r\n")
        if sep:
            length = None
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v.strip() or b"0")
            if length is not None and len(body) >= length and not wait_close:
                break
    return b"".join(chunks), closed


def status_of(raw):
    if not raw.startswith(b"HTTP/1."):
        return None
    try:
        return int(raw.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def body_of(raw):
    return raw.partition(b"\r\n\r\n")[2]


class RssSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = 0
        self.first_kb = None
        self.stop = threading.Event()

    def read(self, key):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def run(self):
        while not self.stop.is_set():
            kb = self.read("VmRSS")
            if kb is not None:
                if self.first_kb is None:
                    self.first_kb = kb
                self.peak_kb = max(self.peak_kb, kb)
            time.sleep(0.02)

    def result(self):
        return {"rss_start_kb": self.first_kb, "rss_peak_kb": self.peak_kb,
                "hwm_kb": self.read("VmHWM")}


class Prober(threading.Thread):
    """A legitimate client: one request per interval on a fresh
    connection, each within a 5 s limit."""

    def __init__(self, args, interval, count=None):
        super().__init__(daemon=True)
        self.args = args
        self.interval = interval
        self.count = count
        self.lat = []
        self.fails = []
        self.stop = threading.Event()

    def one(self):
        t0 = now_ms()
        try:
            s = connect(self.args, timeout=5.0)
            s.sendall(PROBE_REQUEST)
            raw, _ = read_response(s, 5.0)
            s.close()
        except OSError as e:
            self.fails.append(f"{type(e).__name__}: {e}")
            return
        st = status_of(raw)
        if st == 200 and b'"version"' in body_of(raw):
            self.lat.append(now_ms() - t0)
        else:
            self.fails.append(f"status {st}: {body_of(raw)[:120]!r}")

    def run(self):
        n = 0
        while not self.stop.is_set() and (self.count is None or n < self.count):
            self.one()
            n += 1
            self.stop.wait(self.interval)

    def result(self):
        lat = sorted(self.lat)
        return {
            "ok": len(lat),
            "failed": len(self.fails),
            "failures": self.fails[:5],
            "p50_ms": round(lat[len(lat) // 2], 1) if lat else None,
            "max_ms": round(lat[-1], 1) if lat else None,
        }


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Conn:
    __slots__ = ("s", "t_open", "t_closed", "out", "sent", "raw", "closed", "header_left")

    def __init__(self, s):
        self.s = s
        self.t_open = now_ms()
        self.t_closed = None
        self.out = b""
        self.sent = 0
        self.raw = b""
        self.closed = False
        self.header_left = b""


def open_many(args, n):
    conns, failed = [], []
    for _ in range(n):
        try:
            s = connect(args, timeout=5.0)
        except OSError as e:
            failed.append(errno.errorcode.get(e.errno, str(e)) if e.errno else str(e))
            continue
        s.setblocking(False)
        conns.append(Conn(s))
    return conns, failed


def mark_closed(c, sel):
    if c.closed:
        return
    c.closed = True
    c.t_closed = now_ms()
    try:
        sel.unregister(c.s)
    except (KeyError, ValueError):
        pass
    c.s.close()


def drain(c, sel):
    """Reads what the server sent; marks the connection closed on EOF or
    error."""
    while True:
        try:
            d = c.s.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            mark_closed(c, sel)
            return
        if not d:
            mark_closed(c, sel)
            return
        if len(c.raw) < 4096:
            c.raw += d[:4096 - len(c.raw)]


def summarize(conns, failed, extra):
    statuses = {}
    for c in conns:
        st = status_of(c.raw)
        key = str(st) if st is not None else ("closed" if c.closed else "none")
        statuses[key] = statuses.get(key, 0) + 1
    r = {
        "opened": len(conns),
        "connect_failed": len(failed),
        "connect_errors": sorted(set(failed))[:5],
        "closed_by_server": sum(1 for c in conns if c.closed),
        "statuses": statuses,
    }
    life = {}
    for c in conns:
        if c.closed:
            st = status_of(c.raw)
            key = str(st) if st is not None else "closed"
            life[key] = max(life.get(key, 0), round(c.t_closed - c.t_open))
    r["lifetime_ms_max_by_status"] = life
    bodies = [body_of(c.raw)[:160].decode("latin1") for c in conns if status_of(c.raw)]
    r["sample_bodies"] = sorted(set(bodies))[:10]
    r.update(extra)
    return r


def run_flood(args):
    limit = raise_nofile(args.conns)
    sampler = RssSampler(args.pid) if args.pid else None
    if sampler:
        sampler.start()
    t0 = now_ms()
    conns, failed = open_many(args, args.conns)
    sel = selectors.DefaultSelector()
    head = (f"POST /GetQuote HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {args.body}\r\n\r\n").encode()
    chunk = b" " * 65536
    for c in conns:
        c.out = head
        sel.register(c.s, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
    want = len(head) + args.body - 1
    send_deadline = time.monotonic() + args.send_timeout
    while time.monotonic() < send_deadline:
        busy = [c for c in conns if not c.closed and c.sent < want]
        if not busy:
            break
        for key, ev in sel.select(timeout=0.5):
            c = key.data
            if ev & selectors.EVENT_READ:
                drain(c, sel)
            if c.closed or not ev & selectors.EVENT_WRITE:
                continue
            if not c.out:
                n = min(len(chunk), want - c.sent)
                c.out = chunk[:n]
            try:
                k = c.s.send(c.out)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                drain(c, sel)
                mark_closed(c, sel)
                continue
            c.out = c.out[k:]
            c.sent += k
            if c.sent >= want:
                sel.modify(c.s, selectors.EVENT_READ, c)
    sent_ms = now_ms() - t0
    prober = Prober(args, 0.2) if args.probe else None
    if prober:
        prober.start()
    hold_end = time.monotonic() + args.hold
    while time.monotonic() < hold_end:
        for key, _ in sel.select(timeout=0.2):
            drain(key.data, sel)
    if prober:
        prober.stop.set()
        prober.join(10)
    extra = {
        "mode": "flood",
        "conns": args.conns,
        "body": args.body,
        "nofile": limit,
        "fully_sent": sum(1 for c in conns if c.sent >= want),
        "bytes_sent": sum(c.sent for c in conns),
        "send_ms": round(sent_ms),
    }
    if sampler:
        sampler.stop.set()
        sampler.join(2)
        extra.update(sampler.result())
    if prober:
        extra["probe"] = prober.result()
    for c in conns:
        if not c.closed:
            c.s.close()
    return summarize(conns, failed, extra)


def run_slowloris(args):
    limit = raise_nofile(args.conns)
    sampler = RssSampler(args.pid) if args.pid else None
    if sampler:
        sampler.start()
    conns, failed = open_many(args, args.conns)
    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c.s, selectors.EVENT_READ, c)
        try:
            c.s.send(b"POST /Version HTTP/1.1\r\n")
        except OSError:
            drain(c, sel)
            mark_closed(c, sel)
        c.header_left = b""
    prober = Prober(args, 0.2) if args.probe else None
    if prober:
        prober.start()
    end = time.monotonic() + args.duration
    next_tick = time.monotonic() + args.every
    n = 0
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=min(0.1, max(0.0, next_tick - time.monotonic()))):
            drain(key.data, sel)
        if time.monotonic() < next_tick:
            continue
        next_tick += args.every
        for c in conns:
            if c.closed:
                continue
            if not c.header_left:
                n += 1
                c.header_left = f"X-Slow-{n}: {'a' * 8}\r\n".encode()
            try:
                c.s.send(c.header_left[:1])
                c.header_left = c.header_left[1:]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                drain(c, sel)
                mark_closed(c, sel)
    if prober:
        prober.stop.set()
        prober.join(10)
    life = sorted(c.t_closed - c.t_open for c in conns if c.closed)
    extra = {
        "mode": "slowloris",
        "conns": args.conns,
        "nofile": limit,
        "alive_at_end": sum(1 for c in conns if not c.closed),
        "lifetime_ms_min": round(life[0]) if life else None,
        "lifetime_ms_max": round(life[-1]) if life else None,
    }
    if sampler:
        sampler.stop.set()
        sampler.join(2)
        extra.update(sampler.result())
    if prober:
        extra["probe"] = prober.result()
    for c in conns:
        if not c.closed:
            c.s.close()
    return summarize(conns, failed, extra)


def unescape(s):
    return s.encode("latin1").decode("unicode_escape").encode("latin1")


def run_raw(args):
    t0 = now_ms()
    try:
        s = connect(args)
        s.sendall(unescape(args.data))
        raw, closed = read_response(s, args.limit, args.wait_close)
        s.close()
    except OSError as e:
        return {"mode": "raw", "error": f"{type(e).__name__}: {e}"}
    return {
        "mode": "raw",
        "status": status_of(raw),
        "head": raw.partition(b"\r\n\r\n")[0].decode("latin1"),
        "body": body_of(raw).decode("latin1"),
        "responses": raw.count(b"HTTP/1.1 "),
        "closed": closed,
        "ms": round(now_ms() - t0),
    }


def run_probe(args):
    p = Prober(args, args.interval, args.count)
    p.run()
    return dict(mode="probe", **p.result())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["flood", "slowloris", "probe", "raw"])
    ap.add_argument("--unix")
    ap.add_argument("--tcp")
    ap.add_argument("--src", help="TCP source address to bind (e.g. 127.0.0.2), or several, comma-separated, "
                    "used in turn")
    ap.add_argument("--pid", type=int, help="the daemon, for its resident memory")
    ap.add_argument("--probe", action="store_true", help="run a legitimate client alongside")
    ap.add_argument("--conns", type=int, default=100)
    ap.add_argument("--body", type=int, default=1024 * 1024)
    ap.add_argument("--hold", type=float, default=3.0)
    ap.add_argument("--send-timeout", type=float, default=60.0)
    ap.add_argument("--every", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--interval", type=float, default=0.2)
    ap.add_argument("--data", default="")
    ap.add_argument("--limit", type=float, default=5.0, help="raw: seconds to wait for the answer")
    ap.add_argument("--wait-close", action="store_true", help="raw: read until the server closes")
    args = ap.parse_args()
    if bool(args.unix) == bool(args.tcp):
        print("daemon_limits_client: give exactly one of --unix and --tcp", file=sys.stderr)
        sys.exit(2)
    run = {"flood": run_flood, "slowloris": run_slowloris, "probe": run_probe, "raw": run_raw}[args.mode]
    print(json.dumps(run(args), sort_keys=True))


if __name__ == "__main__":
    main()
