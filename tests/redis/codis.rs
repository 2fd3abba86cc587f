//! Codis discovery against a fake dashboard pointing at real redis-servers.

use crate::common;

use std::io::Read;
use std::time::Duration;

use common::codis::{FakeGroup, serve_topom, topom_json};
use common::redis::{RedisServer, wait_until};
use rdbinsight::source::error::chain;
use rdbinsight::source::{ConnectionOptions, Resolved, SlotKind, SourceError, Spec};

fn options() -> ConnectionOptions {
    ConnectionOptions {
        read_timeout: Duration::from_secs(60),
        ..Default::default()
    }
}

fn discover(dashboard: &str, require_slave: bool) -> Result<Resolved, SourceError> {
    Spec::Codis {
        dashboard: dashboard.to_string(),
        require_slave,
    }
    .resolve(&options())
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
    let dashboard = serve_topom(topom_json("demo-product", &groups));
    let url = dashboard.url();

    let Resolved {
        instances,
        product_name,
    } = discover(&url, false).expect("discover");
    assert_eq!(product_name.as_deref(), Some("demo-product"));
    let names: Vec<String> = instances.iter().map(|i| i.name.clone()).collect();
    assert_eq!(names, vec![r1_spare.addr(), r2_read.addr(), m3.addr()]);
    for i in &instances {
        assert_eq!(i.slots, Some(SlotKind::Codis));
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
    assert!(discover(bare, false).is_ok());

    let err =
        chain(&discover(&url, true).expect_err("--require-slave: group 2 has only a read replica"));
    assert!(
        err.starts_with("cannot discover the Codis topology: "),
        "{err}"
    );
    assert!(err.contains("group 2"), "{err}");
    assert!(err.contains(&m2.addr()), "{err}");
}

#[test]
fn bad_dashboard_is_a_clear_error() {
    let dashboard = serve_topom(serde_json::json!({"hello": "world"}));
    let url = dashboard.url();
    let err = chain(&discover(&url, false).expect_err("no stats"));
    assert!(err.contains("no stats"), "{err}");
    let err = chain(&discover(&format!("{url}/wrong"), false).expect_err("404"));
    assert!(err.contains("404"), "{err}");
    // Not JSON at all, and nothing listening.
    let html = common::fake_server::FakeServer::start(1, |peer| {
        peer.read_until(b"\r\n\r\n")?;
        peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\n<html>")
    });
    let err = chain(&discover(&html.url(), false).expect_err("HTML"));
    assert!(
        err.contains("the /topom reply is not a Codis overview"),
        "{err}"
    );
    let port = common::redis::free_port();
    let err = chain(&discover(&format!("127.0.0.1:{port}"), false).expect_err("refused"));
    assert!(
        err.contains(&format!("codis dashboard http://127.0.0.1:{port}/topom")),
        "{err}"
    );
}
