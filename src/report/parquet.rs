//! The Parquet reader: find a batch under `DIR/cluster=<encoded cluster>/batch=<slug>/` and
//! stream its instance files' rows into the accumulator and the key sort.
//!
//! * Only finished batches are read: `batch=<slug>` directories, never `_tmp_batch=<slug>`
//!   (a dump still running or one that failed), and only `*.parquet` files in them.
//! * Batches written by older versions are found too: they are under the lossy directory name
//!   ([`BatchPaths::legacy_cluster_dir`], e.g. `cluster=a_b` for both `a/b` and `a_b`), which
//!   may hold batches of several clusters. A batch there counts only if its rows are of the
//!   requested cluster (read from its first row), and rows of another cluster are skipped.
//! * Each file is read with the `parquet` crate's Arrow reader, projected to the columns the
//!   report needs (all of the record's columns, by name from the shared column list), in record
//!   batches of [`BATCH_ROWS`] rows (fewer for long keys, see [`BATCH_KEY_BYTES`]): memory does
//!   not grow with the file. Each key goes on as its sort form (`keytext::sort_form`, at most
//!   4 KiB + 40 bytes), however long it is.
//! * Types come from the Parquet schema alone (the writer's embedded Arrow schema is ignored),
//!   so any writer producing the same logical types is read the same way.
//! * Every row is checked to belong to the requested batch, and to the requested cluster
//!   outside an older shared directory; a row that does not is an error naming the file and
//!   row.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, BinaryArray, PrimitiveArray, RecordBatch, StringArray};
use arrow::datatypes::{
    DataType, TimeUnit, TimestampMillisecondType, TimestampNanosecondType, UInt8Type, UInt16Type,
    UInt64Type,
};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};

use crate::cancel::Cancel;
use crate::output::parquet::SUMMARY_METADATA_KEY;
use crate::output::parquet::path::{BATCH_PREFIX, BatchPaths, CLUSTER_PREFIX, PARQUET_EXT};
use crate::record::columns::{COLUMNS, ColumnType};
use crate::record::{BatchTs, InstanceSummary, RecordType};

use super::ReportError;
use super::aggregate::{RowAccumulator, RowRef, report_expire_ms};
use super::keytext::sort_form;
use super::prefix::KeyFacts;
use super::spill::ExternalSorter;

/// Rows per decoded record batch.
pub const BATCH_ROWS: usize = 8192;
/// Bytes of keys (uncompressed, on average per row group) a record batch is sized for.
pub const BATCH_KEY_BYTES: u64 = 4 << 20;

/// Rows per record batch for a file: [`BATCH_ROWS`], fewer when its keys are long (the row
/// group with the longest keys on average decides), so a batch decodes about
/// [`BATCH_KEY_BYTES`] of keys and never less than one row: 40 keys of 10 MB are read one at
/// a time, not as one 400 MB batch.
fn batch_rows(meta: &parquet::file::metadata::ParquetMetaData) -> usize {
    let mut per_row = 0u64;
    for rg in meta.row_groups() {
        let rows = u64::try_from(rg.num_rows()).unwrap_or(0).max(1);
        for col in rg.columns() {
            if col.column_path().parts() == ["key"] {
                let bytes = u64::try_from(col.uncompressed_size()).unwrap_or(0);
                per_row = per_row.max(bytes.div_ceil(rows));
            }
        }
    }
    match BATCH_KEY_BYTES.checked_div(per_row) {
        Some(n) => usize::try_from(n)
            .unwrap_or(BATCH_ROWS)
            .clamp(1, BATCH_ROWS),
        None => BATCH_ROWS,
    }
}
/// How many available batches an error message lists.
const LIST_BATCHES: usize = 20;

/// A resolved batch: its directory, timestamp and instance files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParquetBatch {
    pub dir: PathBuf,
    pub slug: String,
    pub batch: BatchTs,
    /// The `*.parquet` files, sorted by name.
    pub files: Vec<PathBuf>,
    /// The batch is in an older version's directory, which several clusters may share: rows
    /// of another cluster are skipped, not an error.
    pub shared_dir: bool,
}

/// `--batch` as a slug: a slug as is, or an RFC 3339 timestamp converted.
fn requested_slug(batch: &str) -> Option<String> {
    BatchTs::parse_slug_or_rfc3339(batch)
        .ok()
        .map(BatchTs::slug)
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> ReportError {
    move |source| ReportError::Io { context, source }
}

/// The completed batches of a cluster directory, newest first.
fn list_batches(cluster_dir: &Path) -> Result<Vec<(String, BatchTs)>, ReportError> {
    if !cluster_dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let entries = std::fs::read_dir(cluster_dir)
        .map_err(io(format!("cannot list {}", cluster_dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(io(format!("cannot list {}", cluster_dir.display())))?;
        let name = entry.file_name();
        let Some(slug) = name.to_str().and_then(|n| n.strip_prefix(BATCH_PREFIX)) else {
            continue;
        };
        if !entry.path().is_dir() {
            continue;
        }
        if let Ok(ts) = BatchTs::parse_slug(slug) {
            out.push((slug.to_string(), ts));
        }
    }
    out.sort_by_key(|b| std::cmp::Reverse(b.1));
    Ok(out)
}

/// Names for an error message: up to [`LIST_BATCHES`], then how many more.
fn name_list(names: &[String]) -> String {
    let mut s = names
        .iter()
        .take(LIST_BATCHES)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > LIST_BATCHES {
        s.push_str(&format!(" and {} more", names.len() - LIST_BATCHES));
    }
    s
}

/// Find the batch: `batch` (a slug or RFC 3339) exactly, or the newest when `None`.
pub fn resolve_batch(
    root: &Path,
    cluster: &str,
    batch: Option<&str>,
) -> Result<ParquetBatch, ReportError> {
    let cluster_dir = BatchPaths::cluster_dir(root, cluster);
    let legacy_dir = BatchPaths::legacy_cluster_dir(root, cluster);
    if !cluster_dir.is_dir() && !legacy_dir.is_dir() {
        let mut clusters: Vec<String> = std::fs::read_dir(root)
            .map_err(io(format!("cannot list {}", root.display())))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_prefix(CLUSTER_PREFIX))
                    .map(str::to_string)
            })
            .collect();
        clusters.sort();
        let present = if clusters.is_empty() {
            "no cluster= directories there".to_string()
        } else {
            format!("clusters present: {}", name_list(&clusters))
        };
        return Err(ReportError::NoBatch(format!(
            "no batch of cluster '{cluster}' under {}: {} does not exist ({present})",
            root.display(),
            cluster_dir.display()
        )));
    }
    // Every candidate, newest first; at equal timestamps the current layout's first. The
    // older directory (the same one for names it kept unchanged) may hold other clusters'.
    let mut batches: Vec<(String, BatchTs, &Path, bool)> = Vec::new();
    if cluster_dir != legacy_dir {
        for (slug, ts) in list_batches(&cluster_dir)? {
            batches.push((slug, ts, &cluster_dir, false));
        }
    }
    for (slug, ts) in list_batches(&legacy_dir)? {
        if !batches.iter().any(|b| b.0 == slug) {
            batches.push((slug, ts, &legacy_dir, true));
        }
    }
    batches.sort_by_key(|b| std::cmp::Reverse(b.1));
    let belongs = |b: &(String, BatchTs, &Path, bool)| -> Result<bool, ReportError> {
        if !b.3 {
            return Ok(true);
        }
        let dir = b.2.join(format!("{BATCH_PREFIX}{}", b.0));
        Ok(batch_cluster(&batch_files(&dir)?)?.is_none_or(|c| c == cluster))
    };
    let shown_dir = if cluster_dir.is_dir() {
        &cluster_dir
    } else {
        &legacy_dir
    };
    let (slug, batch, dir, shared_dir) = match batch {
        None => {
            let mut found = None;
            for b in &batches {
                if belongs(b)? {
                    found = Some(b.clone());
                    break;
                }
            }
            found.ok_or_else(|| {
                ReportError::NoBatch(format!(
                    "no completed batch of cluster '{cluster}' in {} (batch=* directories; \
                     unfinished _tmp_batch=* ones are ignored)",
                    shown_dir.display()
                ))
            })?
        }
        Some(want) => {
            let slug = requested_slug(want).ok_or_else(|| {
                ReportError::Options(format!(
                    "--batch '{want}' is neither a batch directory name \
                     (YYYY-MM-DD_HH-mm-ss.nnnnnnnnnZ) nor an RFC 3339 timestamp"
                ))
            })?;
            let mut found = None;
            for b in batches.iter().filter(|b| b.0 == slug) {
                if belongs(b)? {
                    found = Some(b.clone());
                    break;
                }
            }
            found.ok_or_else(|| {
                let names: Vec<String> = batches.iter().map(|b| b.0.clone()).collect();
                let available = if names.is_empty() {
                    "none".to_string()
                } else {
                    name_list(&names)
                };
                ReportError::NoBatch(format!(
                    "batch {slug} of cluster '{cluster}' not found in {} (available, newest \
                     first: {available})",
                    shown_dir.display(),
                ))
            })?
        }
    };
    let dir = dir.join(format!("{BATCH_PREFIX}{slug}"));
    let files = batch_files(&dir)?;
    Ok(ParquetBatch {
        dir,
        slug,
        batch,
        files,
        shared_dir,
    })
}

/// The `*.parquet` files of a batch directory, sorted by name.
fn batch_files(dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(format!("cannot list {}", dir.display())))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == PARQUET_EXT) && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// The cluster a batch was written for: the `cluster` column of the first row of its files
/// (one run writes a batch, for one cluster); `None` when no file has a row.
fn batch_cluster(files: &[PathBuf]) -> Result<Option<String>, ReportError> {
    for path in files {
        let file = File::open(path).map_err(io(format!("cannot open {}", path.display())))?;
        let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
        let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options)
            .map_err(|e| pq_err(path, e))?;
        let Some(i) = builder
            .schema()
            .fields()
            .iter()
            .position(|f| f.name() == "cluster")
        else {
            return Err(pq_err(path, "column cluster is missing"));
        };
        let mask = ProjectionMask::roots(builder.parquet_schema(), [i]);
        let mut reader = builder
            .with_projection(mask)
            .with_batch_size(1)
            .with_limit(1)
            .build()
            .map_err(|e| pq_err(path, e))?;
        let Some(b) = reader.next() else { continue };
        let b = b.map_err(|e| pq_err(path, e))?;
        if b.num_rows() == 0 {
            continue;
        }
        let Some(col) = b.column(0).as_string_opt::<i32>() else {
            return Err(pq_err(
                path,
                format!("column cluster has type {}", b.column(0).data_type()),
            ));
        };
        return Ok(Some(col.value(0).to_string()));
    }
    Ok(None)
}

fn pq_err(path: &Path, what: impl std::fmt::Display) -> ReportError {
    ReportError::Parquet {
        path: path.to_path_buf(),
        msg: what.to_string(),
    }
}

/// Read every row of the batch into `acc` and `sorter`; with `tag_db`, each sorted entry carries
/// its row's db as its tag (the `--baseline` pair pass needs it).
pub fn scan(
    batch: &ParquetBatch,
    cluster: &str,
    acc: &mut RowAccumulator,
    sorter: &mut ExternalSorter,
    tag_db: bool,
    cancel: &Cancel,
) -> Result<(), ReportError> {
    for path in &batch.files {
        scan_file(path, cluster, batch, acc, sorter, tag_db, cancel)?;
    }
    Ok(())
}

/// The completed batches of the cluster older than `before`, newest first (slugs).
pub fn batches_before(
    root: &Path,
    cluster: &str,
    before: BatchTs,
) -> Result<Vec<String>, ReportError> {
    let mut out: Vec<(BatchTs, String)> = Vec::new();
    for dir in [
        BatchPaths::cluster_dir(root, cluster),
        BatchPaths::legacy_cluster_dir(root, cluster),
    ] {
        for (slug, ts) in list_batches(&dir)? {
            if ts < before && !out.iter().any(|b| b.1 == slug) {
                out.push((ts, slug));
            }
        }
    }
    out.sort_by_key(|b| std::cmp::Reverse(b.0));
    Ok(out.into_iter().map(|b| b.1).collect())
}

/// The columns of one record batch, typed.
struct Columns<'a> {
    cluster: &'a StringArray,
    batch: &'a PrimitiveArray<TimestampNanosecondType>,
    instance: &'a StringArray,
    db: &'a PrimitiveArray<UInt64Type>,
    key: &'a BinaryArray,
    rtype: &'a StringArray,
    member_count: &'a PrimitiveArray<UInt64Type>,
    rdb_size: &'a PrimitiveArray<UInt64Type>,
    encoding: &'a StringArray,
    expire_at: &'a PrimitiveArray<TimestampMillisecondType>,
    idle_seconds: &'a PrimitiveArray<UInt64Type>,
    freq: &'a PrimitiveArray<UInt8Type>,
    codis_slot: &'a PrimitiveArray<UInt16Type>,
    redis_slot: &'a PrimitiveArray<UInt16Type>,
    /// `None` in a file written before the column existed.
    mem_size: Option<&'a PrimitiveArray<UInt64Type>>,
}

/// Whether a column's values are read as `want` (timestamps in any time zone).
fn type_matches(got: &DataType, want: &DataType) -> bool {
    match (got, want) {
        (DataType::Timestamp(a, _), DataType::Timestamp(b, _)) => a == b,
        _ => got == want,
    }
}

/// The Arrow type a column of the shared list is read as.
fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Text | ColumnType::Label => DataType::Utf8,
        ColumnType::Bytes => DataType::Binary,
        ColumnType::TimestampNanos => DataType::Timestamp(TimeUnit::Nanosecond, None),
        ColumnType::TimestampMillis => DataType::Timestamp(TimeUnit::Millisecond, None),
        ColumnType::UInt8 => DataType::UInt8,
        ColumnType::UInt16 => DataType::UInt16,
        ColumnType::UInt64 => DataType::UInt64,
    }
}

impl<'a> Columns<'a> {
    fn new(b: &'a RecordBatch, path: &Path) -> Result<Self, ReportError> {
        for column in &COLUMNS {
            let name = column.name;
            let Some(col) = b.column_by_name(name) else {
                if column.added_later {
                    continue;
                }
                return Err(pq_err(path, format!("column {name} is missing")));
            };
            let want = arrow_type(column.ty);
            if !type_matches(col.data_type(), &want) {
                return Err(pq_err(
                    path,
                    format!(
                        "column {name} has type {}, expected {want}",
                        col.data_type()
                    ),
                ));
            }
            if !column.nullable && col.null_count() > 0 {
                return Err(pq_err(path, format!("column {name} holds nulls")));
            }
        }
        let c = |name: &str| b.column_by_name(name).expect("checked above");
        Ok(Columns {
            cluster: c("cluster").as_string::<i32>(),
            batch: c("batch").as_primitive(),
            instance: c("instance").as_string::<i32>(),
            db: c("db").as_primitive(),
            key: c("key").as_binary::<i32>(),
            rtype: c("type").as_string::<i32>(),
            member_count: c("member_count").as_primitive(),
            rdb_size: c("rdb_size").as_primitive(),
            encoding: c("encoding").as_string::<i32>(),
            expire_at: c("expire_at").as_primitive(),
            idle_seconds: c("idle_seconds").as_primitive(),
            freq: c("freq").as_primitive(),
            codis_slot: c("codis_slot").as_primitive(),
            redis_slot: c("redis_slot").as_primitive(),
            mem_size: b.column_by_name("mem_size").map(|a| a.as_primitive()),
        })
    }
}

#[inline]
fn opt<T: arrow::datatypes::ArrowPrimitiveType>(
    a: &PrimitiveArray<T>,
    i: usize,
) -> Option<T::Native> {
    a.is_valid(i).then(|| a.value(i))
}

fn scan_file(
    path: &Path,
    cluster: &str,
    resolved: &ParquetBatch,
    acc: &mut RowAccumulator,
    sorter: &mut ExternalSorter,
    tag_db: bool,
    cancel: &Cancel,
) -> Result<(), ReportError> {
    let (batch, shared_dir) = (resolved.batch, resolved.shared_dir);
    let file = File::open(path).map_err(io(format!("cannot open {}", path.display())))?;
    let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options)
        .map_err(|e| pq_err(path, e))?;
    let summary = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|e| e.key == SUMMARY_METADATA_KEY))
        .and_then(|e| e.value.as_deref())
        .map(|json| {
            serde_json::from_str::<InstanceSummary>(json).map_err(|e| {
                pq_err(
                    path,
                    format!("its {SUMMARY_METADATA_KEY} metadata is not an instance summary: {e}"),
                )
            })
        })
        .transpose()?;
    let mut summary_owner: Option<String> = None;
    let fields = builder.schema().fields().clone();
    let mut roots = Vec::with_capacity(COLUMNS.len());
    for column in &COLUMNS {
        let name = column.name;
        match fields.iter().position(|f| f.name() == name) {
            Some(i) => roots.push(i),
            None if column.added_later => {}
            None => return Err(pq_err(path, format!("column {name} is missing"))),
        }
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let batch_rows = batch_rows(builder.metadata());
    let reader = builder
        .with_projection(mask)
        .with_batch_size(batch_rows)
        .build()
        .map_err(|e| pq_err(path, e))?;

    let mut row_no: u64 = 0;
    let mut last_instance: Option<(String, u32)> = None;
    // Encodings alternate from row to row: a short list scanned by value beats hashing.
    let mut encodings: Vec<(String, u32)> = Vec::new();
    for b in reader {
        if cancel.is_cancelled() {
            return Err(ReportError::Interrupted);
        }
        let b = b.map_err(|e| pq_err(path, format!("after row {row_no}: {e}")))?;
        let c = Columns::new(&b, path)?;
        for i in 0..b.num_rows() {
            let row_err = |what: String| pq_err(path, format!("row {}: {what}", row_no + i as u64));
            if c.cluster.value(i) != cluster {
                if shared_dir {
                    continue;
                }
                return Err(row_err(format!(
                    "cluster is '{}', not '{cluster}'",
                    c.cluster.value(i),
                )));
            }
            if c.batch.value(i) != batch.nanos() {
                return Err(row_err(format!(
                    "batch is {}, not the directory's {}",
                    BatchTs::from_nanos(c.batch.value(i)),
                    batch
                )));
            }
            let inst = c.instance.value(i);
            let instance = match &last_instance {
                Some((name, id)) if name == inst => *id,
                _ => {
                    if let Some(s) = &summary {
                        // One instance per file: its summary belongs to its rows' instance.
                        match &summary_owner {
                            None => {
                                acc.add_summary(inst, s.clone());
                                summary_owner = Some(inst.to_string());
                            }
                            Some(owner) if owner != inst => {
                                return Err(row_err(format!(
                                    "instance '{inst}' in a file of instance '{owner}' (its \
                                     {SUMMARY_METADATA_KEY} metadata describes one instance)"
                                )));
                            }
                            Some(_) => {}
                        }
                    }
                    let id = acc.instance_id(inst);
                    last_instance = Some((inst.to_string(), id));
                    id
                }
            };
            let enc = c.encoding.value(i);
            let encoding = match encodings.iter().find(|(name, _)| name == enc) {
                Some((_, id)) => *id,
                None => {
                    let id = acc.encoding_id(enc);
                    encodings.push((enc.to_string(), id));
                    id
                }
            };
            let t = c.rtype.value(i);
            let rtype =
                RecordType::parse(t).ok_or_else(|| row_err(format!("unknown type '{t}'")))?;
            let expire_ms = report_expire_ms(opt(c.expire_at, i));
            let mem_size = c.mem_size.and_then(|m| opt(m, i));
            let key = sort_form(c.key.value(i));
            let row = RowRef {
                instance,
                db: c.db.value(i),
                key: &key,
                rtype,
                encoding,
                member_count: c.member_count.value(i),
                rdb_size: c.rdb_size.value(i),
                mem_size,
                expire_ms,
                idle_seconds: opt(c.idle_seconds, i),
                freq: opt(c.freq, i),
                codis_slot: opt(c.codis_slot, i),
                redis_slot: opt(c.redis_slot, i),
            };
            acc.add(&row);
            sorter.push_tagged(
                row.key,
                KeyFacts {
                    rdb_size: row.rdb_size,
                    mem_size,
                    member_count: row.member_count,
                    rtype,
                    has_ttl: expire_ms.is_some(),
                },
                tag_db.then_some(row.db),
            )?;
        }
        row_no += b.num_rows() as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(
            requested_slug("2024-01-02_03-04-05.123456789Z").as_deref(),
            Some("2024-01-02_03-04-05.123456789Z")
        );
        assert_eq!(requested_slug("2024-01-02_03-04-05.1234Z"), None);
        assert_eq!(
            requested_slug("2024-01-02T03:04:05.123456789Z").as_deref(),
            Some("2024-01-02_03-04-05.123456789Z")
        );
        assert_eq!(
            requested_slug("2024-01-02T04:04:05.123456789+01:00").as_deref(),
            Some("2024-01-02_03-04-05.123456789Z")
        );
        assert_eq!(requested_slug("yesterday"), None);
    }

    #[test]
    fn every_column_type_is_read() {
        for c in &COLUMNS {
            // The writer's schema, minus time zones, is what the reader accepts.
            let written = crate::output::parquet::schema::schema();
            let field = written.field_with_name(c.name).expect("written column");
            assert!(
                type_matches(field.data_type(), &arrow_type(c.ty)),
                "{}",
                c.name
            );
            assert_eq!(field.is_nullable(), c.nullable, "{}", c.name);
        }
    }
}
