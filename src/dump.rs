//! The dump pipeline: for every instance, source → parser → records → writer.
//!
//! Each instance gets a blocking parser thread (the source is a blocking byte stream) and an
//! async writer task, joined by a bounded channel of small record chunks: parsing runs ahead
//! of writing by at most [`CHANNEL_CHUNKS`] × [`CHUNK_RECORDS`] records, so a slow writer
//! stalls the parser instead of growing memory, and parsing and writing use both cores.
//! The chunks are only transport: the writer still receives records one at a time.
//!
//! Up to `concurrency` instances run at once. The first error (from any source, parser or
//! writer) cancels the others (their streams are shut down, their writers dropped without
//! `finalize_instance`), the batch is not finalized, and the output's `abort_batch` removes
//! what the attempt wrote.
//!
//! The pipeline is generic over [`Output`]: it knows nothing of any concrete store.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::output::{BatchContext, ChunkWriter, Output};
use crate::parser::{ParseOptions, RdbParser};
use crate::record::Record;
use crate::slot;
use crate::source::{CancelHandle, Instance, SlotKind};

/// Progress is reported per instance every this many records, plus the remainder at the end.
pub const REPORT_INTERVAL: u64 = 1_000_000;
/// Records per chunk sent from a parser thread to its writer task.
pub const CHUNK_RECORDS: usize = 1024;
/// Chunks that may wait between a parser and its writer.
pub const CHANNEL_CHUNKS: usize = 16;

/// What to dump and how.
pub struct DumpPlan {
    pub batch: BatchContext,
    pub instances: Vec<Instance>,
    /// Instances processed at once (≥ 1).
    pub concurrency: usize,
    pub parse: ParseOptions,
}

/// Totals of a finished dump.
#[derive(Debug, Clone, Default)]
pub struct DumpSummary {
    pub instances: usize,
    pub records: u64,
    pub elapsed: Duration,
}

/// Counts one instance's records and says when a progress report is due: at every multiple of
/// [`REPORT_INTERVAL`], and once more at the end for the remainder (if any).
#[derive(Debug, Default, Clone)]
pub struct ProgressCounter {
    total: u64,
    unreported: u64,
}

impl ProgressCounter {
    /// Count one record; returns the number of records newly covered by a due report.
    #[inline]
    pub fn record(&mut self) -> Option<u64> {
        self.total += 1;
        self.unreported += 1;
        if self.unreported == REPORT_INTERVAL {
            self.unreported = 0;
            Some(REPORT_INTERVAL)
        } else {
            None
        }
    }

    /// The remainder not yet reported, if any (call once at the end).
    pub fn finish(&mut self) -> Option<u64> {
        let rest = std::mem::take(&mut self.unreported);
        (rest > 0).then_some(rest)
    }

    pub fn total(&self) -> u64 {
        self.total
    }
}

/// Shared progress across instances: a bar on a TTY, log lines otherwise.
pub struct Progress {
    started: Instant,
    total: AtomicU64,
    bars: Option<indicatif::MultiProgress>,
}

impl Progress {
    /// `interactive`: draw progress bars (stderr is a terminal) instead of logging.
    pub fn new(interactive: bool) -> Arc<Self> {
        let bars = interactive.then(|| {
            indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::stderr())
        });
        Arc::new(Progress {
            started: Instant::now(),
            total: AtomicU64::new(0),
            bars,
        })
    }

    fn bar(&self, instance: &str, total_bytes: Option<u64>) -> Option<indicatif::ProgressBar> {
        let bars = self.bars.as_ref()?;
        let bar = match total_bytes {
            Some(n) => indicatif::ProgressBar::new(n).with_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {percent:>3}% {bytes}/{total_bytes} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            ),
            None => indicatif::ProgressBar::new_spinner().with_style(
                indicatif::ProgressStyle::with_template("{prefix} {spinner} {bytes} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            ),
        };
        let bar = bars.add(bar);
        bar.set_prefix(instance.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        Some(bar)
    }

    /// One report: `newly` more records for `instance` (now `instance_total`).
    fn report(
        &self,
        instance: &str,
        newly: u64,
        instance_total: u64,
        pct: Option<f64>,
        done: bool,
    ) {
        let all = self.total.fetch_add(newly, Ordering::Relaxed) + newly;
        if self.bars.is_some() {
            return; // the bar shows it
        }
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let rate = all as f64 / secs;
        let state = if done { "done" } else { "progress" };
        match pct {
            Some(p) => tracing::info!(
                "{state}: instance {instance}: {instance_total} records ({p:.1}% of bytes), \
                 {all} records in all, {rate:.0} records/s"
            ),
            None => tracing::info!(
                "{state}: instance {instance}: {instance_total} records, {all} records in all, \
                 {rate:.0} records/s"
            ),
        }
    }

    /// Leave the terminal below the bars, so later log lines start on a fresh line.
    pub fn finish(&self) {
        if self.bars.is_some() {
            eprintln!();
        }
    }

    pub fn total_records(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

/// Cancels every running instance when one fails.
#[derive(Default)]
struct CancelState {
    cancelled: AtomicBool,
    handles: Mutex<Vec<CancelHandle>>,
}

impl CancelState {
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.fire();
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Keep `handle` to abort its stream on cancel; fires at once if already cancelled (the
    /// stream was still opening when another instance failed).
    fn register(&self, handle: CancelHandle) {
        if let Ok(mut handles) = self.handles.lock() {
            handles.push(handle);
        }
        if self.is_cancelled() {
            self.fire();
        }
    }

    fn fire(&self) {
        if let Ok(handles) = self.handles.lock() {
            for h in handles.iter() {
                h();
            }
        }
    }
}

/// Run the dump. On success the batch has been finalized; on error it has not, and the
/// output was asked to remove what this attempt wrote.
pub async fn run<O: Output>(
    plan: DumpPlan,
    mut output: O,
    progress: Arc<Progress>,
) -> anyhow::Result<DumpSummary> {
    let started = Instant::now();
    if plan.instances.is_empty() {
        return Err(anyhow!("nothing to dump: the source has no instances"));
    }
    output
        .prepare_batch(&plan.batch)
        .await
        .context("cannot prepare the output")?;
    let n_instances = plan.instances.len();
    match write_instances(&plan, &mut output, &progress).await {
        Ok(records) => {
            if let Err(e) = output.finalize_batch().await {
                output.abort_batch().await;
                return Err(anyhow::Error::new(e).context("cannot finalize the batch"));
            }
            Ok(DumpSummary {
                instances: n_instances,
                records,
                elapsed: started.elapsed(),
            })
        }
        Err(e) => {
            output.abort_batch().await;
            Err(e.context("dump failed; the batch was not finalized"))
        }
    }
}

/// Every instance through its writer, up to `plan.concurrency` at a time. Returns the number
/// of records written; on error every instance task has ended (and dropped its writer).
async fn write_instances<O: Output>(
    plan: &DumpPlan,
    output: &mut O,
    progress: &Arc<Progress>,
) -> anyhow::Result<u64> {
    // Every writer up front: conflicts between instances fail before any work starts.
    let mut writers = Vec::with_capacity(plan.instances.len());
    for instance in &plan.instances {
        let writer = output
            .writer_for(plan.batch.write_context(&instance.name))
            .with_context(|| format!("instance {} failed", instance.name))?;
        writers.push(writer);
    }
    let cancel = Arc::new(CancelState::default());
    let limit = Arc::new(Semaphore::new(plan.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for (instance, writer) in plan.instances.iter().cloned().zip(writers) {
        let cancel = Arc::clone(&cancel);
        let limit = Arc::clone(&limit);
        let progress = Arc::clone(progress);
        let parse = plan.parse;
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.map_err(|e| anyhow!(e))?;
            if cancel.is_cancelled() {
                return Ok(0);
            }
            let name = instance.name.clone();
            dump_instance(instance, writer, parse, &cancel, &progress)
                .await
                .with_context(|| format!("instance {name} failed"))
        });
    }
    let mut records = 0;
    let mut first_error = None;
    let progress_done = ProgressDone(Arc::clone(progress));
    while let Some(joined) = tasks.join_next().await {
        let result = joined
            .map_err(|e| anyhow!("instance task failed: {e}"))
            .and_then(|r| r);
        match result {
            Ok(n) => records += n,
            Err(e) => {
                if first_error.is_none() {
                    first_error = Some(e);
                    cancel.cancel();
                    tasks.abort_all();
                }
            }
        }
    }
    drop(progress_done);
    match first_error {
        Some(e) => Err(e),
        None => Ok(records),
    }
}

/// Dump one instance: open, parse on a blocking thread, write on this task.
async fn dump_instance<W: ChunkWriter + Send>(
    instance: Instance,
    mut writer: W,
    parse: ParseOptions,
    cancel: &Arc<CancelState>,
    progress: &Arc<Progress>,
) -> anyhow::Result<u64> {
    let name: Arc<str> = Arc::from(instance.name.as_str());
    writer.prepare_instance().await?;
    let (tx, mut rx) = mpsc::channel::<Vec<Record>>(CHANNEL_CHUNKS);
    let offset = Arc::new(AtomicU64::new(0));
    let total_bytes = Arc::new(AtomicU64::new(0));
    let parser_task = {
        let cancel = Arc::clone(cancel);
        let offset = Arc::clone(&offset);
        let total_bytes = Arc::clone(&total_bytes);
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let stream = instance.open()?;
            if let Some(handle) = stream.cancel {
                cancel.register(handle);
            }
            total_bytes.store(stream.total_bytes.unwrap_or(0), Ordering::Relaxed);
            let mut parser = RdbParser::new(stream.reader, instance.name.as_str(), parse);
            let mut chunk = Vec::with_capacity(CHUNK_RECORDS);
            while let Some(mut record) = parser.next_record()? {
                match instance.slots {
                    SlotKind::None => {}
                    SlotKind::Redis => record.redis_slot = Some(slot::redis_slot(&record.key)),
                    SlotKind::Codis => record.codis_slot = Some(slot::codis_slot(&record.key)),
                }
                chunk.push(record);
                if chunk.len() == CHUNK_RECORDS {
                    offset.store(parser.offset(), Ordering::Relaxed);
                    if cancel.is_cancelled() {
                        return Err(anyhow!("cancelled"));
                    }
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_RECORDS));
                    if tx.blocking_send(full).is_err() {
                        // The writer side is gone; it reports its own error.
                        return Ok(());
                    }
                }
            }
            offset.store(parser.offset(), Ordering::Relaxed);
            if !chunk.is_empty() {
                let _ = tx.blocking_send(chunk);
            }
            Ok(())
        })
    };

    let mut counter = ProgressCounter::default();
    let mut bar: Option<indicatif::ProgressBar> = None;
    let mut bar_checked = false;
    let pct = |offset: &AtomicU64, total: &AtomicU64| {
        let t = total.load(Ordering::Relaxed);
        (t > 0).then(|| offset.load(Ordering::Relaxed) as f64 * 100.0 / t as f64)
    };
    loop {
        let chunk = match tokio::time::timeout(crate::output::IDLE_TICK, rx.recv()).await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(_) => {
                // No record for a while (a stalled source, a huge key): writers may act on time.
                writer.on_idle().await?;
                continue;
            }
        };
        if !bar_checked {
            bar_checked = true;
            let t = total_bytes.load(Ordering::Relaxed);
            bar = progress.bar(&name, (t > 0).then_some(t));
        }
        for record in &chunk {
            writer.write_record(record).await?;
            if let Some(n) = counter.record() {
                progress.report(&name, n, counter.total(), pct(&offset, &total_bytes), false);
            }
        }
        if let Some(bar) = &bar {
            bar.set_position(offset.load(Ordering::Relaxed));
            bar.set_message(format!("{} records", counter.total()));
        }
    }
    // The channel closed: the parser ended. Its result decides whether this instance succeeded.
    parser_task
        .await
        .map_err(|e| anyhow!("parser thread failed: {e}"))??;
    writer.finalize_instance().await?;
    if let Some(n) = counter.finish() {
        progress.report(&name, n, counter.total(), pct(&offset, &total_bytes), true);
    }
    if let Some(bar) = bar {
        bar.finish_with_message(format!("{} records, done", counter.total()));
    }
    Ok(counter.total())
}

/// Calls [`Progress::finish`] when dropped (on success and on error alike).
struct ProgressDone(Arc<Progress>);

impl Drop for ProgressDone {
    fn drop(&mut self) {
        self.0.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reports(n: u64) -> Vec<u64> {
        let mut c = ProgressCounter::default();
        let mut out = Vec::new();
        for _ in 0..n {
            if let Some(k) = c.record() {
                out.push(k);
            }
        }
        if let Some(k) = c.finish() {
            out.push(k);
        }
        out
    }

    #[test]
    fn progress_boundaries() {
        assert_eq!(reports(0), Vec::<u64>::new());
        assert_eq!(reports(1), vec![1]);
        assert_eq!(reports(REPORT_INTERVAL - 1), vec![REPORT_INTERVAL - 1]);
        assert_eq!(reports(REPORT_INTERVAL), vec![REPORT_INTERVAL]);
        assert_eq!(reports(REPORT_INTERVAL + 1), vec![REPORT_INTERVAL, 1]);
        assert_eq!(
            reports(2 * REPORT_INTERVAL),
            vec![REPORT_INTERVAL, REPORT_INTERVAL]
        );
    }
}
