//! A minimal RESP client for tests that need binary-safe commands (`redis-cli` arguments are
//! text): one connection, one command at a time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

pub struct Resp {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Resp {
    pub fn connect(port: u16) -> Resp {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to redis");
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        Resp {
            r: BufReader::new(s.try_clone().expect("clone")),
            w: s,
        }
    }

    /// Send a command, return the reply (an error reply is returned, not a panic).
    pub fn cmd(&mut self, args: &[&[u8]]) -> Reply {
        let mut buf = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a);
            buf.extend_from_slice(b"\r\n");
        }
        self.w.write_all(&buf).expect("send command");
        self.read_reply()
    }

    /// Send a command that must not fail.
    pub fn ok(&mut self, args: &[&[u8]]) -> Reply {
        let r = self.cmd(args);
        if let Reply::Error(e) = &r {
            panic!(
                "{:?} failed: {e}",
                args.iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect::<Vec<_>>()
            );
        }
        r
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).expect("read reply line");
        l.trim_end_matches("\r\n").to_string()
    }

    fn read_reply(&mut self) -> Reply {
        let l = self.line();
        let (kind, rest) = l.split_at(1);
        match kind {
            "+" => Reply::Status(rest.into()),
            "-" => Reply::Error(rest.into()),
            ":" => Reply::Int(rest.parse().expect("integer reply")),
            "$" => {
                let n: i64 = rest.parse().expect("bulk length");
                if n < 0 {
                    return Reply::Bulk(None);
                }
                let mut b = vec![0u8; n as usize + 2];
                self.r.read_exact(&mut b).expect("bulk body");
                b.truncate(n as usize);
                Reply::Bulk(Some(b))
            }
            "*" => {
                let n: i64 = rest.parse().expect("array length");
                if n < 0 {
                    return Reply::Array(None);
                }
                Reply::Array(Some((0..n).map(|_| self.read_reply()).collect()))
            }
            other => panic!("unexpected reply type {other:?} in {l:?}"),
        }
    }
}
