//! How the source arguments become the instances to dump: a [`Spec`] and the
//! [`ConnectionOptions`] (TLS files read and checked here, before any connection), resolved by
//! the source module, and the cluster name.

use std::time::Duration;

use anyhow::bail;

use super::dump::{ConnectionArgs, SourceCommand};
use rdbinsight::source::{
    ClientCertFiles, ConnectionOptions, Instance, Spec, TlsConfig, TlsOptions,
};

/// The instances of a source and the cluster they belong to.
#[derive(Debug)]
pub struct SourcePlan {
    /// The `cluster` column.
    pub cluster: String,
    pub instances: Vec<Instance>,
}

/// Connection settings for live sources (the same for every instance).
pub fn connection_options(conn: &ConnectionArgs) -> anyhow::Result<ConnectionOptions> {
    let client_cert = match (&conn.tls_cert, &conn.tls_key) {
        (Some(cert), Some(key)) => Some(ClientCertFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        (None, None) => None,
        // clap requires both; RDBINSIGHT_TLS_CERT without RDBINSIGHT_TLS_KEY ends here too.
        (Some(_), None) => bail!("--tls-cert needs --tls-key (RDBINSIGHT_TLS_KEY)"),
        (None, Some(_)) => bail!("--tls-key needs --tls-cert (RDBINSIGHT_TLS_CERT)"),
    };
    let wants_tls = conn.tls || conn.tls_ca.is_some() || conn.tls_insecure || client_cert.is_some();
    let tls = if wants_tls {
        if conn.tls_insecure {
            tracing::warn!("TLS certificates are not verified (--tls-insecure)");
        }
        Some(TlsConfig::new(&TlsOptions {
            ca_file: conn.tls_ca.clone(),
            insecure: conn.tls_insecure,
            client_cert,
        })?)
    } else {
        None
    };
    Ok(ConnectionOptions {
        username: conn.username.clone(),
        password: conn.password.clone(),
        tls,
        connect_timeout: Duration::from_secs(conn.connect_timeout),
        read_timeout: Duration::from_secs(conn.read_timeout),
    })
}

/// A source ready to resolve: what to read, with which options, under which cluster name.
#[derive(Debug)]
pub struct PreparedSource {
    spec: Spec,
    options: ConnectionOptions,
    /// `--cluster` (Codis may leave it to the dashboard's product name).
    cluster: Option<String>,
}

/// The `--cluster` given, if any.
pub fn cluster_arg(cmd: &SourceCommand) -> Option<String> {
    match cmd {
        SourceCommand::FromFile(a) => Some(a.cluster.clone()),
        SourceCommand::FromStandalone(a) => Some(a.cluster.clone()),
        SourceCommand::FromCluster(a) => Some(a.cluster.clone()),
        SourceCommand::FromCodis(a) => a.cluster.clone(),
    }
}

/// The source's spec and connection options; TLS files are read and checked here (local and
/// quick), before any connection.
pub fn prepare(cmd: &SourceCommand) -> anyhow::Result<PreparedSource> {
    let spec = match cmd {
        SourceCommand::FromFile(a) => Spec::File {
            path: a.path.clone(),
            instance: a.instance.clone(),
        },
        SourceCommand::FromStandalone(a) => Spec::Standalone {
            addr: a.addr.clone(),
        },
        SourceCommand::FromCluster(a) => Spec::Cluster {
            seeds: a.nodes.clone(),
            require_slave: a.require_slave,
        },
        SourceCommand::FromCodis(a) => Spec::Codis {
            dashboard: a.dashboard.clone(),
            require_slave: a.require_slave,
        },
    };
    let options = match cmd.live() {
        Some(live) => connection_options(&live.conn)?,
        None => ConnectionOptions::default(),
    };
    Ok(PreparedSource {
        spec,
        options,
        cluster: cluster_arg(cmd),
    })
}

impl PreparedSource {
    /// The instances (discovering a cluster's or Codis's: blocking network I/O) and the
    /// cluster name.
    pub fn resolve(self) -> anyhow::Result<SourcePlan> {
        let resolved = self.spec.resolve(&self.options)?;
        let cluster = match (self.cluster, resolved.product_name) {
            (Some(c), _) => c,
            (None, Some(p)) => p,
            (None, None) => bail!(
                "the Codis dashboard reports no product name; name the cluster with --cluster"
            ),
        };
        Ok(SourcePlan {
            cluster,
            instances: resolved.instances,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_options_from_args() {
        let mut args = ConnectionArgs {
            username: Some("u".into()),
            password: Some("p".into()),
            connect_timeout: 5,
            read_timeout: 90,
            ..Default::default()
        };
        let opts = connection_options(&args).expect("valid");
        assert!(opts.tls.is_none());
        assert_eq!(opts.connect_timeout, Duration::from_secs(5));
        assert_eq!(opts.read_timeout, Duration::from_secs(90));
        assert_eq!(opts.username.as_deref(), Some("u"));

        args.tls_insecure = true;
        let tls = connection_options(&args)
            .expect("valid")
            .tls
            .expect("--tls-insecure implies TLS");
        assert!(!tls.has_client_cert());

        // A missing CA file is named.
        args.tls_insecure = false;
        args.tls_ca = Some("/nonexistent/ca.pem".into());
        let err = format!("{:#}", connection_options(&args).expect_err("no such file"));
        assert!(err.contains("--tls-ca /nonexistent/ca.pem"), "{err}");

        // A certificate without its key.
        args.tls_ca = None;
        args.tls_cert = Some("/nonexistent/cert.pem".into());
        let err = connection_options(&args).expect_err("no key").to_string();
        assert!(err.contains("--tls-key"), "{err}");
    }
}
