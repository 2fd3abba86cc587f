//! `rdbinsight report from-parquet ...` / `report from-clickhouse ...`: read a stored batch,
//! build the report, write it (HTML and/or JSON) atomically.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

use rdbinsight::cancel::{Interrupt, Signal};
use rdbinsight::output::atomic;
use rdbinsight::output::parquet::sanitize_name;
use rdbinsight::report::model::{DEFAULT_PREFIX_THRESHOLD_PCT, DEFAULT_TOP, Measure};
use rdbinsight::report::options::{
    Delimiters, MAX_TOP, MemoryLimit, PrefixThreshold, ReportOptions,
};
use rdbinsight::report::{self, Report, ReportError};

use super::UsageError;
use super::clickhouse::ClickHouseTimeoutArgs;

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Report on a batch written by `dump ... into-parquet`.
    FromParquet(FromParquetArgs),
    /// Report on a batch written by `dump ... into-clickhouse`.
    FromClickhouse(FromClickHouseArgs),
}

/// What every report takes.
#[derive(Debug, Args, Clone)]
pub struct ReportOutputArgs {
    /// The HTML report (default: rdb_report_<cluster>_<batch>.html in the current directory;
    /// '-' for stdout).
    #[arg(short, long, env = "RDBINSIGHT_OUTPUT")]
    pub output: Option<PathBuf>,
    /// Also write the report data as JSON (the document the page embeds; '-' for stdout).
    #[arg(long, env = "RDBINSIGHT_JSON")]
    pub json: Option<PathBuf>,
    /// Keys in each top list, prefixes in the no-TTL list, and the cap of the big-key list.
    #[arg(long, env = "RDBINSIGHT_TOP", default_value_t = DEFAULT_TOP,
          value_parser = clap::value_parser!(u64).range(1..=MAX_TOP))]
    pub top: u64,
    /// A prefix is a node of the prefix tree when its keys hold at least this percentage of all
    /// bytes (0 < PCT <= 100, up to 6 decimals).
    #[arg(long, env = "RDBINSIGHT_PREFIX_THRESHOLD", default_value = DEFAULT_PREFIX_THRESHOLD_PCT)]
    pub prefix_threshold: PrefixThreshold,
    /// Cut every prefix back to just after the last of these characters (e.g. ':' or ':/.').
    #[arg(long, env = "RDBINSIGHT_DELIMITER")]
    pub delimiter: Option<Delimiters>,
    /// What the prefix tree, the top keys, the big keys and the balance rank by: mem (mem_size,
    /// the RAM a key takes once loaded) or rdb (rdb_size, its size in the RDB file). A batch
    /// stored before mem_size existed is always ranked by rdb, with a note.
    #[arg(long, env = "RDBINSIGHT_MEASURE", default_value = "mem",
          value_parser = ["mem", "rdb"])]
    pub measure: String,
    /// Also report what changed since this earlier batch of the same cluster and store: its
    /// directory name or RFC 3339 timestamp (as --batch), or 'previous' (the newest completed
    /// batch before the reported one).
    #[arg(long, env = "RDBINSIGHT_BASELINE")]
    pub baseline: Option<String>,
}

#[derive(Debug, Args)]
pub struct FromParquetArgs {
    /// Root directory given to `into-parquet --dir`.
    #[arg(long, env = "RDBINSIGHT_DIR")]
    pub dir: PathBuf,
    /// Cluster name (as given to `dump --cluster`).
    #[arg(long, env = "RDBINSIGHT_CLUSTER")]
    pub cluster: String,
    /// The batch: its directory name (YYYY-MM-DD_HH-mm-ss.nnnnnnnnnZ) or RFC 3339 timestamp
    /// (default: the newest batch).
    #[arg(long, env = "RDBINSIGHT_BATCH")]
    pub batch: Option<String>,
    /// Memory for sorting the keys before sorted runs are spilled to disk (binary units:
    /// 256MiB, 1GiB).
    #[arg(long, env = "RDBINSIGHT_MEMORY_LIMIT", default_value = "256MiB")]
    pub memory_limit: MemoryLimit,
    /// Where sorted runs are spilled (default: the system temp dir, $TMPDIR).
    #[arg(long, env = "RDBINSIGHT_SPILL_DIR")]
    pub spill_dir: Option<PathBuf>,
    #[command(flatten)]
    pub out: ReportOutputArgs,
}

#[derive(Debug, Args)]
pub struct FromClickHouseArgs {
    /// http[s]://[user[:pass]@]host:port?database=DB (as given to `into-clickhouse --url`).
    #[arg(long, env = "RDBINSIGHT_CLICKHOUSE_URL", hide_env_values = true)]
    pub url: String,
    /// Cluster name (as given to `dump --cluster`).
    #[arg(long, env = "RDBINSIGHT_CLUSTER")]
    pub cluster: String,
    /// The batch timestamp, RFC 3339 (default: the newest completed batch).
    #[arg(long, env = "RDBINSIGHT_BATCH")]
    pub batch: Option<String>,
    /// HTTP proxy for the ClickHouse connection.
    #[arg(long, env = "RDBINSIGHT_PROXY_URL")]
    pub proxy_url: Option<String>,
    #[command(flatten)]
    pub timeouts: ClickHouseTimeoutArgs,
    #[command(flatten)]
    pub out: ReportOutputArgs,
}

fn options(out: &ReportOutputArgs) -> ReportOptions {
    ReportOptions {
        top: out.top,
        prefix_threshold: out.prefix_threshold,
        delimiter: out.delimiter.clone(),
        measure: if out.measure == "rdb" {
            Measure::Rdb
        } else {
            Measure::Mem
        },
        baseline: out.baseline.clone(),
        ..ReportOptions::default()
    }
}

/// How a report ended when SIGINT or SIGTERM stopped it: exit code 130 / 143.
#[derive(Debug, thiserror::Error)]
#[error(
    "report interrupted by {signal}: its temporary files were removed and nothing was published"
)]
pub struct ReportInterrupted {
    pub signal: Signal,
}

/// Run `rdbinsight report ...`.
pub fn run_report(cmd: ReportCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let interrupt = Interrupt::default();
    let (out, report) = runtime.block_on(async {
        listen_for_signals(interrupt.clone())?;
        match cmd {
            ReportCommand::FromParquet(a) => {
                let mut opts = options(&a.out);
                opts.memory_limit = a.memory_limit;
                opts.spill_dir = a.spill_dir.clone();
                let cancel = interrupt.cancel().clone();
                let report = tokio::task::spawn_blocking(move || {
                    report::from_parquet(&a.dir, &a.cluster, a.batch.as_deref(), &opts, cancel)
                })
                .await
                .context("the report task failed")?;
                anyhow::Ok((a.out, report))
            }
            ReportCommand::FromClickhouse(a) => {
                let opts = options(&a.out);
                let report = tokio::select! {
                    r = report::from_clickhouse(
                        &a.url,
                        a.proxy_url.as_deref(),
                        a.timeouts.timeouts(),
                        &a.cluster,
                        a.batch.as_deref(),
                        &opts,
                    ) => r,
                    _ = interrupt.fired() => Err(ReportError::Interrupted),
                };
                anyhow::Ok((a.out, report))
            }
        }
    })?;
    let report = match report {
        Ok(r) => r,
        Err(ReportError::Interrupted) => {
            let signal = interrupt.signal().unwrap_or(Signal::Int);
            return Err(ReportInterrupted { signal }.into());
        }
        Err(ReportError::Options(msg)) => return Err(UsageError(msg).into()),
        Err(e) => return Err(e.into()),
    };
    let interrupted = || match interrupt.signal() {
        Some(signal) => Err(ReportInterrupted { signal }.into()),
        None => Ok(()),
    };
    write_report(&out, &report, &interrupted)
}

/// SIGINT and SIGTERM stop the report at its next check (the Parquet reader removes its
/// spilled runs on the way out); a second one exits at once.
fn listen_for_signals(interrupt: Interrupt) -> anyhow::Result<()> {
    super::on_signals(move |sig| {
        if !interrupt.fire(sig) {
            eprintln!(
                "error: {sig} again: exiting at once (a spill directory rdbinsight-report-* \
                 may be left; the next report removes it)"
            );
            std::process::exit(i32::from(sig.exit_code()));
        }
        tracing::debug!("{sig}: stopping the report and removing its temporary files");
    })
}

fn default_html_name(report: &Report) -> PathBuf {
    PathBuf::from(format!(
        "rdb_report_{}_{}.html",
        sanitize_name(&report.data.cluster),
        report.batch.slug()
    ))
}

/// Write the JSON and the page. Both are staged (written to temporary files beside their
/// targets, fsynced) before either is published, so a failure of either (a full disk) leaves
/// neither; a SIGINT/SIGTERM that came while the report was assembled or written is honoured
/// before publishing (exit 130/143, nothing published). `-`, FIFOs and devices are written in
/// place and cannot be taken back.
fn write_report(
    out: &ReportOutputArgs,
    report: &Report,
    interrupted: &dyn Fn() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let data = &report.data;
    let html_path = out
        .output
        .clone()
        .unwrap_or_else(|| default_html_name(report));
    interrupted()?;
    let json = match &out.json {
        Some(path) => Some((
            path,
            stage(path, |w| {
                serde_json::to_writer(&mut *w, data)?;
                w.write_all(b"\n")
            })?,
        )),
        None => None,
    };
    interrupted()?;
    let html = stage(&html_path, |w| report::write_html(data, w))?;
    interrupted()?;
    if let Some((path, staged)) = json {
        staged.publish(path)?;
        tracing::info!("wrote the report data to {}", shown(path));
        if let Err(e) = html.publish(&html_path) {
            // Neither: take the data back (it belongs to this report).
            if path != Path::new("-") {
                let _ = std::fs::remove_file(path);
            }
            return Err(e.context(format!(
                "{} was removed again: the report is written whole or not at all",
                shown(path)
            )));
        }
    } else {
        html.publish(&html_path)?;
    }
    tracing::info!("wrote the report to {}", shown(&html_path));
    let t = &data.totals;
    tracing::info!(
        "batch {} of cluster '{}': {} keys, {} bytes of memory (mem_size), {} bytes (rdb_size), \
         {} instance(s), {} prefix node(s)",
        data.batch,
        data.cluster,
        t.agg.keys,
        t.agg.mem_size,
        t.agg.rdb_size,
        t.instances,
        data.prefix_tree.nodes.len()
    );
    Ok(())
}

fn shown(path: &Path) -> String {
    if path == Path::new("-") {
        "stdout".into()
    } else {
        path.display().to_string()
    }
}

/// A file written in full but not yet visible at its target (or, for `-` and paths that are
/// not regular files, already written in place).
enum Staged {
    Temp(tempfile::NamedTempFile),
    InPlace,
}

impl Staged {
    /// Rename the temporary file over the target.
    fn publish(self, path: &Path) -> anyhow::Result<()> {
        match self {
            Staged::InPlace => Ok(()),
            Staged::Temp(tmp) => {
                // The library's one publishing step: fsync, rename, fsync the directory.
                let (file, tmp_path) = tmp
                    .keep()
                    .map_err(|e| e.error)
                    .context("cannot keep the temporary file")?;
                atomic::publish(&file, &tmp_path, path).map_err(|e| {
                    // Before the rename the temporary file is still ours to remove.
                    if !matches!(e, atomic::PublishError::SyncDir { .. }) {
                        let _ = std::fs::remove_file(&tmp_path);
                    }
                    anyhow::Error::new(e).context(format!(
                        "cannot rename the temporary file to {}",
                        path.display()
                    ))
                })
            }
        }
    }
}

/// Write to `path` so that no half-written file is ever visible there: `write` fills a
/// temporary file in the same directory (buffered), which is fsynced and renamed over `path`;
/// on any error the temporary file is removed and `path` is untouched. `-` is stdout; an
/// existing path that is not a regular file (a FIFO, `/dev/stdout`) is written in place.
#[cfg(test)]
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    stage(path, write)?.publish(path)
}

/// The first half of an atomic write: the content in a fsynced temporary file beside `path`
/// (removed when the result is dropped unpublished), or written in place for `-` and paths
/// that are not regular files.
fn stage(
    path: &Path,
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> anyhow::Result<Staged> {
    if path == Path::new("-") {
        let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
        write(&mut stdout)
            .and_then(|()| stdout.flush())
            .context("cannot write to stdout")?;
        return Ok(Staged::InPlace);
    }
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.is_file()
    {
        if meta.is_dir() {
            bail!("cannot write {}: it is a directory", path.display());
        }
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mut w = std::io::BufWriter::new(f);
        write(&mut w)
            .and_then(|()| w.flush())
            .with_context(|| format!("cannot write {}", path.display()))?;
        return Ok(Staged::InPlace);
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // Like any file the user creates (0666 less the umask), not tempfile's private 0600: the
    // report is made to be shared.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let tmp = builder
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let tmp_path = tmp.path().to_path_buf();
    let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp);
    write(&mut w)
        .and_then(|()| w.flush())
        .with_context(|| format!("cannot write {}", tmp_path.display()))?;
    let tmp = w
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("cannot write {}", tmp_path.display()))?;
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("cannot write {}", tmp_path.display()))?;
    Ok(Staged::Temp(tmp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_report_file_gets_the_usual_permissions() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.html");
        write_atomically(&path, |w| w.write_all(b"x")).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        // 0666 less the umask (022 or 002 here and in CI), not tempfile's 0600.
        assert!(mode == 0o644 || mode == 0o664, "{mode:o}");
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        let bytes = |b: &'static [u8]| move |w: &mut dyn std::io::Write| w.write_all(b);
        write_atomically(&p, bytes(b"one")).unwrap();
        write_atomically(&p, bytes(b"two")).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A directory in the way is an error, and nothing is left behind.
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert!(write_atomically(&sub, bytes(b"x")).is_err());
        // A missing parent directory is an error naming it.
        let err = write_atomically(&dir.path().join("missing/r.json"), bytes(b"x")).unwrap_err();
        assert!(format!("{err:#}").contains("missing"), "{err:#}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        // A writer that fails midway leaves the old file and no temporary file.
        let failing = |w: &mut dyn std::io::Write| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("renderer failed"))
        };
        assert!(write_atomically(&p, failing).is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
