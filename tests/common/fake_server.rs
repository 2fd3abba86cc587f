//! A scripted TCP peer for tests of what we do when a server misbehaves: it binds
//! 127.0.0.1:0, accepts connections and runs a handler per connection on its own thread. The
//! handler reads (every byte a connection sends is recorded), replies canned bytes, stalls or
//! closes (by returning). Dropping the server ends stalls, shuts every connection down and
//! joins the threads; a handler's panic is re-raised there.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// A running fake server.
pub struct FakeServer {
    addr: String,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<Vec<JoinHandle<()>>>>,
}

#[derive(Default)]
struct Shared {
    stopping: Mutex<bool>,
    stop: Condvar,
    /// Bytes received, per connection in accept order.
    received: Mutex<Vec<Vec<u8>>>,
    /// Clones of the accepted sockets, shut down on drop.
    sockets: Mutex<Vec<TcpStream>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn stopping(&self) -> bool {
        *lock(&self.stopping)
    }
}

impl FakeServer {
    /// Serve up to `connections` connections (`usize::MAX`: until dropped), each with
    /// `handler`.
    pub fn start<F>(connections: usize, handler: F) -> FakeServer
    where
        F: Fn(&mut Peer) -> io::Result<()> + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address").to_string();
        let shared = Arc::new(Shared::default());
        let handler = Arc::new(handler);
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                let mut threads = Vec::new();
                for index in 0..connections {
                    let Ok((stream, _)) = listener.accept() else {
                        break;
                    };
                    if shared.stopping() {
                        break;
                    }
                    if let Ok(clone) = stream.try_clone() {
                        lock(&shared.sockets).push(clone);
                    }
                    lock(&shared.received).push(Vec::new());
                    let mut peer = Peer {
                        stream,
                        index,
                        pending: Vec::new(),
                        shared: Arc::clone(&shared),
                    };
                    let handler = Arc::clone(&handler);
                    threads.push(std::thread::spawn(move || {
                        let _ = handler(&mut peer);
                    }));
                }
                threads
            })
        };
        FakeServer {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What each connection has sent so far, in accept order.
    pub fn received(&self) -> Vec<Vec<u8>> {
        lock(&self.shared.received).clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        *lock(&self.shared.stopping) = true;
        self.shared.stop.notify_all();
        for s in lock(&self.shared.sockets).iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
        // Wake an acceptor blocked in accept(); it sees `stopping` and ends.
        let _ = TcpStream::connect(&self.addr);
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        let mut panicked = false;
        match acceptor.join() {
            Ok(threads) => {
                for t in threads {
                    panicked |= t.join().is_err();
                }
            }
            Err(_) => panicked = true,
        }
        if panicked && !std::thread::panicking() {
            panic!("a fake server handler panicked");
        }
    }
}

/// One accepted connection, as its handler sees it.
pub struct Peer {
    stream: TcpStream,
    index: usize,
    /// Received bytes not yet returned by a `read_*` call.
    pending: Vec<u8>,
    shared: Arc<Shared>,
}

impl Peer {
    /// Read what has arrived into `pending` (recording it); false when the client closed.
    fn fill(&mut self) -> io::Result<bool> {
        let mut buf = [0u8; 4096];
        let n = self.stream.read(&mut buf)?;
        if let Some(log) = lock(&self.shared.received).get_mut(self.index) {
            log.extend_from_slice(&buf[..n]);
        }
        self.pending.extend_from_slice(&buf[..n]);
        Ok(n > 0)
    }

    /// Read through the first `delim`; `None` if the client closes before it.
    pub fn read_until(&mut self, delim: &[u8]) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(at) = self.pending.windows(delim.len()).position(|w| w == delim) {
                return Ok(Some(self.pending.drain(..at + delim.len()).collect()));
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Read one command as clients send them (a RESP array of bulk strings); `None` if the
    /// client closes first.
    pub fn read_command(&mut self) -> io::Result<Option<Vec<Vec<u8>>>> {
        loop {
            if let Some((args, used)) = parse_command(&self.pending) {
                self.pending.drain(..used);
                return Ok(Some(args));
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// The socket itself, e.g. to relay bytes elsewhere (what passes through it directly is not
    /// recorded).
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Close the connection now (returning from the handler does the same).
    pub fn close(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Send `bytes` as they are.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Wait `d` without reading, or less if the server is dropped first.
    pub fn stall(&self, d: Duration) {
        let stopping = lock(&self.shared.stopping);
        let _ = self
            .shared
            .stop
            .wait_timeout_while(stopping, d, |stopping| !*stopping);
    }

    /// Wait, answering nothing, until the server is dropped (at most an hour).
    pub fn hold(&self) {
        self.stall(Duration::from_secs(3600));
    }
}

/// A complete RESP array of bulk strings at the start of `buf`: its elements and length.
fn parse_command(buf: &[u8]) -> Option<(Vec<Vec<u8>>, usize)> {
    fn line(buf: &[u8], from: usize, marker: u8) -> Option<(usize, usize)> {
        let end = from + buf.get(from..)?.windows(2).position(|w| w == b"\r\n")?;
        if buf.get(from) != Some(&marker) {
            return None;
        }
        let n = std::str::from_utf8(&buf[from + 1..end])
            .ok()?
            .parse()
            .ok()?;
        Some((n, end + 2))
    }
    let (count, mut at) = line(buf, 0, b'*')?;
    let mut args = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let (len, start) = line(buf, at, b'$')?;
        let arg = buf.get(start..start + len)?;
        if buf.get(start + len..start + len + 2)? != b"\r\n" {
            return None;
        }
        args.push(arg.to_vec());
        at = start + len + 2;
    }
    Some((args, at))
}
