//! The report page in a real browser: headless Chromium (Debian's `chromium` + `chromedriver`)
//! opens rendered reports from `file://` with every network request trapped, and the test
//! checks what an operator sees: exact numbers from the JSON in the DOM, the icicle chart
//! drawn, zoom and search working, sorting, CSV/JSON downloads, keys shown as text, readable
//! contrast in light and dark, and the time until every section is rendered.
//!
//! Skips (with a note) only when chromium or chromedriver is not installed; `scripts/test.sh`
//! installs both, so CI runs it.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::browser::{Browser, group};
use common::report_data::{self, BASELINE, SynthKey};
use rdbinsight::report::model::{
    KeyText, MAX_PREFIX_NODES, Recommendation, ReportData, SmallCollections, TOP_SLOTS,
};
use rdbinsight::report::render_html;
use serde_json::{Value, json};

/// Page ready (every section built, chart drawn), in ms since navigation start, for the
/// 10,000-node report (a 2.9 MB page). 0.2–0.4 s on the 2-core test machine; the budget
/// leaves room for a loaded CI host.
const READY_BUDGET_10K_MS: u64 = 2_000;
/// The same for the largest tree the model allows (100,000 nodes, a 28 MB page): ~0.7 s here.
const READY_BUDGET_100K_MS: u64 = 10_000;

const WAIT: Duration = Duration::from_secs(20);

/// The page's rounded count beside the exact one (`8.1K`, `500K`, `1.2M`).
fn short(n: u64) -> String {
    if n < 1000 {
        return group(n);
    }
    let units = ["", "K", "M", "B", "T", "Q"];
    let (mut v, mut u) = (n as f64, 0);
    while v >= 1000.0 && u < units.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    let mut r = if v < 100.0 {
        (v * 10.0).round() / 10.0
    } else {
        v.round()
    };
    if r >= 1000.0 && u < units.len() - 1 {
        r = 1.0;
        u += 1;
    }
    let r = if r >= 10.0 { r.round() } else { r };
    format!("{r}{}", units[u])
}

/// The page's file-name rule: every run of characters other than `A-Za-z0-9._-` becomes `_`.
fn file_safe(s: &str) -> String {
    let (mut out, mut in_run) = (String::new(), false);
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('_');
            in_run = true;
        }
    }
    out
}

fn target_dir() -> PathBuf {
    // target/<profile>/deps/<this test binary>
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// Open `html` (written to `dir/name`) and wait until the page says it is ready; return the
/// ready time in ms. Drains both logs first so later checks see this page only.
fn open(b: &Browser, dir: &Path, name: &str, html: &str) -> (String, u64) {
    let path = dir.join(name);
    std::fs::write(&path, html).expect("write the page");
    b.log("browser");
    b.log("performance");
    let url = file_url(&path);
    b.goto(&url);
    let ready = b.wait_for(
        "document.documentElement.getAttribute('data-report-ready')",
        WAIT,
    );
    let ms: u64 = ready
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("ready ms");
    (url, ms)
}

/// No request left the page: the proxy trap saw nothing, the page has no resource entries,
/// and DevTools saw no request but the page itself (and `blob:` downloads).
fn assert_no_network(b: &Browser, page_url: &str, just_opened: bool) {
    assert_eq!(
        b.proxy.seen(),
        Vec::<String>::new(),
        "connections reached the proxy trap"
    );
    let n = b.exec(
        "return performance.getEntriesByType('resource').length;",
        json!([]),
    );
    assert_eq!(n, json!(0), "resource timing entries");
    let requests = b.requests_of(page_url);
    if just_opened {
        // The navigation itself is seen, so the filter on the document works.
        assert!(
            requests.iter().any(|u| u == page_url),
            "no navigation seen: {requests:?}"
        );
    }
    for url in &requests {
        assert!(
            url == page_url || url.starts_with("blob:"),
            "the page requested {url}"
        );
    }
}

/// Console errors and warnings, uncaught exceptions and failed loads since the last drain.
fn console_problems(b: &Browser) -> Vec<Value> {
    b.log("browser")
        .into_iter()
        .filter(|e| e["level"] == "SEVERE" || e["level"] == "WARNING")
        .collect()
}

fn assert_clean_console(b: &Browser) {
    let bad = console_problems(b);
    assert!(bad.is_empty(), "browser log: {bad:#?}");
}

/// WCAG contrast ratios of the text/background pairs that carry information.
const CONTRAST_JS: &str = r#"
function lum(c) {
  var m = c.match(/[\d.]+/g).map(Number);
  var a = m.length > 3 ? m[3] : 1;
  return m.slice(0, 3).map(function (v) {
    v = v / 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  }).reduce(function (s, v, i) { return s + v * [0.2126, 0.7152, 0.0722][i]; }, 0) + 0 * a;
}
function bg(e) {
  for (; e; e = e.parentElement) {
    var c = getComputedStyle(e).backgroundColor;
    if (c && c !== 'transparent' && !/rgba\(.*,\s*0\)$/.test(c)) return c;
  }
  return 'rgb(255,255,255)';
}
var sel = arguments[0], out = {};
sel.forEach(function (s) {
  var e = document.querySelector(s);
  if (!e) { out[s] = -1; return; }
  var a = lum(getComputedStyle(e).color), b = lum(bg(e));
  out[s] = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
});
return out;
"#;

fn assert_contrast(b: &Browser, scheme: &str) {
    let selectors = [
        "body",
        "#summary .meta-line",
        "#total-keys .approx",
        "#rdb-size-note",
        "#mem-total",
        "#t-by-type th button",
        "#t-by-type td",
        "#t-prefixes td button.link",
        "nav.toc a",
        "#export-json",
        "#chart-crumbs button[aria-current]",
        ".tbl-tools .muted",
    ];
    let v = b.exec(CONTRAST_JS, json!([selectors]));
    for s in selectors {
        let ratio = v[s].as_f64().unwrap_or(-1.0);
        assert!(
            ratio >= 4.5,
            "{scheme}: contrast of {s} is {ratio:.2} (< 4.5)"
        );
    }
}

/// A tiny RFC 4180 reader (quoted fields, doubled quotes, CRLF) for the CSV downloads.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    assert!(text.ends_with("\r\n"), "CSV ends with CRLF");
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "CR without LF");
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

/// Where the centre of a child of the root is drawn: the root spans the canvas width, its
/// children follow in prefix order with widths proportional to bytes.
fn child_center(data: &ReportData, child: usize, width: f64) -> f64 {
    let nodes = &data.prefix_tree.nodes;
    let root_bytes = nodes[0].agg.mem_size as f64;
    let mut x = 0.0;
    for (i, n) in nodes.iter().enumerate() {
        if n.parent != Some(0) {
            continue;
        }
        let w = width * n.agg.mem_size as f64 / root_bytes;
        if i == child {
            return x + w / 2.0;
        }
        x += w;
    }
    panic!("{child} is not a child of the root");
}

#[test]
fn report_page_in_headless_chromium() {
    let Some(b) = Browser::start(1280, 2000) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let shots = target_dir();

    // --- A realistic report with 10,000 prefix nodes -------------------------------------
    let t0 = Instant::now();
    let data = report_data::synthetic(10_000, 0x5EED_0001);
    let html = render_html(&data);
    eprintln!(
        "10k-node report: {} bytes of HTML, built in {:?}",
        html.len(),
        t0.elapsed()
    );
    assert_eq!(data.prefix_tree.nodes.len(), 10_000);
    // Kept beside the screenshots for a look by hand.
    std::fs::write(shots.join("report-sample.html"), &html).expect("write the sample page");
    let (url, ready_ms) = open(&b, dir.path(), "report.html", &html);
    eprintln!("10k-node report ready after {ready_ms} ms (budget {READY_BUDGET_10K_MS} ms)");
    assert!(ready_ms <= READY_BUDGET_10K_MS, "ready after {ready_ms} ms");
    assert_no_network(&b, &url, true);
    assert_clean_console(&b);

    // Header: exact totals with our own grouping, the rounded form beside them.
    let t = &data.totals;
    let keys = t.agg.keys;
    assert_eq!(
        b.text("#total-keys .exact"),
        format!("{} keys({})", group(keys), short(keys))
    );
    assert!(
        b.text("#total-bytes .exact")
            .starts_with(&format!("{} bytes(", group(t.agg.rdb_size)))
    );
    assert_eq!(b.text("#total-instances .exact"), "3 instances");
    assert_eq!(b.text("#total-dbs .exact"), format!("{} dbs", t.dbs));
    assert!(
        b.text("#rdb-size-note")
            .contains("The prefix tree and every ranking use mem_size")
    );
    // The page opens on the memory answer: the JSON's total, the bar by type, the models.
    assert_eq!(
        b.text("#mem-total"),
        format!("{} bytes", group(t.agg.mem_size))
    );
    let above = b.exec(
        "var r = document.getElementById('mem-answer').getBoundingClientRect(); \
         return r.top >= 0 && r.bottom <= window.innerHeight;",
        json!([]),
    );
    assert_eq!(above, json!(true), "the memory answer is above the fold");
    let segs = b.exec(
        "return Array.from(document.querySelectorAll('#mem-bar .seg'))\
           .map(function (s) { return s.getAttribute('data-type'); });",
        json!([]),
    );
    let want_types: Vec<&str> = data
        .by_type
        .iter()
        .filter(|r| r.agg.mem_size > 0)
        .map(|r| r.r#type.as_str())
        .collect();
    assert_eq!(
        segs,
        json!(want_types),
        "one segment per type holding memory, largest first"
    );
    let models = b.text("#mem-models tbody");
    for m in &data.memory.instances {
        assert!(models.contains(&m.instance), "{models}");
        match &m.model {
            Some(name) => assert!(models.contains(name.as_str()), "{models}"),
            None => assert!(models.contains("unknown (not stored"), "{models}"),
        }
    }
    assert!(models.contains("(approximate)"), "{models}");
    assert!(
        b.text("#mem-missing")
            .contains("no mem_size (module values"),
        "module keys are said to have no mem_size"
    );
    assert_eq!(b.text("#batch"), report_data::BATCH);
    assert_eq!(b.text("#node-count"), "10,000 prefix nodes");

    // Keys are text, never markup: the `</script><b>` key shows as itself, no element came of it.
    let nasty = "</script><b>x</b>:all";
    let shown = b.exec(
        "var k = arguments[0]; return Array.from(document.querySelectorAll('#t-top-members td.keycell'))\
           .some(function (td) { return td.textContent === k; });",
        json!([nasty]),
    );
    assert_eq!(shown, json!(true), "the </script> key is shown as text");
    assert_eq!(
        b.exec("return document.querySelectorAll('b').length;", json!([])),
        json!(0)
    );
    assert_eq!(
        b.exec("return document.scripts.length;", json!([])),
        json!(2)
    );
    // A binary key shows its \xNN escapes and carries its exact bytes.
    let bin = b.exec(
        "var k = arguments[0]; var td = Array.from(document.querySelectorAll('#t-top-members td.keycell'))\
           .filter(function (td) { return td.textContent === k; })[0];\
         return td ? td.firstChild.getAttribute('title') : null;",
        json!(["\\xff\\xfe\\x00bin:lb"]),
    );
    assert!(
        bin.as_str().is_some_and(|s| s.contains("base64")),
        "binary key title: {bin}"
    );

    // Tables hold the numbers of the JSON, in the JSON's order.
    let rows = b.exec(
        "return document.querySelectorAll('#t-by-type tbody tr').length;",
        json!([]),
    );
    assert_eq!(rows, json!(data.by_type.len()));
    assert_eq!(
        b.text("#t-by-type tbody tr:first-child td:first-child"),
        data.by_type[0].r#type
    );
    assert_eq!(
        b.text("#t-by-type tbody tr:first-child td:nth-child(2)"),
        group(data.by_type[0].agg.keys)
    );
    let top = &data.top_keys_by_size[0];
    assert_eq!(
        b.text("#t-top-size tbody tr:first-child td:nth-child(2)"),
        top.key.text
    );
    let title = b.exec(
        "return document.querySelector('#t-top-size tbody tr:first-child td:nth-child(7) span').title;",
        json!([]),
    );
    let top_mem = top.mem_size.expect("the largest key has a mem_size");
    assert_eq!(title, json!(format!("{} bytes", group(top_mem))));
    assert_eq!(
        b.text("#t-prefixes .tbl-tools [aria-live]"),
        "rows 1\u{2013}25 of 10,000"
    );

    // Every section has its content.
    let o = &data.outliers;
    let more = o.big_keys_total - o.big_keys.len() as u64;
    assert!(more > 0);
    assert!(
        b.text("#big-keys-more")
            .starts_with(&format!("{} more big keys are not listed", group(more)))
    );
    let idle = &data.cold.idle.with_field;
    assert!(b.text("#t-idle-share").starts_with(&format!(
        "{} of {} keys",
        group(idle.keys),
        group(keys)
    )));
    let freq = &data.cold.freq.with_field;
    assert!(b.text("#t-freq-share").starts_with(&format!(
        "{} of {} keys",
        group(freq.keys),
        group(keys)
    )));
    let no_ttl = &data.expiry.buckets[0].agg;
    assert!(
        b.text("#no-ttl-summary")
            .starts_with(&format!("{} keys", group(no_ttl.keys)))
    );
    assert!(b.text("#balance-summary").starts_with("3 instances."));
    assert_eq!(
        b.exec(
            "return document.querySelectorAll('#t-slots-bytes tbody tr').length;",
            json!([])
        ),
        json!(TOP_SLOTS)
    );
    let shared = data.balance.shared_slots.len();
    assert!(shared > 0);
    assert!(
        b.text("#shared-summary")
            .starts_with(&format!("{} slots have keys", group(shared as u64)))
    );
    let recs = b.exec(
        "return Array.from(document.querySelectorAll('#recs li')).map(function (l) { return l.dataset.rec; });",
        json!([]),
    );
    for id in [
        "big-strings",
        "huge-collections",
        "small-hash",
        "expired",
        "many-dbs",
        "shared-slots",
    ] {
        assert!(
            recs.as_array().unwrap().contains(&json!(id)),
            "recommendation {id} in {recs}"
        );
    }

    // Sorting: by keys (descending, then ascending), then by type name.
    let mut by_keys: Vec<(u64, &str)> = data
        .by_type
        .iter()
        .map(|r| (r.agg.keys, r.r#type.as_str()))
        .collect();
    by_keys.sort();
    b.click("#t-by-type th:nth-child(2) button");
    assert_eq!(
        b.text("#t-by-type tbody tr:first-child td:first-child"),
        by_keys.last().unwrap().1
    );
    b.click("#t-by-type th:nth-child(2) button");
    assert_eq!(
        b.text("#t-by-type tbody tr:first-child td:first-child"),
        by_keys[0].1
    );
    let sort_state = b.exec(
        "return document.querySelector('#t-by-type th:nth-child(2)').getAttribute('aria-sort');",
        json!([]),
    );
    assert_eq!(sort_state, json!("ascending"));
    b.click("#t-by-type th:nth-child(1) button");
    let mut names: Vec<&str> = data.by_type.iter().map(|r| r.r#type.as_str()).collect();
    names.sort();
    assert_eq!(
        b.text("#t-by-type tbody tr:first-child td:first-child"),
        names[0]
    );

    // The chart: drawn, with the root in focus.
    let drawn: u64 = b
        .exec(
            "return Number(document.getElementById('prefix-canvas').dataset.drawnNodes);",
            json!([]),
        )
        .as_u64()
        .unwrap();
    assert!(drawn > 50 && drawn <= 10_000, "drawn nodes: {drawn}");
    let colours = b.exec(
        "var c = document.getElementById('prefix-canvas'); var d = c.getContext('2d')\
           .getImageData(0, 0, c.width, c.height).data; var s = new Set();\
         for (var i = 0; i < d.length; i += 4 * 97) s.add(d[i] + ',' + d[i + 1] + ',' + d[i + 2]);\
         return s.size;",
        json!([]),
    );
    assert!(
        colours.as_u64().unwrap() > 5,
        "the canvas is painted: {colours} colours"
    );
    assert!(
        b.text("#chart-focus")
            .starts_with("Showing (empty prefix: all keys):")
    );
    let crumbs = "return document.querySelectorAll('#chart-crumbs li').length;";
    assert_eq!(b.exec(crumbs, json!([])), json!(1));

    // Hover and click the biggest child of the root.
    let (child, node) = data
        .prefix_tree
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.parent == Some(0))
        .max_by_key(|(_, n)| n.agg.mem_size)
        .unwrap();
    let rect = b.exec(
        "var c = document.getElementById('prefix-canvas'); c.scrollIntoView({block: 'center'});\
         var r = c.getBoundingClientRect(); return [r.left, r.top, r.width];",
        json!([]),
    );
    let (left, top_px, width) = (
        rect[0].as_f64().unwrap(),
        rect[1].as_f64().unwrap(),
        rect[2].as_f64().unwrap(),
    );
    let x = left + child_center(&data, child, width);
    b.pointer(x, top_px + 36.0, false);
    b.wait_for("!document.getElementById('chart-tip').hidden", WAIT);
    let tip = b.text("#chart-tip");
    assert!(tip.starts_with(&node.prefix.text), "tooltip: {tip}");
    assert!(
        tip.contains(&format!("Keys{} (", group(node.agg.keys))),
        "tooltip: {tip}"
    );
    b.pointer(x, top_px + 36.0, true);
    let focus = b.text("#chart-focus");
    assert!(
        focus.starts_with(&format!(
            "Showing {}: {} keys, {} bytes",
            node.prefix.text,
            group(node.agg.keys),
            group(node.agg.mem_size)
        )),
        "focus after the click: {focus}"
    );
    assert_eq!(b.exec(crumbs, json!([])), json!(2));
    assert_eq!(b.text("#chart-crumbs [aria-current]"), node.prefix.text);
    // Clicking the top row zooms back out; so does the first breadcrumb.
    b.pointer(left + width / 2.0, top_px + 12.0, true);
    assert_eq!(b.exec(crumbs, json!([])), json!(1));
    b.pointer(x, top_px + 36.0, true);
    assert_eq!(b.exec(crumbs, json!([])), json!(2));
    b.click("#chart-crumbs li:first-child button");
    assert_eq!(b.exec(crumbs, json!([])), json!(1));
    assert!(
        b.text("#chart-focus")
            .starts_with("Showing (empty prefix: all keys):")
    );

    // Search: highlights in the chart and lists the matches, largest first.
    let mut found: Vec<(u64, usize)> = data
        .prefix_tree
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.prefix.text.to_lowercase().contains("session"))
        .map(|(i, n)| (n.agg.mem_size, i))
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    assert!(found.len() > 100);
    b.type_text("#prefix-search", "SESSION");
    let count = b.wait_for("document.getElementById('search-count').textContent", WAIT);
    assert!(
        count
            .as_str()
            .unwrap()
            .starts_with(&format!("{} matching nodes", group(found.len() as u64))),
        "search count: {count}"
    );
    let lit = b.exec(
        "return Number(document.getElementById('prefix-canvas').dataset.highlighted);",
        json!([]),
    );
    assert!(lit.as_u64().unwrap() > 0, "highlighted nodes: {lit}");
    assert_eq!(
        b.exec(
            "return document.querySelectorAll('#search-results li').length;",
            json!([])
        ),
        json!(100)
    );
    let first = &data.prefix_tree.nodes[found[0].1];
    assert_eq!(
        b.text("#search-results li:first-child button"),
        first.prefix.text
    );
    b.click("#search-results li:first-child button");
    let focus = b.text("#chart-focus");
    assert!(
        focus.starts_with(&format!("Showing {}:", first.prefix.text)),
        "focus: {focus}"
    );
    b.clear("#prefix-search");
    b.wait_for(
        "document.getElementById('search-count').textContent === ''",
        WAIT,
    );
    b.click("#zoom-reset");
    assert_eq!(b.exec(crumbs, json!([])), json!(1));

    // Readable in both schemes; screenshots of each.
    b.exec("window.scrollTo(0, 0);", json!([]));
    assert_contrast(&b, "light");
    b.screenshot(&shots.join("report-screenshot.png"));
    b.exec(
        "document.getElementById('prefixes').scrollIntoView();",
        json!([]),
    );
    b.screenshot(&shots.join("report-screenshot-chart.png"));
    b.cdp(
        "Emulation.setEmulatedMedia",
        json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
    );
    b.wait_for("matchMedia('(prefers-color-scheme: dark)').matches", WAIT);
    assert_contrast(&b, "dark");
    b.screenshot(&shots.join("report-screenshot-chart-dark.png"));
    b.exec("window.scrollTo(0, 0);", json!([]));
    b.screenshot(&shots.join("report-screenshot-dark.png"));
    b.cdp("Emulation.setEmulatedMedia", json!({"features": []}));

    // Downloads: the JSON is the --json document byte for byte; CSV is RFC 4180.
    let stem = file_safe(&format!("rdb_report_{}_{}", data.cluster, data.batch));
    assert_eq!(stem, "rdb_report_prod-cache_2024-05-06T07_08_09.123456789Z");
    b.click("#export-json");
    let json_doc = b.downloaded(&format!("{stem}.json"));
    let mut want_json = serde_json::to_string(&data).unwrap();
    want_json.push('\n');
    assert!(
        json_doc == want_json.as_bytes(),
        "the JSON download differs from the --json document"
    );
    b.click("#t-top-members button[data-csv]");
    let csv = String::from_utf8(b.downloaded(&format!("{stem}_top_keys_by_members.csv"))).unwrap();
    let table = parse_csv(&csv);
    assert_eq!(table[0][..3], ["rank", "key", "key_base64"]);
    assert_eq!(table.len(), data.top_keys_by_members.len() + 1);
    let col = |name: &str| {
        table[0]
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("CSV column {name}: {:?}", table[0]))
    };
    let (members_col, mem_col, rdb_col) = (col("member_count"), col("mem_size"), col("rdb_size"));
    let mut formulas = 0;
    for (row, want) in table[1..].iter().zip(&data.top_keys_by_members) {
        // Text a spreadsheet would run as a formula gets a leading ' and its exact bytes.
        if want.key.text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            formulas += 1;
            assert_eq!(row[1], format!("'{}", want.key.text));
            assert_eq!(row[2], B64.encode(want.key.text.as_bytes()));
        } else {
            assert_eq!(row[1], want.key.text);
            assert_eq!(row[2], want.key.base64.clone().unwrap_or_default());
        }
        assert_eq!(row[members_col], want.member_count.to_string());
        // mem_size beside rdb_size; none (an empty field, not 0) for a module value.
        assert_eq!(
            row[mem_col],
            want.mem_size.map(|m| m.to_string()).unwrap_or_default()
        );
        assert_eq!(row[rdb_col], want.rdb_size.to_string());
    }
    assert_eq!(formulas, 1, "the =HYPERLINK(...) key is among the top keys");
    assert!(
        csv.contains("\"tags:\"\"quoted\"\",key\""),
        "a quoted CSV field"
    );
    assert_no_network(&b, &url, false);
    assert_clean_console(&b);

    // --- Sections with nothing to show say why -------------------------------------------
    let one = SynthKey {
        key: b"only:key".to_vec(),
        instance: 0,
        db: 0,
        r#type: "string",
        encoding: "raw",
        rdb_size: 120,
        mem_size: Some(200),
        member_count: 1,
        ttl_ms: Some(7_200_000),
        idle_seconds: None,
        freq: None,
        slot: 7,
    };
    // The cluster name carries escape-like text and the characters the embedding escapes:
    // the JSON download must still be the --json document byte for byte.
    let cluster = "one\\u003c<key>&\u{2028}\\\\u2029";
    let small = report_data::aggregate(
        std::slice::from_ref(&one),
        vec![Vec::new(), b"only:key".to_vec()],
        data.params.clone(),
        cluster,
    );
    let (url, _) = open(&b, dir.path(), "one.html", &render_html(&small));
    b.click("#export-json");
    let name = format!(
        "{}.json",
        file_safe(&format!("rdb_report_{cluster}_{}", report_data::BATCH))
    );
    let mut want_json = serde_json::to_string(&small).unwrap();
    want_json.push('\n');
    assert!(
        b.downloaded(&name) == want_json.as_bytes(),
        "JSON download of {cluster:?}"
    );
    assert_eq!(
        b.text("#t-idle-empty"),
        "No keys carry idle_seconds: the server's maxmemory-policy is not LRU \
         (Redis writes idle_seconds into the RDB only under an LRU policy)."
    );
    assert!(
        b.text("#t-freq-empty")
            .starts_with("No keys carry freq: the server's maxmemory-policy is not LFU")
    );
    assert!(b.text("#big-keys-summary").starts_with("No big keys"));
    assert_eq!(
        b.text("#no-recs"),
        "Nothing to recommend: none of the checks found anything."
    );
    assert_no_network(&b, &url, true);
    assert_clean_console(&b);

    // A deep chain (a, aa, aaa, ...): zooming to the deepest node keeps the path short.
    let chain: Vec<SynthKey> = (1..=50)
        .map(|i| SynthKey {
            key: vec![b'a'; i],
            rdb_size: 1000,
            mem_size: Some(1500),
            ..one.clone()
        })
        .collect();
    let prefixes = chain.iter().map(|k| k.key.clone()).collect();
    let deep = report_data::aggregate(&chain, prefixes, data.params.clone(), "deep");
    let (url, _) = open(&b, dir.path(), "deep.html", &render_html(&deep));
    b.click("#t-prefixes th:nth-child(2) button"); // prefix bytes, largest first
    b.click("#t-prefixes tbody tr:first-child button.link");
    assert_eq!(b.exec(crumbs, json!([])), json!(10));
    assert_eq!(
        b.text("#chart-crumbs li:nth-child(2)"),
        "\u{2026} 41 levels"
    );
    assert_eq!(b.text("#chart-crumbs [aria-current]"), "\u{2026}a");
    assert_no_network(&b, &url, true);
    assert_clean_console(&b);

    let empty = report_data::empty();
    let (url, _) = open(&b, dir.path(), "empty.html", &render_html(&empty));
    assert!(
        b.text("#empty-batch")
            .starts_with("This batch holds no keys")
    );
    assert_eq!(b.text("#total-keys .exact"), "0 keys");
    assert_eq!(b.text("#node-count"), "0 prefix nodes");
    assert!(
        b.text("#prefixes .empty")
            .starts_with("No prefix nodes: the batch holds no bytes")
    );
    assert!(b.text("#no-slots").starts_with("No slot information"));
    assert_no_network(&b, &url, true);
    assert_clean_console(&b);

    // --- The largest tree the model allows stays usable -----------------------------------
    let t0 = Instant::now();
    let max = report_data::synthetic(MAX_PREFIX_NODES, 0x5EED_0002);
    let html = render_html(&max);
    eprintln!(
        "{}-node report: {} bytes of HTML, built in {:?}",
        MAX_PREFIX_NODES,
        html.len(),
        t0.elapsed()
    );
    let (url, ready_ms) = open(&b, dir.path(), "max.html", &html);
    eprintln!(
        "{MAX_PREFIX_NODES}-node report ready after {ready_ms} ms (budget {READY_BUDGET_100K_MS} ms)"
    );
    assert!(
        ready_ms <= READY_BUDGET_100K_MS,
        "ready after {ready_ms} ms"
    );
    assert_eq!(
        b.text("#node-count"),
        format!("{} prefix nodes", group(MAX_PREFIX_NODES as u64))
    );
    // Interactions stay quick: sorting all nodes, zooming, searching (ms, measured in the page).
    let timing = b.exec(
        "var t = performance.now();\
         document.querySelector('#t-prefixes th:nth-child(5) button').click();\
         var sort = performance.now() - t; t = performance.now();\
         document.querySelector('#t-prefixes tbody tr:nth-child(2) button.link').click();\
         var zoom = performance.now() - t; t = performance.now();\
         document.getElementById('zoom-reset').click();\
         var reset = performance.now() - t;\
         return [sort, zoom, reset];",
        json!([]),
    );
    eprintln!(
        "{MAX_PREFIX_NODES} nodes: sort {:.0} ms, zoom {:.0} ms, zoom out {:.0} ms",
        timing[0].as_f64().unwrap(),
        timing[1].as_f64().unwrap(),
        timing[2].as_f64().unwrap()
    );
    for (what, v) in ["sort", "zoom", "zoom out"]
        .iter()
        .zip(timing.as_array().unwrap())
    {
        assert!(v.as_f64().unwrap() < 2_000.0, "{what} took {v} ms");
    }
    let t0 = Instant::now();
    b.type_text("#prefix-search", "user");
    b.wait_for("document.getElementById('search-count').textContent", WAIT);
    eprintln!(
        "{MAX_PREFIX_NODES} nodes: search answered in {:?} (150 ms of it is the typing debounce)",
        t0.elapsed()
    );
    assert_no_network(&b, &url, true);
    assert_clean_console(&b);

    // --- The checks above can fail: a broken page trips each of them ----------------------
    let canary = "<!DOCTYPE html><html><body><script>\
        console.error('canary console error');\
        fetch('http://example.invalid/canary').catch(function () {});\
        </script><script>throw new Error('canary exception');</script></body></html>";
    std::fs::write(dir.path().join("canary.html"), canary).unwrap();
    b.log("browser");
    b.goto(&file_url(&dir.path().join("canary.html")));
    let t0 = Instant::now();
    while b.proxy.seen().is_empty() && t0.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = b.proxy.seen();
    assert!(
        seen.iter().any(|l| l.contains("example.invalid")),
        "the proxy trap must see a page's request: {seen:?}"
    );
    let problems = format!("{:?}", console_problems(&b));
    assert!(
        problems.contains("canary console error") && problems.contains("canary exception"),
        "the console check must see the canary's errors: {problems}"
    );
}

/// `+1,234` / `-1,234` / `0`, as the page writes a signed count.
fn signed(n: i128) -> String {
    let g = group(n.unsigned_abs() as u64);
    match n.signum() {
        1 => format!("+{g}"),
        -1 => format!("-{g}"),
        _ => g,
    }
}

/// A prefix as the changes tables show it.
fn prefix_shown(text: &str) -> &str {
    if text.is_empty() {
        "(empty prefix: all keys)"
    } else {
        text
    }
}

/// The first `n` rows' cells (text) of a page table.
fn first_rows(b: &Browser, table: &str, n: usize) -> Vec<Vec<String>> {
    let v = b.exec(
        "return Array.from(document.querySelectorAll('#' + arguments[0] + ' tbody tr')).slice(0, arguments[1])\
           .map(function (tr) { return Array.from(tr.cells).map(function (td) { return td.textContent; }); });",
        json!([table, n]),
    );
    serde_json::from_value(v).expect("rows of text")
}

/// `--baseline`: the changes section shows the JSON's totals, deltas and rankings, the movers
/// chart and the growth colouring of the icicle work, nothing is requested, the console is
/// clean; a page without `changes` has no such section.
#[test]
fn changes_section_in_headless_chromium() {
    let Some(b) = Browser::start(1280, 1800) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let shots = target_dir();
    let data = report_data::synthetic_with_changes(600, 0x5EED_0003);
    let ch = data.changes.as_ref().expect("changes");
    let html = render_html(&data);
    std::fs::write(shots.join("report-changes-sample.html"), &html).expect("write the sample page");
    let (url, _) = open(&b, dir.path(), "changes.html", &html);
    assert_no_network(&b, &url, true);
    assert_clean_console(&b);

    // The crafted baseline moves every way.
    assert!(ch.totals.delta.keys != 0 && ch.totals.delta.mem_size != 0);
    for (what, list) in [
        ("growth", &ch.growth),
        ("relative", &ch.relative_growth),
        ("appeared", &ch.appeared),
        ("vanished", &ch.vanished),
        ("shrink", &ch.shrink),
    ] {
        assert!(!list.is_empty(), "{what} is empty");
    }
    assert!(ch.keys_type_changed == 1 && !ch.top_new_keys.is_empty());

    // Heading, the line under the memory answer, the TOC entry.
    assert_eq!(b.text("#h-changes"), format!("Changes since {BASELINE}"));
    let line = b.text("#changes-line");
    assert!(
        line.starts_with(&format!("Since the baseline {BASELINE}: +")),
        "{line}"
    );
    assert!(
        line.contains(&format!("{} keys.", signed(ch.totals.delta.keys))),
        "{line}"
    );
    assert_eq!(
        b.exec(
            "return Array.from(document.querySelectorAll('nav.toc a')).map(function (a) { return a.getAttribute('href'); }).slice(0, 3);",
            json!([])
        ),
        json!(["#summary", "#changes", "#breakdowns"])
    );
    // The section comes first in the main part, right under the summary.
    assert_eq!(
        b.exec(
            "return document.querySelector('main').firstElementChild.id;",
            json!([])
        ),
        json!("changes")
    );

    // Totals of both batches and the deltas, exact.
    let t = &ch.totals;
    for (id, delta, before, now, unit) in [
        (
            "changes-keys",
            t.delta.keys,
            t.baseline.keys,
            t.current.keys,
            "keys",
        ),
        (
            "changes-bytes",
            t.delta.mem_size,
            t.baseline.mem_size,
            t.current.mem_size,
            "bytes",
        ),
        (
            "changes-rdb",
            t.delta.rdb_size,
            t.baseline.rdb_size,
            t.current.rdb_size,
            "bytes",
        ),
        (
            "changes-members",
            t.delta.member_count,
            t.baseline.member_count,
            t.current.member_count,
            "members",
        ),
        (
            "changes-no-ttl",
            ch.no_ttl.delta.mem_size,
            ch.no_ttl.baseline.mem_size,
            ch.no_ttl.current.mem_size,
            "bytes",
        ),
    ] {
        let exact = b.text(&format!("#{id} .exact"));
        assert!(
            exact.starts_with(&format!("{} {unit}(", signed(delta))),
            "{id}: {exact}"
        );
        let sub = b.text(&format!("#{id} .sub"));
        assert!(
            sub.starts_with(&format!("{} \u{2192} {}", group(before), group(now))),
            "{id}: {sub}"
        );
    }
    assert!(
        b.text("#changes-type-changed")
            .starts_with("1 key changed type")
    );
    assert_eq!(
        b.exec("return document.getElementById('changes-note');", json!([])),
        Value::Null,
        "no note when both batches use mem_size"
    );

    // The groups table: all keys first, then no TTL, expired, types, dbs, instances.
    let groups = first_rows(&b, "t-changes-groups", 3);
    assert_eq!(groups[0][1], "all keys");
    assert_eq!(groups[0][2], group(t.baseline.keys));
    assert_eq!(groups[0][3], group(t.current.keys));
    assert_eq!(groups[0][4], signed(t.delta.keys));
    assert_eq!(groups[1][1], "without a TTL");
    assert_eq!(
        b.exec(
            "return Number(document.getElementById('t-changes-groups').dataset.rows);",
            json!([])
        ),
        json!(3 + ch.by_type.len() + ch.by_db.len() + ch.by_instance.len())
    );

    // Every prefix, biggest growth first (ties: the JSON's order).
    let mut order: Vec<usize> = (0..ch.prefixes.len()).collect();
    order.sort_by(|&a, &b| {
        ch.prefixes[b]
            .delta
            .mem_size
            .cmp(&ch.prefixes[a].delta.mem_size)
            .then(a.cmp(&b))
    });
    assert_eq!(
        b.exec(
            "return Number(document.getElementById('t-changes-prefixes').dataset.rows);",
            json!([])
        ),
        json!(ch.prefixes.len())
    );
    let rows = first_rows(&b, "t-changes-prefixes", 3);
    for (row, &i) in rows.iter().zip(&order) {
        let p = &ch.prefixes[i];
        assert_eq!(row[0], prefix_shown(&p.prefix.text));
        assert_eq!(row[2], group(p.baseline.keys));
        assert_eq!(row[3], group(p.current.keys));
        assert_eq!(row[4], signed(p.delta.keys));
    }
    let title = b.exec(
        "return document.querySelector('#t-changes-prefixes tbody tr td:nth-child(8) span').title;",
        json!([]),
    );
    assert_eq!(
        title,
        json!(format!(
            "{} bytes",
            signed(ch.prefixes[order[0]].delta.mem_size)
        ))
    );

    // The ranked lists, in the JSON's order.
    for (id, list) in [
        ("t-changes-growth", &ch.growth),
        ("t-changes-relative", &ch.relative_growth),
        ("t-changes-appeared", &ch.appeared),
        ("t-changes-vanished", &ch.vanished),
        ("t-changes-shrink", &ch.shrink),
    ] {
        assert_eq!(
            b.exec(
                "return Number(document.getElementById(arguments[0]).dataset.rows);",
                json!([id])
            ),
            json!(list.len()),
            "{id}"
        );
        let rows = first_rows(&b, id, 3);
        for (r, (row, &i)) in rows.iter().zip(list).enumerate() {
            let p = &ch.prefixes[i as usize];
            assert_eq!(row[0], (r + 1).to_string(), "{id}");
            assert_eq!(row[1], prefix_shown(&p.prefix.text), "{id} row {r}");
            assert_eq!(row[5], signed(p.delta.keys), "{id} row {r}");
        }
    }
    assert!(
        ch.vanished
            .iter()
            .all(|&i| ch.prefixes[i as usize].prefix.text.starts_with("old:"))
    );
    // The key lists.
    for (id, list) in [
        ("t-changes-key-growth", &ch.top_key_growth),
        ("t-changes-new-keys", &ch.top_new_keys),
    ] {
        let rows = first_rows(&b, id, 3);
        for (row, k) in rows.iter().zip(list) {
            assert_eq!(row[1], k.key.text, "{id}");
            assert_eq!(row[2], k.db.to_string(), "{id}");
        }
        let title = b.exec(
            "return document.querySelector('#' + arguments[0] + ' tbody tr td:nth-child(8) span').title;",
            json!([id]),
        );
        assert_eq!(title, json!(format!("{} bytes", signed(list[0].delta))));
    }
    let tc = b.exec(
        "return Array.from(document.querySelectorAll('#t-changes-key-growth td, #t-changes-new-keys td'))\
           .some(function (td) { return td.textContent.indexOf('(was list)') >= 0; });",
        json!([]),
    );
    let tc_listed = ch
        .top_key_growth
        .iter()
        .chain(&ch.top_new_keys)
        .any(|k| k.type_changed);
    assert_eq!(tc, json!(tc_listed), "a type change is flagged");

    // The movers chart: the biggest growths, then the biggest shrinks (smallest last).
    let movers = b.exec(
        "return Array.from(document.querySelectorAll('#changes-movers .mv-val')).map(function (e) { return Number(e.dataset.delta); });",
        json!([]),
    );
    // (The empty prefix, all keys, is left out: its change is the total.)
    let movers_of = |list: &[u32]| -> Vec<i128> {
        list.iter()
            .map(|&i| &ch.prefixes[i as usize])
            .filter(|p| !p.prefix.text.is_empty())
            .take(10)
            .map(|p| p.delta.mem_size)
            .collect()
    };
    assert!(
        ch.growth
            .iter()
            .any(|&i| ch.prefixes[i as usize].prefix.text.is_empty()),
        "the crafted pair has the empty prefix among the growth"
    );
    let mut want = movers_of(&ch.growth);
    want.extend(movers_of(&ch.shrink).into_iter().rev());
    let want: Vec<i64> = want.iter().map(|&d| d as i64).collect();
    assert_eq!(movers, json!(want));
    let bars = b.exec(
        "return Array.from(document.querySelectorAll('#changes-movers .mv-bar')).map(function (e) {\
           var r = e.getBoundingClientRect(), axis = e.parentElement.classList.contains('mv-neg') ? 'left' : 'right';\
           return [axis, Math.round(r.width)]; });",
        json!([]),
    );
    let bars = bars.as_array().expect("bars");
    assert_eq!(bars.len(), want.len());
    assert_eq!(bars[0][0], "right", "growth is drawn to the right");
    assert_eq!(bars[bars.len() - 1][0], "left", "shrink to the left");
    assert!(bars.iter().all(|b| b[1].as_i64().unwrap_or(0) >= 1));

    // Readable; screenshots in light and dark.
    b.exec(
        "document.getElementById('changes').scrollIntoView();",
        json!([]),
    );
    let v = b.exec(
        CONTRAST_JS,
        json!([[
            "#changes-keys .exact .up, #changes-keys .exact .down",
            "#changes-movers .mv-val"
        ]]),
    );
    for (_, r) in v.as_object().expect("ratios") {
        assert!(r.as_f64().unwrap_or(0.0) >= 4.5, "contrast {v}");
    }
    b.screenshot(&shots.join("report-changes.png"));
    b.exec(
        "document.getElementById('t-changes-prefixes').scrollIntoView();",
        json!([]),
    );
    b.screenshot(&shots.join("report-changes-tables.png"));
    b.cdp(
        "Emulation.setEmulatedMedia",
        json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
    );
    b.wait_for("matchMedia('(prefers-color-scheme: dark)').matches", WAIT);
    let v = b.exec(
        CONTRAST_JS,
        json!([[
            "#changes-keys .exact .up, #changes-keys .exact .down",
            "#changes-movers .mv-val"
        ]]),
    );
    for (_, r) in v.as_object().expect("ratios") {
        assert!(r.as_f64().unwrap_or(0.0) >= 4.5, "dark contrast {v}");
    }
    b.screenshot(&shots.join("report-changes-dark.png"));
    b.cdp("Emulation.setEmulatedMedia", json!({"features": []}));

    // The icicle coloured by growth: another picture, the other legend.
    // (toDataURL, not getImageData: repeated readbacks make Chromium log a warning.)
    let pixels = "var u = document.getElementById('prefix-canvas').toDataURL(), h = 0;\
       for (var i = 0; i < u.length; i++) h = (h * 31 + u.charCodeAt(i)) % 1000000007;\
       return h;";
    let by_type = b.exec(pixels, json!([]));
    b.exec(
        "var s = document.getElementById('chart-colour'); s.value = 'growth';\
         s.dispatchEvent(new Event('change'));",
        json!([]),
    );
    assert_eq!(
        b.exec(
            "return document.getElementById('prefix-canvas').dataset.colour;",
            json!([])
        ),
        json!("growth")
    );
    assert_ne!(
        b.exec(pixels, json!([])),
        by_type,
        "the chart was repainted"
    );
    assert_eq!(
        b.exec(
            "return ['chart-legend', 'growth-legend'].map(function (id) {\
               return getComputedStyle(document.getElementById(id)).display === 'none'; });",
            json!([])
        ),
        json!([true, false]),
        "the type legend is hidden, the growth legend shown"
    );
    assert!(
        b.text("#chart-colour-note")
            .starts_with("Colour: the change of the node's bytes since the baseline")
    );
    b.exec(
        "document.getElementById('prefixes').scrollIntoView();",
        json!([]),
    );
    b.screenshot(&shots.join("report-changes-icicle.png"));
    assert_no_network(&b, &url, false);
    assert_clean_console(&b);

    // The same report without --baseline: no changes section, no link, no colour toggle.
    let mut plain = data.clone();
    plain.changes = None;
    let (url, _) = open(&b, dir.path(), "plain.html", &render_html(&plain));
    assert_eq!(
        b.exec(
            "return [document.getElementById('changes'), document.getElementById('changes-line'),\
               document.querySelector('a[href=\"#changes\"]'), document.getElementById('chart-colour')];",
            json!([])
        ),
        json!([null, null, null, null])
    );
    assert_no_network(&b, &url, true);
    assert_clean_console(&b);
}

/// The recommendations on the page, in order: (kind, title, text).
fn shown_recs(b: &Browser) -> Vec<(String, String, String)> {
    let v = b.exec(
        "return Array.from(document.querySelectorAll('#recs li')).map(function (l) { \
           return [l.dataset.rec, l.querySelector('.rec-title').textContent, \
                   l.lastElementChild.textContent]; });",
        json!([]),
    );
    v.as_array()
        .expect("list")
        .iter()
        .map(|r| {
            let s = |i: usize| r[i].as_str().expect("text").to_string();
            (s(0), s(1), s(2))
        })
        .collect()
}

fn kt(s: &str) -> KeyText {
    KeyText {
        text: s.into(),
        base64: None,
        len: None,
        sha256: None,
    }
}

#[test]
fn recommendations_are_shown_from_the_json() {
    let Some(b) = Browser::start(1280, 1000) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");

    // A realistic batch: the page lists exactly the JSON's recommendations, in its order.
    let mut data = report_data::synthetic(300, 0x5EED_0003);
    assert!(
        data.recommendations.len() >= 4,
        "{:?}",
        data.recommendations
    );
    let (url, _) = open(&b, dir.path(), "recs.html", &render_html(&data));
    let kinds: Vec<String> = data
        .recommendations
        .iter()
        .map(|r| {
            serde_json::to_value(r).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let shown = shown_recs(&b);
    assert_eq!(shown.iter().map(|r| r.0.clone()).collect::<Vec<_>>(), kinds);
    assert_no_network(&b, &url, true);
    assert_clean_console(&b);

    // The same numbers without recommendations in the JSON: the page decides nothing itself.
    data.recommendations.clear();
    open(&b, dir.path(), "no-recs.html", &render_html(&data));
    assert!(shown_recs(&b).is_empty());
    assert_eq!(
        b.text("#no-recs"),
        "Nothing to recommend: none of the checks found anything."
    );

    // A batch with no keys at all, given one recommendation of every kind: each is phrased
    // from its own numbers.
    let mut empty = report_data::empty();
    let small = |encoding: &str, keys: u64, members: u64, left: u64| SmallCollections {
        encoding: encoding.into(),
        keys,
        bytes: 3 << 20,
        member_count: members,
        big_keys_left_out: left,
    };
    empty.recommendations = vec![
        Recommendation::BigStrings {
            keys: 3,
            at_least: true,
            largest: kt("blob:1"),
            largest_instance: "10.9.9.9:6379".into(),
            largest_bytes: 5 << 20,
        },
        Recommendation::HugeCollections {
            keys: 1,
            at_least: false,
            largest: kt("users:all"),
            largest_type: "zset".into(),
            largest_members: 2_500_000,
        },
        Recommendation::SmallHash(small("raw", 1234, 1234 * 12, 0)),
        Recommendation::SmallSet(small("raw", 10, 25, 2)),
        Recommendation::SmallZset(small("skip_list", 4, 512, 1)),
        Recommendation::NoTtl {
            keys: 77,
            bytes: 3,
            total_bytes: 4,
            prefix: Some(kt("session:")),
            prefix_bytes: 2 << 10,
        },
        Recommendation::Expired {
            keys: 1,
            bytes: 1 << 10,
        },
        Recommendation::ManyDbs {
            dbs: vec![0, 2, 15],
        },
        Recommendation::Imbalance {
            instance: "10.0.0.7:6379".into(),
            bytes: 3 << 20,
            total_bytes: 4 << 20,
            instances: 2,
        },
        Recommendation::SharedSlots { slots: 1 },
        Recommendation::Cold {
            keys: 5,
            bytes: 1 << 20,
            with_idle_bytes: 4 << 20,
        },
    ];
    let (url, _) = open(&b, dir.path(), "all-recs.html", &render_html(&empty));
    let shown = shown_recs(&b);
    let want: [(&str, &str, &str); 11] = [
        (
            "big-strings",
            "Big strings",
            "At least 3 string keys are over 1 MiB (largest: blob:1, 5 MiB on 10.9.9.9:6379).",
        ),
        (
            "huge-collections",
            "Huge collections",
            "1 collection has over 1,000,000 members or over 1 GiB (largest listed: users:all, a zset with 2,500,000 members).",
        ),
        (
            "small-hash",
            "Small hashes in a hash-table encoding",
            "1,234 hash keys (3 MiB) are stored as hash tables with 12 members on average",
        ),
        (
            "small-set",
            "Small sets in a hash-table encoding",
            "10 set keys (3 MiB, leaving out 2 big keys) are stored as hash tables with 2.5 members on average",
        ),
        (
            "small-zset",
            "Small sorted sets in a skip-list encoding",
            "4 zset keys (3 MiB, leaving out 1 big key) are stored as skip lists with 128 members on average",
        ),
        (
            "no-ttl",
            "Most data never expires",
            "75.0% of the bytes (77 keys) have no expiry; the biggest non-empty prefix among them is session: (2 KiB).",
        ),
        (
            "expired",
            "Expired keys still in the snapshot",
            "1 key (1 KiB) had already expired at batch time",
        ),
        (
            "many-dbs",
            "Keys in several databases",
            "Keys are spread over 3 databases (db 0, db 2, db 15).",
        ),
        (
            "imbalance",
            "Uneven instances",
            "Instance 10.0.0.7:6379 holds 3 MiB, 1.50\u{d7} the mean of 2 MiB over 2 instances.",
        ),
        (
            "shared-slots",
            "Slots found on several instances",
            "1 slot has keys on more than one instance",
        ),
        (
            "cold",
            "Long-idle data",
            "5 keys holding 1 MiB (25.0% of the bytes with an idle time) were not accessed for 30 days or more",
        ),
    ];
    assert_eq!(shown.len(), want.len(), "{shown:?}");
    for (got, (kind, title, start)) in shown.iter().zip(want) {
        assert_eq!(got.0, kind);
        assert_eq!(got.1, title);
        assert!(got.2.starts_with(start), "{kind}: {:?}", got.2);
    }
    assert_no_network(&b, &url, true);
    assert_clean_console(&b);
}
