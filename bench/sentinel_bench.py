# SPDX-License-Identifier: MIT
"""The `sentinel` phase of bench/run (only with --only sentinel): godislock
through Redis Sentinel against a direct connection to the same master, and
how long a failover takes to reach a holder and the next waiter.

1. The bench's own redis-server becomes a master with one replica and three
   sentinels (configs written here, naming each other so that they agree at
   once; down-after-milliseconds 1000, failover-timeout 5000). Uncontended
   `godislock run -- true` and handoff at K=8 are measured with
   redis-sentinel:// and with redis:// to that master, in one run.
2. Failover timings, each on a fresh master + replica + 3 sentinels: a
   holder (--ttl 30s) whose key the replica is made to forget (what a
   failover before the write reached the replica leaves), and one queued
   waiter. Then `SENTINEL FAILOVER`, or SIGKILL of the master, at t0; the
   driver records (all CLOCK_MONOTONIC) when a subscriber of its own saw
   +switch-master, when the holder's command got its signal, and when the
   waiter's command started.
"""

import os
import signal
import socket
import subprocess
import threading
import time

from ports import free_port

NAME = "benchmaster"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000
# The holder's command: writes CLOCK_MONOTONIC (ns) to argv[1] when SIGTERM
# arrives (time.monotonic_ns is CLOCK_MONOTONIC on Linux), then exits.
HOLDER = ("import signal, sys, time\n"
          "def on_term(*_):\n"
          "    with open(sys.argv[1], 'w') as f:\n"
          "        f.write(str(time.monotonic_ns()))\n"
          "    sys.exit(0)\n"
          "signal.signal(signal.SIGTERM, on_term)\n"
          "time.sleep(600)\n")


class Topology:
    """Sentinels (and, unless given a master port, a master) plus a
    replica, in dir `d`; every process spawned through the bench's Procs,
    so that its teardown kills them too."""

    def __init__(self, bench, d, master_port=None):
        self.b = bench
        self.d = d
        os.makedirs(d, exist_ok=True)
        self.procs = []
        self.master_proc = None
        if master_port is None:
            master_port = free_port()
            self.master_proc = self.server("master", master_port, [])
        else:
            # The bench's own server: no 5 s wait for more replicas.
            r = bench.redis_class(master_port)
            r.cmd("CONFIG", "SET", "repl-diskless-sync-delay", "0")
            r.close()
        self.master_port = master_port
        self.replica_port = free_port()
        self.replica_proc = self.server(
            "replica", self.replica_port,
            ["--replicaof", "127.0.0.1", str(master_port)])
        self.wait(lambda: "master_link_status:up" in self.call(
            self.replica_port, "INFO", "replication"), "replica sync")
        self.sentinel_ports = [free_port() for _ in range(3)]
        ids = ["%040x" % (i + 1) for i in range(3)]
        for i, port in enumerate(self.sentinel_ports):
            conf = os.path.join(d, f"sentinel{i}.conf")
            with open(conf, "w") as f:
                f.write(f"sentinel myid {ids[i]}\n"
                        f"sentinel monitor {NAME} 127.0.0.1 {master_port} 2\n"
                        f"sentinel down-after-milliseconds {NAME} "
                        f"{DOWN_AFTER_MS}\n"
                        f"sentinel failover-timeout {NAME} "
                        f"{FAILOVER_TIMEOUT_MS}\n"
                        f"sentinel known-replica {NAME} 127.0.0.1 "
                        f"{self.replica_port}\n")
                for k, other in enumerate(self.sentinel_ports):
                    if k != i:
                        f.write(f"sentinel known-sentinel {NAME} 127.0.0.1 "
                                f"{other} {ids[k]}\n")
            self.spawn(f"sentinel{i}", ["redis-server", conf, "--sentinel",
                                        "--port", str(port), "--bind",
                                        "127.0.0.1", "--dir", d,
                                        "--loglevel", "warning"])
        self.wait(lambda: self.named() == master_port, "sentinels agree")

    def spawn(self, name, argv):
        out = open(os.path.join(self.d, f"{name}.log"), "ab")
        p = self.b.procs.spawn(argv, stdout=out, stderr=out)
        out.close()
        self.procs.append(p)
        return p

    def server(self, name, port, extra):
        p = self.spawn(name, [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", self.d,
            "--repl-diskless-sync-delay", "0", "--loglevel", "warning",
            *extra])
        self.wait(lambda: self.call(port, "PING") == "PONG", f"{name} up")
        return p

    def call(self, port, *args):
        r = self.b.redis_class(port)
        try:
            return r.cmd(*args)
        finally:
            r.close()

    def wait(self, pred, what, timeout=20):
        def safe():
            try:
                return pred()
            except Exception:  # noqa: BLE001 - not up yet
                return False
        if not self.b.wait_until(safe, timeout):
            raise self.b.error_class(f"sentinel bench: no {what} within "
                                     f"{timeout} s (logs in {self.d})")

    def named(self):
        ports = {int(self.call(p, "SENTINEL", "get-master-addr-by-name",
                               NAME)[1]) for p in self.sentinel_ports}
        return ports.pop() if len(ports) == 1 else None

    def url(self):
        return "redis-sentinel://" + ",".join(
            f"127.0.0.1:{p}" for p in self.sentinel_ports) + f"/{NAME}"

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def switch_listener(port, seen):
    """Subscribes to +switch-master on sentinel `port`; puts the
    CLOCK_MONOTONIC ns of the first announcement in seen["t"]."""
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$14\r\n+switch-master\r\n")
    ready = threading.Event()

    def run():
        buf = b""
        subscribed = False
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return
                buf += chunk
                if not subscribed and b"subscribe" in buf:
                    subscribed = True
                    buf = b""
                    ready.set()
                    continue
                if subscribed and b"message" in buf:
                    seen["t"] = time.monotonic_ns()
                    return
        except OSError:
            return
        finally:
            ready.set()
            s.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    ready.wait(10)
    return t


def compare(bench, topo):
    """Uncontended and handoff K=8, through Sentinel and direct."""
    direct = f"redis://127.0.0.1:{topo.master_port}"
    sentinel = topo.url()
    runs, warm = bench.p["runs"], bench.p["warmup"]
    bench.log(f"sentinel: uncontended, {runs} interleaved runs each")
    argv = [bench.timer, str(runs), str(warm), "--",
            bench.bin, "run", "--url", sentinel, "--name", "x", "--", "true",
            ":::", bench.bin, "run", "--url", direct, "--name", "x", "--",
            "true"]
    r = subprocess.run(argv, env=bench.env, capture_output=True, text=True,
                       timeout=600)
    if r.returncode != 0:
        raise bench.error_class(f"timer failed: {r.stderr}")
    times = {0: [], 1: []}
    failed = {0: 0, 1: 0}
    for line in r.stdout.splitlines():
        _, idx, ns, status = line.split()
        times[int(idx)].append(int(ns))
        failed[int(idx)] += int(status) != 0
    out = {"uncontended": {
        which: {"median": bench.pct(times[i], 50),
                "p90": bench.pct(times[i], 90), "runs": len(times[i]),
                "failed": failed[i]}
        for i, which in ((0, "sentinel"), (1, "direct"))}}
    hand = {}
    saved = bench.env["GODISLOCK_URL"]
    for which, url in (("direct", direct), ("sentinel", sentinel)):
        # The run before stops its loops with SIGTERM, then SIGKILL: a
        # contender killed while holding leaves the lock held for its TTL.
        subprocess.run([bench.bin, "release", "--force", "hand8"],
                       env=dict(bench.env, GODISLOCK_URL=direct),
                       capture_output=True, timeout=30)
        bench.env["GODISLOCK_URL"] = url
        try:
            res = bench.handoff_run("godislock", 8)
        finally:
            bench.env["GODISLOCK_URL"] = saved
        # handoff_run names its files by tool and K: keep each run's apart.
        for ext in ("cs", "launch", "counter", "err", "cdf", "holder.pid",
                    "holder.err"):
            f = os.path.join(bench.tmp, f"h-godislock-8.{ext}")
            if os.path.exists(f):
                os.rename(f, os.path.join(bench.tmp,
                                          f"sentinel-{which}-8.{ext}"))
        what, ok, detail = bench.safety[-1]
        bench.safety[-1] = (f"{what} ({which})", ok, detail)
        hand[which] = res
    out["handoff"] = hand
    return out


def wait_key(topo, port, key, want=1, timeout=10):
    topo.wait(lambda: topo.call(port, "EXISTS", key) == want,
              f"{key} on port {port}", timeout)


def failover_trial(bench, kind, i):
    """One failover under a holder whose key is gone from the replica and
    one queued waiter; returns the times from t0 in ns (None: not seen)."""
    d = os.path.join(bench.tmp, f"failover-{kind}-{i}")
    topo = Topology(bench, d)
    try:
        env = dict(bench.env, GODISLOCK_URL=topo.url())
        sig = os.path.join(d, "holder.signalled")
        cslog = os.path.join(d, "waiter.cs")
        errh = open(os.path.join(d, "holder.err"), "ab")
        holder = bench.procs.spawn(
            [bench.bin, "run", "--name", "fo", "--ttl", "30s", "--",
             "python3", "-S", "-c", HOLDER, sig], env=env, stderr=errh)
        errh.close()
        key = "godislock:{fo}"
        wait_key(topo, topo.master_port, key)
        wait_key(topo, topo.replica_port, key)
        errw = open(os.path.join(d, "waiter.err"), "ab")
        waiter = bench.procs.spawn(
            [bench.bin, "run", "--name", "fo", "--connect-timeout", "20s",
             "--", bench.cs, cslog], env=env, stderr=errw)
        errw.close()
        topo.wait(lambda: topo.call(topo.replica_port, "LLEN",
                                    "godislock:{fo}:queue") == 1,
                  "queued waiter on the replica")
        topo.call(topo.replica_port, "CONFIG", "SET", "replica-read-only",
                  "no")
        topo.call(topo.replica_port, "DEL", key)
        seen = {}
        listener = switch_listener(topo.sentinel_ports[1], seen)
        t0 = time.monotonic_ns()
        if kind == "failover":
            topo.call(topo.sentinel_ports[0], "SENTINEL", "FAILOVER", NAME)
        else:
            os.kill(topo.master_proc.pid, signal.SIGKILL)
        for p in (holder, waiter):
            try:
                p.wait(timeout=60)
            except Exception:  # noqa: BLE001 - reported below
                pass
        listener.join(1)
        res = {"switch": seen.get("t"), "rc": (holder.returncode,
                                                waiter.returncode)}
        try:
            with open(sig) as f:
                res["signalled"] = int(f.read())
        except (OSError, ValueError):
            res["signalled"] = None
        try:
            with open(cslog) as f:
                res["started"] = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            res["started"] = None
        return {k: (v - t0 if isinstance(v, int) else v)
                for k, v in res.items()}
    finally:
        topo.stop()


def run(bench):
    d = os.path.join(bench.tmp, "sentinel")
    topo = Topology(bench, d, master_port=bench.port)
    try:
        out = compare(bench, topo)
    finally:
        topo.stop()
    reps = 2 if bench.quick else 5
    for kind in ("failover", "kill"):
        trials = []
        for i in range(reps):
            bench.log(f"sentinel: {kind} trial {i + 1} of {reps}")
            trials.append(failover_trial(bench, kind, i))
        out[kind] = trials
    return out


def fmt(ns):
    return "—" if ns is None else f"{ns / 1e6:.0f}"


def report(bench, res):
    L = []
    a = L.append
    a("## 8. Redis Sentinel")
    a("")
    a("The bench's redis-server as a master with one replica and three "
      "sentinels (down-after-milliseconds "
      f"{DOWN_AFTER_MS}, failover-timeout {FAILOVER_TIMEOUT_MS}); the same "
      "master reached through `redis-sentinel://` (discovery: SENTINEL "
      "get-master-addr-by-name, connect, ROLE; plus, under a holder, a "
      "connection listening for +switch-master) and through `redis://`.")
    a("")
    a("| | through Sentinel | direct | difference |")
    a("|---|---|---|---|")
    u = res["uncontended"]
    a(f"| uncontended `run -- true`, median ms ({u['direct']['runs']} runs "
      f"each, interleaved) | {bench.fmt_ms(u['sentinel']['median'])} | "
      f"{bench.fmt_ms(u['direct']['median'])} | "
      f"{bench.fmt_ms(u['sentinel']['median'] - u['direct']['median'])} |")
    a(f"| uncontended, p90 ms | {bench.fmt_ms(u['sentinel']['p90'])} | "
      f"{bench.fmt_ms(u['direct']['p90'])} | |")
    h = res["handoff"]
    for q in ("p50", "p99"):
        a(f"| handoff K=8, {q} ms | {bench.fmt_ms(h['sentinel'][q])} | "
          f"{bench.fmt_ms(h['direct'][q])} | "
          f"{bench.fmt_ms(h['sentinel'][q] - h['direct'][q])} |")
    a(f"| handoff K=8, sections | {h['sentinel']['sections']} | "
      f"{h['direct']['sections']} | |")
    a("")
    a("Failover under a holder whose key the replica lacks, with one queued "
      "waiter; ms from t0 (`SENTINEL FAILOVER` sent, or the master "
      "SIGKILLed) to: a subscriber of the driver's own seeing "
      "+switch-master; the holder's command getting SIGTERM; the waiter's "
      "command starting. Target: godislock adds no delay of its own after "
      "the announcement (a round trip or two).")
    a("")
    a("| fault | trial | +switch-master | holder signalled | next waiter "
      "started | signalled − switch | started − switch | exit codes "
      "(holder, waiter) |")
    a("|---|---|---|---|---|---|---|---|")
    for kind, label in (("failover", "SENTINEL FAILOVER"),
                        ("kill", "master SIGKILL")):
        for i, t in enumerate(res[kind]):
            sw, sg, st = t["switch"], t["signalled"], t["started"]
            d1 = sg - sw if sg is not None and sw is not None else None
            d2 = st - sw if st is not None and sw is not None else None
            a(f"| {label} | {i + 1} | {fmt(sw)} | {fmt(sg)} | {fmt(st)} | "
              f"{fmt(d1)} | {fmt(d2)} | {t['rc'][0]}, {t['rc'][1]} |")
    a("")
    return L
