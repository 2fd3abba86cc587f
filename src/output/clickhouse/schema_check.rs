//! Is the database's schema what rdbinsight writes and reads? [`SchemaCheck`] answers before a
//! batch (and before `misc clickhouse-drop-batch`), from `system.tables` and `system.columns`:
//!
//! * which of the schema's objects ([`super::schema::schema_objects`]) exist in the URL's
//!   database, with their columns (`inspect`);
//! * when something is missing or out of date (a deployment of an earlier release),
//!   `--auto-create-tables` runs the schema's DDL and migrations (all idempotent; and creates
//!   the database); otherwise it is an error naming what is missing and pointing at
//!   `rdbinsight misc clickhouse-schema` and the flag (`create_or_migrate`);
//! * every object the batch touches (records, markers, claims, summaries, view; with
//!   `--on-cluster` also the per-shard table) has the columns rdbinsight writes or reads, with
//!   their types; the records table's sorting key ends with the attempt; the view reads only
//!   the winning attempt; the records table is a `Distributed` one exactly when `--on-cluster`
//!   is given; the claims and markers tables deduplicate inserts (`check_objects`: every
//!   problem in one error);
//! * a batch timestamp older than the records table's TTL is refused (every row would be
//!   dropped as soon as it is stored; `check_ttl`).
//!
//! [`super::schema`] says what the schema is; this file checks a server against it.

use serde::Deserialize;

use super::config::{ClickHouseConfig, on_cluster_flag};
use super::conn::Conn;
use super::schema::{
    self, BATCHES_TABLE, CLAIMS_TABLE, RECORDS_LOCAL_TABLE, RECORDS_TABLE, quote_ident,
};
use crate::output::{BatchContext, OutputError};
use crate::record::BatchTs;

/// A table or view as `system.tables` describes it.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct TableInfo {
    name: String,
    engine: String,
    create_table_query: String,
    sorting_key: String,
}

/// A column as `system.columns` describes it.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct ColumnInfo {
    table: String,
    name: String,
    #[serde(rename = "type")]
    ty: String,
}

/// What `inspect` found: the schema objects that exist and their columns; `None`: not even
/// the database.
type Found = Option<(Vec<TableInfo>, Vec<ColumnInfo>)>;

/// The schema checks of one ClickHouse output (its connection and configuration).
pub(super) struct SchemaCheck<'a> {
    conn: &'a Conn,
    config: &'a ClickHouseConfig,
}

impl<'a> SchemaCheck<'a> {
    pub(super) fn new(conn: &'a Conn, config: &'a ClickHouseConfig) -> Self {
        SchemaCheck { conn, config }
    }

    /// Before a batch: inspect, refuse a batch older than the TTL, create or migrate (with
    /// `--auto-create-tables`), then check every object.
    pub(super) async fn prepare(&self, batch: &BatchContext) -> Result<(), OutputError> {
        let mut found = self.inspect().await?;
        let tables: &[TableInfo] = found.as_ref().map_or(&[], |(t, _)| t);
        self.check_ttl(batch, tables)?;
        if self.create_or_migrate(&found).await? {
            found = self.inspect().await?;
        }
        let (tables, columns) = found.as_ref().map_or((&[][..], &[][..]), |(t, c)| (t, c));
        self.check_objects(tables, columns)
    }

    /// Before dropping a batch: the database exists and every object is as rdbinsight needs
    /// (nothing is created).
    pub(super) async fn existing(&self) -> Result<(), OutputError> {
        let found = self.inspect().await?;
        let Some((tables, columns)) = &found else {
            return Err(OutputError::Refused(format!(
                "ClickHouse {}: the database {} does not exist",
                self.conn.url,
                quote_ident(&self.conn.db)
            )));
        };
        self.check_objects(tables, columns)
    }

    /// The stored objects rdbinsight uses, in creation order.
    fn objects(&self) -> Vec<schema::SchemaObject> {
        schema::schema_objects(
            Some(&self.config.url.database),
            self.config.ttl_days,
            self.config.on_cluster.as_deref(),
        )
    }

    /// The schema objects that exist (`None`: not even the database), and their columns.
    async fn inspect(&self) -> Result<Found, OutputError> {
        let conn = self.conn;
        let url = &conn.url;
        let databases: u64 = conn
            .run(
                format!("cannot query ClickHouse at {url}"),
                conn.admin
                    .query("SELECT count() FROM system.databases WHERE name = ?")
                    .bind(conn.db.as_str())
                    .fetch_one(),
            )
            .await?;
        if databases == 0 {
            return Ok(None);
        }
        let names: Vec<&str> = self.objects().iter().map(|o| o.name).collect();
        let tables: Vec<TableInfo> = system_rows(
            conn,
            "tables",
            "SELECT name, engine, create_table_query, sorting_key FROM system.tables \
             WHERE database = ? AND has(?, name)",
            &names,
        )
        .await?;
        let columns: Vec<ColumnInfo> = system_rows(
            conn,
            "columns",
            "SELECT table, name, type FROM system.columns WHERE database = ? AND has(?, table)",
            &names,
        )
        .await?;
        Ok(Some((tables, columns)))
    }

    /// Refuse a batch older than the records table's TTL (`--ttl-days` when the table does not
    /// exist yet).
    fn check_ttl(&self, batch: &BatchContext, tables: &[TableInfo]) -> Result<(), OutputError> {
        let stored = self.stored_records();
        let (days, source) = match tables.iter().find(|t| t.name == stored) {
            Some(t) => match table_ttl_days(&t.create_table_query) {
                TableTtl::None => return Ok(()),
                TableTtl::Days(d) => (d, format!("the {d}-day TTL of {}", self.conn.table(stored))),
                TableTtl::Unknown => (
                    u64::from(self.config.ttl_days),
                    format!("--ttl-days {}", self.config.ttl_days),
                ),
            },
            None => (
                u64::from(self.config.ttl_days),
                format!("--ttl-days {}", self.config.ttl_days),
            ),
        };
        let ttl_nanos = i64::try_from(days)
            .unwrap_or(i64::MAX)
            .saturating_mul(86_400 * 1_000_000_000);
        let age = BatchTs::now().nanos().saturating_sub(batch.batch.nanos());
        if age > ttl_nanos {
            return Err(OutputError::Refused(format!(
                "the batch timestamp {} is {} days old, older than {source}: ClickHouse would \
                 drop every row as soon as it is stored. Use a recent --batch-timestamp (the \
                 default is the current time)",
                batch.batch,
                age / 86_400_000_000_000
            )));
        }
        Ok(())
    }

    /// With `--auto-create-tables`: create what is missing and migrate what an earlier release
    /// created (every statement of the schema; all idempotent), when something is missing or
    /// out of date. Without it, say what to do. Returns whether it ran the DDL.
    async fn create_or_migrate(&self, found: &Found) -> Result<bool, OutputError> {
        let db = &self.config.url.database;
        let objects = self.objects();
        let missing: Vec<_> = objects
            .iter()
            .filter(|o| {
                found
                    .as_ref()
                    .is_none_or(|(tables, _)| !tables.iter().any(|t| t.name == o.name))
            })
            .collect();
        let outdated = match found {
            Some((tables, columns)) if missing.is_empty() => {
                !self.problems(tables, columns).is_empty()
            }
            _ => false,
        };
        if missing.is_empty() && !outdated {
            return Ok(false);
        }
        let on = on_cluster_flag(self.config.on_cluster.as_deref());
        if !self.config.auto_create_tables {
            if missing.is_empty() {
                // check_objects names what is out of date.
                return Ok(false);
            }
            let what = if found.is_none() {
                format!("the database {} does not exist", quote_ident(db))
            } else {
                let list: Vec<String> = missing
                    .iter()
                    .map(|o| format!("{} {}", o.kind.as_str(), o.name))
                    .collect();
                format!("the database {} lacks {}", quote_ident(db), list.join(", "))
            };
            return Err(OutputError::Refused(format!(
                "ClickHouse {}: {what}. Create the schema with the DDL printed by \
                 `rdbinsight misc clickhouse-schema{on}` (run it in that database; it only \
                 adds what is missing, migrates tables of an earlier release and replaces the \
                 view), or pass --auto-create-tables",
                self.conn.url
            )));
        }
        let conn = self.conn;
        if found.is_none() {
            let on = conn
                .on_cluster
                .as_ref()
                .map(|c| format!(" ON CLUSTER {}", quote_ident(c)))
                .unwrap_or_default();
            conn.run(
                format!("cannot create the database {}", quote_ident(db)),
                conn.admin
                    .query(&format!(
                        "CREATE DATABASE IF NOT EXISTS {}{on}",
                        quote_ident(db)
                    ))
                    .execute(),
            )
            .await?;
            tracing::info!("created ClickHouse database {db}");
        }
        // Tables before the view (the order of `schema_objects`); each object's migration
        // right after its CREATE.
        for object in &objects {
            let created = missing.iter().any(|m| m.name == object.name);
            for (i, statement) in std::iter::once(&object.ddl)
                .chain(&object.migrate)
                .enumerate()
            {
                let doing = if i == 0 { "create" } else { "migrate" };
                // `query` treats `?` as a bind placeholder; `??` is a literal `?`.
                let sql = statement.replace('?', "??");
                conn.run(
                    format!(
                        "cannot {doing} {} {}.{} (statement: {})",
                        object.kind.as_str(),
                        db,
                        object.name,
                        statement.lines().next().unwrap_or_default()
                    ),
                    conn.admin.query(&sql).execute(),
                )
                .await?;
            }
            let done = if created {
                "created"
            } else {
                "brought up to date"
            };
            tracing::info!(
                "{done} ClickHouse {} {db}.{}",
                object.kind.as_str(),
                object.name
            );
        }
        Ok(true)
    }

    /// Every object with the columns and engine rdbinsight needs; all problems in one error.
    fn check_objects(
        &self,
        tables: &[TableInfo],
        columns: &[ColumnInfo],
    ) -> Result<(), OutputError> {
        let problems = self.problems(tables, columns);
        if problems.is_empty() {
            return Ok(());
        }
        let on = on_cluster_flag(self.config.on_cluster.as_deref());
        Err(OutputError::Refused(format!(
            "ClickHouse {}: the schema is not what rdbinsight needs: {}. A deployment of an \
             earlier rdbinsight is migrated by --auto-create-tables or by the DDL of \
             `rdbinsight misc clickhouse-schema{on}` (idempotent); compare with it otherwise",
            self.conn.url,
            problems.join("; ")
        )))
    }

    /// What is missing or out of date in the objects rdbinsight uses.
    fn problems(&self, tables: &[TableInfo], columns: &[ColumnInfo]) -> Vec<String> {
        let mut problems = Vec::new();
        for object in self.objects() {
            let Some(table) = tables.iter().find(|t| t.name == object.name) else {
                problems.push(format!(
                    "{} {} is missing",
                    object.kind.as_str(),
                    object.name
                ));
                continue;
            };
            for (name, ty) in &object.columns {
                match columns
                    .iter()
                    .find(|c| c.table == object.name && c.name == *name)
                {
                    None => problems.push(format!("{}.{name} is missing", object.name)),
                    Some(c) if c.ty != *ty => {
                        // Development builds before 64-bit attempt ids stored them as text; a
                        // key column's type cannot be changed in place.
                        let dev = if *name == schema::ATTEMPT_COLUMN && c.ty == "String" {
                            " (a development build's text attempt ids: recreate the table)"
                        } else {
                            ""
                        };
                        problems.push(format!(
                            "{}.{name} is {}, expected {ty}{dev}",
                            object.name, c.ty
                        ))
                    }
                    Some(_) => {}
                }
            }
            if object.name == RECORDS_TABLE {
                let distributed = table.engine == "Distributed";
                match (&self.config.on_cluster, distributed) {
                    (None, true) => problems.push(format!(
                        "{RECORDS_TABLE} is a Distributed table: pass --on-cluster with its \
                         cluster, so that inserts are synchronous"
                    )),
                    (Some(c), false) => problems.push(format!(
                        "--on-cluster {c} was given but {RECORDS_TABLE} is a {} table, not \
                         Distributed",
                        table.engine
                    )),
                    _ => {}
                }
            }
            if (object.name == CLAIMS_TABLE || object.name == BATCHES_TABLE)
                && !table.engine.starts_with("Replicated")
                && !table
                    .create_table_query
                    .contains("non_replicated_deduplication_window")
            {
                let why = if object.name == CLAIMS_TABLE {
                    "makes batch claims exclusive"
                } else {
                    "makes the first completion marker of a batch win"
                };
                problems.push(format!(
                    "{} does not deduplicate inserts, which {why}: ALTER TABLE {} MODIFY \
                     SETTING non_replicated_deduplication_window = {}",
                    object.name,
                    self.conn.table(object.name),
                    schema::CLAIMS_DEDUP_WINDOW
                ));
            }
            if object.name == self.stored_records()
                && !table.sorting_key.is_empty()
                && table.sorting_key.replace(' ', "")
                    != schema::records_sorting_key().replace(' ', "")
            {
                problems.push(format!(
                    "the sorting key of {} is ({}), expected ({})",
                    object.name,
                    table.sorting_key,
                    schema::records_sorting_key()
                ));
            }
            if object.kind == schema::ObjectKind::View
                && !schema::view_is_current(&table.create_table_query)
            {
                problems.push(format!(
                    "view {} shows every attempt's rows (created by an earlier rdbinsight)",
                    object.name
                ));
            }
        }
        problems
    }

    /// The table that stores the rows (the per-shard one with `--on-cluster`).
    fn stored_records(&self) -> &'static str {
        if self.config.on_cluster.is_some() {
            RECORDS_LOCAL_TABLE
        } else {
            RECORDS_TABLE
        }
    }
}

/// What `TTL` a table has.
#[derive(Debug, PartialEq, Eq)]
enum TableTtl {
    None,
    Days(u64),
    Unknown,
}

/// The `toIntervalDay(N)` of a table's TTL, as `system.tables.create_table_query` shows it.
fn table_ttl_days(create: &str) -> TableTtl {
    let Some(i) = create.find(" TTL ") else {
        return TableTtl::None;
    };
    let ttl = &create[i..];
    let Some(j) = ttl.find("toIntervalDay(") else {
        return TableTtl::Unknown;
    };
    let digits: String = ttl[j + "toIntervalDay(".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().map_or(TableTtl::Unknown, TableTtl::Days)
}

/// Rows of a `system` table (`sql` binds the database, then the object `names`) about
/// rdbinsight's objects; `what` names them in the error.
async fn system_rows<T>(
    conn: &Conn,
    what: &str,
    sql: &str,
    names: &[&str],
) -> Result<Vec<T>, OutputError>
where
    T: clickhouse::RowOwned + clickhouse::RowRead,
{
    conn.run(
        format!("cannot list the {what} of {}", conn.url),
        conn.admin
            .query(sql)
            .bind(conn.db.as_str())
            .bind(names)
            .fetch_all(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_of_a_table() {
        assert_eq!(
            table_ttl_days(
                "CREATE TABLE d.t (`batch` DateTime64(9, 'UTC')) ENGINE = ReplacingMergeTree \
                 ORDER BY batch TTL toDateTime(batch) + toIntervalDay(7) SETTINGS index_granularity = 8192"
            ),
            TableTtl::Days(7)
        );
        assert_eq!(
            table_ttl_days("CREATE TABLE d.t (x UInt8) ENGINE = MergeTree ORDER BY x"),
            TableTtl::None
        );
        assert_eq!(
            table_ttl_days(
                "CREATE TABLE d.t (x UInt8) ENGINE = MergeTree ORDER BY x TTL toDateTime(batch) + toIntervalMonth(1)"
            ),
            TableTtl::Unknown
        );
    }
}
