# Interop scenario for the kazoo (Python) client.
#
# Usage: /usr/bin/python3 kazoo_transcript.py HOST:PORT
#
# Runs a fixed sequence of ZooKeeper operations against a fresh server and
# prints a *normalised* transcript on stdout: one line per step, without
# timestamps, zxids or session ids (only relations between them, e.g.
# "mzxid>czxid=True"), so that the transcript of Apache ZooKeeper and the one
# of zookeeper-rs can be compared line by line. Expected failures are printed
# as the kazoo exception class name (NoNodeError, NoAuthError, ...).
#
# The script must be deterministic against a fresh server: it never depends
# on timing, except for bounded waits for watch events (printed as TIMEOUT
# when an expected event does not come).
#
# The last line is "DONE"; an unexpected Python exception ends the script
# early with a traceback on stderr and a non-zero exit status.

import hashlib
import logging
import queue
import sys
import threading

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.protocol.states import Callback
from kazoo.security import (ACL, CREATOR_ALL_ACL, OPEN_ACL_UNSAFE, Id,
                            Permissions, make_acl, make_digest_acl)

CONNECT = sys.argv[1]
EVENT_TIMEOUT = 10.0

logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                    format="kazoo-log %(levelname)s %(name)s: %(message)s")

_clients = []


def out(line):
    print(line, flush=True)


def client(auth=None):
    zk = KazooClient(hosts=CONNECT, timeout=15.0, auth_data=auth,
                     connection_retry={"max_tries": 20, "delay": 0.2,
                                       "max_delay": 1.0})
    zk.start(timeout=30)
    _clients.append(zk)
    return zk


def close(zk):
    zk.stop()
    zk.close()


def fmt_stat(st):
    if st is None:
        return "None"
    return ("Stat(version=%d cversion=%d aversion=%d dataLength=%d "
            "numChildren=%d ephemeral=%s)" % (
                st.version, st.cversion, st.aversion, st.dataLength,
                st.numChildren, st.ephemeralOwner != 0))


def fmt_acl(acl):
    return "%s:%s:%d" % (acl.id.scheme, acl.id.id, acl.perms)


def fmt(v):
    """Normalised text of a kazoo result."""
    if v is None:
        return "None"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        return repr(bytes(v))
    if isinstance(v, str):
        return repr(v)
    if type(v).__name__ == "ZnodeStat":
        return fmt_stat(v)
    if isinstance(v, ACL):
        return fmt_acl(v)
    if isinstance(v, Exception):
        return type(v).__name__
    if isinstance(v, tuple):
        return "(" + ", ".join(fmt(x) for x in v) + ")"
    if isinstance(v, list):
        return "[" + ", ".join(fmt(x) for x in v) + "]"
    return repr(v)


def step(label, fn):
    """Run fn, print 'label -> result' or 'label -> ExceptionName'."""
    try:
        res = fn()
    except KazooException as e:
        out("%s -> %s" % (label, type(e).__name__))
        return None
    out("%s -> %s" % (label, fmt(res)))
    return res


class Watches:
    """Collects watch events of one client, in the order kazoo delivers them."""

    def __init__(self, zk):
        self.zk = zk
        self.q = queue.Queue()

    def cb(self, tag):
        def f(event):
            self.q.put("%s %s %s" % (tag, event.type, event.path))
        return f

    def barrier(self):
        """Return once every event this client has received so far has been
        handed to its callback: a sync round trip (the server sends pending
        notifications of this session before the reply), then a marker
        callback queued behind them on kazoo's single callback thread."""
        self.zk.sync("/")
        done = threading.Event()
        self.zk.handler.dispatch_callback(Callback("watch", done.set, ()))
        if not done.wait(EVENT_TIMEOUT):
            out("barrier TIMEOUT")

    def expect(self, label, n=1):
        """Print the next n events (sorted, since several watches fired by
        one change may be delivered in either order)."""
        got = []
        for _ in range(n):
            try:
                got.append(self.q.get(timeout=EVENT_TIMEOUT))
            except queue.Empty:
                got.append("TIMEOUT")
        for e in sorted(got):
            out("%s: event %s" % (label, e))

    def expect_none(self, label):
        self.barrier()
        extra = []
        while not self.q.empty():
            extra.append(self.q.get())
        out("%s: no further event -> %s" % (label, not extra))
        for e in extra:
            out("%s: unexpected event %s" % (label, e))


def section(name):
    out("== %s" % name)


def main():
    zk1 = client()
    zk2 = client()

    # ------------------------------------------------------------ basics --
    section("basics")
    step("children /", lambda: sorted(zk1.get_children("/")))
    step("children /zookeeper", lambda: sorted(zk1.get_children("/zookeeper")))
    step("create /kz", lambda: zk1.create("/kz", b"root"))
    step("create /kz/a", lambda: zk1.create("/kz/a", b"v1"))
    step("get /kz/a", lambda: zk1.get("/kz/a"))
    step("exists /kz/a", lambda: zk1.exists("/kz/a"))
    step("exists /kz/none", lambda: zk1.exists("/kz/none"))
    st0 = zk1.exists("/kz/a")
    step("set /kz/a v2", lambda: zk1.set("/kz/a", b"v2"))
    st1 = zk1.exists("/kz/a")
    out("stat after set: mzxid>czxid=%s czxid same=%s mtime>=ctime=%s" % (
        st1.mzxid > st1.czxid, st1.czxid == st0.czxid, st1.mtime >= st1.ctime))
    step("set /kz/a v3 version=0", lambda: zk1.set("/kz/a", b"v3", version=0))
    step("set /kz/a v3 version=1", lambda: zk1.set("/kz/a", b"v3", version=1))
    step("get /kz/a (other client)", lambda: zk2.get("/kz/a"))
    step("create /kz/a again", lambda: zk1.create("/kz/a", b"x"))
    step("create /kz/missing/child", lambda: zk1.create("/kz/missing/child"))
    step("create /kz/a/b", lambda: zk1.create("/kz/a/b", b""))
    step("get /kz/a/b (empty data)", lambda: zk1.get("/kz/a/b"))
    step("create /kz/deep/x/y makepath",
         lambda: zk1.create("/kz/deep/x/y", b"y", makepath=True))
    step("ensure_path /kz/deep/x", lambda: zk1.ensure_path("/kz/deep/x"))
    step("children /kz", lambda: sorted(zk1.get_children("/kz")))
    step("exists /kz", lambda: zk1.exists("/kz"))
    p0 = zk1.exists("/kz")
    step("delete /kz/a (not empty)", lambda: zk1.delete("/kz/a"))
    step("delete /kz/a/b version=3", lambda: zk1.delete("/kz/a/b", version=3))
    step("delete /kz/a/b", lambda: zk1.delete("/kz/a/b"))
    step("delete /kz/a version=2", lambda: zk1.delete("/kz/a", version=2))
    p1 = zk1.exists("/kz")
    out("parent after delete: cversion+1=%s pzxid>before=%s" % (
        p1.cversion == p0.cversion + 1, p1.pzxid > p0.pzxid))
    step("get /kz/a (deleted)", lambda: zk1.get("/kz/a"))
    step("delete /kz/a (deleted)", lambda: zk1.delete("/kz/a"))
    step("set /kz/a (deleted)", lambda: zk1.set("/kz/a", b"x"))
    big = bytes((i * 7 + 3) % 256 for i in range(200 * 1024))
    step("create /kz/big 200KiB", lambda: zk1.create("/kz/big", big))
    data, st = zk1.get("/kz/big")
    out("get /kz/big: len=%d sha1 equal=%s dataLength=%d" % (
        len(data), hashlib.sha1(data).digest() == hashlib.sha1(big).digest(),
        st.dataLength))
    step("create /kz/utf8", lambda: zk1.create("/kz/utf8", "grüße ✓".encode()))
    step("get /kz/utf8", lambda: zk1.get("/kz/utf8")[0].decode())
    step("sync /kz", lambda: zk1.sync("/kz"))
    kids = zk1.get_children("/kz/deep", include_data=True)
    out("children /kz/deep include_data -> %s %s" % (kids[0], fmt_stat(kids[1])))

    # --------------------------------------------------------- ephemeral --
    section("ephemeral")
    zk3 = client()
    w1 = Watches(zk1)
    step("zk3 create /kz/eph ephemeral",
         lambda: zk3.create("/kz/eph", b"e", ephemeral=True))
    st = zk1.exists("/kz/eph", watch=w1.cb("exists"))
    out("zk1 sees /kz/eph: %s owner is zk3 session=%s" % (
        fmt_stat(st), st is not None and st.ephemeralOwner == zk3.client_id[0]))
    step("zk3 create child of ephemeral",
         lambda: zk3.create("/kz/eph/child", b""))
    step("zk3 create /kz/eseq- ephemeral sequence",
         lambda: zk3.create("/kz/eseq-", b"", ephemeral=True, sequence=True))
    step("children /kz before close", lambda: sorted(zk1.get_children("/kz")))
    close(zk3)
    out("zk3 closed")
    step("zk1 exists /kz/eph after close", lambda: zk1.exists("/kz/eph"))
    w1.expect("ephemeral")
    step("children /kz after close", lambda: sorted(zk1.get_children("/kz")))

    # -------------------------------------------------------- sequential --
    section("sequential")
    step("create /kz/seq", lambda: zk1.create("/kz/seq"))
    for i in range(3):
        step("create /kz/seq/n- sequence #%d" % i,
             lambda: zk1.create("/kz/seq/n-", b"", sequence=True))
    step("create /kz/seq/other- sequence",
         lambda: zk1.create("/kz/seq/other-", b"", sequence=True))
    step("delete /kz/seq/n-0000000001",
         lambda: zk1.delete("/kz/seq/n-0000000001"))
    step("create /kz/seq/n- sequence after delete",
         lambda: zk1.create("/kz/seq/n-", b"", sequence=True))
    step("create /kz/seq/ sequence (empty prefix)",
         lambda: zk1.create("/kz/seq/", b"", sequence=True))
    step("children /kz/seq", lambda: sorted(zk1.get_children("/kz/seq")))
    step("stat /kz/seq", lambda: zk1.exists("/kz/seq"))

    # ----------------------------------------------------------- watches --
    section("watches")
    w = Watches(zk1)
    zk1.create("/kz/w", b"0")
    step("zk1 get /kz/w watch", lambda: zk1.get("/kz/w", watch=w.cb("data")))
    step("zk2 set /kz/w 1", lambda: zk2.set("/kz/w", b"1"))
    w.expect("data watch")
    step("zk2 set /kz/w 2", lambda: zk2.set("/kz/w", b"2"))
    w.expect_none("data watch fired once")

    step("zk1 children /kz/w watch",
         lambda: zk1.get_children("/kz/w", watch=w.cb("child")))
    step("zk2 create /kz/w/c1", lambda: zk2.create("/kz/w/c1"))
    w.expect("child watch")
    step("zk2 create /kz/w/c2", lambda: zk2.create("/kz/w/c2"))
    w.expect_none("child watch fired once")
    step("zk1 children /kz/w watch again",
         lambda: sorted(zk1.get_children("/kz/w", watch=w.cb("child2"))))
    step("zk2 set /kz/w 3 (no child change)", lambda: zk2.set("/kz/w", b"3"))
    w.expect_none("child watch ignores data change")
    step("zk2 delete /kz/w/c1", lambda: zk2.delete("/kz/w/c1"))
    w.expect("child watch on delete")

    step("zk1 exists /kz/w/new watch",
         lambda: zk1.exists("/kz/w/new", watch=w.cb("exists")))
    step("zk2 create /kz/w/new", lambda: zk2.create("/kz/w/new", b"n"))
    w.expect("exists watch")

    step("zk1 get /kz/w/new watch", lambda: zk1.get("/kz/w/new", watch=w.cb("data")))
    step("zk1 children /kz/w/new watch",
         lambda: zk1.get_children("/kz/w/new", watch=w.cb("child")))
    step("zk2 delete /kz/w/new", lambda: zk2.delete("/kz/w/new"))
    w.expect("delete fires data+child watches", n=2)
    w.expect_none("after delete")

    step("zk1 get /kz/w watch (own change)",
         lambda: zk1.get("/kz/w", watch=w.cb("own")))
    step("zk1 set /kz/w 4", lambda: zk1.set("/kz/w", b"4"))
    w.expect("own change")

    # --------------------------------------------------------------- ACL --
    section("acl")
    alice = make_digest_acl("alice", "secret", all=True)
    out("digest acl of alice: %s" % fmt_acl(alice))
    za = client(auth=[("digest", "alice:secret")])
    zb = client(auth=[("digest", "bob:hunter2")])
    step("alice create /kz/secret",
         lambda: za.create("/kz/secret", b"s", acl=[alice]))
    step("alice get /kz/secret", lambda: za.get("/kz/secret"))
    step("alice getAcl /kz/secret", lambda: za.get_acls("/kz/secret"))
    step("anon get /kz/secret", lambda: zk2.get("/kz/secret"))
    step("anon set /kz/secret", lambda: zk2.set("/kz/secret", b"x"))
    step("anon children /kz/secret", lambda: zk2.get_children("/kz/secret"))
    step("anon create /kz/secret/c", lambda: zk2.create("/kz/secret/c"))
    step("anon exists /kz/secret", lambda: zk2.exists("/kz/secret"))
    step("anon getAcl /kz/secret", lambda: zk2.get_acls("/kz/secret"))
    step("bob get /kz/secret", lambda: zb.get("/kz/secret"))
    step("anon add_auth digest alice:secret",
         lambda: zk2.add_auth("digest", "alice:secret"))
    step("anon(now alice) get /kz/secret", lambda: zk2.get("/kz/secret"))

    step("alice create /kz/mine CREATOR_ALL",
         lambda: za.create("/kz/mine", b"m", acl=CREATOR_ALL_ACL))
    step("alice getAcl /kz/mine", lambda: za.get_acls("/kz/mine")[0])
    step("bob get /kz/mine", lambda: zb.get("/kz/mine"))
    step("anon create CREATOR_ALL without auth",
         lambda: zk1.create("/kz/noauth", b"", acl=CREATOR_ALL_ACL))

    ro = [make_acl("world", "anyone", read=True)]
    step("create /kz/ro world:anyone:r", lambda: zk1.create("/kz/ro", b"r", acl=ro))
    step("get /kz/ro", lambda: zk1.get("/kz/ro"))
    step("set /kz/ro", lambda: zk1.set("/kz/ro", b"x"))
    step("setAcl /kz/ro (no ADMIN)", lambda: zk1.set_acls("/kz/ro", OPEN_ACL_UNSAFE))
    step("delete /kz/ro (parent open)", lambda: zk1.delete("/kz/ro"))

    step("create /kz/ip ip:127.0.0.1",
         lambda: zk1.create("/kz/ip", b"i", acl=[make_acl("ip", "127.0.0.1", all=True)]))
    step("get /kz/ip from loopback", lambda: zk1.get("/kz/ip"))
    step("create /kz/ip2 ip:10.1.2.3",
         lambda: zk1.create("/kz/ip2", b"i", acl=[make_acl("ip", "10.1.2.3", all=True)]))
    step("get /kz/ip2 from loopback", lambda: zk1.get("/kz/ip2"))
    step("create with unknown scheme",
         lambda: zk1.create("/kz/bad", b"", acl=[ACL(Permissions.ALL, Id("nosuch", "x"))]))

    step("alice setAcl /kz/secret version=5",
         lambda: za.set_acls("/kz/secret", OPEN_ACL_UNSAFE, version=5))
    step("alice setAcl /kz/secret version=0",
         lambda: za.set_acls("/kz/secret", OPEN_ACL_UNSAFE, version=0))
    step("bob get /kz/secret (now open)", lambda: zb.get("/kz/secret"))
    step("getAcl /kz/secret", lambda: zb.get_acls("/kz/secret"))
    close(za)
    close(zb)

    # ------------------------------------------------------- transaction --
    section("transaction")
    t = zk1.transaction()
    t.create("/kz/tx1", b"1")
    t.set_data("/kz/tx1", b"2")
    t.check("/kz/tx1", 1)
    t.create("/kz/tx-seq-", b"", sequence=True)
    t.delete("/kz/utf8")
    out("commit ok tx -> %s" % fmt(t.commit()))
    step("get /kz/tx1", lambda: zk1.get("/kz/tx1"))
    t = zk1.transaction()
    t.create("/kz/tx2", b"")
    t.check("/kz/tx1", 0)
    t.delete("/kz/nonexistent")
    out("commit failing tx -> %s" % fmt(t.commit()))
    step("exists /kz/tx2 (rolled back)", lambda: zk1.exists("/kz/tx2"))

    # ---------------------------------------------------------- sessions --
    section("sessions")
    out("distinct session ids: %s" % (zk1.client_id[0] != zk2.client_id[0]))
    out("session ids nonzero: %s" % (zk1.client_id[0] != 0 and zk2.client_id[0] != 0))
    step("final children /kz", lambda: sorted(zk1.get_children("/kz")))
    close(zk1)
    close(zk2)
    out("DONE")


if __name__ == "__main__":
    try:
        main()
    finally:
        for c in _clients:
            try:
                c.stop()
                c.close()
            except Exception:
                pass
