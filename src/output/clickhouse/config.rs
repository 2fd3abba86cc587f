//! `--url` / `--proxy-url` parsing and validation for the ClickHouse output.
//!
//! Accepted: `http[s]://[user[:password]@]host:port[/]?database=DB`. The port is required (no
//! guessing between 8123, 8443, 80 and 443); `database` is the only query parameter. User and
//! password come from the userinfo, percent-decoded (`%40` for `@`, `%3A` for `:`...).
//!
//! The password never leaves this module in text form: [`ClickHouseUrl`]'s `Display` and
//! `Debug` print `***` in its place, and error messages never quote the URL's userinfo.

use std::fmt;
use std::time::Duration;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A validated ClickHouse URL.
#[derive(Clone, PartialEq, Eq)]
pub struct ClickHouseUrl {
    pub scheme: Scheme,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: Option<String>,
    pub password: Option<String>,
}

/// A validated `--proxy-url`: `http://[user[:password]@]host:port`.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
}

/// Why a URL was rejected. The message never contains the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: {reason}")]
pub struct UrlError {
    /// `ClickHouse URL` or `proxy URL`.
    pub what: &'static str,
    pub reason: String,
}

/// The pieces of `scheme://[userinfo@]host:port[/path][?query]`, not yet validated further.
struct Parts<'a> {
    scheme: &'a str,
    userinfo: Option<&'a str>,
    host: &'a str,
    port: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
}

fn split<'a>(url: &'a str, what: &'static str) -> Result<Parts<'a>, UrlError> {
    let err = |reason: String| UrlError { what, reason };
    let url = url.trim();
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        err("expected scheme://host:port, e.g. http://127.0.0.1:8123?database=redis".into())
    })?;
    if rest.contains('#') {
        return Err(err("a fragment ('#') is not allowed".into()));
    }
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| err("unterminated '[' in the IPv6 host".into()))?;
        match after {
            "" => (host, None),
            p => match p.strip_prefix(':') {
                Some(p) => (host, Some(p)),
                None => return Err(err(format!("unexpected '{p}' after the IPv6 host"))),
            },
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    Ok(Parts {
        scheme,
        userinfo,
        host,
        port,
        path,
        query,
    })
}

/// Decode `%XX` escapes (and nothing else: `+` stays `+` in userinfo).
fn percent_decode(s: &str, what: &'static str, field: &str) -> Result<String, UrlError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| UrlError {
                    what,
                    reason: format!("bad percent-encoding in the {field}"),
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UrlError {
        what,
        reason: format!("the {field} is not valid UTF-8 after percent-decoding"),
    })
}

type Credentials = (Option<String>, Option<String>);

fn credentials(userinfo: Option<&str>, what: &'static str) -> Result<Credentials, UrlError> {
    let Some(userinfo) = userinfo else {
        return Ok((None, None));
    };
    let (user, password) = match userinfo.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (userinfo, None),
    };
    if user.is_empty() {
        return Err(UrlError {
            what,
            reason: "the user name before '@' is empty".into(),
        });
    }
    let user = percent_decode(user, what, "user name")?;
    let password = password
        .map(|p| percent_decode(p, what, "password"))
        .transpose()?;
    Ok((Some(user), password))
}

fn host_port(
    parts: &Parts<'_>,
    what: &'static str,
    example: &str,
) -> Result<(String, u16), UrlError> {
    let err = |reason: String| UrlError { what, reason };
    if parts.host.is_empty() {
        return Err(err(format!("the host is missing (e.g. {example})")));
    }
    let port = parts.port.filter(|p| !p.is_empty()).ok_or_else(|| {
        err(format!(
            "the port is missing: give it explicitly (e.g. {example}; ClickHouse's HTTP \
             port is usually 8123, or 8443 with TLS)"
        ))
    })?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| err(format!("'{port}' is not a valid port")))?;
    Ok((parts.host.to_string(), port))
}

impl ClickHouseUrl {
    /// Parse and validate `--url`.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        const WHAT: &str = "ClickHouse URL";
        const EXAMPLE: &str = "http://127.0.0.1:8123?database=redis";
        let err = |reason: String| UrlError { what: WHAT, reason };
        let parts = split(url, WHAT)?;
        let scheme = match parts.scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => {
                return Err(err(format!(
                    "unsupported scheme '{other}': use http:// or https:// (the HTTP \
                     interface, e.g. {EXAMPLE})"
                )));
            }
        };
        let (host, port) = host_port(&parts, WHAT, EXAMPLE)?;
        if !(parts.path.is_empty() || parts.path == "/") {
            return Err(err(format!(
                "unexpected path '{}': give the database as ?database=NAME",
                parts.path
            )));
        }
        let mut database = None;
        for pair in parts
            .query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "database" => {
                    if database.is_some() {
                        return Err(err("'database' is given more than once".into()));
                    }
                    database = Some(percent_decode(value, WHAT, "database name")?);
                }
                other => {
                    return Err(err(format!(
                        "unknown query parameter '{other}' (only 'database' is accepted)"
                    )));
                }
            }
        }
        let database = database.filter(|d| !d.is_empty()).ok_or_else(|| {
            err(format!(
                "the database is missing: add ?database=NAME (e.g. {EXAMPLE})"
            ))
        })?;
        let (user, password) = credentials(parts.userinfo, WHAT)?;
        Ok(ClickHouseUrl {
            scheme,
            host,
            port,
            database,
            user,
            password,
        })
    }

    /// `scheme://host:port`: what the HTTP client connects to (no credentials, no database).
    pub fn endpoint(&self) -> String {
        format!(
            "{}://{}:{}",
            self.scheme.as_str(),
            host_for_url(&self.host),
            self.port
        )
    }
}

impl ProxyUrl {
    /// Parse and validate `--proxy-url` (an HTTP forward proxy).
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        const WHAT: &str = "proxy URL";
        const EXAMPLE: &str = "http://proxy:3128";
        let err = |reason: String| UrlError { what: WHAT, reason };
        let parts = split(url, WHAT)?;
        if !parts.scheme.eq_ignore_ascii_case("http") {
            return Err(err(format!(
                "unsupported proxy scheme '{}': only an HTTP proxy (http://host:port) is supported",
                parts.scheme
            )));
        }
        let (host, port) = host_port(&parts, WHAT, EXAMPLE)?;
        if !(parts.path.is_empty() || parts.path == "/") || parts.query.is_some() {
            return Err(err("a proxy URL has no path or query".into()));
        }
        let (user, password) = credentials(parts.userinfo, WHAT)?;
        Ok(ProxyUrl {
            host,
            port,
            user,
            password,
        })
    }

    /// `http://host:port` (no credentials).
    pub fn endpoint(&self) -> String {
        format!("http://{}:{}", host_for_url(&self.host), self.port)
    }
}

fn host_for_url(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

fn fmt_userinfo(
    f: &mut fmt::Formatter<'_>,
    user: &Option<String>,
    password: &Option<String>,
) -> fmt::Result {
    if let Some(user) = user {
        f.write_str(user)?;
        if password.is_some() {
            f.write_str(":***")?;
        }
        f.write_str("@")?;
    }
    Ok(())
}

/// Redacted: `http://user:***@host:port/?database=db`.
impl fmt::Display for ClickHouseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme.as_str())?;
        fmt_userinfo(f, &self.user, &self.password)?;
        write!(
            f,
            "{}:{}/?database={}",
            host_for_url(&self.host),
            self.port,
            self.database
        )
    }
}

impl fmt::Debug for ClickHouseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClickHouseUrl({self})")
    }
}

/// Redacted: `http://user:***@host:port`.
impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("http://")?;
        fmt_userinfo(f, &self.user, &self.password)?;
        write!(f, "{}:{}", host_for_url(&self.host), self.port)
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({self})")
    }
}

/// Default `--ch-connect-timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `--ch-send-timeout`.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// Default `--ch-response-timeout`.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(300);

/// How long each step of a ClickHouse request may take. Each one, when it fires, is reported
/// by its flag name, so the user knows which to raise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `--ch-connect-timeout`: opening a connection (TCP, and TLS for `https://`).
    pub connect: Duration,
    /// `--ch-send-timeout`: the server accepting the next chunk of an INSERT's body (a server
    /// that stops reading, e.g. paused or hung).
    pub send: Duration,
    /// `--ch-response-timeout`: the server's answer once a request is sent (a query's result,
    /// an INSERT's acknowledgement after its last row, a DDL statement).
    pub response: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: DEFAULT_CONNECT_TIMEOUT,
            send: DEFAULT_SEND_TIMEOUT,
            response: DEFAULT_RESPONSE_TIMEOUT,
        }
    }
}

/// Everything `into-clickhouse` was given.
#[derive(Debug, Clone)]
pub struct ClickHouseConfig {
    pub url: ClickHouseUrl,
    pub proxy: Option<ProxyUrl>,
    /// Create the database, tables and view when missing.
    pub auto_create_tables: bool,
    /// Table TTL in days (used when creating tables).
    pub ttl_days: u32,
    pub timeouts: Timeouts,
    /// `--on-cluster NAME`: the sharded schema (see `schema`); inserts go through the
    /// `Distributed` table synchronously.
    pub on_cluster: Option<String>,
}

/// The `--on-cluster NAME` part of a suggested command line (empty without a cluster).
pub(crate) fn on_cluster_flag(on_cluster: Option<&str>) -> String {
    on_cluster
        .map(|c| format!(" --on-cluster {c}"))
        .unwrap_or_default()
}

impl ClickHouseConfig {
    /// Validate the command-line values (default timeouts, no `--on-cluster`).
    pub fn new(
        url: &str,
        proxy_url: Option<&str>,
        auto_create_tables: bool,
        ttl_days: u32,
    ) -> Result<Self, UrlError> {
        let url = ClickHouseUrl::parse(url)?;
        let proxy = proxy_url.map(ProxyUrl::parse).transpose()?;
        if ttl_days == 0 {
            return Err(UrlError {
                what: "--ttl-days",
                reason: "must be at least 1".into(),
            });
        }
        Ok(ClickHouseConfig {
            url,
            proxy,
            auto_create_tables,
            ttl_days,
            timeouts: Timeouts::default(),
            on_cluster: None,
        })
    }

    /// Set `--on-cluster` (a ClickHouse cluster name from the server's `remote_servers`).
    pub fn with_on_cluster(mut self, name: Option<&str>) -> Result<Self, UrlError> {
        self.on_cluster = Self::on_cluster_name(name)?;
        Ok(self)
    }

    /// `--on-cluster` as the schema uses it: trimmed, and not empty.
    pub fn on_cluster_name(name: Option<&str>) -> Result<Option<String>, UrlError> {
        match name.map(str::trim) {
            None => Ok(None),
            Some("") => Err(UrlError {
                what: "--on-cluster",
                reason: "the cluster name is empty".into(),
            }),
            Some(n) => Ok(Some(n.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_url() {
        let u = ClickHouseUrl::parse("https://al%40ice:p%3Ass@ch.example:8443/?database=redis")
            .expect("valid");
        assert_eq!(u.scheme, Scheme::Https);
        assert_eq!(u.host, "ch.example");
        assert_eq!(u.port, 8443);
        assert_eq!(u.database, "redis");
        assert_eq!(u.user.as_deref(), Some("al@ice"));
        assert_eq!(u.password.as_deref(), Some("p:ss"));
        assert_eq!(u.endpoint(), "https://ch.example:8443");
        let shown = format!("{u} {u:?}");
        assert!(
            !shown.contains("p:ss") && !shown.contains("p%3Ass"),
            "{shown}"
        );
        assert_eq!(
            u.to_string(),
            "https://al@ice:***@ch.example:8443/?database=redis"
        );
    }

    #[test]
    fn minimal_and_ipv6() {
        let u = ClickHouseUrl::parse("http://127.0.0.1:8123?database=db1").expect("valid");
        assert_eq!((u.user, u.password), (None, None));
        let u = ClickHouseUrl::parse("http://[::1]:8123?database=db1").expect("valid");
        assert_eq!(u.host, "::1");
        assert_eq!(u.endpoint(), "http://[::1]:8123");
        let u = ClickHouseUrl::parse("http://bob@h:1?database=d").expect("valid");
        assert_eq!(u.user.as_deref(), Some("bob"));
        assert_eq!(u.password, None);
    }

    fn reason(url: &str) -> String {
        ClickHouseUrl::parse(url).expect_err(url).to_string()
    }

    #[test]
    fn rejected() {
        assert!(reason("http://h?database=d").contains("port is missing"));
        assert!(reason("http://h:?database=d").contains("port is missing"));
        assert!(reason("http://h:x?database=d").contains("not a valid port"));
        assert!(reason("tcp://h:9000?database=d").contains("unsupported scheme 'tcp'"));
        assert!(reason("h:8123?database=d").contains("expected scheme://"));
        assert!(reason("http://h:8123").contains("database is missing"));
        assert!(reason("http://h:8123?database=").contains("database is missing"));
        assert!(reason("http://h:8123/db").contains("unexpected path"));
        assert!(reason("http://h:8123?database=d&user=x").contains("unknown query parameter"));
        let r = reason("http://u:secret@h?database=d");
        assert!(!r.contains("secret"), "{r}");
    }

    #[test]
    fn proxy() {
        let p = ProxyUrl::parse("http://u:pw@proxy:3128").expect("valid");
        assert_eq!(p.endpoint(), "http://proxy:3128");
        assert_eq!(p.to_string(), "http://u:***@proxy:3128");
        assert!(ProxyUrl::parse("socks5://proxy:1080").is_err());
        assert!(ProxyUrl::parse("http://proxy").is_err());
    }
}
