//! Redis Cluster topology discovery: ask any reachable seed for `CLUSTER NODES`, and pick one
//! node per shard that owns slots — a healthy replica when there is one (reading a replica
//! spares the master the fork), else the master (with a warning), unless `--require-slave`.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::connection::{Connection, ConnectionOptions, join_host_port, split_host_port};
use super::error::{Cause, DiscoveryError, chain};
use super::resp::Reply;
use super::{Instance, InstanceOpener, SlotKind, SourceError};
use crate::slot::REDIS_SLOTS;

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    pub id: String,
    /// IP (or host) without brackets; empty when the node does not know its own address yet.
    pub host: String,
    pub port: u16,
    /// The announced hostname (`ip:port@cport,hostname`), if any.
    pub hostname: Option<String>,
    pub flags: Vec<String>,
    /// The master's id for a replica.
    pub master_id: Option<String>,
    pub link_connected: bool,
    /// Owned slot ranges (inclusive); importing/migrating entries are not counted.
    pub slots: Vec<(u16, u16)>,
}

impl ClusterNode {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    pub fn is_master(&self) -> bool {
        self.has_flag("master")
    }

    pub fn is_replica(&self) -> bool {
        self.has_flag("slave")
    }

    /// Reachable and not suspected to have failed.
    pub fn is_healthy(&self) -> bool {
        !["fail", "fail?", "handshake", "noaddr"]
            .iter()
            .any(|f| self.has_flag(f))
            && (self.link_connected || self.has_flag("myself"))
            && !self.host.is_empty()
    }

    /// `host:port` to connect to (IPv6 in brackets).
    pub fn addr(&self) -> String {
        join_host_port(&self.host, self.port)
    }

    fn slot_count(&self) -> u32 {
        self.slots
            .iter()
            .map(|&(a, b)| u32::from(b) - u32::from(a) + 1)
            .sum()
    }

    fn describe_slots(&self) -> String {
        let parts: Vec<String> = self
            .slots
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        parts.join(",")
    }

    /// "master 10.0.0.1:7000 (slots 0-5460)" — how errors name a shard.
    pub fn describe_shard(&self) -> String {
        format!(
            "shard of master {} ({}, slots {})",
            self.addr(),
            self.id,
            self.describe_slots()
        )
    }
}

/// Parse the `host:port@cport[,hostname[,aux=...]]` field (older servers: `host:port`).
fn parse_node_addr(field: &str) -> Result<(String, u16, Option<String>), String> {
    let (hostport, rest) = match field.split_once('@') {
        Some((hp, rest)) => (hp, Some(rest)),
        None => (field, None),
    };
    let (host, port) = hostport
        .rsplit_once(':')
        .ok_or_else(|| format!("bad node address '{field}'"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("bad port in node address '{field}'"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let hostname = rest
        .and_then(|r| r.split(',').nth(1))
        .filter(|h| !h.is_empty() && !h.contains('='))
        .map(str::to_string);
    Ok((host.to_string(), port, hostname))
}

/// Parse `CLUSTER NODES` output.
pub fn parse_cluster_nodes(text: &str) -> Result<Vec<ClusterNode>, String> {
    let mut nodes = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            return Err(format!("bad CLUSTER NODES line '{line}'"));
        }
        let (host, port, hostname) = parse_node_addr(f[1])?;
        let mut slots = Vec::new();
        for s in &f[8..] {
            if s.starts_with('[') {
                continue; // [slot->-id] migrating / [slot-<-id] importing
            }
            let (a, b) = match s.split_once('-') {
                Some((a, b)) => (a, b),
                None => (*s, *s),
            };
            let (a, b): (u16, u16) = match (a.parse(), b.parse()) {
                (Ok(a), Ok(b)) if a <= b && b < REDIS_SLOTS => (a, b),
                _ => return Err(format!("bad slot range '{s}' in line '{line}'")),
            };
            slots.push((a, b));
        }
        nodes.push(ClusterNode {
            id: f[0].to_string(),
            host,
            port,
            hostname,
            flags: f[2].split(',').map(str::to_string).collect(),
            master_id: (f[3] != "-").then(|| f[3].to_string()),
            link_connected: f[7] == "connected",
            slots,
        });
    }
    if nodes.is_empty() {
        return Err("CLUSTER NODES returned no node".into());
    }
    Ok(nodes)
}

/// The node chosen for one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub node: ClusterNode,
    /// The shard's master (equal to `node` when the master itself is read).
    pub master: ClusterNode,
}

impl Choice {
    pub fn is_master(&self) -> bool {
        self.node.id == self.master.id
    }
}

/// Pick one node per slot-owning shard (sorted by first slot), without probing the replicas.
#[cfg(test)]
fn choose_nodes(nodes: &[ClusterNode], require_slave: bool) -> Result<Vec<Choice>, DiscoveryError> {
    choose_nodes_probed(nodes, require_slave, |_| Ok(()))
}

/// Pick one node per slot-owning shard (sorted by first slot). A replica that the topology
/// calls healthy must also pass `probe` (e.g. its link to the master is up) to be chosen.
pub fn choose_nodes_probed(
    nodes: &[ClusterNode],
    require_slave: bool,
    mut probe: impl FnMut(&ClusterNode) -> Result<(), String>,
) -> Result<Vec<Choice>, DiscoveryError> {
    let mut masters: Vec<&ClusterNode> = nodes
        .iter()
        .filter(|n| n.is_master() && !n.slots.is_empty())
        .collect();
    if masters.is_empty() {
        return Err(DiscoveryError::NoSlotOwner);
    }
    masters.sort_by_key(|m| m.slots.iter().map(|s| s.0).min());
    let covered: u32 = masters.iter().map(|m| m.slot_count()).sum();
    if covered < u32::from(REDIS_SLOTS) {
        tracing::warn!(
            "only {covered} of {REDIS_SLOTS} slots are assigned; keys of unassigned slots are \
             not in any snapshot"
        );
    }
    let mut out = Vec::new();
    for master in masters {
        let mut replicas: Vec<&ClusterNode> = nodes
            .iter()
            .filter(|n| n.is_replica() && n.master_id.as_deref() == Some(master.id.as_str()))
            .collect();
        replicas.sort_by_key(|r| r.addr());
        let healthy = replicas
            .iter()
            .filter(|r| r.is_healthy())
            .find(|r| match probe(r) {
                Ok(()) => true,
                Err(why) => {
                    tracing::warn!(
                        "{}: skipping replica {}: {why}",
                        master.describe_shard(),
                        r.addr()
                    );
                    false
                }
            });
        let node = match healthy {
            Some(r) => (*r).clone(),
            None if require_slave => {
                return Err(DiscoveryError::NoHealthyReplica {
                    shard: master.describe_shard(),
                    replicas: if replicas.is_empty() {
                        "it has none".to_string()
                    } else {
                        replicas
                            .iter()
                            .map(|r| format!("{} [{}]", r.addr(), r.flags.join(",")))
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                });
            }
            None if master.is_healthy() => {
                tracing::warn!(
                    "{} has no healthy replica; reading the master (it will fork for the \
                     snapshot; use --require-slave to refuse)",
                    master.describe_shard()
                );
                master.clone()
            }
            None => {
                return Err(DiscoveryError::NoHealthyNode {
                    shard: master.describe_shard(),
                    flags: master.flags.join(","),
                });
            }
        };
        out.push(Choice {
            node,
            master: master.clone(),
        });
    }
    Ok(out)
}

/// Ask the seeds, in order, for `CLUSTER NODES`; the first answer wins.
pub fn fetch_nodes(
    seeds: &[String],
    opts: &ConnectionOptions,
) -> Result<Vec<ClusterNode>, DiscoveryError> {
    let mut errors = Vec::new();
    for seed in seeds {
        let seed = seed.trim();
        if seed.is_empty() {
            continue;
        }
        match fetch_from(seed, opts) {
            Ok(nodes) => return Ok(nodes),
            Err(e) => {
                tracing::warn!("seed {}", chain(&e));
                errors.push(e);
            }
        }
    }
    if errors.is_empty() {
        return Err(DiscoveryError::NoSeed);
    }
    Err(DiscoveryError::NoSeedAnswered(errors))
}

fn fetch_from(seed: &str, opts: &ConnectionOptions) -> Result<Vec<ClusterNode>, SourceError> {
    let mut c = Connection::connect(seed, opts)?;
    let text = match c.command(&[b"CLUSTER", b"NODES"])? {
        Reply::Bulk(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
        Reply::Error(e) => return Err(c.server_error("CLUSTER NODES", e)),
        other => return Err(c.unexpected("CLUSTER NODES", &other, "")),
    };
    let mut nodes = parse_cluster_nodes(&text).map_err(|e| c.fail(Cause::Protocol(e)))?;
    fill_missing_hosts(&mut nodes, seed);
    Ok(nodes)
}

/// A node that does not know its own address yet reports an empty host: it is the seed.
/// Otherwise an empty IP is replaced by the announced hostname, if any.
pub fn fill_missing_hosts(nodes: &mut [ClusterNode], seed: &str) {
    let seed_host = split_host_port(seed).ok().map(|(h, _)| h);
    for n in nodes.iter_mut() {
        if !n.host.is_empty() {
            continue;
        }
        if n.has_flag("myself")
            && let Some(h) = &seed_host
        {
            n.host = h.clone();
        } else if let Some(h) = &n.hostname {
            n.host = h.clone();
        }
    }
}

/// Check that a replica can serve a snapshot: reachable, its link to the master up and no
/// initial sync in progress (otherwise it refuses PSYNC or holds stale data).
fn probe_replica(node: &ClusterNode, opts: &ConnectionOptions) -> Result<(), String> {
    let mut c = Connection::connect(&node.addr(), opts).map_err(|e| chain(&e))?;
    let info = match c
        .command(&[b"INFO", b"replication"])
        .map_err(|e| chain(&e))?
    {
        Reply::Bulk(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
        other => return Err(format!("unexpected reply to INFO replication: {other}")),
    };
    replica_ready(&info)
}

/// Judge `INFO replication` of a replica.
pub fn replica_ready(info: &str) -> Result<(), String> {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
    };
    match field("master_link_status") {
        Some("up") => {}
        Some(other) => return Err(format!("its link to the master is {other}")),
        None => return Err("INFO replication shows no master link (not a replica?)".into()),
    }
    if field("master_sync_in_progress") == Some("1") {
        return Err("it is still syncing from its master".into());
    }
    Ok(())
}

/// Discover the cluster and return one instance per shard.
pub fn discover(
    seeds: &[String],
    opts: &Arc<ConnectionOptions>,
    require_slave: bool,
) -> Result<Vec<Instance>, DiscoveryError> {
    let nodes = fetch_nodes(seeds, opts)?;
    let choices = choose_nodes_probed(&nodes, require_slave, |r| probe_replica(r, opts))?;
    let mut seen = BTreeSet::new();
    let mut instances = Vec::new();
    for c in choices {
        // Over TLS, connect by the announced hostname (what certificates name) when there is one.
        let addr = match (&opts.tls, &c.node.hostname) {
            (Some(_), Some(h)) => join_host_port(h, c.node.port),
            _ => c.node.addr(),
        };
        if !seen.insert(addr.clone()) {
            continue;
        }
        tracing::info!(
            "{}: reading {} {addr}",
            c.master.describe_shard(),
            if c.is_master() { "master" } else { "replica" }
        );
        instances.push(Instance {
            name: addr.clone(),
            slots: Some(SlotKind::Redis),
            opener: InstanceOpener::Redis {
                addr,
                options: Arc::clone(opts),
            },
        });
    }
    Ok(instances)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Redis 7 output of a 3×2 cluster (one replica failed, one migrating slot).
    const SAMPLE: &str = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,host-4 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002,host-2 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003 master - 0 1426238318243 3 connected 10923-16383 [16000->-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]
6ec23923021cf3ffec47632106199cb7f496ce01 127.0.0.1:30005@31005 slave,fail 67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 1426238316232 1426238316232 5 disconnected
824fe116063bc5fcf9f4ffd895bc17aee7731ac3 127.0.0.1:30006@31006 slave 292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 0 1426238317741 6 connected
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460
";

    #[test]
    fn parses_redis7_sample() {
        let nodes = parse_cluster_nodes(SAMPLE).expect("parse");
        assert_eq!(nodes.len(), 6);
        let n = &nodes[0];
        assert_eq!(n.host, "127.0.0.1");
        assert_eq!(n.port, 30004);
        assert_eq!(n.hostname.as_deref(), Some("host-4"));
        assert!(n.is_replica() && n.is_healthy());
        assert_eq!(
            n.master_id.as_deref(),
            Some("e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca")
        );
        assert_eq!(nodes[2].slots, vec![(10923, 16383)]);
        assert!(!nodes[3].is_healthy());
        assert!(nodes[5].has_flag("myself"));
        assert_eq!(nodes[5].slots, vec![(0, 5460)]);
        assert_eq!(nodes[5].master_id, None);
    }

    #[test]
    fn chooses_replicas_and_falls_back_to_masters() {
        let nodes = parse_cluster_nodes(SAMPLE).expect("parse");
        let chosen = choose_nodes(&nodes, false).expect("choose");
        let addrs: Vec<String> = chosen.iter().map(|c| c.node.addr()).collect();
        assert_eq!(
            addrs,
            vec!["127.0.0.1:30004", "127.0.0.1:30002", "127.0.0.1:30006"]
        );
        assert!(chosen[1].is_master());

        let err = choose_nodes(&nodes, true)
            .expect_err("require slave")
            .to_string();
        assert!(err.contains("127.0.0.1:30002"), "{err}");
        assert!(err.contains("5461-10922"), "{err}");
        assert!(err.contains("--require-slave"), "{err}");
    }

    #[test]
    fn parses_address_forms() {
        type Parsed<'a> = (&'a str, u16, Option<&'a str>);
        let cases: [(&str, Parsed); 6] = [
            ("::1:7000@17000", ("::1", 7000, None)),
            ("[::1]:7000@17000", ("::1", 7000, None)),
            (
                "10.0.0.1:7000@17000,redis-0.example",
                ("10.0.0.1", 7000, Some("redis-0.example")),
            ),
            (
                "10.0.0.1:7000@17000,,shard-id=abc",
                ("10.0.0.1", 7000, None),
            ),
            ("10.0.0.1:7000", ("10.0.0.1", 7000, None)),
            (":7000@17000", ("", 7000, None)),
        ];
        for (field, (host, port, hostname)) in cases {
            assert_eq!(
                parse_node_addr(field),
                Ok((host.to_string(), port, hostname.map(str::to_string))),
                "{field}"
            );
        }
        assert!(parse_node_addr("nonsense").is_err());
    }

    #[test]
    fn ipv6_nodes_and_addrs() {
        let text = "\
aaa ::1:7000@17000 myself,master - 0 0 1 connected 0-16383
bbb ::1:7001@17001 slave aaa 0 0 1 connected
";
        let nodes = parse_cluster_nodes(text).expect("parse");
        let chosen = choose_nodes(&nodes, true).expect("choose");
        assert_eq!(chosen.len(), 1);
        assert_eq!(chosen[0].node.addr(), "[::1]:7001");
    }

    #[test]
    fn probe_failure_moves_to_the_next_replica_or_the_master() {
        let text = "\
aaa 10.0.0.1:7000@17000 master - 0 0 1 connected 0-16383
bbb 10.0.0.2:7000@17000 slave aaa 0 0 1 connected
ccc 10.0.0.3:7000@17000 slave aaa 0 0 1 connected
";
        let nodes = parse_cluster_nodes(text).expect("parse");
        let chosen = choose_nodes_probed(&nodes, true, |n| {
            if n.id == "bbb" {
                Err("link down".into())
            } else {
                Ok(())
            }
        })
        .expect("choose");
        assert_eq!(chosen[0].node.id, "ccc");
        let chosen =
            choose_nodes_probed(&nodes, false, |_| Err("link down".into())).expect("choose");
        assert!(chosen[0].is_master());
        assert!(choose_nodes_probed(&nodes, true, |_| Err("link down".into())).is_err());
    }

    #[test]
    fn replica_readiness_from_info() {
        let up =
            "# Replication\r\nrole:slave\r\nmaster_link_status:up\r\nmaster_sync_in_progress:0\r\n";
        assert_eq!(replica_ready(up), Ok(()));
        let down = "role:slave\r\nmaster_link_status:down\r\nmaster_sync_in_progress:0\r\n";
        assert!(replica_ready(down).is_err_and(|e| e.contains("down")));
        let syncing = "role:slave\r\nmaster_link_status:up\r\nmaster_sync_in_progress:1\r\n";
        assert!(replica_ready(syncing).is_err());
        assert!(replica_ready("role:master\r\n").is_err());
    }

    #[test]
    fn empty_hosts_are_filled() {
        let text = "\
aaa :7000@17000 myself,master - 0 0 1 connected 0-16383
bbb :7001@17001,replica-1.example slave aaa 0 0 1 connected
";
        let mut nodes = parse_cluster_nodes(text).expect("parse");
        fill_missing_hosts(&mut nodes, "seed.example:7000");
        assert_eq!(nodes[0].addr(), "seed.example:7000");
        assert_eq!(nodes[1].addr(), "replica-1.example:7001");
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_cluster_nodes("").is_err());
        assert!(parse_cluster_nodes("a b c").is_err());
        assert!(parse_cluster_nodes("a 1.2.3.4:1@2 master - 0 0 1 connected 5-99999").is_err());
    }

    #[test]
    fn master_without_replicas_and_failed_master() {
        let text = "\
aaa 10.0.0.1:7000@17000 master,fail - 0 0 1 disconnected 0-16383
";
        let nodes = parse_cluster_nodes(text).expect("parse");
        let err = choose_nodes(&nodes, false)
            .expect_err("nothing healthy")
            .to_string();
        assert!(err.contains("neither"), "{err}");
        let err = choose_nodes(&nodes, true)
            .expect_err("require slave")
            .to_string();
        assert!(err.contains("it has none"), "{err}");
    }
}
