//! Huge keys keep the dump's memory flat: 40 keys of 10 MiB each, LZF-compressed as Redis
//! writes repetitive strings (a ~4.6 MB RDB), go through every file output of the real binary
//! within a fixed peak RSS. What is in flight between parser and writer, and in a Parquet
//! micro-batch, is bounded by bytes of key and not only by records.

use crate::common;

use std::path::Path;

use common::cli::run_measured;

/// Keys in the file and the length of each.
pub(crate) const KEYS: usize = 40;
pub(crate) const KEY_LEN: usize = 10 << 20;
/// Peak RSS allowed for a whole run of the binary on that file (into-null, into-jsonl).
const PEAK_RSS_LIMIT: u64 = 64 << 20;
/// The same for into-parquet. Writing one 10 MiB key, parquet-rs holds the key's Arrow
/// array, its plain-encoded values and the data page that concatenates them (three copies,
/// ~30 MiB) before compressing; buffers that large are mapped and returned when freed (the
/// binary fixes glibc's mmap threshold), so runs measure 46 to 48 MiB (before the byte bounds:
/// 573 MiB; with glibc's moving threshold: 55 to 66 MiB).
const PARQUET_PEAK_RSS_LIMIT: u64 = 64 << 20;

/// Append an RDB length (6-, 14- or 32-bit form).
fn len(out: &mut Vec<u8>, n: usize) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// LZF of `prefix` followed by `fill` repeated up to `total` bytes, as liblzf encodes a run:
/// one literal, then back-references of at most 264 bytes at distance 1 (3 bytes each).
fn lzf_run(prefix: &[u8], fill: u8, total: usize) -> Vec<u8> {
    assert!(prefix.len() < 32 && total > prefix.len() + 3);
    let mut out = vec![prefix.len() as u8]; // literal of prefix.len() + 1 bytes
    out.extend_from_slice(prefix);
    out.push(fill);
    let mut left = total - prefix.len() - 1;
    while left > 0 {
        // A back-reference copies 3..=264 bytes; never leave 1 or 2 bytes behind.
        let mut n = left.min(264);
        if left - n > 0 && left - n < 3 {
            n -= 3;
        }
        if n < 9 {
            out.push(((n - 2) << 5) as u8);
        } else {
            out.push(7 << 5);
            out.push((n - 9) as u8);
        }
        out.push(0); // distance 1
        left -= n;
    }
    out
}

/// An RDB v9 with `KEYS` string keys of `KEY_LEN` bytes each, LZF-compressed, value "v".
/// The checksum is 0 (not checked, as Redis with `rdbchecksum no` writes it).
pub(crate) fn huge_keys_rdb(path: &Path) {
    let mut d = b"REDIS0009".to_vec();
    d.extend_from_slice(&[0xFE, 0]); // SELECTDB 0
    for i in 0..KEYS {
        d.push(0); // string
        let compressed = lzf_run(format!("huge-key-{i:02}-").as_bytes(), b'x', KEY_LEN);
        d.push(0xC3); // LZF-encoded string
        len(&mut d, compressed.len());
        len(&mut d, KEY_LEN);
        d.extend_from_slice(&compressed);
        d.extend_from_slice(&[1, b'v']);
    }
    d.push(0xFF);
    d.extend_from_slice(&[0; 8]);
    std::fs::write(path, d).expect("write the RDB");
}

#[test]
fn forty_keys_of_ten_mib_stay_within_the_memory_bound_in_every_file_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rdb = dir.path().join("huge-keys.rdb");
    huge_keys_rdb(&rdb);
    let size = std::fs::metadata(&rdb).expect("stat").len();
    assert!(size < 5 << 20, "the RDB is {size} bytes");
    let parquet_dir = dir.path().join("parquet");
    let jsonl = dir.path().join("out.jsonl");
    let base = [
        "dump",
        "from-file",
        "--path",
        rdb.to_str().expect("utf-8 path"),
        "--cluster",
        "huge",
        "--instance",
        "i1",
    ];
    let outputs: [(&str, Vec<&str>); 3] = [
        ("into-null", vec!["into-null"]),
        (
            "into-parquet",
            vec![
                "into-parquet",
                "--dir",
                parquet_dir.to_str().expect("utf-8 path"),
            ],
        ),
        (
            "into-jsonl",
            vec![
                "into-jsonl",
                "--output",
                jsonl.to_str().expect("utf-8 path"),
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (name, tail) in outputs {
        let args: Vec<&str> = base.iter().copied().chain(tail).collect();
        let (code, peak, stderr) = run_measured(&args);
        assert_eq!(code, 0, "{name} failed: {stderr}");
        eprintln!("{name}: peak RSS {} MiB", peak >> 20);
        let limit = match name {
            "into-parquet" => PARQUET_PEAK_RSS_LIMIT,
            _ => PEAK_RSS_LIMIT,
        };
        if peak > limit {
            failures.push(format!("{name}: {} MiB > {} MiB", peak >> 20, limit >> 20));
        }
    }
    // Every key arrived whole.
    let file = std::fs::File::open(&jsonl).expect("open the JSONL");
    let lines = std::io::BufRead::split(std::io::BufReader::new(file), b'\n').count();
    assert_eq!(lines, KEYS);
    assert!(
        failures.is_empty(),
        "peak RSS above the limit: {failures:?}"
    );
}
