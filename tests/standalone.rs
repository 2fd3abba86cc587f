//! The standalone source against real `redis-server`s, checked at the byte level: the stream
//! is a complete RDB (magic, EOF opcode, CRC64 trailer) and nothing more, for disk-based and
//! diskless replication; authentication and failure modes give clear errors.

mod common;

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use common::redis::RedisServer;
use crc::{CRC_64_REDIS, Crc};
use rdbinsight::source::SourceError;
use rdbinsight::source::standalone::{self, StandaloneConfig};

const CRC64: Crc<u64> = Crc::<u64>::new(&CRC_64_REDIS);

fn config(server: &RedisServer) -> StandaloneConfig {
    StandaloneConfig {
        addr: server.addr(),
        handshake_timeout: Duration::from_secs(10),
        read_timeout: Duration::from_secs(60),
        ..Default::default()
    }
}

fn load_sample(server: &RedisServer) {
    server.cli_pipe(
        "SET s1 hello\nSET n1 12345\nRPUSH l1 a b c\nSADD set1 x y z\nHSET h1 f1 v1 f2 v2\n\
         ZADD z1 1 a 2 b\nSET ex1 v EX 1000\nXADD st1 * f v\nSELECT 3\nSET db3key v\n",
    );
    assert_eq!(
        server.cli(&["DEBUG", "POPULATE", "5000", "pop", "50"]),
        "OK"
    );
}

/// Read the whole stream and check it is exactly one RDB.
fn read_and_check(mut reader: impl Read) -> Vec<u8> {
    let mut data = Vec::new();
    reader.read_to_end(&mut data).expect("read the snapshot");
    assert_rdb(&data);
    data
}

fn assert_rdb(data: &[u8]) {
    assert!(
        data.starts_with(b"REDIS00"),
        "magic: {:?}",
        &data[..9.min(data.len())]
    );
    assert!(data.len() >= 9 + 9, "too short: {}", data.len());
    let body = &data[..data.len() - 8];
    assert_eq!(
        body.last(),
        Some(&0xFF),
        "EOF opcode right before the checksum"
    );
    let stored = u64::from_le_bytes(data[data.len() - 8..].try_into().expect("8 bytes"));
    assert_eq!(CRC64.checksum(body), stored, "CRC64 trailer");
}

#[test]
fn disk_based_snapshot_is_exactly_the_rdb() {
    let server = RedisServer::start(&["--repl-diskless-sync", "no"]);
    load_sample(&server);
    let stream = standalone::open(&server.addr(), &config(&server)).expect("open");
    let total = stream
        .total_bytes
        .expect("disk-based transfers announce their length");
    let data = read_and_check(stream.reader);
    assert_eq!(data.len() as u64, total);
    assert!(stream.cancel.is_some());
}

#[test]
fn diskless_snapshot_is_exactly_the_rdb() {
    let server = RedisServer::start(&[
        "--repl-diskless-sync",
        "yes",
        "--repl-diskless-sync-delay",
        "0",
    ]);
    load_sample(&server);
    let stream = standalone::open(&server.addr(), &config(&server)).expect("open");
    assert_eq!(
        stream.total_bytes, None,
        "diskless transfers have no length"
    );
    read_and_check(stream.reader);
}

#[test]
fn empty_server_gives_a_valid_rdb() {
    let server = RedisServer::start(&["--repl-diskless-sync", "no"]);
    let stream = standalone::open(&server.addr(), &config(&server)).expect("open");
    read_and_check(stream.reader);
}

fn open_err(cfg: &StandaloneConfig) -> String {
    match standalone::open(&cfg.addr, cfg) {
        Ok(_) => panic!("expected an error"),
        Err(e @ SourceError::Instance { .. }) => e.to_string(),
        Err(e) => panic!("unexpected error kind: {e}"),
    }
}

#[test]
fn password_auth() {
    let pass = "p a s s\r\nword";
    let server = RedisServer::start(&["--requirepass", pass]);
    server.cli(&["SET", "k", "v"]);
    let mut cfg = config(&server);

    let e = open_err(&cfg);
    assert!(e.contains("requires a password"), "{e}");

    cfg.password = Some("nope".into());
    let e = open_err(&cfg);
    assert!(e.contains("wrong password"), "{e}");

    cfg.password = Some(pass.into());
    let stream = standalone::open(&cfg.addr, &cfg).expect("open with the password");
    read_and_check(stream.reader);
}

#[test]
fn acl_user_auth() {
    let server = RedisServer::start(&[]);
    let pass = "secret with spaces";
    server.cli(&[
        "ACL",
        "SETUSER",
        "dumper",
        "on",
        &format!(">{pass}"),
        "+psync",
        "+replconf",
        "+ping",
    ]);
    server.cli(&["SET", "k", "v"]);
    let mut cfg = config(&server);
    cfg.username = Some("dumper".into());
    cfg.password = Some("wrong".into());
    let e = open_err(&cfg);
    assert!(e.contains("wrong user name or password"), "{e}");

    cfg.password = Some(pass.into());
    let stream = standalone::open(&cfg.addr, &cfg).expect("open as an ACL user");
    read_and_check(stream.reader);
}

#[test]
fn replica_without_master_link_is_refused_clearly() {
    // A replica of a master that does not exist: its link stays down and it refuses PSYNC.
    let dead = common::redis::free_port().to_string();
    let server = RedisServer::start(&["--replicaof", "127.0.0.1", &dead]);
    let e = open_err(&config(&server));
    assert!(e.contains("not connected to its master"), "{e}");
}

#[test]
fn server_killed_mid_transfer_is_an_error() {
    let mut server = RedisServer::start(&["--repl-diskless-sync", "no", "--rdbcompression", "no"]);
    // ~200 MB of values: far more than socket buffers can hold.
    assert_eq!(
        server.cli(&["DEBUG", "POPULATE", "1000000", "big", "200"]),
        "OK"
    );
    let stream = standalone::open(&server.addr(), &config(&server)).expect("open");
    let total = stream.total_bytes.expect("length");
    let mut reader = stream.reader;
    let mut buf = vec![0u8; 4096];
    reader.read_exact(&mut buf).expect("first bytes");
    assert!(buf.starts_with(b"REDIS00"));
    server.kill();
    let mut read = buf.len() as u64;
    let err = loop {
        match reader.read(&mut buf) {
            Ok(0) => panic!("the stream ended cleanly after {read} of {total} bytes"),
            Ok(n) => read += n as u64,
            Err(e) => break e,
        }
    };
    assert!(read < total);
    assert!(
        matches!(
            err.kind(),
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
        ),
        "{err:?}"
    );
    if err.kind() == io::ErrorKind::UnexpectedEof {
        assert!(err.to_string().contains("connection closed after"), "{err}");
    }
}

#[test]
fn cancel_aborts_a_blocked_read() {
    // A fake master that answers the handshake and then never sends the snapshot.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let _ = fake_master(&mut s, b"+FULLRESYNC abc 0\r\n$100\r\nREDIS");
            std::thread::sleep(Duration::from_secs(30));
        }
    });
    let cfg = StandaloneConfig {
        addr: addr.clone(),
        ..Default::default()
    };
    let stream = standalone::open(&addr, &cfg).expect("open");
    let cancel = stream.cancel.expect("cancel handle");
    let mut reader = stream.reader;
    let t = std::thread::spawn(move || {
        let mut data = Vec::new();
        reader.read_to_end(&mut data)
    });
    std::thread::sleep(Duration::from_millis(200));
    cancel();
    let result = t.join().expect("reader thread");
    assert!(
        result.is_err(),
        "a cancelled read must fail, got {result:?}"
    );
}

/// Answer PING/REPLCONF like a master, then send `after_psync` verbatim.
fn fake_master(s: &mut std::net::TcpStream, after_psync: &[u8]) -> io::Result<()> {
    fake_master_with(s, |s| s.write_all(after_psync))
}

/// Answer PING/REPLCONF like a master, then let `on_psync` talk.
fn fake_master_with(
    s: &mut std::net::TcpStream,
    on_psync: impl FnOnce(&mut std::net::TcpStream) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = vec![0u8; 4096];
    let mut seen = Vec::new();
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        seen.extend_from_slice(&buf[..n]);
        // Every command we receive is an array whose first bulk is the name.
        while let Some(end) = complete_command(&seen) {
            let cmd = String::from_utf8_lossy(&seen[..end]).to_string();
            seen.drain(..end);
            if cmd.contains("PING") {
                s.write_all(b"+PONG\r\n")?;
            } else if cmd.contains("PSYNC") {
                return on_psync(s);
            } else {
                s.write_all(b"+OK\r\n")?;
            }
        }
    }
}

/// Length of the first complete RESP array command in `buf`, if any.
fn complete_command(buf: &[u8]) -> Option<usize> {
    let text = buf;
    let line_end = |from: usize| {
        text[from..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|p| from + p)
    };
    let e = line_end(0)?;
    let n: usize = std::str::from_utf8(&text[1..e]).ok()?.parse().ok()?;
    let mut at = e + 2;
    for _ in 0..n {
        let e = line_end(at)?;
        let len: usize = std::str::from_utf8(&text[at + 1..e]).ok()?.parse().ok()?;
        at = e + 2 + len + 2;
        if at > text.len() {
            return None;
        }
    }
    Some(at)
}

#[test]
fn fake_master_keepalives_and_diskless_mark() {
    let mark = b"0123456789abcdef0123456789abcdef01234567";
    let mut rdb = b"REDIS0011".to_vec();
    rdb.push(0xFF);
    let crc = CRC64.checksum(&rdb);
    rdb.extend_from_slice(&crc.to_le_bytes());
    let mut reply = b"\n+FULLRESYNC abc 0\r\n\n\n\n$EOF:".to_vec();
    reply.extend_from_slice(mark);
    reply.extend_from_slice(b"\r\n");
    reply.extend_from_slice(&rdb);
    reply.extend_from_slice(mark);

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let _ = fake_master(&mut s, &reply);
            std::thread::sleep(Duration::from_secs(5));
        }
    });
    let cfg = StandaloneConfig {
        addr: addr.clone(),
        ..Default::default()
    };
    let stream = standalone::open(&addr, &cfg).expect("open");
    let data = read_and_check(stream.reader);
    assert_eq!(data, rdb);
}

#[test]
fn non_redis_peer_and_silent_peer() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            std::thread::sleep(Duration::from_secs(2));
        }
    });
    let e = open_err(&StandaloneConfig {
        addr,
        ..Default::default()
    });
    assert!(e.contains("is this a Redis server"), "{e}");

    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = silent.local_addr().expect("addr").to_string();
    let e = open_err(&StandaloneConfig {
        addr,
        handshake_timeout: Duration::from_millis(300),
        ..Default::default()
    });
    assert!(e.contains("no reply within"), "{e}");
    drop(silent);
}

#[test]
fn loading_server_is_reported() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"-LOADING Redis is loading the dataset in memory\r\n");
            std::thread::sleep(Duration::from_secs(2));
        }
    });
    let e = open_err(&StandaloneConfig {
        addr,
        ..Default::default()
    });
    assert!(e.contains("still loading"), "{e}");
}

#[test]
fn connection_refused_is_clear() {
    let port = common::redis::free_port();
    let e = open_err(&StandaloneConfig {
        addr: format!("127.0.0.1:{port}"),
        ..Default::default()
    });
    assert!(e.contains("cannot connect"), "{e}");
}

/// A valid empty RDB (magic, EOF opcode, checksum).
fn tiny_rdb() -> Vec<u8> {
    let mut rdb = b"REDIS0011".to_vec();
    rdb.push(0xFF);
    let crc = CRC64.checksum(&rdb);
    rdb.extend_from_slice(&crc.to_le_bytes());
    rdb
}

#[test]
fn keepalives_count_against_the_read_timeout_but_silence_fails() {
    // Keep-alives every 100 ms for 1 s, with a 400 ms read timeout: fine.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let _ = fake_master_with(&mut s, |s| {
                s.write_all(b"+FULLRESYNC abc 0\r\n")?;
                for _ in 0..10 {
                    std::thread::sleep(Duration::from_millis(100));
                    s.write_all(b"\n")?;
                }
                let rdb = tiny_rdb();
                write!(s, "${}\r\n", rdb.len())?;
                s.write_all(&rdb)?;
                std::thread::sleep(Duration::from_secs(2));
                Ok(())
            });
        }
    });
    let cfg = StandaloneConfig {
        addr: addr.clone(),
        read_timeout: Duration::from_millis(400),
        ..Default::default()
    };
    let stream = standalone::open(&addr, &cfg).expect("open");
    assert_eq!(read_and_check(stream.reader), tiny_rdb());

    // The snapshot starts, then the master goes silent: a TimedOut error, not a short stream.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let _ = fake_master(&mut s, b"+FULLRESYNC abc 0\r\n$1000\r\nREDIS0011");
            std::thread::sleep(Duration::from_secs(5));
        }
    });
    let cfg = StandaloneConfig {
        addr: addr.clone(),
        read_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let stream = standalone::open(&addr, &cfg).expect("open");
    let mut data = Vec::new();
    let mut reader = stream.reader;
    let err = reader.read_to_end(&mut data).expect_err("must time out");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(err.to_string().contains("--read-timeout"), "{err}");
    assert!(err.to_string().contains("after 9 of 1000"), "{err}");
}

#[test]
fn psync_error_reply_is_reported() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let _ = fake_master(
                &mut s,
                b"-ERR Can't SYNC while not connected with my master\r\n",
            );
            std::thread::sleep(Duration::from_secs(2));
        }
    });
    let e = open_err(&StandaloneConfig {
        addr,
        ..Default::default()
    });
    assert!(e.contains("PSYNC failed"), "{e}");
    assert!(e.contains("not connected with my master"), "{e}");
}

#[test]
fn ipv6_address_in_brackets() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback on this machine; only the address parsing is checked");
        assert!(standalone::split_host_port("[::1]:6379").is_ok());
        return;
    }
    let server = RedisServer::start(&["--bind", "127.0.0.1", "-::1"]);
    server.cli(&["SET", "k", "v"]);
    let addr = format!("[::1]:{}", server.port);
    let cfg = StandaloneConfig {
        addr: addr.clone(),
        ..config(&server)
    };
    let stream = standalone::open(&addr, &cfg).expect("open over IPv6");
    read_and_check(stream.reader);
}
