//! Live sources over TLS against real `redis-server`s with a test CA: server verification
//! (`--tls-ca`, `--tls-insecure`, the system roots), and mutual TLS (`--tls-cert`/`--tls-key`)
//! for servers with `tls-auth-clients yes`, through the standalone, Codis and cluster sources.

use crate::common;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use common::codis::{FakeGroup, serve_topom, topom_json};
use common::dumps::{comparable, dump_fails, dump_jsonl, key_of, standalone_fails};
use common::pki::Pki;
use common::redis::{RedisCluster, RedisServer};
use rdbinsight::slot;
use rdbinsight::source::error::chain;
use rdbinsight::source::{ClientCertFiles, ConnectionOptions, TlsConfig, TlsOptions, standalone};

fn tls_options(tls: TlsOptions) -> Result<ConnectionOptions, String> {
    Ok(ConnectionOptions {
        tls: Some(TlsConfig::new(&tls).map_err(|e| chain(&e))?),
        read_timeout: Duration::from_secs(60),
        ..Default::default()
    })
}

/// Open `addr` and read the whole snapshot; the error as `main` prints it.
fn read_rdb(addr: &str, opts: &ConnectionOptions) -> Result<Vec<u8>, String> {
    let stream = standalone::open(addr, opts).map_err(|e| chain(&e))?;
    let mut data = Vec::new();
    let mut reader = stream.reader;
    reader.read_to_end(&mut data).map_err(|e| e.to_string())?;
    Ok(data)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn server_verification_ca_insecure_and_failures() {
    let pki = Pki::new();
    let server = RedisServer::start_tls(&pki, false, &[]);
    server.cli(&["SET", "k", "v"]);

    // Verified against the test CA, by IP and by DNS name.
    let verified = tls_options(TlsOptions {
        ca_file: Some(pki.ca.clone()),
        ..Default::default()
    })
    .expect("CA file");
    for host in ["127.0.0.1", "localhost"] {
        let data = read_rdb(&format!("{host}:{}", server.port), &verified)
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        assert!(data.starts_with(b"REDIS00"));
    }

    // Not verified.
    let insecure = tls_options(TlsOptions {
        insecure: true,
        ..Default::default()
    })
    .expect("insecure");
    let data = read_rdb(&server.addr(), &insecure).expect("insecure");
    assert!(data.starts_with(b"REDIS00"));

    // The system roots (if the machine has any) do not know the test CA.
    match tls_options(TlsOptions::default()) {
        Err(e) => assert!(e.contains("no system CA certificates"), "{e}"),
        Ok(system) => {
            let e = read_rdb(&server.addr(), &system).expect_err("unknown issuer");
            assert!(e.contains("not signed by a trusted CA (--tls-ca"), "{e}");
        }
    }

    // A CA file that is not PEM, and one that does not exist, are named.
    let bogus = pki.dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").expect("write");
    let e = tls_options(TlsOptions {
        ca_file: Some(bogus.clone()),
        ..Default::default()
    })
    .expect_err("bad CA file");
    assert_eq!(
        e,
        format!("--tls-ca {}: holds no PEM certificate", bogus.display())
    );
    let missing = pki.dir.path().join("missing.pem");
    let e = tls_options(TlsOptions {
        ca_file: Some(missing.clone()),
        ..Default::default()
    })
    .expect_err("missing CA file");
    assert!(
        e.starts_with(&format!("--tls-ca {}: cannot read it", missing.display())),
        "{e}"
    );

    // Plain text to the TLS port fails cleanly.
    assert!(read_rdb(&server.addr(), &ConnectionOptions::default()).is_err());
}

/// Write a variety of keys plus 2,000 generated ones.
fn load(server: &RedisServer) {
    server.cli_pipe(
        "SET s1 hello\nRPUSH l1 a b c\nSADD set1 x y z\nHSET h1 f1 v1 f2 v2\nZADD z1 1 a 2 b\n\
         SET ex1 v EX 100000\nXADD st1 * f v\nSELECT 4\nSET db4key v\n",
    );
    assert_eq!(
        server.cli(&["DEBUG", "POPULATE", "2000", "pop", "20"]),
        "OK"
    );
}

#[test]
fn mutual_tls_standalone_and_codis() {
    let pki = Pki::new();
    let server = RedisServer::start_tls(&pki, true, &[]);
    load(&server);
    let out = tempfile::tempdir().expect("temp dir");
    let expected = comparable(&dump_jsonl(
        out.path(),
        "file",
        &[
            "from-file",
            "--path",
            path(&server.save()),
            "--cluster",
            "c",
            "--instance",
            "i",
        ],
    ));
    assert_eq!(expected.len(), 2008);

    // Without a client certificate the server refuses us, and the error says what to do.
    let refused = |client_cert: Option<ClientCertFiles>| {
        let options = tls_options(TlsOptions {
            ca_file: Some(pki.ca.clone()),
            client_cert,
            ..Default::default()
        })
        .expect("well-formed TLS files");
        read_rdb(&server.addr(), &options).expect_err("the server refuses the client")
    };
    let e = refused(None);
    assert!(
        e.contains("the server requires a client certificate (--tls-cert/--tls-key)"),
        "{e}"
    );

    // A certificate from a CA the server does not trust is refused too.
    let (cert, key) = pki.foreign_client();
    let e = refused(Some(ClientCertFiles { cert, key }));
    assert!(
        e.contains("the server rejected the client certificate"),
        "{e}"
    );

    // The right certificate: every key, as in the server's own dump.
    let tls_flags = pki.mtls_flags();
    let addr = server.addr();
    let mut args = vec!["from-standalone", "--addr", &addr, "--cluster", "c"];
    args.extend_from_slice(&tls_flags);
    let live = dump_jsonl(out.path(), "standalone", &args);
    assert_eq!(comparable(&live), expected);

    // The same options serve Codis: a dashboard whose one group is this server.
    let dashboard = serve_topom(topom_json(
        "tls-product",
        &[FakeGroup {
            id: 1,
            servers: vec![(server.addr(), false)],
        }],
    ));
    let url = dashboard.url();
    let mut args = vec!["from-codis", "--dashboard", &url];
    args.extend_from_slice(&tls_flags);
    let codis = dump_jsonl(out.path(), "codis", &args);
    assert_eq!(comparable(&codis), expected);
    assert!(codis.iter().all(|r| r["cluster"] == "tls-product"));
    assert!(codis.iter().all(|r| r["codis_slot"].is_u64()));

    // Through the binary without the certificate: exit code 1 and the explanation.
    let stderr = standalone_fails(&addr, &["--tls-ca", path(&pki.ca)]);
    assert!(stderr.contains("requires a client certificate"), "{stderr}");
}

#[test]
fn mutual_tls_cluster() {
    let pki = Pki::new();
    let cluster = RedisCluster::start_tls(3, &pki);
    let keys: Vec<String> = (0..600).map(|i| format!("key:{i}")).collect();
    cluster.set_keys(&keys);

    let seeds = cluster.seeds().join(",");
    let out = tempfile::tempdir().expect("temp dir");
    let records = dump_jsonl(
        out.path(),
        "cluster",
        &[
            &[
                "from-cluster",
                "--nodes",
                &seeds,
                "--cluster",
                "c",
                "--require-slave",
            ][..],
            &pki.mtls_flags(),
        ]
        .concat(),
    );
    let got: BTreeSet<String> = records.iter().map(key_of).collect();
    assert_eq!(records.len(), keys.len(), "every key exactly once");
    assert_eq!(got, keys.iter().cloned().collect::<BTreeSet<_>>());
    for r in &records {
        let k = key_of(r);
        assert_eq!(
            r["redis_slot"].as_u64(),
            Some(u64::from(slot::redis_slot(k.as_bytes())))
        );
    }

    // Without the client certificate, discovery itself is refused, clearly.
    let stderr = dump_fails(
        1,
        &[
            "from-cluster",
            "--nodes",
            &seeds,
            "--cluster",
            "c",
            "--tls-ca",
            path(&pki.ca),
        ],
    );
    assert!(
        stderr.contains("cannot discover the Redis Cluster topology: no seed node answered"),
        "{stderr}"
    );
    assert!(stderr.contains("requires a client certificate"), "{stderr}");
}

#[test]
fn client_certificate_flags_are_checked_up_front() {
    let pki = Pki::new();
    // A certificate without its key (flag or environment) is a usage error.
    let standalone = ["from-standalone", "--addr", "127.0.0.1:1", "--cluster", "c"];
    let cert = path(&pki.client_cert);
    let stderr = dump_fails(2, &[&standalone[..], &["--tls-cert", cert]].concat());
    assert!(stderr.contains("--tls-key"), "{stderr}");

    // An unreadable key, and a key that is not the certificate's, are named before any
    // connection is tried (nothing listens on 127.0.0.1:1).
    let missing = pki.dir.path().join("missing.key");
    let (_, other_key) = pki.foreign_client();
    for (key, want) in [
        (
            missing.clone(),
            format!("--tls-key {}: cannot read it", missing.display()),
        ),
        (
            other_key.clone(),
            format!(
                "--tls-cert {} with --tls-key {}: unusable client certificate",
                pki.client_cert.display(),
                other_key.display()
            ),
        ),
    ] {
        let flags = ["--tls-cert", cert, "--tls-key", path(&key)];
        let stderr = dump_fails(1, &[&standalone[..], &flags].concat());
        assert!(stderr.contains(&want), "{stderr}");
        assert!(!stderr.contains("cannot connect"), "{stderr}");
    }
}

/// A client certificate in X.509 v1 form (`openssl x509 -req` without extensions, accepted by
/// redis-server) is refused before connecting with what is wrong and how to make a v3 one.
#[test]
fn a_v1_client_certificate_is_explained() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("v1.key");
    let csr = dir.path().join("v1.csr");
    let cert = dir.path().join("v1.crt");
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
        out
    };
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        path(&key),
    ]);
    openssl(&[
        "req",
        "-new",
        "-key",
        path(&key),
        "-subj",
        "/CN=v1-client",
        "-out",
        path(&csr),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        path(&csr),
        "-signkey",
        path(&key),
        "-days",
        "1",
        "-out",
        path(&cert),
    ]);
    let text = openssl(&["x509", "-in", path(&cert), "-noout", "-text"]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("Version: 1 (0x0)"),
        "openssl made a v1 certificate"
    );
    let standalone = ["from-standalone", "--addr", "127.0.0.1:1", "--cluster", "c"];
    let flags = ["--tls-cert", path(&cert), "--tls-key", path(&key)];
    let stderr = dump_fails(1, &[&standalone[..], &flags].concat());
    assert!(stderr.contains("X.509 v1 certificate"), "{stderr}");
    assert!(stderr.contains("basicConstraints=CA:FALSE"), "{stderr}");
    assert!(!stderr.contains("UnsupportedCertVersion"), "{stderr}");
    assert!(!stderr.contains("cannot connect"), "{stderr}");
}
