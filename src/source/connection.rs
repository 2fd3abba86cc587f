//! A command connection to one Redis server: TCP, TLS, `AUTH`, `PING`, and RESP command round
//! trips. The replication handshake ([`super::standalone`]), the snapshot framing
//! ([`super::snapshot`]) and topology discovery ([`super::cluster`]) are built on it.
//!
//! Timeouts: `connect_timeout` bounds the TCP connection and the TLS handshake;
//! `read_timeout` bounds every wait for the server afterwards (each reply, each write, and
//! later each read of the snapshot), so a server that is slow to answer `AUTH` or `PSYNC`
//! (loading, busy forking) gets as long as the user allows.

use std::fmt;
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use rustls::pki_types::ServerName;

use super::CancelHandle;
use super::error::{Cause, SourceError, TimeoutKind};
use super::resp::{self, Reply, RespError};
use super::tls::TlsConfig;

/// Socket read buffer of a connection.
pub(super) const READ_BUFFER: usize = 64 * 1024;

/// How to connect to a server, whatever its address: one set of options serves a standalone
/// server, every node of a cluster and every Codis group.
#[derive(Clone)]
pub struct ConnectionOptions {
    /// ACL user (`AUTH user password`); needs `password`.
    pub username: Option<String>,
    /// `AUTH [user] password`.
    pub password: Option<String>,
    /// `Some` to connect with TLS.
    pub tls: Option<TlsConfig>,
    /// Time allowed for the TCP connection and the TLS handshake.
    pub connect_timeout: Duration,
    /// Time allowed without any byte from the server once connected: for each reply of the
    /// handshake (`AUTH`, `PING`, `REPLCONF`, `PSYNC`) and for each read of the snapshot
    /// (keep-alive newlines count).
    pub read_timeout: Duration,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            username: None,
            password: None,
            tls: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(600),
        }
    }
}

impl fmt::Debug for ConnectionOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password.
        f.debug_struct("ConnectionOptions")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .finish()
    }
}

/// Split `HOST:PORT` / `[V6]:PORT` into host (without brackets) and port.
pub fn split_host_port(addr: &str) -> Result<(String, u16), Cause> {
    let bad = || Cause::BadAddress(addr.to_string());
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
pub(super) enum Conn {
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

/// Whether an I/O error is a socket timeout.
pub(super) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The TLS error an I/O error from a rustls stream carries, if any.
fn tls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// Socket timeouts of zero mean "none" to the OS: never pass zero.
fn nonzero(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

/// An authenticated command connection to one server.
pub struct Connection {
    /// The server's `host:port`, which names it in errors.
    addr: String,
    io: BufReader<Conn>,
    /// A clone of the socket, for timeouts and cancellation.
    socket: TcpStream,
    read_timeout: Duration,
    /// `Some(offers a client certificate)` on TLS connections (for messages).
    tls_client_cert: Option<bool>,
}

impl Connection {
    /// Connect to `addr` (TCP, then TLS if configured), authenticate if credentials are given,
    /// and PING.
    pub fn connect(addr: &str, opts: &ConnectionOptions) -> Result<Connection, SourceError> {
        let fail = |cause| SourceError::instance(addr, cause);
        if opts.password.is_none() && opts.username.is_some() {
            return Err(fail(Cause::Usage(
                "--username needs a password (--password)",
            )));
        }
        let (host, port) = split_host_port(addr).map_err(fail)?;
        let socket = tcp_connect(&host, port, opts.connect_timeout).map_err(fail)?;
        let _ = socket.set_nodelay(true);
        let clone = socket.try_clone().map_err(|source| {
            fail(Cause::Io {
                context: "cannot clone the socket".into(),
                source,
            })
        })?;
        let conn = match &opts.tls {
            None => Conn::Plain(socket),
            Some(tls) => Conn::Tls(Box::new(
                tls_handshake(socket, host, tls, opts.connect_timeout).map_err(fail)?,
            )),
        };
        let mut c = Connection {
            addr: addr.to_string(),
            io: BufReader::with_capacity(READ_BUFFER, conn),
            socket: clone,
            read_timeout: opts.read_timeout,
            tls_client_cert: opts.tls.as_ref().map(TlsConfig::has_client_cert),
        };
        let _ = c.socket.set_read_timeout(Some(nonzero(opts.read_timeout)));
        let _ = c.socket.set_write_timeout(Some(nonzero(opts.read_timeout)));

        if let Some(password) = &opts.password {
            let reply = match &opts.username {
                Some(user) => c.command(&[b"AUTH", user.as_bytes(), password.as_bytes()])?,
                None => c.command(&[b"AUTH", password.as_bytes()])?,
            };
            match reply {
                Reply::Simple(_) => {}
                Reply::Error(reply) => {
                    return Err(c.fail(Cause::AuthFailed {
                        reply,
                        with_user: opts.username.is_some(),
                    }));
                }
                other => return Err(c.unexpected("AUTH", &other, "")),
            }
        }
        match c.command(&[b"PING"])? {
            Reply::Simple(s) if s == "PONG" => Ok(c),
            Reply::Error(e) => Err(c.server_error("PING", e)),
            other => Err(c.unexpected("PING", &other, "; is this a Redis server?")),
        }
    }

    /// The server's `host:port`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// An error of this server.
    pub(super) fn fail(&self, cause: Cause) -> SourceError {
        SourceError::instance(self.addr.as_str(), cause)
    }

    /// The server's error reply to `command`.
    pub(super) fn server_error(&self, command: &str, reply: String) -> SourceError {
        self.fail(Cause::ServerError {
            command: command.to_string(),
            reply,
        })
    }

    /// A reply that makes no sense for `command`.
    pub(super) fn unexpected(&self, command: &str, reply: &Reply, hint: &str) -> SourceError {
        self.fail(Cause::Protocol(format!(
            "unexpected reply to {command}: {reply}{hint}"
        )))
    }

    /// The cause of a failed read or write during `context`.
    fn io_cause(&self, context: &str, e: RespError) -> Cause {
        let context = context.to_string();
        match e {
            RespError::Io(e) if is_timeout(&e) => Cause::Timeout {
                context,
                which: TimeoutKind::Read,
                after: self.read_timeout,
            },
            RespError::Io(e) => match (tls_error(&e), self.tls_client_cert) {
                (Some(tls), Some(client_cert)) => Cause::Tls {
                    context,
                    client_cert,
                    source: tls.clone(),
                },
                _ => Cause::Io { context, source: e },
            },
            RespError::Closed => Cause::Closed(context),
            RespError::Protocol(_) => Cause::Protocol(format!("{context}: {e}")),
        }
    }

    /// Send one command and read its reply (`-ERR` replies are returned, not turned into errors).
    pub fn command(&mut self, args: &[&[u8]]) -> Result<Reply, SourceError> {
        self.send(args)?;
        resp::read_reply(&mut self.io).map_err(|e| self.fail(self.io_cause(command_name(args), e)))
    }

    /// Send one command without waiting for its reply.
    pub(super) fn send(&mut self, args: &[&[u8]]) -> Result<(), SourceError> {
        resp::write_command(self.io.get_mut(), args)
            .map_err(|e| self.fail(self.io_cause(command_name(args), RespError::Io(e))))
    }

    /// Read one line (`what` names it in errors), skipping bare `\n` keep-alives.
    pub(super) fn read_line(&mut self, what: &str) -> Result<Vec<u8>, SourceError> {
        loop {
            let line =
                resp::read_line(&mut self.io).map_err(|e| self.fail(self.io_cause(what, e)))?;
            if !line.is_empty() {
                return Ok(line);
            }
        }
    }

    /// Hand the connection over to a snapshot reader: the buffered stream (which may already
    /// hold snapshot bytes), a handle that shuts the socket down, and the read timeout in
    /// force.
    pub(super) fn into_stream(self) -> (BufReader<Conn>, CancelHandle) {
        // `socket` is the clone `connect` kept for shutting the connection down.
        let socket = self.socket;
        let cancel: CancelHandle = Box::new(move || {
            let _ = socket.shutdown(Shutdown::Both);
        });
        (self.io, cancel)
    }

    /// The read timeout in force (for the messages of the snapshot readers).
    pub(super) fn read_timeout(&self) -> Duration {
        self.read_timeout
    }
}

/// The command's name, for messages.
fn command_name<'a>(args: &[&'a [u8]]) -> &'a str {
    args.first()
        .and_then(|a| std::str::from_utf8(a).ok())
        .unwrap_or("command")
}

/// Resolve `host` and connect to the first address that answers.
fn tcp_connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, Cause> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|source| Cause::Resolve {
            host: host.to_string(),
            source,
        })?
        .collect();
    let mut last = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, nonzero(timeout)) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some((a, e)),
        }
    }
    Err(match last {
        Some((a, e)) if is_timeout(&e) => Cause::Timeout {
            context: format!("cannot connect to {a}"),
            which: TimeoutKind::Connect,
            after: timeout,
        },
        Some((a, source)) => Cause::Io {
            context: format!("cannot connect to {a}"),
            source,
        },
        None => Cause::NoAddress(host.to_string()),
    })
}

/// Drive the TLS handshake now, under the connect timeout, for a clear error.
fn tls_handshake(
    mut socket: TcpStream,
    host: String,
    tls: &TlsConfig,
    timeout: Duration,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, Cause> {
    let name = ServerName::try_from(host.clone()).map_err(|source| Cause::ServerName {
        host: host.clone(),
        source,
    })?;
    let mut client = tls.client(name).map_err(|source| Cause::Tls {
        context: "TLS setup".into(),
        client_cert: tls.has_client_cert(),
        source,
    })?;
    let _ = socket.set_read_timeout(Some(nonzero(timeout)));
    let _ = socket.set_write_timeout(Some(nonzero(timeout)));
    let context = "TLS handshake";
    while client.is_handshaking() {
        client.complete_io(&mut socket).map_err(|e| {
            if is_timeout(&e) {
                Cause::Timeout {
                    context: format!("{context} (is TLS enabled on the server?)"),
                    which: TimeoutKind::Connect,
                    after: timeout,
                }
            } else if let Some(source) = tls_error(&e) {
                Cause::Tls {
                    context: context.into(),
                    client_cert: tls.has_client_cert(),
                    source: source.clone(),
                }
            } else if e.kind() == io::ErrorKind::UnexpectedEof {
                Cause::Closed(context.into())
            } else {
                Cause::Io {
                    context: context.into(),
                    source: e,
                }
            }
        })?;
    }
    Ok(rustls::StreamOwned::new(client, socket))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port() {
        assert_eq!(
            split_host_port("localhost:6379").ok(),
            Some(("localhost".into(), 6379))
        );
        assert_eq!(
            split_host_port("[::1]:7000").ok(),
            Some(("::1".into(), 7000))
        );
        assert_eq!(split_host_port("::1:7000").ok(), Some(("::1".into(), 7000)));
        assert!(split_host_port("localhost").is_err());
        assert!(split_host_port(":6379").is_err());
        assert!(split_host_port("[::1:7000").is_err());
        assert!(split_host_port("host:99999").is_err());
        assert_eq!(join_host_port("::1", 7000), "[::1]:7000");
        assert_eq!(join_host_port("10.0.0.1", 7000), "10.0.0.1:7000");
    }

    #[test]
    fn debug_hides_password() {
        let opts = ConnectionOptions {
            password: Some("hunter2".into()),
            ..Default::default()
        };
        assert!(!format!("{opts:?}").contains("hunter2"));
    }
}
