//! Metrics of a dump in the Prometheus text format (version 0.0.4): served live on `/metrics`
//! (`dump --prometheus ADDR`) and written once at the end (`dump --metrics-file PATH`) in the
//! format of node_exporter's textfile collector, the usual way a cron job reports to
//! Prometheus.
//!
//! Every scrape reads the dump's `InstanceStatus` table; nothing is recorded twice. The
//! families:
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `rdbinsight_build_info` | gauge (1) | `version` | the binary |
//! | `rdbinsight_instance_records_written_total` | counter | `cluster`, `instance` | records the writer accepted |
//! | `rdbinsight_instance_rdb_bytes_read_total` | counter | `cluster`, `instance` | RDB bytes parsed |
//! | `rdbinsight_instance_rdb_bytes` | gauge | `cluster`, `instance` | the RDB's length, only when the source knows it |
//! | `rdbinsight_instance_state` | gauge (0/1) | `cluster`, `instance`, `state` | one series per state (`pending`, `running`, `done`, `failed`); the current one is 1 |
//! | `rdbinsight_instance_duration_seconds` | gauge | `cluster`, `instance` | time running (final once ended) |
//! | `process_resident_memory_bytes` | gauge | | resident set size (`/proc/self/statm`) |
//! | `process_cpu_seconds_total` | counter | | user + system CPU time (`/proc/self/stat`) |
//!
//! The file adds, with the label `cluster`:
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `rdbinsight_exit_status` | gauge | the process's exit code (0 success, 1 failed, 2 usage, 130/143 interrupted) |
//! | `rdbinsight_last_run_timestamp_seconds` | gauge | when this run ended (Unix time) |
//! | `rdbinsight_last_success_timestamp_seconds` | gauge | when the last successful run ended: this run's end, or carried over from the file a previous run wrote (absent if none succeeded yet) |
//!
//! The file is written to a temporary file in the same directory, fsynced and renamed over
//! `PATH`, so the collector never reads half a file (name it `*.prom` for node_exporter; the
//! temporary name does not end in `.prom`).

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::dump::{InstanceState, InstanceStatus, Progress};

pub(crate) use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The metric carried over from one metrics file to the next while runs fail.
pub(crate) const LAST_SUCCESS: &str = "rdbinsight_last_success_timestamp_seconds";

/// How a finished run ended, for the metrics file.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The `cluster` label of the run-level metrics (`""` if it never became known).
    pub cluster: String,
    /// The process's exit code.
    pub exit_status: u8,
    /// When the run ended.
    pub ended: SystemTime,
}

/// The families read from a dump's status table at each scrape.
struct DumpCollector {
    progress: Arc<Progress>,
}

impl std::fmt::Debug for DumpCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DumpCollector")
    }
}

/// The value of one series: whole numbers are exposed as integers, times as floats.
#[derive(Debug, Clone, Copy)]
enum Figure {
    Whole(u64),
    Real(f64),
}

impl Figure {
    fn encode(self, kind: MetricType, encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        match (kind, self) {
            (MetricType::Counter, Figure::Whole(v)) => ConstCounter::new(v).encode(encoder),
            (MetricType::Counter, Figure::Real(v)) => ConstCounter::new(v).encode(encoder),
            (_, Figure::Whole(v)) => ConstGauge::new(v).encode(encoder),
            (_, Figure::Real(v)) => ConstGauge::new(v).encode(encoder),
        }
    }
}

/// The series of one instance in a family.
enum Series {
    /// None (e.g. the RDB length when the source does not know it).
    Absent,
    /// One series with the labels `cluster` and `instance`.
    One(Figure),
    /// One series per [`InstanceState`] (label `state`): 1 for the current one, else 0.
    PerState(InstanceState),
}

/// A metric family with a series per instance, read from its [`InstanceStatus`].
struct InstanceFamily {
    /// Counters without the `_total` the encoder appends.
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    series: fn(&InstanceStatus) -> Series,
}

/// The per-instance families, in the order they are exposed (the module docs list them).
const INSTANCE_FAMILIES: [InstanceFamily; 5] = [
    InstanceFamily {
        name: "rdbinsight_instance_records_written",
        help: "Records written, per instance",
        kind: MetricType::Counter,
        series: |s| Series::One(Figure::Whole(s.records())),
    },
    InstanceFamily {
        name: "rdbinsight_instance_rdb_bytes_read",
        help: "RDB bytes parsed, per instance",
        kind: MetricType::Counter,
        series: |s| Series::One(Figure::Whole(s.bytes_read())),
    },
    InstanceFamily {
        name: "rdbinsight_instance_rdb_bytes",
        help: "Length of the instance's RDB, when the source knows it up front",
        kind: MetricType::Gauge,
        series: |s| match s.total_bytes() {
            Some(total) => Series::One(Figure::Whole(total)),
            None => Series::Absent,
        },
    },
    InstanceFamily {
        name: "rdbinsight_instance_state",
        help: "1 for the instance's current state (pending, running, done, failed), else 0",
        kind: MetricType::Gauge,
        series: |s| Series::PerState(s.state()),
    },
    InstanceFamily {
        name: "rdbinsight_instance_duration_seconds",
        help: "Seconds the instance has been running (final once it ended)",
        kind: MetricType::Gauge,
        series: |s| Series::One(Figure::Real(s.duration().unwrap_or_default().as_secs_f64())),
    },
];

impl Collector for DumpCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let instances = self.progress.instances();
        for f in &INSTANCE_FAMILIES {
            let mut family = encoder.encode_descriptor(f.name, f.help, None, f.kind)?;
            for s in &instances {
                let (cluster, instance) = (("cluster", s.cluster()), ("instance", s.instance()));
                match (f.series)(s) {
                    Series::Absent => {}
                    Series::One(v) => {
                        v.encode(f.kind, family.encode_family(&[cluster, instance])?)?
                    }
                    Series::PerState(current) => {
                        for state in InstanceState::ALL {
                            let l = [cluster, instance, ("state", state.as_str())];
                            let v = Figure::Whole(u64::from(state == current));
                            v.encode(f.kind, family.encode_family(&l)?)?;
                        }
                    }
                }
            }
        }
        if let Some(p) = ProcessFigures::read() {
            for (name, help, kind, v) in [
                (
                    "process_resident_memory_bytes",
                    "Resident memory size in bytes",
                    MetricType::Gauge,
                    Figure::Whole(p.resident_bytes),
                ),
                (
                    "process_cpu_seconds",
                    "Total user and system CPU time spent in seconds",
                    MetricType::Counter,
                    Figure::Real(p.cpu_seconds),
                ),
            ] {
                v.encode(kind, encoder.encode_descriptor(name, help, None, kind)?)?;
            }
        }
        Ok(())
    }
}

/// The run-level figures of the metrics file.
#[derive(Debug)]
struct OutcomeCollector {
    outcome: RunOutcome,
    last_success: Option<f64>,
}

impl Collector for OutcomeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let l = [("cluster", self.outcome.cluster.as_str())];
        let last_success = self.last_success.map(|t| {
            (
                LAST_SUCCESS,
                "Unix time the last successful run ended",
                Figure::Real(t),
            )
        });
        let gauges = [
            (
                "rdbinsight_exit_status",
                "Exit code of the last run (0 success, 1 failed, 2 usage, 130/143 interrupted)",
                Figure::Whole(u64::from(self.outcome.exit_status)),
            ),
            (
                "rdbinsight_last_run_timestamp_seconds",
                "Unix time the last run ended",
                Figure::Real(unix_seconds(self.outcome.ended)),
            ),
        ];
        for (name, help, v) in gauges.into_iter().chain(last_success) {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            v.encode(MetricType::Gauge, family.encode_family(&l)?)?;
        }
        Ok(())
    }
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

fn registry(progress: &Arc<Progress>) -> Registry {
    let mut registry = Registry::default();
    registry.register(
        "rdbinsight_build",
        "The rdbinsight binary",
        Info::new([("version", env!("CARGO_PKG_VERSION"))]),
    );
    registry.register_collector(Box::new(DumpCollector {
        progress: Arc::clone(progress),
    }));
    registry
}

/// The live metrics of `progress`, in the Prometheus text format.
pub(crate) fn render(progress: &Arc<Progress>) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry(progress));
    out
}

/// The final figures plus the run's outcome: the content of the metrics file.
/// `previous`: the file the last run wrote, whose last success is carried over on failure.
pub(crate) fn render_final(
    progress: &Arc<Progress>,
    outcome: &RunOutcome,
    previous: &str,
) -> String {
    let last_success = if outcome.exit_status == 0 {
        Some(unix_seconds(outcome.ended))
    } else {
        previous_last_success(previous, &outcome.cluster)
    };
    let mut registry = registry(progress);
    registry.register_collector(Box::new(OutcomeCollector {
        outcome: outcome.clone(),
        last_success,
    }));
    let mut out = String::new();
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
    out
}

/// The `rdbinsight_last_success_timestamp_seconds{cluster="…"}` value of a file we wrote.
fn previous_last_success(previous: &str, cluster: &str) -> Option<f64> {
    let mut expected = format!("{LAST_SUCCESS}{{cluster=\"");
    for c in cluster.chars() {
        match c {
            '\\' => expected.push_str("\\\\"),
            '"' => expected.push_str("\\\""),
            '\n' => expected.push_str("\\n"),
            c => expected.push(c),
        }
    }
    expected.push_str("\"} ");
    previous.lines().find_map(|line| {
        line.strip_prefix(&expected)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite())
    })
}

/// The temporary file [`write_file`] writes before renaming it to `path`.
fn tmp_path(path: &Path) -> PathBuf {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    PathBuf::from(tmp_name)
}

/// Check, before the dump, that [`write_file`] will be able to write `path`: it is not a
/// directory and its temporary file can be created beside it (created and removed again).
pub fn check_file(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "it is a directory",
        ));
    }
    let tmp = tmp_path(path);
    std::fs::File::create(&tmp)?;
    std::fs::remove_file(&tmp)
}

/// Write the metrics file atomically (temporary file in the same directory, fsync, rename).
pub fn write_file(path: &Path, progress: &Arc<Progress>, outcome: &RunOutcome) -> io::Result<()> {
    let previous = std::fs::read_to_string(path).unwrap_or_default();
    let text = render_final(progress, outcome, &previous);
    crate::output::atomic::write_atomically(&tmp_path(path), path, text.as_bytes())
        .map_err(crate::output::atomic::PublishError::into_io)
}

/// Resident memory and CPU time of this process, from `/proc/self` (Linux only).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcessFigures {
    pub resident_bytes: u64,
    pub cpu_seconds: f64,
}

impl ProcessFigures {
    /// `None` where `/proc` is not there (not Linux) or unreadable.
    pub fn read() -> Option<Self> {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let (page, ticks) = (sysconf(SysConf::PageSize)?, sysconf(SysConf::ClockTicks)?);
        Self::parse(&statm, &stat, page, ticks)
    }

    fn parse(statm: &str, stat: &str, page_size: u64, ticks_per_sec: u64) -> Option<Self> {
        let resident_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        // The command name (field 2) is in parentheses and may contain spaces: fields are
        // counted after its closing parenthesis. utime and stime are fields 14 and 15.
        let after = &stat[stat.rfind(')')? + 1..];
        let mut fields = after.split_whitespace().skip(11);
        let utime: u64 = fields.next()?.parse().ok()?;
        let stime: u64 = fields.next()?.parse().ok()?;
        Some(ProcessFigures {
            resident_bytes: resident_pages.saturating_mul(page_size),
            cpu_seconds: (utime + stime) as f64 / ticks_per_sec.max(1) as f64,
        })
    }
}

enum SysConf {
    PageSize,
    ClockTicks,
}

fn sysconf(what: SysConf) -> Option<u64> {
    let name = match what {
        SysConf::PageSize => libc::_SC_PAGESIZE,
        SysConf::ClockTicks => libc::_SC_CLK_TCK,
    };
    // SAFETY: sysconf only reads a system constant; it takes no pointers and has no
    // preconditions. It returns -1 for an unknown name, which `try_from` rejects.
    let v = unsafe { libc::sysconf(name) };
    u64::try_from(v).ok().filter(|&v| v > 0)
}

/// Bind the `--prometheus` address now, so a bad or busy address fails the dump before it
/// starts. An address that is not one (`127.0.0.1:99999`, no port) is
/// [`io::ErrorKind::InvalidInput`].
pub fn bind(addr: &str) -> io::Result<TcpListener> {
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    let listener = TcpListener::bind(&addrs[..])?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serve `GET /metrics` on `listener` until the returned task is aborted (one HTTP/1.1
/// connection per task; every request renders the current figures).
pub fn serve(
    listener: TcpListener,
    progress: Arc<Progress>,
) -> io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    Ok(tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!("metrics endpoint: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let progress = Arc::clone(&progress);
            connections.spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let progress = Arc::clone(&progress);
                        async move { Ok::<_, std::convert::Infallible>(respond(&req, &progress)) }
                    });
                let io = hyper_util::rt::TokioIo::new(stream);
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
                {
                    tracing::debug!("metrics endpoint: connection ended: {e}");
                }
            });
            // Reap finished connections so the set does not grow with every scrape.
            while connections.try_join_next().is_some() {}
        }
    }))
}

fn respond<B>(req: &Request<B>, progress: &Arc<Progress>) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&hyper::Method::GET | &hyper::Method::HEAD, "/metrics") => {
            (StatusCode::OK, CONTENT_TYPE, render(progress))
        }
        (_, "/metrics") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "use GET\n".to_string(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "rdbinsight serves /metrics only\n".to_string(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_figures_parse() {
        let stat = "4242 (rdb insight) x) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 \
                    3 0 100 2000000 900 18446744073709551615";
        let p = ProcessFigures::parse("5000 900 300 1 0 800 0", stat, 4096, 100).unwrap();
        assert_eq!(p.resident_bytes, 900 * 4096);
        assert!((p.cpu_seconds - 3.0).abs() < 1e-9, "{}", p.cpu_seconds);
        assert!(ProcessFigures::parse("", stat, 4096, 100).is_none());
        let live = ProcessFigures::read().expect("/proc on Linux");
        assert!(live.resident_bytes > 1 << 20);
    }

    #[test]
    fn last_success_is_carried_over_per_cluster() {
        let previous = "# HELP x\nrdbinsight_last_success_timestamp_seconds{cluster=\"a\\\"b\"} \
                        1700000000.5\nrdbinsight_last_success_timestamp_seconds{cluster=\"c\"} 7\n";
        assert_eq!(
            previous_last_success(previous, "a\"b"),
            Some(1_700_000_000.5)
        );
        assert_eq!(previous_last_success(previous, "c"), Some(7.0));
        assert_eq!(previous_last_success(previous, "a"), None);
        assert_eq!(previous_last_success("", "a"), None);
    }
}
