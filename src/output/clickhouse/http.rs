//! The HTTP client under `clickhouse::Client`, built here rather than taken from
//! `Client::default()` for one reason: a connect timeout (`--ch-connect-timeout`), which the
//! crate's default client does not have. A connection attempt (TCP, plus the TLS handshake for
//! `https://`, or the TCP connection to `--proxy-url`) that takes longer fails with
//! [`ConnectTimeout`], which [`super::error`] names by its flag.
//!
//! Otherwise it is the crate's default: hyper-util's pooled client, TCP keep-alive, rustls with
//! ring and the bundled Mozilla roots (`https://`), HTTP/1.1, idle connections dropped after 2 s
//! (ClickHouse closes them after 3 s).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::config::ClickHouseConfig;
use super::proxy::ProxyConnector;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// TCP keep-alive probes on idle connections (the crate's default).
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
/// Idle pooled connections are dropped after this (ClickHouse closes them after 3 s).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection attempt took longer than `--ch-connect-timeout`.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("no connection within {} s (--ch-connect-timeout)", .0.as_secs())]
pub struct ConnectTimeout(pub Duration);

/// Wraps a connector so that each connection attempt is bounded by a timeout.
#[derive(Clone)]
pub struct TimeoutConnector<C> {
    inner: C,
    timeout: Duration,
}

impl<C> tower_service::Service<Uri> for TimeoutConnector<C>
where
    C: tower_service::Service<Uri> + Send,
    C::Error: Into<BoxError>,
    C::Future: Send + 'static,
    C::Response: Send + 'static,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let connecting = self.inner.call(dst);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(result) => result.map_err(Into::into),
                Err(_) => Err(Box::new(ConnectTimeout(timeout)) as BoxError),
            }
        })
    }
}

fn tcp_connector() -> HttpConnector {
    let mut tcp = HttpConnector::new();
    tcp.set_keepalive(Some(TCP_KEEPALIVE));
    tcp.enforce_http(false);
    tcp
}

/// A `clickhouse::Client` (no URL, database or credentials yet) for `config`: direct, or
/// through the HTTP proxy of `--proxy-url`.
pub fn client(config: &ClickHouseConfig) -> Result<clickhouse::Client, String> {
    let builder = || {
        let mut b = hyper_util::client::legacy::Client::builder(TokioExecutor::new());
        b.pool_idle_timeout(POOL_IDLE_TIMEOUT);
        b
    };
    let timeout = config.timeouts.connect;
    match &config.proxy {
        None => {
            let tls = hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
                .map_err(|e| format!("cannot set up TLS: {e}"))?
                .https_or_http()
                .enable_http1()
                .wrap_connector(tcp_connector());
            let http = builder().build(TimeoutConnector {
                inner: tls,
                timeout,
            });
            Ok(clickhouse::Client::with_http_client(http))
        }
        Some(proxy) => {
            let connector = ProxyConnector::new(proxy, tcp_connector())?;
            let http = builder().build(TimeoutConnector {
                inner: connector,
                timeout,
            });
            Ok(super::proxy::with_proxy_auth(
                clickhouse::Client::with_http_client(http),
                proxy,
            ))
        }
    }
}
