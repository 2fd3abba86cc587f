//! Cluster discovery against a real 3-master/3-replica Redis Cluster on 127.0.0.1.

use crate::common;

use std::collections::BTreeSet;
use std::io::Read;
use std::time::Duration;

use common::redis::{RedisCluster, free_port, wait_until};
use rdbinsight::source::error::chain;
use rdbinsight::source::{
    ConnectionOptions, Instance, InstanceOpener, SlotKind, SourceError, Spec,
};

fn discover(seeds: &[String], require_slave: bool) -> Result<Vec<Instance>, SourceError> {
    let options = ConnectionOptions {
        read_timeout: Duration::from_secs(60),
        ..Default::default()
    };
    let spec = Spec::Cluster {
        seeds: seeds.to_vec(),
        require_slave,
    };
    Ok(spec.resolve(&options)?.instances)
}

fn names(instances: &[rdbinsight::source::Instance]) -> BTreeSet<String> {
    instances.iter().map(|i| i.name.clone()).collect()
}

#[test]
fn discovery_prefers_replicas_and_falls_back() {
    let mut c = RedisCluster::start(3);
    let replicas: BTreeSet<String> = c
        .replicas()
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    assert_eq!(replicas.len(), 3);

    // Any seed works, including after an unreachable one.
    let dead = format!("127.0.0.1:{}", free_port());
    let seeds = vec![dead, c.nodes[0].addr()];
    let found = discover(&seeds, true).expect("discover");
    assert_eq!(names(&found), replicas);
    for i in &found {
        assert_eq!(i.slots, Some(SlotKind::Redis));
        match &i.opener {
            InstanceOpener::Redis { addr, .. } => assert_eq!(addr, &i.name),
            other => panic!("unexpected opener {other:?}"),
        }
    }

    // A chosen replica streams a complete snapshot.
    let mut data = Vec::new();
    found[0]
        .open()
        .expect("open a replica")
        .reader
        .read_to_end(&mut data)
        .expect("read");
    assert!(data.starts_with(b"REDIS00"));

    // Stop one replica: its shard falls back to the master, unless --require-slave.
    let victim = c.replicas()[0].clone();
    let victim_master = c
        .masters()
        .into_iter()
        .find(|m| m.id == victim.master_id)
        .expect("the victim's master");
    c.node_mut(victim.port).kill();
    let seed = c
        .nodes
        .iter()
        .find(|n| n.is_running())
        .expect("a running node")
        .addr();
    let seed_node = c
        .nodes
        .iter()
        .find(|n| n.addr() == seed)
        .expect("seed node");
    wait_until(
        "the stopped replica to be seen as unhealthy",
        Duration::from_secs(30),
        || {
            let nodes = common::redis::parse_nodes(&seed_node.cli(&["CLUSTER", "NODES"]));
            nodes
                .iter()
                .any(|n| n.port == victim.port && !n.is_healthy())
        },
    );
    let found = discover(std::slice::from_ref(&seed), false).expect("discover");
    let mut expected = replicas.clone();
    expected.remove(&format!("127.0.0.1:{}", victim.port));
    expected.insert(format!("127.0.0.1:{}", victim_master.port));
    assert_eq!(names(&found), expected);

    let err = chain(&discover(&[seed], true).expect_err("--require-slave with a stopped replica"));
    assert!(
        err.starts_with("cannot discover the Redis Cluster topology: "),
        "{err}"
    );
    assert!(
        err.contains(&format!("127.0.0.1:{}", victim_master.port)),
        "the error names the shard: {err}"
    );
    assert!(err.contains("--require-slave"), "{err}");
}

#[test]
fn non_cluster_seed_is_a_clear_error() {
    let server = common::redis::RedisServer::start(&[]);
    let err = chain(&discover(&[server.addr()], false).expect_err("standalone seed"));
    assert!(err.contains("not a cluster node"), "{err}");
    assert!(err.contains(&server.addr()), "{err}");
}
