//! The dump pipeline: for every instance, source → parser → records → writer.
//!
//! Each instance gets a blocking parser thread (the source is a blocking byte stream) and an
//! async writer task, joined by a bounded channel of small record chunks: a chunk is cut at
//! [`CHUNK_RECORDS`] records or [`CHUNK_BYTES`] bytes of records (keys included), and parsing
//! runs ahead of writing by at most [`CHANNEL_CHUNKS`] chunks and [`CHANNEL_BYTES`] bytes
//! (a chunk holds its bytes from the parser until the writer is done with it). A slow writer
//! stalls the parser instead of growing memory, huge keys (a key is held whole) do not
//! multiply by the channel's depth, and parsing and writing use both cores. The chunks are
//! only transport: the writer still receives records one at a time.
//!
//! Up to `concurrency` instances run at once. The first error (from any source, parser or
//! writer) cancels the others (their streams are shut down, their writers dropped without
//! `finalize_instance`), the batch is not finalized, and the output's `abort_batch` removes
//! what the attempt wrote. An [`Interrupt`] (SIGINT/SIGTERM, fired by the binary) does the
//! same and ends the dump with [`Interrupted`], unless it arrives during `finalize_batch`:
//! the commit is then let finish (see `interrupt`).
//!
//! Every instance's counters (state, records, RDB bytes, duration) live in one
//! `InstanceStatus` table in [`Progress`], updated once per chunk; the progress bars, the
//! progress log lines and the metrics ([`crate::metrics`]) all read it.
//!
//! The pipeline is generic over [`Output`]: it knows nothing of any concrete store.

mod interrupt;
mod progress;
mod status;

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::cancel::Cancel;
use crate::output::{BatchContext, ChunkWriter, Output};
use crate::parser::{ParseOptions, RdbParser};
use crate::record::{InstanceSummary, Record};
use crate::slot;
use crate::source::{CancelHandle, Instance, SlotKind};

pub use self::interrupt::Interrupted;
pub(crate) use self::progress::ProgressCounter;
pub use self::progress::{Progress, terminal_bars};
use self::status::FailUnlessDone;
pub(crate) use self::status::{InstanceState, InstanceStatus};
pub use crate::cancel::{Interrupt, Signal};

/// Records per chunk sent from a parser thread to its writer task (at most).
pub const CHUNK_RECORDS: usize = 512;
/// A chunk is sent once its records take this many bytes ([`record_bytes`]), even when it
/// holds fewer than [`CHUNK_RECORDS`]: ordinary keys fill a chunk by count (~75 KiB), big
/// keys by bytes.
pub const CHUNK_BYTES: usize = 1 << 20;
/// Chunks that may wait between a parser and its writer.
pub const CHANNEL_CHUNKS: usize = 8;
/// Bytes of records ([`record_bytes`]) that may be in flight between a parser and its writer:
/// queued, or held by the writer while it writes them. A chunk larger than this (one key
/// bigger than the budget) takes the whole budget and travels alone.
pub const CHANNEL_BYTES: usize = 8 << 20;

/// Chunks whose records go back from the writer to the parser for reuse: the parser fills
/// them in place ([`RdbParser::next_record_into`]), so a record's key buffer is allocated once,
/// not once per key. As many as can be in circulation (the channel's, the one the parser
/// fills and the one the writer writes), so that a parser running ahead of its writer does
/// not allocate a chunk's keys while the writer frees another's.
const RECYCLED_CHUNKS: usize = CHANNEL_CHUNKS + 2;
/// Key buffers up to this capacity are recycled with their record; larger ones are handed to
/// the writer ([`ChunkWriter::write_owned`]) and freed, so the recycled chunks hold at most
/// `RECYCLED_CHUNKS × CHUNK_RECORDS × RECYCLED_KEY_BYTES` (640 KiB) of key buffers.
const RECYCLED_KEY_BYTES: usize = 128;

/// Emptied chunks on their way back from a writer to its parser (see [`RECYCLED_CHUNKS`]).
#[derive(Default)]
struct ChunkPool(Mutex<Vec<Vec<Record>>>);

impl ChunkPool {
    /// A chunk to fill: a recycled one (its records' key buffers reused), else a new one.
    fn take(&self) -> Vec<Record> {
        self.0
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .unwrap_or_else(|| Vec::with_capacity(CHUNK_RECORDS))
    }

    /// Give back a chunk the writer is done with (dropped when the pool is full).
    fn put(&self, records: Vec<Record>) {
        if let Ok(mut pool) = self.0.lock()
            && pool.len() < RECYCLED_CHUNKS
        {
            pool.push(records);
        }
    }
}

/// What a record weighs in the channel: its fixed part and its key (the only unbounded field).
pub fn record_bytes(record: &Record) -> usize {
    std::mem::size_of::<Record>() + record.key.len()
}

/// Records in transit from a parser to its writer, holding their share of [`CHANNEL_BYTES`]
/// until the writer drops the chunk.
struct Chunk {
    records: Vec<Record>,
    _bytes: OwnedSemaphorePermit,
}

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

/// Cancels every running instance when one fails.
#[derive(Default)]
struct CancelState {
    cancelled: Cancel,
    handles: Mutex<Vec<CancelHandle>>,
}

impl CancelState {
    fn cancel(&self) {
        self.cancelled.cancel();
        self.fire();
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.is_cancelled()
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
///
/// A stop requested through [`Progress::interrupt`] before the batch is committed ends the dump
/// with [`Interrupted`] (sources cancelled, writers dropped, `abort_batch` called); one that
/// arrives while `finalize_batch` runs lets the commit finish and is then only logged.
pub async fn run<O: Output>(
    plan: DumpPlan,
    output: O,
    progress: Arc<Progress>,
) -> anyhow::Result<DumpSummary> {
    let display = progress.display();
    let result = run_batch(plan, output, &progress).await;
    display.stop().await;
    result
}

async fn run_batch<O: Output>(
    plan: DumpPlan,
    mut output: O,
    progress: &Arc<Progress>,
) -> anyhow::Result<DumpSummary> {
    let started = Instant::now();
    if plan.instances.is_empty() {
        return Err(anyhow!("nothing to dump: the source has no instances"));
    }
    let names: Vec<&str> = plan.instances.iter().map(|i| i.name.as_str()).collect();
    let statuses = progress.begin(&plan.batch.cluster, &names);
    let interrupt = progress.interrupt().clone();
    if let Some(signal) = interrupt.signal() {
        return Err(Interrupted {
            signal,
            after_prepare: false,
        }
        .into());
    }
    // A signal interrupts the preparation at once (a server that accepts and never answers
    // would otherwise hold the run until --ch-response-timeout): nothing was written yet.
    let prepared = tokio::select! {
        r = output.prepare_batch(&plan.batch) => r,
        signal = interrupt.fired() => {
            return Err(Interrupted {
                signal,
                after_prepare: false,
            }
            .into());
        }
    };
    prepared.context("cannot prepare the output")?;
    let n_instances = plan.instances.len();
    let records = match write_instances(&plan, &mut output, progress, &statuses).await {
        Ok(records) => records,
        Err(e) => {
            output.abort_batch().await;
            return Err(match interrupted(&e) {
                true => e,
                false => e.context("dump failed; the batch was not finalized"),
            });
        }
    };
    if let Err(signal) = interrupt.begin_commit() {
        output.abort_batch().await;
        return Err(Interrupted {
            signal,
            after_prepare: true,
        }
        .into());
    }
    let committed = output.finalize_batch().await;
    interrupt.end_commit();
    if let Err(e) = committed {
        output.abort_batch().await;
        return Err(anyhow::Error::new(e).context("cannot finalize the batch"));
    }
    if let Some(signal) = interrupt.signal() {
        tracing::warn!(
            "{signal} arrived while the batch was being finalized: the commit was let finish \
             and the batch is complete"
        );
    }
    Ok(DumpSummary {
        instances: n_instances,
        records,
        elapsed: started.elapsed(),
    })
}

/// Whether `e` is (or was caused by) an interrupt.
fn interrupted(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<Interrupted>())
}

/// Every instance through its writer, up to `plan.concurrency` at a time. Returns the number
/// of records written; on error (or interrupt) every instance task has ended (and dropped its
/// writer).
async fn write_instances<O: Output>(
    plan: &DumpPlan,
    output: &mut O,
    progress: &Arc<Progress>,
    statuses: &[Arc<InstanceStatus>],
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
    for ((instance, writer), status) in plan
        .instances
        .iter()
        .cloned()
        .zip(writers)
        .zip(statuses.iter().cloned())
    {
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
            status.start();
            let failed = FailUnlessDone(&status);
            let result = dump_instance(instance, writer, parse, &cancel, &progress, &status)
                .await
                .with_context(|| format!("instance {name} failed"));
            if result.is_ok() {
                status.end(InstanceState::Done);
            }
            drop(failed);
            result
        });
    }
    let interrupt = progress.interrupt().clone();
    let mut records = 0;
    let mut first_error: Option<anyhow::Error> = None;
    loop {
        let joined = tokio::select! {
            joined = tasks.join_next() => joined,
            signal = interrupt.fired(), if first_error.is_none() => {
                tracing::debug!("{signal}: stopping every instance");
                first_error = Some(Interrupted { signal, after_prepare: true }.into());
                cancel.cancel();
                tasks.abort_all();
                continue;
            }
        };
        let Some(joined) = joined else { break };
        let result = match joined {
            Ok(r) => r,
            Err(e) if e.is_cancelled() => continue,
            Err(e) => Err(anyhow!("instance task failed: {e}")),
        };
        match result {
            Ok(n) => records += n,
            Err(e) => {
                if first_error.is_none() {
                    first_error = Some(e);
                    cancel.cancel();
                    tasks.abort_all();
                } else {
                    tracing::debug!("after the first error: {e:#}");
                }
            }
        }
    }
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
    status: &Arc<InstanceStatus>,
) -> anyhow::Result<u64> {
    writer.prepare_instance().await?;
    let (tx, mut rx) = mpsc::channel::<Chunk>(CHANNEL_CHUNKS);
    let budget = Arc::new(Semaphore::new(CHANNEL_BYTES));
    let pool = Arc::new(ChunkPool::default());
    let runtime = tokio::runtime::Handle::current();
    let parser_task = {
        let cancel = Arc::clone(cancel);
        let status = Arc::clone(status);
        // Wait for the chunk's bytes, then for a place in the channel. `false`: the writer
        // side is gone (it reports its own error).
        let send = move |records: Vec<Record>, bytes: usize| -> bool {
            // ≤ CHANNEL_BYTES, which fits a u32.
            let permits = bytes.min(CHANNEL_BYTES) as u32;
            let Ok(permit) = runtime.block_on(Arc::clone(&budget).acquire_many_owned(permits))
            else {
                return false;
            };
            if tx
                .blocking_send(Chunk {
                    records,
                    _bytes: permit,
                })
                .is_err()
            {
                return false;
            }
            // A chunk of half the budget or more (huge keys): let the writer finish it before
            // the next record is decoded, so the pipeline holds one huge key, not two.
            if bytes >= CHANNEL_BYTES / 2 {
                let all = CHANNEL_BYTES as u32;
                return runtime
                    .block_on(Arc::clone(&budget).acquire_many_owned(all))
                    .is_ok();
            }
            true
        };
        let pool = Arc::clone(&pool);
        tokio::task::spawn_blocking(move || -> anyhow::Result<InstanceSummary> {
            let stream = instance.open()?;
            if let Some(handle) = stream.cancel {
                cancel.register(handle);
            }
            status.set_total_bytes(stream.total_bytes);
            let mut parse = parse;
            if let Some(flags) = parse.memory {
                // Flags over what the server said; a Redis Cluster node is in cluster mode.
                let mut detected = stream.memory.unwrap_or_default();
                if instance.slots == Some(SlotKind::Redis) {
                    detected.cluster.get_or_insert(true);
                }
                parse.memory = Some(flags.over(detected));
            }
            let mut parser = RdbParser::read_ahead(stream.reader, instance.name.as_str(), parse)
                .map_err(|e| {
                    anyhow!("{}: cannot start the read-ahead thread: {e}", instance.name)
                })?;
            // `chunk[..filled]` holds this chunk's records; the records after them are
            // recycled slots, filled next.
            let mut chunk = pool.take();
            let mut filled = 0;
            let mut chunk_bytes = 0;
            loop {
                if filled == chunk.len() {
                    chunk.push(Record::default());
                }
                let record = &mut chunk[filled];
                if !parser.next_record_into(record)? {
                    break;
                }
                match instance.slots {
                    None => {}
                    Some(SlotKind::Redis) => {
                        record.redis_slot = Some(slot::redis_slot(&record.key))
                    }
                    Some(SlotKind::Codis) => {
                        record.codis_slot = Some(slot::codis_slot(&record.key))
                    }
                }
                chunk_bytes += record_bytes(record);
                filled += 1;
                if filled == CHUNK_RECORDS || chunk_bytes >= CHUNK_BYTES {
                    status.set_bytes_read(parser.offset());
                    if cancel.is_cancelled() {
                        return Err(anyhow!("cancelled"));
                    }
                    let mut full = std::mem::replace(&mut chunk, pool.take());
                    full.truncate(filled);
                    filled = 0;
                    if !send(full, std::mem::take(&mut chunk_bytes)) {
                        return Ok(InstanceSummary::default());
                    }
                }
            }
            status.set_bytes_read(parser.offset());
            if filled > 0 {
                chunk.truncate(filled);
                send(chunk, chunk_bytes);
            }
            Ok(summary(&parser))
        })
    };

    let mut counter = ProgressCounter::default();
    let mut reported = 0;
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
        let Chunk {
            mut records,
            _bytes: in_flight,
        } = chunk;
        let n = records.len() as u64;
        for record in &mut records {
            if record.key.capacity() > RECYCLED_KEY_BYTES {
                // Not worth keeping: the writer may take the buffer (huge keys).
                writer.write_owned(std::mem::take(record)).await?;
            } else {
                writer.write_record(record).await?;
            }
        }
        // Its bytes return to the budget only now: the writer is done with them.
        drop(in_flight);
        pool.put(records);
        status.add_records(n);
        if counter.add(n) {
            progress.report(status, counter.total() - reported);
            reported = counter.total();
        }
    }
    // The channel closed: the parser ended. Its result decides whether this instance succeeded.
    let summary = parser_task
        .await
        .map_err(|e| anyhow!("parser thread failed: {e}"))??;
    if let Some(model) = &summary.memory_model {
        tracing::debug!("{}: memory model {model}", status.instance());
    }
    writer.set_summary(&summary);
    writer.finalize_instance().await?;
    status.end(InstanceState::Done);
    progress.instance_done(status, counter.total() - reported);
    Ok(counter.total())
}

/// What the parser learned about the instance besides its keys.
fn summary<R: std::io::Read>(parser: &RdbParser<R>) -> InstanceSummary {
    let info = parser.info();
    let model = parser.memory_model();
    InstanceSummary {
        memory_model: model.map(|m| m.describe()),
        memory_approximate: model.is_some_and(|m| m.approximate),
        rdb_server: info
            .server
            .as_ref()
            .map(|(valkey, v)| format!("{} {v}", if *valkey { "valkey" } else { "redis" })),
        used_mem: info.used_mem,
        keyspace_tables: (!info.db_sizes.is_empty()).then(|| {
            info.db_sizes
                .iter()
                .map(|&(_, keys, expires)| crate::memory::keyspace_tables(keys, expires))
                .sum()
        }),
    }
}
