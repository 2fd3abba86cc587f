//! Parquet output: one file per instance, one directory per import batch, Hive-style paths.
//!
//! # Layout
//!
//! ```text
//! DIR/cluster=<cluster>/batch=<YYYY-MM-DD_HH-mm-ss.SSSSSSSSSZ>/<instance>.parquet
//! ```
//!
//! Cluster and instance names are percent-encoded for file names, one-to-one (every byte
//! outside `[A-Za-z0-9._-]` → `%XX`, see [`path::encode_name`]), so `127.0.0.1:6379` is stored
//! as `127.0.0.1%3A6379.parquet` and `a/b` under `cluster=a%2Fb`. Older versions mapped names
//! lossily ([`path::sanitize_name`]); the report reads their directories too. The names as
//! given are in the `cluster` and `instance` columns. Every file has the same Arrow schema
//! ([`schema::schema`]).
//!
//! # Lifecycle and guarantees
//!
//! * `prepare_batch` creates `DIR/cluster=<c>/_tmp_batch=<slug>/` and takes an advisory lock on
//!   `_tmp_batch=<slug>.lock` next to it. It fails if `batch=<slug>` already exists (a batch is
//!   written once) or if another live run holds the lock; a leftover `_tmp_batch=<slug>` of an
//!   interrupted run (no lock holder) is removed, so re-running the same batch just works.
//!   The `_tmp_batch=*` directories of *other* batches whose lock nobody holds (runs that were
//!   killed, whatever their timestamp) are removed too, with a warning naming each; those of
//!   live runs are left alone.
//! * Each instance writes `<name>.parquet.tmp` inside the tmp dir. Records are appended to Arrow
//!   column builders and written with [`ArrowWriter`] every [`MICRO_BATCH_ROWS`] rows (earlier
//!   if its keys would exceed [`MICRO_BATCH_MAX_KEY_BYTES`]; a key longer than that is written
//!   alone, and waited for), so an instance buffers three micro-batches (filling, queued,
//!   encoding; [`encoder`]) of at most a few MiB of keys each, plus
//!   the in-progress row group (at most [`MAX_ROW_GROUP_ROWS`] rows / about
//!   [`MAX_ROW_GROUP_BYTES`] bytes encoded).
//! * `finalize_instance` writes the remainder and the footer, fsyncs the file and renames it
//!   to `<name>.parquet`.
//! * `finalize_batch` checks that no `.parquet.tmp` file is left, fsyncs the tmp dir, renames it
//!   to `batch=<slug>`, fsyncs the cluster dir and removes the lock file. Only then does the batch
//!   appear, so readers globbing `batch=*/*.parquet` never see a partial batch.
//! * A failed dump never calls `finalize_batch`: no `batch=` directory appears. Dropping a
//!   prepared but unfinished [`ParquetOutput`] removes its tmp dir (best effort); a killed
//!   process leaves the tmp dir behind, which the next run on the cluster removes.
//!
//! Errors carry the path and the cause; nothing is retried.
//!
//! # Reading
//!
//! Glob `DIR/cluster=*/batch=*/*.parquet`, not `DIR/**/*.parquet`: the latter also matches the
//! already finalized instance files of a batch still in `_tmp_batch=`. The directory names
//! repeat the `cluster` and `batch` columns in encoded/text form; engines that apply Hive
//! partitioning let the directory value win (DuckDB: `batch` becomes a VARCHAR) or refuse the
//! type clash (pyarrow datasets), so read with Hive partitioning off and use the columns in the
//! files. The README has a tested recipe per reader (DuckDB, pyarrow, pandas, polars,
//! ClickHouse `file()`), see `scripts/parquet-readers.py`.
//!
//! # Threads
//!
//! Appending to the Arrow builders runs on the caller's (async) task; encoding the
//! micro-batches (dictionaries, pages, compression: most of the CPU) runs on a thread per
//! file ([`encoder`]), so the parser, the builders and the encoder share the cores. The
//! blocking steps (directory work, footer + fsync + rename) run on tokio's blocking pool.

mod encoder;
pub(crate) mod path;
pub mod schema;

pub use path::{BatchPaths, encode_name, sanitize_name};

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use self::encoder::Encoder;
use self::path::{LOCK_SUFFIX, TMP_BATCH_PREFIX, TMP_SUFFIX};
use self::schema::ColumnBuilders;
use super::lock::FileLock;
use super::{BatchContext, ChunkWriter, Output, OutputError, StoreCause, blocking, sync_dir};
use crate::record::{InstanceSummary, Record, WriteContext};

/// Rows buffered in Arrow builders before they are handed to the Parquet writer.
pub const MICRO_BATCH_ROWS: usize = 10_000;
/// The file metadata key holding the instance's [`InstanceSummary`] as JSON (its memory
/// model, the RDB's `used-mem`, the keyspace tables).
pub const SUMMARY_METADATA_KEY: &str = "rdbinsight.instance";
/// Default rows per Parquet row group (a multiple of [`MICRO_BATCH_ROWS`]). The writer keeps the
/// encoded pages of the in-progress row group in memory, so this bounds memory per instance:
/// about 9 MB at 500,000 typical rows (half of what 1,000,000 rows held, for files 0.7 %
/// larger).
pub const MAX_ROW_GROUP_ROWS: usize = 500_000;
/// Estimated encoded bytes after which a row group is closed early (very long keys).
pub const MAX_ROW_GROUP_BYTES: usize = 64 * 1024 * 1024;
/// Key bytes after which a micro-batch is cut before reaching [`MICRO_BATCH_ROWS`] rows. Only
/// large keys get there (419 bytes per key on average); it bounds the builders' memory, and
/// encoding a micro-batch copies its keys once more (plain page, compression).
pub const MICRO_BATCH_MAX_KEY_BYTES: usize = 4 * 1024 * 1024;
/// Largest key that can be written (Arrow `Binary` and Parquet `BYTE_ARRAY` use 32-bit
/// lengths, with room left for the micro-batch's other values). Redis keys are at most 512 MB.
pub const MAX_KEY_BYTES: usize = i32::MAX as usize - MICRO_BATCH_MAX_KEY_BYTES;
/// Key bytes reserved per row for the first micro-batch (later ones use the previous size).
const INITIAL_KEY_BYTES_PER_ROW: usize = 32;

/// Column compression of the Parquet files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ParquetCompression {
    /// Zstandard level 1: small files at close to Snappy speed.
    #[default]
    Zstd,
    Snappy,
    /// LZ4 as `LZ4_RAW` (the non-deprecated Parquet LZ4 codec).
    Lz4,
    None,
}

impl ParquetCompression {
    fn codec(self) -> Compression {
        match self {
            ParquetCompression::Zstd => Compression::ZSTD(ZstdLevel::default()),
            ParquetCompression::Snappy => Compression::SNAPPY,
            ParquetCompression::Lz4 => Compression::LZ4_RAW,
            ParquetCompression::None => Compression::UNCOMPRESSED,
        }
    }
}

/// Columns written without statistics, whose min/max prune nothing: `key` (see
/// [`writer_properties`]), `cluster` and `instance` (constant in a file; the directory and
/// file names already select them), `type` and `encoding` (mixed in every page). The text
/// columns' min/max cost a string comparison per value, a tenth of the encoder's time.
const NO_STATISTICS: [&str; 5] = ["key", "cluster", "instance", "type", "encoding"];

/// The writer properties used for every instance file.
///
/// Dictionary encoding stays on (the default) for the low-cardinality columns (`cluster`,
/// `batch`, `instance`, `type`, `encoding`, `db`, ...) and is off for `key`, which is nearly
/// unique: trying a dictionary there only costs hashing and memory before falling back.
/// Page-level statistics (min/max, null count) are written for every column but those of
/// [`NO_STATISTICS`]. Keys come in hash-table order, so a page's key range spans nearly the
/// whole keyspace and prunes nothing, while computing it copies the page's smallest and
/// largest key whole (two more copies of a huge key).
///
/// `max_row_group_rows` is clamped to at least 1.
pub(crate) fn writer_properties(
    compression: ParquetCompression,
    max_row_group_rows: usize,
) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(compression.codec())
        .set_max_row_group_row_count(Some(max_row_group_rows.max(1)))
        .set_max_row_group_bytes(Some(MAX_ROW_GROUP_BYTES))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_column_dictionary_enabled(ColumnPath::from("key"), false);
    for column in NO_STATISTICS {
        b = b.set_column_statistics_enabled(ColumnPath::from(column), EnabledStatistics::None);
    }
    b.build()
}

/// Wrap a Parquet error with what was being done to which file, keeping I/O errors as such.
fn parquet_error(context: String, e: ParquetError) -> OutputError {
    let source = match e {
        ParquetError::External(inner) => match inner.downcast::<io::Error>() {
            Ok(io) => *io,
            Err(other) => io::Error::other(ParquetError::External(other)),
        },
        other => io::Error::other(other),
    };
    OutputError::io(context, source)
}

fn io_error(what: &str, path: &Path, e: io::Error) -> OutputError {
    OutputError::io(format!("{what} {}", path.display()), e)
}

/// A batch between `prepare_batch` and `finalize_batch`.
struct PreparedBatch {
    paths: BatchPaths,
    /// The advisory lock on `paths.lock_file`, held while the batch is written.
    lock: Option<FileLock>,
    /// File name → instance name of every writer handed out, to refuse a second writer for
    /// the same file (the same instance name twice).
    claimed: HashMap<String, String>,
    /// Set once the tmp dir was renamed: dropping must not clean up any more.
    finalized: bool,
}

impl PreparedBatch {
    /// Steps of `prepare_batch`; see the module docs.
    fn create(root: &Path, batch: &BatchContext) -> Result<Self, OutputError> {
        let paths = BatchPaths::new(root, &batch.cluster, batch.batch);
        fs::create_dir_all(&paths.cluster_dir)
            .map_err(|e| io_error("cannot create directory", &paths.cluster_dir, e))?;
        let lock = FileLock::try_acquire(&paths.lock_file)
            .map_err(|e| io_error("cannot lock", &paths.lock_file, e))?
            .ok_or_else(|| {
                OutputError::Refused(format!(
                    "another rdbinsight run is writing batch {} (lock {} is held)",
                    paths.tmp_dir.display(),
                    paths.lock_file.display()
                ))
            })?;
        // From here on we own the batch name; `Drop` releases the lock and removes the lock
        // file (and a tmp dir we created) if we fail or are never finalized.
        let mut prepared = PreparedBatch {
            paths,
            lock: Some(lock),
            claimed: HashMap::new(),
            finalized: false,
        };
        let p = &prepared.paths;
        if p.final_dir.exists() {
            // Not ours to delete: keep it, and do not clean up anything either.
            let err = OutputError::Refused(format!(
                "batch directory {} already exists: this batch was already written \
                 (use another --batch-timestamp, or remove the directory)",
                p.final_dir.display()
            ));
            prepared.finalized = true;
            prepared.release_lock();
            return Err(err);
        }
        if p.tmp_dir.exists() {
            tracing::warn!(
                "removing {} left behind by an interrupted run of the same batch",
                p.tmp_dir.display()
            );
            fs::remove_dir_all(&p.tmp_dir)
                .map_err(|e| io_error("cannot remove leftover directory", &p.tmp_dir, e))?;
        }
        remove_dead_batches(&p.cluster_dir, &p.tmp_dir);
        fs::create_dir(&p.tmp_dir)
            .map_err(|e| io_error("cannot create directory", &p.tmp_dir, e))?;
        Ok(prepared)
    }

    /// Steps of `finalize_batch`; see the module docs.
    fn finalize(&mut self) -> Result<(), OutputError> {
        let p = &self.paths;
        let entries =
            fs::read_dir(&p.tmp_dir).map_err(|e| io_error("cannot list", &p.tmp_dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error("cannot list", &p.tmp_dir, e))?;
            if entry.file_name().to_string_lossy().ends_with(TMP_SUFFIX) {
                return Err(OutputError::Misuse(format!(
                    "cannot finalize batch {}: {} was never finalized",
                    p.tmp_dir.display(),
                    entry.path().display()
                )));
            }
        }
        sync_dir(&p.tmp_dir)?;
        // rename(2) would silently replace an empty directory: check first.
        if p.final_dir.exists() {
            return Err(OutputError::Refused(format!(
                "cannot finalize batch: {} already exists",
                p.final_dir.display()
            )));
        }
        super::rename(&p.tmp_dir, &p.final_dir)?;
        self.finalized = true;
        sync_dir(&p.cluster_dir)?;
        self.release_lock();
        Ok(())
    }

    fn release_lock(&mut self) {
        if let Some(lock) = self.lock.take() {
            lock.release();
        }
    }
}

impl Drop for PreparedBatch {
    fn drop(&mut self) {
        if !self.finalized && self.paths.tmp_dir.exists() {
            tracing::debug!(
                "batch not finalized: removing {}",
                self.paths.tmp_dir.display()
            );
            if let Err(e) = fs::remove_dir_all(&self.paths.tmp_dir) {
                tracing::warn!(
                    "cannot remove {} of an unfinished batch: {e}",
                    self.paths.tmp_dir.display()
                );
            }
        }
        self.release_lock();
    }
}

/// Remove the `_tmp_batch=*` directories (and lock files) of other batches of the cluster
/// that belong to dead runs: killed (SIGKILL, power loss) before they could clean up, whatever
/// their batch timestamp. A directory is dead when its lock file is missing or can be locked
/// (see [`FileLock::try_take_stale`]); one whose lock a live run holds is left alone. Best
/// effort: problems are logged, they never fail this run.
fn remove_dead_batches(cluster_dir: &Path, own_tmp_dir: &Path) {
    let Ok(entries) = fs::read_dir(cluster_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = entry.path();
        if !name.starts_with(TMP_BATCH_PREFIX) || path == own_tmp_dir {
            continue;
        }
        let (dir, lock_path) = match name.strip_suffix(LOCK_SUFFIX) {
            // A lock file: its directory may be gone already (or never created).
            Some(dir_name) => (cluster_dir.join(dir_name), path.clone()),
            None => {
                if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let mut lock = name.to_string();
                lock.push_str(LOCK_SUFFIX);
                (path.clone(), cluster_dir.join(lock))
            }
        };
        if dir == own_tmp_dir {
            continue;
        }
        let stale_lock = match FileLock::try_take_stale(&lock_path) {
            Ok(Some(lock)) => Some(lock),
            Ok(None) if lock_path.exists() => continue, // a live run holds it
            Ok(None) => None,                           // no lock file: nobody claims it
            Err(e) => {
                tracing::warn!("cannot check lock {}: {e}", lock_path.display());
                continue;
            }
        };
        if dir.is_dir() {
            tracing::warn!(
                "removing {} left behind by a run that was killed",
                dir.display()
            );
            if let Err(e) = fs::remove_dir_all(&dir) {
                tracing::warn!("cannot remove {}: {e}", dir.display());
                continue; // keep the lock file: the directory is still there
            }
        }
        // Releasing the taken lock removes the lock file.
        drop(stale_lock);
    }
}

/// Batch-level Parquet output rooted at `DIR` (see the module docs for layout and lifecycle).
pub struct ParquetOutput {
    root: PathBuf,
    compression: ParquetCompression,
    props: WriterProperties,
    prepared: Option<PreparedBatch>,
}

impl ParquetOutput {
    pub fn new(root: impl Into<PathBuf>, compression: ParquetCompression) -> Self {
        ParquetOutput {
            root: root.into(),
            compression,
            props: writer_properties(compression, MAX_ROW_GROUP_ROWS),
            prepared: None,
        }
    }

    /// Use row groups of at most `rows` rows (default [`MAX_ROW_GROUP_ROWS`]; at least 1).
    /// Smaller row groups use less memory per instance and give readers finer-grained
    /// parallelism and pruning, at some cost in file size.
    pub fn with_max_row_group_rows(mut self, rows: usize) -> Self {
        self.props = writer_properties(self.compression, rows);
        self
    }

    /// The paths of `batch` under this output's root.
    pub fn batch_paths(&self, batch: &BatchContext) -> BatchPaths {
        BatchPaths::new(&self.root, &batch.cluster, batch.batch)
    }

    fn not_prepared() -> OutputError {
        OutputError::Misuse("Parquet output used before prepare_batch".into())
    }
}

impl Output for ParquetOutput {
    type Writer = ParquetChunkWriter;

    async fn prepare_batch(&mut self, batch: &BatchContext) -> Result<(), OutputError> {
        if self.prepared.is_some() {
            return Err(OutputError::Misuse(
                "Parquet output: prepare_batch called twice".into(),
            ));
        }
        let root = self.root.clone();
        let batch = batch.clone();
        let prepared = blocking(move || PreparedBatch::create(&root, &batch)).await?;
        self.prepared = Some(prepared);
        Ok(())
    }

    fn writer_for(&mut self, ctx: WriteContext) -> Result<ParquetChunkWriter, OutputError> {
        let prepared = self.prepared.as_mut().ok_or_else(Self::not_prepared)?;
        let file_name = BatchPaths::instance_file_name(&ctx.instance);
        if let Some(other) = prepared.claimed.get(&file_name) {
            return Err(OutputError::Refused(format!(
                "instances '{other}' and '{}' would both be written to {file_name}",
                ctx.instance
            )));
        }
        prepared.claimed.insert(file_name, ctx.instance.to_string());
        let (tmp_path, final_path) = prepared.paths.instance_paths(&ctx.instance);
        Ok(ParquetChunkWriter {
            tmp_path,
            final_path,
            props: Some(self.props.clone()),
            encoder: None,
            builders: None,
            ctx_bytes: ctx.cluster.len().max(ctx.instance.len()),
            ctx,
            rows: 0,
            micro_batches: 0,
            finalized: false,
            summary: None,
        })
    }

    async fn finalize_batch(&mut self) -> Result<(), OutputError> {
        let mut prepared = self.prepared.take().ok_or_else(Self::not_prepared)?;
        let final_dir = prepared.paths.final_dir.clone();
        // On error `prepared` is dropped inside the task, which removes the tmp dir.
        blocking(move || prepared.finalize()).await?;
        tracing::info!("Parquet batch complete: {}", final_dir.display());
        Ok(())
    }

    async fn abort_batch(&mut self) {
        if let Some(prepared) = self.prepared.take() {
            // Removing a directory tree is blocking work; dropping does it.
            let _ = blocking(move || {
                drop(prepared);
                Ok(())
            })
            .await;
        }
    }
}

/// One instance's Parquet writer (see the module docs).
pub struct ParquetChunkWriter {
    tmp_path: PathBuf,
    final_path: PathBuf,
    /// Taken by `prepare_instance`.
    props: Option<WriterProperties>,
    /// The encoder thread, which owns the Parquet writer; open between `prepare_instance`
    /// and `finalize_instance`.
    encoder: Option<Encoder>,
    /// The micro-batch being filled (present while `encoder` is).
    builders: Option<ColumnBuilders>,
    /// The context columns of every row.
    ctx: WriteContext,
    /// Capacity hint for the cluster/instance columns, bytes per row.
    ctx_bytes: usize,
    rows: u64,
    micro_batches: u64,
    finalized: bool,
    /// The instance's summary as JSON, for the file's key-value metadata.
    summary: Option<String>,
}

impl ParquetChunkWriter {
    /// The file this writer produces once finalized (inside the batch's tmp dir until
    /// `finalize_batch`).
    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// Records written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Micro-batches handed to the Parquet writer so far (the remainder written by
    /// `finalize_instance` counts as one).
    pub fn micro_batches(&self) -> u64 {
        self.micro_batches
    }

    fn new_builders(&self, key_bytes: usize) -> ColumnBuilders {
        ColumnBuilders::with_capacity(MICRO_BATCH_ROWS, key_bytes, self.ctx_bytes)
    }

    /// Hand the current micro-batch (if any rows) to the encoder and start a fresh one.
    async fn flush_micro_batch(&mut self) -> Result<(), OutputError> {
        let Some(full) = self.builders.take() else {
            return Ok(());
        };
        // Size the next key buffer after this one, with some slack, so it rarely regrows.
        // Capped: a micro-batch of huge keys should not make every later one reserve as much.
        let hint = (full.key_bytes() + full.key_bytes() / 8).min(MICRO_BATCH_MAX_KEY_BYTES / 4);
        self.builders = Some(self.new_builders(hint));
        if full.is_empty() {
            return Ok(());
        }
        let rows = full.len();
        let batch = full.finish().map_err(|e| self.build_error(e))?;
        self.write_batch(batch, rows, false).await
    }

    fn build_error(&self, e: arrow::error::ArrowError) -> OutputError {
        OutputError::io(
            format!(
                "cannot build a record batch for {}",
                self.tmp_path.display()
            ),
            io::Error::other(e),
        )
    }

    /// Hand one micro-batch of `rows` rows to the encoder; with `wait`, return once it is
    /// encoded.
    async fn write_batch(
        &mut self,
        batch: arrow::record_batch::RecordBatch,
        rows: usize,
        wait: bool,
    ) -> Result<(), OutputError> {
        let Some(encoder) = self.encoder.as_mut() else {
            return Err(self.not_open());
        };
        encoder.write(batch, wait).await?;
        self.micro_batches += 1;
        tracing::debug!(
            "parquet: flushed micro-batch {} ({rows} rows, {} rows in all) to the encoder of {}",
            self.micro_batches,
            self.rows,
            self.tmp_path.display()
        );
        Ok(())
    }

    /// The cold path of `write_record` for a record whose key would take the micro-batch past
    /// [`MICRO_BATCH_MAX_KEY_BYTES`]: refuse a key too large for 32-bit offsets, else start a
    /// new micro-batch with it. A key that alone exceeds the limit is a micro-batch of its
    /// own, in builders sized for it (no doubling), encoded at once: the writer then holds no
    /// copy of it once this returns.
    #[cold]
    async fn write_large_key(&mut self, record: &Record) -> Result<(), OutputError> {
        if record.key.len() > MICRO_BATCH_MAX_KEY_BYTES {
            return self.write_key_alone(record.clone()).await;
        }
        if self.builders.as_ref().is_some_and(|b| !b.is_empty()) {
            self.flush_micro_batch().await?;
        }
        let Some(builders) = self.builders.as_mut() else {
            return Err(self.not_open());
        };
        builders.append(record, &self.ctx);
        self.rows += 1;
        Ok(())
    }

    /// A record whose key alone exceeds [`MICRO_BATCH_MAX_KEY_BYTES`]: after the pending
    /// micro-batch, a micro-batch of its own that takes the key's buffer (no copy), encoded at
    /// once, so the writer keeps no copy of the key once this returns. Refuses a key too large
    /// for 32-bit offsets.
    #[cold]
    async fn write_key_alone(&mut self, record: Record) -> Result<(), OutputError> {
        let len = record.key.len();
        if len > MAX_KEY_BYTES {
            return Err(OutputError::store(
                format!("cannot write {}", self.tmp_path.display()),
                StoreCause::Limit(format!(
                    "a key of {len} bytes is larger than Parquet allows ({MAX_KEY_BYTES})"
                )),
            ));
        }
        match &self.builders {
            None => return Err(self.not_open()),
            Some(b) if !b.is_empty() => self.flush_micro_batch().await?,
            Some(_) => {}
        }
        let batch = ColumnBuilders::one_row_owning_key(record, &self.ctx)
            .map_err(|e| self.build_error(e))?;
        self.rows += 1;
        self.write_batch(batch, 1, true).await
    }

    fn not_open(&self) -> OutputError {
        let state = if self.finalized {
            "already finalized"
        } else {
            "not prepared"
        };
        OutputError::Misuse(format!(
            "Parquet writer for {} is {state}",
            self.tmp_path.display()
        ))
    }
}

impl ChunkWriter for ParquetChunkWriter {
    fn set_summary(&mut self, summary: &InstanceSummary) {
        self.summary = serde_json::to_string(summary).ok();
    }

    async fn prepare_instance(&mut self) -> Result<(), OutputError> {
        let props = self.props.take().ok_or_else(|| {
            OutputError::Misuse(format!(
                "Parquet writer for {} prepared twice",
                self.tmp_path.display()
            ))
        })?;
        // create_new: a second writer for the same file is a bug, never an overwrite.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&self.tmp_path)
            .map_err(|e| io_error("cannot create", &self.tmp_path, e))?;
        let writer = ArrowWriter::try_new(file, schema::schema(), Some(props)).map_err(|e| {
            parquet_error(
                format!(
                    "cannot start a Parquet writer on {}",
                    self.tmp_path.display()
                ),
                e,
            )
        })?;
        self.encoder = Some(Encoder::start(writer, self.tmp_path.clone())?);
        self.builders = Some(self.new_builders(MICRO_BATCH_ROWS * INITIAL_KEY_BYTES_PER_ROW));
        Ok(())
    }

    #[inline]
    async fn write_record(&mut self, record: &Record) -> Result<(), OutputError> {
        let Some(builders) = self.builders.as_mut() else {
            return Err(self.not_open());
        };
        if builders.key_bytes() + record.key.len() > MICRO_BATCH_MAX_KEY_BYTES {
            // Rare (huge keys): cut the micro-batch early to bound memory and stay far from
            // Arrow's 32-bit offsets.
            return self.write_large_key(record).await;
        }
        builders.append(record, &self.ctx);
        self.rows += 1;
        if builders.len() >= MICRO_BATCH_ROWS {
            self.flush_micro_batch().await?;
        }
        Ok(())
    }

    async fn write_owned(&mut self, record: Record) -> Result<(), OutputError> {
        if record.key.len() > MICRO_BATCH_MAX_KEY_BYTES {
            return self.write_key_alone(record).await;
        }
        self.write_record(&record).await
    }

    async fn finalize_instance(&mut self) -> Result<(), OutputError> {
        if self.encoder.is_none() {
            return Err(self.not_open());
        }
        self.flush_micro_batch().await?;
        self.builders = None;
        let Some(encoder) = self.encoder.take() else {
            return Err(self.not_open());
        };
        let writer = encoder.finish().await?;
        let (tmp, fin) = (self.tmp_path.clone(), self.final_path.clone());
        let summary = self.summary.take();
        let (row_groups, rows) = blocking(move || {
            let mut writer = writer;
            if let Some(summary) = summary {
                writer.append_key_value_metadata(KeyValue::new(
                    SUMMARY_METADATA_KEY.to_string(),
                    summary,
                ));
            }
            // finish writes the last row group and the footer and flushes to the file.
            let meta = writer
                .finish()
                .map_err(|e| parquet_error(format!("cannot finish {}", tmp.display()), e))?;
            writer
                .inner()
                .sync_all()
                .map_err(|e| io_error("cannot fsync", &tmp, e))?;
            drop(writer);
            super::rename(&tmp, &fin)?;
            Ok((meta.num_row_groups(), meta.file_metadata().num_rows()))
        })
        .await?;
        self.finalized = true;
        tracing::debug!(
            "parquet: finalized {} ({rows} rows, {} micro-batches, {row_groups} row groups)",
            self.final_path.display(),
            self.micro_batches,
        );
        Ok(())
    }
}
