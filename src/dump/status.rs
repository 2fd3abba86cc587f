//! The live status of every instance of a dump: one set of counters the pipeline updates and
//! everything that reports on a dump reads (progress bars, progress log lines, the Prometheus
//! endpoint, the metrics file).
//!
//! The pipeline updates the counters once per chunk of records, never per record, so the hot
//! loop pays two relaxed atomic stores per [`super::CHUNK_RECORDS`] records. Readers may see a
//! chunk's records before its bytes (or the reverse); each counter only grows.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where an instance is in its dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum InstanceState {
    /// Waiting for a `--concurrency` slot.
    Pending = 0,
    /// Opening its source, parsing, writing.
    Running = 1,
    /// Every record written and the instance's output finalized (the batch itself becomes
    /// visible only when every instance is done).
    Done = 2,
    /// Ended without completing: its own error, or stopped because another instance failed or
    /// the dump was interrupted.
    Failed = 3,
}

impl InstanceState {
    pub const ALL: [InstanceState; 4] = [
        InstanceState::Pending,
        InstanceState::Running,
        InstanceState::Done,
        InstanceState::Failed,
    ];

    /// The label value used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::Done => "done",
            InstanceState::Failed => "failed",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => InstanceState::Running,
            2 => InstanceState::Done,
            3 => InstanceState::Failed,
            _ => InstanceState::Pending,
        }
    }
}

/// One instance's counters. Shared (`Arc`) between the pipeline and its readers.
#[derive(Debug)]
pub struct InstanceStatus {
    cluster: String,
    instance: String,
    /// The dump's start, the origin of `started_ns` / `ended_ns`.
    origin: Instant,
    state: AtomicU8,
    records: AtomicU64,
    bytes_read: AtomicU64,
    /// 0: unknown (no RDB is empty: the header alone is 9 bytes).
    total_bytes: AtomicU64,
    /// Nanoseconds after `origin`, plus one (0: not yet).
    started_ns: AtomicU64,
    ended_ns: AtomicU64,
}

impl InstanceStatus {
    pub fn new(cluster: &str, instance: &str, origin: Instant) -> Self {
        InstanceStatus {
            cluster: cluster.to_string(),
            instance: instance.to_string(),
            origin,
            state: AtomicU8::new(InstanceState::Pending as u8),
            records: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            total_bytes: AtomicU64::new(0),
            started_ns: AtomicU64::new(0),
            ended_ns: AtomicU64::new(0),
        }
    }

    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn state(&self) -> InstanceState {
        InstanceState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Records handed to the writer (and accepted by it) so far.
    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    /// RDB bytes the parser consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }

    /// The RDB's length, when the source knows it up front (files, disk-based replication).
    pub fn total_bytes(&self) -> Option<u64> {
        match self.total_bytes.load(Ordering::Relaxed) {
            0 => None,
            n => Some(n),
        }
    }

    /// Time spent running: from start to end, or to now while running; `None` while pending.
    pub fn duration(&self) -> Option<Duration> {
        let started = self.started_ns.load(Ordering::Acquire);
        if started == 0 {
            return None;
        }
        let ended = match self.ended_ns.load(Ordering::Acquire) {
            0 => self.nanos_now(),
            e => e,
        };
        Some(Duration::from_nanos(ended.saturating_sub(started)))
    }

    fn nanos_now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    pub(crate) fn start(&self) {
        self.started_ns.store(self.nanos_now(), Ordering::Release);
        self.state
            .store(InstanceState::Running as u8, Ordering::Release);
    }

    /// Mark the end (done or failed); the first end wins.
    pub(crate) fn end(&self, state: InstanceState) {
        let _ = self.ended_ns.compare_exchange(
            0,
            self.nanos_now(),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        let _ = self.state.compare_exchange(
            InstanceState::Running as u8,
            state as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    #[inline]
    pub(crate) fn add_records(&self, n: u64) {
        self.records.fetch_add(n, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn set_bytes_read(&self, offset: u64) {
        self.bytes_read.store(offset, Ordering::Relaxed);
    }

    pub(crate) fn set_total_bytes(&self, total: Option<u64>) {
        self.total_bytes
            .store(total.unwrap_or(0), Ordering::Relaxed);
    }
}

/// Marks an instance failed when dropped while still running: the instance's task returned an
/// error, or was aborted because another instance failed or the dump was interrupted.
pub(crate) struct FailUnlessDone<'a>(pub &'a InstanceStatus);

impl Drop for FailUnlessDone<'_> {
    fn drop(&mut self) {
        self.0.end(InstanceState::Failed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle() {
        let s = InstanceStatus::new("c", "i:1", Instant::now());
        assert_eq!(s.state(), InstanceState::Pending);
        assert_eq!(s.duration(), None);
        assert_eq!(s.total_bytes(), None);
        s.start();
        assert_eq!(s.state(), InstanceState::Running);
        s.add_records(1024);
        s.add_records(3);
        s.set_bytes_read(500);
        s.set_total_bytes(Some(900));
        assert_eq!((s.records(), s.bytes_read()), (1027, 500));
        assert_eq!(s.total_bytes(), Some(900));
        let running = s.duration().expect("started");
        s.end(InstanceState::Done);
        s.end(InstanceState::Failed); // too late: the first end wins
        assert_eq!(s.state(), InstanceState::Done);
        let d = s.duration().expect("ended");
        assert!(d >= running);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(s.duration(), Some(d), "frozen once ended");
    }

    #[test]
    fn a_dropped_guard_fails_a_running_instance_only() {
        let s = InstanceStatus::new("c", "i", Instant::now());
        s.start();
        drop(FailUnlessDone(&s));
        assert_eq!(s.state(), InstanceState::Failed);
        let p = InstanceStatus::new("c", "i", Instant::now());
        drop(FailUnlessDone(&p));
        assert_eq!(p.state(), InstanceState::Pending, "never started");
    }
}
