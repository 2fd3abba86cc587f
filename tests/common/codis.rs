//! A fake Codis dashboard: a tiny HTTP server that answers `GET /topom` with an overview shaped
//! like Codis 3.2's, pointing at real redis-servers.

use serde_json::{Value, json};

use super::fake_server::FakeServer;

/// One group: its servers (`addr`, `replica_group`), the first being the master.
pub struct FakeGroup {
    pub id: u32,
    pub servers: Vec<(String, bool)>,
}

/// The `/topom` JSON for `product` with `groups`; the 1024 slots are spread over the groups.
pub fn topom_json(product: &str, groups: &[FakeGroup]) -> Value {
    let slots: Vec<Value> = (0..1024u32)
        .map(|i| {
            let g = &groups[(i as usize) * groups.len() / 1024];
            json!({"id": i, "group_id": g.id, "action": {}})
        })
        .collect();
    let models: Vec<Value> = groups
        .iter()
        .map(|g| {
            let servers: Vec<Value> = g
                .servers
                .iter()
                .map(|(addr, rg)| {
                    json!({"server": addr, "datacenter": "", "action": {}, "replica_group": rg})
                })
                .collect();
            json!({"id": g.id, "servers": servers, "promoting": {}, "out_of_sync": false})
        })
        .collect();
    let mut stats = serde_json::Map::new();
    for g in groups {
        for (i, (addr, _)) in g.servers.iter().enumerate() {
            let role = if i == 0 { "master" } else { "slave" };
            let mut s = json!({"role": role});
            if i > 0 {
                s["master_link_status"] = json!("up");
            }
            stats.insert(addr.clone(), json!({"stats": s, "unixtime": 1514736000}));
        }
    }
    json!({
        "version": "3.2.2",
        "compile": "2018-01-01 00:00:00 +0800 by go version go1.9.2 linux/amd64",
        "config": {"coordinator_name": "filesystem", "coordinator_addr": "/tmp/codis",
                   "admin_addr": "0.0.0.0:18080", "product_name": product, "product_auth": ""},
        "model": {"token": "7e6a3ee7b0d9f3c1", "start_time": "2018-01-01 00:00:00",
                  "admin_addr": "127.0.0.1:18080", "product_name": product,
                  "pid": 4242, "pwd": "/opt/codis", "sys": "Linux"},
        "stats": {
            "closed": false,
            "slots": slots,
            "group": {"models": models, "stats": stats},
            "proxy": {"models": [], "stats": {}},
            "slot_action": {"interval": 0, "disabled": false, "progress": {"status": ""}, "executor": {}},
            "sentinels": {"model": {"out_of_sync": false, "servers": []}, "stats": {}, "masters": {}}
        }
    })
}

/// A fake dashboard serving `body` for `GET /topom` (404 otherwise) until dropped; its
/// `url()` is the dashboard URL.
pub fn serve_topom(body: Value) -> FakeServer {
    let body = body.to_string();
    FakeServer::start(usize::MAX, move |peer| {
        let Some(head) = peer.read_until(b"\r\n\r\n")? else {
            return Ok(());
        };
        let (status, payload) = if head.starts_with(b"GET /topom ") {
            ("200 OK", body.as_str())
        } else {
            ("404 Not Found", "{\"error\":\"not found\"}")
        };
        peer.send(
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{payload}",
                payload.len()
            )
            .as_bytes(),
        )
    })
}
