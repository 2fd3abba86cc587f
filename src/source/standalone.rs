//! A live standalone Redis, read over the replication protocol: we connect like a replica,
//! ask for a full resynchronization and hand the snapshot bytes to the parser as they arrive.
//! Nothing is written to disk and the snapshot is never buffered.
//!
//! Handshake: `AUTH` (when credentials are given), `PING`, `REPLCONF capa eof capa psync2`,
//! `REPLCONF rdb-only 1` (Redis ≥ 7; a refusal is tolerated), `PSYNC ? -1` →
//! `+FULLRESYNC <replid> <offset>`. The snapshot then comes either disk-based
//! (`$<len>\r\n` + exactly `len` bytes) or diskless (`$EOF:<40-byte mark>\r\n`, the RDB, then
//! the mark). The master sends bare `\n` keep-alives while it prepares the snapshot; they are
//! skipped. The returned reader stops exactly at the end of the RDB; a connection that drops
//! before that is an `UnexpectedEof` error from `read()`, never a short stream.

use std::fmt;
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use super::resp::{self, Reply, RespError};
use super::{OpenedStream, SourceError};

/// Length of the diskless end-of-snapshot mark.
pub const EOF_MARK_LEN: usize = 40;
/// Socket read buffer of the connection.
const READ_BUFFER: usize = 64 * 1024;

/// TLS settings.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// PEM file of CA certificates to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// Do not verify the server certificate (the handshake signatures still are).
    pub insecure: bool,
}

/// Connection settings for one server.
#[derive(Clone)]
pub struct StandaloneConfig {
    /// `HOST:PORT` (IPv6 as `[::1]:6379`).
    pub addr: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `Some` to connect with TLS.
    pub tls: Option<TlsOptions>,
    /// Time allowed for the TCP connection (and TLS handshake).
    pub connect_timeout: Duration,
    /// Time allowed for each reply of the command handshake (AUTH, PING, REPLCONF).
    pub handshake_timeout: Duration,
    /// Time without any byte from the server, once PSYNC is sent, before giving up.
    pub read_timeout: Duration,
}

impl Default for StandaloneConfig {
    fn default() -> Self {
        StandaloneConfig {
            addr: String::new(),
            username: None,
            password: None,
            tls: None,
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(600),
        }
    }
}

impl fmt::Debug for StandaloneConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password.
        f.debug_struct("StandaloneConfig")
            .field("addr", &self.addr)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("read_timeout", &self.read_timeout)
            .finish()
    }
}

impl StandaloneConfig {
    /// The same settings for another server.
    pub fn with_addr(&self, addr: impl Into<String>) -> Self {
        StandaloneConfig {
            addr: addr.into(),
            ..self.clone()
        }
    }
}

/// Split `HOST:PORT` / `[V6]:PORT` into host (without brackets) and port.
pub fn split_host_port(addr: &str) -> Result<(String, u16), String> {
    let bad = || format!("'{addr}' is not HOST:PORT (IPv6 as [ADDR]:PORT)");
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = if let Some(inner) = host.strip_prefix('[') {
        inner.strip_suffix(']').ok_or_else(bad)?
    } else if host.contains(':') {
        // A bare IPv6 address with a port is ambiguous; accept it only if it parses as one.
        host.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        host
    } else {
        host
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// `host:port`, with brackets around an IPv6 host.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The socket, plain or TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// An authenticated command connection to one server.
pub struct Connection {
    instance: String,
    io: BufReader<Conn>,
    /// A clone of the socket, for timeouts and cancellation.
    socket: TcpStream,
    /// The read timeout in force (for messages).
    timeout: Duration,
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

impl Connection {
    /// Connect (TCP, then TLS if configured), authenticate if credentials are given, and PING.
    pub fn connect(instance: &str, cfg: &StandaloneConfig) -> Result<Connection, SourceError> {
        let fail = |message: String| SourceError::Instance {
            instance: instance.to_string(),
            message,
        };
        let (host, port) = split_host_port(&cfg.addr).map_err(fail)?;
        let addrs: Vec<SocketAddr> = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| fail(format!("cannot resolve '{host}': {e}")))?
            .collect();
        if addrs.is_empty() {
            return Err(fail(format!("'{host}' resolves to no address")));
        }
        let mut last_err = None;
        let mut socket = None;
        for a in &addrs {
            match TcpStream::connect_timeout(a, nonzero(cfg.connect_timeout)) {
                Ok(s) => {
                    socket = Some(s);
                    break;
                }
                Err(e) => last_err = Some((a, e)),
            }
        }
        let socket = match (socket, last_err) {
            (Some(s), _) => s,
            (None, Some((a, e))) if is_timeout(&e) => {
                return Err(fail(format!(
                    "cannot connect to {a}: no answer within {} (--connect-timeout)",
                    secs(cfg.connect_timeout)
                )));
            }
            (None, Some((a, e))) => return Err(fail(format!("cannot connect to {a}: {e}"))),
            (None, None) => return Err(fail("no address to connect to".into())),
        };
        let _ = socket.set_nodelay(true);
        let clone = socket
            .try_clone()
            .map_err(|e| fail(format!("cannot clone the socket: {e}")))?;
        let conn = match &cfg.tls {
            None => Conn::Plain(socket),
            Some(tls) => {
                let config = tls_client_config(tls).map_err(&fail)?;
                let name = ServerName::try_from(host.clone())
                    .map_err(|e| fail(format!("'{host}' is not a valid TLS server name: {e}")))?;
                let mut client = rustls::ClientConnection::new(config, name)
                    .map_err(|e| fail(format!("TLS setup failed: {e}")))?;
                let mut socket = socket;
                // Drive the TLS handshake now, under the connect timeout, for a clear error.
                let _ = socket.set_read_timeout(Some(nonzero(cfg.connect_timeout)));
                let _ = socket.set_write_timeout(Some(nonzero(cfg.connect_timeout)));
                while client.is_handshaking() {
                    client.complete_io(&mut socket).map_err(|e| {
                        if is_timeout(&e) {
                            fail(format!(
                                "TLS handshake: no answer within {} (is TLS enabled on the server?)",
                                secs(cfg.connect_timeout)
                            ))
                        } else {
                            fail(format!("TLS handshake failed: {e}"))
                        }
                    })?;
                }
                Conn::Tls(Box::new(rustls::StreamOwned::new(client, socket)))
            }
        };
        let mut c = Connection {
            instance: instance.to_string(),
            io: BufReader::with_capacity(READ_BUFFER, conn),
            socket: clone,
            timeout: cfg.handshake_timeout,
        };
        c.set_timeout(cfg.handshake_timeout);
        let _ = c
            .socket
            .set_write_timeout(Some(nonzero(cfg.handshake_timeout)));

        if let Some(password) = &cfg.password {
            let reply = match &cfg.username {
                Some(user) => c.command(&[b"AUTH", user.as_bytes(), password.as_bytes()])?,
                None => c.command(&[b"AUTH", password.as_bytes()])?,
            };
            match reply {
                Reply::Simple(_) => {}
                Reply::Error(e) => return Err(c.fail(auth_error(&e, cfg.username.is_some()))),
                other => return Err(c.fail(format!("unexpected reply to AUTH: {other}"))),
            }
        } else if cfg.username.is_some() {
            return Err(c.fail("--username needs a password (--password)".into()));
        }
        match c.command(&[b"PING"])? {
            Reply::Simple(s) if s == "PONG" => Ok(c),
            Reply::Error(e) => Err(c.fail(server_error("PING", &e))),
            other => Err(c.fail(format!(
                "unexpected reply to PING: {other}; is this a Redis server?"
            ))),
        }
    }

    fn fail(&self, message: String) -> SourceError {
        SourceError::Instance {
            instance: self.instance.clone(),
            message,
        }
    }

    fn set_timeout(&mut self, t: Duration) {
        self.timeout = t;
        let _ = self.socket.set_read_timeout(Some(nonzero(t)));
    }

    fn resp_error(&self, what: &str, e: RespError) -> SourceError {
        match e {
            RespError::Io(e) if is_timeout(&e) => {
                self.fail(format!("{what}: no reply within {}", secs(self.timeout)))
            }
            RespError::Io(e) => self.fail(format!("{what}: {e}")),
            RespError::Closed => self.fail(format!("{what}: the server closed the connection")),
            RespError::Protocol(_) => self.fail(format!("{what}: {e}")),
        }
    }

    /// Send one command and read its reply (`-ERR` replies are returned, not turned into errors).
    pub fn command(&mut self, args: &[&[u8]]) -> Result<Reply, SourceError> {
        let name = String::from_utf8_lossy(args.first().copied().unwrap_or(b"")).into_owned();
        self.send(args)?;
        resp::read_reply(&mut self.io).map_err(|e| self.resp_error(&name, e))
    }

    fn send(&mut self, args: &[&[u8]]) -> Result<(), SourceError> {
        let name = String::from_utf8_lossy(args.first().copied().unwrap_or(b"")).into_owned();
        resp::write_command(self.io.get_mut(), args)
            .map_err(|e| self.resp_error(&name, RespError::Io(e)))
    }

    /// Read one line, skipping bare `\n` keep-alives.
    fn read_nonempty_line(&mut self, what: &str) -> Result<Vec<u8>, SourceError> {
        loop {
            let line = resp::read_line(&mut self.io).map_err(|e| self.resp_error(what, e))?;
            if !line.is_empty() {
                return Ok(line);
            }
        }
    }

    /// A handle that shuts the socket down (aborts a blocked read).
    fn cancel_handle(&self) -> Result<super::CancelHandle, SourceError> {
        let s = self
            .socket
            .try_clone()
            .map_err(|e| self.fail(format!("cannot clone the socket: {e}")))?;
        Ok(Box::new(move || {
            let _ = s.shutdown(Shutdown::Both);
        }))
    }
}

fn nonzero(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

/// A clear message for a failed AUTH.
fn auth_error(e: &str, with_user: bool) -> String {
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

/// A clear message for an error reply to `command`.
fn server_error(command: &str, e: &str) -> String {
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
    } else if e.contains("unknown command") {
        format!(
            "{command} failed: the server does not support replication commands (a proxy, or a \
             managed service that disables them?): {e}"
        )
    } else {
        format!("{command} failed: {e}")
    }
}

fn tls_client_config(opts: &TlsOptions) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let config = if opts.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCertVerification(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match &opts.ca_file {
            Some(path) => {
                use rustls::pki_types::CertificateDer;
                use rustls::pki_types::pem::PemObject as _;
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("cannot read --tls-ca {}: {e}", path.display()))?;
                for cert in certs {
                    let cert = cert.map_err(|e| {
                        format!("bad certificate in --tls-ca {}: {e}", path.display())
                    })?;
                    roots.add(cert).map_err(|e| {
                        format!("bad certificate in --tls-ca {}: {e}", path.display())
                    })?;
                }
                if roots.is_empty() {
                    return Err(format!("--tls-ca {} holds no certificate", path.display()));
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(
                        "no system CA certificates found; pass --tls-ca FILE or --tls-insecure"
                            .into(),
                    );
                }
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// `--tls-insecure`: accept any certificate, but still check the handshake signatures.
#[derive(Debug)]
struct NoCertVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoCertVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Connect, authenticate, request a full sync and return the snapshot stream.
pub fn open(instance: &str, cfg: &StandaloneConfig) -> Result<OpenedStream, SourceError> {
    let mut c = Connection::connect(instance, cfg)?;

    match c.command(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])? {
        Reply::Simple(_) => {}
        Reply::Error(e) => return Err(c.fail(server_error("REPLCONF capa", &e))),
        other => return Err(c.fail(format!("unexpected reply to REPLCONF: {other}"))),
    }
    // Redis ≥ 7: send only the snapshot, then close. Older servers refuse it; that is fine,
    // we simply stop reading after the snapshot.
    match c.command(&[b"REPLCONF", b"rdb-only", b"1"])? {
        Reply::Simple(_) => {}
        Reply::Error(e) if e.starts_with("NOAUTH") || e.starts_with("LOADING") => {
            return Err(c.fail(server_error("REPLCONF", &e)));
        }
        Reply::Error(e) => {
            tracing::debug!("{instance}: REPLCONF rdb-only refused ({e}); continuing without it")
        }
        other => return Err(c.fail(format!("unexpected reply to REPLCONF rdb-only: {other}"))),
    }

    // From here the master may take long to produce the snapshot (keep-alives count as data).
    c.set_timeout(cfg.read_timeout);
    c.send(&[b"PSYNC", b"?", b"-1"])?;
    let line = c.read_nonempty_line("PSYNC")?;
    if let Some(rest) = line.strip_prefix(b"+FULLRESYNC") {
        tracing::debug!(
            "{instance}: full resync{}",
            String::from_utf8_lossy(rest).trim_end()
        );
    } else if let Some(e) = line.strip_prefix(b"-") {
        return Err(c.fail(server_error("PSYNC", &String::from_utf8_lossy(e))));
    } else {
        return Err(c.fail(format!(
            "unexpected reply to PSYNC: \"{}\" (expected +FULLRESYNC); is this a Redis master \
             or replica?",
            resp::preview(&line)
        )));
    }

    let header = c.read_nonempty_line("waiting for the snapshot")?;
    let cancel = c.cancel_handle()?;
    let Connection {
        instance: name,
        io,
        timeout,
        ..
    } = c;
    if let Some(mark) = header.strip_prefix(b"$EOF:") {
        let mark: [u8; EOF_MARK_LEN] = mark.try_into().map_err(|_| SourceError::Instance {
            instance: name.clone(),
            message: format!(
                "bad diskless snapshot header \"{}\" (expected a 40-byte end mark)",
                resp::preview(&header)
            ),
        })?;
        tracing::debug!("{instance}: diskless snapshot");
        Ok(OpenedStream {
            reader: Box::new(EofMarkReader::new(
                TimeoutReader::new(io, name, timeout),
                mark,
            )),
            total_bytes: None,
            cancel: Some(cancel),
        })
    } else if let Some(len) = header.strip_prefix(b"$").and_then(resp::parse_int) {
        let len = u64::try_from(len).map_err(|_| SourceError::Instance {
            instance: name.clone(),
            message: format!("bad snapshot length {len}"),
        })?;
        tracing::debug!("{instance}: disk-based snapshot of {len} bytes");
        Ok(OpenedStream {
            reader: Box::new(SizedReader::new(TimeoutReader::new(io, name, timeout), len)),
            total_bytes: Some(len),
            cancel: Some(cancel),
        })
    } else if let Some(e) = header.strip_prefix(b"-") {
        Err(SourceError::Instance {
            instance: name,
            message: server_error("the snapshot transfer", &String::from_utf8_lossy(e)),
        })
    } else {
        Err(SourceError::Instance {
            instance: name,
            message: format!(
                "unexpected data instead of the snapshot header: \"{}\"",
                resp::preview(&header)
            ),
        })
    }
}

/// Turns socket timeouts into a clear `TimedOut` error naming the instance.
pub struct TimeoutReader<R> {
    inner: R,
    instance: String,
    timeout: Duration,
}

impl<R: Read> TimeoutReader<R> {
    pub fn new(inner: R, instance: String, timeout: Duration) -> Self {
        TimeoutReader {
            inner,
            instance,
            timeout,
        }
    }
}

impl<R: Read> Read for TimeoutReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            if is_timeout(&e) {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{}: no data for {} (--read-timeout)",
                        self.instance,
                        secs(self.timeout)
                    ),
                )
            } else {
                e
            }
        })
    }
}

/// A disk-based snapshot: exactly `total` bytes.
pub struct SizedReader<R> {
    inner: R,
    total: u64,
    done: u64,
}

impl<R: Read> SizedReader<R> {
    pub fn new(inner: R, total: u64) -> Self {
        SizedReader {
            inner,
            total,
            done: 0,
        }
    }
}

impl<R: Read> Read for SizedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.total - self.done;
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let n = self.inner.read(&mut buf[..want]).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("after {} of {} snapshot bytes: {e}", self.done, self.total),
            )
        })?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "connection closed after {} of {} snapshot bytes",
                    self.done, self.total
                ),
            ));
        }
        self.done += n as u64;
        Ok(n)
    }
}

/// A diskless snapshot: bytes up to the 40-byte end mark, which is held back and dropped.
/// Like Redis, the end is recognized when the last 40 bytes received equal the mark (the
/// master sends nothing after the mark until the replica acknowledges).
pub struct EofMarkReader<R> {
    inner: R,
    mark: [u8; EOF_MARK_LEN],
    /// Bytes read but not handed out: `buf[pos..ready]` may be handed out, `buf[ready..]`
    /// (at most 40 bytes) is held back as it may be the start of the mark.
    buf: Vec<u8>,
    pos: usize,
    ready: usize,
    received: u64,
    done: bool,
}

impl<R: Read> EofMarkReader<R> {
    pub fn new(inner: R, mark: [u8; EOF_MARK_LEN]) -> Self {
        EofMarkReader {
            inner,
            mark,
            buf: Vec::with_capacity(READ_BUFFER + EOF_MARK_LEN),
            pos: 0,
            ready: 0,
            received: 0,
            done: false,
        }
    }
}

impl<R: Read> Read for EofMarkReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.ready {
                let n = (self.ready - self.pos).min(out.len());
                out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.done || out.is_empty() {
                return Ok(0);
            }
            // Keep only the held-back tail, then read more after it.
            self.buf.drain(..self.ready);
            self.pos = 0;
            self.ready = 0;
            let held = self.buf.len();
            self.buf.resize(held + READ_BUFFER, 0);
            let n = match self.inner.read(&mut self.buf[held..]) {
                Ok(n) => n,
                Err(e) => {
                    self.buf.truncate(held);
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(io::Error::new(
                        e.kind(),
                        format!("after {} snapshot bytes: {e}", self.received),
                    ));
                }
            };
            self.buf.truncate(held + n);
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed after {} snapshot bytes, before the end mark of a \
                         diskless transfer",
                        self.received
                    ),
                ));
            }
            self.received += n as u64;
            let len = self.buf.len();
            if len >= EOF_MARK_LEN && self.buf[len - EOF_MARK_LEN..] == self.mark {
                self.done = true;
                self.ready = len - EOF_MARK_LEN;
            } else {
                self.ready = len.saturating_sub(EOF_MARK_LEN);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its data in pieces of the given sizes.
    struct Chunked {
        data: Vec<u8>,
        sizes: Vec<usize>,
        at: usize,
        step: usize,
    }

    impl Read for Chunked {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let size = self.sizes[self.step % self.sizes.len()];
            self.step += 1;
            let n = size.min(buf.len()).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    const MARK: &[u8; 40] = b"0123456789abcdef0123456789abcdef01234567";

    fn read_all(r: &mut impl Read) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn eof_mark_is_stripped_for_any_chunking() {
        let payload: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        for sizes in [
            vec![1],
            vec![3, 40, 1],
            vec![39],
            vec![41],
            vec![1000],
            vec![100_000],
        ] {
            let mut data = payload.clone();
            data.extend_from_slice(MARK);
            let inner = Chunked {
                data,
                sizes: sizes.clone(),
                at: 0,
                step: 0,
            };
            let mut r = EofMarkReader::new(inner, *MARK);
            assert_eq!(read_all(&mut r).ok(), Some(payload.clone()), "{sizes:?}");
            // And stays at EOF.
            assert_eq!(r.read(&mut [0u8; 8]).ok(), Some(0));
        }
    }

    #[test]
    fn eof_mark_empty_payload() {
        let inner = Chunked {
            data: MARK.to_vec(),
            sizes: vec![5],
            at: 0,
            step: 0,
        };
        let mut r = EofMarkReader::new(inner, *MARK);
        assert_eq!(read_all(&mut r).ok(), Some(vec![]));
    }

    #[test]
    fn eof_mark_missing_is_an_error() {
        let inner = Chunked {
            data: vec![1u8; 500],
            sizes: vec![64],
            at: 0,
            step: 0,
        };
        let mut r = EofMarkReader::new(inner, *MARK);
        let e = read_all(&mut r).err().map(|e| (e.kind(), e.to_string()));
        let (kind, msg) = e.unwrap_or((io::ErrorKind::Other, String::new()));
        assert_eq!(kind, io::ErrorKind::UnexpectedEof);
        assert!(msg.contains("after 500 snapshot bytes"), "{msg}");
    }

    #[test]
    fn sized_reader_stops_exactly_and_detects_truncation() {
        let inner = Chunked {
            data: b"0123456789EXTRA".to_vec(),
            sizes: vec![4],
            at: 0,
            step: 0,
        };
        let mut r = SizedReader::new(inner, 10);
        assert_eq!(read_all(&mut r).ok(), Some(b"0123456789".to_vec()));

        let inner = Chunked {
            data: b"01234".to_vec(),
            sizes: vec![4],
            at: 0,
            step: 0,
        };
        let mut r = SizedReader::new(inner, 10);
        let e = read_all(&mut r).err().map(|e| (e.kind(), e.to_string()));
        assert_eq!(
            e,
            Some((
                io::ErrorKind::UnexpectedEof,
                "connection closed after 5 of 10 snapshot bytes".to_string()
            ))
        );
    }

    #[test]
    fn host_port() {
        assert_eq!(
            split_host_port("localhost:6379"),
            Ok(("localhost".into(), 6379))
        );
        assert_eq!(split_host_port("[::1]:7000"), Ok(("::1".into(), 7000)));
        assert_eq!(split_host_port("::1:7000"), Ok(("::1".into(), 7000)));
        assert!(split_host_port("localhost").is_err());
        assert!(split_host_port(":6379").is_err());
        assert!(split_host_port("[::1:7000").is_err());
        assert!(split_host_port("host:99999").is_err());
        assert_eq!(join_host_port("::1", 7000), "[::1]:7000");
        assert_eq!(join_host_port("10.0.0.1", 7000), "10.0.0.1:7000");
    }

    #[test]
    fn debug_hides_password() {
        let cfg = StandaloneConfig {
            password: Some("hunter2".into()),
            ..Default::default()
        };
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }
}
