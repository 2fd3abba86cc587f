//! The correctness oracle: every fixture's records must equal its `.expected.jsonl`, whole or
//! fed in 1-byte and random-size chunks, and read ahead on a thread (whole and chunked), and
//! every strict prefix of it must fail cleanly.
//! Runs the project's own fixtures always and the shared public corpus when `../shared` exists.

use crate::common;

use std::path::Path;

use common::fixtures::*;

fn check_fixture(path: &Path) -> Result<(), String> {
    let name = path.display().to_string();
    let data = std::fs::read(path).map_err(|e| format!("{name}: {e}"))?;
    let expected = {
        let mut v = read_expected(&path.with_extension("expected.jsonl"));
        v.sort();
        v
    };
    let (records, rdb_len) = parse_all_len(&data[..], &name).map_err(|e| format!("{e}"))?;
    let got = sorted_expected(&records);
    if got != expected {
        let missing: Vec<_> = expected
            .iter()
            .filter(|e| !got.contains(e))
            .take(3)
            .collect();
        let extra: Vec<_> = got
            .iter()
            .filter(|g| !expected.contains(g))
            .take(3)
            .collect();
        return Err(format!(
            "{name}: {} records, expected {}; first missing {missing:?}; first unexpected {extra:?}",
            got.len(),
            expected.len()
        ));
    }
    // rdb_size is the byte span of each key; they can never exceed the file.
    let total: u64 = records.iter().map(|r| r.rdb_size).sum();
    if total > data.len() as u64 {
        return Err(format!(
            "{name}: rdb_size sum {total} exceeds file size {}",
            data.len()
        ));
    }
    // Same result in 1-byte chunks and in pseudo-random chunk sizes.
    let one = parse_all(Chunked::new(&data, vec![1]), &name).map_err(|e| format!("1-byte: {e}"))?;
    if one != records {
        return Err(format!("{name}: 1-byte chunked parse differs"));
    }
    let sizes: Vec<usize> = (0..97).map(|i| (i * 7919 + 13) % 4099 + 1).collect();
    let rnd = parse_all(Chunked::new(&data, sizes.clone()), &name)
        .map_err(|e| format!("chunked: {e}"))?;
    if rnd != records {
        return Err(format!("{name}: random-chunk parse differs"));
    }
    // The same read ahead on a thread (the dump's way), whole and in random-size reads, and a
    // spread of strict prefixes still fail.
    let ahead = parse_all_read_ahead(std::io::Cursor::new(data.clone()), &name)
        .map_err(|e| format!("read ahead: {e}"))?;
    if ahead != records {
        return Err(format!("{name}: read-ahead parse differs"));
    }
    let ahead = parse_all_read_ahead(OwnedChunked::new(data.clone(), sizes), &name)
        .map_err(|e| format!("read ahead, chunked: {e}"))?;
    if ahead != records {
        return Err(format!("{name}: read-ahead chunked parse differs"));
    }
    let len = rdb_len as usize;
    for cut in (0..len).step_by((len / 8).max(1)).chain([len - 1]) {
        if parse_all_read_ahead(std::io::Cursor::new(data[..cut].to_vec()), &name).is_ok() {
            return Err(format!(
                "{name}: read-ahead prefix of {cut} bytes parsed as complete"
            ));
        }
    }
    // Every strict prefix of the RDB (bytes after its checksum are ignored, as Redis does)
    // fails: all cut points of small files; for larger ones the first and last 256 bytes and a
    // spread of 256 in between (every cut of a 3 MB file would take hours).
    let step = (len / 256).max(1);
    let cuts = (0..len.min(256))
        .chain(len.saturating_sub(256)..len)
        .chain((0..len).step_by(step));
    for cut in cuts {
        if parse_all(&data[..cut], &name).is_ok() {
            return Err(format!(
                "{name}: prefix of {cut} of {} bytes parsed as complete",
                data.len()
            ));
        }
    }
    Ok(())
}

/// Check every fixture of `dir`, on all cores.
fn run_dir(dir: &Path) -> (usize, Vec<String>) {
    let files = fixtures_with_expectations(dir);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(f) = files.get(i) else { break };
                    if let Err(e) = check_fixture(f) {
                        failures.lock().unwrap().push(e);
                    }
                }
            });
        }
    });
    (files.len(), failures.into_inner().unwrap())
}

#[test]
fn own_fixtures_match_expected() {
    let (n, failures) = run_dir(&own_fixtures());
    assert!(n > 0, "no fixtures in tests/fixtures");
    assert!(
        failures.is_empty(),
        "{} of {n} fixtures failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn shared_public_corpus_matches_expected() {
    let Some(dir) = shared_fixtures() else {
        eprintln!("../shared/fixtures not present: shared corpus skipped");
        return;
    };
    let (n, failures) = run_dir(&dir.join("public"));
    assert!(n >= 100, "expected the public corpus, found {n} fixtures");
    assert!(
        failures.is_empty(),
        "{} of {n} fixtures failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
