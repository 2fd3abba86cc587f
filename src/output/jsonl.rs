//! JSON-lines output: one JSON object per record, for piping into jq/DuckDB and for acceptance
//! tests. Fields, in order: `cluster batch instance db key [key_base64] type member_count
//! rdb_size encoding expire_at idle_seconds freq codis_slot redis_slot`.
//!
//! To a regular file, the output is written as `PATH.tmp` and renamed to `PATH` by
//! `finalize_batch`, so a failed dump never leaves a complete-looking file. To stdout, or to
//! anything that is not a regular file (`/dev/null`, a FIFO), lines stream as they come.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};

use super::{BatchContext, ChunkWriter, OutputError};
use crate::record::{Record, WriteContext};

/// Flush an instance's buffer into the shared sink once it holds this many bytes.
const FLUSH_BYTES: usize = 256 * 1024;

type Sink = Arc<Mutex<Box<dyn Write + Send>>>;

/// Where the lines go.
#[derive(Debug, Clone)]
pub enum JsonlTarget {
    Stdout,
    File(PathBuf),
}

/// Batch-level JSONL output.
pub struct JsonlOutput {
    target: JsonlTarget,
    sink: Option<Sink>,
    /// The temporary file renamed into place by `finalize_batch` (regular files only).
    tmp: Option<PathBuf>,
}

impl JsonlOutput {
    pub fn new(target: JsonlTarget) -> Self {
        JsonlOutput {
            target,
            sink: None,
            tmp: None,
        }
    }

    fn tmp_path(path: &std::path::Path) -> PathBuf {
        let mut s = path.as_os_str().to_owned();
        s.push(".tmp");
        PathBuf::from(s)
    }

    pub async fn prepare_batch(&mut self, _batch: &BatchContext) -> Result<(), OutputError> {
        let sink: Box<dyn Write + Send> = match &self.target {
            JsonlTarget::Stdout => Box::new(io::stdout()),
            JsonlTarget::File(path) => {
                // Devices and FIFOs are written in place: renaming over them would replace
                // them (a rename onto /dev/null must never happen).
                let special = std::fs::metadata(path).is_ok_and(|m| !m.is_file());
                let open_path = if special {
                    path.clone()
                } else {
                    Self::tmp_path(path)
                };
                let file = if special {
                    std::fs::OpenOptions::new().write(true).open(&open_path)
                } else {
                    File::create(&open_path)
                }
                .map_err(|e| {
                    OutputError::io(format!("cannot create {}", open_path.display()), e)
                })?;
                self.tmp = (!special).then_some(open_path);
                Box::new(BufWriter::with_capacity(1 << 20, file))
            }
        };
        self.sink = Some(Arc::new(Mutex::new(sink)));
        Ok(())
    }

    pub fn writer_for(
        &self,
        _batch: &BatchContext,
        _instance: &str,
    ) -> Result<JsonlChunkWriter, OutputError> {
        let sink = self
            .sink
            .clone()
            .ok_or_else(|| OutputError::Other("JSONL output used before prepare_batch".into()))?;
        Ok(JsonlChunkWriter {
            sink,
            buf: Vec::with_capacity(FLUSH_BYTES + 4096),
            batch: None,
        })
    }

    pub async fn finalize_batch(&mut self, _batch: &BatchContext) -> Result<(), OutputError> {
        if let Some(sink) = self.sink.take() {
            let mut guard = sink
                .lock()
                .map_err(|_| OutputError::Other("JSONL sink poisoned".into()))?;
            guard
                .flush()
                .map_err(|e| OutputError::io("cannot flush JSONL output", e))?;
        }
        if let (JsonlTarget::File(path), Some(tmp)) = (&self.target, self.tmp.take()) {
            std::fs::rename(&tmp, path).map_err(|e| {
                OutputError::io(
                    format!("cannot rename {} to {}", tmp.display(), path.display()),
                    e,
                )
            })?;
        }
        Ok(())
    }
}

/// One instance's JSONL writer: formats lines into a private buffer and hands whole chunks to
/// the shared sink, so concurrent instances never interleave inside a line.
pub struct JsonlChunkWriter {
    sink: Sink,
    buf: Vec<u8>,
    /// `(batch nanos, formatted)`: the batch timestamp is formatted once.
    batch: Option<(i64, String)>,
}

impl JsonlChunkWriter {
    fn flush_buf(&mut self) -> Result<(), OutputError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut guard = self
            .sink
            .lock()
            .map_err(|_| OutputError::Other("JSONL sink poisoned".into()))?;
        guard
            .write_all(&self.buf)
            .map_err(|e| OutputError::io("cannot write JSONL output", e))?;
        self.buf.clear();
        Ok(())
    }
}

/// Format Unix nanoseconds as RFC 3339 UTC with 9 fractional digits.
pub fn format_batch_ts(nanos: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(nanos).to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Format Unix milliseconds as RFC 3339 UTC with 3 fractional digits (`None` when out of range).
pub fn format_expire_ms(ms: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(SecondsFormat::Millis, true))
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

/// Append one record as a JSON line.
pub fn encode_line(buf: &mut Vec<u8>, record: &Record, ctx: &WriteContext, batch: &str) {
    buf.extend_from_slice(b"{\"cluster\":");
    push_json_str(buf, &ctx.cluster);
    buf.extend_from_slice(b",\"batch\":\"");
    buf.extend_from_slice(batch.as_bytes());
    buf.extend_from_slice(b"\",\"instance\":");
    push_json_str(buf, &ctx.instance);
    buf.extend_from_slice(b",\"db\":");
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
    match record.expire_at_ms.and_then(format_expire_ms) {
        Some(s) => {
            buf.push(b'"');
            buf.extend_from_slice(s.as_bytes());
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
    buf.extend_from_slice(b"}\n");
}

impl ChunkWriter for JsonlChunkWriter {
    async fn prepare_instance(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    async fn write_record(
        &mut self,
        record: &Record,
        ctx: &WriteContext,
    ) -> Result<(), OutputError> {
        if self
            .batch
            .as_ref()
            .is_none_or(|(n, _)| *n != ctx.batch_ts_nanos)
        {
            self.batch = Some((ctx.batch_ts_nanos, format_batch_ts(ctx.batch_ts_nanos)));
        }
        let batch = self
            .batch
            .as_ref()
            .map(|(_, s)| s.as_str())
            .unwrap_or_default();
        encode_line(&mut self.buf, record, ctx, batch);
        if self.buf.len() >= FLUSH_BYTES {
            self.flush_buf()?;
        }
        Ok(())
    }

    async fn finalize_instance(&mut self) -> Result<(), OutputError> {
        self.flush_buf()?;
        let mut guard = self
            .sink
            .lock()
            .map_err(|_| OutputError::Other("JSONL sink poisoned".into()))?;
        guard
            .flush()
            .map_err(|e| OutputError::io("cannot flush JSONL output", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Encoding, RecordType};

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
        }
    }

    fn ctx() -> WriteContext {
        WriteContext {
            cluster: Arc::from("c\"1"),
            batch_ts_nanos: 1_700_000_000_123_456_789,
            instance: Arc::from("127.0.0.1:6379"),
        }
    }

    #[test]
    fn line_has_every_field_in_order() {
        let mut buf = Vec::new();
        encode_line(
            &mut buf,
            &record(b"user:1"),
            &ctx(),
            &format_batch_ts(ctx().batch_ts_nanos),
        );
        let line = String::from_utf8(buf).unwrap();
        assert_eq!(
            line,
            "{\"cluster\":\"c\\\"1\",\"batch\":\"2023-11-14T22:13:20.123456789Z\",\
             \"instance\":\"127.0.0.1:6379\",\"db\":2,\"key\":\"user:1\",\"type\":\"hash\",\
             \"member_count\":3,\"rdb_size\":42,\"encoding\":\"list_pack\",\
             \"expire_at\":\"2030-01-01T00:00:00.123Z\",\"idle_seconds\":null,\"freq\":5,\
             \"codis_slot\":null,\"redis_slot\":866}\n"
        );
    }

    #[test]
    fn binary_keys_get_base64() {
        let mut buf = Vec::new();
        encode_line(&mut buf, &record(b"\xff\x00k"), &ctx(), "b");
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["key_base64"], "/wBr");
        assert_eq!(v["key"], "\u{fffd}\u{0}k");
    }

    #[tokio::test]
    async fn file_output_appears_only_on_finalize_and_devices_are_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let batch = BatchContext {
            cluster: "c".into(),
            batch_ts_nanos: 0,
        };
        let mut out = JsonlOutput::new(JsonlTarget::File(path.clone()));
        out.prepare_batch(&batch).await.unwrap();
        let mut w = out.writer_for(&batch, "i").unwrap();
        w.write_record(&record(b"k"), &ctx()).await.unwrap();
        w.finalize_instance().await.unwrap();
        assert!(!path.exists(), "visible before finalize_batch");
        out.finalize_batch(&batch).await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);

        let mut out = JsonlOutput::new(JsonlTarget::File(PathBuf::from("/dev/null")));
        out.prepare_batch(&batch).await.unwrap();
        let mut w = out.writer_for(&batch, "i").unwrap();
        w.write_record(&record(b"k"), &ctx()).await.unwrap();
        w.finalize_instance().await.unwrap();
        out.finalize_batch(&batch).await.unwrap();
        use std::os::unix::fs::FileTypeExt as _;
        assert!(
            std::fs::metadata("/dev/null")
                .unwrap()
                .file_type()
                .is_char_device()
        );
    }
}
