//! The whole path an operator takes, in a real browser: `rdbinsight dump ... into-parquet` of a
//! real RDB file, `rdbinsight report from-parquet -o FILE.html --json FILE.json`, then FILE.html
//! opened from `file://` in headless Chromium with every network request trapped. The page must
//! embed exactly the `--json` document, request nothing, log no error, and show the JSON's
//! numbers. (`report_browser.rs` drives the page itself in depth on synthetic reports;
//! `tests/clickhouse/report.rs` checks the data, and that both stores give the same bytes.)
//!
//! Skips (with a note) only when chromium or chromedriver is not installed; `scripts/test.sh`
//! installs both, so CI runs it.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::browser::{Browser, group};
use common::dumps::run_ok;
use serde_json::{Value, json};

/// Equal JSON values, numbers compared as doubles (as JavaScript holds them).
fn same_numbers_as_doubles(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_numbers_as_doubles(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_numbers_as_doubles(v, w)))
        }
        _ => a == b,
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn dump_report_and_open_it_in_chromium() {
    let Some(b) = Browser::start(1280, 1600) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let rdb = common::fixtures::own_fixtures().join("r7-multidb.rdb");
    run_ok(&[
        "dump",
        "from-file",
        "--path",
        s(&rdb),
        "--cluster",
        "e2e",
        "--instance",
        "127.0.0.1:6379",
        "--batch-timestamp",
        "2025-06-01T12:00:00Z",
        "into-parquet",
        "--dir",
        s(&out),
    ]);
    let html = dir.path().join("report.html");
    let json_path = dir.path().join("report.json");
    run_ok(&[
        "report",
        "from-parquet",
        "--dir",
        s(&out),
        "--cluster",
        "e2e",
        "--prefix-threshold",
        "0.5",
        "-o",
        s(&html),
        "--json",
        s(&json_path),
    ]);
    let data: Value = serde_json::from_slice(&std::fs::read(&json_path).expect("json"))
        .expect("the --json file is JSON");
    let expected_keys =
        std::fs::read_to_string(common::fixtures::own_fixtures().join("r7-multidb.expected.jsonl"))
            .expect("expected")
            .lines()
            .count() as u64;
    assert_eq!(data["totals"]["keys"], json!(expected_keys));
    assert_eq!(data["batch"], "2025-06-01T12:00:00.000000000Z");

    b.log("browser");
    let url = format!("file://{}", html.display());
    b.goto(&url);
    b.wait_for(
        "document.documentElement.getAttribute('data-report-ready')",
        Duration::from_secs(20),
    );

    // Nothing left the page, nothing went wrong in it.
    assert_eq!(b.proxy.seen(), Vec::<String>::new(), "proxy trap");
    assert_eq!(
        b.exec(
            "return performance.getEntriesByType('resource').length;",
            json!([])
        ),
        json!(0)
    );
    for u in b.requests_of(&url) {
        assert!(u == url || u.starts_with("blob:"), "the page requested {u}");
    }
    let problems: Vec<Value> = b
        .log("browser")
        .into_iter()
        .filter(|e| e["level"] == "SEVERE" || e["level"] == "WARNING")
        .collect();
    assert!(problems.is_empty(), "browser log: {problems:#?}");

    // The page embeds exactly the --json document (as JavaScript sees it: every number a
    // double, so `109.0` and `109` are one value).
    let embedded = b.exec(
        "return JSON.parse(document.getElementById('report-data').textContent);",
        json!([]),
    );
    assert!(
        same_numbers_as_doubles(&embedded, &data),
        "the embedded document differs from --json"
    );

    // And shows its numbers.
    let keys = data["totals"]["keys"].as_u64().expect("keys");
    assert!(
        b.text("#total-keys .exact")
            .starts_with(&format!("{} keys", group(keys))),
        "{}",
        b.text("#total-keys .exact")
    );
    let bytes = data["totals"]["rdb_size"].as_u64().expect("bytes");
    assert!(
        b.text("#total-bytes .exact")
            .starts_with(&format!("{} bytes", group(bytes)))
    );
    assert_eq!(
        b.text("#total-dbs .exact"),
        format!("{} dbs", data["totals"]["dbs"])
    );
    let nodes = data["prefix_tree"]["nodes"]
        .as_array()
        .expect("nodes")
        .len();
    assert!(nodes > 1, "a tree worth drawing: {nodes} nodes");
    assert_eq!(b.text("#node-count"), format!("{nodes} prefix nodes"));
    let rows = |table: &str| {
        b.exec(
            &format!("return document.querySelectorAll('#{table} tbody tr').length;"),
            json!([]),
        )
    };
    assert_eq!(
        rows("t-by-type"),
        json!(data["by_type"].as_array().unwrap().len())
    );
    assert_eq!(
        rows("t-by-db"),
        json!(data["by_db"].as_array().unwrap().len())
    );
    // The biggest key is the first row of the top list, shown as its text.
    let first_key = b.exec(
        "var td = document.querySelector('#t-top-size tbody tr td.keycell');\
         return td ? td.textContent : null;",
        json!([]),
    );
    assert_eq!(first_key, data["top_keys_by_size"][0]["key"]["text"]);
    // The chart is drawn: some pixels of the canvas are not blank.
    let painted = b.exec(
        "var c = document.querySelector('canvas'); if (!c) return 0;\
         var d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, n = 0;\
         for (var i = 3; i < d.length; i += 4) if (d[i] !== 0) n++; return n;",
        json!([]),
    );
    assert!(
        painted.as_u64().unwrap_or(0) > 1000,
        "chart pixels: {painted}"
    );
}

/// `+1,234` / `-1,234` / `0`, as the page writes a signed count.
fn signed(n: i64) -> String {
    let g = group(n.unsigned_abs());
    match n.signum() {
        1 => format!("+{g}"),
        -1 => format!("-{g}"),
        _ => g,
    }
}

/// `--baseline previous` of two real dumps: the page embeds the `--json` document, requests
/// nothing, logs nothing, and its changes section shows that document's numbers.
#[test]
fn baseline_report_shows_its_changes_in_chromium() {
    let Some(b) = Browser::start(1280, 1600) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    for (fixture, batch) in [
        ("r7-strings.rdb", "2025-05-01T00:00:00Z"),
        ("r7-multidb.rdb", "2025-06-01T12:00:00Z"),
    ] {
        let rdb = common::fixtures::own_fixtures().join(fixture);
        run_ok(&[
            "dump",
            "from-file",
            "--path",
            s(&rdb),
            "--cluster",
            "e2e-diff",
            "--instance",
            "127.0.0.1:6379",
            "--batch-timestamp",
            batch,
            "into-parquet",
            "--dir",
            s(&out),
        ]);
    }
    let html = dir.path().join("diff.html");
    let json_path = dir.path().join("diff.json");
    run_ok(&[
        "report",
        "from-parquet",
        "--dir",
        s(&out),
        "--cluster",
        "e2e-diff",
        "--baseline",
        "previous",
        "--prefix-threshold",
        "0.5",
        "-o",
        s(&html),
        "--json",
        s(&json_path),
    ]);
    let data: Value = serde_json::from_slice(&std::fs::read(&json_path).expect("json"))
        .expect("the --json file is JSON");
    let ch = &data["changes"];
    assert_eq!(ch["baseline"], "2025-05-01T00:00:00.000000000Z");

    b.log("browser");
    let url = format!("file://{}", html.display());
    b.goto(&url);
    b.wait_for(
        "document.documentElement.getAttribute('data-report-ready')",
        Duration::from_secs(20),
    );
    assert_eq!(b.proxy.seen(), Vec::<String>::new(), "proxy trap");
    for u in b.requests_of(&url) {
        assert!(u == url || u.starts_with("blob:"), "the page requested {u}");
    }
    let problems: Vec<Value> = b
        .log("browser")
        .into_iter()
        .filter(|e| e["level"] == "SEVERE" || e["level"] == "WARNING")
        .collect();
    assert!(problems.is_empty(), "browser log: {problems:#?}");
    let embedded = b.exec(
        "return JSON.parse(document.getElementById('report-data').textContent);",
        json!([]),
    );
    assert!(
        same_numbers_as_doubles(&embedded, &data),
        "the embedded document differs from --json"
    );

    assert_eq!(
        b.text("#h-changes"),
        "Changes since 2025-05-01T00:00:00.000000000Z"
    );
    let field = if ch["measure"] == "mem" {
        "mem_size"
    } else {
        "rdb_size"
    };
    let t = &ch["totals"];
    let n = |v: &Value| v.as_i64().expect("an integer");
    for (id, f, unit) in [
        ("changes-keys", "keys", "keys"),
        ("changes-bytes", field, "bytes"),
        ("changes-members", "member_count", "members"),
    ] {
        let exact = b.text(&format!("#{id} .exact"));
        assert!(
            exact.starts_with(&format!("{} {unit}(", signed(n(&t["delta"][f])))),
            "{id}: {exact}"
        );
        let sub = b.text(&format!("#{id} .sub"));
        assert!(
            sub.starts_with(&format!(
                "{} \u{2192} {}",
                group(n(&t["baseline"][f]) as u64),
                group(n(&t["current"][f]) as u64)
            )),
            "{id}: {sub}"
        );
    }
    let rows = |table: &str| {
        b.exec(
            "return Number(document.getElementById(arguments[0]).dataset.rows);",
            json!([table]),
        )
    };
    let prefixes = ch["prefixes"].as_array().expect("prefixes");
    assert!(prefixes.len() > 1, "prefixes: {}", prefixes.len());
    assert_eq!(rows("t-changes-prefixes"), json!(prefixes.len()));
    for list in ["appeared", "vanished"] {
        assert!(
            !ch[list].as_array().expect("list").is_empty(),
            "the pair has {list} prefixes"
        );
    }
    for (table, list) in [
        ("t-changes-growth", "growth"),
        ("t-changes-appeared", "appeared"),
        ("t-changes-vanished", "vanished"),
        ("t-changes-shrink", "shrink"),
    ] {
        let list = ch[list].as_array().expect("list");
        assert_eq!(rows(table), json!(list.len()), "{table}");
        if let Some(i) = list.first() {
            let p = &prefixes[i.as_u64().expect("index") as usize];
            let text = p["prefix"]["text"].as_str().expect("text");
            let want = if text.is_empty() {
                "(empty prefix: all keys)"
            } else {
                text
            };
            let got = b.exec(
                "return document.querySelector('#' + arguments[0] + ' tbody tr td:nth-child(2)').textContent;",
                json!([table]),
            );
            assert_eq!(got, json!(want), "{table}");
        }
    }
    let first_new = b.exec(
        "var td = document.querySelector('#t-changes-new-keys tbody tr td.keycell');\
         return td ? td.textContent : null;",
        json!([]),
    );
    assert_eq!(first_new, ch["top_new_keys"][0]["key"]["text"]);
}
