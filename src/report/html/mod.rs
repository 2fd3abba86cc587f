//! The HTML renderer: one self-contained, offline page from a [`ReportData`].
//!
//! The page is `template.html` with three things put in at its markers: `report.css`, the report
//! data as JSON, and `report.js` (the page's whole program, written for this project). What the
//! output guarantees:
//!
//! - **Offline.** Every asset is inline; the page names no URL and its Content-Security-Policy
//!   (`default-src 'none'`) forbids every fetch, so it opens from `file://` with no network and
//!   loads nothing even if a bug tried to.
//! - **The data once, inert.** The JSON sits in `<script type="application/json"
//!   id="report-data">`. `<`, `>` and `&` are written `\u003c`, `\u003e`, `\u0026` and U+2028 /
//!   U+2029 as `\u2028` / `\u2029`, so no key (`</script>`, `<!--`, `<script`) can end the element
//!   or switch the HTML parser's state. These characters occur only inside JSON strings, where the
//!   escapes mean the same characters: the text parses to exactly the value of
//!   `serde_json::to_string(data)` (the CLI's `--json` document), and the page's JSON download
//!   undoes just these escapes to give back those exact bytes.
//! - **Deterministic.** The output depends on `data` only (no clock, no random ids): the same
//!   `ReportData` gives byte-identical HTML.
//!
//! The page shows keys through `textContent` only (never as markup), groups digits itself
//! (never by the browser locale), and stays fast with [`MAX_PREFIX_NODES`] prefix nodes: the
//! icicle chart is a canvas drawing only the zoomed subtree's nodes at least a pixel wide, and
//! tables are paginated.
//!
//! [`MAX_PREFIX_NODES`]: super::model::MAX_PREFIX_NODES

use std::io::{self, Write};

use super::model::ReportData;

const TEMPLATE: &str = include_str!("template.html");
const CSS: &str = include_str!("report.css");
const JS: &str = include_str!("report.js");

const CSS_MARK: &str = "/*@RDBINSIGHT_CSS@*/";
const DATA_MARK: &str = "/*@RDBINSIGHT_DATA@*/";
const JS_MARK: &str = "/*@RDBINSIGHT_JS@*/";

/// Where each marker starts in the template; a missing or misordered marker fails the build.
const CSS_AT: usize = find(TEMPLATE, CSS_MARK);
const DATA_AT: usize = find(TEMPLATE, DATA_MARK);
const JS_AT: usize = find(TEMPLATE, JS_MARK);
const _: () = assert!(
    CSS_AT < DATA_AT && DATA_AT < JS_AT,
    "template markers out of order"
);

/// Byte offset of the first `needle` in `hay` (compile time).
const fn find(hay: &str, needle: &str) -> usize {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let mut i = 0;
    while i + n.len() <= h.len() {
        let mut j = 0;
        while j < n.len() && h[i + j] == n[j] {
            j += 1;
        }
        if j == n.len() {
            return i;
        }
        i += 1;
    }
    panic!("template marker missing");
}

/// Write the report page for `data` to `out`.
///
/// Errors are those of `out` only. `out` is written in many small pieces: give it a
/// `BufWriter` when it is a file.
pub fn write_html<W: Write>(data: &ReportData, mut out: W) -> io::Result<()> {
    let t = TEMPLATE.as_bytes();
    out.write_all(&t[..CSS_AT])?;
    out.write_all(CSS.as_bytes())?;
    out.write_all(&t[CSS_AT + CSS_MARK.len()..DATA_AT])?;
    let mut json = ScriptSafe::new(&mut out);
    serde_json::to_writer(&mut json, data)?;
    json.finish()?;
    out.write_all(&t[DATA_AT + DATA_MARK.len()..JS_AT])?;
    out.write_all(JS.as_bytes())?;
    out.write_all(&t[JS_AT + JS_MARK.len()..])?;
    out.flush()
}

/// The report page for `data` as a string (see [`write_html`]).
pub fn render_html(data: &ReportData) -> String {
    let mut buf = Vec::with_capacity(TEMPLATE.len() + CSS.len() + JS.len() + 4096);
    // Writing into a Vec cannot fail, and ReportData has no map with non-string keys (the only
    // way serde_json can fail to serialize).
    write_html(data, &mut buf).expect("rendering into memory cannot fail");
    // Every piece is UTF-8: the assets are `&str`, serde_json writes UTF-8, and the escapes
    // replace ASCII bytes or whole three-byte characters.
    String::from_utf8(buf).expect("the page is UTF-8")
}

/// A `Write` adapter that makes JSON text safe inside a `<script>` element: `<`, `>`, `&`,
/// U+2028 and U+2029 become `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`. Correct for any
/// split of the input into writes (a character cut between two writes is held back); call
/// [`ScriptSafe::finish`] at the end.
struct ScriptSafe<W: Write> {
    inner: W,
    /// Output waiting to be written, flushed in [`OUT_CHUNK`] pieces.
    buf: Vec<u8>,
    /// How many bytes of `E2 80` (the start of U+2028 / U+2029) the last write ended with.
    held: usize,
}

const OUT_CHUNK: usize = 64 * 1024;

impl<W: Write> ScriptSafe<W> {
    fn new(inner: W) -> Self {
        ScriptSafe {
            inner,
            buf: Vec::with_capacity(OUT_CHUNK + 16),
            held: 0,
        }
    }

    #[inline]
    fn push(&mut self, b: u8) {
        match b {
            b'<' => self.buf.extend_from_slice(b"\\u003c"),
            b'>' => self.buf.extend_from_slice(b"\\u003e"),
            b'&' => self.buf.extend_from_slice(b"\\u0026"),
            _ => self.buf.push(b),
        }
    }

    /// Write what is held back and buffered.
    fn finish(mut self) -> io::Result<()> {
        self.buf.extend_from_slice(&[0xE2, 0x80][..self.held]);
        self.held = 0;
        self.inner.write_all(&self.buf)
    }
}

impl<W: Write> Write for ScriptSafe<W> {
    fn write(&mut self, input: &[u8]) -> io::Result<usize> {
        for &b in input {
            // Match E2 80 A8 / E2 80 A9 byte by byte; a partial match that fails is written as
            // is and the current byte looked at afresh.
            loop {
                match (self.held, b) {
                    (0, 0xE2) | (1, 0x80) => self.held += 1,
                    (2, 0xA8) => {
                        self.buf.extend_from_slice(b"\\u2028");
                        self.held = 0;
                    }
                    (2, 0xA9) => {
                        self.buf.extend_from_slice(b"\\u2029");
                        self.held = 0;
                    }
                    (0, _) => self.push(b),
                    (held, _) => {
                        self.buf.extend_from_slice(&[0xE2, 0x80][..held]);
                        self.held = 0;
                        continue;
                    }
                }
                break;
            }
        }
        if self.buf.len() >= OUT_CHUNK {
            self.inner.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(input.len())
    }

    /// Flushes the inner writer only: held-back bytes wait for [`ScriptSafe::finish`].
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::key_text;
    use crate::report::model::*;

    fn agg(keys: u64, rdb_size: u64, member_count: u64) -> Agg {
        Agg {
            keys,
            rdb_size,
            mem_size: rdb_size * 2,
            mem_missing: 0,
            member_count,
        }
    }

    fn key_row(text: &str, rdb_size: u64) -> KeyRow {
        KeyRow {
            key: key_text(text.as_bytes()),
            instance: "10.0.0.1:6379".into(),
            db: 0,
            r#type: "string".into(),
            encoding: "raw".into(),
            rdb_size,
            mem_size: Some(rdb_size * 2),
            member_count: 1,
            expire_at: None,
            ttl_ms: None,
            idle_seconds: None,
            freq: None,
        }
    }

    /// Small but complete, with every string a page could trip on.
    fn sample() -> ReportData {
        let nasty = [
            "</script><script>alert(1)</script>",
            "<!--",
            "<script",
            "a&b>c",
            "line\u{2028}sep\u{2029}para",
            "caf\u{e9} \\x00 \u{1F600}",
            "",
        ];
        let keys: Vec<KeyRow> = nasty
            .iter()
            .enumerate()
            .map(|(i, k)| key_row(k, 100 - i as u64))
            .collect();
        let total = agg(7, 7 * 97, 7);
        let mut d = ReportData {
            format_version: FORMAT_VERSION,
            generator: "rdbinsight 0.1.0".into(),
            cluster: "c</script>".into(),
            batch: "2024-01-02T03:04:05.123456789Z".into(),
            params: Params {
                top: 100,
                prefix_threshold_pct: "1".into(),
                prefix_threshold_bytes: 6,
                delimiter: Some(":".into()),
                big_string_bytes: BIG_STRING_BYTES,
                big_other_bytes: BIG_OTHER_BYTES,
                big_members: BIG_MEMBERS,
            },
            memory: Memory {
                requested: "mem".into(),
                measure: "mem".into(),
                note: None,
                keys_without_mem_size: 0,
                instances: vec![InstanceMemory {
                    instance: "10.0.0.1:6379".into(),
                    summary: true,
                    model: Some("redis-7.2 jemalloc</script>".into()),
                    approximate: false,
                    rdb_server: Some("redis 7.2.4".into()),
                    mem_size: total.mem_size,
                    keys_without_mem_size: 0,
                    keyspace_tables: Some(64),
                    keys_and_tables: Some(total.mem_size + 64),
                    used_mem: Some(900_000),
                }],
            },
            totals: Totals {
                agg: total,
                instances: 1,
                dbs: 1,
                with_ttl: Agg::default(),
            },
            by_type: vec![TypeRow {
                r#type: "string".into(),
                agg: total,
            }],
            by_type_encoding: vec![],
            by_db: vec![DbRow { db: 0, agg: total }],
            by_instance: vec![InstanceRow {
                instance: "10.0.0.1:6379".into(),
                agg: total,
            }],
            prefix_tree: PrefixTree {
                nodes: vec![PrefixNode {
                    parent: None,
                    prefix: key_text(b"</script>"),
                    prefix_len: 9,
                    is_key: false,
                    agg: total,
                    no_ttl: total,
                    rdb_size_by_type: TypeBytes {
                        string: total.rdb_size,
                        ..TypeBytes::default()
                    },
                    mem_size_by_type: TypeBytes {
                        string: total.mem_size,
                        ..TypeBytes::default()
                    },
                }],
            },
            top_keys_by_size: keys.clone(),
            top_keys_by_members: keys,
            expiry: Expiry {
                buckets: vec![],
                no_ttl_prefixes: vec![],
            },
            cold: Cold {
                idle: Histogram {
                    with_field: Agg::default(),
                    buckets: vec![],
                },
                freq: Histogram {
                    with_field: Agg::default(),
                    buckets: vec![],
                },
            },
            outliers: Outliers {
                big_keys: vec![],
                big_keys_total: 0,
                big_keys_agg: Agg::default(),
            },
            balance: Balance {
                keys_max: 7,
                rdb_size_max: 679,
                mem_size_max: 1358,
                keys_mean: 7.0,
                rdb_size_mean: 679.0,
                mem_size_mean: 1358.0,
                top_slots_by_bytes: vec![],
                top_slots_by_keys: vec![],
                shared_slots: vec![],
            },
            recommendations: vec![],
            changes: None,
        };
        d.recommendations = crate::report::advice::recommendations(&d);
        d
    }

    /// The text of the data element.
    fn embedded(html: &str) -> &str {
        let open = r#"<script type="application/json" id="report-data">"#;
        let start = html.find(open).expect("data element") + open.len();
        let len = html[start..]
            .find("</script>")
            .expect("end of data element");
        &html[start..start + len]
    }

    #[test]
    fn embedded_json_cannot_break_out_and_parses_to_the_json_document() {
        let data = sample();
        let html = render_html(&data);
        let text = embedded(&html);
        for bad in ['<', '>', '&', '\u{2028}', '\u{2029}'] {
            assert!(!text.contains(bad), "{bad:?} left unescaped");
        }
        // Same value as the --json document, and the same ReportData.
        let doc = serde_json::to_string(&data).unwrap();
        let a: serde_json::Value = serde_json::from_str(text).unwrap();
        let b: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(a, b);
        let back: ReportData = serde_json::from_str(text).unwrap();
        assert_eq!(back, data);
        // Only the escapes were added: undoing them gives the document's bytes.
        let undone = text
            .replace("\\u003c", "<")
            .replace("\\u003e", ">")
            .replace("\\u0026", "&")
            .replace("\\u2028", "\u{2028}")
            .replace("\\u2029", "\u{2029}");
        assert_eq!(undone, doc);
        // The HTML around: exactly two script elements, so nothing broke out.
        assert_eq!(html.matches("</script>").count(), 2);
        assert_eq!(html.matches("<script").count(), 2);
        assert!(!html.contains("<!--"));
    }

    #[test]
    fn same_data_same_bytes() {
        let data = sample();
        let a = render_html(&data);
        let b = render_html(&data.clone());
        assert_eq!(a, b);
        let mut streamed = Vec::new();
        write_html(&data, &mut streamed).unwrap();
        assert_eq!(streamed, a.as_bytes());
    }

    #[test]
    fn escaper_handles_any_split_of_the_input() {
        let input = "x\u{2028}<\u{2029}>&\u{20AC}\u{2027}\u{E2}\u{2028}";
        let want = "x\\u2028\\u003c\\u2029\\u003e\\u0026\u{20AC}\u{2027}\u{E2}\\u2028";
        let bytes = input.as_bytes();
        for cut in 0..=bytes.len() {
            for cut2 in cut..=bytes.len() {
                let mut out = Vec::new();
                let mut w = ScriptSafe::new(&mut out);
                w.write_all(&bytes[..cut]).unwrap();
                w.write_all(&bytes[cut..cut2]).unwrap();
                w.write_all(&bytes[cut2..]).unwrap();
                w.finish().unwrap();
                assert_eq!(String::from_utf8(out).unwrap(), want, "cuts {cut} {cut2}");
            }
        }
        // One byte at a time, and a trailing partial sequence is written at finish.
        let mut out = Vec::new();
        let mut w = ScriptSafe::new(&mut out);
        for b in bytes {
            w.write_all(std::slice::from_ref(b)).unwrap();
        }
        w.write_all(&[0xE2, 0x80]).unwrap();
        w.finish().unwrap();
        let mut want_bytes = want.as_bytes().to_vec();
        want_bytes.extend_from_slice(&[0xE2, 0x80]);
        assert_eq!(out, want_bytes);
    }

    #[test]
    fn assets_cannot_end_their_elements_and_name_no_url() {
        for (name, text) in [("report.css", CSS), ("report.js", JS)] {
            let lower = text.to_ascii_lowercase();
            for bad in ["</style", "</script", "<!--", "<script"] {
                assert!(!lower.contains(bad), "{name} contains {bad}");
            }
        }
        for (name, text) in [("template", TEMPLATE), ("css", CSS), ("js", JS)] {
            let lower = text.to_ascii_lowercase();
            for bad in ["http://", "https://", "//cdn", "@import"] {
                assert!(!lower.contains(bad), "{name} contains {bad}");
            }
        }
        // No stylesheet resource (fonts, images) of any kind.
        assert!(!CSS.contains("url(") && !TEMPLATE.contains("url("));
        for mark in [CSS_MARK, DATA_MARK, JS_MARK] {
            assert_eq!(TEMPLATE.matches(mark).count(), 1, "{mark}");
        }
        // The page as a whole: no URL outside the data.
        let html = render_html(&sample());
        let data = embedded(&html);
        let outside = html.replacen(data, "", 1).to_ascii_lowercase();
        assert!(!outside.contains("http://") && !outside.contains("https://"));
    }
}
