# SPDX-License-Identifier: MIT
"""bench/run --only cluster: godislock on a Redis Cluster made on loopback
for the run (bench/run's `cluster` phase).

1. Throughput: each of W workers runs `godislock run --name NAME -- true`
   in a loop for a fixed window, each time on the next of many names
   (spread over every slot range), so that the locks never contend: the
   aggregate rate is what the client machine and the masters can do
   together, on 1, 2 and 3 masters (no replicas). Each master's CPU time
   (utime + stime from /proc) over the window, divided by the cycles, says
   what one lock cycle costs the server; the busiest master's share says
   what rate would saturate it.
2. Handoff: bench/run's handoff runs (K queued contenders, each section a
   `cs`), on the bench's single Redis and on a 3-master cluster, in
   interleaved rounds; with each server's CPU time per handoff.
3. Faults: on 3 masters + 3 replicas, a holder and one queued waiter, then
   the lock's slot resharded to another master, or its master failed over
   (CLUSTER FAILOVER on its replica): how long the fault took, when the
   waiter was subscribed again where the slot now is, and how long the
   hand-over took after the holder's release.

Every node is killed by PID at the end."""

import os
import shutil
import signal
import subprocess
import tempfile
import time

from ports import free_port
from sentinel_bench import fmt

SLOTS = 16384


def cli(port, *args):
    r = subprocess.run(["redis-cli", "-p", str(port), *map(str, args)],
                       capture_output=True, text=True, timeout=10)
    return r.stdout.strip()


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


class Cluster:
    """`masters` redis-server --cluster-enabled nodes, each serving an equal
    range of slots (CLUSTER ADDSLOTSRANGE, joined by CLUSTER MEET:
    redis-cli --cluster create wants at least 3 masters)."""

    def __init__(self, tmp, masters, cluster=True, replicas=0):
        self.procs = []    # every process started, for stop()
        self.servers = []  # the nodes that came up, as self.ports
        self.ports = []
        self.cluster = cluster
        try:
            if not cluster:
                self.start_node(tmp, "single")
            elif replicas:
                self.create(tmp, masters, replicas)
            else:
                self.start(tmp, masters)
        except BaseException:
            self.stop()
            raise

    def create(self, tmp, masters, replicas):
        """With replicas: redis-cli --cluster create, as users do."""
        for i in range(masters * (1 + replicas)):
            self.start_node(tmp, f"r{masters}-{i}")
        r = subprocess.run(
            ["redis-cli", "--cluster", "create",
             *(f"127.0.0.1:{p}" for p in self.ports),
             "--cluster-replicas", str(replicas), "--cluster-yes"],
            capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create: {r.stdout}")
        self.wait(self.converged)
        self.wait(lambda: all(self.synced(n[0]) for n in self.nodes()
                              if "slave" in n[2]))

    @staticmethod
    def synced(replica):
        """The replica's link to its master is up (a manual failover needs
        it)."""
        return "master_link_status:up" in cli(replica, "INFO", "replication")

    def nodes(self, port=None):
        """CLUSTER NODES as seen by one node: [(port, id, flags, master id,
        slot ranges)]."""
        out = []
        for line in cli(port or self.ports[0], "CLUSTER",
                        "NODES").splitlines():
            f = line.split()
            if len(f) < 8:
                continue
            ranges = []
            for r in f[8:]:
                if r.startswith("["):
                    continue  # a slot being migrated or imported
                a, _, b = r.partition("-")
                ranges.append((int(a), int(b or a)))
            out.append((int(f[1].split("@")[0].rsplit(":", 1)[1]), f[0],
                        f[2].split(","), f[3], ranges))
        return out

    def converged(self):
        """Every node ok, and agreeing on who masters each slot range."""
        views = set()
        for p in self.ports:
            if "cluster_state:ok" not in cli(p, "CLUSTER", "INFO"):
                return False
            views.add(tuple(sorted(
                (n[0], tuple(n[4])) for n in self.nodes(p)
                if "master" in n[2] and "fail" not in n[2] and n[4])))
        return len(views) == 1

    def master_of(self, key):
        slot = int(cli(self.ports[0], "CLUSTER", "KEYSLOT", key))
        for port, _, flags, _, ranges in self.nodes():
            if "master" in flags and any(a <= slot <= b for a, b in ranges):
                return port, slot
        raise RuntimeError(f"no master serves {key}")

    def replica_of(self, master_port):
        ids = {n[1]: n[0] for n in self.nodes()}
        mid = next(i for i, p in ids.items() if p == master_port)
        return next(n[0] for n in self.nodes() if n[3] == mid)

    def move_slot(self, slot, src, dst):
        """As redis-cli --cluster reshard does: IMPORTING, MIGRATING, the
        keys by MIGRATE, then SETSLOT NODE on the target, the source and
        every other master."""
        dst_id = cli(dst, "CLUSTER", "MYID")
        cli(dst, "CLUSTER", "SETSLOT", slot, "IMPORTING",
            cli(src, "CLUSTER", "MYID"))
        cli(src, "CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        while True:
            keys = cli(src, "CLUSTER", "GETKEYSINSLOT", slot, 100).split()
            if not keys:
                break
            cli(src, "MIGRATE", "127.0.0.1", dst, "", 0, 5000, "KEYS", *keys)
        masters = [n[0] for n in self.nodes() if "master" in n[2]]
        for p in [dst, src] + [m for m in masters if m not in (dst, src)]:
            cli(p, "CLUSTER", "SETSLOT", slot, "NODE", dst_id)

    def start(self, tmp, masters):
        for i in range(masters):
            self.start_node(tmp, f"c{masters}-{i}")
        per = SLOTS // masters
        for i, port in enumerate(self.ports):
            last = SLOTS - 1 if i == masters - 1 else (i + 1) * per - 1
            cli(port, "CLUSTER", "ADDSLOTSRANGE", i * per, last)
            if i > 0:
                cli(port, "CLUSTER", "MEET", "127.0.0.1", self.ports[0])
        self.wait(lambda: all(
            "cluster_state:ok" in cli(p, "CLUSTER", "INFO")
            for p in self.ports))

    def start_node(self, tmp, name):
        for _ in range(5):
            port = free_port()
            d = os.path.join(tmp, f"{name}-{port}")
            os.mkdir(d)
            argv = ["redis-server", "--port", str(port), "--bind",
                    "127.0.0.1", "--save", "", "--appendonly", "no", "--dir",
                    d, "--maxclients", "2000", "--loglevel", "warning",
                    "--unixsocket", f"{d}/s"]
            if self.cluster:
                argv += ["--cluster-enabled", "yes", "--cluster-config-file",
                         f"{d}/nodes.conf"]
            p = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            self.procs.append(p)
            # Asked over its own socket: never another server on the port.
            end = time.monotonic() + 10
            while p.poll() is None and time.monotonic() < end:
                r = subprocess.run(["redis-cli", "-s", f"{d}/s", "PING"],
                                   capture_output=True, text=True)
                if r.stdout.strip() == "PONG":
                    self.ports.append(port)
                    self.servers.append(p)
                    return
                time.sleep(0.05)
            p.send_signal(signal.SIGKILL)  # port taken, or too slow
            p.wait()
        raise RuntimeError("could not start a cluster node")

    @staticmethod
    def wait(pred, timeout=30):
        end = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > end:
                raise RuntimeError("the bench cluster did not come up")
            time.sleep(0.05)

    def url(self):
        if not self.cluster:
            return f"redis://127.0.0.1:{self.ports[0]}"
        return "redis-cluster://" + ",".join(
            f"127.0.0.1:{p}" for p in self.ports)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)  # by PID
                p.wait()


def measure(binary, url, workers, window, names):
    """Runs the workers for `window` seconds; returns the cycles done and
    the failures."""
    env = dict(os.environ, GODISLOCK_URL=url)
    for k in ("GODISLOCK_PASSWORD", "REDISCLI_AUTH"):
        env.pop(k, None)
    # $EPOCHREALTIME (bash 5): no `date` process per cycle.
    script = ('i=$1; n=0; end=$(( ${EPOCHREALTIME/./} + $2 )); '
              'while (( ${EPOCHREALTIME/./} < end )); do '
              '"$3" run --name "b$(( (i + n * $4) % $5 ))" -- true || exit 1; '
              'n=$((n + 1)); done; echo "$n"')
    procs = [subprocess.Popen(
        ["bash", "-c", script, "worker", str(w), str(int(window * 1e6)),
         binary, str(workers), str(names)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True) for w in range(workers)]
    cycles, failed = 0, 0
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            failed += 1
        else:
            cycles += int(out.strip() or 0)
    return cycles, failed


def throughput(bench, tmp, window, workers, names):
    rows = []
    for masters in (1, 2, 3):
        bench.log(f"cluster: throughput on {masters} master(s)")
        c = Cluster(tmp, masters)
        try:
            measure(bench.bin, c.url(), workers, 0.5, names)  # warm-up
            before = [cpu_ticks(p.pid) for p in c.servers]
            t0 = time.monotonic()
            cycles, failed = measure(bench.bin, c.url(), workers, window,
                                     names)
            wall = time.monotonic() - t0
            after = [cpu_ticks(p.pid) for p in c.servers]
        finally:
            c.stop()
        hz = os.sysconf("SC_CLK_TCK")
        cpu = [(a - b) / hz for a, b in zip(after, before)]
        rows.append({"masters": masters, "cycles": cycles, "failed": failed,
                     "wall": wall, "cpu": cpu})
    return rows


def handoff(bench, tmp, rounds):
    """bench.handoff_run at K=8 on the bench's Redis ("godislock") and on a
    3-master cluster ("godislock-cluster"), alternating, `rounds` times."""
    c = Cluster(tmp, 3)
    hz = os.sysconf("SC_CLK_TCK")
    out = {t: {"hand": [], "sections": 0, "cpu": None, "runs": 0}
           for t in ("godislock", "godislock-cluster")}
    cpu = {t: [] for t in out}
    try:
        bench.cluster_url = c.url()
        bench.cluster_waiting = lambda name: waiting_on(c, name)
        for r in range(rounds):
            for tool in out:
                cluster = tool.endswith("cluster")
                procs = c.servers if cluster else [bench.redis_proc]
                # A contender of the run before, stopped while holding,
                # left the lock held for its TTL.
                subprocess.run(
                    [bench.bin, "release", "--force", "hand8"],
                    env=dict(bench.env, GODISLOCK_URL=c.url() if cluster
                             else bench.env["GODISLOCK_URL"]),
                    capture_output=True, timeout=30)
                before = [cpu_ticks(p.pid) for p in procs]
                res = bench.handoff_run(tool, 8)
                after = [cpu_ticks(p.pid) for p in procs]
                for ext in ("cs", "launch", "counter", "err", "cdf",
                            "holder.pid", "holder.err"):
                    f = os.path.join(bench.tmp, f"h-{tool}-8.{ext}")
                    if os.path.exists(f):
                        os.rename(f, os.path.join(
                            bench.tmp, f"cluster-{tool}-8-{r}.{ext}"))
                o = out[tool]
                o["hand"] += res["hand"]
                o["sections"] += res["sections"]
                o["runs"] += 1
                cpu[tool].append(([(a - b) / hz for a, b in
                                   zip(after, before)], len(res["hand"])))
    finally:
        c.stop()
    for tool, o in out.items():
        hands = sum(n for _, n in cpu[tool]) or 1
        per_node = [sum(run[0][i] for run in cpu[tool])
                    for i in range(len(cpu[tool][0][0]))]
        o["cpu_us"] = [s / hands * 1e6 for s in per_node]
        o["p50"] = bench.pct(o["hand"], 50)
        o["p99"] = bench.pct(o["hand"], 99)
    return out


def waiting_on(c, name):
    """Queued godislock waiters of NAME: their wake-up channels (and the
    racers' release channel) on the master of the lock's slot."""
    port, _ = c.master_of(f"godislock:{{{name}}}")
    chans = cli(port, "PUBSUB", "SHARDCHANNELS", f"godislock:{{{name}}}:*")
    queued = [ch for ch in chans.split() if ":wake:" in ch]
    racers = cli(port, "PUBSUB", "SHARDNUMSUB",
                 f"godislock:{{{name}}}:released").split()
    return len(queued) + (int(racers[-1]) if len(racers) == 2 else 0)


def wait_ns(pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return time.monotonic_ns()
        time.sleep(0.002)
    return None


def fault_trial(bench, c, kind, i):
    """A holder and one queued waiter on one lock; then `kind` (reshard or
    failover) of its slot; then the holder's release. Times in ns from the
    fault's start (t0)."""
    d = os.path.join(bench.tmp, f"cluster-{kind}-{i}")
    os.makedirs(d, exist_ok=True)
    name = f"{kind}{i}"
    env = dict(bench.env, GODISLOCK_URL=c.url())
    bench.cluster_url = c.url()
    holder, sleep_pid = bench.start_holder("godislock-cluster", name,
                                           f"cluster-{kind}-{i}")
    cslog = os.path.join(d, "waiter.cs")
    errw = open(os.path.join(d, "waiter.err"), "ab")
    waiter = bench.procs.spawn(
        [bench.bin, "run", "--name", name, "--connect-timeout", "20s", "--",
         bench.cs, cslog], env=env, stderr=errw)
    errw.close()
    if wait_ns(lambda: waiting_on(c, name) == 1, 30) is None:
        raise bench.error_class(f"cluster {kind}: the waiter never queued")
    src, slot = c.master_of(f"godislock:{{{name}}}")
    t0 = time.monotonic_ns()
    if kind == "reshard":
        dst = next(n[0] for n in c.nodes()
                   if "master" in n[2] and n[0] != src and n[4])
        c.move_slot(slot, src, dst)
        done = time.monotonic_ns()
    else:
        dst = c.replica_of(src)
        c.wait(lambda: c.synced(dst))
        t0 = time.monotonic_ns()
        reply = cli(dst, "CLUSTER", "FAILOVER")
        if reply != "OK":
            raise bench.error_class(f"CLUSTER FAILOVER: {reply}")
        done = wait_ns(lambda: cli(dst, "ROLE").startswith("master"), 30)
    c.wait(c.converged)
    settled = time.monotonic_ns()
    resub = wait_ns(lambda: c.master_of(f"godislock:{{{name}}}")[0] == dst
                    and waiting_on(c, name) == 1, 30)
    # The holder's next refresh (a third of its TTL) follows the slot too:
    # it must still hold when it lets go.
    time.sleep(0.2)
    released = time.monotonic_ns()
    bench.release_holder(holder, sleep_pid)
    try:
        waiter.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pass
    started = None
    try:
        with open(cslog) as f:
            started = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    rel = lambda t: None if t is None else t - t0  # noqa: E731
    return {"fault": rel(done), "settled": rel(settled), "resub": rel(resub),
            "released": rel(released), "started": rel(started),
            "rc": (holder.returncode, waiter.returncode)}


def faults(bench, tmp, reps):
    bench.log("cluster: 3 masters + 3 replicas for the fault trials")
    c = Cluster(tmp, 3, replicas=1)
    out = {"reshard": [], "failover": []}
    try:
        for i in range(reps):
            for kind in out:
                bench.log(f"cluster: {kind} trial {i + 1} of {reps}")
                out[kind].append(fault_trial(bench, c, kind, i))
    finally:
        c.stop()
    return out


def run(bench):
    """The phase: what bench/run's report shows (see report)."""
    if shutil.which("redis-server") is None or shutil.which(
            "redis-cli") is None:
        raise SystemExit("bench/run: redis-server and redis-cli are needed")
    tmp = tempfile.mkdtemp(prefix="godislock-bench-cluster.")
    window = 3.0 if bench.quick else 10.0
    workers = 2 * os.cpu_count()
    names = 512
    try:
        res = {"window": window, "workers": workers, "names": names}
        res["throughput"] = throughput(bench, tmp, window, workers, names)
        res["handoff"] = handoff(bench, tmp, 1 if bench.quick else 3)
        res["faults"] = faults(bench, tmp, 2 if bench.quick else 5)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def report(bench, res):
    L = []
    a = L.append
    a("## 9. Redis Cluster")
    a("")
    a(f"Throughput: {res['workers']} workers each loop `godislock run "
      f"--name bK -- true` over {res['names']} names (no contention) for "
      f"{res['window']:.0f} s per row; masters without replicas on "
      "loopback. *Saturating rate*: the rate at which the busiest master "
      "would use a whole core (cycles / its CPU seconds).")
    a("")
    a("| masters | lock cycles/s (aggregate) | failed workers | Redis CPU "
      "per cycle, all masters (µs) | Redis CPU, each master (% of one "
      "core) | saturating rate (cycles/s) |")
    a("|---|---|---|---|---|---|")
    for r in res["throughput"]:
        cyc, wall, cpu = r["cycles"], r["wall"], r["cpu"]
        per = sum(cpu) / max(cyc, 1) * 1e6
        busy = ", ".join(f"{x / wall * 100:.0f}" for x in cpu)
        sat = cyc / max(cpu) if max(cpu) > 0 else float("nan")
        a(f"| {r['masters']} | {cyc / wall:.0f} | {r['failed']} | "
          f"{per:.0f} | {busy} | {sat:.0f} |")
    a("")
    a("Each cycle starts a process, connects, learns the slot map "
      "(`CLUSTER SHARDS`, from the first seed, once per process), acquires, "
      "runs `true` and releases. While every master stays well below one "
      "core, the client machine (process start-up and the workers, on the "
      "same CPUs) is the limit, not Redis.")
    a("")
    h = res["handoff"]
    s, c = h["godislock"], h["godislock-cluster"]
    ratio = lambda x, y: x / y if y else float("nan")  # noqa: E731
    a(f"Handoff at K=8 (bench/run's handoff runs, {s['runs']} interleaved "
      "round(s) each): the bench's single Redis against a 3-master cluster "
      "(the lock on one of them). Target: cluster p50 within 1.1× of the "
      "single server.")
    a("")
    a("| server | handoffs | p50 ms | p99 ms | p50 vs single | Redis CPU "
      "per handoff, each node (µs; the whole run's, process start-ups "
      "included) |")
    a("|---|---|---|---|---|---|")
    for label, o in (("single Redis", s), ("cluster, 3 masters", c)):
        cpu = ", ".join(f"{x:.0f}" for x in o["cpu_us"])
        a(f"| {label} | {len(o['hand'])} | {bench.fmt_ms(o['p50'])} | "
          f"{bench.fmt_ms(o['p99'])} | {ratio(o['p50'], s['p50']):.2f}× | "
          f"{cpu} |")
    a("")
    a("Faults on 3 masters + 3 replicas, a holder (`--ttl 30s`) and one "
      "queued waiter: the lock's slot resharded to another master (as "
      "`redis-cli --cluster reshard` does), or `CLUSTER FAILOVER` on its "
      "master's replica. ms from the fault's start to: the fault done (the "
      "last SETSLOT NODE; the replica's ROLE master); every node agreeing; "
      "the waiter subscribed again where the slot now is; then, from the "
      "holder's release, the waiter's command starting. The holder's "
      "exit code is its command's: 143, its `sleep` ended by the driver's "
      "SIGTERM (the release); 79 would be a lost lock.")
    a("")
    a("| fault | trial | fault done | nodes agree | waiter subscribed again "
      "| hand-over after the release (ms) | exit codes (holder, waiter) |")
    a("|---|---|---|---|---|---|---|")
    for kind, label in (("reshard", "reshard"),
                        ("failover", "CLUSTER FAILOVER")):
        for i, t in enumerate(res["faults"][kind]):
            hand = (f"{(t['started'] - t['released']) / 1e6:.1f}"
                    if t["started"] is not None else "—")
            a(f"| {label} | {i + 1} | {fmt(t['fault'])} | "
              f"{fmt(t['settled'])} | {fmt(t['resub'])} | {hand} | "
              f"{t['rc'][0]}, {t['rc'][1]} |")
    a("")
    return L
