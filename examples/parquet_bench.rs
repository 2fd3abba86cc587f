//! Quick throughput check of the Parquet writer alone (no parser):
//!
//! ```text
//! cargo run --release --example parquet_bench -- \
//!     [RECORDS] [zstd|snappy|lz4|none] [DIR|-] [INSTANCES] [ROW_GROUP_ROWS]
//! ```
//!
//! Writes RECORDS (default 5,000,000) synthetic records per instance (default 1) through
//! `Output::Parquet` the way the dump pipeline does (per instance, a generator thread sends
//! 1,024-record chunks over a bounded channel to an async writer task), then prints records/s,
//! the file sizes and the peak RSS (VmHWM). `-` or no DIR: a temporary directory.

use std::time::Instant;

use rdbinsight::output::parquet::{MAX_ROW_GROUP_ROWS, ParquetCompression, ParquetOutput};
use rdbinsight::output::{BatchContext, ChunkWriter, Output};
use rdbinsight::record::{BatchTs, Encoding, Record, RecordType};

const CHUNK: usize = 1024;

fn record(i: u64, x: u64) -> Record {
    let (t, e) = match x % 5 {
        0 => (RecordType::String, Encoding::Raw),
        1 => (RecordType::Hash, Encoding::ListPack),
        2 => (RecordType::List, Encoding::QuickList2),
        3 => (RecordType::Set, Encoding::IntSet),
        _ => (RecordType::ZSet, Encoding::SkipList),
    };
    Record {
        db: x % 4,
        key: format!("user:{i:010}:session:{:x}", x & 0xffff).into_bytes(),
        r#type: t,
        member_count: x % 1000,
        rdb_size: 16 + x % 4096,
        encoding: e,
        expire_at_ms: x
            .is_multiple_of(3)
            .then_some(1_760_000_000_000 + (x % 86_400_000) as i64),
        idle_seconds: x.is_multiple_of(2).then_some(x % 100_000),
        freq: None,
        codis_slot: None,
        redis_slot: Some((x % 16384) as u16),
        mem_size: Some(64 + x % 4096),
    }
}

fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5_000_000);
    let compression = match args.next().as_deref() {
        None | Some("zstd") => ParquetCompression::Zstd,
        Some("snappy") => ParquetCompression::Snappy,
        Some("lz4") => ParquetCompression::Lz4,
        Some("none") => ParquetCompression::None,
        Some(other) => anyhow::bail!("unknown compression {other}"),
    };
    let tmp = tempfile::tempdir()?;
    let root = match args.next() {
        Some(d) if d != "-" => std::path::PathBuf::from(d),
        _ => tmp.path().to_path_buf(),
    };
    let instances: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let row_group_rows: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(MAX_ROW_GROUP_ROWS);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let batch = BatchContext {
        cluster: "bench".into(),
        batch: BatchTs::now(),
    };
    let started = Instant::now();
    let mut output = ParquetOutput::new(&root, compression).with_max_row_group_rows(row_group_rows);
    rt.block_on(output.prepare_batch(&batch))?;
    // One writer task and one generator thread per instance, all at once.
    let tasks: Vec<_> = (0..instances)
        .map(|k| {
            let ctx = batch.write_context(&format!("127.0.0.1:{}", 6379 + k));
            let writer = output.writer_for(ctx);
            rt.spawn(async move {
                let mut w = writer?;
                w.prepare_instance().await?;
                let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Record>>(16);
                let producer = std::thread::spawn(move || {
                    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ k;
                    let mut chunk = Vec::with_capacity(CHUNK);
                    for i in 0..n {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        chunk.push(record(i, x));
                        if chunk.len() == CHUNK {
                            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                            if tx.blocking_send(full).is_err() {
                                return;
                            }
                        }
                    }
                    let _ = tx.blocking_send(chunk);
                });
                while let Some(chunk) = rx.recv().await {
                    for r in &chunk {
                        w.write_record(r).await?;
                    }
                }
                producer
                    .join()
                    .map_err(|_| anyhow::anyhow!("producer panicked"))?;
                w.finalize_instance().await?;
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        rt.block_on(t)??;
    }
    rt.block_on(output.finalize_batch())?;
    let secs = started.elapsed().as_secs_f64();
    let dir = ParquetOutput::new(&root, compression)
        .batch_paths(&batch)
        .final_dir;
    let size: u64 = std::fs::read_dir(&dir)?
        .map(|e| e.and_then(|e| e.metadata()).map(|m| m.len()))
        .sum::<std::io::Result<u64>>()?;
    let total = n * instances;
    println!(
        "{total} records ({instances} instance(s) x {n}), {compression:?}, row groups of \
         {row_group_rows}: {secs:.2}s, {:.0} records/s, files {:.1} MB ({:.1} B/record), \
         peak RSS {} MB",
        total as f64 / secs,
        size as f64 / 1e6,
        size as f64 / total as f64,
        peak_rss_kb().map_or("?".to_string(), |kb| format!("{:.1}", kb as f64 / 1024.0)),
    );
    println!("{}", dir.display());
    Ok(())
}
