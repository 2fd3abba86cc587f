//! The Parquet output end to end: records in through `Output` / `ChunkWriter`, files read back
//! with the Parquet Arrow reader and compared column by column, row by row.

use crate::common;

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    TimestampMillisecondType, TimestampNanosecondType, UInt8Type, UInt16Type, UInt64Type,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;

use rdbinsight::output::parquet::schema::schema;
use rdbinsight::output::parquet::{
    BatchPaths, MICRO_BATCH_MAX_KEY_BYTES, MICRO_BATCH_ROWS, ParquetCompression, ParquetOutput,
};
use rdbinsight::output::{BatchContext, ChunkWriter, Output};
use rdbinsight::record::expire::{MAX_EXPIRE_MS, expire_at_ms};
use rdbinsight::record::{BatchTs, Encoding, Record, RecordType};

use common::output::write_batch;

/// 2024-05-06T07:08:09.123456789Z
const BATCH_NANOS: i64 = 1_714_979_289_123_456_789;

const BATCH: BatchTs = BatchTs::from_nanos(BATCH_NANOS);
const TYPES: [RecordType; 7] = RecordType::ALL;
const ENCODINGS: [Encoding; 18] = Encoding::ALL;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Deterministic, varied records: UTF-8 and non-UTF-8 keys, an empty and a long key, every
/// type and encoding, nulls and values (including extremes) in every nullable column.
fn records(n: usize, seed: u64) -> Vec<Record> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|i| {
            let r = next();
            let key = match i % 7 {
                0 => format!("user:{i}:profile").into_bytes(),
                1 => vec![0xff, 0xfe, (i % 256) as u8, 0x00, 0x80],
                2 if i % 1000 == 2 => Vec::new(),
                3 if i % 5000 == 3 => vec![b'k'; 1000 + i % 7],
                4 => format!("ключ-{i}-🔑").into_bytes(),
                _ => format!("k{i}").into_bytes(),
            };
            let opt = |bit: u64| (r >> bit) & 1 == 1;
            Record {
                db: (r % 16) * if i % 997 == 0 { u64::MAX / 16 } else { 1 },
                key,
                r#type: TYPES[i % TYPES.len()],
                member_count: if i % 4093 == 0 { u64::MAX } else { r >> 40 },
                rdb_size: (r >> 20) % 1_000_000,
                encoding: ENCODINGS[(r as usize >> 3) % ENCODINGS.len()],
                // As the parser builds a record: beyond MAX_EXPIRE_MS, no expiry.
                expire_at_ms: match i % 1013 {
                    0 => expire_at_ms(i64::MIN),
                    1 => expire_at_ms(i64::MAX),
                    2 => Some(-1),
                    3 => expire_at_ms(MAX_EXPIRE_MS),
                    4 => expire_at_ms(-MAX_EXPIRE_MS),
                    5 => expire_at_ms(MAX_EXPIRE_MS + 1),
                    _ => opt(1).then_some(1_700_000_000_000 + (r % 10_000_000_000) as i64),
                },
                idle_seconds: opt(2).then_some(r % 100_000),
                freq: opt(3).then_some((r >> 8) as u8),
                codis_slot: opt(4).then_some((r % 1024) as u16),
                redis_slot: opt(5).then_some((r % 16384) as u16),
                mem_size: opt(6).then_some(48 + r % 100_000),
            }
        })
        .collect()
}

fn batch_ctx(cluster: &str) -> BatchContext {
    common::output::batch(cluster, BATCH_NANOS)
}

/// Drive a whole batch through the output, as the dump pipeline does.
async fn dump(
    root: &Path,
    compression: ParquetCompression,
    batch: &BatchContext,
    instances: &[(&str, &[Record])],
) {
    let mut output = ParquetOutput::new(root, compression);
    write_batch(&mut output, batch, instances)
        .await
        .expect("dump");
}

/// One row read back: the context columns and the record.
#[derive(Debug, PartialEq)]
struct Row {
    cluster: String,
    batch: i64,
    instance: String,
    record: Record,
}

fn record_type(s: &str) -> RecordType {
    *TYPES
        .iter()
        .find(|t| t.as_str() == s)
        .unwrap_or_else(|| panic!("unknown type {s}"))
}

fn encoding(s: &str) -> Encoding {
    *ENCODINGS
        .iter()
        .find(|e| e.as_str() == s)
        .unwrap_or_else(|| panic!("unknown encoding {s}"))
}

fn opt<T: arrow::datatypes::ArrowPrimitiveType>(
    a: &arrow::array::PrimitiveArray<T>,
    i: usize,
) -> Option<T::Native> {
    a.is_valid(i).then(|| a.value(i))
}

/// Read a file back with the Parquet Arrow reader: (rows, number of row groups, codec of
/// every column chunk).
fn read_back(path: &Path) -> (Vec<Row>, usize, Vec<Compression>) {
    let file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("reader");
    // The embedded Arrow schema restores the exact types (unsigned ints, time zones).
    assert_eq!(builder.schema(), &schema());
    let meta = builder.metadata().clone();
    let codecs = meta
        .row_groups()
        .iter()
        .flat_map(|rg| rg.columns().iter().map(|c| c.compression()))
        .collect();
    let reader = builder.build().expect("build reader");
    let mut rows = Vec::new();
    for batch in reader {
        let b = batch.expect("batch");
        let cluster = b.column(0).as_string::<i32>();
        let ts = b.column(1).as_primitive::<TimestampNanosecondType>();
        let instance = b.column(2).as_string::<i32>();
        let db = b.column(3).as_primitive::<UInt64Type>();
        let key = b.column(4).as_binary::<i32>();
        let ty = b.column(5).as_string::<i32>();
        let mc = b.column(6).as_primitive::<UInt64Type>();
        let size = b.column(7).as_primitive::<UInt64Type>();
        let enc = b.column(8).as_string::<i32>();
        let exp = b.column(9).as_primitive::<TimestampMillisecondType>();
        let idle = b.column(10).as_primitive::<UInt64Type>();
        let freq = b.column(11).as_primitive::<UInt8Type>();
        let codis = b.column(12).as_primitive::<UInt16Type>();
        let redis = b.column(13).as_primitive::<UInt16Type>();
        let mem = b.column(14).as_primitive::<UInt64Type>();
        for c in 0..9 {
            assert_eq!(b.column(c).null_count(), 0, "column {c} has nulls");
        }
        for i in 0..b.num_rows() {
            rows.push(Row {
                cluster: cluster.value(i).to_string(),
                batch: ts.value(i),
                instance: instance.value(i).to_string(),
                record: Record {
                    db: db.value(i),
                    key: key.value(i).to_vec(),
                    r#type: record_type(ty.value(i)),
                    member_count: mc.value(i),
                    rdb_size: size.value(i),
                    encoding: encoding(enc.value(i)),
                    expire_at_ms: opt(exp, i),
                    idle_seconds: opt(idle, i),
                    freq: opt(freq, i),
                    codis_slot: opt(codis, i),
                    redis_slot: opt(redis, i),
                    mem_size: opt(mem, i),
                },
            });
        }
    }
    (rows, meta.num_row_groups(), codecs)
}

fn assert_rows(
    path: &Path,
    cluster: &str,
    instance: &str,
    expected: &[Record],
) -> Vec<Compression> {
    let (rows, _, codecs) = read_back(path);
    assert_eq!(
        rows.len(),
        expected.len(),
        "row count of {}",
        path.display()
    );
    for (i, (row, rec)) in rows.iter().zip(expected).enumerate() {
        let want = Row {
            cluster: cluster.to_string(),
            batch: BATCH_NANOS,
            instance: instance.to_string(),
            record: rec.clone(),
        };
        assert_eq!(row, &want, "row {i} of {}", path.display());
    }
    codecs
}

fn final_dir(root: &Path, cluster_dir: &str) -> PathBuf {
    root.join(cluster_dir)
        .join(format!("batch={}", BATCH.slug()))
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn round_trip_several_micro_batches_exact_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let recs = records(2 * MICRO_BATCH_ROWS + 5_001, 1);
    let batch = batch_ctx("c1");
    rt().block_on(async {
        let mut output = ParquetOutput::new(dir.path(), ParquetCompression::Zstd);
        output.prepare_batch(&batch).await.expect("prepare");
        let mut w = output
            .writer_for(batch.write_context("i1"))
            .expect("writer");
        w.prepare_instance().await.expect("prepare_instance");
        for (n, r) in recs.iter().enumerate() {
            w.write_record(r).await.expect("write");
            // A micro-batch is handed to the Parquet writer exactly every 10,000 rows.
            assert_eq!(w.micro_batches(), ((n + 1) / MICRO_BATCH_ROWS) as u64);
        }
        w.finalize_instance().await.expect("finalize_instance");
        assert_eq!((w.rows(), w.micro_batches()), (25_001, 3));
        // Visible only inside the tmp dir until the batch is finalized.
        assert!(w.final_path().exists());
        assert!(!final_dir(dir.path(), "cluster=c1").exists());
        output.finalize_batch().await.expect("finalize_batch");
    });
    let file = final_dir(dir.path(), "cluster=c1").join("i1.parquet");
    let codecs = assert_rows(&file, "c1", "i1", &recs);
    assert!(codecs.iter().all(|c| matches!(c, Compression::ZSTD(_))));
    let (rows, row_groups, _) = read_back(&file);
    assert_eq!(row_groups, 1);
    // The extremes a record can carry are stored as they are.
    assert_eq!(rows[0].record.expire_at_ms, None);
    assert_eq!(rows[3].record.expire_at_ms, Some(MAX_EXPIRE_MS));
    assert_eq!(rows[4].record.expire_at_ms, Some(-MAX_EXPIRE_MS));
    assert_eq!(rows[5].record.expire_at_ms, None);
}

#[test]
fn several_row_groups() {
    let dir = tempfile::tempdir().expect("tempdir");
    let recs = records(60_001, 8);
    let batch = batch_ctx("c");
    rt().block_on(async {
        let mut output = ParquetOutput::new(dir.path(), ParquetCompression::Zstd)
            .with_max_row_group_rows(25_000);
        output.prepare_batch(&batch).await.expect("prepare");
        let mut w = output.writer_for(batch.write_context("i")).expect("writer");
        w.prepare_instance().await.expect("prepare_instance");
        for r in &recs {
            w.write_record(r).await.expect("write");
        }
        w.finalize_instance().await.expect("finalize_instance");
        output.finalize_batch().await.expect("finalize_batch");
    });
    let file = final_dir(dir.path(), "cluster=c").join("i.parquet");
    let meta = ParquetRecordBatchReaderBuilder::try_new(File::open(&file).expect("open"))
        .expect("reader")
        .metadata()
        .clone();
    let sizes: Vec<i64> = meta.row_groups().iter().map(|rg| rg.num_rows()).collect();
    assert_eq!(sizes, [25_000, 25_000, 10_001]);
    // Page statistics are written: min/max of a non-null column in every row group.
    for rg in meta.row_groups() {
        let stats = rg.column(3).statistics().expect("db statistics");
        assert!(stats.min_bytes_opt().is_some() && stats.max_bytes_opt().is_some());
    }
    assert_rows(&file, "c", "i", &recs);
}

#[test]
fn huge_keys_cut_micro_batches_early() {
    let dir = tempfile::tempdir().expect("tempdir");
    let batch = batch_ctx("c");
    let mut recs = records(3, 9);
    let big = MICRO_BATCH_MAX_KEY_BYTES / 2 + 1;
    recs[0].key = vec![b'a'; big];
    recs[1].key = vec![b'b'; big];
    rt().block_on(async {
        let mut output = ParquetOutput::new(dir.path(), ParquetCompression::None);
        output.prepare_batch(&batch).await.expect("prepare");
        let mut w = output.writer_for(batch.write_context("i")).expect("writer");
        w.prepare_instance().await.expect("prepare_instance");
        for r in &recs {
            w.write_record(r).await.expect("write");
        }
        // The second big key did not fit next to the first: [a], then [b, small].
        assert_eq!(w.micro_batches(), 1);
        w.finalize_instance().await.expect("finalize_instance");
        assert_eq!((w.rows(), w.micro_batches()), (3, 2));
        output.finalize_batch().await.expect("finalize_batch");
    });
    assert_rows(
        &final_dir(dir.path(), "cluster=c").join("i.parquet"),
        "c",
        "i",
        &recs,
    );
}

#[test]
fn every_compression_round_trips() {
    let recs = records(12_345, 2);
    let batch = batch_ctx("c");
    for (compression, check) in [
        (
            ParquetCompression::Zstd,
            (|c: &Compression| matches!(c, Compression::ZSTD(_))) as fn(&Compression) -> bool,
        ),
        (ParquetCompression::Snappy, |c| *c == Compression::SNAPPY),
        (ParquetCompression::Lz4, |c| *c == Compression::LZ4_RAW),
        (ParquetCompression::None, |c| {
            *c == Compression::UNCOMPRESSED
        }),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        rt().block_on(dump(dir.path(), compression, &batch, &[("i", &recs)]));
        let file = final_dir(dir.path(), "cluster=c").join("i.parquet");
        let codecs = assert_rows(&file, "c", "i", &recs);
        assert!(!codecs.is_empty());
        assert!(codecs.iter().all(check), "{compression:?} wrote {codecs:?}");
    }
}

#[test]
fn layout_encoding_and_two_instances() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = records(10_000, 3);
    let b = records(123, 4);
    let batch = batch_ctx("prod/east:1");
    rt().block_on(dump(
        dir.path(),
        ParquetCompression::Snappy,
        &batch,
        &[("127.0.0.1:6379", &a), ("10.0.0.2:6380", &b)],
    ));
    // Only the final batch directory: no tmp dir, no lock file.
    assert_eq!(names(dir.path()), ["cluster=prod%2Feast%3A1"]);
    let cluster_dir = dir.path().join("cluster=prod%2Feast%3A1");
    assert_eq!(
        names(&cluster_dir),
        ["batch=2024-05-06_07-08-09.123456789Z"]
    );
    let batch_dir = final_dir(dir.path(), "cluster=prod%2Feast%3A1");
    assert_eq!(
        names(&batch_dir),
        ["10.0.0.2%3A6380.parquet", "127.0.0.1%3A6379.parquet"]
    );
    // The columns keep the real names.
    assert_rows(
        &batch_dir.join("127.0.0.1%3A6379.parquet"),
        "prod/east:1",
        "127.0.0.1:6379",
        &a,
    );
    assert_rows(
        &batch_dir.join("10.0.0.2%3A6380.parquet"),
        "prod/east:1",
        "10.0.0.2:6380",
        &b,
    );
}

#[test]
fn empty_instance_is_a_valid_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let batch = batch_ctx("c");
    rt().block_on(dump(
        dir.path(),
        ParquetCompression::Zstd,
        &batch,
        &[("empty", &[])],
    ));
    let (rows, _, _) = read_back(&final_dir(dir.path(), "cluster=c").join("empty.parquet"));
    assert!(rows.is_empty());
}

#[test]
fn interrupted_dump_leaves_no_batch_and_rerun_succeeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let recs = records(15_000, 5);
    let batch = batch_ctx("c");
    let paths = BatchPaths::new(dir.path(), "c", BATCH);
    rt().block_on(async {
        let mut output = ParquetOutput::new(dir.path(), ParquetCompression::Zstd);
        output.prepare_batch(&batch).await.expect("prepare");
        common::output::write_instance(&mut output, &batch, "done", &recs[..1])
            .await
            .expect("done");
        let mut w = output.writer_for(batch.write_context("i")).expect("writer");
        w.prepare_instance().await.expect("prepare_instance");
        for r in &recs {
            w.write_record(r).await.expect("write");
        }
        assert!(paths.tmp_dir.join("i.parquet.tmp").exists());
        // The pipeline fails: the writer is dropped unfinished, finalize_batch never runs.
        drop(w);
        assert!(!paths.final_dir.exists());
        drop(output);
    });
    assert!(
        !paths.final_dir.exists(),
        "a failed dump must not publish a batch"
    );
    assert!(
        !paths.tmp_dir.exists(),
        "the unfinished batch is cleaned up"
    );
    assert!(!paths.lock_file.exists());

    // Same batch again, this time completing.
    rt().block_on(dump(
        dir.path(),
        ParquetCompression::Zstd,
        &batch,
        &[("i", &recs)],
    ));
    assert_eq!(names(&paths.final_dir), ["i.parquet"]);
    assert_rows(&paths.final_dir.join("i.parquet"), "c", "i", &recs);
}

#[test]
fn leftover_of_a_killed_run_is_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = BatchPaths::new(dir.path(), "c", BATCH);
    // What `kill -9` leaves: a tmp dir with a partial file and a stale (unlocked) lock file.
    fs::create_dir_all(&paths.tmp_dir).expect("mkdir");
    fs::write(paths.tmp_dir.join("old.parquet.tmp"), b"PAR1 partial").expect("write");
    fs::write(paths.tmp_dir.join("old.parquet"), b"PAR1 stale").expect("write");
    fs::write(&paths.lock_file, b"").expect("write");
    let recs = records(10, 6);
    rt().block_on(dump(
        dir.path(),
        ParquetCompression::Zstd,
        &batch_ctx("c"),
        &[("new", &recs)],
    ));
    assert_eq!(names(&paths.final_dir), ["new.parquet"]);
    assert_eq!(
        names(&paths.cluster_dir),
        [paths
            .final_dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned()]
    );
}

/// Issue #7 item 4: `kill -9` leaves `_tmp_batch=` dirs and lock files of *other* timestamps;
/// the next run on the cluster removes those whose lock nobody holds, and leaves a live run's
/// alone.
#[test]
fn dead_runs_of_any_batch_are_removed_live_ones_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let at = |nanos: i64| BatchPaths::new(dir.path(), "c", BatchTs::from_nanos(nanos));
    let (killed, no_lock, orphan_lock, live, done) = (at(1), at(2), at(3), at(4), at(5));
    // Killed while writing: tmp dir with files and an unlocked lock file.
    fs::create_dir_all(&killed.tmp_dir).expect("mkdir");
    fs::write(killed.tmp_dir.join("x.parquet.tmp"), b"PAR1 partial").expect("write");
    fs::write(&killed.lock_file, b"").expect("write");
    // A tmp dir without its lock file, and a lock file without its tmp dir.
    fs::create_dir_all(&no_lock.tmp_dir).expect("mkdir");
    fs::write(no_lock.tmp_dir.join("y.parquet"), b"PAR1 stale").expect("write");
    fs::write(&orphan_lock.lock_file, b"").expect("write");
    // A complete batch: never touched.
    fs::create_dir_all(&done.final_dir).expect("mkdir");
    fs::write(done.final_dir.join("z.parquet"), b"PAR1 done").expect("write");
    let recs = records(10, 7);
    rt().block_on(async {
        // A live run (this process holds its lock) on another batch.
        let live_batch = BatchContext {
            cluster: "c".into(),
            batch: BatchTs::from_nanos(4),
        };
        let mut running = ParquetOutput::new(dir.path(), ParquetCompression::Zstd);
        running.prepare_batch(&live_batch).await.expect("prepare");
        common::output::write_instance(&mut running, &live_batch, "live", &recs)
            .await
            .expect("write");

        let mut output = ParquetOutput::new(dir.path(), ParquetCompression::Zstd);
        write_batch(&mut output, &batch_ctx("c"), &[("new", &recs)])
            .await
            .expect("the new run");
        for gone in [&killed, &no_lock, &orphan_lock] {
            assert!(!gone.tmp_dir.exists(), "{}", gone.tmp_dir.display());
            assert!(!gone.lock_file.exists(), "{}", gone.lock_file.display());
        }
        assert!(
            live.tmp_dir.join("live.parquet").exists(),
            "a live run is left alone"
        );
        assert!(live.lock_file.exists());
        assert!(done.final_dir.join("z.parquet").exists());
        // ... and it still completes.
        running
            .finalize_batch()
            .await
            .expect("the live run finalizes");
    });
    assert_eq!(names(&live.final_dir), ["live.parquet"]);
    assert!(!live.lock_file.exists());
    assert_eq!(names(&at(BATCH_NANOS).final_dir), ["new.parquet"]);
}

#[test]
fn existing_batch_and_concurrent_run_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let batch = batch_ctx("c");
    let paths = BatchPaths::new(dir.path(), "c", BATCH);
    rt().block_on(async {
        // A second run of a batch that is being written fails and leaves the first alone.
        let mut first = ParquetOutput::new(dir.path(), ParquetCompression::Zstd);
        first.prepare_batch(&batch).await.expect("prepare");
        let mut second = ParquetOutput::new(dir.path(), ParquetCompression::Zstd);
        let err = second.prepare_batch(&batch).await.expect_err("locked");
        assert!(err.to_string().contains("another rdbinsight run"), "{err}");
        drop(second);
        assert!(paths.tmp_dir.exists());
        first.finalize_batch().await.expect("finalize");

        // A batch is written once.
        let mut again = ParquetOutput::new(dir.path(), ParquetCompression::Zstd);
        let err = again.prepare_batch(&batch).await.expect_err("exists");
        assert!(err.to_string().contains("already exists"), "{err}");
        assert!(
            err.to_string()
                .contains("batch=2024-05-06_07-08-09.123456789Z"),
            "{err}"
        );
    });
    assert!(paths.final_dir.exists(), "the existing batch is kept");
    assert!(!paths.tmp_dir.exists());
    assert!(!paths.lock_file.exists());
}

#[test]
fn misuse_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let batch = batch_ctx("c");
    let paths = BatchPaths::new(dir.path(), "c", BATCH);
    rt().block_on(async {
        let mut output = ParquetOutput::new(dir.path(), ParquetCompression::Zstd);
        assert!(
            output.writer_for(batch.write_context("i")).is_err(),
            "before prepare_batch"
        );
        output.prepare_batch(&batch).await.expect("prepare");

        // One instance twice (names that the older layout merged, `a:1` and `a-1`, no longer
        // map to one file).
        let _a = output
            .writer_for(batch.write_context("a:1"))
            .expect("writer");
        let _b = output
            .writer_for(batch.write_context("a-1"))
            .expect("a-1 is another file");
        let err = output
            .writer_for(batch.write_context("a:1"))
            .err()
            .expect("collision");
        assert!(err.to_string().contains("a%3A1.parquet"), "{err}");

        // Writing before prepare_instance / after finalize_instance.
        let rec = &records(1, 7)[0];
        let mut w = output.writer_for(batch.write_context("b")).expect("writer");
        assert!(w.write_record(rec).await.is_err());
        w.prepare_instance().await.expect("prepare_instance");
        w.write_record(rec).await.expect("write");
        w.finalize_instance().await.expect("finalize");
        assert!(w.write_record(rec).await.is_err());
        assert!(w.finalize_instance().await.is_err());

        // An instance still open blocks finalize_batch, and nothing is published.
        let mut open = output
            .writer_for(batch.write_context("open"))
            .expect("writer");
        open.prepare_instance().await.expect("prepare_instance");
        let err = output.finalize_batch().await.expect_err("unfinished");
        assert!(err.to_string().contains("open.parquet.tmp"), "{err}");
    });
    assert!(!paths.final_dir.exists());
    assert!(!paths.tmp_dir.exists());
}

#[test]
fn unwritable_root_is_an_io_error_with_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("a-file");
    fs::write(&root, b"not a directory").expect("write");
    let err = rt()
        .block_on(async {
            let mut output = ParquetOutput::new(&root, ParquetCompression::Zstd);
            output.prepare_batch(&batch_ctx("c")).await
        })
        .expect_err("not a dir");
    assert!(err.to_string().contains("a-file"), "{err}");
}

/// Manual interop check: writes the varied test records to `$RDBINSIGHT_SAMPLE_DIR` for
/// inspection with pyarrow/DuckDB. `RDBINSIGHT_SAMPLE_DIR=/tmp/x cargo test --test
/// offline parquet_output -- --ignored sample`.
#[test]
#[ignore]
fn sample_for_manual_check() {
    let Some(dir) = std::env::var_os("RDBINSIGHT_SAMPLE_DIR") else {
        return;
    };
    let recs = records(25_001, 1);
    rt().block_on(dump(
        Path::new(&dir),
        ParquetCompression::Zstd,
        &batch_ctx("c1"),
        &[("127.0.0.1:6379", &recs)],
    ));
}

/// `rdbinsight dump from-file FIXTURE --cluster CLUSTER ... into-parquet --dir DIR` at `ts`.
fn dump_fixture(dir: &Path, fixture: &str, cluster: &str, ts: &str) {
    common::cli::succeeds(&mut common::cli::command(&[
        "dump",
        "from-file",
        "--path",
        &format!("tests/fixtures/{fixture}"),
        "--cluster",
        cluster,
        "--instance",
        "127.0.0.1:6379",
        "--batch-timestamp",
        ts,
        "into-parquet",
        "--dir",
        dir.to_str().expect("utf-8 path"),
    ]));
}

/// `report from-parquet` of `cluster` (and `--batch`): (cluster, batch, keys) of its JSON.
fn report_of(dir: &Path, cluster: &str, batch: Option<&str>) -> (String, String, u64) {
    let json = dir.join("report.json");
    let page = dir.join("report.html");
    let mut args = vec![
        "report",
        "from-parquet",
        "--dir",
        dir.to_str().expect("utf-8 path"),
        "--cluster",
        cluster,
        "--json",
        json.to_str().expect("utf-8 path"),
        "-o",
        page.to_str().expect("utf-8 path"),
    ];
    if let Some(b) = batch {
        args.extend(["--batch", b]);
    }
    common::cli::succeeds(&mut common::cli::command(&args));
    let v: serde_json::Value =
        serde_json::from_slice(&fs::read(&json).expect("read the JSON")).expect("JSON");
    (
        v["cluster"].as_str().unwrap_or_default().to_string(),
        v["batch"].as_str().unwrap_or_default().to_string(),
        v["totals"]["keys"].as_u64().unwrap_or_default(),
    )
}

#[test]
fn clusters_a_slash_b_and_a_underscore_b_never_share_a_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t1 = "2024-01-01T00:00:01.000000000Z";
    let t2 = "2024-01-01T00:00:02.000000000Z";
    // r7-multidb: 109 keys; r7-strings: another count.
    dump_fixture(dir.path(), "r7-multidb.rdb", "a/b", t1);
    dump_fixture(dir.path(), "r7-strings.rdb", "a_b", t2);
    assert_eq!(names(dir.path()), ["cluster=a%2Fb", "cluster=a_b"]);
    let (c, b, keys) = report_of(dir.path(), "a/b", None);
    assert_eq!((c.as_str(), b.as_str(), keys), ("a/b", t1, 109));
    let (c, b, strings) = report_of(dir.path(), "a_b", None);
    assert_eq!((c.as_str(), b.as_str()), ("a_b", t2));
    assert_ne!(strings, 109);
}

#[test]
fn batches_of_the_older_shared_directory_are_read_per_cluster() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (t1, t2, t3) = (
        "2024-01-01T00:00:01.000000000Z",
        "2024-01-01T00:00:02.000000000Z",
        "2024-01-01T00:00:03.000000000Z",
    );
    // An older version wrote both `a_b` (t1) and `a/b` (t2, the newest there) to cluster=a_b,
    // with instance files named the older way.
    dump_fixture(dir.path(), "r7-strings.rdb", "a_b", t1);
    dump_fixture(dir.path(), "r7-multidb.rdb", "a/b", t2);
    let slug2 = "batch=2024-01-01_00-00-02.000000000Z";
    let old_batch = dir.path().join("cluster=a_b").join(slug2);
    fs::rename(dir.path().join("cluster=a%2Fb").join(slug2), &old_batch).expect("move");
    fs::remove_dir(dir.path().join("cluster=a%2Fb")).expect("remove the emptied dir");
    fs::rename(
        old_batch.join("127.0.0.1%3A6379.parquet"),
        old_batch.join("127.0.0.1-6379.parquet"),
    )
    .expect("rename");
    // Each cluster gets its own batch out of the shared directory.
    let (c, b, strings) = report_of(dir.path(), "a_b", None);
    assert_eq!((c.as_str(), b.as_str()), ("a_b", t1));
    let (c, b, keys) = report_of(dir.path(), "a/b", None);
    assert_eq!((c.as_str(), b.as_str(), keys), ("a/b", t2, 109));
    // `--batch` of another cluster's batch there is not found.
    let out = common::cli::command(&[
        "report",
        "from-parquet",
        "--dir",
        dir.path().to_str().expect("utf-8 path"),
        "--cluster",
        "a_b",
        "--batch",
        t2,
    ])
    .output()
    .expect("run");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // A newer batch of `a/b` in the current layout wins; the older one stays reachable.
    dump_fixture(dir.path(), "r7-strings.rdb", "a/b", t3);
    let (_, b, keys) = report_of(dir.path(), "a/b", None);
    assert_eq!((b.as_str(), keys), (t3, strings));
    let (_, b, keys) = report_of(dir.path(), "a/b", Some(t2));
    assert_eq!((b.as_str(), keys), (t2, 109));
}
