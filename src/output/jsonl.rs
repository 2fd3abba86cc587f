//! JSON-lines output: one JSON object per record, for piping into jq/DuckDB and for acceptance
//! tests. Fields, in order: the columns of [`crate::record::columns::COLUMNS`], with
//! `key_base64` right after `key` when the key is not UTF-8.
//!
//! To stdout, or to anything that is not a regular file (`/dev/null`, a FIFO), lines stream as
//! they come. To a regular file `PATH`, the output has the guarantees of the Parquet output:
//! - `prepare_batch` takes an advisory lock on `PATH.lock` (see `super::lock`); a second run
//!   on the same `PATH` fails at once instead of mixing its lines in;
//! - lines go to a temp file of this run, `PATH.tmp.<pid>`, created new; temp files of runs
//!   that died (which only the lock holder can tell) are removed first;
//! - `finalize_batch` flushes, fsyncs and renames the temp file to `PATH`, so `PATH` is
//!   replaced only by a run that succeeded, and only with complete output;
//! - a failed run removes its temp file (`abort_batch`, or when the output is dropped).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;

use super::lock::FileLock;
use super::{BatchContext, ChunkWriter, Output, OutputError};
use crate::record::{Record, WriteContext, expire};

/// Flush an instance's buffer into the shared sink once it holds this many bytes.
const FLUSH_BYTES: usize = 256 * 1024;
/// Buffer between the shared sink and the file.
const SINK_BUFFER: usize = 1 << 20;

/// Where the lines go.
#[derive(Debug, Clone)]
pub enum JsonlTarget {
    Stdout,
    File(PathBuf),
}

/// The shared destination of every instance's lines.
enum SinkInner {
    Stdout(io::Stdout),
    File(BufWriter<File>),
}

impl SinkInner {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            SinkInner::Stdout(s) => s.write_all(buf),
            SinkInner::File(f) => f.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            SinkInner::Stdout(s) => s.flush(),
            SinkInner::File(f) => f.flush(),
        }
    }
}

#[derive(Clone)]
struct Sink(Arc<Mutex<SinkInner>>);

impl Sink {
    /// The sink, also after a writer panicked while holding it: its state is a byte buffer,
    /// and a torn write only ever reaches a temp file that a failed run removes.
    fn lock(&self) -> MutexGuard<'_, SinkInner> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A regular file being written: the lock, this run's temp file, and where it goes.
struct Publish {
    final_path: PathBuf,
    tmp_path: PathBuf,
    lock: Option<FileLock>,
    published: bool,
}

impl Publish {
    /// `PATH.lock` and `PATH.tmp.<pid>`.
    fn paths(path: &Path) -> (PathBuf, PathBuf) {
        let with = |suffix: &str| {
            let mut s = path.as_os_str().to_owned();
            s.push(suffix);
            PathBuf::from(s)
        };
        (with(".lock"), with(&format!(".tmp.{}", std::process::id())))
    }

    /// Lock, remove dead runs' temp files, create ours.
    fn start(path: &Path) -> Result<(Publish, File), OutputError> {
        let (lock_path, tmp_path) = Self::paths(path);
        let lock = FileLock::try_acquire(&lock_path)
            .map_err(|e| OutputError::io(format!("cannot lock {}", lock_path.display()), e))?
            .ok_or_else(|| {
                OutputError::Refused(format!(
                    "another rdbinsight run is writing {} (lock {} is held)",
                    path.display(),
                    lock_path.display()
                ))
            })?;
        let publish = Publish {
            final_path: path.to_path_buf(),
            tmp_path,
            lock: Some(lock),
            published: false,
        };
        publish.remove_dead_temps();
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&publish.tmp_path)
            .map_err(|e| {
                OutputError::io(format!("cannot create {}", publish.tmp_path.display()), e)
            })?;
        Ok((publish, file))
    }

    /// Remove `PATH.tmp.<digits>` files: with the lock held, no live run writes one.
    fn remove_dead_temps(&self) {
        let (Some(dir), Some(name)) = (self.final_path.parent(), self.final_path.file_name())
        else {
            return;
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let mut prefix = name.to_owned();
        prefix.push(".tmp.");
        let prefix = prefix.to_string_lossy().into_owned();
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let file_name = file_name.to_string_lossy();
            let is_dead_temp = file_name
                .strip_prefix(&prefix)
                .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
            if is_dead_temp {
                tracing::warn!(
                    "removing {} left behind by an interrupted run",
                    entry.path().display()
                );
                if let Err(e) = fs::remove_file(entry.path()) {
                    tracing::warn!("cannot remove {}: {e}", entry.path().display());
                }
            }
        }
    }

    /// fsync the temp file, rename it over `PATH`, fsync the directory
    /// ([`super::atomic::publish`]), unlock.
    fn publish(&mut self, file: &File) -> Result<(), OutputError> {
        let published = super::atomic::publish(file, &self.tmp_path, &self.final_path);
        // Renamed, even if the directory's fsync then failed: nothing of this run to remove.
        self.published = published.is_ok()
            || matches!(published, Err(super::atomic::PublishError::SyncDir { .. }));
        published?;
        if let Some(lock) = self.lock.take() {
            lock.release();
        }
        Ok(())
    }
}

impl Drop for Publish {
    fn drop(&mut self) {
        if !self.published {
            match fs::remove_file(&self.tmp_path) {
                Ok(()) => tracing::debug!("removed {} of a failed run", self.tmp_path.display()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("cannot remove {}: {e}", self.tmp_path.display()),
            }
        }
        // The lock (if still held) is released after the temp file is gone.
        self.lock.take();
    }
}

/// A prepared batch.
struct Prepared {
    sink: Sink,
    publish: Option<Publish>,
}

/// Batch-level JSONL output.
pub struct JsonlOutput {
    target: JsonlTarget,
    prepared: Option<Prepared>,
}

impl JsonlOutput {
    pub fn new(target: JsonlTarget) -> Self {
        JsonlOutput {
            target,
            prepared: None,
        }
    }

    fn not_prepared() -> OutputError {
        OutputError::Misuse("JSONL output used before prepare_batch".into())
    }
}

impl Output for JsonlOutput {
    type Writer = JsonlChunkWriter;

    async fn prepare_batch(&mut self, _batch: &BatchContext) -> Result<(), OutputError> {
        let (sink, publish) = match &self.target {
            JsonlTarget::Stdout => (SinkInner::Stdout(io::stdout()), None),
            JsonlTarget::File(path) => {
                // Devices and FIFOs are written in place: renaming over them would replace
                // them (a rename onto /dev/null must never happen).
                if fs::metadata(path).is_ok_and(|m| !m.is_file()) {
                    let file = OpenOptions::new().write(true).open(path).map_err(|e| {
                        OutputError::io(format!("cannot open {}", path.display()), e)
                    })?;
                    (
                        SinkInner::File(BufWriter::with_capacity(SINK_BUFFER, file)),
                        None,
                    )
                } else {
                    let (publish, file) = Publish::start(path)?;
                    (
                        SinkInner::File(BufWriter::with_capacity(SINK_BUFFER, file)),
                        Some(publish),
                    )
                }
            }
        };
        self.prepared = Some(Prepared {
            sink: Sink(Arc::new(Mutex::new(sink))),
            publish,
        });
        Ok(())
    }

    fn writer_for(&mut self, ctx: WriteContext) -> Result<JsonlChunkWriter, OutputError> {
        let sink = self
            .prepared
            .as_ref()
            .ok_or_else(Self::not_prepared)?
            .sink
            .clone();
        Ok(JsonlChunkWriter {
            sink,
            line_start: line_start(&ctx),
            buf: Vec::with_capacity(FLUSH_BYTES + 4096),
        })
    }

    async fn finalize_batch(&mut self) -> Result<(), OutputError> {
        let Prepared { sink, publish } = self.prepared.take().ok_or_else(Self::not_prepared)?;
        let mut guard = sink.lock();
        guard
            .flush()
            .map_err(|e| OutputError::io("cannot flush JSONL output", e))?;
        if let (Some(mut publish), SinkInner::File(file)) = (publish, &*guard) {
            publish.publish(file.get_ref())?;
        }
        Ok(())
    }

    async fn abort_batch(&mut self) {
        // Dropping `Publish` removes the temp file and releases the lock.
        self.prepared = None;
    }
}

/// One instance's JSONL writer: formats lines into a private buffer and hands whole chunks to
/// the shared sink, so concurrent instances never interleave inside a line.
pub struct JsonlChunkWriter {
    sink: Sink,
    /// `{"cluster":…,"batch":…,"instance":…,"db":`: the context, formatted once.
    line_start: Vec<u8>,
    buf: Vec<u8>,
}

impl JsonlChunkWriter {
    fn flush_buf(&mut self) -> Result<(), OutputError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.sink
            .lock()
            .write_all(&self.buf)
            .map_err(|e| OutputError::io("cannot write JSONL output", e))?;
        self.buf.clear();
        // A huge key grew the buffer: do not keep that much for the rest of the instance.
        if self.buf.capacity() > 4 * FLUSH_BYTES {
            self.buf.shrink_to(FLUSH_BYTES + 4096);
        }
        Ok(())
    }
}

/// The start of every line of a writer: the context columns and the name of the first record
/// column.
fn line_start(ctx: &WriteContext) -> Vec<u8> {
    let mut buf = Vec::with_capacity(128);
    buf.extend_from_slice(b"{\"cluster\":");
    push_json_str(&mut buf, &ctx.cluster);
    buf.extend_from_slice(b",\"batch\":\"");
    buf.extend_from_slice(ctx.batch.rfc3339().as_bytes());
    buf.extend_from_slice(b"\",\"instance\":");
    push_json_str(&mut buf, &ctx.instance);
    buf.extend_from_slice(b",\"db\":");
    buf
}

fn push_json_str(buf: &mut Vec<u8>, s: &str) {
    // serde_json's escaping is correct for every code point; writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *buf, s);
}

#[inline]
fn push_int<T: itoa::Integer>(buf: &mut Vec<u8>, v: T) {
    buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

#[inline]
fn push_opt<T: itoa::Integer>(buf: &mut Vec<u8>, v: Option<T>) {
    match v {
        Some(v) => push_int(buf, v),
        None => buf.extend_from_slice(b"null"),
    }
}

/// Append one record as a JSON line; `line_start` is the writer's [`line_start`].
fn encode_line(buf: &mut Vec<u8>, line_start: &[u8], record: &Record) {
    buf.extend_from_slice(line_start);
    push_int(buf, record.db);
    buf.extend_from_slice(b",\"key\":");
    match std::str::from_utf8(&record.key) {
        Ok(s) => push_json_str(buf, s),
        Err(_) => {
            push_json_str(buf, &String::from_utf8_lossy(&record.key));
            buf.extend_from_slice(b",\"key_base64\":\"");
            buf.extend_from_slice(
                base64::engine::general_purpose::STANDARD
                    .encode(&record.key)
                    .as_bytes(),
            );
            buf.push(b'"');
        }
    }
    buf.extend_from_slice(b",\"type\":\"");
    buf.extend_from_slice(record.r#type.as_str().as_bytes());
    buf.extend_from_slice(b"\",\"member_count\":");
    push_int(buf, record.member_count);
    buf.extend_from_slice(b",\"rdb_size\":");
    push_int(buf, record.rdb_size);
    buf.extend_from_slice(b",\"encoding\":\"");
    buf.extend_from_slice(record.encoding.as_str().as_bytes());
    buf.extend_from_slice(b"\",\"expire_at\":");
    match record.expire_at_ms {
        Some(ms) => {
            buf.push(b'"');
            expire::write_ms(buf, ms);
            buf.push(b'"');
        }
        None => buf.extend_from_slice(b"null"),
    }
    buf.extend_from_slice(b",\"idle_seconds\":");
    push_opt(buf, record.idle_seconds);
    buf.extend_from_slice(b",\"freq\":");
    push_opt(buf, record.freq);
    buf.extend_from_slice(b",\"codis_slot\":");
    push_opt(buf, record.codis_slot);
    buf.extend_from_slice(b",\"redis_slot\":");
    push_opt(buf, record.redis_slot);
    buf.extend_from_slice(b",\"mem_size\":");
    push_opt(buf, record.mem_size);
    buf.extend_from_slice(b"}\n");
}

impl ChunkWriter for JsonlChunkWriter {
    #[inline]
    async fn write_record(&mut self, record: &Record) -> Result<(), OutputError> {
        encode_line(&mut self.buf, &self.line_start, record);
        if self.buf.len() >= FLUSH_BYTES {
            self.flush_buf()?;
        }
        Ok(())
    }

    async fn finalize_instance(&mut self) -> Result<(), OutputError> {
        self.flush_buf()?;
        self.sink
            .lock()
            .flush()
            .map_err(|e| OutputError::io("cannot flush JSONL output", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::columns;
    use crate::record::{BatchTs, Encoding, RecordType};

    fn record(key: &[u8]) -> Record {
        Record {
            db: 2,
            key: key.to_vec(),
            r#type: RecordType::Hash,
            member_count: 3,
            rdb_size: 42,
            encoding: Encoding::ListPack,
            expire_at_ms: Some(1_893_456_000_123),
            idle_seconds: None,
            freq: Some(5),
            codis_slot: None,
            redis_slot: Some(866),
            mem_size: Some(96),
        }
    }

    fn ctx() -> WriteContext {
        WriteContext {
            cluster: Arc::from("c\"1"),
            batch: BatchTs::from_nanos(1_700_000_000_123_456_789),
            instance: Arc::from("127.0.0.1:6379"),
        }
    }

    fn line(key: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_line(&mut buf, &line_start(&ctx()), &record(key));
        buf
    }

    /// The top-level field names of a JSON object line, in order (serde_json's `Map` does not
    /// keep the order without a feature, so walk the line: name, `:`, value, `,`...).
    fn field_order(line: &[u8]) -> Vec<String> {
        fn next<T: serde::de::DeserializeOwned>(rest: &mut &str) -> T {
            let mut it = serde_json::Deserializer::from_str(rest).into_iter::<T>();
            let value = it.next().unwrap().unwrap();
            *rest = &rest[it.byte_offset()..];
            value
        }
        let text = std::str::from_utf8(line).unwrap().trim_end();
        let mut rest = text.strip_prefix('{').unwrap();
        let mut names = Vec::new();
        while !rest.starts_with('}') {
            names.push(next::<String>(&mut rest));
            rest = rest.strip_prefix(':').unwrap();
            next::<serde_json::Value>(&mut rest);
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
        names
    }

    #[test]
    fn line_has_every_field_in_order() {
        let line = String::from_utf8(line(b"user:1")).unwrap();
        assert_eq!(
            line,
            "{\"cluster\":\"c\\\"1\",\"batch\":\"2023-11-14T22:13:20.123456789Z\",\
             \"instance\":\"127.0.0.1:6379\",\"db\":2,\"key\":\"user:1\",\"type\":\"hash\",\
             \"member_count\":3,\"rdb_size\":42,\"encoding\":\"list_pack\",\
             \"expire_at\":\"2030-01-01T00:00:00.123Z\",\"idle_seconds\":null,\"freq\":5,\
             \"codis_slot\":null,\"redis_slot\":866,\"mem_size\":96}\n"
        );
    }

    #[test]
    fn field_order_is_the_column_list() {
        let expected: Vec<String> = columns::names().map(String::from).collect();
        assert_eq!(field_order(&line(b"user:1")), expected);
        // key_base64 follows key for binary keys.
        let mut with_b64 = expected.clone();
        let at = with_b64.iter().position(|n| n == "key").unwrap() + 1;
        with_b64.insert(at, "key_base64".into());
        assert_eq!(field_order(&line(b"\xff,\"x\":1")), with_b64);
    }

    #[test]
    fn binary_keys_get_base64() {
        let v: serde_json::Value = serde_json::from_slice(&line(b"\xff\x00k")).unwrap();
        assert_eq!(v["key_base64"], "/wBr");
        assert_eq!(v["key"], "\u{fffd}\u{0}k");
    }

    /// Every expiry a record can carry is written (the record decides what is absurd), beyond
    /// chrono's calendar too (year 262,143), as the Parquet file holds it.
    #[test]
    fn every_record_expiry_is_written() {
        for (ms, want) in [
            (expire::MAX_EXPIRE_MS, "+294247-01-10T04:00:54.775Z"),
            (-expire::MAX_EXPIRE_MS, "-290308-12-21T19:59:05.225Z"),
            (0, "1970-01-01T00:00:00.000Z"),
        ] {
            let mut buf = Vec::new();
            let r = Record {
                expire_at_ms: Some(ms),
                ..record(b"k")
            };
            encode_line(&mut buf, &line_start(&ctx()), &r);
            let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
            assert_eq!(v["expire_at"], want, "{ms}");
        }
    }

    fn batch() -> BatchContext {
        BatchContext {
            cluster: "c".into(),
            batch: BatchTs::from_nanos(0),
        }
    }

    async fn write_one(out: &mut JsonlOutput) {
        let mut w = out.writer_for(batch().write_context("i")).unwrap();
        w.prepare_instance().await.unwrap();
        w.write_record(&record(b"k")).await.unwrap();
        w.finalize_instance().await.unwrap();
    }

    #[tokio::test]
    async fn file_output_appears_only_on_finalize_and_devices_are_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let mut out = JsonlOutput::new(JsonlTarget::File(path.clone()));
        out.prepare_batch(&batch()).await.unwrap();
        write_one(&mut out).await;
        assert!(!path.exists(), "visible before finalize_batch");
        out.finalize_batch().await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "only the output remains: {left:?}");

        let mut out = JsonlOutput::new(JsonlTarget::File(PathBuf::from("/dev/null")));
        out.prepare_batch(&batch()).await.unwrap();
        write_one(&mut out).await;
        out.finalize_batch().await.unwrap();
        use std::os::unix::fs::FileTypeExt as _;
        assert!(
            std::fs::metadata("/dev/null")
                .unwrap()
                .file_type()
                .is_char_device()
        );
    }

    #[tokio::test]
    async fn a_second_run_is_refused_and_a_failed_run_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, "previous\n").unwrap();
        let mut first = JsonlOutput::new(JsonlTarget::File(path.clone()));
        first.prepare_batch(&batch()).await.unwrap();
        write_one(&mut first).await;

        let mut second = JsonlOutput::new(JsonlTarget::File(path.clone()));
        let err = second.prepare_batch(&batch()).await.expect_err("locked");
        assert!(err.to_string().contains("another rdbinsight run"), "{err}");

        // The first run fails: its temp file and lock go, the previous output stays.
        first.abort_batch().await;
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "previous\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["out.jsonl"]);

        // A dead run's temp file is removed by the next run (which holds the lock).
        let dead = dir.path().join("out.jsonl.tmp.999999999");
        std::fs::write(&dead, "torn").unwrap();
        let unrelated = dir.path().join("out.jsonl.tmp.keep-me");
        std::fs::write(&unrelated, "x").unwrap();
        let mut third = JsonlOutput::new(JsonlTarget::File(path.clone()));
        third.prepare_batch(&batch()).await.unwrap();
        assert!(!dead.exists());
        assert!(unrelated.exists());
        write_one(&mut third).await;
        third.finalize_batch().await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
        assert!(!dir.path().join("out.jsonl.lock").exists());
    }
}
