//! Codis discovery against a fake dashboard pointing at real redis-servers.

mod common;

use std::io::Read;
use std::time::Duration;

use common::codis::{FakeGroup, serve_topom, topom_json};
use common::redis::{RedisServer, wait_until};
use rdbinsight::source::SlotKind;
use rdbinsight::source::codis;
use rdbinsight::source::standalone::StandaloneConfig;

fn conn() -> StandaloneConfig {
    StandaloneConfig {
        handshake_timeout: Duration::from_secs(10),
        read_timeout: Duration::from_secs(60),
        ..Default::default()
    }
}

fn replica_of(master: &RedisServer) -> RedisServer {
    let r = RedisServer::start(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    wait_until("replica link up", Duration::from_secs(30), || {
        r.info_field("replication", "master_link_status") == Some("up".into())
    });
    r
}

#[test]
fn discovery_picks_spare_replica_then_read_replica_then_master() {
    let m1 = RedisServer::start(&[]);
    let r1_read = replica_of(&m1);
    let r1_spare = replica_of(&m1);
    let m2 = RedisServer::start(&[]);
    let r2_read = replica_of(&m2);
    let m3 = RedisServer::start(&[]);
    let groups = vec![
        FakeGroup {
            id: 1,
            servers: vec![
                (m1.addr(), false),
                (r1_read.addr(), true),
                (r1_spare.addr(), false),
            ],
        },
        FakeGroup {
            id: 2,
            servers: vec![(m2.addr(), false), (r2_read.addr(), true)],
        },
        FakeGroup {
            id: 3,
            servers: vec![(m3.addr(), false)],
        },
    ];
    let url = serve_topom(topom_json("demo-product", &groups));

    let (product, instances) = codis::discover(&url, &conn(), false).expect("discover");
    assert_eq!(product.as_deref(), Some("demo-product"));
    let names: Vec<String> = instances.iter().map(|i| i.name.clone()).collect();
    assert_eq!(names, vec![r1_spare.addr(), r2_read.addr(), m3.addr()]);
    for i in &instances {
        assert_eq!(i.slots, SlotKind::Codis);
        let mut data = Vec::new();
        i.open()
            .expect("open")
            .reader
            .read_to_end(&mut data)
            .expect("read");
        assert!(data.starts_with(b"REDIS00"), "{}", i.name);
    }

    // A dashboard URL without a scheme works too.
    let bare = url.trim_start_matches("http://");
    assert!(codis::discover(bare, &conn(), false).is_ok());

    let err = codis::discover(&url, &conn(), true)
        .expect_err("--require-slave: group 2 has only a read replica")
        .to_string();
    assert!(err.contains("group 2"), "{err}");
    assert!(err.contains(&m2.addr()), "{err}");
}

#[test]
fn bad_dashboard_is_a_clear_error() {
    let url = serve_topom(serde_json::json!({"hello": "world"}));
    let err = codis::discover(&url, &conn(), false)
        .expect_err("no stats")
        .to_string();
    assert!(err.contains("no stats"), "{err}");
    let err = codis::discover(&format!("{url}/wrong"), &conn(), false)
        .expect_err("404")
        .to_string();
    assert!(err.contains("404"), "{err}");
}
