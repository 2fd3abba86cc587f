//! Dumps through the `rdbinsight` binary, waited for, and their JSON lines.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

/// Run the binary with `args` to the end.
pub fn rdbinsight(args: &[&str]) -> Output {
    super::cli::command(args).output().expect("run rdbinsight")
}

/// Run the binary; panics with its stderr unless it succeeds.
pub fn run_ok(args: &[&str]) {
    let out = rdbinsight(args);
    assert!(
        out.status.success(),
        "rdbinsight {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The records of a JSONL output file.
pub fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("read the JSONL output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// The key as text: `key_base64` when present (non-UTF-8 keys), else `key`.
pub fn key_of(r: &Value) -> String {
    match r.get("key_base64").and_then(Value::as_str) {
        Some(b) => format!("base64:{b}"),
        None => r["key"].as_str().expect("key").to_string(),
    }
}

/// The fields that must agree between a live dump and a file dump of the same data.
pub fn comparable(records: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = records
        .iter()
        .map(|r| {
            format!(
                "{}|{}|{}|{}|{}|{}",
                r["db"],
                key_of(r),
                r["type"],
                r["member_count"],
                r["encoding"],
                r["expire_at"]
            )
        })
        .collect();
    v.sort();
    v
}

/// Dump `source` (a `from-*` subcommand and its flags) into `dir/<name>.jsonl` and return the
/// records.
pub fn dump_jsonl(dir: &Path, name: &str, source: &[&str]) -> Vec<Value> {
    let path = dir.join(format!("{name}.jsonl"));
    let path_arg = path.to_str().expect("utf-8 path");
    let mut args = vec!["dump"];
    args.extend_from_slice(source);
    args.extend_from_slice(&["into-jsonl", "--output", path_arg]);
    run_ok(&args);
    read_jsonl(&path)
}

/// Run `dump <source...> into-null`, which must exit with `code`; returns its stderr.
pub fn dump_fails(code: i32, source: &[&str]) -> String {
    let mut args = vec!["dump"];
    args.extend_from_slice(source);
    args.push("into-null");
    let out = rdbinsight(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    stderr
}

/// Run `dump from-standalone --addr ADDR --cluster c [extra...] into-null`, which must exit
/// with 1; returns its stderr.
pub fn standalone_fails(addr: &str, extra: &[&str]) -> String {
    let mut source = vec!["from-standalone", "--addr", addr, "--cluster", "c"];
    source.extend_from_slice(extra);
    dump_fails(1, &source)
}
