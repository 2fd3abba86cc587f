#!/usr/bin/env python3
"""Write an RDB of huge, LZF-compressed string keys (the memory-bound dataset of bench/README.md).

    python3 scripts/gen-huge-keys.py OUT.rdb [--keys 40] [--key-bytes 10485760]

Each key is `huge-key-NN-` followed by 'x' up to --key-bytes, LZF-encoded as liblzf encodes a run
(one literal, then 264-byte back-references at distance 1), with the value "v": 40 keys of 10 MiB
make a ~4.6 MB file, as Redis writes such keys. RDB version 9, checksum 0 (not checked, as with
`rdbchecksum no`). tests/offline/huge_keys.rs builds the same file in Rust.
"""

import argparse
import struct


def rdb_len(n: int) -> bytes:
    if n < 1 << 6:
        return bytes([n])
    if n < 1 << 14:
        return bytes([0x40 | (n >> 8), n & 0xFF])
    return b"\x80" + struct.pack(">I", n)


def lzf_run(prefix: bytes, fill: int, total: int) -> bytes:
    assert len(prefix) < 32 and total > len(prefix) + 3
    out = bytearray([len(prefix)]) + prefix + bytes([fill])
    left = total - len(prefix) - 1
    while left:
        n = min(left, 264)
        if 0 < left - n < 3:
            n -= 3
        if n < 9:
            out.append((n - 2) << 5)
        else:
            out += bytes([7 << 5, n - 9])
        out.append(0)
        left -= n
    return bytes(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--keys", type=int, default=40)
    ap.add_argument("--key-bytes", type=int, default=10 << 20)
    args = ap.parse_args()
    d = bytearray(b"REDIS0009\xfe\x00")
    for i in range(args.keys):
        c = lzf_run(b"huge-key-%02d-" % i, ord("x"), args.key_bytes)
        d += b"\x00\xc3" + rdb_len(len(c)) + rdb_len(args.key_bytes) + c + b"\x01v"
    d += b"\xff" + bytes(8)
    with open(args.out, "wb") as f:
        f.write(d)


if __name__ == "__main__":
    main()
