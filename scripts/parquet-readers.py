#!/usr/bin/env python3
"""Read an rdbinsight Parquet directory with each common reader, as the README's recipes say.

    parquet-readers.py DIR [READER ...]

READER: duckdb, pyarrow, pandas, polars, clickhouse (the ClickHouse engine's file() table
function, through chdb). Without READER, every reader whose Python package is importable runs.
Prints one JSON object per reader: the rows read, the distinct clusters and batches (batches
as RFC 3339 UTC with 9 fractional digits) and the logical type each reader gave the `cluster`
and `batch` columns (normalized: "text", "timestamp", or the reader's own name for anything
else). tests/offline/parquet_readers.rs checks them against the dump.

The recipe of each reader is the call after `# RECIPE <reader>: <call>` (with DIR for the
directory); the README quotes each such call (tests/offline/parquet_readers.rs checks both).
Why the options: the directory names repeat the `cluster` and `batch` columns as Hive-style
partitions (`cluster=<name>/batch=<slug>`). A reader that applies Hive partitioning lets the
directory text win (DuckDB: `batch` becomes VARCHAR) or refuses the clash (pyarrow, pandas:
"Field cluster has incompatible types"), so each recipe turns partition discovery off and uses
the columns stored in the files. Globbing `cluster=*/batch=*/*.parquet` (or letting pyarrow skip
`_`-prefixed entries) keeps out the `_tmp_batch=` directories of dumps still running.
"""

import datetime
import json
import sys


def iso_ns(ns):
    """Unix nanoseconds as RFC 3339 UTC with 9 fractional digits."""
    secs, frac = divmod(int(ns), 10**9)
    t = datetime.datetime.fromtimestamp(secs, tz=datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def summary(reader, rows, clusters, batches, cluster_type, batch_type):
    return {
        "reader": reader,
        "rows": rows,
        "clusters": sorted(set(clusters)),
        "batches": sorted({iso_ns(b) for b in batches}),
        "cluster_type": cluster_type,
        "batch_type": batch_type,
    }


def read_duckdb(d):
    import duckdb

    # RECIPE duckdb: read_parquet('DIR/cluster=*/batch=*/*.parquet', hive_partitioning = false)
    rel = duckdb.sql(f"SELECT * FROM read_parquet('{d}/cluster=*/batch=*/*.parquet', hive_partitioning = false)")
    types = dict(zip(rel.columns, (str(t) for t in rel.types)))
    rows = rel.aggregate("count(*)").fetchall()[0][0]
    pairs = rel.aggregate("cluster, epoch_ns(batch)", "cluster, batch").fetchall()
    norm = {"VARCHAR": "text", "TIMESTAMP_NS WITH TIME ZONE": "timestamp", "TIMESTAMPTZ_NS": "timestamp"}
    return summary(
        "duckdb",
        rows,
        [c for c, _ in pairs],
        [b for _, b in pairs],
        norm.get(types["cluster"], types["cluster"]),
        norm.get(types["batch"], types["batch"]),
    )


def arrow_types(schema):
    import pyarrow as pa

    def norm(t):
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return "text"
        if pa.types.is_timestamp(t) and t.tz in ("UTC", "+00:00", "Etc/UTC"):
            return "timestamp"
        return str(t)

    return norm(schema.field("cluster").type), norm(schema.field("batch").type)


def read_pyarrow(d):
    import pyarrow.parquet as pq

    # RECIPE pyarrow: pq.read_table('DIR', partitioning=None)
    table = pq.read_table(d, partitioning=None)
    cluster_type, batch_type = arrow_types(table.schema)
    return summary(
        "pyarrow",
        table.num_rows,
        table.column("cluster").to_pylist(),
        table.column("batch").cast("int64").to_pylist(),
        cluster_type,
        batch_type,
    )


def read_pandas(d):
    import pandas as pd

    # RECIPE pandas: pd.read_parquet('DIR', partitioning=None)
    df = pd.read_parquet(d, partitioning=None)
    cluster_type = "text" if pd.api.types.is_string_dtype(df["cluster"]) else str(df["cluster"].dtype)
    batch_dtype = df["batch"].dtype
    batch_type = (
        "timestamp"
        if isinstance(batch_dtype, pd.DatetimeTZDtype) and str(batch_dtype.tz) == "UTC"
        else str(batch_dtype)
    )
    batches = [t.value for t in df["batch"]]  # pandas.Timestamp: exact nanoseconds
    return summary("pandas", len(df), list(df["cluster"]), batches, cluster_type, batch_type)


def read_polars(d):
    import polars as pl

    # RECIPE polars: pl.read_parquet('DIR/cluster=*/batch=*/*.parquet', hive_partitioning=False)
    df = pl.read_parquet(f'{d}/cluster=*/batch=*/*.parquet', hive_partitioning=False)
    cluster_type = "text" if df.schema["cluster"] == pl.String else str(df.schema["cluster"])
    bt = df.schema["batch"]
    batch_type = (
        "timestamp"
        if isinstance(bt, pl.Datetime) and bt.time_zone == "UTC" and bt.time_unit == "ns"
        else str(bt)
    )
    batches = df["batch"].cast(pl.Int64).to_list()  # exact nanoseconds
    return summary("polars", df.height, df["cluster"].to_list(), batches, cluster_type, batch_type)


def read_clickhouse(d):
    import chdb

    # RECIPE clickhouse: file('DIR/cluster=*/batch=*/*.parquet', Parquet) SETTINGS use_hive_partitioning = 0
    sql = f"SELECT * FROM file('{d}/cluster=*/batch=*/*.parquet', Parquet) SETTINGS use_hive_partitioning = 0"
    out = chdb.query(
        f"SELECT count(), groupUniqArray(cluster), groupUniqArray(toString(toUnixTimestamp64Nano(batch))),"
        f" toTypeName(any(cluster)), toTypeName(any(batch)) FROM ({sql})",
        "JSONCompact",
    )
    row = json.loads(str(out))["data"][0]
    rows, clusters, batches, cluster_type, batch_type = row
    return summary(
        "clickhouse",
        int(rows),
        clusters,
        batches,
        "text" if cluster_type == "String" else cluster_type,
        "timestamp" if batch_type == "DateTime64(9, 'UTC')" else batch_type,
    )


READERS = {
    "duckdb": (read_duckdb, "duckdb"),
    "pyarrow": (read_pyarrow, "pyarrow"),
    "pandas": (read_pandas, "pandas"),
    "polars": (read_polars, "polars"),
    "clickhouse": (read_clickhouse, "chdb"),
}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    d = sys.argv[1].rstrip("/")
    names = sys.argv[2:]
    if not names:
        import importlib.util

        names = [n for n, (_, module) in READERS.items() if importlib.util.find_spec(module)]
    for name in names:
        fn, _ = READERS[name]
        print(json.dumps(fn(d)), flush=True)


if __name__ == "__main__":
    main()
