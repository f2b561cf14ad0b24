#!/usr/bin/env python3
"""Cairn against the real etcd 3.4.23, side by side, with cairn-bench as the load.

Starts each server with equivalent settings on loopback (a fresh data dir per round), pinned to
core 0 while the load generator runs on core 1 (taskset), and runs every workload against both
in alternation (etcd, cairn, etcd, cairn, ...) for --rounds rounds. For each row it prints the
median and spread of throughput and p99 latency, the servers' peak RSS and CPU seconds per 10k
requests, and the ratio Cairn/etcd; with --write it puts the table, the machine and the commands
into docs/benchmarks.md (between the markers below). It also measures the disk's fdatasync
latency, the floor of a single-client put.

  scripts/bench-vs-etcd.py [--rounds 5] [--rows a,b,c] [--scale 1.0] [--write]

Rows (docs/benchmarks.md says what each is): a b c d e f g h i; g is three members of each,
all pinned to core 0 (RSS and CPU are the three members' sums).
"""
import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build", "release")
CAIRN = os.path.join(BUILD, "server", "cmd", "cairn")
BENCH = os.path.join(BUILD, "bench", "cairn-bench")
ETCD_ROOT = os.environ.get("CAIRN_TEST_ETCD_ROOT",
                           os.path.expanduser("~/.cache/cairn/etcd-3.4.23"))
ETCD = os.path.join(ETCD_ROOT, "usr", "bin", "etcd")
BEGIN = "<!-- bench-vs-etcd: begin -->"
END = "<!-- bench-vs-etcd: end -->"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cpu):
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and os.cpu_count() > 1 else []


class Server:
    def __init__(self, kind, extra=(), name="b", ports=None, initial_cluster=None):
        self.kind = kind
        self.dir = tempfile.mkdtemp(prefix="bench-%s-" % kind)
        self.port, peer = ports or (free_port(), free_port())
        url = "http://127.0.0.1:%d" % self.port
        purl = "http://127.0.0.1:%d" % peer
        binary = ETCD if kind == "etcd" else CAIRN
        self.argv = pinned(0) + [binary, "--name=" + name,
                                 "--data-dir=" + os.path.join(self.dir, "d"),
                                 "--listen-client-urls=" + url, "--advertise-client-urls=" + url,
                                 "--listen-peer-urls=" + purl,
                                 "--initial-advertise-peer-urls=" + purl,
                                 "--initial-cluster=" + (initial_cluster or name + "=" + purl)
                                 ] + list(extra)
        if initial_cluster is None:
            self.start()

    def start(self, wait=True):
        self.log = open(os.path.join(self.dir, "log"), "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=self.log, env=env)
        self.started = time.monotonic()
        if wait:
            self.wait_serving()

    def wait_serving(self):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.serving():
                self.ready_seconds = time.monotonic() - self.started
                return
            time.sleep(0.02)
        raise RuntimeError("%s did not start" % self.kind)

    def serving(self):
        try:
            out = subprocess.run(["curl", "-s", "-m", "1", "http://127.0.0.1:%d/health" % self.port],
                                 capture_output=True, text=True).stdout
            return '"health":"true"' in out
        except OSError:
            return False

    @property
    def endpoint(self):
        return "127.0.0.1:%d" % self.port

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return 0

    def db_size(self):
        total = 0
        for base, _, files in os.walk(os.path.join(self.dir, "d")):
            for n in files:
                if n == "db":  # etcd: member/snap/db; Cairn: member/db
                    total += os.path.getsize(os.path.join(base, n))
        return total

    def restart(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        self.start()
        return self.ready_seconds

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Cluster:
    """Three members of one kind on loopback, every one pinned to core 0 like a single server."""

    def __init__(self, kind, extra=(), size=3):
        names = ["m%d" % i for i in range(size)]
        ports = [(free_port(), free_port()) for _ in names]
        initial = ",".join("%s=http://127.0.0.1:%d" % (n, p[1]) for n, p in zip(names, ports))
        self.members = [Server(kind, list(extra) + ["--initial-cluster-state=new",
                                                     "--initial-cluster-token=bench"],
                               name=n, ports=p, initial_cluster=initial)
                        for n, p in zip(names, ports)]
        for m in self.members:
            m.start(wait=False)
        for m in self.members:
            m.wait_serving()

    @property
    def endpoint(self):
        return ",".join(m.endpoint for m in self.members)

    def cpu_seconds(self):
        return sum(m.cpu_seconds() for m in self.members)

    def peak_rss(self):
        return sum(m.peak_rss() for m in self.members)

    def stop(self):
        for m in self.members:
            m.stop()


def bench(endpoint, args):
    argv = pinned(1) + [BENCH, "--endpoints=" + endpoint, "--json", "--no-progress"] + args
    out = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError("cairn-bench failed: %s\n%s" % (" ".join(argv), out.stderr))
    return json.loads(out.stdout)


def rows(scale):
    n = lambda x: str(max(100, int(x * scale)))
    return {
        "a": ("put 256 B, 1 client, sequential keys",
              ["--total=" + n(5000), "--clients=1", "put", "--val-size=256", "--sequential-keys",
               "--key-space-size=100000"], None),
        "b": ("put 256 B, 1000 clients over 100 connections",
              ["--total=" + n(100000), "--clients=1000", "--conns=100", "put", "--val-size=256",
               "--key-space-size=100000"], None),
        "c": ("linearizable range of one key, 1000 clients",
              ["--total=" + n(100000), "--clients=1000", "--conns=100", "range",
               "--key-space-size=1"], "seed1"),
        "d": ("serializable range of one key, 1000 clients",
              ["--total=" + n(100000), "--clients=1000", "--conns=100", "range",
               "--consistency=s", "--key-space-size=1"], "seed1"),
        "e": ("txn-put, 1000 clients",
              ["--total=" + n(50000), "--clients=1000", "--conns=100", "txn-put",
               "--val-size=256", "--key-space-size=100000"], None),
        "f": ("watch: 10,000 watchers on 100 streams, 10 writers",
              ["--total=" + n(2000), "watch", "--watchers=10000", "--streams=100",
               "--writers=10", "--key-space-size=1000"], None),
        "g": ("3 members, put 256 B, 1000 clients over 100 connections",
              ["--total=" + n(100000), "--clients=1000", "--conns=100", "put", "--val-size=256",
               "--key-space-size=100000"], "cluster3"),
        "i": ("range of 10,000 keys by prefix (kube list) while 10 writers put",
              ["--total=" + n(200), "--clients=4", "range", "--prefix=/registry/pods/",
               "--consistency=l"], "seed10k"),
    }


def seed(kind, endpoint):
    if kind == "seed1":
        bench(endpoint, ["--total=1", "put", "--key-space-size=1", "--key-size=8"])
    elif kind == "seed10k":
        bench(endpoint, ["--total=10000", "--clients=50", "--conns=10", "put",
                         "--sequential-keys", "--key-space-size=10000", "--val-size=256",
                         "--key-prefix=/registry/pods/"])


def measure(kind, row):
    title, args, seeding = row
    quota = ["--quota-backend-bytes=8589934592"]
    s = Cluster(kind, quota) if seeding == "cluster3" else Server(kind, quota)
    try:
        if seeding and seeding != "cluster3":
            seed(seeding, s.endpoint)
        cpu0 = s.cpu_seconds()
        background = None
        if seeding == "seed10k":
            background = subprocess.Popen(
                pinned(1) + [BENCH, "--endpoints=" + s.endpoint, "--json", "--no-progress",
                             "--duration=3600s", "--clients=10", "put", "--val-size=256",
                             "--key-prefix=/registry/other/", "--key-space-size=10000"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        r = bench(s.endpoint, args)
        if background:
            background.kill()
            background.wait()
        cpu = s.cpu_seconds() - cpu0
        requests = r.get("events", r["requests"]) if "watch" in args else r["requests"]
        return {"throughput": r.get("events_per_sec", r["throughput"]), "p99": r["p99"],
                "mean": r["mean"],
                "rss": s.peak_rss(), "cpu_per_10k": cpu / max(1, requests) * 10000,
                "errors": r["errors"]}
    finally:
        s.stop()


def load_row(kind, keys):
    s = Server(kind, ["--quota-backend-bytes=8589934592"])
    try:
        t0 = time.monotonic()
        bench(s.endpoint, ["--total=%d" % keys, "--clients=200", "--conns=20", "put",
                           "--sequential-keys", "--key-space-size=%d" % keys, "--val-size=256"])
        load_s = time.monotonic() - t0
        time.sleep(1)
        rss = s.peak_rss()
        db = s.db_size()
        ready = s.restart()
        return {"throughput": keys / load_s, "rss": rss, "db": db, "restart": ready}
    finally:
        s.stop()


def fsync_probe():
    d = tempfile.mkdtemp(prefix="fsync-", dir=os.path.join(ROOT, "build"))
    path = os.path.join(d, "probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"\0" * 4096)
    os.fsync(fd)
    samples = []
    for _ in range(200):
        os.pwrite(fd, b"x" * 256, 0)
        t = time.perf_counter()
        os.fdatasync(fd)
        samples.append(time.perf_counter() - t)
    os.close(fd)
    shutil.rmtree(d, ignore_errors=True)
    return statistics.median(samples)


def spread(values):
    return (max(values) - min(values)) / statistics.median(values) if values and statistics.median(values) else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rows", default="a,b,c,d,e,f,g,h,i")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--load-keys", type=int, default=1000000)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    for p in (CAIRN, BENCH, ETCD):
        if not os.path.exists(p):
            sys.exit("missing %s: build first (cmake --build --preset release) and run "
                     "scripts/install-deps.sh" % p)
    table = []
    fsync = fsync_probe()
    for key in a.rows.split(","):
        if key == "h":
            res = {"etcd": [], "cairn": []}
            for _ in range(max(1, min(a.rounds, 3))):
                for kind in ("etcd", "cairn"):
                    res[kind].append(load_row(kind, a.load_keys))
            med = {k: {f: statistics.median(x[f] for x in v) for f in v[0]} for k, v in res.items()}
            table.append(("h", "load %d keys of 256 B, then RSS, db size, restart" % a.load_keys,
                          med, None))
            print_row(table[-1])
            continue
        row = rows(a.scale)[key]
        res = {"etcd": [], "cairn": []}
        for _ in range(a.rounds):
            for kind in ("etcd", "cairn"):
                res[kind].append(measure(kind, row))
        med = {k: {f: statistics.median(x[f] for x in v) for f in ("throughput", "p99", "mean",
                                                                    "rss", "cpu_per_10k")}
               for k, v in res.items()}
        spr = {k: spread([x["throughput"] for x in v]) for k, v in res.items()}
        errs = {k: [x["errors"] for x in v if x["errors"]] for k, v in res.items()}
        table.append((key, row[0], med, (spr, errs)))
        print_row(table[-1])
    text = render(table, fsync, a)
    print(text)
    if a.write:
        path = os.path.join(ROOT, "docs", "benchmarks.md")
        doc = open(path).read()
        block = BEGIN + "\n" + text + "\n" + END
        if BEGIN in doc:
            doc = doc[:doc.index(BEGIN)] + block + doc[doc.index(END) + len(END):]
        else:
            doc += "\n" + block + "\n"
        open(path, "w").write(doc)


def print_row(r):
    print("row %s done: %s" % (r[0], json.dumps(r[2])), file=sys.stderr)


def render(table, fsync, a):
    lines = ["### Side by side with etcd 3.4.23 (`scripts/bench-vs-etcd.py`)", "",
             "Run %s on %s (%d cores, %s); each server pinned to core 0, cairn-bench to core 1; "
             "%d rounds alternating etcd and Cairn, medians (spread = (max-min)/median of "
             "throughput). Command: `scripts/bench-vs-etcd.py --rounds %d --rows %s --scale %g "
             "--write`. The disk's fdatasync (256 B rewrite) takes %.3f ms: the floor of row (a) is "
             "one fdatasync plus one loopback round trip." % (
                 time.strftime("%Y-%m-%d"), platform.node() or "this machine", os.cpu_count(),
                 platform.platform(), a.rounds, a.rounds, a.rows, a.scale, fsync * 1000), "",
             "| row | workload | etcd | Cairn | Cairn/etcd |", "|---|---|---|---|---|"]
    for key, title, med, extra in table:
        e, c = med["etcd"], med["cairn"]
        if key == "h":
            lines.append("| h | %s | %.0f keys/s, RSS %.0f MB, db %.0f MB, restart %.2f s | "
                         "%.0f keys/s, RSS %.0f MB, db %.0f MB, restart %.2f s | RSS %.2f, db %.2f, "
                         "restart %.2f |" % (
                             title, e["throughput"], e["rss"] / 1e6, e["db"] / 1e6, e["restart"],
                             c["throughput"], c["rss"] / 1e6, c["db"] / 1e6, c["restart"],
                             c["rss"] / e["rss"], c["db"] / max(1, e["db"]),
                             c["restart"] / e["restart"]))
            continue
        spr, errs = extra
        cell = lambda m, s: "%.0f/s (±%.0f%%), p99 %.2f ms, RSS %.0f MB, %.2f CPU-s/10k" % (
            m["throughput"], s * 50, m["p99"] * 1000, m["rss"] / 1e6, m["cpu_per_10k"])
        lines.append("| %s | %s | %s | %s | throughput %.2f, p99 %.2f, RSS %.2f, CPU %.2f |" % (
            key, title, cell(e, spr["etcd"]), cell(c, spr["cairn"]),
            c["throughput"] / e["throughput"], c["p99"] / e["p99"], c["rss"] / e["rss"],
            c["cpu_per_10k"] / e["cpu_per_10k"]))
        if key == "a":
            lines.append("|  | row (a) mean latency (target: Cairn at most 2/3 of etcd's), and "
                         "how far from the floor | %.3f ms | %.3f ms = %.1f× the fdatasync | "
                         "mean %.2f |" % (e["mean"] * 1000, c["mean"] * 1000, c["mean"] / fsync,
                                          c["mean"] / e["mean"]))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
