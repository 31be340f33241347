# SPDX-License-Identifier: MIT
"""bench/run --only cluster: lock throughput over many names on a Redis
Cluster of 1, 2 and 3 masters (no replicas), made on loopback for the run.

Each of W workers runs `godislock run --name NAME -- true` in a loop for a
fixed window, each time on the next of many names (spread over every
slot range), so that the locks never contend: the aggregate rate is what
the client machine and the masters can do together. Each master's CPU time
(utime + stime from /proc) over the window, divided by the cycles, says
what one lock cycle costs the server; a master that is not the limit shows
spare CPU. Every node is killed by PID at the end."""

import datetime
import os
import shutil
import signal
import subprocess
import tempfile
import time

from ports import free_port

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

    def __init__(self, tmp, masters, cluster=True):
        self.procs = []
        self.ports = []
        self.cluster = cluster
        try:
            if cluster:
                self.start(tmp, masters)
            else:
                self.start_node(tmp, "single")
        except BaseException:
            self.stop()
            raise

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


def run(binary, quick, out_dir):
    if shutil.which("redis-server") is None or shutil.which(
            "redis-cli") is None:
        raise SystemExit("bench/run: redis-server and redis-cli are needed")
    window = 3.0 if quick else 10.0
    workers = 2 * os.cpu_count()
    names = 512
    started = datetime.datetime.now(datetime.timezone.utc)
    tmp = tempfile.mkdtemp(prefix="godislock-bench-cluster.")
    rows = []
    contended = []
    try:
        for masters in (1, 2, 3):
            c = Cluster(tmp, masters)
            try:
                measure(binary, c.url(), workers, 0.5, names)  # warm-up
                before = [cpu_ticks(p.pid) for p in c.procs]
                t0 = time.monotonic()
                cycles, failed = measure(binary, c.url(), workers, window,
                                         names)
                wall = time.monotonic() - t0
                after = [cpu_ticks(p.pid) for p in c.procs]
            finally:
                c.stop()
            hz = os.sysconf("SC_CLK_TCK")
            cpu = [(a - b) / hz for a, b in zip(after, before)]
            rows.append((masters, cycles, failed, wall, cpu))
        # Every worker on one name: each cycle is a hand-over.
        for label, masters, cluster in (("single Redis", 1, False),
                                        ("cluster, 3 masters", 3, True)):
            c = Cluster(tmp, masters, cluster)
            try:
                measure(binary, c.url(), workers, 0.5, 1)  # warm-up
                t0 = time.monotonic()
                cycles, failed = measure(binary, c.url(), workers, window, 1)
                wall = time.monotonic() - t0
            finally:
                c.stop()
            contended.append((label, cycles, failed, wall))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    lines = [
        f"# godislock cluster benchmark — "
        f"{started.strftime('%Y-%m-%d %H:%M:%S UTC')} "
        f"({'quick' if quick else 'full'} run)",
        "",
        f"{os.cpu_count()} CPUs; load average after the run {load}; "
        f"`{binary}`. {workers} workers each loop `godislock run --name "
        f"bK -- true` over {names} names (no contention) for "
        f"{window:.0f} s per row; masters without replicas on loopback.",
        "",
        "| masters | lock cycles/s (aggregate) | failed workers | "
        "Redis CPU per cycle, all masters (µs) | Redis CPU, each master "
        "(% of one core) |",
        "|---|---|---|---|---|",
    ]
    for masters, cycles, failed, wall, cpu in rows:
        per = f"{sum(cpu) / max(cycles, 1) * 1e6:.0f}"
        busy = ", ".join(f"{c / wall * 100:.0f}" for c in cpu)
        lines.append(f"| {masters} | {cycles / wall:.0f} | {failed} | "
                     f"{per} | {busy} |")
    lines += [
        "",
        f"One name, the same {workers} workers contending (every cycle "
        "hands the lock to a queued waiter):",
        "",
        "| server | lock cycles/s | failed workers | mean time per cycle "
        "(ms) |",
        "|---|---|---|---|",
    ]
    for label, cycles, failed, wall in contended:
        lines.append(f"| {label} | {cycles / wall:.0f} | {failed} | "
                     f"{wall / max(cycles, 1) * 1000:.2f} |")
    lines += [
        "",
        "Each cycle starts a process, connects, learns the slot map, "
        "acquires, runs `true` and releases. When the masters' CPU stays "
        "well below one core each, the client machine (process start-up "
        "and the workers themselves, on the same CPUs) is the limit, not "
        "Redis. The first master also answers every process's `CLUSTER "
        "SHARDS` (the slot map is learnt once per process).",
    ]
    text = "\n".join(lines) + "\n"
    os.makedirs(out_dir, exist_ok=True)
    name = started.strftime("%Y%m%dT%H%M%SZ") + "-only-cluster.md"
    with open(os.path.join(out_dir, name), "w") as f:
        f.write(text)
    print(text, end="")
    return 0
