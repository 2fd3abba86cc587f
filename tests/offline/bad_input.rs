//! Malformed inputs from `../shared/fixtures/bad/` (each with its verdict) and a few built
//! here: every one must end in a clear error naming the offset (or in the exact records the
//! verdict allows), never a panic and never a partial result presented as complete.

use crate::common;

use std::path::Path;

use common::fixtures::*;
use rdbinsight::parser::{ParseErrorKind, ParseOptions, RdbParser};

/// Parse everything; returns the records produced before the end or the error.
fn run(
    data: &[u8],
) -> (
    Vec<rdbinsight::record::Record>,
    Result<(), rdbinsight::parser::ParseError>,
) {
    let mut parser = RdbParser::new(data, "bad.rdb", ParseOptions::default());
    let mut records = Vec::new();
    loop {
        match parser.next_record() {
            Ok(Some(r)) => records.push(r),
            Ok(None) => return (records, Ok(())),
            Err(e) => return (records, Err(e)),
        }
    }
}

#[test]
fn shared_bad_corpus_verdicts() {
    let Some(dir) = shared_fixtures() else {
        eprintln!("../shared/fixtures not present: bad corpus skipped");
        return;
    };
    let dir = dir.join("bad");
    let base = {
        let mut v = read_expected(&dir.join("bad-base.expected.jsonl"));
        v.sort();
        v
    };
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".expect.txt") else {
            continue;
        };
        let verdict = std::fs::read_to_string(&path).unwrap();
        let verdict = verdict.lines().next().unwrap_or_default().to_string();
        let data = std::fs::read(dir.join(format!("{stem}.rdb"))).unwrap();
        let (records, result) = run(&data);
        checked += 1;
        let got = sorted_expected(&records);
        let ok = if verdict.starts_with("VERDICT: error-or-records") {
            match &result {
                Err(e) => !e.to_string().is_empty(),
                Ok(()) if stem == "double-selectdb-huge" => {
                    got.len() == 1 && got[0].key == b"a" && got[0].db == 0
                }
                Ok(()) => got == base,
            }
        } else if verdict.starts_with("VERDICT: error") {
            result.is_err()
        } else if verdict.starts_with("VERDICT: records") {
            result.is_ok() && got == base
        } else {
            false
        };
        if !ok {
            failures.push(format!(
                "{stem} ({verdict}): {result:?}, {} records",
                records.len()
            ));
        }
        if let Err(e) = &result {
            let msg = e.to_string();
            if !msg.contains("byte offset") {
                failures.push(format!("{stem}: error does not name the offset: {msg}"));
            }
        }
    }
    assert!(
        checked >= 40,
        "expected the bad corpus, found {checked} cases"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Whether an error is the one expected.
type KindCheck = fn(&ParseErrorKind) -> bool;

/// Specific errors and offsets the bad corpus documents.
#[test]
fn shared_bad_corpus_messages() {
    let Some(dir) = shared_fixtures() else { return };
    let dir = dir.join("bad");
    // (file, the error it must give, its byte offset when the corpus documents it)
    let cases: &[(&str, KindCheck, Option<u64>)] = &[
        (
            "empty-file.rdb",
            |k| matches!(k, ParseErrorKind::UnexpectedEof { .. }),
            Some(0),
        ),
        (
            "not-rdb-png.rdb",
            |k| *k == ParseErrorKind::BadMagic,
            Some(0),
        ),
        (
            "not-rdb-aof.rdb",
            |k| *k == ParseErrorKind::BadMagic,
            Some(0),
        ),
        (
            "wrong-magic.rdb",
            |k| *k == ParseErrorKind::BadMagic,
            Some(0),
        ),
        (
            "version-0.rdb",
            |k| *k == ParseErrorKind::UnsupportedVersion(0),
            Some(5),
        ),
        (
            "version-99.rdb",
            |k| *k == ParseErrorKind::UnsupportedVersion(99),
            Some(5),
        ),
        (
            "version-not-digits.rdb",
            |k| *k == ParseErrorKind::InvalidVersion,
            Some(5),
        ),
        (
            "type-byte-8-unassigned.rdb",
            |k| *k == ParseErrorKind::UnknownType(8),
            Some(49),
        ),
        (
            "garbage-type-byte.rdb",
            |k| *k == ParseErrorKind::UnknownType(0x42),
            Some(49),
        ),
        (
            "module-pre-ga-type6.rdb",
            |k| *k == ParseErrorKind::UnsupportedModulePreGa,
            Some(49),
        ),
        (
            "crc-flipped-byte.rdb",
            |k| matches!(k, ParseErrorKind::ChecksumMismatch { .. }),
            Some(110),
        ),
        (
            "quicklist2-bad-container.rdb",
            |k| k.to_string().contains("invalid quicklist container 3"),
            None,
        ),
        (
            "module2-bad-opcode.rdb",
            |k| k.to_string().contains("invalid module opcode 9"),
            None,
        ),
        (
            "listpack-total-bytes-lie.rdb",
            |k| k.to_string().contains("listpack size mismatch"),
            None,
        ),
        (
            "lzf-in-key-ulen-too-big.rdb",
            |k| k.to_string().contains("length mismatch"),
            None,
        ),
        (
            "string-length-2pow40.rdb",
            |k| matches!(k, ParseErrorKind::UnexpectedEof { .. }),
            None,
        ),
    ];
    for &(name, want_kind, offset) in cases {
        let data = std::fs::read(dir.join(name)).unwrap();
        let (_, result) = run(&data);
        let err = result.expect_err(name);
        assert!(want_kind(&err.kind), "{name}: unexpected error {err}");
        if let Some(off) = offset {
            assert_eq!(err.offset, off, "{name}: {err}");
        }
    }
    // Version 99 must fail before any record.
    let data = std::fs::read(dir.join("version-99.rdb")).unwrap();
    assert!(run(&data).0.is_empty());
}

/// The 4 records of the checksum-flipped file still parse before the error, and with
/// verification off the file is accepted.
#[test]
fn skip_checksum_accepts_mismatch() {
    let Some(dir) = shared_fixtures() else { return };
    let data = std::fs::read(dir.join("bad/crc-body-byte-flipped.rdb")).unwrap();
    let (records, result) = run(&data);
    assert_eq!(records.len(), 4);
    assert!(matches!(
        result.unwrap_err().kind,
        ParseErrorKind::ChecksumMismatch { .. }
    ));
    let mut p = RdbParser::new(
        &data[..],
        "x",
        ParseOptions {
            verify_checksum: false,
            ..ParseOptions::default()
        },
    );
    let mut n = 0;
    while p.next_record().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 4);
}

/// A valid RDB with an absurd `PEXPIREAT` (i64::MAX ms, past year 294,247): the record says
/// "no expiry" (`record::expire`), for every writer and the report alike; one at the edge keeps
/// its value.
#[test]
fn absurd_expiry_is_no_expiry() {
    let mut data = b"REDIS0011".to_vec();
    for (ms, key) in [(i64::MAX, b'a'), (i64::MAX / 1000, b'b'), (i64::MIN, b'c')] {
        data.push(0xfc); // EXPIRETIME_MS
        data.extend_from_slice(&ms.to_le_bytes());
        data.extend_from_slice(&[0x00, 0x01, key, 0x01, b'v']); // string key -> "v"
    }
    data.push(0xff);
    data.extend_from_slice(&[0; 8]); // no checksum
    let (records, result) = run(&data);
    result.expect("valid RDB");
    let got: Vec<_> = records
        .iter()
        .map(|r| (r.key.clone(), r.expire_at_ms))
        .collect();
    assert_eq!(
        got,
        [
            (b"a".to_vec(), None),
            (b"b".to_vec(), Some(i64::MAX / 1000)),
            (b"c".to_vec(), None),
        ]
    );
}

/// Random bytes after a valid header, and random mutations of a valid file: never a panic,
/// and the parser always terminates.
#[test]
fn random_bytes_never_panic() {
    let seed_file = own_fixtures().join("r7-strings.rdb");
    let base = std::fs::read(&seed_file).unwrap_or_else(|_| b"REDIS0011\xff".to_vec());
    let mut rnd = xorshift(0x9E3779B97F4A7C15u64);
    for i in 0..3000 {
        let mut data = if i % 2 == 0 {
            let mut d = b"REDIS0011".to_vec();
            let n = (rnd() % 512) as usize;
            d.extend((0..n).map(|_| rnd() as u8));
            d
        } else {
            base.clone()
        };
        let flips = 1 + rnd() % 8;
        for _ in 0..flips {
            if data.len() > 9 {
                let at = 9 + (rnd() as usize) % (data.len() - 9);
                data[at] = rnd() as u8;
            }
        }
        let _ = run(&data);
    }
}

#[test]
fn own_prefixes_fail_in_every_chunking() {
    // A valid file from the project's fixtures, cut at every point, fed 1 byte at a time.
    let path = own_fixtures().join("r7-streams.rdb");
    let Ok(data) = std::fs::read(Path::new(&path)) else {
        return;
    };
    for cut in 0..data.len() {
        let r = parse_all(Chunked::new(&data[..cut], vec![1, 3, 7]), "cut");
        assert!(r.is_err(), "prefix {cut} parsed as complete");
    }
}
