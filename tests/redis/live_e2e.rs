//! End to end through the `rdbinsight` binary: live sources (standalone, cluster, codis) into
//! JSON lines, checked against `from-file` on the server's own `SAVE`d dump and against the
//! keys that were written. These need the RDB parser.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::codis::{FakeGroup, serve_topom, topom_json};
use common::dumps::{comparable, dump_jsonl, key_of, standalone_fails};
use common::redis::{RedisCluster, RedisServer, wait_until};
use rdbinsight::slot;

fn load_variety(server: &RedisServer) {
    let mut script = String::from(
        "SET s1 hello\nSET n1 12345\nSET \"bin\\xff\\x00key\" v\nRPUSH l1 a b c\n\
         SADD iset 1 2 3\nSADD sset x y z\nHSET h1 f1 v1 f2 v2\nZADD z1 1 a 2 b\n\
         SET ex1 v EX 100000\nPEXPIRE l1 90000000\nXADD st1 * f v\nXADD st1 * g w\n\
         SELECT 5\nSET db5key v\nRPUSH db5list 1 2 3\n",
    );
    script.push_str("SELECT 0\n");
    // Larger containers (hashtable/skiplist/quicklist encodings) and a long compressible string.
    let many: Vec<String> = (0..600).map(|i| format!("m{i}")).collect();
    script.push_str(&format!("SADD bigset {}\n", many.join(" ")));
    script.push_str(&format!("RPUSH biglist {}\n", many.join(" ")));
    let pairs: Vec<String> = (0..600).map(|i| format!("{i} m{i}")).collect();
    script.push_str(&format!("ZADD bigzset {}\n", pairs.join(" ")));
    let fields: Vec<String> = (0..600).map(|i| format!("f{i} v{i}")).collect();
    script.push_str(&format!("HSET bighash {}\n", fields.join(" ")));
    script.push_str(&format!("SET longstr {}\n", "abc".repeat(5000)));
    server.cli_pipe(&script);
    assert_eq!(
        server.cli(&["DEBUG", "POPULATE", "20000", "pop", "20"]),
        "OK"
    );
}

#[test]
fn standalone_equals_from_file_on_the_saved_dump() {
    for diskless in ["no", "yes"] {
        let server = RedisServer::start(&["--repl-diskless-sync", diskless]);
        load_variety(&server);
        let dump = server.save();
        let out = tempfile::tempdir().expect("temp dir");
        let file = dump_jsonl(
            out.path(),
            "file",
            &[
                "from-file",
                "--path",
                dump.to_str().expect("utf-8 path"),
                "--cluster",
                "c",
                "--instance",
                &server.addr(),
            ],
        );
        let live = dump_jsonl(
            out.path(),
            "live",
            &[
                "from-standalone",
                "--addr",
                &server.addr(),
                "--cluster",
                "c",
            ],
        );
        assert_eq!(file.len(), 20000 + 17, "diskless={diskless}");
        assert_eq!(comparable(&live), comparable(&file), "diskless={diskless}");
        assert!(live.iter().all(|r| r["instance"] == server.addr().as_str()));
        assert!(live.iter().all(|r| r["redis_slot"].is_null()));
    }
}

#[test]
fn standalone_wrong_password_fails_the_dump() {
    let server = RedisServer::start(&["--requirepass", "right"]);
    let addr = server.addr();
    let stderr = standalone_fails(&addr, &["--password", "wrong"]);
    assert!(stderr.contains("wrong password"), "{stderr}");
    assert!(
        !stderr.contains("right"),
        "the password must not be printed"
    );
}

#[test]
fn cluster_dump_has_every_key_once_with_its_slot() {
    let cluster = RedisCluster::start(3);
    let keys: Vec<String> = (0..3000).map(|i| format!("key:{i}")).collect();
    cluster.set_keys(&keys);

    let out = tempfile::tempdir().expect("temp dir");
    let seeds = cluster.seeds().join(",");
    let records = dump_jsonl(
        out.path(),
        "cluster",
        &["from-cluster", "--nodes", &seeds, "--cluster", "c"],
    );
    assert_eq!(records.len(), keys.len(), "every key exactly once");
    let got: BTreeSet<String> = records.iter().map(key_of).collect();
    let want: BTreeSet<String> = keys.iter().cloned().collect();
    assert_eq!(got, want);
    let replicas: BTreeSet<String> = cluster
        .replicas()
        .iter()
        .map(|r| format!("127.0.0.1:{}", r.port))
        .collect();
    for r in &records {
        let k = key_of(r);
        assert_eq!(
            r["redis_slot"].as_u64(),
            Some(u64::from(slot::redis_slot(k.as_bytes())))
        );
        assert!(replicas.contains(r["instance"].as_str().expect("instance")));
    }
    for r in records.iter().take(20) {
        let k = key_of(r);
        let server_slot = cluster.nodes[0].cli(&["CLUSTER", "KEYSLOT", &k]);
        assert_eq!(r["redis_slot"].to_string(), server_slot, "{k}");
    }
}

#[test]
fn codis_dump_carries_codis_slots() {
    let m1 = RedisServer::start(&[]);
    let r1 = RedisServer::start(&["--replicaof", "127.0.0.1", &m1.port.to_string()]);
    let m2 = RedisServer::start(&[]);
    let groups = vec![
        FakeGroup {
            id: 1,
            servers: vec![(m1.addr(), false), (r1.addr(), false)],
        },
        FakeGroup {
            id: 2,
            servers: vec![(m2.addr(), false)],
        },
    ];
    // Slot i belongs to group (i * 2 / 1024) + 1, as in `topom_json`.
    let keys: Vec<String> = (0..2000).map(|i| format!("ck:{i}")).collect();
    let (mut s1, mut s2) = (String::new(), String::new());
    for k in &keys {
        let s = slot::codis_slot(k.as_bytes()) as usize;
        let script = if s * 2 / 1024 == 0 { &mut s1 } else { &mut s2 };
        script.push_str(&format!("SET {k} v\n"));
    }
    m1.cli_pipe(&s1);
    m2.cli_pipe(&s2);
    wait_until("replica caught up", Duration::from_secs(30), || {
        r1.info_field("replication", "master_link_status") == Some("up".into())
            && r1.cli(&["DBSIZE"]) == m1.cli(&["DBSIZE"])
    });
    let dashboard = serve_topom(topom_json("demo", &groups));
    let url = dashboard.url();

    let out = tempfile::tempdir().expect("temp dir");
    let records = dump_jsonl(out.path(), "codis", &["from-codis", "--dashboard", &url]);
    assert_eq!(records.len(), keys.len());
    let got: BTreeSet<String> = records.iter().map(key_of).collect();
    assert_eq!(got, keys.iter().cloned().collect::<BTreeSet<_>>());
    for r in &records {
        assert_eq!(
            r["cluster"], "demo",
            "the product name is the default cluster name"
        );
        let k = key_of(r);
        assert_eq!(
            r["codis_slot"].as_u64(),
            Some(u64::from(slot::codis_slot(k.as_bytes())))
        );
        assert!(r["redis_slot"].is_null());
        let inst = r["instance"].as_str().expect("instance");
        assert!(inst == r1.addr() || inst == m2.addr(), "{inst}");
    }
}

/// A live dump picks its memory model by itself: the allocator's quantum from `MEMORY
/// MALLOC-STATS` and the encoding limits from `CONFIG GET`; flags override field by field.
#[test]
fn live_dump_picks_its_memory_model() {
    // One entry per listpack: a 2-field hash is a hashtable on this server.
    let server = RedisServer::start(&["--hash-max-listpack-entries", "1"]);
    server.cli_pipe("SET k0123456789 0123456789\nHSET h f1 v1 f2 v2\n");
    let stats = server.cli(&["MEMORY", "MALLOC-STATS"]);
    let quantum16 = stats.contains("Quantum size: 16");
    assert!(
        quantum16 || stats.contains("Quantum size: 8"),
        "this test needs a jemalloc build: {}",
        &stats[..stats.len().min(200)]
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = server.addr();
    let mem = |name: &str, flags: &[&str]| -> Vec<(String, u64)> {
        let mut source: Vec<&str> = flags.to_vec();
        source.extend_from_slice(&["from-standalone", "--addr", &addr, "--cluster", "c"]);
        let mut records: Vec<(String, u64)> = dump_jsonl(dir.path(), name, &source)
            .iter()
            .map(|r| (key_of(r), r["mem_size"].as_u64().expect("mem_size")))
            .collect();
        records.sort();
        records
    };
    // String: dictEntry 24, key sds 1+11+1, embstr 16+3+10+1; hash: robj, dict 56, 4 buckets,
    // four 2-byte sds, two entries, key sds 1+1+1 (q16 rounds 24 → 32, 13 → 16, 30 → 32, 56 →
    // 64); as a listpack (7 + 4 entries of 3 bytes) it would be 16 + C(19).
    let (string, hash_table, hash_listpack) = if quantum16 {
        (
            32 + 16 + 32,
            32 + 8 + 16 + 64 + 32 + 4 * 8 + 2 * 32,
            32 + 8 + 16 + 32,
        )
    } else {
        (
            24 + 16 + 32,
            24 + 8 + 16 + 56 + 32 + 4 * 8 + 2 * 24,
            24 + 8 + 16 + 24,
        )
    };
    assert_eq!(
        mem("detected", &[]),
        [
            ("h".to_string(), hash_table),
            ("k0123456789".to_string(), string)
        ]
    );
    // Flags win: the bundled jemalloc's 8-byte classes, the default listpack limit.
    let forced = mem(
        "forced",
        &[
            "--memory-allocator",
            "jemalloc",
            "--memory-config",
            "hash-max-listpack-entries=512",
        ],
    );
    assert_eq!(
        forced,
        [
            ("h".to_string(), 24 + 8 + 16 + 24),
            ("k0123456789".to_string(), 24 + 16 + 32)
        ]
    );
    assert!(hash_listpack < hash_table);
}
