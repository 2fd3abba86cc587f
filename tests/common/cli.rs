//! The real `rdbinsight` binary as an operator runs it: spawned in its own process group (so a
//! signal sent to the group arrives as a terminal's Ctrl-C does), stderr collected line by
//! line, and RDB bytes fed through a FIFO at the pace a test decides.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// `kill -SIG pid` for a child spawned without a process group of its own (`-INT`, `-TERM`,
/// `-STOP`, `-CONT`); the kill must succeed.
pub fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap_or_else(|e| panic!("kill {sig}: {e}"));
    assert!(status.success(), "kill {sig}");
}

/// A `Command` for the binary with a clean environment for logs.
pub fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rdbinsight"));
    cmd.args(args)
        .env("RUST_BACKTRACE", "0")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR");
    cmd
}

/// Run `cmd` (any program) to the end; it must succeed, else the test fails with its stderr
/// and stdout.
pub fn succeeds(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("run {:?}: {e}", cmd.get_program()));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

/// A running binary.
pub struct Running {
    pub child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl Running {
    /// Spawn `cmd` as the leader of a new process group, stdout discarded, stderr collected.
    pub fn spawn(mut cmd: Command) -> Running {
        use std::os::unix::process::CommandExt as _;
        let mut child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rdbinsight");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stderr.take().expect("stderr");
        let lines = Arc::clone(&stderr);
        let reader = thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        });
        Running {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    /// Send `sig` to the process group, as a terminal sends Ctrl-C to its foreground job.
    pub fn signal_group(&self, sig: i32) {
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) takes plain integers; a negative pid names the process group.
        let rc = unsafe { libc::kill(-pgid, sig) };
        assert_eq!(rc, 0, "kill(-{pgid}, {sig})");
    }

    /// SIGKILL the process (no cleanup possible).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
    }

    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Wait until a stderr line contains `needle`.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.stderr().into_iter().find(|l| l.contains(needle)) {
                return l;
            }
            assert!(
                Instant::now() < deadline,
                "no stderr line with {needle:?} within {timeout:?}: {:#?}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait for the exit (killing the process after `timeout`, then failing).
    pub fn wait(&mut self, timeout: Duration) -> (ExitStatus, Vec<String>) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "rdbinsight did not exit within {timeout:?}; stderr: {:#?}",
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        (status, self.stderr())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Create a FIFO at `path`.
pub fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Writes bytes into a FIFO from a thread: the open blocks until the reader (the dump) opens
/// its end, which tells the test that the instance started.
pub struct FifoFeeder {
    tx: Option<mpsc::Sender<Vec<u8>>>,
    opened: mpsc::Receiver<()>,
    done: mpsc::Receiver<usize>,
    pub path: PathBuf,
}

impl FifoFeeder {
    pub fn new(path: &Path) -> FifoFeeder {
        mkfifo(path);
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let (opened_tx, opened) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let p = path.to_path_buf();
        thread::spawn(move || {
            let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&p) else {
                return;
            };
            let _ = opened_tx.send(());
            let mut written = 0;
            while let Ok(chunk) = rx.recv() {
                // The reader may be gone (the dump stopped): EPIPE ends the feeding.
                if f.write_all(&chunk).is_err() {
                    break;
                }
                written += chunk.len();
                let _ = done_tx.send(written);
            }
        });
        FifoFeeder {
            tx: Some(tx),
            opened,
            done,
            path: path.to_path_buf(),
        }
    }

    /// Wait until the dump opened the FIFO.
    pub fn wait_opened(&self, timeout: Duration) {
        self.opened
            .recv_timeout(timeout)
            .expect("the dump never opened the FIFO");
    }

    /// Write `bytes` and wait until they are in the pipe (all but the pipe's 64 KiB have then
    /// been read by the dump).
    pub fn write(&self, bytes: &[u8], timeout: Duration) {
        if let Some(tx) = &self.tx {
            tx.send(bytes.to_vec()).expect("feeder thread");
            let _ = self.done.recv_timeout(timeout);
        }
    }

    /// Close the write end (EOF for the dump).
    pub fn close(&mut self) {
        self.tx = None;
    }
}

/// Run the binary with `args` to its end: its exit code, its peak RSS in bytes and its stderr.
///
/// The peak is GNU time's (`/usr/bin/time -f %M`): time forks the binary from its own small
/// process and reports the child's `ru_maxrss`. Measured from this process directly, a child
/// starts its `ru_maxrss` at this process's RSS when it is spawned (`posix_spawn` shares our
/// memory until the exec; a fork copies it), and this process holds whatever the tests running
/// beside it hold: hundreds of MB that were not the binary's.
pub fn run_measured(args: &[&str]) -> (i32, u64, String) {
    let time = Path::new("/usr/bin/time");
    assert!(
        time.exists(),
        "/usr/bin/time (GNU time) is needed to measure peak RSS: apt-get install -y time"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("maxrss");
    let plain = command(args);
    let mut cmd = Command::new(time);
    cmd.arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&report)
        .arg(plain.get_program())
        .args(plain.get_args());
    for (k, v) in plain.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("spawn rdbinsight under /usr/bin/time");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    // GNU time writes "Command exited with non-zero status N" before the figure on failure.
    let kib: u64 = text
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .next_back()
        .unwrap_or_else(|| panic!("no peak RSS from /usr/bin/time: {text:?}; stderr: {stderr}"));
    (out.status.code().unwrap_or(-1), kib << 10, stderr)
}
