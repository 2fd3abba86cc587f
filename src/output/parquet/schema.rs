//! The Arrow schema of a Parquet instance file and the column builders that accumulate one
//! micro-batch.
//!
//! The schema is derived from the one column list, [`crate::record::columns::COLUMNS`]; the
//! builders append in the same order (a test checks the two agree).

use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, BinaryArray, BinaryBuilder, StringBuilder, TimestampMillisecondBuilder,
    TimestampNanosecondBuilder, UInt8Builder, UInt16Builder, UInt64Builder,
};
use arrow::buffer::{Buffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use crate::record::columns::{COLUMNS, ColumnType};
use crate::record::{Record, WriteContext};

/// Time zone of both timestamp columns.
pub const TZ: &str = "UTC";

/// The Arrow type of a column type.
pub fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Text | ColumnType::Label => DataType::Utf8,
        ColumnType::Bytes => DataType::Binary,
        ColumnType::TimestampNanos => DataType::Timestamp(TimeUnit::Nanosecond, Some(TZ.into())),
        ColumnType::TimestampMillis => DataType::Timestamp(TimeUnit::Millisecond, Some(TZ.into())),
        ColumnType::UInt8 => DataType::UInt8,
        ColumnType::UInt16 => DataType::UInt16,
        ColumnType::UInt64 => DataType::UInt64,
    }
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(
        COLUMNS
            .iter()
            .map(|c| Field::new(c.name, arrow_type(c.ty), c.nullable))
            .collect::<Vec<_>>(),
    ))
});

/// The Arrow schema of every instance file (shared, built once).
pub fn schema() -> SchemaRef {
    Arc::clone(&SCHEMA)
}

/// One builder per column. Appending a record copies its key bytes and a few scalars; nothing
/// is allocated per record as long as the builders were created with enough capacity (they
/// are, see [`ColumnBuilders::with_capacity`]).
pub(crate) struct ColumnBuilders {
    cluster: StringBuilder,
    batch: TimestampNanosecondBuilder,
    instance: StringBuilder,
    db: UInt64Builder,
    key: BinaryBuilder,
    r#type: StringBuilder,
    member_count: UInt64Builder,
    rdb_size: UInt64Builder,
    encoding: StringBuilder,
    expire_at: TimestampMillisecondBuilder,
    idle_seconds: UInt64Builder,
    freq: UInt8Builder,
    codis_slot: UInt16Builder,
    redis_slot: UInt16Builder,
    mem_size: UInt64Builder,
    len: usize,
    key_bytes: usize,
}

/// Bytes reserved per row for `type`/`encoding` values (the longest is 12 bytes).
const ENUM_BYTES: usize = 12;

impl ColumnBuilders {
    /// Builders for `rows` rows, with `key_bytes` bytes of key data and `ctx_bytes` bytes per
    /// row for each of the cluster and instance names reserved up front.
    pub fn with_capacity(rows: usize, key_bytes: usize, ctx_bytes: usize) -> Self {
        let ts_ns = TimestampNanosecondBuilder::with_capacity(rows).with_timezone(TZ);
        let ts_ms = TimestampMillisecondBuilder::with_capacity(rows).with_timezone(TZ);
        ColumnBuilders {
            cluster: StringBuilder::with_capacity(rows, rows * ctx_bytes),
            batch: ts_ns,
            instance: StringBuilder::with_capacity(rows, rows * ctx_bytes),
            db: UInt64Builder::with_capacity(rows),
            key: BinaryBuilder::with_capacity(rows, key_bytes),
            r#type: StringBuilder::with_capacity(rows, rows * ENUM_BYTES),
            member_count: UInt64Builder::with_capacity(rows),
            rdb_size: UInt64Builder::with_capacity(rows),
            encoding: StringBuilder::with_capacity(rows, rows * ENUM_BYTES),
            expire_at: ts_ms,
            idle_seconds: UInt64Builder::with_capacity(rows),
            freq: UInt8Builder::with_capacity(rows),
            codis_slot: UInt16Builder::with_capacity(rows),
            redis_slot: UInt16Builder::with_capacity(rows),
            mem_size: UInt64Builder::with_capacity(rows),
            len: 0,
            key_bytes: 0,
        }
    }

    /// Rows appended since the builders were created.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Key bytes appended since the builders were created (a capacity hint for the next ones).
    pub fn key_bytes(&self) -> usize {
        self.key_bytes
    }

    /// Append one row: `ctx` + `r`.
    #[inline]
    pub fn append(&mut self, r: &Record, ctx: &WriteContext) {
        self.cluster.append_value(&*ctx.cluster);
        self.batch.append_value(ctx.batch.nanos());
        self.instance.append_value(&*ctx.instance);
        self.db.append_value(r.db);
        self.key.append_value(&r.key);
        self.r#type.append_value(r.r#type.as_str());
        self.member_count.append_value(r.member_count);
        self.rdb_size.append_value(r.rdb_size);
        self.encoding.append_value(r.encoding.as_str());
        self.expire_at.append_option(r.expire_at_ms);
        self.idle_seconds.append_option(r.idle_seconds);
        self.freq.append_option(r.freq);
        self.codis_slot.append_option(r.codis_slot);
        self.redis_slot.append_option(r.redis_slot);
        self.mem_size.append_option(r.mem_size);
        self.len += 1;
        self.key_bytes += r.key.len();
    }

    /// A one-row [`RecordBatch`] of `ctx` + `r` whose `key` column takes `r.key`'s buffer
    /// as it is (no copy: for huge keys).
    pub fn one_row_owning_key(
        mut r: Record,
        ctx: &WriteContext,
    ) -> Result<RecordBatch, ArrowError> {
        let key = std::mem::take(&mut r.key);
        let ctx_bytes = ctx.cluster.len().max(ctx.instance.len());
        let mut one = ColumnBuilders::with_capacity(1, 0, ctx_bytes);
        one.append(&r, ctx);
        let offsets = OffsetBuffer::<i32>::from_lengths([key.len()]);
        one.finish_with_key(Arc::new(BinaryArray::new(
            offsets,
            Buffer::from_vec(key),
            None,
        )))
    }

    /// Turn the appended rows into a [`RecordBatch`] of [`schema`], consuming the builders.
    pub fn finish(mut self) -> Result<RecordBatch, ArrowError> {
        let key = Arc::new(self.key.finish());
        self.finish_with_key(key)
    }

    /// [`Self::finish`] with `key` as the key column.
    fn finish_with_key(mut self, key: ArrayRef) -> Result<RecordBatch, ArrowError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.cluster.finish()),
            Arc::new(self.batch.finish()),
            Arc::new(self.instance.finish()),
            Arc::new(self.db.finish()),
            key,
            Arc::new(self.r#type.finish()),
            Arc::new(self.member_count.finish()),
            Arc::new(self.rdb_size.finish()),
            Arc::new(self.encoding.finish()),
            Arc::new(self.expire_at.finish()),
            Arc::new(self.idle_seconds.finish()),
            Arc::new(self.freq.finish()),
            Arc::new(self.codis_slot.finish()),
            Arc::new(self.redis_slot.finish()),
            Arc::new(self.mem_size.finish()),
        ];
        RecordBatch::try_new(schema(), columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{BatchTs, Encoding, RecordType};
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{TimestampMillisecondType, UInt64Type};

    #[test]
    fn schema_order_and_nullability() {
        let s = schema();
        let names: Vec<&str> = s.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, crate::record::columns::names().collect::<Vec<_>>());
        for (i, f) in s.fields().iter().enumerate() {
            assert_eq!(f.is_nullable(), i >= 9, "{}", f.name());
        }
        assert_eq!(s.field(4).data_type(), &DataType::Binary);
        assert_eq!(
            s.field(1).data_type(),
            &DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
        );
        assert_eq!(
            s.field(9).data_type(),
            &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
        );
    }

    #[test]
    fn builds_a_batch() {
        let ctx = WriteContext {
            cluster: "c".into(),
            batch: BatchTs::from_nanos(7),
            instance: "i".into(),
        };
        let mut b = ColumnBuilders::with_capacity(2, 4, 1);
        let mut r = Record {
            db: 3,
            key: vec![0xff, 0x00],
            r#type: RecordType::Hash,
            member_count: 5,
            rdb_size: 40,
            encoding: Encoding::ListPackEx,
            expire_at_ms: Some(-1),
            idle_seconds: None,
            freq: Some(9),
            codis_slot: None,
            redis_slot: Some(16383),
            mem_size: Some(1234),
        };
        b.append(&r, &ctx);
        r.expire_at_ms = None;
        r.idle_seconds = Some(u64::MAX);
        b.append(&r, &ctx);
        assert_eq!((b.len(), b.key_bytes()), (2, 4));
        let batch = b.finish().expect("batch");
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), schema());
        let exp = batch.column(9).as_primitive::<TimestampMillisecondType>();
        assert_eq!((exp.value(0), exp.is_null(1)), (-1, true));
        let idle = batch.column(10).as_primitive::<UInt64Type>();
        assert_eq!((idle.is_null(0), idle.value(1)), (true, u64::MAX));
        assert_eq!(batch.column(8).as_string::<i32>().value(0), "list_pack_ex");
        assert_eq!(batch.column(4).as_binary::<i32>().value(0), &[0xff, 0x00]);
    }
}
