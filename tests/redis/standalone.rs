//! The standalone source against real `redis-server`s, checked at the byte level: the stream
//! is a complete RDB (magic, EOF opcode, CRC64 trailer) and nothing more, for disk-based and
//! diskless replication; authentication and failure modes give clear errors. Fake masters
//! (tests/common/fake_server.rs) cover what a real server will not do on demand: keep-alives,
//! silence, garbage.

use crate::common;

use std::io::{self, Read};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::dumps::standalone_fails;
use common::fake_server::{FakeServer, Peer};
use common::redis::RedisServer;
use crc::{CRC_64_REDIS, Crc};
use rdbinsight::source::error::chain;
use rdbinsight::source::{Cause, ConnectionOptions, SourceError, TimeoutKind, standalone};

const CRC64: Crc<u64> = Crc::<u64>::new(&CRC_64_REDIS);

fn options() -> ConnectionOptions {
    ConnectionOptions {
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
    let stream = standalone::open(&server.addr(), &options()).expect("open");
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
    let stream = standalone::open(&server.addr(), &options()).expect("open");
    assert_eq!(
        stream.total_bytes, None,
        "diskless transfers have no length"
    );
    read_and_check(stream.reader);
}

#[test]
fn empty_server_gives_a_valid_rdb() {
    let server = RedisServer::start(&["--repl-diskless-sync", "no"]);
    let stream = standalone::open(&server.addr(), &options()).expect("open");
    read_and_check(stream.reader);
}

/// The error of opening `addr`, as `main` prints it (one line, with its causes).
/// `open` must fail with an error that contains `says`.
fn open_fails_with(addr: &str, opts: &ConnectionOptions, says: &str) {
    let e = open_err(addr, opts);
    assert!(e.contains(says), "{e}");
}

fn open_err(addr: &str, opts: &ConnectionOptions) -> String {
    match standalone::open(addr, opts) {
        Ok(_) => panic!("expected an error"),
        Err(e @ SourceError::Instance { .. }) => chain(&e),
        Err(e) => panic!("unexpected error kind: {e}"),
    }
}

#[test]
fn password_auth() {
    let pass = "p a s s\r\nword";
    let server = RedisServer::start(&["--requirepass", pass]);
    server.cli(&["SET", "k", "v"]);
    let mut opts = options();

    open_fails_with(&server.addr(), &opts, "requires a password");

    opts.password = Some("nope".into());
    open_fails_with(&server.addr(), &opts, "wrong password");

    opts.password = Some(pass.into());
    let stream = standalone::open(&server.addr(), &opts).expect("open with the password");
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
    let mut opts = options();
    opts.username = Some("dumper".into());
    opts.password = Some("wrong".into());
    open_fails_with(&server.addr(), &opts, "wrong user name or password");

    opts.password = Some(pass.into());
    let stream = standalone::open(&server.addr(), &opts).expect("open as an ACL user");
    read_and_check(stream.reader);
}

#[test]
fn replica_without_master_link_is_refused_clearly() {
    // A replica of a master that does not exist: its link stays down and it refuses PSYNC.
    let dead = common::redis::free_port().to_string();
    let server = RedisServer::start(&["--replicaof", "127.0.0.1", &dead]);
    open_fails_with(&server.addr(), &options(), "not connected to its master");
}

#[test]
fn server_killed_mid_transfer_is_an_error() {
    let mut server = RedisServer::start(&["--repl-diskless-sync", "no", "--rdbcompression", "no"]);
    // ~200 MB of values: far more than socket buffers can hold.
    assert_eq!(
        server.cli(&["DEBUG", "POPULATE", "1000000", "big", "200"]),
        "OK"
    );
    let stream = standalone::open(&server.addr(), &options()).expect("open");
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
    let master = fake_master_sending(b"+FULLRESYNC abc 0\r\n$100\r\nREDIS".to_vec());
    let stream = standalone::open(&master.addr(), &options()).expect("open");
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

/// A fake master: answers the handshake commands like Redis (`+PONG`, `+OK`), lets `on_psync`
/// talk after `PSYNC`, then holds the connection open until dropped.
fn fake_master(
    on_psync: impl Fn(&mut Peer) -> io::Result<()> + Send + Sync + 'static,
) -> FakeServer {
    FakeServer::start(1, move |peer| {
        while let Some(cmd) = peer.read_command()? {
            match cmd.first().map(Vec::as_slice) {
                Some(b"PING") => peer.send(b"+PONG\r\n")?,
                Some(b"PSYNC") => {
                    on_psync(peer)?;
                    peer.hold();
                    return Ok(());
                }
                _ => peer.send(b"+OK\r\n")?,
            }
        }
        Ok(())
    })
}

/// A fake master that sends `after_psync` verbatim.
fn fake_master_sending(after_psync: Vec<u8>) -> FakeServer {
    fake_master(move |peer| peer.send(&after_psync))
}

#[test]
fn fake_master_keepalives_and_diskless_mark() {
    let mark = b"0123456789abcdef0123456789abcdef01234567";
    let rdb = tiny_rdb();
    let mut reply = b"\n+FULLRESYNC abc 0\r\n\n\n\n$EOF:".to_vec();
    reply.extend_from_slice(mark);
    reply.extend_from_slice(b"\r\n");
    reply.extend_from_slice(&rdb);
    reply.extend_from_slice(mark);

    let master = fake_master_sending(reply);
    let stream = standalone::open(&master.addr(), &options()).expect("open");
    let data = read_and_check(stream.reader);
    assert_eq!(data, rdb);
    // What a replica says, in order.
    let sent = String::from_utf8_lossy(&master.received()[0]).into_owned();
    let order: Vec<usize> = [
        "PING",
        "REPLCONF\r\n$4\r\ncapa\r\n$3\r\neof",
        "rdb-only",
        "PSYNC\r\n$1\r\n?\r\n$2\r\n-1",
    ]
    .iter()
    .map(|c| {
        sent.find(c)
            .unwrap_or_else(|| panic!("{c} not sent: {sent:?}"))
    })
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{sent:?}");
}

#[test]
fn non_redis_peer_and_silent_peer() {
    let http = FakeServer::start(1, |peer| {
        peer.read_command()?;
        peer.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")?;
        peer.hold();
        Ok(())
    });
    open_fails_with(&http.addr(), &options(), "is this a Redis server");

    let silent = FakeServer::start(1, |peer| {
        peer.hold();
        Ok(())
    });
    let opts = ConnectionOptions {
        read_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let e = open_err(&silent.addr(), &opts);
    assert!(
        e.contains("PING: no answer within 0.3s (--read-timeout)"),
        "{e}"
    );
}

/// The handshake waits for each reply as long as `--read-timeout` says, not the connect timeout
/// (which bounds TCP and TLS only), and a silent server fails after that long.
#[test]
fn handshake_replies_obey_the_read_timeout() {
    // Each of PING and PSYNC answered after 1.2 s: longer than the connect timeout.
    let slow = fake_master_slow(Duration::from_millis(1200));
    let opts = ConnectionOptions {
        connect_timeout: Duration::from_secs(1),
        read_timeout: Duration::from_secs(3),
        ..Default::default()
    };
    let stream = standalone::open(&slow.addr(), &opts).expect("slow but within --read-timeout");
    assert_eq!(read_and_check(stream.reader), tiny_rdb());

    // Answered after 1.2 s with a 1 s read timeout: the error says which timeout fired.
    let slow = fake_master_slow(Duration::from_millis(1200));
    let opts = ConnectionOptions {
        connect_timeout: Duration::from_secs(10),
        read_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let started = Instant::now();
    let err = standalone::open(&slow.addr(), &opts)
        .err()
        .expect("PING answered too late");
    let waited = started.elapsed();
    assert!(
        matches!(
            err.cause(),
            Some(Cause::Timeout {
                which: TimeoutKind::Read,
                ..
            })
        ),
        "{err:?}"
    );
    assert!(
        chain(&err).contains("PING: no answer within 1s (--read-timeout)"),
        "{err}"
    );
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "gave up after {waited:?}"
    );
}

/// The same through the binary: `--read-timeout 1` against a server that accepts and answers
/// nothing fails within seconds (it used to wait at least 30 s), naming the flag.
#[test]
fn cli_read_timeout_bounds_the_handshake() {
    let silent = FakeServer::start(1, |peer| {
        peer.hold();
        Ok(())
    });
    let started = Instant::now();
    let addr = silent.addr();
    let stderr = standalone_fails(&addr, &["--read-timeout", "1"]);
    let waited = started.elapsed();
    assert!(
        stderr.contains(&format!(
            "{addr}: PING: no answer within 1s (--read-timeout)"
        )),
        "{stderr}"
    );
    assert!(waited < Duration::from_secs(10), "took {waited:?}");
}

/// A fake master that answers `PING` and `PSYNC` after `delay`, then sends a tiny snapshot.
fn fake_master_slow(delay: Duration) -> FakeServer {
    let rdb = Arc::new(tiny_rdb());
    FakeServer::start(1, move |peer| {
        while let Some(cmd) = peer.read_command()? {
            match cmd.first().map(Vec::as_slice) {
                Some(b"PING") => {
                    peer.stall(delay);
                    peer.send(b"+PONG\r\n")?;
                }
                Some(b"PSYNC") => {
                    peer.stall(delay);
                    peer.send(format!("+FULLRESYNC abc 0\r\n${}\r\n", rdb.len()).as_bytes())?;
                    peer.send(&rdb)?;
                    peer.hold();
                    return Ok(());
                }
                _ => peer.send(b"+OK\r\n")?,
            }
        }
        Ok(())
    })
}

#[test]
fn loading_server_is_reported() {
    let loading = FakeServer::start(1, |peer| {
        peer.read_command()?;
        peer.send(b"-LOADING Redis is loading the dataset in memory\r\n")?;
        peer.hold();
        Ok(())
    });
    open_fails_with(&loading.addr(), &options(), "still loading");
}

#[test]
fn server_closing_mid_handshake_is_reported() {
    let closing = FakeServer::start(1, |peer| {
        peer.read_command()?;
        peer.close();
        Ok(())
    });
    let e = open_err(&closing.addr(), &options());
    assert_eq!(
        e,
        format!("{}: PING: the server closed the connection", closing.addr())
    );
}

#[test]
fn connection_refused_is_clear() {
    let port = common::redis::free_port();
    let addr = format!("127.0.0.1:{port}");
    let err = standalone::open(&addr, &options())
        .err()
        .expect("nothing listens");
    // The I/O error is the source, with its kind.
    let kind = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<io::Error>())
        .map(io::Error::kind);
    assert_eq!(kind, Some(io::ErrorKind::ConnectionRefused), "{err:?}");
    let e = chain(&err);
    assert!(
        e.starts_with(&format!("{addr}: cannot connect to {addr}: ")),
        "{e}"
    );
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
    let master = fake_master(|peer| {
        peer.send(b"+FULLRESYNC abc 0\r\n")?;
        for _ in 0..10 {
            peer.stall(Duration::from_millis(100));
            peer.send(b"\n")?;
        }
        let rdb = tiny_rdb();
        peer.send(format!("${}\r\n", rdb.len()).as_bytes())?;
        peer.send(&rdb)
    });
    let opts = ConnectionOptions {
        read_timeout: Duration::from_millis(400),
        ..Default::default()
    };
    let stream = standalone::open(&master.addr(), &opts).expect("open");
    assert_eq!(read_and_check(stream.reader), tiny_rdb());

    // The snapshot starts, then the master goes silent: a TimedOut error, not a short stream.
    let master = fake_master_sending(b"+FULLRESYNC abc 0\r\n$1000\r\nREDIS0011".to_vec());
    let opts = ConnectionOptions {
        read_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let stream = standalone::open(&master.addr(), &opts).expect("open");
    let mut data = Vec::new();
    let mut reader = stream.reader;
    let err = reader.read_to_end(&mut data).expect_err("must time out");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(err.to_string().contains("--read-timeout"), "{err}");
    assert!(err.to_string().contains("after 9 of 1000"), "{err}");
}

#[test]
fn psync_error_reply_is_reported() {
    let master =
        fake_master_sending(b"-ERR Can't SYNC while not connected with my master\r\n".to_vec());
    let e = open_err(&master.addr(), &options());
    assert!(e.contains("PSYNC failed"), "{e}");
    assert!(e.contains("not connected with my master"), "{e}");
}

#[test]
fn ipv6_address_in_brackets() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        // The address parsing is checked by source::connection's unit tests.
        eprintln!("no IPv6 loopback on this machine: skipped");
        return;
    }
    let server = RedisServer::start(&["--bind", "127.0.0.1", "-::1"]);
    server.cli(&["SET", "k", "v"]);
    let addr = format!("[::1]:{}", server.port);
    let stream = standalone::open(&addr, &options()).expect("open over IPv6");
    read_and_check(stream.reader);
}
