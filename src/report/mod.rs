//! The offline report: what a stored batch says about where the memory goes.
//!
//! [`model::ReportData`] is the one data model; two readers fill it and one renderer turns it
//! into a self-contained HTML page (and its JSON):
//!
//! ```text
//! Parquet files ─ parquet::scan ─┬─ RowAccumulator ─────────────── Aggregates ─┐
//!                                └─ ExternalSorter (spill) ─ PrefixBuilder ─────┤
//! ClickHouse ─── clickhouse::aggregates (GROUP BY) ─────────────── Aggregates ─┤─ assemble ─ ReportData
//!                clickhouse::stream_keys (first 4 KiB) ─ PrefixBuilder ─────────┘
//! ```
//!
//! * `keytext`: key bytes → display text; a key's sort form (at most 4 KiB + length + SHA-256,
//!   what every list and sort holds); timestamps.
//! * [`options`]: `--top`, `--prefix-threshold`, `--delimiter`, `--memory-limit`, validated.
//! * `aggregate`: bucket rules, top-N heaps, the per-row accumulator.
//! * [`prefix`]: the prefix tree from sorted keys (one pass, LCP stack).
//! * [`spill`]: external sort of the keys within `--memory-limit`.
//! * `parquet`, `clickhouse`: the readers.
//! * `assemble`: the shared last step (sums, orders, cuts).
//!
//! The same stored batch gives the same `ReportData` (and so byte-identical JSON) from both
//! stores and on every run: nothing depends on the time of the report, every order is total,
//! and every bucket rule is one function (restated once in SQL, see `clickhouse`).

pub mod advice;
pub(crate) mod aggregate;
pub(crate) mod assemble;
pub(crate) mod clickhouse;
pub(crate) mod diff;
mod error;
mod html;
mod keytext;
pub mod model;
pub mod options;
pub(crate) mod parquet;
// `prefix` and `spill` are public but hidden only for tests/offline/report_prefix.rs, which
// checks the prefix tree (from a spilled sort too) against the independent reference in
// tests/common/report_ref.rs that tests/clickhouse/report.rs shares. Not part of the API.
#[doc(hidden)]
pub mod prefix;
#[doc(hidden)]
pub mod spill;

use std::path::Path;

pub use self::error::ReportError;
pub use self::html::{render_html, write_html};
pub use self::keytext::key_text;

use crate::cancel::Cancel;
use crate::record::{BatchContext, BatchTs};

use self::aggregate::RowAccumulator;
use self::assemble::{assemble, total_agg};
use self::clickhouse::Scope;
use self::model::{Measure, PrefixTree, ReportData};
use self::options::{MemoryLimit, ReportOptions};
use self::prefix::PrefixBuilder;
use self::spill::{ExternalSorter, SpillStats, Spool};

/// What reading the batch took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Rows read (Parquet) or keys streamed (ClickHouse).
    pub rows: u64,
    /// Parquet: instance files read.
    pub files: u64,
    /// Parquet: what the key sort spilled.
    pub spill: SpillStats,
}

/// A report and how it was read.
#[derive(Debug, Clone)]
pub struct Report {
    pub data: ReportData,
    /// The batch timestamp (`data.batch` in text).
    pub batch: BatchTs,
    pub stats: ReadStats,
}

/// The key sort's share of `--memory-limit`: three quarters. The rest is left for decoding
/// (one record batch of each column), the aggregates and the top lists while the files are
/// read, and for the merge's read buffers afterwards (at most a third of the sort's share).
pub fn sort_budget(limit: MemoryLimit) -> u64 {
    limit.0 / 4 * 3
}

/// The report of a batch stored as Parquet under `root` (`DIR` of `into-parquet`): `batch` (a
/// batch directory name or an RFC 3339 timestamp) or the newest batch of `cluster`; with
/// `opts.baseline`, the changes since that batch. Blocking; `cancel` stops it at the next check
/// (temporary files are removed).
pub fn from_parquet(
    root: &Path,
    cluster: &str,
    batch: Option<&str>,
    opts: &ReportOptions,
    cancel: Cancel,
) -> Result<Report, ReportError> {
    let b = parquet::resolve_batch(root, cluster, batch)?;
    // Once per report, not per batch read (a comparison reads two at once).
    spill::remove_stale_spill_dirs(opts.spill_dir.as_deref());
    let Some(want) = opts.baseline.as_deref() else {
        let (data, stats) = parquet_batch_report(&b, cluster, opts, None, &cancel)?;
        return Ok(Report {
            batch: b.batch,
            data,
            stats,
        });
    };
    let base = resolve_parquet_baseline(root, cluster, want, b.batch)?;
    tracing::info!("comparing with baseline batch {}", base.slug);
    // The two batches' reports run at once, one on a thread of its own (the machine's second
    // core). Each report's key sort is spooled as it is consumed, tagged with the db: the pair
    // pass merges the two spools instead of reading and sorting both batches again. The two
    // spools hold up to 1/8 of --memory-limit each in memory ([`new_spool`]), so each report
    // runs within half of the other 3/4.
    let half = ReportOptions {
        memory_limit: MemoryLimit(opts.memory_limit.0 / 8 * 3),
        ..opts.clone()
    };
    let one = |batch: &parquet::ParquetBatch| {
        let mut spool = new_spool(opts);
        parquet_batch_report(batch, cluster, &half, Some(&mut spool), &cancel)
            .map(|(data, stats)| (data, stats, spool))
    };
    let (current, baseline) = std::thread::scope(|s| {
        let baseline = std::thread::Builder::new()
            .name("report-baseline".into())
            .spawn_scoped(s, || one(&base));
        let current = one(&b);
        let baseline = match baseline {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // No thread to be had: the baseline's report after the current one's.
            Err(_) => one(&base),
        };
        (current, baseline)
    });
    let (mut data, stats, cur_spool) = current?;
    let (base_data, _, base_spool) = baseline?;
    let (m, note) = change_measure(&data, &base_data);
    let tree = |d: &ReportData, batch: &parquet::ParquetBatch| match tree_for(d, m) {
        Some(t) => Ok::<_, ReportError>(t),
        None => {
            let o = ReportOptions {
                measure: m,
                ..opts.clone()
            };
            let r = parquet_batch_report(batch, cluster, &o, None, &cancel)?.0;
            Ok((r.prefix_tree, r.params.prefix_threshold_bytes))
        }
    };
    let setup = ChangeSetup::new(m, note, tree(&data, &b)?, tree(&base_data, &base)?);
    let mut builder = setup.builder(opts.top);
    let started = std::time::Instant::now();
    let (mut cur, mut old) = (cur_spool.into_reader()?, base_spool.into_reader()?);
    let n = diff::pair_spools(&mut cur, &mut old, &mut builder, &cancel)?;
    drop((cur, old));
    tracing::debug!(
        "merged the two key sorts ({n} entries) in {:.2?}",
        started.elapsed()
    );
    data.changes = Some(setup.changes(&data, &base_data, opts.top, builder.finish())?);
    Ok(Report {
        batch: b.batch,
        data,
        stats,
    })
}

/// One of the two `--baseline` spools: in memory up to 1/8 of `--memory-limit` (the two
/// together a quarter; the two reports share the rest), then in `--spill-dir`, with a read (and
/// write) buffer of 1/32 of the limit within 4 KiB and 256 KiB.
fn new_spool(opts: &ReportOptions) -> Spool {
    let limit = opts.memory_limit.0;
    let buf = usize::try_from(limit / 32)
        .unwrap_or(usize::MAX)
        .clamp(4 << 10, 256 << 10);
    let mem = usize::try_from(limit / 8).unwrap_or(usize::MAX);
    Spool::new(opts.spill_dir.as_deref(), buf, mem)
}

/// What the changes are computed from, the same for both stores: the measure, the union of
/// both trees' prefixes (each tree built with that measure) and their thresholds.
struct ChangeSetup {
    measure: Measure,
    note: Option<String>,
    union: Vec<(Vec<u8>, bool, bool)>,
    current_threshold: u64,
    baseline_threshold: u64,
}

impl ChangeSetup {
    /// `current`, `baseline`: each report's prefix tree and threshold measured by `measure`
    /// ([`tree_for`], else rebuilt).
    fn new(
        measure: Measure,
        note: Option<String>,
        current: (PrefixTree, u64),
        baseline: (PrefixTree, u64),
    ) -> Self {
        ChangeSetup {
            measure,
            note,
            union: assemble::union_prefixes(&current.0, &baseline.0),
            current_threshold: current.1,
            baseline_threshold: baseline.1,
        }
    }

    /// The builder the pair pass feeds.
    fn builder(&self, top: u64) -> diff::DiffBuilder {
        diff::DiffBuilder::new(
            self.union.iter().map(|u| u.0.clone()).collect(),
            self.measure,
            usize::try_from(top).unwrap_or(usize::MAX),
        )
    }

    /// The changes, from the two reports and what the pair pass found.
    fn changes(
        self,
        cur: &ReportData,
        base: &ReportData,
        top: u64,
        parts: diff::DiffParts,
    ) -> Result<model::Changes, ReportError> {
        Ok(assemble::changes(
            cur,
            base,
            top,
            assemble::ChangeInputs {
                measure: self.measure,
                note: self.note,
                current_threshold: self.current_threshold,
                baseline_threshold: self.baseline_threshold,
                union: &self.union,
                parts,
            },
        )?)
    }
}

/// The baseline batch of a Parquet store: `want` (a slug, RFC 3339 or `previous`), older
/// than `reported`.
fn resolve_parquet_baseline(
    root: &Path,
    cluster: &str,
    want: &str,
    reported: BatchTs,
) -> Result<parquet::ParquetBatch, ReportError> {
    if want == "previous" {
        for slug in parquet::batches_before(root, cluster, reported)? {
            // A directory of the older layout may hold another cluster's batch.
            if let Ok(b) = parquet::resolve_batch(root, cluster, Some(&slug))
                && b.batch < reported
            {
                return Ok(b);
            }
        }
        return Err(no_previous_batch(cluster, reported));
    }
    let b = parquet::resolve_batch(root, cluster, Some(want)).map_err(as_baseline_error)?;
    check_older(b.batch, reported)?;
    Ok(b)
}

/// The baseline batch of a ClickHouse store: `want` (RFC 3339 or `previous`), older than
/// `reported`.
async fn resolve_clickhouse_baseline(
    reader: &clickhouse::ClickHouseReader,
    cluster: &str,
    want: &str,
    reported: BatchTs,
) -> Result<BatchTs, ReportError> {
    if want == "previous" {
        return reader
            .completed_batches(cluster)
            .await?
            .into_iter()
            .find(|b| *b < reported)
            .ok_or_else(|| no_previous_batch(cluster, reported));
    }
    let b = reader
        .resolve_batch(cluster, Some(want))
        .await
        .map_err(as_baseline_error)?;
    check_older(b, reported)?;
    Ok(b)
}

/// `--baseline previous` when the cluster has no completed batch before the reported one.
fn no_previous_batch(cluster: &str, reported: BatchTs) -> ReportError {
    ReportError::NoBatch(format!(
        "--baseline previous: cluster '{cluster}' has no completed batch before {reported}"
    ))
}

/// An error of resolving `--batch`, said of `--baseline`.
fn as_baseline_error(e: ReportError) -> ReportError {
    match e {
        ReportError::Options(m) => ReportError::Options(m.replace("--batch", "--baseline")),
        ReportError::NoBatch(m) => ReportError::NoBatch(format!("--baseline: {m}")),
        e => e,
    }
}

/// A baseline must be older than the reported batch.
fn check_older(baseline: BatchTs, reported: BatchTs) -> Result<(), ReportError> {
    if baseline < reported {
        Ok(())
    } else {
        Err(ReportError::Options(format!(
            "--baseline {baseline} is not older than the reported batch {reported}"
        )))
    }
}

/// The measure of the comparison: `mem` when both reports use it, else `rdb` (and why).
fn change_measure(cur: &ReportData, base: &ReportData) -> (Measure, Option<String>) {
    if cur.memory.measure == "mem" && base.memory.measure == "mem" {
        (Measure::Mem, None)
    } else if cur.memory.measure == "rdb" && base.memory.measure == "rdb" {
        (
            Measure::Rdb,
            cur.memory.note.clone().or_else(|| base.memory.note.clone()),
        )
    } else {
        (
            Measure::Rdb,
            Some(
                "one of the two batches has no mem_size (stored before the column existed): \
                 the changes compare rdb_size, the keys' serialized size"
                    .to_string(),
            ),
        )
    }
}

/// A report's prefix tree and threshold when it is measured by `m` (else the caller rebuilds
/// it with `m`).
fn tree_for(d: &ReportData, m: Measure) -> Option<(PrefixTree, u64)> {
    (d.memory.measure == m.as_str())
        .then(|| (d.prefix_tree.clone(), d.params.prefix_threshold_bytes))
}

/// The prefix tree's builder for a batch with these aggregates: its threshold from the batch's
/// total of the measure.
fn prefix_builder(opts: &ReportOptions, aggregates: &aggregate::Aggregates) -> PrefixBuilder {
    let total = total_agg(aggregates);
    PrefixBuilder::new(
        opts.prefix_threshold
            .bytes(total.measured(aggregates.measure)),
        aggregates.measure,
        opts.delimiter.as_ref(),
    )
}

/// One batch's report from Parquet; with `spool`, its key sort (tagged with the db) is also
/// written there in key order.
fn parquet_batch_report(
    b: &parquet::ParquetBatch,
    cluster: &str,
    opts: &ReportOptions,
    mut spool: Option<&mut Spool>,
    cancel: &Cancel,
) -> Result<(ReportData, ReadStats), ReportError> {
    tracing::info!(
        "reading batch {} of cluster '{cluster}': {} file(s) in {}",
        b.slug,
        b.files.len(),
        b.dir.display()
    );
    let mut acc = RowAccumulator::new(
        b.batch,
        usize::try_from(opts.top).unwrap_or(usize::MAX),
        opts.measure,
    );
    let mut sorter = ExternalSorter::new(
        sort_budget(opts.memory_limit),
        opts.spill_dir.clone(),
        cancel.clone(),
    );
    let started = std::time::Instant::now();
    parquet::scan(b, cluster, &mut acc, &mut sorter, spool.is_some(), cancel)?;
    let rows = acc.rows();
    tracing::debug!("read {rows} rows in {:.2?}", started.elapsed());
    let started = std::time::Instant::now();
    let aggregates = acc.into_aggregates()?;
    let mut builder = prefix_builder(opts, &aggregates);
    let consume = |key: &[u8], facts, tag| {
        if let Some(s) = spool.as_mut() {
            s.push(key, facts, tag);
        }
        builder.push(key, facts)
    };
    let spill = sorter.finish_tagged(consume)?;
    tracing::debug!(
        "sorted the keys and built the prefix tree in {:.2?}",
        started.elapsed()
    );
    if spill.runs_spilled > 0 {
        tracing::info!(
            "key sort spilled {} run(s), {} bytes, {} intermediate merge(s) (--memory-limit {})",
            spill.runs_spilled,
            spill.bytes_spilled,
            spill.runs_merged,
            opts.memory_limit
        );
    }
    let tree = builder.finish()?;
    let id = BatchContext {
        cluster: cluster.to_string(),
        batch: b.batch,
    };
    let data = assemble(&id, opts, aggregates, tree)?;
    Ok((
        data,
        ReadStats {
            rows,
            files: b.files.len() as u64,
            spill,
        },
    ))
}

/// The report of a batch stored in ClickHouse (`--url` of `into-clickhouse`): `batch` (RFC
/// 3339) or the newest completed batch of `cluster`; with `opts.baseline`, the changes since
/// that batch.
pub async fn from_clickhouse(
    url: &str,
    proxy_url: Option<&str>,
    timeouts: crate::output::clickhouse::Timeouts,
    cluster: &str,
    batch: Option<&str>,
    opts: &ReportOptions,
) -> Result<Report, ReportError> {
    let mut reader = clickhouse::ClickHouseReader::new(url, proxy_url, timeouts)?;
    let batch = reader.resolve_batch(cluster, batch).await?;
    let Some(want) = opts.baseline.as_deref() else {
        let (data, rows) =
            ch_batch_report(&mut reader, cluster, batch, opts, None, Scope::Full).await?;
        return Ok(Report {
            data,
            batch,
            stats: ReadStats {
                rows,
                ..ReadStats::default()
            },
        });
    };
    let base = resolve_clickhouse_baseline(&reader, cluster, want, batch).await?;
    tracing::info!("comparing with baseline batch {base}");
    // The two batches' reports run at once (the baseline's on a task of its own, so on the
    // machine's second core while the server works for both). Each report's key stream (sort
    // forms with their db, in sort-form order) is spooled as it is consumed: the pair pass
    // merges the two spools, as from Parquet.
    spill::remove_stale_spill_dirs(opts.spill_dir.as_deref());
    // A JoinSet: dropping the report (a signal) or failing the current batch's report aborts
    // the baseline's task.
    let mut baseline = tokio::task::JoinSet::new();
    {
        let (mut reader, cluster, opts) = (reader.clone(), cluster.to_string(), opts.clone());
        baseline.spawn(async move {
            let mut spool = new_spool(&opts);
            ch_batch_report(
                &mut reader,
                &cluster,
                base,
                &opts,
                Some(&mut spool),
                Scope::Changes,
            )
            .await
            .map(|(data, _)| (data, spool))
        });
    }
    let mut cur_spool = new_spool(opts);
    let (mut data, rows) = ch_batch_report(
        &mut reader,
        cluster,
        batch,
        opts,
        Some(&mut cur_spool),
        Scope::Full,
    )
    .await?;
    let (base_data, base_spool) = match baseline.join_next().await {
        Some(Ok(r)) => r?,
        Some(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        _ => return Err(ReportError::Interrupted),
    };
    let (m, note) = change_measure(&data, &base_data);
    let o = ReportOptions {
        measure: m,
        ..opts.clone()
    };
    let cur_tree = ch_tree(&mut reader, cluster, batch, &data, &o).await?;
    let base_tree = ch_tree(&mut reader, cluster, base, &base_data, &o).await?;
    let setup = ChangeSetup::new(m, note, cur_tree, base_tree);
    let mut builder = setup.builder(opts.top);
    let started = std::time::Instant::now();
    let (mut cur, mut old) = (cur_spool.into_reader()?, base_spool.into_reader()?);
    // No cancel flag here: a ClickHouse report stops by being dropped, and this pass
    // reads only local memory or files.
    let n = diff::pair_spools(&mut cur, &mut old, &mut builder, &Cancel::default())?;
    drop((cur, old));
    tracing::debug!(
        "merged the two key streams ({n} entries) in {:.2?}",
        started.elapsed()
    );
    let changes = setup.changes(&data, &base_data, opts.top, builder.finish())?;
    data.changes = Some(changes);
    Ok(Report {
        data,
        batch,
        stats: ReadStats {
            rows,
            ..ReadStats::default()
        },
    })
}

/// The prefix tree and threshold of `d` (a report of `batch`) measured by `o.measure`: its
/// own when it used that measure, else rebuilt from the batch.
async fn ch_tree(
    reader: &mut clickhouse::ClickHouseReader,
    cluster: &str,
    batch: BatchTs,
    d: &ReportData,
    o: &ReportOptions,
) -> Result<(PrefixTree, u64), ReportError> {
    if let Some(t) = tree_for(d, o.measure) {
        return Ok(t);
    }
    let r = ch_batch_report(reader, cluster, batch, o, None, Scope::Changes)
        .await?
        .0;
    Ok((r.prefix_tree, r.params.prefix_threshold_bytes))
}

/// One batch's report from ClickHouse, and the keys streamed; with `spool`, its key stream
/// (sort forms tagged with the db) is also written there in key order.
async fn ch_batch_report(
    reader: &mut clickhouse::ClickHouseReader,
    cluster: &str,
    batch: BatchTs,
    opts: &ReportOptions,
    spool: Option<&mut Spool>,
    scope: clickhouse::Scope,
) -> Result<(ReportData, u64), ReportError> {
    tracing::info!("reading batch {batch} of cluster '{cluster}' from ClickHouse");
    let aggregates = reader
        .aggregates(cluster, batch, opts.top, opts.measure, scope)
        .await?;
    let mut builder = prefix_builder(opts, &aggregates);
    let rows = reader
        .stream_keys(cluster, batch, &mut builder, spool)
        .await?;
    let tree = builder.finish()?;
    let id = BatchContext {
        cluster: cluster.to_string(),
        batch,
    };
    Ok((assemble(&id, opts, aggregates, tree)?, rows))
}
