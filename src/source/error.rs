//! Source errors, typed by cause so that callers (and tests) can tell a timeout from a refusal,
//! a protocol violation or a TLS failure.
//!
//! Every error names what it concerns: the instance (`host:port`, or the file's instance name)
//! or the topology being discovered. Following the standard convention, a message never repeats
//! its underlying error: an I/O, TLS or HTTP error is the [`source()`](StdError::source) and
//! appears once in the error chain (`main` prints the chain on one line), e.g.
//! `127.0.0.1:6379: cannot connect to 127.0.0.1:6379: Connection refused (os error 111)`.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use rustls::AlertDescription;

/// An error from a source.
#[derive(Debug)]
pub enum SourceError {
    /// Opening, reaching or talking to one instance failed.
    Instance { instance: String, cause: Cause },
    /// Finding the instances of a Redis Cluster or Codis failed.
    Discovery {
        topology: Topology,
        cause: DiscoveryError,
    },
    /// The connection options cannot be used (unreadable or invalid TLS files).
    Options(OptionsError),
}

impl SourceError {
    /// The error of `instance`.
    pub fn instance(instance: impl Into<String>, cause: Cause) -> SourceError {
        SourceError::Instance {
            instance: instance.into(),
            cause,
        }
    }

    /// The cause, for an error of one instance.
    pub fn cause(&self) -> Option<&Cause> {
        match self {
            SourceError::Instance { cause, .. } => Some(cause),
            _ => None,
        }
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::Instance { instance, cause } => write!(f, "{instance}: {cause}"),
            SourceError::Discovery { topology, .. } => {
                write!(f, "cannot discover the {topology} topology")
            }
            SourceError::Options(e) => e.fmt(f),
        }
    }
}

impl StdError for SourceError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            // The instance and the cause's message are one line; the chain goes on with what
            // the cause wraps.
            SourceError::Instance { cause, .. } => cause.source(),
            SourceError::Discovery { cause, .. } => Some(cause),
            SourceError::Options(e) => e.source(),
        }
    }
}

impl From<OptionsError> for SourceError {
    fn from(e: OptionsError) -> Self {
        SourceError::Options(e)
    }
}

/// `error: cause: its cause: ...` on one line, as `main` prints errors.
pub fn chain(e: &dyn StdError) -> String {
    let mut line = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        next = cause.source();
    }
    line
}

/// Which kind of topology discovery failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    RedisCluster,
    Codis,
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Topology::RedisCluster => "Redis Cluster",
            Topology::Codis => "Codis",
        })
    }
}

/// Which of the user's timeouts fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    /// `--connect-timeout`: the TCP connection and the TLS handshake.
    Connect,
    /// `--read-timeout`: each reply of the handshake, then each read of the snapshot.
    Read,
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutKind::Connect => "--connect-timeout",
            TimeoutKind::Read => "--read-timeout",
        })
    }
}

/// Seconds as the user wrote them (`1s`, `0.3s`).
pub(super) fn secs(d: &Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// What went wrong with one instance.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    #[error("'{0}' is not HOST:PORT (IPv6 as [ADDR]:PORT)")]
    BadAddress(String),
    #[error("cannot resolve '{host}'")]
    Resolve {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("'{0}' resolves to no address")]
    NoAddress(String),
    /// A file or socket operation failed (`context` says which).
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// Nothing arrived within one of the user's timeouts.
    #[error("{context}: no answer within {} ({which})", secs(.after))]
    Timeout {
        context: String,
        which: TimeoutKind,
        after: Duration,
    },
    /// The server closed the connection (`context` says during what).
    #[error("{0}: the server closed the connection")]
    Closed(String),
    /// Bytes that break the protocol: not RESP, a reply that makes no sense for the command,
    /// a bad snapshot header.
    #[error("{0}")]
    Protocol(String),
    /// The server's own error reply to `command`.
    #[error("{}", server_error_message(.command, .reply))]
    ServerError { command: String, reply: String },
    /// `AUTH` was refused.
    #[error("{}", auth_error_message(.reply, *.with_user))]
    AuthFailed { reply: String, with_user: bool },
    /// The TLS layer failed (setup, handshake, or an alert from the server).
    #[error("{context}: {}", tls_message(.source, *.client_cert))]
    Tls {
        context: String,
        /// Whether a client certificate was offered (`--tls-cert`).
        client_cert: bool,
        #[source]
        source: rustls::Error,
    },
    #[error("'{host}' is not a valid TLS server name")]
    ServerName {
        host: String,
        #[source]
        source: rustls::pki_types::InvalidDnsNameError,
    },
    /// Options that cannot work together (e.g. `--username` without `--password`).
    #[error("{0}")]
    Usage(&'static str),
}

/// A clear message for an error reply to `command`.
fn server_error_message(command: &str, e: &str) -> String {
    if e.starts_with("NOAUTH") {
        format!("the server requires a password (--password / RDBINSIGHT_PASSWORD): {e}")
    } else if e.starts_with("WRONGPASS") {
        format!("authentication failed: {e}")
    } else if e.starts_with("LOADING") {
        format!("the server is still loading its dataset; retry later: {e}")
    } else if e.starts_with("NOPERM") {
        format!(
            "the user lacks the permission for {command} (replication needs +psync +replconf): {e}"
        )
    } else if e.starts_with("NOMASTERLINK") || e.starts_with("MASTERDOWN") {
        format!(
            "{command} refused: this replica is not connected to its master, so it cannot \
             serve a snapshot (read its master or wait for the link): {e}"
        )
    } else if e.contains("cluster support disabled") {
        format!("not a cluster node ({e}); use from-standalone for a standalone server")
    } else if e.contains("unknown command") {
        format!(
            "{command} failed: the server does not support replication commands (a proxy, or a \
             managed service that disables them?): {e}"
        )
    } else {
        format!("{command} failed: {e}")
    }
}

/// A clear message for a refused `AUTH`.
fn auth_error_message(e: &str, with_user: bool) -> String {
    if e.starts_with("WRONGPASS") || e.contains("invalid password") {
        if with_user {
            format!("authentication failed: wrong user name or password ({e})")
        } else {
            format!("authentication failed: wrong password ({e})")
        }
    } else if e.contains("without any password configured") {
        format!("authentication failed: the server has no password set; drop --password ({e})")
    } else if e.contains("wrong number of arguments") && with_user {
        format!(
            "authentication failed: the server does not support ACL users (Redis < 6); drop \
             --username ({e})"
        )
    } else {
        format!("authentication failed: {e}")
    }
}

/// What a TLS failure means for the user. The server's alert is all a client learns when the
/// server refuses it: TLS 1.3 servers that require a client certificate send
/// `certificate_required` (TLS 1.2 ones `handshake_failure`), and a certificate from a CA the
/// server does not trust draws `unknown_ca`, `bad_certificate` or `decrypt_error`.
fn tls_message(e: &rustls::Error, client_cert: bool) -> &'static str {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => {
            "the server requires a client certificate (--tls-cert/--tls-key)"
        }
        rustls::Error::AlertReceived(AlertDescription::HandshakeFailure) if !client_cert => {
            "the server refused the handshake; does it require a client certificate \
             (--tls-cert/--tls-key)?"
        }
        rustls::Error::AlertReceived(
            AlertDescription::UnknownCA
            | AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::DecryptError
            | AlertDescription::AccessDenied
            | AlertDescription::HandshakeFailure,
        ) if client_cert => {
            "the server rejected the client certificate (--tls-cert): is it signed by a CA the \
             server trusts (tls-ca-cert-file)?"
        }
        rustls::Error::AlertReceived(_) => "the server ended the TLS session",
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
            "the server's certificate is not signed by a trusted CA (--tls-ca FILE, or \
             --tls-insecure)"
        }
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => "the server's certificate does not name this host",
        rustls::Error::InvalidCertificate(_) => "the server's certificate is not acceptable",
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            "the server does not speak TLS here (is TLS enabled on this port?)"
        }
        _ => "TLS failed",
    }
}

/// Why topology discovery failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("no seed node given (--nodes)")]
    NoSeed,
    /// Every seed failed; each error with its whole chain.
    #[error("no seed node answered CLUSTER NODES: {}", .0.iter().map(|e| chain(e)).collect::<Vec<_>>().join("; "))]
    NoSeedAnswered(Vec<SourceError>),
    #[error("no master owns any slot (is the cluster set up?)")]
    NoSlotOwner,
    #[error("{shard} has no healthy replica ({replicas}) and --require-slave is set")]
    NoHealthyReplica { shard: String, replicas: String },
    #[error("{shard} has neither a healthy replica nor a healthy master (master flags: {flags})")]
    NoHealthyNode { shard: String, flags: String },
    #[error("codis dashboard {url}")]
    Dashboard {
        url: String,
        #[source]
        source: ureq::Error,
    },
    #[error("codis dashboard {url}: HTTP {status}: {body}")]
    DashboardStatus {
        url: String,
        status: u16,
        body: String,
    },
    #[error("codis dashboard {url}: the /topom reply is not a Codis overview")]
    NotAnOverview {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the /topom reply has no stats (is the dashboard online?)")]
    NoStats,
    #[error("the Codis dashboard is closed")]
    DashboardClosed,
    #[error("codis group {0} owns slots but has no server")]
    EmptyGroup(u32),
    #[error(
        "codis group {group} (master {master}) has no healthy replica outside the read group \
         and --require-slave is set"
    )]
    NoSpareReplica { group: u32, master: String },
    #[error("the Codis dashboard lists no group with servers")]
    NoGroups,
}

/// Connection options that cannot be used; found before any connection is made.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("{flag} {}: cannot read it", .path.display())]
    Unreadable {
        flag: &'static str,
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{flag} {}: holds no PEM {what}", .path.display())]
    Empty {
        flag: &'static str,
        path: PathBuf,
        what: &'static str,
    },
    #[error("{flag} {}: bad certificate", .path.display())]
    BadCertificate {
        flag: &'static str,
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error(
        "--tls-cert {}: an X.509 v1 certificate, which rustls cannot use as a client \
         certificate (it verifies v3 only); issue a v3 one, e.g. `openssl x509 -req ... -extfile \
         <(printf 'basicConstraints=CA:FALSE')` (any extension makes it v3)",
        .cert.display()
    )]
    ClientCertV1 { cert: PathBuf },
    #[error("--tls-cert {} with --tls-key {}: unusable client certificate", .cert.display(), .key.display())]
    ClientCert {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("no system CA certificates found; pass --tls-ca FILE or --tls-insecure")]
    NoSystemRoots,
    #[error("TLS setup failed")]
    Tls(#[source] rustls::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_errors_chain_once() {
        let e = SourceError::instance(
            "h:1",
            Cause::Io {
                context: "cannot connect to 127.0.0.1:1".into(),
                source: io::Error::new(io::ErrorKind::ConnectionRefused, "refused"),
            },
        );
        assert_eq!(e.to_string(), "h:1: cannot connect to 127.0.0.1:1");
        assert_eq!(chain(&e), "h:1: cannot connect to 127.0.0.1:1: refused");
        let io = e.source().and_then(|s| s.downcast_ref::<io::Error>());
        assert_eq!(
            io.map(io::Error::kind),
            Some(io::ErrorKind::ConnectionRefused)
        );
    }

    #[test]
    fn timeouts_name_the_flag() {
        let e = Cause::Timeout {
            context: "PING".into(),
            which: TimeoutKind::Read,
            after: Duration::from_millis(1500),
        };
        assert_eq!(
            e.to_string(),
            "PING: no answer within 1.5s (--read-timeout)"
        );
    }

    #[test]
    fn discovery_lists_every_seed_with_its_cause() {
        let seeds = vec![
            SourceError::instance(
                "a:1",
                Cause::Io {
                    context: "cannot connect to a:1".into(),
                    source: io::Error::other("refused"),
                },
            ),
            SourceError::instance(
                "b:2",
                Cause::ServerError {
                    command: "CLUSTER NODES".into(),
                    reply: "ERR This instance has cluster support disabled".into(),
                },
            ),
        ];
        let e = SourceError::Discovery {
            topology: Topology::RedisCluster,
            cause: DiscoveryError::NoSeedAnswered(seeds),
        };
        let text = chain(&e);
        assert!(
            text.starts_with(
                "cannot discover the Redis Cluster topology: no seed node answered CLUSTER \
                 NODES: a:1: cannot connect to a:1: refused; b:2: not a cluster node"
            ),
            "{text}"
        );
    }

    #[test]
    fn tls_alerts_are_explained() {
        let required = rustls::Error::AlertReceived(AlertDescription::CertificateRequired);
        assert!(tls_message(&required, false).contains("requires a client certificate"));
        let unknown_ca = rustls::Error::AlertReceived(AlertDescription::UnknownCA);
        assert!(tls_message(&unknown_ca, true).contains("rejected the client certificate"));
    }
}
