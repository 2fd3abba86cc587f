//! Real `redis-server` processes for tests: each on a free port of 127.0.0.1 with its own
//! temporary directory, waited for until it answers PING, killed on drop. A server can be
//! TLS-only (certificates from [`super::pki`]); `cli` then speaks TLS with a client
//! certificate.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::pki::Pki;

/// A free TCP port on 127.0.0.1 (there is a small race until the server binds it).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// One running `redis-server`.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// `requirepass`, if set, for `cli`.
    pub password: Option<String>,
    /// `redis-cli` TLS arguments for a TLS-only server.
    cli_tls: Vec<String>,
}

impl RedisServer {
    /// Start a server with extra config arguments (`["--requirepass", "x"]`, ...).
    pub fn start(extra: &[&str]) -> RedisServer {
        Self::start_with(None, extra)
    }

    /// Start a TLS-only server (`--port 0`, `port` is its TLS port) with `pki`'s certificates,
    /// requiring client certificates when `auth_clients`.
    pub fn start_tls(pki: &Pki, auth_clients: bool, extra: &[&str]) -> RedisServer {
        Self::start_with(Some((pki, auth_clients)), extra)
    }

    fn start_with(tls: Option<(&Pki, bool)>, extra: &[&str]) -> RedisServer {
        let mut last = String::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = free_port();
            let mut args: Vec<String> = vec!["--port".into(), port.to_string()];
            let mut cli_tls = Vec::new();
            if let Some((pki, auth_clients)) = tls {
                args = pki.server_args(port, auth_clients);
                cli_tls = pki.cli_args();
            }
            args.extend(extra.iter().map(|s| s.to_string()));
            match Self::try_start(dir, port, args, cli_tls) {
                Ok(s) => return s,
                Err(e) => last = e,
            }
        }
        panic!("cannot start redis-server: {last}");
    }

    fn try_start(
        dir: tempfile::TempDir,
        port: u16,
        extra: Vec<String>,
        cli_tls: Vec<String>,
    ) -> Result<RedisServer, String> {
        let log = dir.path().join("redis.log");
        let mut args: Vec<String> = vec![
            "--bind".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            dir.path().display().to_string(),
            "--logfile".into(),
            log.display().to_string(),
            "--save".into(),
            "".into(),
            "--appendonly".into(),
            "no".into(),
            "--daemonize".into(),
            "no".into(),
            "--protected-mode".into(),
            "no".into(),
            "--enable-debug-command".into(),
            "yes".into(),
            // Diskless sync (the Redis 7 default) otherwise waits 5 s for more replicas.
            "--repl-diskless-sync-delay".into(),
            "0".into(),
        ];
        let password = extra
            .iter()
            .position(|a| *a == "--requirepass")
            .and_then(|i| extra.get(i + 1))
            .cloned();
        args.extend(extra);
        let child = Command::new("redis-server")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn redis-server: {e}"))?;
        let mut server = RedisServer {
            child: Some(child),
            port,
            dir,
            password,
            cli_tls,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(c) = server.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!("redis-server exited with {status}: {log}"));
            }
            if server.answers_ping() {
                return Ok(server);
            }
            sleep(Duration::from_millis(20));
        }
        server.kill();
        let ping = server.cli_command().arg("PING").output();
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        Err(format!(
            "redis-server did not answer PING within 10 s (redis-cli: {ping:?}); log:\n{log}"
        ))
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the server is up (answers PING, or asks for a password).
    fn answers_ping(&self) -> bool {
        if self.cli_tls.is_empty() {
            return ping(self.port);
        }
        self.cli_command()
            .arg("PING")
            .output()
            .is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"PONG"))
    }

    /// `redis-cli` with this server's address, password and TLS arguments.
    fn cli_command(&self) -> Command {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        cmd.args(&self.cli_tls);
        if let Some(p) = &self.password {
            cmd.args(["-a", p, "--no-auth-warning"]);
        }
        cmd
    }

    /// Run `redis-cli` against this server; returns trimmed stdout. Panics on failure.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = super::cli::succeeds(self.cli_command().args(args));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Feed commands to `redis-cli` on stdin (one per line), e.g. to load data quickly.
    pub fn cli_pipe(&self, script: &str) {
        let mut child = self
            .cli_command()
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run redis-cli");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("write script");
        let out = child.wait_with_output().expect("wait for redis-cli");
        assert!(out.status.success(), "redis-cli script failed");
    }

    /// `INFO section` as `(field, value)` lookups.
    pub fn info_field(&self, section: &str, field: &str) -> Option<String> {
        let info = self.cli(&["INFO", section]);
        info.lines().find_map(|l| {
            l.trim()
                .strip_prefix(field)
                .and_then(|r| r.strip_prefix(':'))
                .map(|v| v.to_string())
        })
    }

    /// `SAVE` and return the path of the dump.
    pub fn save(&self) -> PathBuf {
        assert_eq!(self.cli(&["SAVE"]), "OK");
        self.dir.path().join("dump.rdb")
    }

    /// Kill the process (SIGKILL) and wait for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether something on `port` answers a RESP PING (PONG, or an auth error: it is up).
pub fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(n) if n > 0 => buf[0] == b'+' || buf.starts_with(b"-NOAUTH"),
        _ => false,
    }
}

/// Poll `cond` every 100 ms until it holds or `timeout` passes; panics with `what` then.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// A Redis Cluster of `masters` masters with one replica each, all on 127.0.0.1.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

/// One line of `CLUSTER NODES`, reduced to what tests need.
#[derive(Debug, Clone)]
pub struct NodeLine {
    pub id: String,
    pub port: u16,
    pub flags: String,
    pub master_id: String,
    /// `connected` or `disconnected`.
    pub link_state: String,
    /// Owned slot ranges, inclusive (importing/migrating entries left out).
    pub slots: Vec<(u16, u16)>,
}

impl NodeLine {
    /// Not failing and its link up (what the dump's discovery calls healthy).
    pub fn is_healthy(&self) -> bool {
        !self
            .flags
            .split(',')
            .any(|f| f == "fail" || f == "fail?" || f == "noaddr")
            && self.link_state == "connected"
    }
}

/// The lines of `CLUSTER NODES` output.
pub fn parse_nodes(text: &str) -> Vec<NodeLine> {
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let addr = f[1].split('@').next().expect("addr");
            let port = addr
                .rsplit(':')
                .next()
                .expect("port")
                .parse()
                .expect("port");
            let slots = f[8..]
                .iter()
                .filter(|s| !s.starts_with('['))
                .map(|s| {
                    let (a, b) = s.split_once('-').unwrap_or((s, s));
                    (a.parse().expect("slot"), b.parse().expect("slot"))
                })
                .collect();
            NodeLine {
                id: f[0].to_string(),
                port,
                flags: f[2].to_string(),
                master_id: f[3].to_string(),
                link_state: f[7].to_string(),
                slots,
            }
        })
        .collect()
}

impl RedisCluster {
    pub fn start(masters: usize) -> RedisCluster {
        Self::start_with(masters, None)
    }

    /// A cluster that speaks only TLS, between nodes too (`tls-cluster`, `tls-replication`),
    /// requiring client certificates.
    pub fn start_tls(masters: usize, pki: &Pki) -> RedisCluster {
        Self::start_with(masters, Some(pki))
    }

    fn start_with(masters: usize, tls: Option<&Pki>) -> RedisCluster {
        let config = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "1000",
            "--repl-diskless-sync",
            "no",
        ];
        let tls_config = ["--tls-cluster", "yes", "--tls-replication", "yes"];
        let nodes: Vec<RedisServer> = (0..masters * 2)
            .map(|_| match tls {
                None => RedisServer::start(&config),
                Some(pki) => {
                    RedisServer::start_tls(pki, true, &[&config[..], &tls_config].concat())
                }
            })
            .collect();
        let mut args: Vec<String> = tls.map(Pki::cli_args).unwrap_or_default();
        args.extend(["--cluster".into(), "create".into()]);
        args.extend(nodes.iter().map(|n| n.addr()));
        args.extend([
            "--cluster-replicas".into(),
            "1".into(),
            "--cluster-yes".into(),
        ]);
        super::cli::succeeds(Command::new("redis-cli").args(&args));
        let cluster = RedisCluster { nodes };
        wait_until(
            "cluster_state:ok on every node",
            Duration::from_secs(60),
            || {
                cluster
                    .nodes
                    .iter()
                    .all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
            },
        );
        wait_until(
            "every node to know every other",
            Duration::from_secs(60),
            || {
                cluster.nodes.iter().all(|n| {
                    let lines = n.cli(&["CLUSTER", "NODES"]);
                    lines.lines().count() == masters * 2
                        && lines.lines().filter(|l| l.contains("master")).count() == masters
                        && lines.lines().filter(|l| l.contains("slave")).count() == masters
                        && !lines.contains("handshake")
                        && !lines.contains("fail")
                })
            },
        );
        wait_until("replicas in sync", Duration::from_secs(60), || {
            cluster.replicas().iter().all(|r| {
                cluster
                    .node(r.port)
                    .info_field("replication", "master_link_status")
                    == Some("up".into())
            })
        });
        cluster
    }

    pub fn node(&self, port: u16) -> &RedisServer {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .expect("no such node")
    }

    pub fn node_mut(&mut self, port: u16) -> &mut RedisServer {
        self.nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("no such node")
    }

    /// `CLUSTER NODES` as seen by the first running node.
    pub fn topology(&self) -> Vec<NodeLine> {
        let n = self
            .nodes
            .iter()
            .find(|n| n.is_running())
            .expect("a running node");
        parse_nodes(&n.cli(&["CLUSTER", "NODES"]))
    }

    pub fn replicas(&self) -> Vec<NodeLine> {
        self.topology()
            .into_iter()
            .filter(|n| n.flags.contains("slave"))
            .collect()
    }

    pub fn masters(&self) -> Vec<NodeLine> {
        self.topology()
            .into_iter()
            .filter(|n| n.flags.contains("master"))
            .collect()
    }

    /// `SET key v` for each key, on the master that owns its slot, then wait until every
    /// replica holds as many keys as its master.
    pub fn set_keys(&self, keys: &[String]) {
        let nodes = parse_nodes(&self.nodes[0].cli(&["CLUSTER", "NODES"]));
        let mut scripts: BTreeMap<u16, String> = BTreeMap::new();
        for k in keys {
            let slot = rdbinsight::slot::redis_slot(k.as_bytes());
            let owner = nodes
                .iter()
                .find(|n| {
                    n.flags.contains("master")
                        && n.slots.iter().any(|&(a, b)| (a..=b).contains(&slot))
                })
                .expect("every slot has an owner");
            scripts
                .entry(owner.port)
                .or_default()
                .push_str(&format!("SET {k} v\n"));
        }
        for (port, script) in &scripts {
            self.node(*port).cli_pipe(script);
        }
        wait_until("replicas caught up", Duration::from_secs(30), || {
            self.replicas().iter().all(|r| {
                let m = self
                    .masters()
                    .into_iter()
                    .find(|m| m.id == r.master_id)
                    .expect("master");
                self.node(r.port).cli(&["DBSIZE"]) == self.node(m.port).cli(&["DBSIZE"])
            })
        });
    }

    /// Seed addresses (every node).
    pub fn seeds(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.addr()).collect()
    }
}
