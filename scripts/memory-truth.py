#!/usr/bin/env python3
"""Measure, on a real Redis/Valkey server, how many bytes of RAM each key holds right after the
server loaded an RDB: the ground truth for rdbinsight's per-key memory model (`mem_size`).

    scripts/memory-truth.py --server BIN --name NAME --out DIR [--cluster] [--seed N] [--repeat]

Steps (see /work/shared/MEMORY-NOTES.md §0 for why):
 1. start BIN on a free 127.0.0.1 port in a temp dir, no persistence, synchronous deletes;
 2. write a deterministic edge-case dataset built around the server's default encoding limits
    (CONFIG GET), plus `filler:` keys that stay, so no keyspace dict shrinks while measuring;
 3. `DEBUG RELOAD` (save an RDB and load it into a fresh keyspace); copy the RDB to DIR/NAME.rdb;
 4. record OBJECT ENCODING and PTTL of every measured key; then per key:
    used_memory before − used_memory after `DEL key` (both corrected for client buffers);
 5. write DIR/NAME.truth.jsonl (one line per key, sorted by db then key bytes) and
    DIR/NAME.info.json (version, allocator, quantum, limits, noise, timings).
With --repeat, a second server is started from the same RDB and every key is measured again;
keys whose bytes differ between the two loads are listed in the info file (and the jsonl gets
`bytes_repeat`).

Python 3.11 stdlib only. The server is killed on any exit.
"""
import argparse
import atexit
import base64
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

YEAR = 365 * 24 * 3600
BIG_KEY = 4096  # keys longer than this are deleted from a separate connection (query buffer)


def log(msg):
    print(f"memory-truth: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# A tiny binary-safe RESP2 client with pipelining.

class RespError(Exception):
    pass


def encode(args):
    """One command as RESP bytes; args are bytes, str or int."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, int):
            a = str(a).encode()
        elif isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n" % len(a))
        out.append(a)
        out.append(b"\r\n")
    return b"".join(out)


class Conn:
    def __init__(self, port, timeout=120):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0

    def close(self):
        self.sock.close()

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed the connection")
        if self.pos > 1 << 20:
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buf) - self.pos < n + 2:
            self._fill()
        data = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n + 2
        return data

    def read_reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read_reply() for _ in range(n)]
        raise ConnectionError(f"bad RESP line {line[:80]!r}")

    def pipeline(self, commands, chunk_bytes=1 << 20):
        """Send many commands, return their replies (errors as RespError objects). Sends in
        chunks and reads the replies of each chunk, so neither side's socket buffer fills up."""
        replies, batch, size = [], [], 0
        for cmd in commands:
            data = encode(cmd)
            batch.append(data)
            size += len(data)
            if size >= chunk_bytes or len(batch) >= 2000:
                replies += self._round_trip(batch)
                batch, size = [], 0
        if batch:
            replies += self._round_trip(batch)
        return replies

    def _round_trip(self, batch):
        self.sock.sendall(b"".join(batch))
        return [self.read_reply() for _ in batch]

    def call(self, *args):
        reply = self.pipeline([args])[0]
        if isinstance(reply, RespError):
            raise reply
        return reply


def check(replies, what):
    """Raise on the first error reply of a pipeline."""
    for r in replies:
        if isinstance(r, RespError):
            raise RespError(f"{what}: {r}")
    return replies


# --------------------------------------------------------------------------------------------
# Cluster hash slots (CRC16/XMODEM of the hash tag, as in cluster.c keyHashSlot).

def _crc16_table():
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


CRC16_TABLE = _crc16_table()


def crc16(data):
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ CRC16_TABLE[((crc >> 8) ^ b) & 0xFF]
    return crc


def key_slot(key):
    s = key.find(b"{")
    if s >= 0:
        e = key.find(b"}", s + 1)
        if e > s + 1:
            key = key[s + 1:e]
    return crc16(key) % 16384


# --------------------------------------------------------------------------------------------
# The server process.

def port_is_free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port(cluster=False):
    """A free loopback port; in cluster mode one ≤ 55535 whose bus port (+10000) is free too."""
    if not cluster:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return port
    rng = random.Random()
    for _ in range(1000):
        port = rng.randint(20000, 55535)
        if port_is_free(port) and port_is_free(port + 10000):
            return port
    raise SystemExit("no free port pair for cluster mode")


def server_version(binary):
    """(flavor, (major, minor, patch)) from `BIN --version`; flavor is "redis" or "valkey"."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    m = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    if not m:
        raise SystemExit(f"cannot read the version of {binary}: {out!r}")
    flavor = "valkey" if out.lower().startswith("valkey") else "redis"
    return flavor, tuple(int(x) for x in m.groups())


class Server:
    """One server process in DIR; `start()` loads DIR's RDB if there is one."""

    def __init__(self, binary, workdir, version, cluster):
        self.binary, self.dir, self.version, self.cluster = binary, workdir, version, cluster
        self.proc = None
        self.port = None

    def args(self):
        a = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no", "--daemonize", "no",
             "--logfile", os.path.join(self.dir, "server.log"),
             "--lazyfree-lazy-user-del", "no", "--lazyfree-lazy-server-del", "no"]
        if self.version >= (7, 0, 0):
            a += ["--enable-debug-command", "yes"]
        if self.cluster:
            a += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        return a

    def start(self):
        self.port = free_port(self.cluster)
        self.proc = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited at start (status {self.proc.returncode}); "
                                 f"log: {self.log_tail()}")
            try:
                c = Conn(self.port)
                if c.call("PING") == b"PONG":
                    return c
            except (OSError, RespError):
                pass  # not listening yet, or still loading (-LOADING)
            if time.time() > deadline:
                raise SystemExit(f"server did not start; log: {self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self):
        try:
            with open(os.path.join(self.dir, "server.log"), errors="replace") as f:
                return "".join(f.readlines()[-10:])
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def setup_cluster(conn, version):
    """Give this single node all 16384 slots and wait for cluster_state:ok."""
    if version >= (7, 0, 0):
        conn.call("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
    else:
        conn.call("CLUSTER", "ADDSLOTS", *range(16384))
    wait_cluster_ok(conn)


def wait_cluster_ok(conn):
    deadline = time.time() + 30
    while b"cluster_state:ok" not in conn.call("CLUSTER", "INFO"):
        if time.time() > deadline:
            raise SystemExit("cluster_state did not become ok")
        time.sleep(0.05)


# --------------------------------------------------------------------------------------------
# Server facts.

def info_fields(conn, section):
    text = conn.call("INFO", section).decode(errors="replace")
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def config_get(conn, *names):
    """First name the server knows (7.x `*-listpack-*`, 6.2 `*-ziplist-*`) → (name, value)."""
    for name in names:
        reply = conn.call("CONFIG", "GET", name)
        if reply:
            return reply[0].decode(), reply[1].decode()
    return None, None


LIMITS = {  # our label: config names, newest first
    "list_max_size": ("list-max-listpack-size", "list-max-ziplist-size"),
    "list_compress_depth": ("list-compress-depth",),
    "set_max_intset_entries": ("set-max-intset-entries",),
    "set_max_listpack_entries": ("set-max-listpack-entries",),
    "set_max_listpack_value": ("set-max-listpack-value",),
    "zset_max_entries": ("zset-max-listpack-entries", "zset-max-ziplist-entries"),
    "zset_max_value": ("zset-max-listpack-value", "zset-max-ziplist-value"),
    "hash_max_entries": ("hash-max-listpack-entries", "hash-max-ziplist-entries"),
    "hash_max_value": ("hash-max-listpack-value", "hash-max-ziplist-value"),
    "stream_node_max_entries": ("stream-node-max-entries",),
    "stream_node_max_bytes": ("stream-node-max-bytes",),
    "maxmemory": ("maxmemory",),
    "maxmemory_policy": ("maxmemory-policy",),
    "hz": ("hz",),
    "activerehashing": ("activerehashing",),
    "rdbcompression": ("rdbcompression",),
}


def read_config(conn):
    config, names = {}, {}
    for label, candidates in LIMITS.items():
        name, value = config_get(conn, *candidates)
        if name is not None:
            config[label], names[label] = value, name
    return config, names


def quantum(conn, allocator):
    if not allocator.startswith("jemalloc"):
        return None
    m = re.search(rb"Quantum size:\s*(\d+)", conn.call("MEMORY", "MALLOC-STATS"))
    return int(m.group(1)) if m else None


# --------------------------------------------------------------------------------------------
# The dataset. Each value maker returns the commands that create KEY; the key part (name shape,
# db, TTL) is chosen by `build_dataset`. Everything derives from one seeded RNG.

class Values:
    def __init__(self, rng, cfg, version):
        self.rng, self.version = rng, version
        self.int_set_max = int(cfg.get("set_max_intset_entries", 512))
        self.set_lp_entries = int(cfg.get("set_max_listpack_entries", 128))
        self.set_lp_value = int(cfg.get("set_max_listpack_value", 64))
        self.zset_entries = int(cfg.get("zset_max_entries", 128))
        self.zset_value = int(cfg.get("zset_max_value", 64))
        self.hash_entries = int(cfg.get("hash_max_entries", 512))
        self.hash_value = int(cfg.get("hash_max_value", 64))
        fill = int(cfg.get("list_max_size", -2))
        # list-max-listpack-size: negative = node bytes (-1 4 KB .. -5 64 KB), positive = entries.
        self.list_node_bytes = {-1: 4096, -2: 8192, -3: 16384, -4: 32768, -5: 65536}.get(fill, 8192)
        self.list_node_entries = fill if fill > 0 else None

    # -- raw material
    def text(self, n):
        return bytes(self.rng.choice(b"abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))

    def noise(self, n):
        return self.rng.randbytes(n)

    def members(self, n, width=8, prefix=b"m"):
        return [prefix + b"%0*d" % (width, i) for i in range(n)]

    # -- strings
    def strings(self):
        ints = [0, 1, 9999, 10000, -1, -9999, -10000, 12345678, 2**31 - 1, 2**31, 2**32,
                10**18, -(10**18), 2**63 - 1, -(2**63)]
        outside = ["9223372036854775808", "-9223372036854775809", "18446744073709551615",
                   "99999999999999999999"]
        not_int = ["007", "+5", " 1", "1 ", "-0", "1" * 21, "00", "0x1A", "1.5", "1e3", "-", ""]
        lengths = [1, 2, 20, 21, 31, 32, 33, 43, 44, 45, 63, 64, 65, 100, 255, 256, 257, 1000,
                   4096, 65535, 65536, 65537, 100000]
        out = [("int", str(v).encode()) for v in ints]
        out += [("int-outside", v.encode()) for v in outside]
        out += [("not-int", v.encode()) for v in not_int]
        out += [(f"len{n}", self.text(n)) for n in lengths]
        out += [(f"random{n}", self.noise(n)) for n in (100, 1000, 20000, 70000)]
        out += [(f"repeat{n}", (b"abc" * n)[:n]) for n in (21, 100, 1000, 20000, 70000)]
        return [(label, (lambda v: lambda k: [[b"SET", k, v]])(v)) for label, v in out]

    # -- lists
    def lists(self):
        r = self.rng
        out = []
        def push(label, elems, one_by_one=False):
            # one_by_one: as a list grows in real life (a multi-element RPUSH decides
            # listpack→quicklist on the whole batch's estimated size at once).
            step = 1 if one_by_one else 1000
            chunks = [elems[i:i + step] for i in range(0, len(elems), step)]
            out.append((label, lambda k: [[b"RPUSH", k, *c] for c in chunks]))
        push("one-str", [b"a"])
        push("one-int", [b"5"])
        push("small-mixed", [b"1", b"hello", b"-300", b"70000", b"x" * 40])
        push("mixed-10", [str(r.randint(-10**12, 10**12)).encode() if i % 2 else self.text(12) for i in range(10)])
        for n in (128, 129, 512, 513):
            push(f"short-{n}", [self.text(6) for _ in range(n)])
        # Around the node byte limit. A node takes one more element while
        # 7 + n*entry + len(new element) + 8 <= limit (quicklist.c _quicklistNodeAllowInsert,
        # SIZE_ESTIMATE_OVERHEAD 8); entry = header + data + backlen in a listpack.
        def last_fitting(text_len, entry):
            return (self.list_node_bytes - 15 - text_len) // entry + 1
        for size in (100, 20):
            n0 = last_fitting(size, size + (1 if size < 64 else 2) + 1)
            for n in range(n0 - 3, n0 + 4):
                push(f"node-edge-{size}x{n}", [self.text(size) for _ in range(n)], one_by_one=True)
        n0 = last_fitting(9, 6)  # 9-digit ints: 32-bit listpack int (5 B) + backlen
        for n in range(n0 - 3, n0 + 4):
            push(f"node-edge-int32x{n}", [str(r.randint(10**8, 10**9 - 1)).encode() for _ in range(n)],
                 one_by_one=True)
        if self.list_node_entries:
            for n in (self.list_node_entries, self.list_node_entries + 1):
                push(f"node-entries-{n}", [self.text(5) for _ in range(n)])
        push("multi-2000-mixed", [self.text(r.randint(1, 30)) if i % 3 else str(r.randint(-10**6, 10**6)).encode() for i in range(2000)])
        push("multi-5000-ints", [str(r.randint(0, 200)).encode() for _ in range(5000)])
        push("multi-1500x100", [self.text(100) for _ in range(1500)])
        push("multi-300x200-repeat", [b"x" * 200 for _ in range(300)])
        for size in (self.list_node_bytes - 20, self.list_node_bytes, self.list_node_bytes + 1000, 20000):
            push(f"plain-{size}", [self.text(size)])
            push(f"plain-{size}-between", [b"a", b"1", self.text(size), b"b"])
        return out

    # -- sets
    def sets(self):
        r = self.rng
        out = []
        def sadd(label, members, srem=()):
            chunks = [members[i:i + 1000] for i in range(0, len(members), 1000)]
            cmds = [[b"SADD", None, *c] for c in chunks]
            if srem:
                cmds.append([b"SREM", None, *srem])
            out.append((label, lambda k: [[c[0], k, *c[2:]] for c in cmds]))
        I, E, V = self.int_set_max, self.set_lp_entries, self.set_lp_value
        for n in (1, 5, 100, I - 1, I, I + 1):
            sadd(f"intset16-{n}", [str(i * 7 - 300).encode() for i in range(n)])
        sadd("intset32-50", [str(r.randint(40000, 2**31 - 1)).encode() for _ in range(50)])
        sadd("intset64-50", [str(r.randint(2**40, 2**62)).encode() for _ in range(50)])
        sadd("intset64-neg", [str(-r.randint(2**40, 2**62)).encode() for _ in range(20)])
        for n in (10, E, E + 1):
            sadd(f"ints-and-str-{n}", [str(i).encode() for i in range(n - 1)] + [b"str"])
        for n in (E - 1, E, E + 1):
            sadd(f"str-{n}", self.members(n))
        for w in (V, V + 1):
            sadd(f"member-{w}B", self.members(9) + [self.text(w)])
        for n in (200, 500, 1000):
            sadd(f"hashtable-{n}", [self.text(r.randint(4, 40)) for _ in range(n)])
        big = self.members(200)
        sadd("shrunk-str-200-50", big, srem=big[50:])
        ints = [str(i).encode() for i in range(I + 100)]
        sadd(f"shrunk-int-{I + 100}-{I - 100}", ints, srem=ints[I - 100:])
        long_member = self.text(V + 10)
        sadd("shrunk-long-member", self.members(10) + [long_member], srem=[long_member])
        return out

    # -- sorted sets
    def zsets(self):
        r = self.rng
        out = []
        def zadd(label, pairs, rem_ranks=None):
            flat = [x for s, m in pairs for x in (s, m)]
            chunks = [flat[i:i + 2000] for i in range(0, len(flat), 2000)]
            def make(k):
                cmds = [[b"ZADD", k, *c] for c in chunks]
                if rem_ranks:
                    cmds.append([b"ZREMRANGEBYRANK", k, rem_ranks[0], rem_ranks[1]])
                return cmds
            out.append((label, make))
        E, V = self.zset_entries, self.zset_value
        def int_scores(ms):
            return [(str(i).encode(), m) for i, m in enumerate(ms)]
        def frac_scores(ms):
            return [(repr(r.uniform(-1e6, 1e6)).encode(), m) for m in ms]
        for n in (1, E - 1, E, E + 1):
            zadd(f"int-{n}", int_scores(self.members(n)))
            zadd(f"frac-{n}", frac_scores(self.members(n)))
        for w in (V, V + 1):
            zadd(f"member-{w}B", int_scores(self.members(9) + [self.text(w)]))
        zadd("inf", [(b"inf", b"top"), (b"-inf", b"bottom"), (b"0", b"zero"), (b"1.5", b"x")])
        for n in (200, 500, 1000):
            zadd(f"skiplist-int-{n}", int_scores([self.text(r.randint(4, 30)) for _ in range(n)]))
            zadd(f"skiplist-frac-{n}", frac_scores([self.text(r.randint(4, 30)) for _ in range(n)]))
        zadd("skiplist-inf-300", [(b"inf", b"top"), (b"-inf", b"bottom")] + frac_scores(self.members(298)))
        zadd("shrunk-300-50", int_scores(self.members(300)), rem_ranks=(50, -1))
        return out

    # -- hashes
    def hashes(self):
        r = self.rng
        out = []
        def hset(label, pairs, hdel=()):
            flat = [x for f, v in pairs for x in (f, v)]
            chunks = [flat[i:i + 2000] for i in range(0, len(flat), 2000)]
            def make(k):
                cmds = [[b"HSET", k, *c] for c in chunks]
                if hdel:
                    cmds.append([b"HDEL", k, *hdel])
                return cmds
            out.append((label, make))
        E, V = self.hash_entries, self.hash_value
        def fields(n, vwidth=10):
            return [(b"f%06d" % i, self.text(vwidth)) for i in range(n)]
        for n in (1, 10, E - 1, E, E + 1):
            hset(f"fields-{n}", fields(n))
        for w in (V, V + 1):
            hset(f"field-{w}B", fields(5) + [(self.text(w), b"v")])
            hset(f"value-{w}B", fields(5) + [(b"f", self.text(w))])
        hset("int-values-20", [(b"f%d" % i, str(r.randint(-10**15, 10**15)).encode()) for i in range(20)])
        hset("int-values-600", [(b"f%d" % i, str(r.randint(0, 10**6)).encode()) for i in range(600)])
        hset("not-int-values", [(b"a", b"007"), (b"b", b"+5"), (b"c", b" 1"), (b"d", b"-0"), (b"e", b"1" * 21)])
        hset("hashtable-1000", [(self.text(r.randint(3, 20)), self.text(r.randint(0, 50))) for _ in range(1000)])
        hset("hashtable-long-values", [(b"f%d" % i, self.text(r.randint(60, 200))) for i in range(100)])
        big = fields(600)
        hset("shrunk-600-100", big, hdel=[f for f, _ in big[100:]])
        long_field = self.text(V + 10)
        hset("shrunk-long-field", fields(10) + [(long_field, b"v")], hdel=[long_field])
        return out

    # -- hashes with field expiry (7.4+)
    def hashes_hfe(self):
        out = []
        def make(n, expiring):
            def cmds(k):
                flat = [x for i in range(n) for x in (b"f%05d" % i, self.text(12))]
                fs = [b"f%05d" % i for i in range(expiring)]
                return [[b"HSET", k, *flat], [b"HEXPIRE", k, YEAR, b"FIELDS", len(fs), *fs]]
            return cmds
        for n, e in ((3, 3), (10, 5), (self.hash_entries, 10), (self.hash_entries + 1, 10), (600, 100), (1000, 1000)):
            out.append((f"hfe-{n}-{e}", make(n, e)))
        return out

    # -- streams
    def streams(self):
        out = []
        def make(n, groups=0, read=0, ack=0, deleted=0, value_len=10):
            def cmds(k):
                c = [[b"XADD", k, b"%d-%d" % (1700000000000 + i // 3, i % 3), b"field", self.text(value_len),
                      b"n", str(i).encode()] for i in range(n)]
                for d in range(deleted):
                    c.append([b"XDEL", k, b"%d-%d" % (1700000000000 + d // 3, d % 3)])
                for g in range(groups):
                    c.append([b"XGROUP", b"CREATE", k, b"g%d" % g, b"0"])
                    for consumer in range(3):
                        c.append([b"XREADGROUP", b"GROUP", b"g%d" % g, b"c%d" % consumer,
                                  b"COUNT", read, b"STREAMS", k, b">"])
                    if ack:
                        ids = [b"%d-%d" % (1700000000000 + i // 3, i % 3) for i in range(ack)]
                        c.append([b"XACK", k, b"g%d" % g, *ids])
                return c
            return cmds
        out.append(("one", make(1)))
        out.append(("ten", make(10)))
        out.append(("multi-node-500", make(500)))
        out.append(("multi-node-long-300", make(300, value_len=100)))
        out.append(("groups-250", make(250, groups=2, read=10, ack=5)))
        out.append(("groups-small", make(5, groups=1, read=2)))
        out.append(("deleted-all", make(3, deleted=3)))
        return out


def key_name(rng, base, shape):
    """KEY for BASE in one of the shapes: short, exact lengths 31/32/33/255/256, binary."""
    if shape == "short":
        return base
    if shape == "binary":
        return base + b":\x00\xff\x01\x80" + rng.randbytes(3)
    n = int(shape)
    return (base + b":" + b"k" * n)[:n] if len(base) < n else base


SHAPES = ["short", "31", "32", "33", "255", "256", "binary"]


def build_dataset(rng, cfg, flavor, version, cluster):
    """→ (measured keys: list of dicts {db, key, type, label, cmds, ttl}, fixed order)."""
    v = Values(rng, cfg, version)
    groups = [("string", v.strings()), ("list", v.lists()), ("set", v.sets()),
              ("zset", v.zsets()), ("hash", v.hashes()), ("stream", v.streams())]
    if flavor == "redis" and version >= (7, 4, 0):  # Valkey 8.0 has no hash field expiry
        groups.append(("hash", v.hashes_hfe()))
    dbs = [0] if cluster else [0, 1, 3]
    copies = 3 if cluster else 1  # cluster mode has one db: keep the key count similar
    keys, seen = [], set()
    idx = 0
    def add(db, key, kind, label, make, ttl):
        assert (db, key) not in seen, key
        seen.add((db, key))
        keys.append({"db": db, "key": key, "type": kind, "label": label, "make": make, "ttl": ttl})
    for db in dbs:
        for copy in range(copies):
            for kind, values in groups:
                for label, make in values:
                    # Each value thrice per db: once short-named, twice in other shapes.
                    for shape in ("short", rng.choice(SHAPES[1:]), rng.choice(SHAPES[1:])):
                        idx += 1
                        base = b"%s:%s:%d" % (kind.encode(), label.encode(), idx)
                        add(db, key_name(rng, base, shape), kind, label, make, rng.random() < 0.2)
    # Hand-checkable keys (11-byte names, 10-byte values) and a ~70 KB key name.
    add(0, b"hand:plain1", "string", "hand-plain", lambda k: [[b"SET", k, b"abcdefghij"]], False)
    add(0, b"hand:ttl__1", "string", "hand-ttl", lambda k: [[b"SET", k, b"abcdefghij"]], True)
    add(0, b"hand:raw100", "string", "hand-raw100", lambda k: [[b"SET", k, b"r" * 100]], False)
    add(0, b"hand:int123", "string", "hand-int", lambda k: [[b"SET", k, b"123456"]], False)
    add(0, b"hand:list_3", "list", "hand-list3", lambda k: [[b"RPUSH", k, b"a", b"bb", b"1"]], False)
    add(0, b"hand:hash_2", "hash", "hand-hash2", lambda k: [[b"HSET", k, b"f1", b"v1", b"f2", b"22"]], False)
    big = b"bigkey:" + v.text(70000 - 7)
    add(dbs[-1], big, "string", "key-70000", lambda k: [[b"SET", k, b"v"]], False)
    add(dbs[-1], big + b"-ttl", "string", "key-70000-ttl", lambda k: [[b"SET", k, b"value"]], True)
    add(dbs[0], big + b"-list", "list", "key-70000-list", lambda k: [[b"RPUSH", k, b"a", b"b"]], False)
    return keys


def ttl_command(rng, key):
    if rng.random() < 0.5:
        return [b"EXPIRE", key, YEAR + rng.randint(0, 1000)]
    return [b"PEXPIREAT", key, int(time.time() * 1000) + YEAR * 1000 + rng.randint(0, 10**6)]


def slot_tags(slots):
    """A hash tag per slot in SLOTS: '{t<n>}' names hashing there."""
    want, tags, n = set(slots), {}, 0
    while len(tags) < len(want):
        tag = b"t%d" % n
        s = crc16(tag) % 16384
        if s in want and s not in tags:
            tags[s] = tag
        n += 1
    return tags


def filler_commands(rng, keys, cluster):
    """Filler keys that stay: per db (and per used slot in cluster mode) at least as many as
    the measured keys there, with and without TTL, so no main/expires dict can shrink."""
    cmds = []
    def fillers(db, prefix, n_plain, n_ttl):
        # +1 plain filler: the first one is deleted to warm up the measuring connection.
        n_plain += 1
        for i in range(n_plain + n_ttl):
            k = b"filler:%s:%d" % (prefix, i)
            cmds.append((db, [b"SET", k, b"f%d" % i]))
            if i >= n_plain:
                cmds.append((db, [b"EXPIRE", k, 2 * YEAR]))
    if cluster:
        per_slot = {}
        for k in keys:
            c = per_slot.setdefault(key_slot(k["key"]), [0, 0])
            c[0] += 1
            c[1] += k["ttl"]
        tags = slot_tags(per_slot)
        for slot, (n, n_ttl) in sorted(per_slot.items()):
            fillers(0, b"{" + tags[slot] + b"}", max(2, n), max(2, n_ttl))
    else:
        for db in sorted({k["db"] for k in keys}):
            n = sum(1 for k in keys if k["db"] == db)
            n_ttl = sum(1 for k in keys if k["db"] == db and k["ttl"])
            fillers(db, b"db%d" % db, n + 8, n_ttl + 8)
    return cmds


def write_dataset(conn, rng, keys, cluster):
    """Create every measured key, its TTL, then the fillers; return the filler count."""
    commands, db = [], None
    def emit(to_db, cmd):
        nonlocal db
        if to_db != db:
            commands.append([b"SELECT", to_db])
            db = to_db
        commands.append(cmd)
    for k in keys:
        for cmd in k.pop("make")(k["key"]):
            emit(k["db"], cmd)
        if k["ttl"]:
            emit(k["db"], ttl_command(rng, k["key"]))
    fill = filler_commands(rng, keys, cluster)
    for to_db, cmd in fill:
        emit(to_db, cmd)
    replies = conn.pipeline(commands)
    errors = [(c[:2], r) for c, r in zip(commands, replies) if isinstance(r, RespError)]
    if errors:
        raise SystemExit(f"{len(errors)} write errors, first: {errors[0]}")
    return sum(1 for _, c in fill if c[0] == b"SET")


# --------------------------------------------------------------------------------------------
# Measuring.

MEM_RE = re.compile(rb"used_memory:(\d+)")


def used_memory(info_reply):
    """`used_memory` of an INFO memory reply. (Not corrected by `mem_clients_normal`: that figure
    is refreshed by the server's cron, so it lags behind the buffers it describes.)"""
    return int(MEM_RE.search(info_reply).group(1))


def measure_noise(conn, rounds=200):
    """Drops seen with no key deleted, measured exactly like a key: INFO, X, INFO, INFO with X =
    PING or DEL <missing key>. Also the drop seen when a side connection deletes a missing long
    key (the calibration of `Measurer.measure_big`), repeated."""
    drops = []
    for i in range(rounds):
        cmd = [b"DEL", b"no-such-key-%d" % i] if i % 2 else [b"PING"]
        u0 = used_memory(conn.call("INFO", "memory"))
        conn.call(*cmd)
        u1 = used_memory(conn.call("INFO", "memory"))
        u2 = used_memory(conn.call("INFO", "memory"))
        drops += [u0 - u1, u1 - u2]
    nz = [x for x in drops if x]
    return {"rounds": len(drops), "nonzero": len(nz), "min": min(drops), "max": max(drops),
            "examples": nz[:10]}


class Measurer:
    """Per key: keyspace memory before − after DEL, on one connection (SELECT as needed)."""

    def __init__(self, server, conn, cluster):
        self.server, self.conn, self.cluster = server, conn, cluster
        self.db = 0
        self.unstable = 0  # keys whose two "after" readings differed

    def select(self, db):
        if db != self.db:
            self.conn.call("SELECT", db)
            self.db = db

    def measure(self, db, key):
        """INFO, DEL, INFO, INFO, each its own round trip: a reading taken while earlier replies
        of the same pipeline wait in the reply buffer would count their reply blocks (a 20 KB
        block on 7.4, whose client reply buffer the cron had shrunk)."""
        self.select(db)
        if len(key) > BIG_KEY:
            return self.measure_big(db, key)
        before = used_memory(self.conn.call("INFO", "memory"))
        again = used_memory(self.conn.call("INFO", "memory"))
        if again != before:
            self.unstable += 1
            before = self.settle()
        reply = self.conn.call("DEL", key)
        if reply != 1:
            raise SystemExit(f"DEL {key[:60]!r} in db {db} returned {reply!r}")
        after1 = used_memory(self.conn.call("INFO", "memory"))
        after2 = used_memory(self.conn.call("INFO", "memory"))
        if after1 != after2:
            self.unstable += 1
            after2 = self.settle()
        return before - after2

    def settle(self):
        """Read INFO until two consecutive readings agree."""
        last = None
        for _ in range(50):
            cur = used_memory(self.conn.call("INFO", "memory"))
            if cur == last:
                return cur
            last = cur
            time.sleep(0.01)
        return last

    def side_delete(self, db, cmd):
        """Keyspace-memory drop when a fresh connection runs CMD and closes (its client struct
        and query buffer are freed with it)."""
        side = Conn(self.server.port)
        if db:
            side.call("SELECT", db)
        before = self.settle()
        reply = side.call(*cmd)
        side.close()
        time.sleep(0.05)  # the server frees a closed client in its next event-loop turn
        return before - self.settle(), reply

    def measure_big(self, db, key):
        """A long key name would grow this connection's query buffer (for good: a big argument
        leaves a buffer of its size behind): delete it from a side connection that then closes,
        minus that connection's own cost (the same command on a missing key of that length).
        Exact only while the server's cron is paused (see prepare_for_measuring)."""
        bases = [self.side_delete(db, [b"DEL", b"#" * len(key)]) for _ in range(2)]
        if any(reply != 0 for _, reply in bases):
            raise SystemExit("calibration key unexpectedly exists")
        if bases[0][0] != bases[1][0]:
            self.unstable += 1
        drop, reply = self.side_delete(db, [b"DEL", key])
        if reply != 1:
            raise SystemExit(f"DEL of the long key returned {reply!r}")
        return drop - bases[1][0]


def encodings_and_ttls(conn, keys):
    """OBJECT ENCODING and PTTL of every key (as loaded), pipelined per db."""
    cmds, db = [], None
    for k in keys:
        if k["db"] != db:
            cmds.append([b"SELECT", k["db"]])
            db = k["db"]
        cmds += [[b"OBJECT", b"ENCODING", k["key"]], [b"PTTL", k["key"]]]
    replies = check(conn.pipeline(cmds), "OBJECT ENCODING/PTTL")
    replies = [r for c, r in zip(cmds, replies) if c[0] != b"SELECT"]
    if db not in (None, 0):
        conn.call("SELECT", 0)
    out = []
    for i in range(len(keys)):
        enc, pttl = replies[2 * i], replies[2 * i + 1]
        if enc is None:
            raise SystemExit(f"key {keys[i]['key'][:60]!r} missing after reload")
        out.append((enc.decode(), pttl > 0))
    return out


def measure_all(server, conn, keys, cluster):
    conn.call("SELECT", 0)
    m = Measurer(server, conn, cluster)
    result = [m.measure(k["db"], k["key"]) for k in keys]
    m.select(0)
    return result, m.unstable


def warmup_keys(keys, cluster):
    """One plain filler per db, deleted before measuring (see prepare_for_measuring)."""
    if cluster:
        slot = min(key_slot(k["key"]) for k in keys)
        return [(0, b"filler:{" + slot_tags([slot])[slot] + b"}:0")]
    return [(db, b"filler:db%d:0" % db) for db in sorted({k["db"] for k in keys})]


def wait_rehashing_done(conn, timeout=30):
    """Wait until no keyspace dict is rehashing, where INFO tells (7.4+, Valkey)."""
    deadline = time.time() + timeout
    while True:
        left = info_fields(conn, "memory").get("mem_overhead_db_hashtable_rehashing")
        if left is None or int(left) == 0:
            return
        if time.time() > deadline:
            raise SystemExit(f"keyspace dicts still rehashing after {timeout} s ({left} B)")
        time.sleep(0.02)


def prepare_for_measuring(conn, warmup):
    """Freeze what can be frozen: the server's cron (it resizes client query/reply buffers and
    keyspace dicts at any time, and would land on some key's drop; all versions have
    DEBUG PAUSE-CRON), dict resizing (7.4+), client eviction (7.0+). Then warm up: the first
    commands of a connection allocate its buffers, and the first DEL of a server allocates
    something too (24,688 B on 7.2.6), so a filler per db (WARMUP) is deleted first.

    Between stopping new resizes and pausing the cron, the cron is left to finish the rehashes
    the load started (7.4+ and Valkey keep a dict per slot in cluster mode, and the cron
    rehashes them a millisecond at a time): a dict still rehashing when the cron stops is
    finished by the rehash step of some key's DEL, whose drop then also holds the old table and
    the rehashing-list node (56 B more on Valkey 8.0 in cluster mode, in about one run of five)."""
    done = []
    def try_call(*cmd):
        try:
            conn.call(*cmd)
            done.append(b" ".join(cmd).decode())
        except RespError:
            pass
    try_call(b"DEBUG", b"DICT-RESIZING", b"0")
    wait_rehashing_done(conn)
    try_call(b"DEBUG", b"PAUSE-CRON", b"1")
    try_call(b"CLIENT", b"NO-EVICT", b"on")
    for _ in range(5):
        conn.call("INFO", "memory")
        conn.call("PING")
    for db, key in warmup:
        if check(conn.pipeline([[b"SELECT", db], [b"DEL", key], [b"DEL", b"no-such-key"]]),
                 "warm-up")[1] != 1:
            raise SystemExit(f"warm-up filler {key!r} is missing in db {db}")
        conn.call("SELECT", 0)
    return done


# --------------------------------------------------------------------------------------------
# One run.

def keyspace_counts(conn):
    out = {}
    for line in conn.call("INFO", "keyspace").decode().splitlines():
        m = re.match(r"db(\d+):keys=(\d+),expires=(\d+)", line)
        if m:
            out[f"db{m.group(1)}"] = {"keys": int(m.group(2)), "expires": int(m.group(3))}
    return out


def reload_and_copy_rdb(server, conn, out_rdb):
    """DEBUG RELOAD (save + load into a fresh keyspace), or where a server lacks it SAVE and a
    restart; then copy the RDB the server wrote. Returns the (new) connection."""
    try:
        conn.call("DEBUG", "RELOAD")
    except RespError as e:
        log(f"DEBUG RELOAD failed ({e}); using SAVE and a restart")
        conn.call("SAVE")
        conn.close()
        server.stop()
        conn = server.start()
        if server.cluster:
            wait_cluster_ok(conn)
    rdb_dir = conn.call("CONFIG", "GET", "dir")[1].decode()
    rdb_name = conn.call("CONFIG", "GET", "dbfilename")[1].decode()
    shutil.copyfile(os.path.join(rdb_dir, rdb_name), out_rdb)
    return conn


def run(args):
    t0 = time.time()
    timings = {}
    flavor, version = server_version(args.server)
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix=f"rdbinsight-memtruth-{args.name}.")
    server = Server(os.path.abspath(args.server), workdir, version, args.cluster)
    def cleanup():
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    conn = server.start()
    if args.cluster:
        setup_cluster(conn, version)
    mem = info_fields(conn, "memory")
    srv = info_fields(conn, "server")
    allocator = mem["mem_allocator"]
    q = quantum(conn, allocator)
    cfg, cfg_names = read_config(conn)
    log(f"{args.name}: {flavor} {'.'.join(map(str, version))}, "
        f"{allocator}, quantum {q}, port {server.port}, dir {workdir}")
    timings["start"] = round(time.time() - t0, 2)

    keys = build_dataset(rng, cfg, flavor, version, args.cluster)
    n_fillers = write_dataset(conn, rng, keys, args.cluster)
    conn.close()
    log(f"{args.name}: wrote {len(keys)} measured keys and {n_fillers} fillers")
    timings["write"] = round(time.time() - t0 - sum(timings.values()), 2)

    conn = Conn(server.port)
    rdb_path = os.path.join(args.out, f"{args.name}.rdb")
    conn = reload_and_copy_rdb(server, conn, rdb_path)
    keys.sort(key=lambda k: (k["db"], k["key"]))
    loaded = encodings_and_ttls(conn, keys)
    used_after_reload = int(info_fields(conn, "memory")["used_memory"])
    counts = keyspace_counts(conn)
    warmup = warmup_keys(keys, args.cluster)
    frozen = prepare_for_measuring(conn, warmup)
    timings["reload"] = round(time.time() - t0 - sum(timings.values()), 2)

    noise = measure_noise(conn)
    truth, unstable = measure_all(server, conn, keys, args.cluster)
    noise["unstable_after_readings"] = unstable
    timings["measure"] = round(time.time() - t0 - sum(timings.values()), 2)
    log(f"{args.name}: measured {len(keys)} keys; noise (drops with nothing deleted): {noise}")

    repeat = None
    if args.repeat:
        repeat, noise["unstable_after_readings_repeat"] = measure_repeat(server, keys, args.cluster, warmup)
        timings["repeat"] = round(time.time() - t0 - sum(timings.values()), 2)

    write_truth(args, keys, loaded, truth, repeat)
    info = {
        "name": args.name, "server": os.path.abspath(args.server),
        "version": srv.get("valkey_version") or srv.get("redis_version"),
        "flavor": flavor,
        "mem_allocator": allocator, "quantum": q, "cluster": args.cluster, "seed": args.seed,
        "config": cfg, "config_names": cfg_names,
        "used_memory_after_reload": used_after_reload,
        "keyspace_after_reload": counts,
        "measured_keys": len(keys),
        "measured_keys_per_db": {str(db): sum(1 for k in keys if k["db"] == db)
                                  for db in sorted({k["db"] for k in keys})},
        "fillers": n_fillers,
        "frozen": frozen,
        "noise": noise,
        "rdb": rdb_path,
        "timings_s": timings,
    }
    if repeat is not None:
        diffs = [{"db": k["db"], "key_b64": base64.b64encode(k["key"]).decode(), "type": k["type"],
                  "encoding": enc, "bytes": a, "bytes_repeat": b}
                 for k, (enc, _), a, b in zip(keys, loaded, truth, repeat) if a != b]
        info["repeat_differs"] = diffs
        log(f"{args.name}: {len(diffs)} keys differ between the two loads: "
            f"{sorted({(d['type'], d['encoding']) for d in diffs})}")
    with open(os.path.join(args.out, f"{args.name}.info.json"), "w") as f:
        json.dump(info, f, indent=1)
    log(f"{args.name}: done in {time.time() - t0:.1f} s; timings {timings}")


def measure_repeat(server, keys, cluster, warmup):
    """Restart from the same RDB (still in the server's dir) and measure every key again.
    Returns (bytes per key, count of unstable readings)."""
    server.stop()
    conn = server.start()
    if cluster:
        wait_cluster_ok(conn)
    prepare_for_measuring(conn, warmup)
    truth, unstable = measure_all(server, conn, keys, cluster)
    conn.close()
    return truth, unstable


def write_truth(args, keys, loaded, truth, repeat):
    path = os.path.join(args.out, f"{args.name}.truth.jsonl")
    with open(path, "w") as f:
        for i, k in enumerate(keys):
            enc, has_ttl = loaded[i]
            row = {"db": k["db"], "key_b64": base64.b64encode(k["key"]).decode(), "type": k["type"],
                   "bytes": truth[i], "encoding": enc, "ttl": has_ttl, "label": k["label"]}
            if repeat is not None:
                row["bytes_repeat"] = repeat[i]
            f.write(json.dumps(row) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server", required=True, help="path of redis-server / valkey-server")
    p.add_argument("--name", required=True, help="output file prefix, e.g. redis-7.2")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--cluster", action="store_true", help="cluster mode (db 0 only)")
    p.add_argument("--seed", type=int, default=1, help="dataset seed (default 1)")
    p.add_argument("--repeat", action="store_true",
                   help="also restart from the RDB, measure again and report keys that differ")
    run(p.parse_args())


if __name__ == "__main__":
    main()
