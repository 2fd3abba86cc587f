//! TLS for live sources (rustls with ring): which server certificates to trust and, for servers
//! with `tls-auth-clients yes`, the client certificate to present.
//!
//! [`TlsOptions`] is what the user set; [`TlsConfig::new`] reads the PEM files once, checks
//! them (the key must match the certificate) and builds the rustls configuration that every
//! connection of the run shares, so a bad file is reported before any connection is made.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::error::OptionsError;

/// What the user asked for.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// PEM file of CA certificates to trust instead of the system roots (`--tls-ca`).
    pub ca_file: Option<PathBuf>,
    /// Do not verify the server certificate; the handshake signatures still are
    /// (`--tls-insecure`).
    pub insecure: bool,
    /// The client certificate for mutual TLS (`--tls-cert`/`--tls-key`).
    pub client_cert: Option<ClientCertFiles>,
}

/// A client certificate and its private key, as PEM files.
#[derive(Debug, Clone)]
pub struct ClientCertFiles {
    /// The certificate chain, leaf first (`--tls-cert`).
    pub cert: PathBuf,
    /// The private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC) (`--tls-key`).
    pub key: PathBuf,
}

/// A checked, ready-to-use TLS client configuration (cheap to clone).
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<rustls::ClientConfig>,
    client_cert: bool,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("client_cert", &self.client_cert)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Read the CA and client certificate files and build the configuration.
    pub fn new(opts: &TlsOptions) -> Result<TlsConfig, OptionsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(OptionsError::Tls)?;
        let builder = if opts.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoCertVerification(provider)))
        } else {
            builder.with_root_certificates(root_store(opts.ca_file.as_deref())?)
        };
        let config = match &opts.client_cert {
            None => builder.with_no_client_auth(),
            Some(files) => {
                let chain = read_certs("--tls-cert", &files.cert)?;
                let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| match e {
                    rustls::pki_types::pem::Error::NoItemsFound => OptionsError::Empty {
                        flag: "--tls-key",
                        path: files.key.clone(),
                        what: "private key (PKCS#8, RSA or EC)",
                    },
                    e => OptionsError::Unreadable {
                        flag: "--tls-key",
                        path: files.key.clone(),
                        source: e,
                    },
                })?;
                let v1 = chain.first().is_some_and(|c| is_x509_v1(c.as_ref()));
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| match v1 {
                        true => OptionsError::ClientCertV1 {
                            cert: files.cert.clone(),
                        },
                        false => OptionsError::ClientCert {
                            cert: files.cert.clone(),
                            key: files.key.clone(),
                            source: e,
                        },
                    })?
            }
        };
        Ok(TlsConfig {
            config: Arc::new(config),
            client_cert: opts.client_cert.is_some(),
        })
    }

    /// A client session for `server` (the host the certificate must name).
    pub(super) fn client(
        &self,
        server: ServerName<'static>,
    ) -> Result<rustls::ClientConnection, rustls::Error> {
        rustls::ClientConnection::new(Arc::clone(&self.config), server)
    }

    /// Whether a client certificate is offered.
    pub fn has_client_cert(&self) -> bool {
        self.client_cert
    }
}

/// Every certificate of a PEM file (at least one).
/// Whether `der` is an X.509 v1 certificate: its `tbsCertificate` does not start with the
/// `[0]` version field that v2 and v3 carry (RFC 5280 4.1). `false` for anything unparsable.
fn is_x509_v1(der: &[u8]) -> bool {
    /// The contents of the DER SEQUENCE at the start of `d`.
    fn sequence(d: &[u8]) -> Option<&[u8]> {
        let (&tag, rest) = d.split_first()?;
        let (&len, rest) = rest.split_first()?;
        if tag != 0x30 {
            return None;
        }
        let (len, rest) = match len {
            n if n < 0x80 => (usize::from(n), rest),
            n => {
                let k = usize::from(n & 0x7f);
                if k == 0 || k > 4 || rest.len() < k {
                    return None;
                }
                let (bytes, rest) = rest.split_at(k);
                (
                    bytes.iter().fold(0usize, |a, &b| a << 8 | usize::from(b)),
                    rest,
                )
            }
        };
        rest.get(..len)
    }
    sequence(der)
        .and_then(sequence)
        .and_then(|tbs| tbs.first())
        .is_some_and(|&first| first != 0xA0)
}

fn read_certs(
    flag: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, OptionsError> {
    let unreadable = |source| OptionsError::Unreadable {
        flag,
        path: path.to_path_buf(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(unreadable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    if certs.is_empty() {
        return Err(OptionsError::Empty {
            flag,
            path: path.to_path_buf(),
            what: "certificate",
        });
    }
    Ok(certs)
}

/// The CAs to trust: `--tls-ca`, else the system's.
fn root_store(ca_file: Option<&Path>) -> Result<rustls::RootCertStore, OptionsError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in read_certs("--tls-ca", path)? {
                roots
                    .add(cert)
                    .map_err(|source| OptionsError::BadCertificate {
                        flag: "--tls-ca",
                        path: path.to_path_buf(),
                        source,
                    })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(OptionsError::NoSystemRoots);
            }
        }
    }
    Ok(roots)
}

/// `--tls-insecure`: accept any certificate, but still check the handshake signatures.
#[derive(Debug)]
struct NoCertVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoCertVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
