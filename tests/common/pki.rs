//! Test certificates (rcgen): a CA, a server certificate for 127.0.0.1 and localhost, and
//! client certificates for mutual TLS, written as PEM files.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// PEM files in a temporary directory.
pub struct Pki {
    pub dir: tempfile::TempDir,
    /// The CA that signed the server and client certificates.
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// A client certificate signed by `ca` (PKCS#8 key).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// A new self-signed CA named `name`.
fn new_ca(name: &str) -> (Issuer<'static, KeyPair>, String) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct names: OpenSSL (redis-server, redis-cli) takes a certificate whose subject is
    // its issuer's for self-signed.
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("CA cert");
    (Issuer::new(params, key), cert.pem())
}

/// A certificate for `names` signed by `issuer`, written as `<stem>.pem` and `<stem>.key`.
/// No extended key usage: the server certificate also serves as the client certificate of
/// replication and cluster-bus links.
fn issue(
    issuer: &Issuer<'static, KeyPair>,
    names: &[&str],
    dir: &Path,
    stem: &str,
) -> (PathBuf, PathBuf) {
    let key = KeyPair::generate().expect("key");
    let params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .expect("params");
    let cert = params.signed_by(&key, issuer).expect("sign");
    let (cert_path, key_path) = (
        dir.join(format!("{stem}.pem")),
        dir.join(format!("{stem}.key")),
    );
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (cert_path, key_path)
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().expect("temp dir");
        let (issuer, ca_pem) = new_ca("rdbinsight test CA");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_pem).expect("write CA");
        let (server_cert, server_key) =
            issue(&issuer, &["127.0.0.1", "localhost"], dir.path(), "server");
        let (client_cert, client_key) = issue(&issuer, &["rdbinsight"], dir.path(), "client");
        Pki {
            dir,
            ca,
            server_cert,
            server_key,
            client_cert,
            client_key,
        }
    }

    /// A client certificate and key from another CA, which the server does not trust.
    pub fn foreign_client(&self) -> (PathBuf, PathBuf) {
        let (issuer, _) = new_ca("another CA");
        issue(&issuer, &["intruder"], self.dir.path(), "foreign-client")
    }

    /// `redis-server` arguments for a TLS-only server on `tls_port` (plain port off) that
    /// requires client certificates when `auth_clients`.
    pub fn server_args(&self, tls_port: u16, auth_clients: bool) -> Vec<String> {
        let mut args = vec![
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            tls_port.to_string(),
        ];
        args.extend(flags(&[
            ("--tls-cert-file", &self.server_cert),
            ("--tls-key-file", &self.server_key),
            ("--tls-ca-cert-file", &self.ca),
        ]));
        args.extend([
            "--tls-auth-clients".into(),
            if auth_clients { "yes" } else { "no" }.into(),
        ]);
        args
    }

    /// `redis-cli` arguments to talk to such a server.
    pub fn cli_args(&self) -> Vec<String> {
        let mut args = vec!["--tls".to_string()];
        args.extend(flags(&[
            ("--cacert", &self.ca),
            ("--cert", &self.client_cert),
            ("--key", &self.client_key),
        ]));
        args
    }

    /// rdbinsight's flags for mutual TLS with the client certificate:
    /// `--tls-ca CA --tls-cert CERT --tls-key KEY`.
    pub fn mtls_flags(&self) -> [&str; 6] {
        [
            "--tls-ca",
            utf8(&self.ca),
            "--tls-cert",
            utf8(&self.client_cert),
            "--tls-key",
            utf8(&self.client_key),
        ]
    }
}

fn utf8(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `flag path` pairs as arguments.
fn flags(pairs: &[(&str, &PathBuf)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(flag, path)| [flag.to_string(), path.display().to_string()])
        .collect()
}
