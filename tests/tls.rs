//! The standalone source over TLS against a real `redis-server` with a test CA.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::redis::{RedisServer, free_port};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rdbinsight::source::standalone::{self, StandaloneConfig, TlsOptions};

struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// A CA and a server certificate for 127.0.0.1 and localhost, as PEM files in `dir`.
fn make_pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("server key");
    let params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("server params");
    let cert = params.signed_by(&key, &issuer).expect("server cert");
    let pki = Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    };
    std::fs::write(&pki.ca, ca_cert.pem()).expect("write CA");
    std::fs::write(&pki.cert, cert.pem()).expect("write cert");
    std::fs::write(&pki.key, key.serialize_pem()).expect("write key");
    pki
}

fn read_rdb(cfg: &StandaloneConfig) -> Result<Vec<u8>, String> {
    let stream = standalone::open(&cfg.addr, cfg).map_err(|e| e.to_string())?;
    let mut data = Vec::new();
    let mut reader = stream.reader;
    reader.read_to_end(&mut data).map_err(|e| e.to_string())?;
    Ok(data)
}

#[test]
fn tls_with_ca_insecure_and_failures() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = make_pki(dir.path());
    let tls_port = free_port().to_string();
    let server = RedisServer::start(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        pki.cert.to_str().expect("path"),
        "--tls-key-file",
        pki.key.to_str().expect("path"),
        "--tls-ca-cert-file",
        pki.ca.to_str().expect("path"),
        "--tls-auth-clients",
        "no",
    ]);
    server.cli(&["SET", "k", "v"]);
    let base = StandaloneConfig {
        handshake_timeout: Duration::from_secs(10),
        read_timeout: Duration::from_secs(60),
        ..Default::default()
    };

    // Verified against the test CA, by IP and by DNS name.
    for host in ["127.0.0.1", "localhost"] {
        let cfg = StandaloneConfig {
            addr: format!("{host}:{tls_port}"),
            tls: Some(TlsOptions {
                ca_file: Some(pki.ca.clone()),
                insecure: false,
            }),
            ..base.clone()
        };
        let data = read_rdb(&cfg).unwrap_or_else(|e| panic!("{host}: {e}"));
        assert!(data.starts_with(b"REDIS00"));
    }

    // Not verified.
    let insecure = StandaloneConfig {
        addr: format!("127.0.0.1:{tls_port}"),
        tls: Some(TlsOptions {
            ca_file: None,
            insecure: true,
        }),
        ..base.clone()
    };
    assert!(
        read_rdb(&insecure)
            .expect("insecure")
            .starts_with(b"REDIS00")
    );

    // The system roots do not know the test CA.
    let system = StandaloneConfig {
        tls: Some(TlsOptions::default()),
        ..insecure.clone()
    };
    let e = read_rdb(&system).expect_err("unknown issuer");
    assert!(e.contains("TLS") || e.contains("CA"), "{e}");

    // A CA file that is not PEM.
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").expect("write");
    let bad_ca = StandaloneConfig {
        tls: Some(TlsOptions {
            ca_file: Some(bogus),
            insecure: false,
        }),
        ..insecure.clone()
    };
    let e = read_rdb(&bad_ca).expect_err("bad CA file");
    assert!(e.contains("--tls-ca"), "{e}");

    // Plain text to the TLS port fails cleanly.
    let plain = StandaloneConfig {
        tls: None,
        ..insecure
    };
    assert!(read_rdb(&plain).is_err());
}
