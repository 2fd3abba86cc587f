//! The integration tests that need the ClickHouse test engine (`scripts/clickhouse-test-env.sh`
//! or `RDBINSIGHT_TEST_CLICKHOUSE_URL`; `RDBINSIGHT_SKIP_CLICKHOUSE_TESTS=1` skips those parts),
//! several also a real `redis-server` (the RDBs they load are written by one), one test binary
//! (`scripts/clickhouse-test-env.sh cargo test --test clickhouse`; one file with
//! `... --test clickhouse clickhouse_faults::`): the ClickHouse output, its attempts and faults,
//! the 2-shard cluster, the report from both stores, and signals during dumps into every output.

#[path = "../common/mod.rs"]
mod common;

mod clickhouse_attempts;
mod clickhouse_cluster;
mod clickhouse_faults;
mod clickhouse_output;
mod report;
mod signals;
