//! Where records go.
//!
//! Two traits describe every output:
//! - [`Output`], batch level: `prepare_batch` once per dump, then `writer_for` once per instance
//!   (handing each writer its [`WriteContext`], the only time it is given), then
//!   `finalize_batch` once after every instance succeeded, or `abort_batch` when the dump fails.
//! - [`ChunkWriter`], instance level: `prepare_instance` → `write_record` once per record, in
//!   parser order → `finalize_instance`. Records arrive **one at a time**; there is no batch
//!   write API. A writer buffers only what its format needs (Parquet: one 10,000-row
//!   micro-batch; ClickHouse: the in-flight INSERT's send buffer; JSONL: 256 KiB of lines).
//!
//! [`crate::dump::run`] is generic over `Output`: a new output is one folder implementing these
//! two traits (and a CLI subcommand that builds it), with no change to the pipeline.
//!
//! Failure semantics: no writer retries. The first error from any writer (or parser) ends the
//! whole dump; `finalize_batch` is then never called, so the batch is never marked complete
//! (Parquet: no `batch=` directory appears; ClickHouse: no `import_batches_completed` row;
//! JSONL: the output file is not replaced). A writer dropped without `finalize_instance` leaves
//! only temporary output behind, which `abort_batch` (or the output's `Drop`) removes.

pub mod atomic;
pub mod clickhouse;
pub mod jsonl;
pub(crate) mod lock;
pub mod null;
pub mod parquet;

use std::future::Future;
use std::path::Path;

pub use crate::record::BatchContext;
use crate::record::{InstanceSummary, Record, WriteContext};

/// Errors from outputs, typed by what went wrong (as `source::error::SourceError` is), each
/// carrying enough context to act on. A message never repeats its source: only `Io` has one.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A file operation failed (the `io::Error` is the source).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The destination refuses this batch, and the message says what to do: it is complete or
    /// being written by another run, this attempt lost it, it is older than the store's TTL,
    /// or the store's schema is not what rdbinsight needs. A decision, not a fault.
    #[error("{0}")]
    Refused(String),
    /// The store failed a request (`context`: what was being done).
    #[error("{context}: {cause}")]
    Store { context: String, cause: StoreCause },
    /// A request got no answer in time (`context`: what was being done; may be empty).
    #[error("{}", with_context(context, timeout))]
    Timeout { context: String, timeout: Timeout },
    /// The output was used against its contract (out of its lifecycle, twice, after an error),
    /// configured in a way it cannot work, or one of its tasks failed.
    #[error("{0}")]
    Misuse(String),
}

/// Why a store failed a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreCause {
    /// The server's own error, as one line (ClickHouse: `Code: N. DB::Exception: ...`).
    #[error("{0}")]
    Server(String),
    /// The connection could not be made or was lost (the transport's reason, each cause once).
    #[error("{0}")]
    Transport(String),
    /// What the stored format cannot hold (e.g. a key longer than Parquet allows).
    #[error("{0}")]
    Limit(String),
}

/// Which wait ran out, and after how long; each names its flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Timeout {
    /// No connection (`--ch-connect-timeout`).
    #[error("no connection within {} s (--ch-connect-timeout)", .0.as_secs())]
    Connect(std::time::Duration),
    /// The server took no more of a request's body (`--ch-send-timeout`).
    #[error("the server accepted no data for {} s (--ch-send-timeout)", .0.as_secs())]
    Send(std::time::Duration),
    /// No answer (`--ch-response-timeout`).
    #[error("no answer from the server within {} s (--ch-response-timeout)", .0.as_secs())]
    Response(std::time::Duration),
    /// The server still ran `running` INSERTs of this attempt when a cleanup stopped waiting.
    #[error("{running} INSERT(s) of this attempt still running on the server after {} s", .after.as_secs())]
    InsertsDrain {
        running: u64,
        after: std::time::Duration,
    },
}

fn with_context(context: &str, timeout: &Timeout) -> String {
    if context.is_empty() {
        timeout.to_string()
    } else {
        format!("{context}: {timeout}")
    }
}

impl OutputError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        OutputError::Io {
            context: context.into(),
            source,
        }
    }

    /// `context: cause` from a store.
    pub fn store(context: impl Into<String>, cause: StoreCause) -> Self {
        OutputError::Store {
            context: context.into(),
            cause,
        }
    }

    /// `context: timeout`.
    pub fn timeout(context: impl Into<String>, timeout: Timeout) -> Self {
        OutputError::Timeout {
            context: context.into(),
            timeout,
        }
    }
}

/// A destination at batch level; see the module docs for the lifecycle.
///
/// The futures are `Send` so the pipeline can drive them on a multi-threaded runtime.
pub trait Output: Send + 'static {
    /// The per-instance writer.
    type Writer: ChunkWriter + Send + 'static;

    /// Called once before any writer is created: check or create the destination, claim the
    /// batch. An error here means nothing was written.
    fn prepare_batch(
        &mut self,
        batch: &BatchContext,
    ) -> impl Future<Output = Result<(), OutputError>> + Send;

    /// A new writer for one instance of the prepared batch. No I/O: the pipeline creates every
    /// instance's writer up front (so conflicts such as two instances sharing a file name fail
    /// before any work) and calls `prepare_instance` when the instance's turn comes.
    fn writer_for(&mut self, ctx: WriteContext) -> Result<Self::Writer, OutputError>;

    /// Called once after every instance's `finalize_instance` succeeded: makes the batch
    /// visible, atomically where the store allows it.
    fn finalize_batch(&mut self) -> impl Future<Output = Result<(), OutputError>> + Send;

    /// Called once when the dump fails or is interrupted after `prepare_batch` succeeded, after
    /// every writer was dropped: remove what this attempt wrote. Best effort; problems are
    /// logged, the dump's own error is what the user sees.
    fn abort_batch(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// One instance's writer; see the module docs for the lifecycle.
pub trait ChunkWriter {
    /// Open whatever the instance writes into (a temp file, an INSERT stream).
    fn prepare_instance(&mut self) -> impl Future<Output = Result<(), OutputError>> + Send {
        async { Ok(()) }
    }

    /// Append one record. May flush an internal micro-batch.
    fn write_record(
        &mut self,
        record: &Record,
    ) -> impl Future<Output = Result<(), OutputError>> + Send;

    /// Append one record the caller gives away (the pipeline does, once a record is sent):
    /// a writer that keeps key bytes may take the key instead of copying it, which matters
    /// for huge keys. By default, [`Self::write_record`].
    fn write_owned(
        &mut self,
        record: Record,
    ) -> impl Future<Output = Result<(), OutputError>> + Send
    where
        Self: Send,
    {
        async move { self.write_record(&record).await }
    }

    /// Called by the pipeline when no record arrived for [`IDLE_TICK`] (and again every tick
    /// while none arrives): a writer that must act on time, not only on records, does it here
    /// (the ClickHouse writer ends an INSERT before the server's body timeout drops it).
    fn on_idle(&mut self) -> impl Future<Output = Result<(), OutputError>> + Send {
        async { Ok(()) }
    }

    /// Flush what is buffered and make the instance's output durable (but not yet visible as a
    /// completed batch: that is `finalize_batch`'s job).
    fn finalize_instance(&mut self) -> impl Future<Output = Result<(), OutputError>> + Send {
        async { Ok(()) }
    }

    /// What the dump learned about the instance (its memory model, the RDB's figures);
    /// called once, after the last record and before `finalize_instance`. No I/O: a writer
    /// that stores it does so in `finalize_instance`.
    fn set_summary(&mut self, summary: &InstanceSummary) {
        let _ = summary;
    }
}

/// How long the pipeline waits for records before calling [`ChunkWriter::on_idle`].
pub const IDLE_TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// fsync a directory so renames inside it are durable (a no-op where directories cannot be
/// opened as files).
pub(crate) fn sync_dir(dir: &Path) -> Result<(), OutputError> {
    Ok(atomic::sync_dir(dir)?)
}

impl From<atomic::PublishError> for OutputError {
    fn from(e: atomic::PublishError) -> Self {
        let context = e.to_string();
        OutputError::io(context, e.into_io())
    }
}

/// Rename `from` to `to` (the publishing step of the file outputs); the error names both.
pub(crate) fn rename(from: &Path, to: &Path) -> Result<(), OutputError> {
    std::fs::rename(from, to).map_err(|e| {
        OutputError::io(
            format!("cannot rename {} to {}", from.display(), to.display()),
            e,
        )
    })
}

/// Run blocking file-system work off the async worker threads.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, OutputError>
where
    F: FnOnce() -> Result<T, OutputError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| OutputError::Misuse(format!("output task failed: {e}")))?
}
