//! The fixture corpora, expected records and chunked readers.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use rdbinsight::parser::{ParseError, ParseOptions, RdbParser};
use rdbinsight::record::Record;

/// The shared public corpus (`../shared/fixtures`), when present beside the repository.
pub fn shared_fixtures() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures");
    dir.is_dir().then_some(dir)
}

/// The project's own fixtures.
pub fn own_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `*.rdb` files in `dir` that have an `.expected.jsonl` beside them, sorted.
pub fn fixtures_with_expectations(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "rdb"))
                .filter(|p| p.with_extension("expected.jsonl").exists())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The comparable part of a record, as in the corpus's `.expected.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Expected {
    pub db: u64,
    pub key: Vec<u8>,
    pub r#type: String,
    pub encoding: String,
    pub member_count: u64,
    pub expire_at_ms: Option<i64>,
    pub idle_seconds: Option<u64>,
    pub freq: Option<u64>,
}

impl From<&Record> for Expected {
    fn from(r: &Record) -> Self {
        Expected {
            db: r.db,
            key: r.key.clone(),
            r#type: r.r#type.as_str().to_string(),
            encoding: r.encoding.as_str().to_string(),
            member_count: r.member_count,
            expire_at_ms: r.expire_at_ms,
            idle_seconds: r.idle_seconds,
            freq: r.freq.map(u64::from),
        }
    }
}

/// Parse an `.expected.jsonl` file.
pub fn read_expected(path: &Path) -> Vec<Expected> {
    let text = std::fs::read_to_string(path).expect("read expected");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("expected line is JSON");
            let key = match v.get("key_b64").and_then(|k| k.as_str()) {
                Some(b) => base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .expect("key_b64"),
                None => v["key"].as_str().expect("key").as_bytes().to_vec(),
            };
            Expected {
                db: v["db"].as_u64().expect("db"),
                key,
                r#type: v["type"].as_str().expect("type").to_string(),
                encoding: v["encoding"].as_str().expect("encoding").to_string(),
                member_count: v["member_count"].as_u64().expect("member_count"),
                expire_at_ms: v["expire_at_ms"].as_i64(),
                idle_seconds: v["idle_seconds"].as_u64(),
                freq: v["freq"].as_u64(),
            }
        })
        .collect()
}

/// Parse all records from `reader`.
pub fn parse_all<R: std::io::Read>(reader: R, name: &str) -> Result<Vec<Record>, ParseError> {
    parse_all_len(reader, name).map(|(records, _)| records)
}

/// Parse all records from `reader`; also returns the RDB's length (without trailing bytes).
pub fn parse_all_len<R: std::io::Read>(
    reader: R,
    name: &str,
) -> Result<(Vec<Record>, u64), ParseError> {
    let mut parser = RdbParser::new(reader, name, ParseOptions::default());
    let mut out = Vec::new();
    while let Some(r) = parser.next_record()? {
        out.push(r);
    }
    Ok((out, parser.rdb_len().unwrap_or(0)))
}

/// Records in the corpus's order (db, then raw key bytes).
pub fn sorted_expected(records: &[Record]) -> Vec<Expected> {
    let mut v: Vec<Expected> = records.iter().map(Expected::from).collect();
    v.sort();
    v
}

/// A reader that hands out the data in chunks of the sizes `sizes` cycles through.
pub struct Chunked<'a> {
    data: &'a [u8],
    sizes: Vec<usize>,
    i: usize,
}

impl<'a> Chunked<'a> {
    pub fn new(data: &'a [u8], sizes: Vec<usize>) -> Self {
        Chunked { data, sizes, i: 0 }
    }
}

impl std::io::Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = self.sizes[self.i % self.sizes.len()].max(1);
        self.i += 1;
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Parse all records from `reader`, read ahead on a thread (`RdbParser::read_ahead`, the
/// dump pipeline's way).
pub fn parse_all_read_ahead<R: std::io::Read + Send + 'static>(
    reader: R,
    name: &str,
) -> Result<Vec<Record>, ParseError> {
    let mut parser =
        RdbParser::read_ahead(reader, name, ParseOptions::default()).expect("read-ahead thread");
    let mut out = Vec::new();
    while let Some(r) = parser.next_record()? {
        out.push(r);
    }
    Ok(out)
}

/// [`Chunked`] over its own copy of the data (for a thread that needs `'static`).
pub struct OwnedChunked {
    data: Vec<u8>,
    at: usize,
    sizes: Vec<usize>,
    i: usize,
}

impl OwnedChunked {
    pub fn new(data: Vec<u8>, sizes: Vec<usize>) -> Self {
        OwnedChunked {
            data,
            at: 0,
            sizes,
            i: 0,
        }
    }
}

impl std::io::Read for OwnedChunked {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = self.sizes[self.i % self.sizes.len()].max(1);
        self.i += 1;
        let n = want.min(buf.len()).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A small deterministic pseudo-random generator (xorshift64) for mutation tests.
pub fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed.max(1);
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}
