//! `--on-cluster`: a sharded ClickHouse of two real engines (scripts/clickhouse-test-env.sh
//! starts them, each with a `remote_servers` entry naming both native TCP ports).
//!
//! The test engines have no Keeper, so `ON CLUSTER` DDL and Replicated tables cannot run
//! there. The test creates the tables itself from rdbinsight's `--on-cluster` DDL: the
//! per-shard table on each engine with a non-replicated engine, the `Distributed` table and
//! the view as printed (without `ON CLUSTER`), and the markers and claims tables on the engine
//! the writer talks to. The `ON CLUSTER` text itself is checked in clickhouse_output.rs.

use crate::common;

use common::ch::{Shards, TestDb, batch, prepare_error, t1, write_instance};
use rdbinsight::output::Output;
use rdbinsight::output::clickhouse::schema::RECORDS_LOCAL_TABLE;
use rdbinsight::output::clickhouse::{ClickHouseConfig, ClickHouseOutput};

/// The two shards with the sharded schema, or `None` when ClickHouse tests are skipped.
async fn shards(test: &str) -> Option<Shards> {
    common::ch::base_url()?;
    let Some((urls, cluster)) = common::ch::shard_env() else {
        panic!(
            "RDBINSIGHT_TEST_CLICKHOUSE_SHARD_URLS and RDBINSIGHT_TEST_CLICKHOUSE_CLUSTER are not \
             set: run under scripts/clickhouse-test-env.sh (which starts two engines), or set \
             them for your own sharded ClickHouse, or RDBINSIGHT_SKIP_CLICKHOUSE_TESTS=1"
        )
    };
    Some(Shards::create(test, &urls, &cluster).await)
}

/// Every row lands exactly once across the shards, and the view (through the Distributed
/// table) shows the batch only once it is complete.
#[tokio::test]
async fn rows_land_once_across_shards_and_show_when_complete() {
    let Some(shards) = shards("shards").await else {
        return;
    };
    let mut output = shards.output();
    let b = batch("c1", t1());
    output.prepare_batch(&b).await.expect("prepare_batch");
    write_instance(&mut output, &b, "10.0.0.1:6379", 0..6000, true)
        .await
        .expect("instance 1");
    write_instance(&mut output, &b, "10.0.0.2:6379", 6000..10_000, true)
        .await
        .expect("instance 2");
    // Foreground inserts: every row is already on its shard, none visible.
    let counts = shards.local_counts().await;
    assert_eq!(counts.iter().sum::<u64>(), 10_000, "{counts:?}");
    assert!(
        counts.iter().all(|&n| n > 2000),
        "both shards hold rows: {counts:?}"
    );
    let first = &shards.dbs[0];
    assert_eq!(first.count("redis_records_view").await, 0);
    output.finalize_batch().await.expect("finalize_batch");
    assert_eq!(
        first
            .q("SELECT count(), uniqExact(instance, db, key) FROM {db}.redis_records_view")
            .await,
        "10000\t10000"
    );
    assert_eq!(
        first
            .q("SELECT _shard_num, count() FROM {db}.redis_records_raw GROUP BY 1 ORDER BY 1")
            .await,
        format!("1\t{}\n2\t{}", counts[0], counts[1])
    );
    // The sharding key: a key is on the shard its hash names.
    assert_eq!(
        first
            .q("SELECT countIf(cityHash64(cluster, instance, key) % 2 + 1 != _shard_num) FROM {db}.redis_records_raw")
            .await,
        "0"
    );
    shards.drop_all().await;
}

/// A shard that cannot take its rows fails the INSERT (foreground mode), never a write queued
/// on disk for later.
#[tokio::test]
async fn a_failed_shard_is_an_error() {
    let Some(shards) = shards("badshard").await else {
        return;
    };
    let mut output = shards.output();
    let b = batch("c1", t1());
    output.prepare_batch(&b).await.expect("prepare_batch");
    shards.dbs[1]
        .exec(&format!("DROP TABLE {{db}}.{RECORDS_LOCAL_TABLE}"))
        .await;
    let err = write_instance(&mut output, &b, "i1", 0..5000, true)
        .await
        .expect_err("shard 2 has no table")
        .to_string();
    assert!(err.contains("failed for instance i1"), "{err}");
    assert!(err.contains("Code: "), "{err}");
    assert!(err.contains(RECORDS_LOCAL_TABLE), "{err}");
    // Nothing queued for a later asynchronous send.
    assert_eq!(
        shards.dbs[0]
            .q(&format!(
                "SELECT count() FROM system.distribution_queue WHERE database = '{}'",
                shards.dbs[0].name
            ))
            .await,
        "0"
    );
    shards.drop_all().await;
}

/// The records table must be Distributed exactly when --on-cluster is given.
#[tokio::test]
async fn on_cluster_and_table_kind_must_agree() {
    let Some(shards) = shards("kind").await else {
        return;
    };
    let first = &shards.dbs[0];
    let err = prepare_error(&mut first.output(false), &batch("c1", t1())).await;
    assert!(
        err.contains("is a Distributed table: pass --on-cluster"),
        "{err}"
    );
    let single = TestDb::new("kind_single").expect("engine");
    single
        .output(true)
        .prepare_batch(&batch("c1", t1()))
        .await
        .expect("single-server schema");
    let config = ClickHouseConfig::new(&single.url(), None, false, 30)
        .expect("url")
        .with_on_cluster(Some(&shards.cluster))
        .expect("cluster");
    let err = ClickHouseOutput::new(config)
        .expect("output")
        .prepare_batch(&batch("c1", common::ch::t2()))
        .await
        .expect_err("--on-cluster on a single-server schema")
        .to_string();
    assert!(err.contains("lacks table redis_records_raw_local"), "{err}");
    single.drop_db().await;
    shards.drop_all().await;
}
