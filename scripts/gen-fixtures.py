#!/usr/bin/env python3
"""Generate the repository's own RDB fixtures with a real redis-server.

    python3 scripts/gen-fixtures.py [--out tests/fixtures] [--only NAME[,NAME...]] [--list]

For every scenario below the script starts a private `redis-server` (foreground child process, free
127.0.0.1 port, temporary directory, `--save "" --appendonly no`), fills it over a plain RESP socket,
runs SAVE and writes

    OUT/NAME.rdb              the file the server wrote
    OUT/NAME.expected.jsonl   one record per key, sorted by db then raw key bytes (the format of
                              ../shared/fixtures/README.md)
    OUT/NAME.meta.json        server version, configuration, what the file covers, oracle facts

The expected records never come from an RDB parser. They come from the server that wrote the file:
TYPE, OBJECT ENCODING (mapped to the on-disk encoding name), LLEN/SCARD/ZCARD/HLEN/XLEN,
PEXPIRETIME, OBJECT IDLETIME / OBJECT FREQ (read right before and right after SAVE; the file is only
accepted when both readings agree), and for strings DEBUG OBJECT's serializedlength (the length of
the value as rdb.c serialises it, which tells raw, int and LZF apart). Each file is then loaded by a
second, fresh redis-server with the same configuration and every record is checked again against
what that server reports. Quicklist node layouts (PLAIN / PACKED, LZF-compressed) come from
DEBUG QUICKLIST and are asserted per scenario.

Python 3.11 standard library only. Needs redis-server 7.0.x (Debian's 7.0.15 was used).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

# --------------------------------------------------------------------------------------------
# RESP client (binary safe)
# --------------------------------------------------------------------------------------------


class RespError(Exception):
    pass


def _b(x) -> bytes:
    if isinstance(x, bytes):
        return x
    if isinstance(x, (int, float)):
        return repr(x).encode() if isinstance(x, float) else str(x).encode()
    return str(x).encode()


class Redis:
    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=300)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rf = self.sock.makefile("rb", buffering=1 << 20)

    def close(self):
        try:
            self.rf.close()
            self.sock.close()
        except OSError:
            pass

    @staticmethod
    def encode(args) -> bytes:
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            a = _b(a)
            parts.append(b"$%d\r\n" % len(a))
            parts.append(a)
            parts.append(b"\r\n")
        return b"".join(parts)

    def read(self):
        line = self.rf.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RespError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.rf.read(n + 2)
            return data[:-2]
        if t == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self.read() for _ in range(n)]
        raise RespError(f"unexpected reply {line!r}")

    def cmd(self, *args):
        self.sock.sendall(self.encode(args))
        r = self.read()
        if isinstance(r, RespError):
            raise RespError(f"{args[:3]!r}...: {r}")
        return r

    def pipe(self, cmds, chunk: int = 1000):
        """Send many commands; raise on the first error reply."""
        out = []
        for i in range(0, len(cmds), chunk):
            part = cmds[i : i + chunk]
            self.sock.sendall(b"".join(self.encode(c) for c in part))
            for c in part:
                r = self.read()
                if isinstance(r, RespError):
                    raise RespError(f"{c[:3]!r}...: {r}")
                out.append(r)
        return out


# --------------------------------------------------------------------------------------------
# Server process
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """A foreground redis-server child. Its stdout (DEBUG QUICKLIST output) goes to a file."""

    def __init__(self, workdir: str, dbfilename: str, config: dict[str, str]):
        self.dir = workdir
        self.port = free_port()
        self.stdout_path = os.path.join(workdir, f"stdout-{self.port}.log")
        argv = [
            "redis-server",
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", workdir,
            "--dbfilename", dbfilename,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--enable-debug-command", "yes",
            "--logfile", "",
        ]
        for k, v in config.items():
            argv += [f"--{k}", str(v)]
        self.stdout = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.stdout, stderr=subprocess.STDOUT, cwd=workdir)
        deadline = time.time() + 60
        last = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited ({self.proc.returncode}); see {self.stdout_path}")
            try:
                self.r = Redis(self.port)
                self.r.cmd("PING")
                break
            except (OSError, RespError, ConnectionError) as e:  # LOADING or not up yet
                last = e
                time.sleep(0.05)
        else:
            self.proc.terminate()  # only the child we started
            self.proc.wait(timeout=10)
            raise RuntimeError(f"redis-server did not answer: {last}")

    def stop(self):
        try:
            self.r.sock.sendall(Redis.encode(["SHUTDOWN", "NOSAVE"]))
            self.r.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.terminate()  # only the child we started
            self.proc.wait(timeout=10)
        self.stdout.close()

    def stdout_text(self) -> str:
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


# --------------------------------------------------------------------------------------------
# Oracle: from live server state to expected records
# --------------------------------------------------------------------------------------------

# OBJECT ENCODING (Redis 7.0) -> on-disk encoding name (fixtures README table). Redis 7.0 writes
# lists as quicklist v2 (18), hashtable sets as 2, intsets as 11, listpack zsets as 17, skiplist
# zsets as ZSET_2 (5), listpack hashes as 16, hashtable hashes as 4, streams as STREAM_LISTPACKS_2 (19).
ENCODING_MAP = {
    ("list", "quicklist"): "quick_list2",
    ("set", "intset"): "int_set",
    ("set", "hashtable"): "raw",
    ("set", "listpack"): "list_pack",  # Redis >= 7.2 only; kept for completeness
    ("zset", "listpack"): "list_pack",
    ("zset", "skiplist"): "skip_list",
    ("hash", "listpack"): "list_pack",
    ("hash", "hashtable"): "raw",
    ("stream", "stream"): "list_packs2",
}

# key-name tags -> the on-disk encoding the scenario means to produce (asserted)
INTENDED = {b":lp:": "list_pack", b":skiplist:": "skip_list", b":intset:": "int_set", b"set:raw:": "raw",
            b"hash:raw:": "raw"}

COUNT_CMD = {"list": "LLEN", "set": "SCARD", "zset": "ZCARD", "hash": "HLEN", "stream": "XLEN"}


def rdb_len_size(n: int) -> int:
    """Bytes of an RDB length prefix (rdbSaveLen)."""
    if n < 1 << 6:
        return 1
    if n < 1 << 14:
        return 2
    if n <= 0xFFFFFFFF:
        return 5
    return 9


def int32_canonical(v: bytes) -> bool:
    """rdbTryIntegerEncoding: string2ll + ll2string round trip, then rdbEncodeInteger (int32)."""
    if len(v) > 11 or not re.fullmatch(rb"-?(0|[1-9][0-9]*)", v) or v == b"-0":
        return False
    return -(2**31) <= int(v) <= 2**31 - 1


def string_encoding(value: bytes, obj_encoding: str, serialized_len: int, compression: bool) -> str:
    """On-disk string encoding, decided by the server's own serialised length.

    DEBUG OBJECT's serializedlength is rdbSavedObjectLen(): the bytes rdb.c writes for the value.
    int  -> 1 encoding byte + 1/2/4 bytes; raw -> length prefix + bytes; lzf -> anything shorter.
    The value-based rule (rdb.c) must agree, otherwise the scenario is rejected.
    """
    L = len(value)
    raw_len = rdb_len_size(L) + L
    if int32_canonical(value) and (obj_encoding == "int" or L <= 11):
        want = "int"
        ok = serialized_len in (2, 3, 5)
    elif serialized_len == raw_len:
        want = "raw"
        ok = True
    elif serialized_len < raw_len and compression and L > 20:
        want = "lzf"
        ok = True
    else:
        want, ok = "?", False
    if not ok:
        raise AssertionError(
            f"string value of {L} bytes: serializedlength {serialized_len} does not fit the rdb.c rules"
        )
    return want


def scan_keys(r: Redis, db: int) -> list[bytes]:
    r.cmd("SELECT", db)
    keys, cursor = set(), b"0"
    while True:
        cursor, batch = r.cmd("SCAN", cursor, "COUNT", 1000)
        keys.update(batch)
        if cursor == b"0":
            break
    return sorted(keys)


def keyspace_dbs(r: Redis) -> list[int]:
    info = r.cmd("INFO", "keyspace").decode()
    return sorted(int(m.group(1)) for m in re.finditer(r"^db(\d+):keys=", info, re.M))


def lru_lfu_readings(r: Redis, keys: dict[int, list[bytes]], policy: str):
    """OBJECT IDLETIME / OBJECT FREQ for every key (these lookups do not touch the key)."""
    out = {}
    for db, ks in keys.items():
        r.cmd("SELECT", db)
        if "lru" in policy:
            vals = r.pipe([["OBJECT", "IDLETIME", k] for k in ks])
        elif "lfu" in policy:
            vals = r.pipe([["OBJECT", "FREQ", k] for k in ks])
        else:
            vals = [None] * len(ks)
        for k, v in zip(ks, vals):
            out[(db, k)] = v
    return out


def census(r: Redis, compression: bool) -> dict[tuple[int, bytes], dict]:
    """type/encoding/member_count/expire_at_ms of every key, as the server reports them.

    TYPE, OBJECT ENCODING, PEXPIRETIME and DEBUG OBJECT do not touch keys; LLEN & co. do (they
    change LRU/LFU data), so LRU/LFU readings are always taken after a census.
    """
    recs = {}
    for db in keyspace_dbs(r):
        ks = scan_keys(r, db)
        types = r.pipe([["TYPE", k] for k in ks])
        encs = r.pipe([["OBJECT", "ENCODING", k] for k in ks])
        pexp = r.pipe([["PEXPIRETIME", k] for k in ks])
        for k, t, e, px in zip(ks, types, encs, pexp):
            t = t if isinstance(t, str) else t.decode()
            e = e.decode() if isinstance(e, bytes) else e
            rec = {"type": t, "obj_encoding": e, "expire_at_ms": None if px < 0 else px}
            if t == "string":
                v = r.cmd("GET", k)
                dbg = r.cmd("DEBUG", "OBJECT", k)
                dbg = dbg.decode() if isinstance(dbg, bytes) else dbg
                sl = int(re.search(r"serializedlength:(\d+)", dbg).group(1))
                rec["encoding"] = string_encoding(v, e, sl, compression)
                rec["member_count"] = 1
                rec["serializedlength"] = sl
            else:
                rec["encoding"] = ENCODING_MAP[(t, e)]
                rec["member_count"] = r.cmd(COUNT_CMD[t], k)
            recs[(db, k)] = rec
    return recs


def record_json(db: int, key: bytes, rec: dict, idle, freq) -> str:
    o = {"db": db}
    try:
        o["key"] = key.decode("utf-8")
    except UnicodeDecodeError:
        o["key"] = key.decode("utf-8", "replace")
        o["key_b64"] = base64.b64encode(key).decode()
    o["type"] = rec["type"]
    o["encoding"] = rec["encoding"]
    o["member_count"] = rec["member_count"]
    o["expire_at_ms"] = rec["expire_at_ms"]
    o["idle_seconds"] = idle
    o["freq"] = freq
    return json.dumps(o, ensure_ascii=False)


def quicklist_layouts(stdout_text: str) -> list[list[dict]]:
    """Parse DEBUG QUICKLIST output (one dump per call, in call order)."""
    dumps = []
    for chunk in re.split(r"^\{count : \d+\}$", stdout_text, flags=re.M)[1:]:
        nodes = []
        for m in re.finditer(
            r"\{container : (\w+), encoding: (\w+), size: (\d+), count: (\d+)", chunk
        ):
            nodes.append({"container": m.group(1), "encoding": m.group(2), "size": int(m.group(3)), "count": int(m.group(4))})
        dumps.append(nodes)
    return dumps


# --------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------

FAR_FUTURE_S = 4102444800  # 2100-01-01T00:00:00Z


@dataclass
class Ctx:
    r: Redis
    rng: random.Random
    quicklists: list[tuple[int, bytes]] = field(default_factory=list)  # (db, key) to DEBUG QUICKLIST
    facts: dict = field(default_factory=dict)

    def select(self, db: int):
        self.r.cmd("SELECT", db)


@dataclass
class Scenario:
    name: str
    covers: str
    config: dict[str, str]
    fill: Callable[[Ctx], None]
    # runs after the census, right before the LRU/LFU readings and SAVE
    after_census: Callable[[Ctx], None] | None = None
    # assertions on quicklist layouts: {(db, key): predicate(nodes) -> bool}
    ql_checks: dict = field(default_factory=dict)
    # config the loading server needs (beyond `config`), read back from the writer
    carry_config: tuple[str, ...] = ()
    # (bytes, must_be_present): cheap evidence in the file for how rdb.c encoded keys/values
    # (no parsing: a substring search)
    byte_checks: tuple[tuple[bytes, bool], ...] = ()


def incompressible(rng: random.Random, n: int) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(n))


def text_blob(n: int, seed: str = "") -> bytes:
    base = (f"The quick brown fox {seed} jumps over the lazy dog. " * (n // 40 + 1)).encode()
    return base[:n]


INT_KEYS = [
    b"-1", b"-200", b"70000", b"-2147483648", b"0", b"127", b"-128", b"128", b"-129",
    b"32767", b"-32768", b"32768", b"65535", b"2147483647",
    # not representable as int32 / not canonical: stored as raw strings
    b"2147483648", b"-2147483649", b"12345678901", b"007", b"-0", b"+1", b"1.5",
]

# rdb.c writes integer-looking keys/values as 0xC0 int8 / 0xC1 int16 / 0xC2 int32 (little-endian)
# and never as the length-prefixed text; the others stay length-prefixed text.
INT_KEY_BYTES = (
    (b"\xc0\xff", True), (b"\x02-1", False),                               # -1
    (b"\xc1\x38\xff", True), (b"\x04-200", False),                         # -200
    (b"\xc2\x70\x11\x01\x00", True), (b"\x0570000", False),               # 70000
    (b"\xc2\x00\x00\x00\x80", True), (b"\x0b-2147483648", False),          # -2147483648
    (b"\x0a2147483648", True), (b"\x03007", True), (b"\x02-0", True),        # raw
)

BINARY_KEYS = [
    b"\xff\xfe\xfd",
    b"bin:\x80\x00\xc3",
    b"\xc3\x28",
    b"\xed\xa0\x80surrogate",
    b"trunc:\xf0\x9f\x94",
    b"\x00",
    b"ctl:\x00\x01\n\t\x7f",
]


def fill_strings(c: Ctx, compression: bool):
    """Strings and keys of every on-disk form (the LZF candidates are raw when compression is off)."""
    r, rng = c.r, c.rng
    cmds = [
        ["SET", "str:short", "hello"],
        ["SET", "str:empty", ""],
        ["SET", "str:int:42", "42"],
        ["SET", "str:int:-5", "-5"],
        ["SET", "str:int:-200", "-200"],
        ["SET", "str:int:70000", "70000"],
        ["SET", "str:int:min32", "-2147483648"],
        ["SET", "str:int:max32", "2147483647"],
        ["SET", "str:int:2^31", "2147483648"],  # OBJECT ENCODING int, written as a raw string
        ["SET", "str:int:max64", "9223372036854775807"],
        ["SET", "str:int:min64", "-9223372036854775808"],
        ["SET", "str:leading-zero", "007"],
        ["SET", "str:float", "3.14"],
        ["SET", "str:len20", b"a" * 20],  # LZF is only tried above 20 bytes
        ["SET", "str:len21", b"a" * 21],
        ["SET", "str:text:1k", text_blob(1000)],
        ["SET", "str:text:big", text_blob(100_000 if compression else 20_000, "x")],
        ["SET", "str:random:100", incompressible(rng, 100)],
        ["SET", "str:random:5000", incompressible(rng, 5000)],
        ["SET", "str:binary", bytes(range(256))],
        ["SET", "str:utf8", "héllo ключ 🔑"],
        ["SET", "ключ-🔑", "utf-8 key"],
        ["SET", b"k" * 40 + b":compressible-key", "the key itself is LZF-compressed on disk"],
        ["SET", b"long-key:" + text_blob(300, "key"), "v"],
        ["SET", b"rk:" + incompressible(rng, 40), "random binary key"],
    ]
    for i, k in enumerate(INT_KEYS):
        cmds.append(["SET", k, f"integer-looking key #{i}"])
    for i, k in enumerate(BINARY_KEYS):
        cmds.append(["SET", k, str(i)])
    r.pipe(cmds)
    # integer keys with integer and compressible values
    r.pipe([["SET", b"intkey:" + k, k] for k in INT_KEYS])


def fill_lists(c: Ctx):
    r, rng = c.r, c.rng
    r.cmd("RPUSH", "list:small", "a", "b", "-1", "70000", "9223372036854775807", "")
    r.pipe([["RPUSH", "list:multi", f"element-{i}"] for i in range(5000)])
    r.pipe([["RPUSH", "list:ints", i * 37 - 100000] for i in range(3000)])
    # A 10 KB element with the default packed threshold (1 GB): a PACKED node holding one entry,
    # because it does not fit the 8 KB limit of list-max-listpack-size -2.
    r.cmd("RPUSH", "list:big-elem-packed", "head", incompressible(rng, 10_000), "tail")
    r.cmd("RPUSH", "-7", "integer-encoded key", "of a list")
    r.cmd("RPUSH", BINARY_KEYS[0], "binary key list")
    # Redis 7.0 creates PLAIN nodes only for elements >= the packed threshold (1 GB by default,
    # settable with DEBUG QUICKLIST-PACKED-THRESHOLD); lower it to 1000 bytes.
    r.cmd("DEBUG", "QUICKLIST-PACKED-THRESHOLD", 1000)
    r.cmd("RPUSH", "list:plain", "a", "b", incompressible(rng, 10_000), "c", text_blob(2000, "p"), "d")
    r.cmd("RPUSH", "list:plain-only", incompressible(rng, 10_000))
    r.cmd("DEBUG", "QUICKLIST-PACKED-THRESHOLD", 0)  # back to 1 GB
    c.quicklists += [(0, b"list:small"), (0, b"list:multi"), (0, b"list:big-elem-packed"),
                     (0, b"list:plain"), (0, b"list:plain-only")]


def fill_lists_compressed(c: Ctx):
    r, rng = c.r, c.rng
    r.pipe([["RPUSH", "list:compressed", f"compressible element number {i:06d} " + "z" * 40] for i in range(5000)])
    r.pipe([["RPUSH", "list:incompressible", incompressible(rng, 100)] for i in range(250)])
    r.pipe([["RPUSH", "list:two-nodes", text_blob(100, str(i))] for i in range(120)])
    r.cmd("RPUSH", "list:one-node", "a", "b", "c")
    r.cmd("DEBUG", "QUICKLIST-PACKED-THRESHOLD", 1000)
    r.cmd("RPUSH", "list:plain-compressed", "first", text_blob(10_000, "a"), text_blob(10_000, "b"),
          text_blob(10_000, "c"), "last")
    r.cmd("DEBUG", "QUICKLIST-PACKED-THRESHOLD", 0)
    c.quicklists += [(0, b"list:compressed"), (0, b"list:incompressible"), (0, b"list:two-nodes"),
                     (0, b"list:one-node"), (0, b"list:plain-compressed")]


def fill_sets(c: Ctx):
    r, rng = c.r, c.rng
    r.cmd("SADD", "set:intset:small", 1, 2, 3)
    r.cmd("SADD", "set:intset:int16", -32768, -1, 0, 32767)
    r.cmd("SADD", "set:intset:int32", -2147483648, -200, 70000, 2147483647)
    r.cmd("SADD", "set:intset:int64", -9223372036854775808, -1, 9223372036854775807)
    r.cmd("SADD", "set:raw:strings", "a", "b", "c")
    r.cmd("SADD", "set:raw:mixed", 1, 2, "three")
    r.pipe([["SADD", "set:raw:ints-over-limit", i] for i in range(600)])  # > set-max-intset-entries
    r.pipe([["SADD", "set:raw:many", f"member:{i}"] for i in range(1000)])
    r.cmd("SADD", "set:raw:binary", b"\x00\xff", b"\x80", incompressible(rng, 64))
    r.cmd("SADD", "-2147483648", 5, 6)  # integer-encoded key
    r.cmd("SADD", BINARY_KEYS[2], "x")


def fill_zsets(c: Ctx):
    r = c.r
    r.cmd("ZADD", "zset:lp:small", 1, "a", 2.5, "b", -3, "c")
    r.cmd("ZADD", "zset:lp:special-scores", "+inf", "pinf", "-inf", "ninf", 0, "zero",
          1e300, "huge", -1.5e-300, "tiny", 9007199254740993, "bigint")
    r.cmd("ZADD", "zset:lp:int-members", 1, 1, 2, -200, 3, 70000, 4, 9223372036854775807)
    r.cmd("ZADD", "zset:skiplist:long-member", 1, "m" * 100, 2, "short")  # > zset-max-listpack-value
    r.pipe([["ZADD", "zset:skiplist:many", i, f"member:{i}"] for i in range(200)])  # > 128 entries
    r.cmd("ZADD", "zset:skiplist:special-scores", "+inf", "x" * 80, "-inf", "ninf", 0.1, "f")
    r.cmd("ZADD", "70000", 1, "integer-encoded key")
    r.cmd("ZADD", BINARY_KEYS[1], 1, "a")


def fill_hashes(c: Ctx):
    r, rng = c.r, c.rng
    r.cmd("HSET", "hash:lp:small", "f1", "v1", "f2", "v2", "f3", "v3")
    r.cmd("HSET", "hash:lp:ints", 1, -1, -200, 70000, 9223372036854775807, -9223372036854775808, "empty", "")
    r.cmd("HSET", "hash:raw:long-value", "f", "v" * 100, "g", "w")  # > hash-max-listpack-value
    r.cmd("HSET", "hash:raw:long-field", "f" * 65, "v")
    r.pipe([["HSET", "hash:raw:many", f"field:{i}", i] for i in range(600)])  # > 512 entries
    r.cmd("HSET", "hash:raw:binary", b"\xff", incompressible(rng, 100), "text", text_blob(500))
    r.cmd("HSET", "-200", "integer-encoded", "key")
    r.cmd("HSET", BINARY_KEYS[3], "a", "b")


BIG_N = 70000


def fill_bigcount(c: Ctx):
    """Listpacks with more than 65535 entries (the 16-bit header count saturates at 65535).

    Inserting 70000 entries into a listpack one by one is quadratic, so each key is built in its
    default hashtable/skiplist encoding, then the thresholds are raised and the key is re-created
    with DUMP + RESTORE: the server converts it while loading the payload (rdbLoadObject).
    """
    r = c.r

    def restore_converted(key):
        payload = r.cmd("DUMP", key)
        r.cmd("RESTORE", key, 0, payload, "REPLACE")

    def hset_bulk(key, n):
        for start in range(0, n, 5000):
            args = ["HSET", key]
            for i in range(start, min(n, start + 5000)):
                args += [i, 0]
            r.cmd(*args)

    def zadd_bulk(key, n):
        for start in range(0, n, 5000):
            args = ["ZADD", key]
            for i in range(start, min(n, start + 5000)):
                args += [0, i]
            r.cmd(*args)

    hset_bulk("hash:lp:70000-fields", BIG_N)  # 140000 listpack entries: header count saturated
    hset_bulk("hash:lp:32767-fields", 32767)  # 65534 entries: the largest exact header count
    zadd_bulk("zset:lp:70000-members", BIG_N)  # 140000 entries: saturated
    # Redis 7.0 has no listpack-encoded sets (set-max-listpack-entries arrived in 7.2) and the
    # intset count is 32 bits, so no saturated set exists in 7.0. A 70000-member intset would cost
    # ~280 KB of incompressible fixture and test nothing new: r7-sets covers intsets.
    r.cmd("CONFIG", "SET", "hash-max-listpack-entries", 100000)
    r.cmd("CONFIG", "SET", "zset-max-listpack-entries", 100000)
    for k in ["hash:lp:70000-fields", "hash:lp:32767-fields", "zset:lp:70000-members"]:
        restore_converted(k)
    # a list of 70000 (identical, so the fixture stays small) elements spread over many nodes
    r.pipe([["RPUSH", "list:70000", *(["x"] * 5000)] for _ in range(0, BIG_N, 5000)])


def fill_streams(c: Ctx):
    r = c.r
    r.pipe([["XADD", "stream:basic", "*", "field", i, "other", "x"] for i in range(10)])
    r.cmd("XADD", "stream:explicit-ids", "1-1", "a", "1")
    r.cmd("XADD", "stream:explicit-ids", "1-2", "b", "2", "c", "3")  # fields differ from the master entry
    r.cmd("XADD", "stream:explicit-ids", "5-0", "a", "1")
    r.pipe([["XADD", "stream:deleted", f"{i + 1}-0", "n", i] for i in range(100)])
    r.pipe([["XDEL", "stream:deleted", f"{i + 1}-0"] for i in range(0, 100, 3)])  # 34 deleted -> 66
    r.pipe([["XADD", "stream:groups", f"{i + 1}-0", "n", i] for i in range(50)])
    r.cmd("XGROUP", "CREATE", "stream:groups", "g1", "0")
    r.cmd("XGROUP", "CREATE", "stream:groups", "g2", "$")
    r.cmd("XREADGROUP", "GROUP", "g1", "alice", "COUNT", 10, "STREAMS", "stream:groups", ">")
    r.cmd("XREADGROUP", "GROUP", "g1", "bob", "COUNT", 5, "STREAMS", "stream:groups", ">")
    r.cmd("XACK", "stream:groups", "g1", "1-0", "2-0", "3-0")
    r.cmd("XCLAIM", "stream:groups", "g1", "bob", 0, "4-0")
    r.cmd("XGROUP", "CREATECONSUMER", "stream:groups", "g2", "idle-consumer")
    r.cmd("XDEL", "stream:groups", "5-0")  # a PEL entry whose message is gone
    r.cmd("XGROUP", "CREATE", "stream:empty-mkstream", "g", "$", "MKSTREAM")
    r.pipe([["XADD", "stream:trimmed-to-zero", "*", "n", i] for i in range(5)])
    r.cmd("XTRIM", "stream:trimmed-to-zero", "MAXLEN", 0)
    r.pipe([["XADD", "stream:many-nodes", "*", "n", i, "payload", "p" * 20] for i in range(1000)])
    r.pipe([["XADD", "stream:big-values", "*", "blob", text_blob(1000, str(i))] for i in range(50)])
    r.cmd("XADD", "12345", "*", "k", "integer-encoded key")
    r.cmd("XADD", BINARY_KEYS[4], "*", "k", "binary key")
    groups = []
    for g in r.cmd("XINFO", "GROUPS", "stream:groups"):
        d = {g[i].decode(): g[i + 1] for i in range(0, len(g), 2)}
        groups.append({k: (v.decode() if isinstance(v, bytes) else v) for k, v in d.items() if k != "lag"})
    c.facts["stream:groups"] = groups
    for k in ["stream:many-nodes", "stream:big-values", "stream:deleted", "stream:trimmed-to-zero"]:
        info = r.cmd("XINFO", "STREAM", k)
        d = {info[i].decode(): info[i + 1] for i in range(0, len(info), 2)}
        c.facts[k] = {f: d[f] for f in ("length", "radix-tree-keys", "radix-tree-nodes", "entries-added")}


def fill_expiry(c: Ctx):
    r = c.r
    cmds = [
        ["SET", "ttl:expire-seconds", "v"], ["EXPIRE", "ttl:expire-seconds", 3600],
        ["SET", "ttl:expireat", "v"], ["EXPIREAT", "ttl:expireat", FAR_FUTURE_S],
        ["SET", "ttl:pexpire", "v"], ["PEXPIRE", "ttl:pexpire", 123456789],
        ["SET", "ttl:pexpireat", "v"], ["PEXPIREAT", "ttl:pexpireat", FAR_FUTURE_S * 1000 + 123],
        ["SET", "ttl:set-ex", "v", "EX", 86400],
        ["SET", "ttl:set-pxat", "v", "PXAT", FAR_FUTURE_S * 1000 + 999],
        ["SET", "ttl:persisted", "v"], ["EXPIRE", "ttl:persisted", 100], ["PERSIST", "ttl:persisted"],
        ["SET", "nottl:string", "v"],
        ["RPUSH", "ttl:list", "a", "b"], ["PEXPIREAT", "ttl:list", FAR_FUTURE_S * 1000 + 1],
        ["SADD", "ttl:set", 1, 2, 3], ["EXPIREAT", "ttl:set", FAR_FUTURE_S + 1],
        ["ZADD", "ttl:zset", 1, "a"], ["EXPIREAT", "ttl:zset", FAR_FUTURE_S + 2],
        ["HSET", "ttl:hash", "f", "v"], ["EXPIREAT", "ttl:hash", FAR_FUTURE_S + 3],
        ["XADD", "ttl:stream", "1-0", "f", "v"], ["EXPIREAT", "ttl:stream", FAR_FUTURE_S + 4],
        ["SET", "-1", "int key with ttl"], ["EXPIREAT", "-1", FAR_FUTURE_S + 5],
        ["SET", BINARY_KEYS[0], "binary key with ttl"], ["PEXPIREAT", BINARY_KEYS[0], FAR_FUTURE_S * 1000 + 6],
        ["SELECT", 3],
        ["SET", "db3:ttl", "v"], ["EXPIREAT", "db3:ttl", FAR_FUTURE_S + 7],
        ["SET", "db3:nottl", "v"],
    ]
    r.pipe(cmds)


def fill_multidb(c: Ctx):
    r = c.r
    r.pipe([
        ["SET", "same", "db0 string"], ["SET", "db0:only", "x"],
        ["SELECT", 1], ["RPUSH", "same", "db1", "list"], ["SET", "-1", "int key in db1"],
        ["SELECT", 2], ["HSET", "same", "db", 2],
        ["SELECT", 7], ["SADD", "same", 7], ["SET", BINARY_KEYS[1], "binary key in db7"],
        ["SELECT", 15], ["ZADD", "same", 15, "db"], ["SET", "db15:ttl", "v"], ["EXPIREAT", "db15:ttl", FAR_FUTURE_S],
    ])
    r.cmd("SELECT", 1)
    r.pipe([["SET", f"db1:k{i}", i] for i in range(100)])


def fill_functions(c: Ctx):
    r = c.r
    lib = "#!lua name=fxlib\nredis.register_function('fx_hello', function(keys, args) return 'hello' end)\n"
    r.cmd("FUNCTION", "LOAD", lib)
    lib2 = ("#!lua name=fxlib2\nredis.register_function{function_name='fx_ro', "
            "callback=function(keys, args) return #keys end, flags={'no-writes'}}\n")
    r.cmd("FUNCTION", "LOAD", lib2)
    r.cmd("SET", "fn:key", "a key next to two function libraries")
    r.cmd("HSET", "fn:hash", "f", "v")


def fill_expired(c: Ctx):
    """Keys whose expiry passes between the census and SAVE: they are in the file, a loading
    master drops them, a parser must still report them."""
    r = c.r
    r.cmd("DEBUG", "SET-ACTIVE-EXPIRE", 0)  # only lazy expiry, and nothing looks the keys up
    deadline = int(time.time() * 1000) + 1500
    r.pipe([
        ["SET", "expired:string", "v"], ["PEXPIREAT", "expired:string", deadline],
        ["HSET", "expired:hash", "f", "v"], ["PEXPIREAT", "expired:hash", deadline + 1],
        ["RPUSH", "expired:list", "a"], ["PEXPIREAT", "expired:list", deadline + 2],
        ["SET", "-1", "expired int key"], ["PEXPIREAT", "-1", deadline + 3],
        ["SET", "alive:ttl", "v"], ["EXPIREAT", "alive:ttl", FAR_FUTURE_S],
        ["SET", "alive:nottl", "v"],
    ])
    c.facts["expire_deadline_ms"] = deadline


def after_expired(c: Ctx):
    wait = c.facts["expire_deadline_ms"] / 1000 + 0.5 - time.time()
    if wait < 0.2:
        raise RuntimeError("census too slow: the keys expired before it finished")
    time.sleep(wait)


def fill_empty(c: Ctx):
    pass


def fill_lru(c: Ctx):
    r = c.r
    r.pipe([
        ["SET", "lru:fresh", "v"],
        ["SET", "lru:idle1", "v"], ["SET", "lru:idle1000", "v"], ["SET", "lru:idle100000", "v"],
        ["SET", "lru:idle10000000", "v"],
        ["RPUSH", "lru:list", "a", "b"], ["SADD", "lru:set", "a", 1], ["ZADD", "lru:zset", 1, "a"],
        ["HSET", "lru:hash", "f", "v"], ["XADD", "lru:stream", "1-0", "f", "v"],
        ["SET", "lru:ttl", "v"], ["EXPIREAT", "lru:ttl", FAR_FUTURE_S],
        ["SET", "-1", "int key"],
        ["SELECT", 1], ["SET", "lru:db1", "v"],
    ])


LRU_IDLE = {b"lru:idle1": 1, b"lru:idle1000": 1000, b"lru:idle100000": 100000,
            b"lru:idle10000000": 10000000, b"lru:list": 500, b"lru:hash": 60, b"lru:ttl": 7,
            b"-1": 42}


def after_lru(c: Ctx):
    """Set idle times with RESTORE ... IDLETIME (after the census, whose LLEN & co. touch keys)."""
    r = c.r
    r.cmd("SELECT", 0)
    for k, idle in LRU_IDLE.items():
        payload = r.cmd("DUMP", k)
        # keep an existing expiry: PEXPIREAT after RESTORE would touch the key, so pass it as ABSTTL
        px = r.cmd("PEXPIRETIME", k)
        ttl = ["0"] if px < 0 else [px, "ABSTTL"]
        r.cmd("RESTORE", k, *ttl[:1], payload, "REPLACE", *ttl[1:], "IDLETIME", idle)


def fill_lfu(c: Ctx):
    r = c.r
    r.pipe([
        ["SET", "lfu:fresh", "v"],
        ["SET", "lfu:freq0", "v"], ["SET", "lfu:freq1", "v"], ["SET", "lfu:freq5", "v"],
        ["SET", "lfu:freq100", "v"], ["SET", "lfu:freq255", "v"],
        ["SET", "lfu:touched", "v"],
        ["RPUSH", "lfu:list", "a", "b"], ["SADD", "lfu:set", "a", 1], ["ZADD", "lfu:zset", 1, "a"],
        ["HSET", "lfu:hash", "f", "v"], ["XADD", "lfu:stream", "1-0", "f", "v"],
        ["SET", "lfu:ttl", "v"], ["EXPIREAT", "lfu:ttl", FAR_FUTURE_S],
        ["SET", "70000", "int key"],
        ["SELECT", 1], ["SET", "lfu:db1", "v"],
    ])


LFU_FREQ = {b"lfu:freq0": 0, b"lfu:freq1": 1, b"lfu:freq5": 5, b"lfu:freq100": 100,
            b"lfu:freq255": 255, b"lfu:zset": 17, b"70000": 3}


def after_lfu(c: Ctx):
    r = c.r
    r.cmd("SELECT", 0)
    for k, freq in LFU_FREQ.items():
        payload = r.cmd("DUMP", k)
        r.cmd("RESTORE", k, 0, payload, "REPLACE", "FREQ", freq)
    for _ in range(30):  # the logarithmic counter grows with accesses (probabilistically)
        r.cmd("GET", "lfu:touched")


SCENARIOS = [
    Scenario("r7-strings", "strings raw/int/lzf (rdbcompression yes): int8/16/32 values, int-looking values "
             "outside int32 or non-canonical (raw), LZF only above 20 bytes, incompressible values; "
             "integer-encoded keys (-1, -200, 70000, -2147483648, ...), keys that look numeric but are "
             "raw, LZF-compressed keys, UTF-8 and non-UTF-8 (key_b64) keys",
             {"rdbcompression": "yes"}, lambda c: fill_strings(c, True),
             byte_checks=INT_KEY_BYTES + ((b"k" * 40, False), (text_blob(120, "x"), False))),
    Scenario("r7-strings-nocompress", "the same strings and keys with rdbcompression no: no LZF anywhere",
             {"rdbcompression": "no"}, lambda c: fill_strings(c, False),
             byte_checks=INT_KEY_BYTES + ((b"\x39" + b"k" * 40 + b":compressible-key", True),
                                          (b"\x41\x35long-key:The quick brown fox", True),
                                          (text_blob(120, "x"), True))),
    Scenario("r7-lists", "quicklist v2 (type 18): PACKED nodes (one and many), a 10 KB element in its own "
             "PACKED node, PLAIN nodes (DEBUG QUICKLIST-PACKED-THRESHOLD 1000), LZF-compressed node "
             "listpacks via rdbcompression yes, integer and binary keys",
             {"rdbcompression": "yes", "list-max-listpack-size": "-2", "list-compress-depth": "0"},
             fill_lists,
             ql_checks={
                 (0, b"list:multi"): lambda ns: len(ns) > 1 and all(n["container"] == "PACKED" for n in ns),
                 (0, b"list:big-elem-packed"): lambda ns: any(n["container"] == "PACKED" and n["count"] == 1 and n["size"] > 10000 for n in ns),
                 (0, b"list:plain"): lambda ns: sum(n["container"] == "PLAIN" for n in ns) == 2
                 and any(n["container"] == "PACKED" for n in ns),
                 (0, b"list:plain-only"): lambda ns: [n["container"] for n in ns] == ["PLAIN"],
             }),
    Scenario("r7-lists-compressed", "list-compress-depth 1 with rdbcompression no: interior quicklist nodes "
             "are LZF-compressed in memory and written as LZF blobs anyway; incompressible nodes stay raw; "
             "compressed PLAIN nodes",
             {"rdbcompression": "no", "list-max-listpack-size": "-2", "list-compress-depth": "1"},
             fill_lists_compressed,
             # head node raw (rdbcompression no), interior nodes LZF although rdbcompression is no
             byte_checks=((b"compressible element number 000000 ", True),
                          (b"compressible element number 002500 ", False)),
             ql_checks={
                 (0, b"list:compressed"): lambda ns: len(ns) > 3 and all(n["encoding"] == "LZF" for n in ns[1:-1])
                 and ns[0]["encoding"] == "RAW" and ns[-1]["encoding"] == "RAW",
                 (0, b"list:incompressible"): lambda ns: len(ns) >= 3 and all(n["encoding"] == "RAW" for n in ns),
                 (0, b"list:two-nodes"): lambda ns: len(ns) == 2 and all(n["encoding"] == "RAW" for n in ns),
                 (0, b"list:plain-compressed"): lambda ns: any(n["container"] == "PLAIN" and n["encoding"] == "LZF" for n in ns),
             }),
    Scenario("r7-sets", "sets: intset with 16/32/64-bit members (type 11), hashtable sets (type 2) by "
             "content and by count (> set-max-intset-entries); Redis 7.0 has no listpack sets",
             {"rdbcompression": "yes"}, fill_sets),
    Scenario("r7-zsets", "zsets: listpack (type 17) incl. inf/-inf and integer members, skiplist (ZSET_2, type 5) "
             "by member length and by count",
             {"rdbcompression": "yes"}, fill_zsets),
    Scenario("r7-hashes", "hashes: listpack (type 16) incl. integer fields/values and empty values, hashtable "
             "(type 4) by value length, field length and count",
             {"rdbcompression": "yes"}, fill_hashes),
    Scenario("r7-bigcount", "listpacks whose 16-bit entry count is saturated (65535): a hash with 70000 fields "
             "and a zset with 70000 members (140000 entries each), a hash with 32767 fields (65534 entries, "
             "the largest exact count); a 70000-element list (many nodes); all LZF-compressed",
             {"rdbcompression": "yes"}, fill_bigcount,
             carry_config=("hash-max-listpack-entries", "zset-max-listpack-entries")),
    Scenario("r7-streams", "streams (type 19, STREAM_LISTPACKS_2): explicit ids with differing fields, deleted "
             "entries (length < entries in the listpacks), consumer groups with PEL and consumers (incl. a PEL "
             "entry whose message was deleted and a consumer without PEL), MKSTREAM-empty stream, stream "
             "trimmed to length 0, many listpack nodes, LZF-compressed node listpacks",
             {"rdbcompression": "yes"}, fill_streams),
    Scenario("r7-expiry", "EXPIRETIME_MS on every type: EXPIRE (seconds), EXPIREAT, PEXPIRE, PEXPIREAT, SET EX/PXAT, "
             "PERSIST removes it; integer and binary keys with expiry; a second db",
             {"rdbcompression": "yes"}, fill_expiry),
    Scenario("r7-multidb", "SELECTDB/RESIZEDB for dbs 0, 1, 2, 7 and 15; the same key name in several dbs "
             "with different types",
             {"rdbcompression": "yes"}, fill_multidb),
    Scenario("r7-functions", "FUNCTION2 opcode (0xF5): two Lua libraries before the keys; records are the keys only",
             {"rdbcompression": "yes"}, fill_functions),
    Scenario("r7-expired", "keys whose expiry passed before SAVE (active expiry off): in the file with their "
             "EXPIRETIME_MS although a loading server drops them (redis-check-rdb: 4 already expired); live keys next "
             "to them",
             {"rdbcompression": "yes"}, fill_expired, after_census=after_expired),
    Scenario("r7-empty", "no keys at all (AUX fields then EOF); the expected file is empty",
             {"rdbcompression": "yes"}, fill_empty),
    Scenario("r7-lru", "maxmemory-policy allkeys-lru: an IDLE opcode before every key (0, 1, 7, 42, 60, 500, 1000, "
             "100000, 10000000 s set with RESTORE IDLETIME), every type, a key with expiry, a second db",
             {"rdbcompression": "yes", "maxmemory-policy": "allkeys-lru"}, fill_lru, after_census=after_lru),
    Scenario("r7-lfu", "maxmemory-policy allkeys-lfu (lfu-decay-time 0): a FREQ opcode before every key (0, 1, 3, "
             "5, 17, 100, 255 set with RESTORE FREQ; fresh keys at LFU_INIT_VAL 5 or just above; a key read "
             "30 times), every type, a second db",
             {"rdbcompression": "yes", "maxmemory-policy": "allkeys-lfu", "lfu-decay-time": "0"},
             fill_lfu, after_census=after_lfu),
]


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def server_version() -> str:
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=True).stdout
    return re.search(r"v=(\S+)", out).group(1)


def generate(sc: Scenario, outdir: str, version: str) -> dict:
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix=f"gen-fixtures-{sc.name}-")
    try:
        return _generate(sc, outdir, version, tmp, t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _generate(sc: Scenario, outdir: str, version: str, tmp: str, t0: float) -> dict:
    compression = sc.config.get("rdbcompression", "yes") == "yes"
    policy = sc.config.get("maxmemory-policy", "noeviction")
    wdir = os.path.join(tmp, "writer")
    os.makedirs(wdir)
    srv = Server(wdir, "dump.rdb", sc.config)
    try:
        ctx = Ctx(srv.r, random.Random(f"rdbinsight-fixture-{sc.name}"))
        sc.fill(ctx)
        srv.r.cmd("SELECT", 0)
        writer_recs = census(srv.r, compression)
        if sc.after_census:
            sc.after_census(ctx)
            # type/encoding/count/expiry must be unchanged by the LRU/LFU adjustments
            now_ms = time.time() * 1000
            for (db, k), rec in writer_recs.items():
                if rec["expire_at_ms"] is not None and rec["expire_at_ms"] < now_ms + 5000:
                    continue  # looking it up would expire (delete) it
                srv.r.cmd("SELECT", db)
                assert srv.r.cmd("TYPE", k) == rec["type"], (db, k)
                enc = srv.r.cmd("OBJECT", "ENCODING", k).decode()
                assert enc == rec["obj_encoding"], (db, k, enc)
                px = srv.r.cmd("PEXPIRETIME", k)
                assert (None if px < 0 else px) == rec["expire_at_ms"], (db, k, px)
        keys = {}
        for (db, k) in writer_recs:
            keys.setdefault(db, []).append(k)
        for db in keys:
            keys[db].sort()
        # LRU/LFU values: read, SAVE, read again; accept only if nothing moved in between.
        for attempt in range(10):
            before = lru_lfu_readings(srv.r, keys, policy)
            srv.r.cmd("SAVE")
            after = lru_lfu_readings(srv.r, keys, policy)
            if before == after:
                break
            time.sleep(0.3)
        else:
            raise RuntimeError(f"{sc.name}: idle/freq readings kept changing across SAVE")
        ql_dumps_keys = list(ctx.quicklists)
        for db, k in ql_dumps_keys:
            srv.r.cmd("SELECT", db)
            srv.r.cmd("DEBUG", "QUICKLIST", k, 0)
        carried = {}
        for p in sc.carry_config:
            carried[p] = srv.r.cmd("CONFIG", "GET", p)[1].decode()
    finally:
        srv.stop()
    layouts = dict(zip(ql_dumps_keys, quicklist_layouts(srv.stdout_text())))
    for key, pred in sc.ql_checks.items():
        if not pred(layouts.get(key, [])):
            raise AssertionError(f"{sc.name}: quicklist layout of {key} not as intended: {layouts.get(key)}")

    # Keys named after the encoding they are meant to exercise must have it.
    for (db, k), rec in writer_recs.items():
        for tag, enc in INTENDED.items():
            if tag in k and rec["encoding"] != enc:
                raise AssertionError(f"{sc.name}: {k!r} is {rec['encoding']}, meant to be {enc}")

    rdb = os.path.join(wdir, "dump.rdb")
    with open(rdb, "rb") as f:
        data = f.read()
    if data[:9] != b"REDIS0010":
        raise AssertionError(f"{sc.name}: unexpected header {data[:9]!r}")

    for needle, present in sc.byte_checks:
        if (needle in data) != present:
            raise AssertionError(f"{sc.name}: {needle!r} {'missing from' if present else 'found in'} the file")

    idle_freq = {}
    for (db, k) in writer_recs:
        v = after[(db, k)]
        idle_freq[(db, k)] = (v if "lru" in policy else None, v if "lfu" in policy else None)

    # Second oracle: a fresh server loads the file with the same configuration.
    vdir = os.path.join(tmp, "reader")
    os.makedirs(vdir)
    shutil.copy(rdb, os.path.join(vdir, "load.rdb"))
    vconf = dict(sc.config)
    vconf.update(carried)
    t_load = time.time()
    vsrv = Server(vdir, "load.rdb", vconf)
    try:
        vkeys = {db: scan_keys(vsrv.r, db) for db in keyspace_dbs(vsrv.r)}
        loaded_lf = lru_lfu_readings(vsrv.r, vkeys, policy)  # before the census touches keys
        elapsed = int(time.time() - t_load) + 2
        reader_recs = census(vsrv.r, compression)
    finally:
        vsrv.stop()
    load_ms = int(t_load * 1000)
    expired = {dk for dk, w in writer_recs.items() if w["expire_at_ms"] is not None and w["expire_at_ms"] < load_ms}
    if set(reader_recs) != set(writer_recs) - expired:
        raise AssertionError(f"{sc.name}: key sets differ: {set(reader_recs) ^ (set(writer_recs) - expired)}")
    # Third source: redis-check-rdb's key, expiry and already-expired counts for the file.
    check = subprocess.run(["redis-check-rdb", rdb], capture_output=True, text=True)
    got = {m.group(2): int(m.group(1)) for m in re.finditer(r"\[info\] (\d+) (keys read|expires|already expired)", check.stdout + check.stderr)}
    want = {"keys read": len(writer_recs),
            "expires": sum(w["expire_at_ms"] is not None for w in writer_recs.values()),
            "already expired": len(expired)}
    if check.returncode != 0 or got != want:
        raise AssertionError(f"{sc.name}: redis-check-rdb says {got} (exit {check.returncode}), records say {want}")
    for dk, w in writer_recs.items():
        if dk in expired:
            continue
        rd = reader_recs[dk]
        for f_ in ("type", "encoding", "member_count", "expire_at_ms"):
            if w[f_] != rd[f_]:
                raise AssertionError(f"{sc.name}: {dk} {f_}: writer {w[f_]!r} reader {rd[f_]!r}")
        idle, freq = idle_freq[dk]
        if freq is not None and loaded_lf[dk] != freq:
            raise AssertionError(f"{sc.name}: {dk} freq: file {freq} reader {loaded_lf[dk]}")
        if idle is not None and not (idle <= loaded_lf[dk] <= idle + elapsed):
            raise AssertionError(f"{sc.name}: {dk} idle: written {idle} reader {loaded_lf[dk]}")

    # Write the fixture.
    os.makedirs(outdir, exist_ok=True)
    shutil.copy(rdb, os.path.join(outdir, f"{sc.name}.rdb"))
    lines = [
        record_json(db, k, writer_recs[(db, k)], *idle_freq[(db, k)])
        for (db, k) in sorted(writer_recs, key=lambda dk: (dk[0], dk[1]))
    ]
    with open(os.path.join(outdir, f"{sc.name}.expected.jsonl"), "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    enc_counts: dict[str, int] = {}
    for w in writer_recs.values():
        enc_counts[f"{w['type']}/{w['encoding']}"] = enc_counts.get(f"{w['type']}/{w['encoding']}", 0) + 1
    meta = {
        "name": sc.name,
        "generator": "scripts/gen-fixtures.py",
        "server": f"redis-server {version}",
        "rdb_version": int(data[5:9]),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "config": {**sc.config, **carried, "appendonly": "no", "save": ""},
        "covers": sc.covers,
        "keys": len(writer_recs),
        "dbs": sorted({db for db, _ in writer_recs}),
        "encodings": dict(sorted(enc_counts.items())),
        "quicklist_layouts": {
            f"{db}:{k.decode('utf-8', 'replace')}": [f"{n['container']}/{n['encoding']}/count={n['count']}" for n in ns]
            if len(ns) <= 12 else f"{len(ns)} nodes: " + ", ".join(
                f"{v}x {c}" for c, v in sorted(_tally(f"{n['container']}/{n['encoding']}" for n in ns).items()))
            for (db, k), ns in layouts.items()
        },
        "facts": ctx.facts,
        "oracle": "writer server: TYPE, OBJECT ENCODING, LLEN/SCARD/ZCARD/HLEN/XLEN, PEXPIRETIME, "
                  "DEBUG OBJECT serializedlength (strings), OBJECT IDLETIME/FREQ equal before and after SAVE; "
                  "re-checked on a fresh server that loaded the file",
        "generation_seconds": round(time.time() - t0, 1),
    }
    with open(os.path.join(outdir, f"{sc.name}.meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return meta


def _tally(items):
    d: dict[str, int] = {}
    for i in items:
        d[i] = d.get(i, 0) + 1
    return d


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(os.path.dirname(here), "tests", "fixtures"))
    ap.add_argument("--only", help="comma-separated scenario names")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = ap.parse_args()
    if args.list:
        for sc in SCENARIOS:
            print(f"{sc.name}: {sc.covers}")
        return 0
    if not shutil.which("redis-server"):
        print("redis-server not found (apt-get install -y redis-server)", file=sys.stderr)
        return 2
    version = server_version()
    if not version.startswith("7.0."):
        print(f"warning: written for Redis 7.0.x, found {version}; expectations may not hold", file=sys.stderr)
    wanted = set(args.only.split(",")) if args.only else None
    total = time.time()
    for sc in SCENARIOS:
        if wanted and sc.name not in wanted:
            continue
        meta = generate(sc, args.out, version)
        print(f"{sc.name}: {meta['keys']} keys, {meta['size']} bytes, {meta['generation_seconds']} s", flush=True)
    print(f"done in {time.time() - total:.1f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
