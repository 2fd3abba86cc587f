//! The README's recipes for reading the Parquet output, run with the real readers on a real
//! dump: DuckDB, pyarrow, pandas, polars and the ClickHouse engine's `file()` (through chdb).
//! Each must return every row, `cluster` as text and `batch` as a timestamp equal to the batch,
//! and nothing from a batch still being written (`_tmp_batch=`).
//!
//! The recipes live in `scripts/parquet-readers.py` (one `# RECIPE` line per reader, quoted by
//! the README). The Python interpreters come from `RDBINSIGHT_TEST_READERS_PYTHON` (a venv with
//! duckdb, pyarrow, pandas, polars) and `RDBINSIGHT_TEST_CHDB_PYTHON` (a venv with chdb-core);
//! `scripts/test.sh` creates both and sets `RDBINSIGHT_REQUIRE_READERS=1`, which turns a missing
//! interpreter into a failure instead of a skip.

use crate::common;

use std::path::Path;
use std::process::Command;

const T1: &str = "2025-11-29T10:00:00.123456789Z";
const T2: &str = "2025-11-30T10:00:00.500000000Z";

fn dump(dir: &Path, fixture: &str, cluster: &str, batch: &str) {
    common::cli::succeeds(
        common::cli::command(&["dump", "from-file", "--path"])
            .arg(common::fixtures::own_fixtures().join(fixture))
            .args(["--cluster", cluster, "--instance", "127.0.0.1:6379"])
            .args(["--batch-timestamp", batch, "into-parquet", "--dir"])
            .arg(dir),
    );
}

fn records(fixture: &str) -> usize {
    let path = common::fixtures::own_fixtures().join(fixture.replace(".rdb", ".expected.jsonl"));
    std::fs::read_to_string(path)
        .expect("expected")
        .lines()
        .count()
}

/// The interpreter in `var`, or `None` (skip) when it is unset and not required.
fn python(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            let required = std::env::var("RDBINSIGHT_REQUIRE_READERS").as_deref() == Ok("1");
            assert!(
                !required,
                "{var} is not set but RDBINSIGHT_REQUIRE_READERS=1 (scripts/test.sh sets both)"
            );
            eprintln!("{var} is not set: skipping these readers (scripts/test.sh sets it)");
            None
        }
    }
}

fn run_readers(python: &str, dir: &Path, readers: &[&str]) -> Vec<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/parquet-readers.py");
    let out = common::cli::succeeds(Command::new(python).arg(script).arg(dir).args(readers));
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn every_recipe_reads_every_row_with_real_types() {
    let readers_py = python("RDBINSIGHT_TEST_READERS_PYTHON");
    let chdb_py = python("RDBINSIGHT_TEST_CHDB_PYTHON");
    if readers_py.is_none() && chdb_py.is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    dump(dir.path(), "r7-multidb.rdb", "prod", T1);
    dump(dir.path(), "r7-strings.rdb", "prod", T2);
    dump(dir.path(), "r7-strings.rdb", "stage", T1);
    let rows = records("r7-multidb.rdb") + 2 * records("r7-strings.rdb");

    // A dump still running (or killed): its finished instance files must not be read.
    let finished = dir
        .path()
        .join("cluster=prod/batch=2025-11-29_10-00-00.123456789Z/127.0.0.1%3A6379.parquet");
    let running = dir
        .path()
        .join("cluster=prod/_tmp_batch=2026-12-01_00-00-00.000000000Z");
    std::fs::create_dir_all(&running).expect("mkdir");
    std::fs::copy(&finished, running.join("127.0.0.1%3A6379.parquet")).expect("copy");
    std::fs::write(
        dir.path()
            .join("cluster=prod/_tmp_batch=2026-12-01_00-00-00.000000000Z.lock"),
        b"",
    )
    .expect("lock");

    let mut results = Vec::new();
    if let Some(py) = &readers_py {
        results.extend(run_readers(
            py,
            dir.path(),
            &["duckdb", "pyarrow", "pandas", "polars"],
        ));
    }
    if let Some(py) = &chdb_py {
        results.extend(run_readers(py, dir.path(), &["clickhouse"]));
    }
    let mut seen = Vec::new();
    for r in &results {
        let name = r["reader"].as_str().expect("reader").to_string();
        assert_eq!(r["rows"], rows, "{name}: {r}");
        assert_eq!(
            r["clusters"],
            serde_json::json!(["prod", "stage"]),
            "{name}"
        );
        assert_eq!(r["batches"], serde_json::json!([T1, T2]), "{name}: {r}");
        assert_eq!(r["cluster_type"], "text", "{name}: {r}");
        assert_eq!(r["batch_type"], "timestamp", "{name}: {r}");
        seen.push(name);
    }
    let mut want = Vec::new();
    if readers_py.is_some() {
        want.extend(["duckdb", "pyarrow", "pandas", "polars"]);
    }
    if chdb_py.is_some() {
        want.push("clickhouse");
    }
    assert_eq!(seen, want);
}

/// Each `# RECIPE <reader>: <call>` of the script is what its next line runs, and the README
/// quotes the call.
#[test]
fn readme_quotes_the_tested_recipes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = std::fs::read_to_string(root.join("scripts/parquet-readers.py")).expect("script");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    let lines: Vec<&str> = script.lines().collect();
    let mut readers = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(recipe) = line.trim_start().strip_prefix("# RECIPE ") else {
            continue;
        };
        let (reader, call) = recipe.split_once(": ").expect("# RECIPE reader: call");
        let code = lines[i + 1]
            .replace("{d}", "DIR")
            .replace("(d,", "('DIR',")
            .replace("f'", "'");
        assert!(
            code.contains(call),
            "{reader}: the code does not run {call}:\n{code}"
        );
        assert!(
            readme.contains(call),
            "README.md does not quote {reader}'s recipe {call}"
        );
        readers.push(reader);
    }
    assert_eq!(
        readers,
        ["duckdb", "pyarrow", "pandas", "polars", "clickhouse"]
    );
}
