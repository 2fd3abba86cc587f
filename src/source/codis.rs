//! Codis topology discovery through the dashboard: `GET <dashboard>/topom` returns the
//! overview (`model.product_name`, `stats.group.models[].servers[]`, `stats.slots[]`,
//! `stats.group.stats{addr → {stats, error, timeout}}`). In a group, `servers[0]` is the
//! master and the others are replicas; `replica_group: true` marks a replica that proxies send
//! reads to. Per group we prefer a replica that serves no reads, then a read replica
//! (warning), then the master (warning), unless `--require-slave`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::connection::ConnectionOptions;
use super::error::DiscoveryError;
use super::{Instance, InstanceOpener, SlotKind};

/// Largest `/topom` body accepted.
const MAX_BODY: u64 = 64 * 1024 * 1024;

#[derive(Debug, Deserialize, Default)]
pub struct Overview {
    #[serde(default)]
    pub config: Option<ConfigModel>,
    #[serde(default)]
    pub model: Option<TopomModel>,
    #[serde(default)]
    pub stats: Option<Stats>,
}

#[derive(Debug, Deserialize, Default)]
pub struct ConfigModel {
    #[serde(default)]
    pub product_name: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct TopomModel {
    #[serde(default)]
    pub product_name: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct Stats {
    #[serde(default)]
    pub closed: bool,
    #[serde(default)]
    pub slots: Option<Vec<SlotMapping>>,
    #[serde(default)]
    pub group: GroupStats,
}

#[derive(Debug, Deserialize, Default)]
pub struct SlotMapping {
    #[serde(default)]
    pub group_id: u32,
    #[serde(default)]
    pub action: SlotAction,
}

#[derive(Debug, Deserialize, Default)]
pub struct SlotAction {
    #[serde(default)]
    pub target_id: u32,
}

#[derive(Debug, Deserialize, Default)]
pub struct GroupStats {
    #[serde(default)]
    pub models: Vec<Group>,
    #[serde(default)]
    pub stats: HashMap<String, Option<RedisStats>>,
}

#[derive(Debug, Deserialize, Default, Clone)]
pub struct Group {
    pub id: u32,
    #[serde(default)]
    pub servers: Vec<GroupServer>,
}

#[derive(Debug, Deserialize, Default, Clone)]
pub struct GroupServer {
    pub server: String,
    #[serde(default)]
    pub replica_group: bool,
}

#[derive(Debug, Deserialize, Default)]
pub struct RedisStats {
    #[serde(default)]
    pub stats: Option<HashMap<String, String>>,
    #[serde(default)]
    pub error: Option<serde_json::Value>,
    #[serde(default)]
    pub timeout: bool,
}

impl Overview {
    /// The product name (the default cluster name).
    pub fn product_name(&self) -> Option<&str> {
        self.model
            .as_ref()
            .and_then(|m| m.product_name.as_deref())
            .or_else(|| self.config.as_ref()?.product_name.as_deref())
            .filter(|s| !s.is_empty())
    }

    fn server_unhealthy(&self, addr: &str) -> Option<String> {
        let st = self.stats.as_ref()?.group.stats.get(addr)?.as_ref()?;
        if st.timeout {
            return Some("the dashboard's last check timed out".into());
        }
        if let Some(e) = &st.error
            && !e.is_null()
        {
            return Some(format!("the dashboard reports an error: {e}"));
        }
        let link = st.stats.as_ref()?.get("master_link_status")?;
        (link != "up").then(|| format!("master_link_status is {link}"))
    }
}

/// Parse the `/topom` JSON.
pub fn parse_overview(body: &[u8]) -> Result<Overview, serde_json::Error> {
    serde_json::from_slice(body)
}

/// The server chosen for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub group: u32,
    pub server: String,
    pub kind: ServerKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// A replica that serves no reads.
    Replica,
    /// A replica proxies read from (`replica_group`).
    ReadReplica,
    Master,
}

/// Pick one server per group that holds data (sorted by group id).
pub fn choose_servers(ov: &Overview, require_slave: bool) -> Result<Vec<Choice>, DiscoveryError> {
    let stats = ov.stats.as_ref().ok_or(DiscoveryError::NoStats)?;
    if stats.closed {
        return Err(DiscoveryError::DashboardClosed);
    }
    // Groups that own a slot or receive one in a migration; without slot data, all groups.
    let used: Option<BTreeSet<u32>> = stats.slots.as_ref().map(|slots| {
        slots
            .iter()
            .flat_map(|s| [s.group_id, s.action.target_id])
            .filter(|&g| g != 0)
            .collect()
    });
    let mut groups: Vec<&Group> = stats.group.models.iter().collect();
    groups.sort_by_key(|g| g.id);
    let mut out = Vec::new();
    for g in groups {
        if let Some(used) = &used
            && !used.contains(&g.id)
        {
            tracing::debug!("codis group {} owns no slot; skipped", g.id);
            continue;
        }
        let Some((master, replicas)) = g.servers.split_first() else {
            if used.is_some() {
                return Err(DiscoveryError::EmptyGroup(g.id));
            }
            continue;
        };
        let healthy = |s: &&GroupServer| match ov.server_unhealthy(&s.server) {
            Some(why) => {
                tracing::warn!("codis group {}: skipping {}: {why}", g.id, s.server);
                false
            }
            None => true,
        };
        let spare = replicas.iter().filter(|s| !s.replica_group).find(healthy);
        let read = || replicas.iter().filter(|s| s.replica_group).find(healthy);
        let choice = if let Some(s) = spare {
            (s.server.clone(), ServerKind::Replica)
        } else if require_slave {
            return Err(DiscoveryError::NoSpareReplica {
                group: g.id,
                master: master.server.clone(),
            });
        } else if let Some(s) = read() {
            tracing::warn!(
                "codis group {}: no spare replica; reading {} which serves reads (replica_group)",
                g.id,
                s.server
            );
            (s.server.clone(), ServerKind::ReadReplica)
        } else {
            tracing::warn!(
                "codis group {}: no healthy replica; reading the master {} (it will fork for \
                 the snapshot; use --require-slave to refuse)",
                g.id,
                master.server
            );
            (master.server.clone(), ServerKind::Master)
        };
        out.push(Choice {
            group: g.id,
            server: choice.0,
            kind: choice.1,
        });
    }
    if out.is_empty() {
        return Err(DiscoveryError::NoGroups);
    }
    Ok(out)
}

/// `GET <dashboard>/topom`: `connect_timeout` to connect, `read_timeout` for the reply.
pub fn fetch_overview(
    dashboard: &str,
    connect_timeout: Duration,
    read_timeout: Duration,
) -> Result<Overview, DiscoveryError> {
    let base = dashboard.trim_end_matches('/');
    let base = if base.contains("://") {
        base.to_string()
    } else {
        format!("http://{base}")
    };
    let url = format!("{base}/topom");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(connect_timeout))
        .timeout_recv_response(Some(read_timeout))
        .timeout_recv_body(Some(read_timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let request_failed = |source| DiscoveryError::Dashboard {
        url: url.clone(),
        source,
    };
    let mut resp = agent.get(&url).call().map_err(request_failed)?;
    let status = resp.status();
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_vec()
        .map_err(request_failed)?;
    if !status.is_success() {
        return Err(DiscoveryError::DashboardStatus {
            url,
            status: status.as_u16(),
            body: super::resp::preview(&body),
        });
    }
    parse_overview(&body).map_err(|source| DiscoveryError::NotAnOverview { url, source })
}

/// Discover the Codis groups; returns the product name and one instance per group.
pub fn discover(
    dashboard: &str,
    opts: &Arc<ConnectionOptions>,
    require_slave: bool,
) -> Result<(Option<String>, Vec<Instance>), DiscoveryError> {
    let ov = fetch_overview(dashboard, opts.connect_timeout, opts.read_timeout)?;
    let choices = choose_servers(&ov, require_slave)?;
    let instances = choices
        .into_iter()
        .map(|c| {
            tracing::info!("codis group {}: reading {:?} {}", c.group, c.kind, c.server);
            Instance {
                name: c.server.clone(),
                slots: Some(SlotKind::Codis),
                opener: InstanceOpener::Redis {
                    addr: c.server,
                    options: Arc::clone(opts),
                },
            }
        })
        .collect();
    Ok((ov.product_name().map(str::to_string), instances))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like a Codis 3.2 dashboard's `/topom` (trimmed: proxies, sentinels omitted).
    pub const SAMPLE: &str = r#"{
      "version": "3.2.2-1-g8fbb2e5",
      "compile": "2018-01-01 00:00:00 +0800 by go version go1.9.2 linux/amd64",
      "config": {"coordinator_name": "filesystem", "coordinator_addr": "/tmp/codis",
                 "admin_addr": "0.0.0.0:18080", "product_name": "codis-demo", "product_auth": ""},
      "model": {"token": "7e6a3ee7b0d9f3c1", "start_time": "2018-01-01 00:00:00",
                "admin_addr": "10.0.0.9:18080", "product_name": "codis-demo",
                "pid": 4242, "pwd": "/opt/codis", "sys": "Linux"},
      "stats": {
        "closed": false,
        "slots": [
          {"id": 0, "group_id": 1, "action": {}},
          {"id": 1, "group_id": 2, "action": {}},
          {"id": 2, "group_id": 3, "action": {"index": 1, "state": "pending", "target_id": 4}},
          {"id": 3, "group_id": 0, "action": {}}
        ],
        "group": {
          "models": [
            {"id": 1, "servers": [
              {"server": "10.0.0.1:6379", "datacenter": "", "action": {}, "replica_group": false},
              {"server": "10.0.0.2:6379", "datacenter": "", "action": {}, "replica_group": true},
              {"server": "10.0.0.3:6379", "datacenter": "", "action": {}, "replica_group": false}
            ], "promoting": {}, "out_of_sync": false},
            {"id": 2, "servers": [
              {"server": "10.0.1.1:6379", "datacenter": "", "action": {}, "replica_group": false},
              {"server": "10.0.1.2:6379", "datacenter": "", "action": {}, "replica_group": true}
            ], "promoting": {}, "out_of_sync": false},
            {"id": 3, "servers": [
              {"server": "10.0.2.1:6379", "datacenter": "", "action": {}, "replica_group": false},
              {"server": "10.0.2.2:6379", "datacenter": "", "action": {}, "replica_group": false}
            ], "promoting": {}, "out_of_sync": false},
            {"id": 4, "servers": [
              {"server": "10.0.3.1:6379", "datacenter": "", "action": {}, "replica_group": false}
            ], "promoting": {}, "out_of_sync": false},
            {"id": 5, "servers": [
              {"server": "10.0.4.1:6379", "datacenter": "", "action": {}, "replica_group": false}
            ], "promoting": {}, "out_of_sync": false}
          ],
          "stats": {
            "10.0.0.1:6379": {"stats": {"role": "master"}, "unixtime": 1514736000},
            "10.0.0.2:6379": {"stats": {"role": "slave", "master_link_status": "up"}, "unixtime": 1514736000},
            "10.0.0.3:6379": {"stats": {"role": "slave", "master_link_status": "up"}, "unixtime": 1514736000},
            "10.0.2.2:6379": {"error": {"cause": "dial tcp: connection refused"}, "unixtime": 1514736000}
          }
        },
        "proxy": {"models": [], "stats": {}},
        "slot_action": {"interval": 0, "disabled": false, "progress": {"status": ""}, "executor": {}},
        "sentinels": {"model": {"out_of_sync": false, "servers": []}, "stats": {}, "masters": {}}
      }
    }"#;

    #[test]
    fn parses_and_chooses() {
        let ov = parse_overview(SAMPLE.as_bytes()).expect("parse");
        assert_eq!(ov.product_name(), Some("codis-demo"));
        let chosen = choose_servers(&ov, false).expect("choose");
        let got: Vec<(u32, &str, ServerKind)> = chosen
            .iter()
            .map(|c| (c.group, c.server.as_str(), c.kind))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, "10.0.0.3:6379", ServerKind::Replica),
                (2, "10.0.1.2:6379", ServerKind::ReadReplica),
                (3, "10.0.2.1:6379", ServerKind::Master), // its replica is down
                (4, "10.0.3.1:6379", ServerKind::Master), // migration target
                                                          // group 5 owns no slot
            ]
        );
    }

    #[test]
    fn require_slave_names_the_group() {
        let ov = parse_overview(SAMPLE.as_bytes()).expect("parse");
        let err = choose_servers(&ov, true)
            .expect_err("group 2 has only a read replica")
            .to_string();
        assert!(err.contains("group 2"), "{err}");
        assert!(err.contains("10.0.1.1:6379"), "{err}");
    }

    #[test]
    fn rejects_non_codis_json() {
        assert!(parse_overview(b"<html>").is_err());
        let ov = parse_overview(b"{}").expect("empty object parses");
        assert!(choose_servers(&ov, false).is_err());
    }
}
