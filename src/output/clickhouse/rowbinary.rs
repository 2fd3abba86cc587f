//! Rows of `redis_records_raw` in ClickHouse's `RowBinaryWithNamesAndTypes` format.
//!
//! Why by hand: the writer streams through `clickhouse::insert_formatted::InsertFormatted` (see
//! `stream`), which takes bytes; the crate's own row serializer is private to its
//! `Insert<T>`. The format is simple and fixed for our columns (the record columns and the attempt):
//! - header (once per INSERT): LEB128 column count, then every column name, then every column
//!   type, each as a LEB128-length-prefixed string. The server checks the names and types
//!   against the table before it reads a row, so a schema that changed since `prepare_batch`
//!   fails with the server's own message;
//! - per row, each column in [`COLUMNS`] order: `String` / `LowCardinality(String)` as LEB128
//!   length + bytes (keys are arbitrary bytes), `UInt*` and `DateTime64` (an `Int64` of ticks)
//!   little-endian, `Nullable(T)` as one byte (1 = NULL) followed by `T` when not NULL.
//!
//! The three context columns (cluster, batch, instance) and the storage column
//! [`ATTEMPT_COLUMN`] are the same in every row of a writer; [`RowEncoder`] encodes them once
//! and copies them per row. So the INSERT names the attempt fourth, right after the context
//! columns (in the table it is the last column): one more `memcpy` per row, nothing else.

use super::attempt::AttemptId;
use super::schema::{ATTEMPT_COLUMN, ATTEMPT_TYPE, clickhouse_type};
use crate::record::columns::COLUMNS;
use crate::record::{Record, WriteContext};

/// How many leading [`COLUMNS`] are the write context (cluster, batch, instance).
const CONTEXT_COLUMNS: usize = 3;

/// `(name, ClickHouse type)` of the INSERT's columns, in the order rows are encoded: the
/// context columns, the attempt, then the record's columns.
pub fn insert_columns() -> Vec<(&'static str, String)> {
    let record = |c: &crate::record::columns::Column| (c.name, clickhouse_type(c));
    COLUMNS[..CONTEXT_COLUMNS]
        .iter()
        .map(record)
        .chain(std::iter::once((ATTEMPT_COLUMN, ATTEMPT_TYPE.to_string())))
        .chain(COLUMNS[CONTEXT_COLUMNS..].iter().map(record))
        .collect()
}

/// The `RowBinaryWithNamesAndTypes` header for [`insert_columns`].
pub fn header() -> Vec<u8> {
    let columns = insert_columns();
    let mut out = Vec::with_capacity(512);
    put_len(&mut out, columns.len());
    for (name, _) in &columns {
        put_str(&mut out, name.as_bytes());
    }
    for (_, ty) in &columns {
        put_str(&mut out, ty.as_bytes());
    }
    out
}

/// `INSERT INTO <table> (<columns>) FORMAT RowBinaryWithNamesAndTypes`, `table` already
/// quoted/qualified.
pub fn insert_sql(table: &str) -> String {
    let columns: Vec<String> = insert_columns()
        .iter()
        .map(|(name, _)| super::schema::quote_ident(name))
        .collect();
    format!(
        "INSERT INTO {table} ({}) FORMAT RowBinaryWithNamesAndTypes",
        columns.join(", ")
    )
}

/// Encodes one writer's rows.
#[derive(Debug, Clone)]
pub struct RowEncoder {
    /// cluster, batch, instance, attempt: the first four columns (a test checks the order).
    prefix: Vec<u8>,
}

impl RowEncoder {
    /// The rows of `ctx`'s instance, written by attempt `attempt`.
    pub fn new(ctx: &WriteContext, attempt: AttemptId) -> Self {
        let mut prefix = Vec::with_capacity(ctx.cluster.len() + ctx.instance.len() + 26);
        put_str(&mut prefix, ctx.cluster.as_bytes());
        prefix.extend_from_slice(&ctx.batch.nanos().to_le_bytes());
        put_str(&mut prefix, ctx.instance.as_bytes());
        prefix.extend_from_slice(&attempt.get().to_le_bytes());
        RowEncoder { prefix }
    }

    /// Append `record`'s row to `out`.
    #[inline]
    pub fn encode(&self, record: &Record, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(&record.db.to_le_bytes());
        put_str(out, &record.key);
        put_str(out, record.r#type.as_str().as_bytes());
        out.extend_from_slice(&record.member_count.to_le_bytes());
        out.extend_from_slice(&record.rdb_size.to_le_bytes());
        put_str(out, record.encoding.as_str().as_bytes());
        put_nullable(out, record.expire_at_ms.map(i64::to_le_bytes));
        put_nullable(out, record.idle_seconds.map(u64::to_le_bytes));
        put_nullable(out, record.freq.map(u8::to_le_bytes));
        put_nullable(out, record.codis_slot.map(u16::to_le_bytes));
        put_nullable(out, record.redis_slot.map(u16::to_le_bytes));
        put_nullable(out, record.mem_size.map(u64::to_le_bytes));
    }
}

#[inline]
fn put_len(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

#[inline]
fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_len(out, s.len());
    out.extend_from_slice(s);
}

#[inline]
fn put_nullable<const N: usize>(out: &mut Vec<u8>, value: Option<[u8; N]>) {
    match value {
        Some(bytes) => {
            out.push(0);
            out.extend_from_slice(&bytes);
        }
        None => out.push(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::columns::{Column, ColumnType};
    use crate::record::{BatchTs, Encoding, RecordType};

    /// A value read back by [`decode`].
    #[derive(Debug, PartialEq)]
    enum Value {
        Null,
        Bytes(Vec<u8>),
        Int(i128),
    }

    struct Cursor<'a>(&'a [u8]);

    impl Cursor<'_> {
        fn take(&mut self, n: usize) -> &[u8] {
            let (a, b) = self.0.split_at(n);
            self.0 = b;
            a
        }
        fn len(&mut self) -> usize {
            let (mut n, mut shift) = (0usize, 0);
            loop {
                let b = self.take(1)[0];
                n |= usize::from(b & 0x7f) << shift;
                if b < 0x80 {
                    return n;
                }
                shift += 7;
            }
        }
        fn string(&mut self) -> Vec<u8> {
            let n = self.len();
            self.take(n).to_vec()
        }
        fn uint(&mut self, n: usize) -> i128 {
            let mut v = 0i128;
            for (i, b) in self.take(n).iter().enumerate() {
                v |= i128::from(*b) << (8 * i);
            }
            v
        }
    }

    /// A generic reader driven by COLUMNS (and the attempt after the context) only: if the
    /// encoder wrote the columns in another order or with other widths, the values come out
    /// wrong.
    fn decode(bytes: &[u8]) -> Vec<(&'static str, Value)> {
        let mut c = Cursor(bytes);
        let attempt = Column {
            name: ATTEMPT_COLUMN,
            ty: ColumnType::UInt64,
            nullable: false,
            doc: "",
            added_later: false,
        };
        let order: Vec<&Column> = COLUMNS[..3]
            .iter()
            .chain(std::iter::once(&attempt))
            .chain(&COLUMNS[3..])
            .collect();
        assert_eq!(
            order.iter().map(|c| c.name).collect::<Vec<_>>(),
            insert_columns().iter().map(|c| c.0).collect::<Vec<_>>()
        );
        order
            .into_iter()
            .map(|col| {
                if col.nullable && c.take(1)[0] == 1 {
                    return (col.name, Value::Null);
                }
                let v = match col.ty {
                    ColumnType::Text | ColumnType::Label | ColumnType::Bytes => {
                        Value::Bytes(c.string())
                    }
                    ColumnType::TimestampNanos | ColumnType::TimestampMillis => {
                        Value::Int(i128::from(c.uint(8) as u64 as i64))
                    }
                    ColumnType::UInt8 => Value::Int(c.uint(1)),
                    ColumnType::UInt16 => Value::Int(c.uint(2)),
                    ColumnType::UInt64 => Value::Int(c.uint(8)),
                };
                (col.name, v)
            })
            .collect()
    }

    #[test]
    fn rows_follow_the_column_list() {
        let ctx = WriteContext {
            cluster: "prod".into(),
            batch: BatchTs::from_nanos(1_700_000_000_123_456_789),
            instance: "10.0.0.1:6379".into(),
        };
        let long_key = vec![0xffu8; 300]; // a two-byte LEB128 length
        let record = Record {
            db: 3,
            key: long_key.clone(),
            r#type: RecordType::Hash,
            member_count: 1 << 40,
            rdb_size: 77,
            encoding: Encoding::ListPack,
            expire_at_ms: Some(-5),
            idle_seconds: None,
            freq: Some(200),
            codis_slot: None,
            redis_slot: Some(16383),
            mem_size: Some(4242),
        };
        let mut out = Vec::new();
        let attempt = AttemptId::parse_hex("00000000a1b2c3d4").expect("an id");
        RowEncoder::new(&ctx, attempt).encode(&record, &mut out);
        let b = |s: &str| Value::Bytes(s.as_bytes().to_vec());
        assert_eq!(
            decode(&out),
            vec![
                ("cluster", b("prod")),
                ("batch", Value::Int(1_700_000_000_123_456_789)),
                ("instance", b("10.0.0.1:6379")),
                ("attempt", Value::Int(0xa1b2_c3d4)),
                ("db", Value::Int(3)),
                ("key", Value::Bytes(long_key)),
                ("type", b("hash")),
                ("member_count", Value::Int(1 << 40)),
                ("rdb_size", Value::Int(77)),
                ("encoding", b("list_pack")),
                ("expire_at", Value::Int(-5)),
                ("idle_seconds", Value::Null),
                ("freq", Value::Int(200)),
                ("codis_slot", Value::Null),
                ("redis_slot", Value::Int(16383)),
                ("mem_size", Value::Int(4242)),
            ]
        );
    }

    #[test]
    fn header_names_and_types() {
        let h = header();
        let mut c = Cursor(&h);
        let n = COLUMNS.len() + 1;
        assert_eq!(c.len(), n);
        let names: Vec<Vec<u8>> = (0..n).map(|_| c.string()).collect();
        let types: Vec<Vec<u8>> = (0..n).map(|_| c.string()).collect();
        assert!(c.0.is_empty());
        for (i, (name, ty)) in insert_columns().iter().enumerate() {
            assert_eq!(names[i], name.as_bytes());
            assert_eq!(types[i], ty.as_bytes());
        }
        assert_eq!(names[3], b"attempt");
        assert!(
            insert_sql("`d`.`t`").starts_with(
                "INSERT INTO `d`.`t` (`cluster`, `batch`, `instance`, `attempt`, `db`,"
            )
        );
    }
}
