//! Integrity of the repository's own fixtures (`tests/fixtures/`, made by `scripts/gen-fixtures.py`).
//! This checks the fixture files themselves, not the parser: every RDB has its expected records,
//! the records are in the documented format and order, and the set stays small.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

fn names_with(ext: &str) -> BTreeSet<String> {
    fs::read_dir(fixtures_dir())
        .expect("tests/fixtures exists")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(ext).map(str::to_owned))
        .collect()
}

#[test]
fn every_rdb_has_expected_records_and_meta() {
    let rdbs = names_with(".rdb");
    assert!(rdbs.len() >= 10, "fixtures missing: {rdbs:?}");
    assert_eq!(rdbs, names_with(".expected.jsonl"));
    assert_eq!(rdbs, names_with(".meta.json"));
    let mut total = 0;
    for name in &rdbs {
        let bytes = fs::read(fixtures_dir().join(format!("{name}.rdb"))).unwrap();
        assert!(
            bytes.starts_with(b"REDIS0010"),
            "{name}: not an RDB v10 file"
        );
        total += bytes.len();
    }
    assert!(total < 2_000_000, "fixtures grew to {total} bytes");
}

#[test]
fn expected_records_are_well_formed_and_sorted() {
    const FIELDS: [&str; 8] = [
        "db",
        "key",
        "type",
        "encoding",
        "member_count",
        "expire_at_ms",
        "idle_seconds",
        "freq",
    ];
    for name in names_with(".expected.jsonl") {
        let text =
            fs::read_to_string(fixtures_dir().join(format!("{name}.expected.jsonl"))).unwrap();
        let mut prev: Option<(u64, Vec<u8>)> = None;
        for (i, line) in text.lines().enumerate() {
            let v: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}:{}: {e}", i + 1));
            let o = v.as_object().unwrap();
            for f in FIELDS {
                assert!(o.contains_key(f), "{name}:{}: no {f}", i + 1);
            }
            let key = o["key"].as_str().unwrap();
            let raw = match o.get("key_b64") {
                Some(b) => {
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(b.as_str().unwrap())
                        .unwrap();
                    assert!(
                        std::str::from_utf8(&raw).is_err(),
                        "{name}:{}: key_b64 on a UTF-8 key",
                        i + 1
                    );
                    assert_eq!(
                        key,
                        String::from_utf8_lossy(&raw),
                        "{name}:{}: lossy key",
                        i + 1
                    );
                    raw
                }
                None => key.as_bytes().to_vec(),
            };
            let db = o["db"].as_u64().unwrap();
            let cur = (db, raw);
            if let Some(p) = &prev {
                assert!(
                    *p < cur,
                    "{name}:{}: not sorted by db then raw key bytes",
                    i + 1
                );
            }
            prev = Some(cur);
            assert!(o["member_count"].as_u64().is_some());
        }
    }
}
