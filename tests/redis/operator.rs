//! What an operator sees of the real binary (issues #7 and #11): exit codes, the one error
//! line, log formats and colour, a future batch refused, shell completion in a real bash,
//! Prometheus metrics scraped live and the textfile-collector file, and the progress bars in
//! a real terminal (tmux).

use crate::common;

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::cli::{FifoFeeder, Running, command, succeeds};
use common::codis::{FakeGroup, serve_topom, topom_json};
use common::redis::RedisServer;

const T: Duration = Duration::from_secs(60);
const FIXTURE: &str = "tests/fixtures/r7-multidb.rdb";
const FIXTURE_RECORDS: f64 = 109.0;

fn run(args: &[&str]) -> Output {
    command(args).output().expect("run rdbinsight")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn from_fixture<'a>(extra: &[&'a str], output: &[&'a str]) -> Vec<&'a str> {
    from_file(extra, FIXTURE, output)
}

/// `dump [extra...] from-file --path PATH --cluster c --instance i:1 OUTPUT...`.
fn from_file<'a>(extra: &[&'a str], path: &'a str, output: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["dump"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "from-file",
        "--path",
        path,
        "--cluster",
        "c",
        "--instance",
        "i:1",
    ]);
    args.extend_from_slice(output);
    args
}

#[test]
fn exit_codes_0_1_2_and_help_documents_them() {
    let ok = run(&from_fixture(&[], &["into-null"]));
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));

    let failed = run(&from_file(&[], "/nonexistent.rdb", &["into-null"]));
    assert_eq!(failed.status.code(), Some(1));
    let text = stderr(&failed);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("error: "), "{lines:?}");
    assert!(
        lines[0].ends_with("No such file or directory (os error 2)"),
        "the line ends with the cause: {lines:?}"
    );

    let usage = run(&["dump", "from-file", "--no-such-flag"]);
    assert_eq!(usage.status.code(), Some(2), "{}", stderr(&usage));
    let usage = run(&from_fixture(&["--concurrency", "0"], &["into-null"]));
    assert_eq!(usage.status.code(), Some(2), "{}", stderr(&usage));

    for args in [&["--help"][..], &["dump", "--help"][..]] {
        let help = run(args);
        assert_eq!(help.status.code(), Some(0));
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(text.contains("Exit codes:"), "{text}");
        for code in ["0 ", "1 ", "2 ", "130", "143"] {
            assert!(text.contains(&format!("  {code}")), "{code} in {text}");
        }
    }
}

/// Issue #7 item 10: a cause already in the line is not printed again ("(os error 20): ...
/// (os error 20)"), and nothing but the line is printed.
#[test]
fn one_error_line_with_each_cause_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    fs::write(&file, b"").expect("write");
    let out = run(&from_fixture(
        &[],
        &["into-parquet", "--dir", s(&file.join("sub"))],
    ));
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].matches("(os error 20)").count(), 1, "{}", lines[0]);
    assert!(
        lines[0].contains("a-file/sub"),
        "names the path: {}",
        lines[0]
    );
}

/// Issue #7 item 10: no ANSI colour when stderr is not a terminal (colour in a terminal, and
/// `NO_COLOR` there, is checked in the tmux test).
#[test]
fn no_colour_when_stderr_is_not_a_terminal() {
    let out = run(&from_fixture(&[], &["into-null"]));
    assert!(out.status.success());
    let text = stderr(&out);
    assert!(text.contains("INFO"), "{text}");
    assert!(!text.contains('\x1b'), "escape sequences in {text:?}");
}

#[test]
fn json_logs_are_one_object_per_line_and_the_error_ends_with_the_cause() {
    let json = |path| {
        [
            &["--log-format", "json"],
            &from_file(&[], path, &["into-null"])[..],
        ]
        .concat()
    };
    let out = run(&json("/nonexistent.rdb"));
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = stderr(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    let last = lines.last().expect("a line");
    assert_eq!(last["level"], "ERROR");
    assert_eq!(last["exit_code"], 1);
    let message = last["message"].as_str().expect("message");
    assert!(message.starts_with("error: "), "{message}");
    assert!(message.ends_with("(os error 2)"), "{message}");

    let ok = run(&json(FIXTURE));
    assert!(ok.status.success());
    for l in stderr(&ok).lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
        assert!(
            v["timestamp"].is_string() && v["message"].is_string(),
            "{l}"
        );
    }
    // The environment variable works as the flag does.
    let env = command(&from_fixture(&[], &["into-null"]))
        .env("RDBINSIGHT_LOG_FORMAT", "json")
        .output()
        .expect("run");
    assert!(
        stderr(&env).lines().all(|l| l.starts_with('{')),
        "{}",
        stderr(&env)
    );
}

/// Issue #7 item 5: a batch far in the future is refused (usage error, nothing written)
/// unless `--allow-future-batch`.
#[test]
fn a_future_batch_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let future = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    let args = |allow: bool| {
        let mut a = vec![
            "dump".to_string(),
            "from-file".into(),
            "--path".into(),
            FIXTURE.into(),
            "--cluster".into(),
            "c".into(),
            "--instance".into(),
            "i".into(),
            "--batch-timestamp".into(),
            future.clone(),
        ];
        if allow {
            a.push("--allow-future-batch".into());
        }
        a.extend([
            "into-parquet".into(),
            "--dir".into(),
            s(dir.path()).to_string(),
        ]);
        a
    };
    let refused = command(&[]).args(args(false)).output().expect("run");
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    let text = stderr(&refused);
    assert!(text.contains("ahead of this machine's clock"), "{text}");
    assert!(text.contains("--allow-future-batch"), "{text}");
    assert_eq!(
        fs::read_dir(dir.path()).expect("ls").count(),
        0,
        "nothing written"
    );

    let allowed = command(&[]).args(args(true)).output().expect("run");
    assert!(allowed.status.success(), "{}", stderr(&allowed));
    // A few seconds ahead (clock skew) is fine without the flag.
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(90)).to_rfc3339();
    let ok = run(&[
        "dump",
        "from-file",
        "--path",
        FIXTURE,
        "--cluster",
        "c",
        "--instance",
        "i",
        "--batch-timestamp",
        &soon,
        "into-null",
    ]);
    assert!(ok.status.success(), "{}", stderr(&ok));
}

/// Issue #11: the bash completion, loaded into a real bash, completes `rdbinsight dump from-`.
#[test]
fn bash_completes_the_sources() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("rdbinsight.bash");
    let out = run(&["misc", "completion", "--shell", "bash"]);
    assert!(out.status.success(), "{}", stderr(&out));
    fs::write(&script, &out.stdout).expect("write");
    // As bash calls a completion function: COMP_* set, then `func command word previous`.
    let complete = |words: &str, cword: usize| -> Vec<String> {
        let out = succeeds(Command::new("bash").arg("--norc").arg("-c").arg(format!(
            "source '{}'; COMP_WORDS=({words}); COMP_CWORD={cword}; \
                 COMP_LINE='{words}'; COMP_POINT=${{#COMP_LINE}}; \
                 _rdbinsight rdbinsight \"${{COMP_WORDS[COMP_CWORD]}}\" \
                 \"${{COMP_WORDS[COMP_CWORD-1]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        )));
        let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(String::from)
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        complete("rdbinsight dump from-", 2),
        ["from-cluster", "from-codis", "from-file", "from-standalone"]
    );
    let outputs = complete("rdbinsight dump from-file into-", 3);
    assert!(outputs.contains(&"into-parquet".to_string()), "{outputs:?}");
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let out = run(&["misc", "completion", "--shell", shell]);
        assert!(out.status.success() && out.stdout.len() > 500, "{shell}");
    }
    let bad = run(&["misc", "completion", "--shell", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
}

/// A parsed Prometheus text exposition: `(name, sorted labels) → value`.
type Samples = HashMap<(String, Vec<(String, String)>), f64>;

fn parse_metrics(text: &str) -> Samples {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
    scrape
        .samples
        .into_iter()
        .map(|s| {
            let mut labels: Vec<(String, String)> = s
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            labels.sort();
            let v = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                other => panic!("unexpected {other:?}"),
            };
            ((s.metric, labels), v)
        })
        .collect()
}

fn get(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut l: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.sort();
    samples.get(&(name.to_string(), l)).copied()
}

fn scrape(addr: &str) -> Samples {
    let mut resp = ureq::get(&format!("http://{addr}/metrics"))
        .call()
        .expect("scrape");
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    parse_metrics(&resp.body_mut().read_to_string().expect("body"))
}

const I: [(&str, &str); 2] = [("cluster", "c"), ("instance", "i:1")];

fn state(samples: &Samples) -> String {
    ["pending", "running", "done", "failed"]
        .into_iter()
        .filter(|st| {
            get(
                samples,
                "rdbinsight_instance_state",
                &[I[0], I[1], ("state", st)],
            ) == Some(1.0)
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Issue #11: `--prometheus` scraped during a real dump (a FIFO fed in steps): the figures
/// grow while the instance runs and reach the totals; `--metrics-file` has the final figures,
/// the exit status and the last success, in a format a Prometheus parser reads.
#[test]
fn prometheus_endpoint_during_a_dump_and_the_metrics_file() {
    // 20 chunks of 1,024 keys: every record is handed to the writer as soon as it is parsed.
    const KEYS: u32 = 20 * 1024;
    let server = RedisServer::start(&[]);
    assert_eq!(
        server.cli(&["DEBUG", "POPULATE", &KEYS.to_string(), "k", "32"]),
        "OK"
    );
    let bytes = fs::read(server.save()).expect("dump");
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("src.fifo");
    let prom = dir.path().join("rdbinsight.prom");
    let port = common::redis::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut feeder = FifoFeeder::new(&fifo);
    let mut run = Running::spawn(command(&[
        "dump",
        "--prometheus",
        &addr,
        "--metrics-file",
        s(&prom),
        "from-file",
        "--path",
        s(&fifo),
        "--cluster",
        "c",
        "--instance",
        "i:1",
        "into-null",
    ]));
    feeder.wait_opened(T);
    let m = scrape(&addr);
    assert_eq!(
        get(
            &m,
            "rdbinsight_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    assert_eq!(state(&m), "running");
    assert!(get(&m, "process_resident_memory_bytes", &[]).is_some_and(|v| v > 1e6));
    assert!(get(&m, "process_cpu_seconds_total", &[]).is_some());

    let mut seen = Vec::new();
    let step = bytes.len() / 4;
    for part in 0..3 {
        feeder.write(&bytes[part * step..(part + 1) * step], T);
        // Until the parser caught up with what was fed (all but the pipe's buffer) and the
        // writer wrote records past the previous scrape (it runs behind the parser).
        let deadline = Instant::now() + T;
        let before = seen.last().map_or(0.0, |&(records, _)| records);
        let m = loop {
            let m = scrape(&addr);
            let read = get(&m, "rdbinsight_instance_rdb_bytes_read_total", &I).unwrap_or(0.0);
            let records = get(&m, "rdbinsight_instance_records_written_total", &I).unwrap_or(0.0);
            let caught_up = read as usize + 80_000 >= (part + 1) * step && records > before;
            if caught_up || Instant::now() > deadline {
                break m;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let records = get(&m, "rdbinsight_instance_records_written_total", &I).expect("records");
        let read = get(&m, "rdbinsight_instance_rdb_bytes_read_total", &I).expect("bytes");
        assert_eq!(state(&m), "running");
        seen.push((records, read));
    }
    // Everything but the end marker and checksum: every record is in.
    feeder.write(&bytes[3 * step..bytes.len() - 9], T);
    let deadline = Instant::now() + T;
    let m = loop {
        let m = scrape(&addr);
        let records = get(&m, "rdbinsight_instance_records_written_total", &I).unwrap_or(0.0);
        if records == f64::from(KEYS) || Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        get(&m, "rdbinsight_instance_records_written_total", &I),
        Some(f64::from(KEYS))
    );
    assert_eq!(state(&m), "running");
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1) && seen[0].0 > 0.0,
        "values grow: {seen:?}"
    );
    assert!(get(&m, "rdbinsight_instance_duration_seconds", &I).is_some_and(|d| d > 0.0));

    feeder.write(&bytes[bytes.len() - 9..], T);
    feeder.close();
    let (status, lines) = run.wait(T);
    assert!(status.success(), "{lines:#?}");
    let file = parse_metrics(&fs::read_to_string(&prom).expect("metrics file"));
    assert_eq!(
        get(&file, "rdbinsight_instance_records_written_total", &I),
        Some(f64::from(KEYS))
    );
    assert_eq!(
        get(&file, "rdbinsight_instance_rdb_bytes_read_total", &I),
        Some(bytes.len() as f64)
    );
    assert_eq!(state(&file), "done");
    assert_eq!(
        get(&file, "rdbinsight_exit_status", &[("cluster", "c")]),
        Some(0.0)
    );
    let success = get(
        &file,
        "rdbinsight_last_success_timestamp_seconds",
        &[("cluster", "c")],
    )
    .expect("last success");
    let now = chrono::Utc::now().timestamp() as f64;
    assert!((now - success).abs() < 120.0, "{success} vs {now}");
    assert!(
        fs::read_dir(dir.path())
            .expect("ls")
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().ends_with(".tmp")),
        "no temp file left"
    );
}

/// The metrics file is written on failure too: exit status 1, the failed state, and the last
/// success carried over from the previous file. A busy `--prometheus` address fails at start.
#[test]
fn metrics_file_on_failure_and_a_busy_endpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prom = dir.path().join("job.prom");
    let ok = run(&from_fixture(&["--metrics-file", s(&prom)], &["into-null"]));
    assert!(ok.status.success(), "{}", stderr(&ok));
    let first = parse_metrics(&fs::read_to_string(&prom).expect("file"));
    assert_eq!(
        get(&first, "rdbinsight_instance_records_written_total", &I),
        Some(FIXTURE_RECORDS)
    );
    assert_eq!(
        get(&first, "rdbinsight_instance_rdb_bytes", &I),
        Some(fs::metadata(FIXTURE).unwrap().len() as f64)
    );
    let success = get(
        &first,
        "rdbinsight_last_success_timestamp_seconds",
        &[("cluster", "c")],
    )
    .expect("success");

    let bad = dir.path().join("bad.rdb");
    let mut bytes = fs::read(FIXTURE).expect("fixture");
    let n = bytes.len();
    bytes[n - 3] ^= 0xff; // the checksum no longer matches
    fs::write(&bad, &bytes).expect("write");
    let failed = run(&[
        "dump",
        "--metrics-file",
        s(&prom),
        "from-file",
        "--path",
        s(&bad),
        "--cluster",
        "c",
        "--instance",
        "i:1",
        "into-null",
    ]);
    assert_eq!(failed.status.code(), Some(1));
    let second = parse_metrics(&fs::read_to_string(&prom).expect("file"));
    assert_eq!(
        get(&second, "rdbinsight_exit_status", &[("cluster", "c")]),
        Some(1.0)
    );
    assert_eq!(state(&second), "failed");
    assert_eq!(
        get(
            &second,
            "rdbinsight_last_success_timestamp_seconds",
            &[("cluster", "c")]
        ),
        Some(success),
        "carried over"
    );
    assert!(
        get(
            &second,
            "rdbinsight_last_run_timestamp_seconds",
            &[("cluster", "c")]
        )
        .is_some_and(|t| t >= success)
    );

    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("addr").to_string();
    let out = run(&from_fixture(&["--prometheus", &addr], &["into-null"]));
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    assert!(
        text.contains(&format!("cannot listen on --prometheus {addr}")),
        "{text}"
    );
    assert!(
        !text.contains("dump complete"),
        "refused before the dump: {text}"
    );
}

/// A `--metrics-file` that cannot be written and a `--prometheus` value that is no address are
/// usage errors found before the dump (exit 2, nothing published), not after the batch.
#[test]
fn unwritable_metrics_file_and_invalid_prometheus_address_are_usage_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("out");
    let missing = dir.path().join("missing-dir").join("job.prom");
    let a_dir = dir.path().to_path_buf();
    for (what, path) in [("missing directory", &missing), ("a directory", &a_dir)] {
        let out = run(&from_fixture(
            &["--metrics-file", s(path)],
            &["into-parquet", "--dir", s(&out_dir)],
        ));
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {text}");
        assert!(
            text.contains(&format!(
                "--metrics-file {} cannot be written",
                path.display()
            )),
            "{what}: {text}"
        );
        assert!(!text.contains("dump complete"), "{what}: {text}");
        assert!(!out_dir.exists(), "{what}: nothing published");
    }
    for addr in ["127.0.0.1:99999", "127.0.0.1"] {
        let out = run(&from_fixture(&["--prometheus", addr], &["into-null"]));
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{addr}: {text}");
        assert!(text.contains(&format!("--prometheus {addr}")), "{text}");
        assert!(!text.contains("dump complete"), "{addr}: {text}");
    }
}

// ---------------------------------------------------------------------------------------------
// A real terminal: tmux.

struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    fn start(name: &str) -> Tmux {
        let t = Tmux {
            socket: format!("rdbinsight-test-{}-{name}", std::process::id()),
            session: name.to_string(),
        };
        let ok = t
            .cmd(&[
                "new-session",
                "-d",
                "-s",
                name,
                "-x",
                "300",
                "-y",
                "50",
                "bash --norc --noprofile",
            ])
            .status()
            .expect("tmux")
            .success();
        assert!(ok, "tmux new-session");
        t
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]).args(args);
        c
    }

    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.session];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status().expect("send-keys").success());
    }

    /// Clear the screen and wait for the shell's prompt alone on it, so that keys sent next
    /// reach bash's line editor (keys typed while a command runs are echoed twice).
    fn clear(&self) {
        self.send(&["clear", "Enter"]);
        let deadline = Instant::now() + T;
        loop {
            let screen = self.capture(false);
            let lines: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
            if let [prompt] = lines[..]
                && (prompt.trim_end().ends_with('#') || prompt.trim_end().ends_with('$'))
            {
                return;
            }
            assert!(Instant::now() < deadline, "no bare prompt:\n{screen}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The screen, with escape sequences for attributes if `escapes`.
    fn capture(&self, escapes: bool) -> String {
        let mut args = vec!["capture-pane", "-p", "-t", &self.session];
        if escapes {
            args.push("-e");
        }
        let out = self.cmd(&args).output().expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Wait until the screen shows `needle`, checking every screen seen on the way.
    fn wait_for(&self, needle: &str, mut check: impl FnMut(&str)) -> String {
        let deadline = Instant::now() + T;
        loop {
            let screen = self.capture(false);
            check(&screen);
            if screen.contains(needle) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} on screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]).status();
    }
}

/// The non-empty lines of a tmux screen between the command line (`...; echo EXIT=$?`) and its
/// `EXIT=` line, a Ctrl-C's `^C` echo removed. The command line is the last one before `EXIT=`:
/// keys sent before bash is back at its prompt are echoed by the terminal once, then again
/// after the prompt.
fn lines_after_the_run(screen: &str) -> Vec<&str> {
    let lines: Vec<&str> = screen.lines().collect();
    let end = lines
        .iter()
        .position(|l| l.starts_with("EXIT="))
        .unwrap_or(lines.len());
    let start = lines[..end]
        .iter()
        .rposition(|l| l.contains("XIT=$?"))
        .map_or(end, |i| i + 1);
    lines[start..end]
        .iter()
        .map(|l| l.trim_start_matches("^C"))
        .filter(|l| !l.trim().is_empty())
        .collect()
}

/// A log line on screen starts with its timestamp.
fn is_log_line(l: &str) -> bool {
    l.len() > 20 && l.as_bytes()[4] == b'-' && l.as_bytes()[10] == b'T' && l.starts_with("20")
}

/// Every line of every screen is either a log line, a bar, or the shell; never both a log line
/// and a bar, and a log line only ever starts a line.
fn check_screen(screen: &str, instances: &[String]) {
    for line in screen.lines() {
        let bar = instances.iter().any(|i| line.starts_with(i.as_str()));
        let log_inside = line.find("Z  ").is_some_and(|at| at > 30)
            || line.contains("INFO") && !is_log_line(line);
        assert!(
            !log_inside,
            "a log line inside another line: {line:?}\n{screen}"
        );
        if bar {
            assert!(
                !line.contains(" INFO ") && !line.contains(" WARN "),
                "{line:?}"
            );
        }
        if is_log_line(line) {
            assert!(!line.contains("iB/s"), "bar text in a log line: {line:?}");
        }
    }
}

/// Issue #11: a multi-instance dump that logs warnings, in a real terminal: bars (bytes, rate)
/// while it runs, log lines above them and never inside; after success and after Ctrl-C the
/// screen holds only log lines (no bar left), and colour follows `NO_COLOR`.
#[test]
fn terminal_bars_and_logs_never_share_a_line_and_the_screen_ends_clean() {
    // Two Codis groups, master only (each logs a warning), snapshots streamed slowly.
    let slow = RedisServer::start(&["--rdb-key-save-delay", "400"]);
    let fast = RedisServer::start(&["--rdb-key-save-delay", "400"]);
    assert_eq!(slow.cli(&["DEBUG", "POPULATE", "6000", "s", "16"]), "OK");
    assert_eq!(fast.cli(&["DEBUG", "POPULATE", "1500", "f", "16"]), "OK");
    let groups = vec![
        FakeGroup {
            id: 1,
            servers: vec![(slow.addr(), false)],
        },
        FakeGroup {
            id: 2,
            servers: vec![(fast.addr(), false)],
        },
    ];
    let dashboard = serve_topom(topom_json("termdemo", &groups));
    let url = dashboard.url();
    let instances = vec![slow.addr(), fast.addr()];
    let bin = env!("CARGO_BIN_EXE_rdbinsight");
    let line = format!(
        "{bin} dump --concurrency 2 from-codis --dashboard {url} into-null; echo \"E\"XIT=$?"
    );

    let tmux = Tmux::start("bars");
    tmux.clear();
    tmux.send(&[&line, "Enter"]);
    let mut saw_bar = false;
    let screen = tmux.wait_for("EXIT=", |screen| {
        check_screen(screen, &instances);
        saw_bar |= screen
            .lines()
            .any(|l| instances.iter().any(|i| l.starts_with(i.as_str())) && l.contains("B/s"));
    });
    assert!(saw_bar, "a bar with bytes and rate was shown:\n{screen}");
    assert!(screen.contains("EXIT=0"), "{screen}");
    let after = lines_after_the_run(&screen);
    assert!(
        after.iter().all(|l| is_log_line(l)),
        "only log lines remain:\n{screen}"
    );
    assert!(
        after
            .iter()
            .any(|l| l.contains("WARN") && l.contains("reading the master")),
        "{screen}"
    );
    for i in &instances {
        assert!(
            after
                .iter()
                .any(|l| l.contains(&format!("done: instance {i}"))),
            "{screen}"
        );
    }
    // Coloured in a terminal...
    assert!(tmux.capture(true).contains("\x1b["), "colour on a terminal");

    // ... not with NO_COLOR; and Ctrl-C mid-dump leaves a clean screen and exit 130.
    tmux.clear();
    tmux.send(&[&format!("NO_COLOR=1 {line}"), "Enter"]);
    tmux.wait_for("iB/s", |screen| check_screen(screen, &instances));
    tmux.send(&["C-c"]);
    let screen = tmux.wait_for("EXIT=", |screen| check_screen(screen, &instances));
    assert!(screen.contains("EXIT=130"), "{screen}");
    let after = lines_after_the_run(&screen);
    let last = after.last().expect("lines");
    assert!(
        last.starts_with("error: dump interrupted by SIGINT"),
        "{screen}"
    );
    assert!(
        after[..after.len() - 1].iter().all(|l| is_log_line(l)),
        "no bar left:\n{screen}"
    );
    let colours = tmux.capture(true);
    assert!(
        !colours
            .lines()
            .any(|l| l.contains("WARN") && l.contains("\x1b[3")),
        "NO_COLOR honoured:\n{colours}"
    );
}
