"""Drives a server with Debian's python3-etcd3 client library (0.12): KV, transactions, watches,
leases, locks and maintenance calls, as an application would. Usage: etcd3_client.py HOST PORT.
Prints one line per check and exits 1 at the first failure (the message says what differed)."""
import sys
import threading
import time

import etcd3


def check(name, got, want):
    if got != want:
        print("FAIL %s: got %r, want %r" % (name, got, want))
        sys.exit(1)
    print("ok   %s" % name)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    c = etcd3.client(host=host, port=port, timeout=10)

    # KV.
    c.put("/app/a", "1")
    c.put("/app/b", "2")
    c.put("/other", "x")
    value, meta = c.get("/app/a")
    check("get value", value, b"1")
    check("get key", meta.key, b"/app/a")
    check("get version", meta.version, 1)
    check("missing key", c.get("/nope"), (None, None))
    check("prefix", sorted(v for v, _ in c.get_prefix("/app/")), [b"1", b"2"])
    check("range", [m.key for _, m in c.get_range("/app/a", "/app/c")], [b"/app/a", b"/app/b"])
    check("put_if_not_exists existing", c.put_if_not_exists("/app/a", "9"), False)
    check("put_if_not_exists new", c.put_if_not_exists("/app/c", "3"), True)
    check("replace wrong", c.replace("/app/c", "0", "4"), False)
    check("replace right", c.replace("/app/c", "3", "4"), True)
    check("delete", c.delete("/app/c"), True)
    check("delete missing", c.delete("/app/c"), False)

    # Transactions.
    ok, responses = c.transaction(
        compare=[c.transactions.value("/app/a") == "1", c.transactions.version("/app/b") > 0],
        success=[c.transactions.put("/app/a", "10"), c.transactions.get("/app/b")],
        failure=[c.transactions.delete("/app/a")])
    check("txn succeeded", ok, True)
    check("txn get in success", responses[1][0][0], b"2")
    ok, _ = c.transaction(compare=[c.transactions.mod("/app/a") < 2],
                          success=[], failure=[c.transactions.put("/app/f", "failed")])
    check("txn failed", ok, False)
    check("txn failure branch ran", c.get("/app/f")[0], b"failed")

    # Watch: events in order, then cancel.
    events, cancel = c.watch_prefix("/w/")
    got = []

    def collect():
        for ev in events:
            got.append((type(ev).__name__, ev.key, ev.value))
            if len(got) == 3:
                cancel()

    t = threading.Thread(target=collect)
    t.start()
    time.sleep(0.3)
    c.put("/w/1", "a")
    c.put("/w/2", "b")
    c.delete("/w/1")
    t.join(10)
    check("watch events", got, [("PutEvent", b"/w/1", b"a"), ("PutEvent", b"/w/2", b"b"),
                                ("DeleteEvent", b"/w/1", b"")])
    # Watch from a past revision.
    rev = c.get("/w/2")[1].mod_revision
    ev = c.watch_once("/w/2", timeout=5, start_revision=rev)
    check("watch from a revision", (ev.key, ev.value), (b"/w/2", b"b"))

    # Leases: attached keys, refresh, TTL, revoke, expiry.
    lease = c.lease(60)
    c.put("/lease/k1", "v", lease=lease)
    c.put("/lease/k2", "v", lease=lease)
    check("lease granted ttl", lease.granted_ttl, 60)
    check("lease keys", sorted(lease.keys), [b"/lease/k1", b"/lease/k2"])
    check("lease remaining", 55 <= lease.remaining_ttl <= 60, True)
    refreshed = list(lease.refresh())
    check("lease refresh", refreshed[0].TTL, 60)
    lease.revoke()
    check("revoke deletes keys", c.get("/lease/k1"), (None, None))
    short = c.lease(1)
    c.put("/lease/short", "v", lease=short)
    deadline = time.time() + 10
    while c.get("/lease/short")[0] is not None and time.time() < deadline:
        time.sleep(0.1)
    check("expiry deletes keys", c.get("/lease/short"), (None, None))

    # Locks (python-etcd3's own recipe: a txn on /locks/<name> with a lease). Waiting for a held
    # lock is not exercised: python-etcd3 0.12's retry hook does not fit Debian's tenacity and
    # raises TypeError whatever the server.
    lock = c.lock("job", ttl=10)
    check("lock acquired", lock.acquire(timeout=5), True)
    check("is_acquired", lock.is_acquired(), True)
    check("lock key", c.get("/locks/job")[0] is not None, True)
    lock.release()
    check("released", c.get("/locks/job"), (None, None))
    other = c.lock("job", ttl=10)
    check("lock after release", other.acquire(timeout=5), True)
    other.release()

    # Maintenance and cluster.
    status = c.status()
    check("status has a leader", status.leader is not None, True)
    check("status version", status.version.count("."), 2)
    check("members", len(list(c.members)), 1)
    check("no alarms", list(c.list_alarms()), [])
    rev = c.get("/app/a")[1].mod_revision
    c.compact(rev)
    c.defragment()
    check("hash", isinstance(c.hash(), int), True)
    print("all checks passed")


if __name__ == "__main__":
    main()
