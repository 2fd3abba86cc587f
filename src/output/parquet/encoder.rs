//! The Parquet encoder of one instance file, on a thread of its own.
//!
//! Encoding a micro-batch (dictionaries, pages, zstd) is most of the Parquet output's CPU,
//! about twice the parser's on typical data. Run on the writer task, it would leave the
//! parser's core idle half the time; on its own thread, the instance's three stages (parse,
//! fill the Arrow builders, encode) share the machine's cores. The queue holds one
//! micro-batch, so the writer buffers at most three: the one being filled, one waiting, one
//! being encoded.
//!
//! The thread owns the [`ArrowWriter`]: `finish` hands it back (for the footer, fsync and
//! rename); an encoding error ends the thread and is returned by the next `write` or by
//! `finish`. Dropping an [`Encoder`] closes the queue: the thread encodes what it holds and
//! ends, and the file is left to the batch's cleanup.

use std::fs::File;
use std::path::PathBuf;
use std::thread::JoinHandle;

use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use tokio::sync::{mpsc, oneshot};

use super::parquet_error;
use crate::output::OutputError;

/// Micro-batches queued for the encoder besides the one it encodes.
const QUEUE: usize = 1;

/// One micro-batch for the encoder; `done` is answered once it is encoded.
struct Job {
    batch: RecordBatch,
    done: Option<oneshot::Sender<()>>,
}

/// The encoder thread of one file; see the module docs.
pub(super) struct Encoder {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<Result<ArrowWriter<File>, OutputError>>>,
    path: PathBuf,
}

impl Encoder {
    /// Start the thread that encodes into `writer` (`path` names the file in errors).
    pub fn start(writer: ArrowWriter<File>, path: PathBuf) -> Result<Self, OutputError> {
        let (tx, rx) = mpsc::channel::<Job>(QUEUE);
        let thread_path = path.clone();
        let thread = std::thread::Builder::new()
            .name("parquet-encoder".into())
            .spawn(move || encode(writer, rx, &thread_path))
            .map_err(|e| {
                OutputError::io(
                    format!("cannot start the encoder thread of {}", path.display()),
                    e,
                )
            })?;
        Ok(Encoder {
            tx: Some(tx),
            thread: Some(thread),
            path,
        })
    }

    /// Queue `batch` (waiting while the queue is full). With `wait`, return only once the
    /// encoder is done with it, so the caller knows no copy of its data is left (huge keys).
    pub async fn write(&mut self, batch: RecordBatch, wait: bool) -> Result<(), OutputError> {
        let Some(tx) = &self.tx else {
            return Err(self.closed());
        };
        let (done, encoded) = if wait {
            let (s, r) = oneshot::channel();
            (Some(s), Some(r))
        } else {
            (None, None)
        };
        if tx.send(Job { batch, done }).await.is_err() {
            // The thread ended: it failed. Its error is the one to report.
            return Err(self.join().await.err().unwrap_or_else(|| self.closed()));
        }
        if let Some(encoded) = encoded
            && encoded.await.is_err()
        {
            return Err(self.join().await.err().unwrap_or_else(|| self.closed()));
        }
        Ok(())
    }

    /// Close the queue and wait for the thread: the writer, every micro-batch encoded.
    pub async fn finish(mut self) -> Result<ArrowWriter<File>, OutputError> {
        self.join().await
    }

    async fn join(&mut self) -> Result<ArrowWriter<File>, OutputError> {
        self.tx = None;
        let Some(thread) = self.thread.take() else {
            return Err(self.closed());
        };
        let path = self.path.clone();
        crate::output::blocking(move || {
            thread.join().unwrap_or_else(|_| {
                Err(OutputError::Misuse(format!(
                    "the encoder thread of {} panicked",
                    path.display()
                )))
            })
        })
        .await
    }

    fn closed(&self) -> OutputError {
        OutputError::Misuse(format!(
            "the encoder of {} is already closed",
            self.path.display()
        ))
    }
}

/// The thread's loop: encode every micro-batch until the queue closes.
fn encode(
    mut writer: ArrowWriter<File>,
    mut rx: mpsc::Receiver<Job>,
    path: &std::path::Path,
) -> Result<ArrowWriter<File>, OutputError> {
    let mut batches = 0u64;
    while let Some(job) = rx.blocking_recv() {
        writer
            .write(&job.batch)
            .map_err(|e| parquet_error(format!("cannot write {}", path.display()), e))?;
        drop(job.batch);
        if let Some(done) = job.done {
            let _ = done.send(());
        }
        batches += 1;
        tracing::trace!(
            "parquet: encoded micro-batch {batches} ({} row groups, {} bytes buffered) of {}",
            writer.flushed_row_groups().len(),
            writer.in_progress_size(),
            path.display()
        );
    }
    Ok(writer)
}
