//! The ClickHouse benchmark's ceiling: the rows of an RDB file as one `RowBinaryWithNamesAndTypes`
//! body, exactly the bytes `into-clickhouse` streams (the same encoder), uncompressed.
//!
//! ```text
//! cargo run --release --example clickhouse_rowbinary -- FILE.rdb CLUSTER INSTANCE BATCH_NANOS > rows.bin
//! curl --data-binary @rows.bin "$URL/?database=DB&query=$(cargo run -q --release --example clickhouse_rowbinary -- --sql)"
//! ```
//!
//! `bench/clickhouse.sh` runs both and times the `curl` INSERT against `into-clickhouse` on the
//! same engine: the engine's own ingest of the same rows is the ceiling for the writer.
//! `--sql` prints the URL-encoded `INSERT INTO redis_records_raw (...) FORMAT ...` statement.

use std::io::Write as _;

use rdbinsight::output::clickhouse::AttemptId;
use rdbinsight::output::clickhouse::rowbinary::{RowEncoder, header, insert_sql};
use rdbinsight::parser::{ParseOptions, RdbParser};
use rdbinsight::record::{BatchTs, WriteContext};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--sql") {
        let sql = insert_sql("`redis_records_raw`");
        let encoded: String = sql
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        println!("{encoded}");
        return Ok(());
    }
    let [path, cluster, instance, batch] = args.as_slice() else {
        return Err(
            "usage: clickhouse_rowbinary FILE.rdb CLUSTER INSTANCE BATCH_NANOS | --sql".into(),
        );
    };
    let ctx = WriteContext {
        cluster: cluster.as_str().into(),
        batch: BatchTs::from_nanos(batch.parse()?),
        instance: instance.as_str().into(),
    };
    // A fixed attempt id (a run's is random; the encoding is the same 8 bytes).
    let attempt = AttemptId::parse_hex("0123456789abcdef").ok_or("attempt id")?;
    let encoder = RowEncoder::new(&ctx, attempt);
    let file = std::fs::File::open(path)?;
    let mut parser = RdbParser::new(file, instance.as_str(), ParseOptions::default());
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    out.write_all(&header())?;
    let mut buf = Vec::with_capacity(64 * 1024);
    while let Some(record) = parser.next_record()? {
        encoder.encode(&record, &mut buf);
        if buf.len() >= 60 * 1024 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()?;
    Ok(())
}
