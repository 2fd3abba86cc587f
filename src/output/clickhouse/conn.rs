//! [`Conn`]: the clients and names every batch-level request (schema checks, claims, markers,
//! deletes) needs, and [`Conn::run`], which bounds a request by `--ch-response-timeout` and
//! turns its failure into one line.

use std::future::Future;

use clickhouse::Client;

use super::config::{ClickHouseConfig, Timeouts};
use super::error::{Step, ch_error, response_timeout};
use super::schema::{self, quote_ident};
use crate::output::OutputError;

/// Clients and names for batch-level requests.
#[derive(Clone)]
pub struct Conn {
    /// No default database: `system.*` queries and DDL (the database may not exist yet).
    pub admin: Client,
    /// Default database = the URL's: inserts of markers and claims.
    pub client: Client,
    /// The URL, password redacted, for messages.
    pub url: String,
    pub db: String,
    pub timeouts: Timeouts,
    pub on_cluster: Option<String>,
}

impl Conn {
    /// The clients for `config` (nothing connects yet).
    pub fn new(config: &ClickHouseConfig) -> Result<Self, OutputError> {
        let base = super::http::client(config).map_err(OutputError::Misuse)?;
        let mut admin = base.with_url(config.url.endpoint());
        if let Some(user) = &config.url.user {
            admin = admin.with_user(user.clone());
        }
        if let Some(password) = &config.url.password {
            admin = admin.with_password(password.clone());
        }
        let client = admin.clone().with_database(config.url.database.clone());
        Ok(Conn {
            admin,
            client,
            url: config.url.to_string(),
            db: config.url.database.clone(),
            timeouts: config.timeouts,
            on_cluster: config.on_cluster.clone(),
        })
    }

    /// `` `db`.`name` ``.
    pub fn table(&self, name: &str) -> String {
        format!("{}.{}", quote_ident(&self.db), quote_ident(name))
    }

    /// The table that holds the rows (the per-shard table with `--on-cluster`), as the target
    /// of a `DELETE`: `` `db`.`t` `` or `` `db`.`t_local` ON CLUSTER `c` ``.
    pub fn rows_delete_target(&self) -> String {
        match &self.on_cluster {
            None => self.table(schema::RECORDS_TABLE),
            Some(c) => format!(
                "{} ON CLUSTER {}",
                self.table(schema::RECORDS_LOCAL_TABLE),
                quote_ident(c)
            ),
        }
    }

    /// Await `request`, at most `--ch-response-timeout`; a failure becomes `context: cause`.
    pub async fn run<T>(
        &self,
        context: impl std::fmt::Display,
        request: impl Future<Output = Result<T, clickhouse::error::Error>>,
    ) -> Result<T, OutputError> {
        let timeout = self.timeouts.response;
        match tokio::time::timeout(timeout, request).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(ch_error(context, &e, Step::Response, timeout)),
            Err(_) => Err(response_timeout(context, timeout)),
        }
    }
}
