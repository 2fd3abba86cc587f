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

/// Resolve the source: discover a cluster's or Codis's instances, name the cluster.
pub fn plan(cmd: &SourceCommand) -> anyhow::Result<SourcePlan> {
    let (spec, conn, cluster) = match cmd {
        SourceCommand::FromFile(a) => (
            Spec::File {
                path: a.path.clone(),
                instance: a.instance.clone(),
            },
            None,
            Some(&a.cluster),
        ),
        SourceCommand::FromStandalone(a) => (
            Spec::Standalone {
                addr: a.addr.clone(),
            },
            Some(&a.conn),
            Some(&a.cluster),
        ),
        SourceCommand::FromCluster(a) => (
            Spec::Cluster {
                seeds: a.nodes.clone(),
                require_slave: a.require_slave,
            },
            Some(&a.conn),
            Some(&a.cluster),
        ),
        SourceCommand::FromCodis(a) => (
            Spec::Codis {
                dashboard: a.dashboard.clone(),
                require_slave: a.require_slave,
            },
            Some(&a.conn),
            a.cluster.as_ref(),
        ),
    };
    let options = match conn {
        Some(conn) => connection_options(conn)?,
        None => ConnectionOptions::default(),
    };
    let resolved = spec.resolve(&options)?;
    let cluster = match (cluster, resolved.product_name) {
        (Some(c), _) => c.clone(),
        (None, Some(p)) => p,
        (None, None) => {
            bail!("the Codis dashboard reports no product name; name the cluster with --cluster")
        }
    };
    Ok(SourcePlan {
        cluster,
        instances: resolved.instances,
    })
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
