//! `--on-cluster`: a sharded ClickHouse of two real engines (scripts/clickhouse-test-env.sh
//! starts them, each with a `remote_servers` entry naming both native TCP ports).
//!
//! The test engines have no Keeper, so `ON CLUSTER` DDL and Replicated tables cannot run
//! there. The test creates the tables itself from rdbinsight's `--on-cluster` DDL: the
//! per-shard table on each engine with a non-replicated engine, the `Distributed` table and
//! the view as printed (without `ON CLUSTER`), and the markers and claims tables on the engine
//! the writer talks to. The `ON CLUSTER` text itself is checked in clickhouse_output.rs.

mod common;

use common::ch::{TestDb, batch, record, t1};
use rdbinsight::output::clickhouse::schema::{self, RECORDS_LOCAL_TABLE};
use rdbinsight::output::clickhouse::{ClickHouseConfig, ClickHouseOutput};
use rdbinsight::output::{BatchContext, ChunkWriter, Output, OutputError};

/// The shard URLs and the cluster name, or `None` when ClickHouse tests are skipped.
fn cluster_env() -> Option<(Vec<String>, String)> {
    common::ch::base_url()?;
    let urls = std::env::var("RDBINSIGHT_TEST_CLICKHOUSE_SHARD_URLS").ok();
    let cluster = std::env::var("RDBINSIGHT_TEST_CLICKHOUSE_CLUSTER").ok();
    match (urls, cluster) {
        (Some(u), Some(c)) if !u.is_empty() && !c.is_empty() => Some((
            u.split(',')
                .map(|s| s.trim().trim_end_matches('/').to_string())
                .collect(),
            c,
        )),
        _ => panic!(
            "RDBINSIGHT_TEST_CLICKHOUSE_SHARD_URLS and RDBINSIGHT_TEST_CLICKHOUSE_CLUSTER are not \
             set: run under scripts/clickhouse-test-env.sh (which starts two engines), or set \
             them for your own sharded ClickHouse, or RDBINSIGHT_SKIP_CLICKHOUSE_TESTS=1"
        ),
    }
}

/// The `--on-cluster` DDL of `name`, runnable without Keeper: no `ON CLUSTER`, and the
/// per-shard table non-replicated.
fn without_keeper(db: &str, cluster: &str, name: &str) -> String {
    let object = schema::schema_objects(Some(db), 30, Some(cluster))
        .into_iter()
        .find(|o| o.name == name)
        .expect("object");
    let mut ddl = object.ddl.replace(&format!(" ON CLUSTER `{cluster}`"), "");
    if name == RECORDS_LOCAL_TABLE {
        ddl = ddl.replace(
            "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')",
            "ReplacingMergeTree",
        );
    }
    assert!(!ddl.contains("Replicated"), "{ddl}");
    ddl
}

/// The markers and claims tables as on a single server.
fn single_server(db: &str, name: &str) -> String {
    schema::schema_objects(Some(db), 30, None)
        .into_iter()
        .find(|o| o.name == name)
        .expect("object")
        .ddl
}

struct Shards {
    dbs: Vec<TestDb>,
    cluster: String,
}

impl Shards {
    /// A database of one name on every shard, with the sharded schema.
    async fn new(test: &str) -> Option<Shards> {
        let (urls, cluster) = cluster_env()?;
        assert!(urls.len() >= 2, "two shards expected: {urls:?}");
        let name = common::ch::unique_name(test);
        let mut dbs = Vec::new();
        for url in &urls {
            let mut db = TestDb::on(url, test);
            db.name = name.clone();
            db.exec("CREATE DATABASE {db}").await;
            db.exec(&without_keeper(&name, &cluster, RECORDS_LOCAL_TABLE).replace('?', "??"))
                .await;
            dbs.push(db);
        }
        let first = &dbs[0];
        for ddl in [
            without_keeper(&name, &cluster, schema::RECORDS_TABLE),
            single_server(&name, schema::BATCHES_TABLE),
            single_server(&name, schema::CLAIMS_TABLE),
            without_keeper(&name, &cluster, schema::VIEW),
        ] {
            first.exec(&ddl).await;
        }
        Some(Shards { dbs, cluster })
    }

    fn output(&self) -> ClickHouseOutput {
        let config = ClickHouseConfig::new(&self.dbs[0].url(), None, false, 30)
            .expect("url")
            .with_on_cluster(Some(&self.cluster))
            .expect("cluster");
        ClickHouseOutput::new(config).expect("output")
    }

    /// Rows of the batch on each shard's local table.
    async fn local_counts(&self) -> Vec<u64> {
        let mut out = Vec::new();
        for db in &self.dbs {
            out.push(db.count(RECORDS_LOCAL_TABLE).await);
        }
        out
    }

    async fn drop_all(self) {
        for db in self.dbs {
            db.drop_db().await;
        }
    }
}

async fn write_instance(
    output: &mut ClickHouseOutput,
    b: &BatchContext,
    instance: &str,
    range: std::ops::Range<u64>,
) -> Result<(), OutputError> {
    let mut w = output.writer_for(b.write_context(instance))?;
    w.prepare_instance().await?;
    for i in range {
        w.write_record(&record(i)).await?;
    }
    w.finalize_instance().await
}

/// Every row lands exactly once across the shards, and the view (through the Distributed
/// table) shows the batch only once it is complete.
#[tokio::test]
async fn rows_land_once_across_shards_and_show_when_complete() {
    let Some(shards) = Shards::new("shards").await else {
        return;
    };
    let mut output = shards.output();
    let b = batch("c1", t1());
    output.prepare_batch(&b).await.expect("prepare_batch");
    write_instance(&mut output, &b, "10.0.0.1:6379", 0..6000)
        .await
        .expect("instance 1");
    write_instance(&mut output, &b, "10.0.0.2:6379", 6000..10_000)
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
    let Some(shards) = Shards::new("badshard").await else {
        return;
    };
    let mut output = shards.output();
    let b = batch("c1", t1());
    output.prepare_batch(&b).await.expect("prepare_batch");
    shards.dbs[1]
        .exec(&format!("DROP TABLE {{db}}.{RECORDS_LOCAL_TABLE}"))
        .await;
    let err = write_instance(&mut output, &b, "i1", 0..5000)
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
    let Some(shards) = Shards::new("kind").await else {
        return;
    };
    let first = &shards.dbs[0];
    let err = first
        .output(false)
        .prepare_batch(&batch("c1", t1()))
        .await
        .expect_err("Distributed without --on-cluster")
        .to_string();
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
