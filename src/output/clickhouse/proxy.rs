//! `--proxy-url`: an HTTP forward proxy for `http://` ClickHouse URLs.
//!
//! The `clickhouse` crate has no proxy setting, but takes any hyper-util legacy client. This
//! connector opens every TCP connection to the proxy instead of to ClickHouse and marks it as
//! proxied, so hyper sends requests in absolute form (`POST http://ch:8123/?... HTTP/1.1`),
//! which is how a plain HTTP proxy (Squid, Tinyproxy, ...) forwards them. Proxy credentials
//! from the proxy URL go into a `Proxy-Authorization: Basic` header.
//!
//! Not supported (rejected with an error before anything connects): an `https://` ClickHouse
//! URL through a proxy (that would need a CONNECT tunnel), and SOCKS proxies.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::config::ProxyUrl;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Connects to the proxy, whatever the destination.
#[derive(Clone)]
pub struct ProxyConnector {
    inner: HttpConnector,
    proxy: Uri,
}

impl ProxyConnector {
    /// Connects to `proxy` with `tcp` (which carries the TCP settings).
    pub fn new(proxy: &ProxyUrl, tcp: HttpConnector) -> Result<Self, String> {
        let proxy: Uri = proxy
            .endpoint()
            .parse()
            .map_err(|e| format!("invalid proxy URL {proxy}: {e}"))?;
        Ok(ProxyConnector { inner: tcp, proxy })
    }
}

impl tower_service::Service<Uri> for ProxyConnector {
    type Response = ProxiedStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<ProxiedStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        if dst.scheme_str() != Some("http") {
            return Box::pin(async move {
                Err(
                    format!("only http:// destinations can go through the HTTP proxy, not {dst}")
                        .into(),
                )
            });
        }
        let proxy = self.proxy.clone();
        let connecting = self.inner.call(proxy.clone());
        Box::pin(async move {
            let stream = connecting
                .await
                .map_err(|e| format!("cannot connect to the proxy {proxy}: {e}"))?;
            Ok(ProxiedStream(stream))
        })
    }
}

/// A connection to the proxy; tells hyper to use absolute-form request targets.
pub struct ProxiedStream(TokioIo<TcpStream>);

impl Connection for ProxiedStream {
    fn connected(&self) -> Connected {
        self.0.connected().proxy(true)
    }
}

impl hyper::rt::Read for ProxiedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for ProxiedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }
}

/// `client` (whose connector is a [`ProxyConnector`]) with the proxy's credentials, if any,
/// in a `Proxy-Authorization: Basic` header.
pub fn with_proxy_auth(client: clickhouse::Client, proxy: &ProxyUrl) -> clickhouse::Client {
    use base64::Engine as _;
    match &proxy.user {
        Some(user) => {
            let creds = format!("{user}:{}", proxy.password.as_deref().unwrap_or(""));
            let token = base64::engine::general_purpose::STANDARD.encode(creds);
            client.with_header("Proxy-Authorization", format!("Basic {token}"))
        }
        None => client,
    }
}
