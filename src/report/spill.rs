//! External sort of `(key, facts)` entries within a memory budget: the Parquet reader's way to
//! hand the prefix tree every key of a batch in byte order without holding them all.
//!
//! Entries are appended to one byte arena (`key`, then `rdb_size` and `member_count` as LEB128
//! varints, then a flags byte, then `mem_size` as a varint when the flags say it is present) indexed by 16-byte entries (the key's first 8 bytes as a
//! big-endian integer, offset, length). Sorting is an MSD radix sort on 8-byte chunks that
//! touches the arena once per chunk depth (see `sort_index`). When arena + index reach the
//! budget, the index is sorted and the entries are written to a run file (`varint key length` +
//! the arena bytes) in a temporary directory, and the buffers are reused.
//! [`ExternalSorter::finish`] merges the runs with the last, in-memory one (a k-way merge over
//! a heap); more runs than the fan-in are first merged into bigger runs.
//!
//! The reader pushes sort forms (`keytext::sort_form`), so an entry's key is at most 4 KiB +
//! 40 bytes however long the key, and its bytes count against the budget like the rest.
//!
//! Memory: the budget (arena + index, counted by length; the Vecs grow by doubling, but pages
//! beyond the length are never touched) plus, while merging, one read buffer per merged run, in
//! all at most a third of the budget ([`ExternalSorter::new`] documents how the report splits
//! `--memory-limit`), and one key per run in the merge heap. Below 48 KiB of budget the buffers
//! stop shrinking at 4 KiB each and a merge takes two runs at a time (tiny limits exist for
//! tests).
//!
//! The directory (`rdbinsight-report-*` in `--spill-dir` or the system temp dir) is created at
//! the first spill and removed when the sorter is dropped: on success, on error, on panic, and
//! when the caller stops early (Ctrl-C sets the cancel flag checked here). A report that dies
//! without dropping it (SIGKILL, a second Ctrl-C) leaves it behind; it holds a `.lock`
//! (`crate::output::lock`) for as long as its report lives, so [`remove_stale_spill_dirs`]
//! (run by every Parquet report) can tell such leftovers from the directory of a live report.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::cancel::Cancel;
use crate::output::lock::FileLock;
use crate::record::RecordType;

use super::aggregate::{TYPES, type_index};
use super::prefix::KeyFacts;

/// Name prefix of spill directories.
const DIR_PREFIX: &str = "rdbinsight-report-";
/// The lock file in a spill directory, held by its report while it lives.
const DIR_LOCK: &str = ".lock";

/// Remove the spill directories in `parent` (`--spill-dir`, default the system temp dir) that
/// dead reports left behind: those whose lock file nobody alive holds. A directory without a
/// lock file is left alone (its report may be about to lock it); so is one whose lock is held.
/// Best effort: problems are logged, never fatal. Returns how many directories were removed.
pub fn remove_stale_spill_dirs(parent: Option<&Path>) -> usize {
    let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
    let entries = match std::fs::read_dir(&parent) {
        Ok(e) => e,
        Err(e) => {
            tracing::debug!(
                "cannot list {} for stale spill directories: {e}",
                parent.display()
            );
            return 0;
        }
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let is_spill = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(DIR_PREFIX));
        if !is_spill || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = entry.path();
        match FileLock::try_take_stale(&dir.join(DIR_LOCK)) {
            Ok(Some(lock)) => {
                // Ours now: remove the runs, then the lock, then the directory.
                let result = remove_runs(&dir).and_then(|()| {
                    lock.release();
                    std::fs::remove_dir(&dir)
                });
                match result {
                    Ok(()) => {
                        removed += 1;
                        tracing::info!(
                            "removed the spill directory {} of a report that did not finish",
                            dir.display()
                        );
                    }
                    Err(e) => tracing::warn!(
                        "cannot remove the stale spill directory {}: {e}",
                        dir.display()
                    ),
                }
            }
            Ok(None) => {}
            Err(e) => tracing::debug!("cannot check the lock of {}: {e}", dir.display()),
        }
    }
    removed
}

/// Remove every file of a spill directory but its lock.
fn remove_runs(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name() != DIR_LOCK {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Bytes an index entry takes.
const INDEX_ENTRY_BYTES: usize = std::mem::size_of::<IndexEntry>();
/// Largest arena (offsets are `u32`).
const MAX_ARENA: usize = u32::MAX as usize;
/// Most runs merged at once.
const MAX_FAN_IN: usize = 128;
/// Bounds of the read buffer per run during a merge.
const MIN_READ_BUF: usize = 4 << 10;
const MAX_READ_BUF: usize = 1 << 20;
/// Entries between two checks of the cancel flag.
const CANCEL_CHECK_EVERY: u32 = 1 << 14;

#[derive(Debug, Clone, Copy)]
struct IndexEntry {
    /// The key's first 8 bytes, big-endian, zero-padded: orders like the bytes, except that a
    /// tie may still differ (padding or later bytes).
    head: u64,
    offset: u32,
    key_len: u32,
}

/// What went wrong while sorting.
#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("interrupted")]
    Interrupted,
    /// A run file did not read back as written (disk trouble).
    #[error("spill file {path} is corrupt: {what}")]
    Corrupt { path: PathBuf, what: &'static str },
    /// The consumer of the sorted entries failed.
    #[error(transparent)]
    Consumer(Box<dyn std::error::Error + Send + Sync>),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> SpillError {
    let context = context.into();
    move |source| SpillError::Io { context, source }
}

/// Counters of what the sorter did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpillStats {
    /// Entries sorted.
    pub entries: u64,
    /// Sorted runs written to disk (0: everything fit in memory).
    pub runs_spilled: u64,
    /// Runs written by intermediate merges.
    pub runs_merged: u64,
    /// Bytes written to run files (both kinds).
    pub bytes_spilled: u64,
}

/// A sorted run on disk.
#[derive(Debug)]
struct Run {
    path: PathBuf,
}

/// Sorts `(key, facts)` entries by key bytes within a memory budget.
pub struct ExternalSorter {
    budget: usize,
    arena: Vec<u8>,
    index: Vec<IndexEntry>,
    runs: Vec<Run>,
    spill_parent: Option<PathBuf>,
    dir: Option<tempfile::TempDir>,
    /// Held while `dir` exists (declared after it: the directory goes first, then the lock).
    dir_lock: Option<FileLock>,
    next_run: u64,
    stats: SpillStats,
    cancel: Cancel,
    /// The longest key pushed: a run announcing a longer one is corrupt (checked before
    /// anything is allocated for it).
    max_key_len: usize,
}

impl std::fmt::Debug for ExternalSorter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalSorter")
            .field("budget", &self.budget)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl ExternalSorter {
    /// `budget`: bytes of arena + index before a run is spilled; the merge's read buffers add
    /// at most a third of it. (The report gives the sort ¾ of `--memory-limit`, so the merge,
    /// which runs after the files are read, stays within the limit.) `spill_parent`: where the
    /// run directory goes (default: the system temp dir). `cancel`: when set, the sort stops
    /// with [`SpillError::Interrupted`] at the next check.
    pub fn new(budget: u64, spill_parent: Option<PathBuf>, cancel: Cancel) -> Self {
        let budget = usize::try_from(budget).unwrap_or(usize::MAX).max(1);
        ExternalSorter {
            budget,
            arena: Vec::new(),
            index: Vec::new(),
            runs: Vec::new(),
            spill_parent,
            dir: None,
            dir_lock: None,
            next_run: 0,
            stats: SpillStats::default(),
            cancel,
            max_key_len: 0,
        }
    }

    /// The spill directory, once created.
    pub fn spill_dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(|d| d.path())
    }

    fn used(&self) -> usize {
        self.arena.len() + self.index.len() * INDEX_ENTRY_BYTES
    }

    /// Add an entry. May write a run to disk.
    pub fn push(&mut self, key: &[u8], facts: KeyFacts) -> Result<(), SpillError> {
        self.push_tagged(key, facts, None)
    }

    /// Add an entry carrying a `tag` (the baseline comparison's db and batch), handed back by
    /// [`ExternalSorter::finish_tagged`]. May write a run to disk.
    pub fn push_tagged(
        &mut self,
        key: &[u8],
        facts: KeyFacts,
        tag: Option<u64>,
    ) -> Result<(), SpillError> {
        let entry_len = key.len() + 4 * 10 + 1;
        if !self.index.is_empty()
            && (self.used() + entry_len + INDEX_ENTRY_BYTES > self.budget
                || self.arena.len() + entry_len > MAX_ARENA)
        {
            self.spill()?;
        }
        // A single entry larger than the arena's offset range cannot exist: Redis keys are
        // at most 512 MB.
        let offset = self.arena.len() as u32;
        self.arena.extend_from_slice(key);
        put_varint(&mut self.arena, facts.rdb_size);
        put_varint(&mut self.arena, facts.member_count);
        self.arena.push(flags(facts, tag.is_some()));
        if let Some(m) = facts.mem_size {
            put_varint(&mut self.arena, m);
        }
        if let Some(t) = tag {
            put_varint(&mut self.arena, t);
        }
        self.index.push(IndexEntry {
            head: head(key),
            offset,
            key_len: key.len() as u32,
        });
        self.stats.entries += 1;
        self.max_key_len = self.max_key_len.max(key.len());
        Ok(())
    }

    fn ensure_dir(&mut self) -> Result<PathBuf, SpillError> {
        if self.dir.is_none() {
            let (dir, lock) = new_spill_dir(self.spill_parent.as_deref())?;
            tracing::debug!("spilling sorted runs to {}", dir.path().display());
            self.dir = Some(dir);
            self.dir_lock = Some(lock);
        }
        Ok(self
            .dir
            .as_ref()
            .expect("just created")
            .path()
            .to_path_buf())
    }

    fn new_run_path(&mut self) -> Result<PathBuf, SpillError> {
        let dir = self.ensure_dir()?;
        self.next_run += 1;
        Ok(dir.join(format!("run-{:06}", self.next_run)))
    }

    /// Sort the buffered entries and write them as a run.
    fn spill(&mut self) -> Result<(), SpillError> {
        self.check_cancel()?;
        sort_index(&mut self.index, &self.arena);
        let path = self.new_run_path()?;
        let file = File::create(&path)
            .map_err(|e| io_err(format!("cannot create {}", path.display()))(e))?;
        let mut w = BufWriter::with_capacity(256 << 10, file);
        let mut bytes = 0u64;
        let mut write = || -> io::Result<()> {
            for e in &self.index {
                let start = e.offset as usize;
                let rest = entry_tail_len(&self.arena[start + e.key_len as usize..]);
                let end = start + e.key_len as usize + rest;
                let mut len = [0u8; 10];
                let n = encode_varint(u64::from(e.key_len), &mut len);
                w.write_all(&len[..n])?;
                w.write_all(&self.arena[start..end])?;
                bytes += (n + end - start) as u64;
            }
            w.flush()
        };
        write().map_err(|e| io_err(format!("cannot write {}", path.display()))(e))?;
        tracing::debug!(
            "spilled run {} ({} entries, {bytes} bytes)",
            self.stats.runs_spilled + 1,
            self.index.len()
        );
        self.stats.runs_spilled += 1;
        self.stats.bytes_spilled += bytes;
        self.runs.push(Run { path });
        self.arena.clear();
        self.index.clear();
        Ok(())
    }

    fn check_cancel(&self) -> Result<(), SpillError> {
        if self.cancel.is_cancelled() {
            Err(SpillError::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Read buffer per run and how many runs are merged at once: the buffers together take at
    /// most a third of the budget (the in-memory run keeps its place while merging).
    fn merge_shape(&self) -> (usize, usize) {
        let total = self.budget / 3;
        let buf = (total / 16).clamp(MIN_READ_BUF, MAX_READ_BUF);
        let fan_in = (total / buf).clamp(2, MAX_FAN_IN);
        (buf, fan_in)
    }

    /// Hand every entry to `consume` in ascending key order (equal keys in any order), then
    /// remove the spill directory. Returns what the sort did.
    pub fn finish<E>(
        self,
        mut consume: impl FnMut(&[u8], KeyFacts) -> Result<(), E>,
    ) -> Result<SpillStats, SpillError>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        self.finish_tagged(|key, facts, _| consume(key, facts))
    }

    /// [`ExternalSorter::finish`], with each entry's tag (`None` when pushed without one).
    pub fn finish_tagged<E>(
        mut self,
        consume: impl FnMut(&[u8], KeyFacts, Option<u64>) -> Result<(), E>,
    ) -> Result<SpillStats, SpillError>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        self.finish_in_place(consume)
    }

    fn finish_in_place<E>(
        &mut self,
        mut consume: impl FnMut(&[u8], KeyFacts, Option<u64>) -> Result<(), E>,
    ) -> Result<SpillStats, SpillError>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let consumer = |e: E| SpillError::Consumer(Box::new(e));
        sort_index(&mut self.index, &self.arena);
        let (buf, fan_in) = self.merge_shape();
        if self.runs.is_empty() {
            for (i, e) in self.index.iter().enumerate() {
                if (i as u32).is_multiple_of(CANCEL_CHECK_EVERY) {
                    self.check_cancel()?;
                }
                let (key, facts, tag) = decode_mem(&self.arena, e);
                consume(key, facts, tag).map_err(consumer)?;
            }
            return Ok(self.stats);
        }
        // Leave room for the in-memory run among the merged sources.
        while self.runs.len() + 1 > fan_in {
            let take = fan_in.min(self.runs.len());
            let batch: Vec<Run> = self.runs.drain(..take).collect();
            let path = self.new_run_path()?;
            let file =
                File::create(&path).map_err(io_err(format!("cannot create {}", path.display())))?;
            let mut w = BufWriter::with_capacity(buf, file);
            let mut bytes = 0u64;
            let mut sources = open_sources(&batch, buf, self.max_key_len)?;
            let write_failed = |e| io_err(format!("cannot write {}", path.display()))(e);
            merge(&mut sources, &[], &[], &self.cancel, |key, facts, tag| {
                bytes += write_entry(&mut w, key, facts, tag).map_err(write_failed)?;
                Ok(())
            })?;
            w.flush().map_err(write_failed)?;
            drop(sources);
            for r in &batch {
                let _ = std::fs::remove_file(&r.path);
            }
            tracing::debug!("merged {take} runs into one ({bytes} bytes)");
            self.stats.runs_merged += 1;
            self.stats.bytes_spilled += bytes;
            self.runs.push(Run { path });
        }
        let mut sources = open_sources(&self.runs, buf, self.max_key_len)?;
        merge(
            &mut sources,
            &self.arena,
            &self.index,
            &self.cancel,
            |key, facts, tag| consume(key, facts, tag).map_err(consumer),
        )?;
        Ok(self.stats)
    }
}

/// A new spill directory in `parent` (default: the system temp dir), locked by this process.
fn new_spill_dir(parent: Option<&Path>) -> Result<(tempfile::TempDir, FileLock), SpillError> {
    let mut b = tempfile::Builder::new();
    b.prefix(DIR_PREFIX);
    let dir = match parent {
        Some(p) => b.tempdir_in(p),
        None => b.tempdir(),
    }
    .map_err(io_err(format!(
        "cannot create a spill directory in {}",
        parent
            .map_or_else(std::env::temp_dir, Path::to_path_buf)
            .display()
    )))?;
    let lock_path = dir.path().join(DIR_LOCK);
    let lock = FileLock::try_acquire(&lock_path)
        .map_err(io_err(format!("cannot create {}", lock_path.display())))?
        .ok_or_else(|| SpillError::Io {
            context: format!("{} is locked by another process", lock_path.display()),
            source: io::Error::from(io::ErrorKind::WouldBlock),
        })?;
    Ok((dir, lock))
}

/// A sorted stream kept for one more pass: the `--baseline` pair pass reads each batch's key
/// stream back from its spool (written while the report consumes its key sort or, from
/// ClickHouse, its key stream) instead of reading and sorting both batches again.
///
/// Entries are encoded in run format into memory while they fit in `mem_cap` bytes; past it
/// the spool moves to a file `spool` in a spill directory of its own (same name prefix and lock
/// as the sorter's, so a dead report's spool is swept like its runs), created then and removed
/// when the spool or its reader is dropped. A spool that never outgrows its memory touches no
/// disk, so `--spill-dir` matters only when something spills.
///
/// [`Spool::push`] never fails: the first error (creating the directory, writing) is kept and
/// returned by [`Spool::into_reader`] (the stream feeding it goes on to its end meanwhile).
pub struct Spool {
    /// Encoded entries: all of them while in memory, else those not written yet.
    pending: Vec<u8>,
    /// Set once the spool has moved to disk; `None` inside after a write error.
    file: Option<SpoolFile>,
    spill_parent: Option<PathBuf>,
    error: Option<SpillError>,
    entries: u64,
    bytes: u64,
    max_key_len: usize,
    /// The write (and read) buffer once on disk.
    buf: usize,
    /// Most bytes kept in memory.
    mem_cap: usize,
}

/// A spool's file and the directory holding it. Field order: the file closes, the directory
/// is removed, then the lock is released.
struct SpoolFile {
    w: Option<File>,
    path: PathBuf,
    _dir: tempfile::TempDir,
    _lock: FileLock,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("path", &self.file.as_ref().map(|s| &s.path))
            .field("entries", &self.entries)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl Spool {
    /// A new, empty spool: in memory up to `mem_cap` bytes, then in `spill_parent` (default:
    /// the system temp dir) with a write and read buffer of `buf` bytes. Does no I/O.
    pub fn new(spill_parent: Option<&Path>, buf: usize, mem_cap: usize) -> Self {
        Spool {
            pending: Vec::new(),
            file: None,
            spill_parent: spill_parent.map(Path::to_path_buf),
            error: None,
            entries: 0,
            bytes: 0,
            max_key_len: 0,
            buf: buf.max(MIN_READ_BUF),
            mem_cap,
        }
    }

    /// Append an entry (the caller pushes them in ascending key order).
    #[inline]
    pub fn push(&mut self, key: &[u8], facts: KeyFacts, tag: Option<u64>) {
        if self.error.is_some() {
            return;
        }
        let need = key.len() + MAX_ENTRY_TAIL + 10;
        if self.file.is_none() && self.pending.len() + need > self.pending.capacity() {
            let want = (self.pending.capacity() * 2)
                .max(64 << 10)
                .max(self.pending.len() + need)
                .min(self.mem_cap);
            if want >= self.pending.len() + need {
                self.pending.reserve_exact(want - self.pending.len());
            } else {
                self.move_to_disk();
                if self.error.is_some() {
                    return;
                }
            }
        }
        let start = self.pending.len();
        put_varint(&mut self.pending, key.len() as u64);
        self.pending.extend_from_slice(key);
        put_varint(&mut self.pending, facts.rdb_size);
        put_varint(&mut self.pending, facts.member_count);
        self.pending.push(flags(facts, tag.is_some()));
        for v in [facts.mem_size, tag].into_iter().flatten() {
            put_varint(&mut self.pending, v);
        }
        self.bytes += (self.pending.len() - start) as u64;
        self.entries += 1;
        self.max_key_len = self.max_key_len.max(key.len());
        if self.file.is_some() && self.pending.len() >= self.buf {
            self.write_pending();
        }
    }

    /// Create the spool's directory and file and write what is in memory there.
    fn move_to_disk(&mut self) {
        let created = new_spill_dir(self.spill_parent.as_deref()).and_then(|(dir, lock)| {
            let path = dir.path().join("spool");
            let w =
                File::create(&path).map_err(io_err(format!("cannot create {}", path.display())))?;
            Ok(SpoolFile {
                w: Some(w),
                path,
                _dir: dir,
                _lock: lock,
            })
        });
        match created {
            Ok(f) => {
                tracing::debug!(
                    "spooling {} entries ({} bytes) to {}",
                    self.entries,
                    self.bytes,
                    f.path.display()
                );
                self.file = Some(f);
                self.write_pending();
                // Back to a write buffer's worth of memory.
                self.pending = Vec::with_capacity(self.buf + MAX_ENTRY_TAIL + 10);
            }
            Err(e) => {
                self.error = Some(e);
                self.pending = Vec::new();
            }
        }
    }

    fn write_pending(&mut self) {
        if let Some(f) = self.file.as_mut()
            && let Some(w) = f.w.as_mut()
            && let Err(e) = w.write_all(&self.pending)
        {
            self.error = Some(io_err(format!("cannot write {}", f.path.display()))(e));
            f.w = None;
        }
        self.pending.clear();
    }

    /// Entries and bytes pushed.
    pub fn written(&self) -> (u64, u64) {
        (self.entries, self.bytes)
    }

    /// Whether the spool has moved to disk.
    pub fn on_disk(&self) -> bool {
        self.file.is_some()
    }

    /// Close the spool for writing and open it for reading, from the start.
    pub fn into_reader(mut self) -> Result<SpoolReader, SpillError> {
        if self.file.is_some() {
            self.write_pending();
        }
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let max_entry = self.max_key_len + MAX_ENTRY_TAIL + 10;
        let (src, buf, path) = match self.file.take() {
            None => (
                None,
                std::mem::take(&mut self.pending),
                PathBuf::from("(memory)"),
            ),
            Some(mut f) => {
                f.w = None;
                let r = File::open(&f.path)
                    .map_err(io_err(format!("cannot open {}", f.path.display())))?;
                let path = f.path.clone();
                (
                    Some((r, f)),
                    Vec::with_capacity(self.buf.max(2 * max_entry)),
                    path,
                )
            }
        };
        Ok(SpoolReader {
            eof: src.is_none(),
            src,
            buf,
            pos: 0,
            key: (0, 0),
            max_key_len: self.max_key_len,
            max_entry,
            facts: KeyFacts::EMPTY,
            tag: None,
            path,
        })
    }
}

/// Most bytes after an entry's key: 4 varints and the flags.
const MAX_ENTRY_TAIL: usize = 41;

/// A [`Spool`] read back once, in the order it was written. Entries are decoded in place from
/// one buffer (the whole spool, or a window of its file refilled as it is consumed).
pub struct SpoolReader {
    /// The file being read, and its directory (removed on drop); `None` for a spool in memory.
    src: Option<(File, SpoolFile)>,
    /// No more bytes to read into `buf`.
    eof: bool,
    buf: Vec<u8>,
    /// Where the next entry starts in `buf`.
    pos: usize,
    /// The loaded entry's key in `buf`: (start, end).
    key: (usize, usize),
    max_key_len: usize,
    max_entry: usize,
    facts: KeyFacts,
    tag: Option<u64>,
    path: PathBuf,
}

impl std::fmt::Debug for SpoolReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpoolReader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// An entry decoded from the front of a buffer.
enum Decoded {
    /// key start, key end, facts, tag, bytes used.
    Entry(usize, usize, KeyFacts, Option<u64>, usize),
    /// The buffer ends inside the entry.
    Partial,
    Corrupt(&'static str),
}

/// Decode the entry at the front of `b` (run format), its key no longer than `max_key_len`.
#[inline]
fn decode_entry(b: &[u8], max_key_len: usize) -> Decoded {
    let varint = |at: usize| -> Result<(u64, usize), Decoded> {
        match get_varint(b.get(at..).unwrap_or_default()) {
            Some(v) => Ok(v),
            None if b.len() >= at + 10 => Err(Decoded::Corrupt("overlong number")),
            None => Err(Decoded::Partial),
        }
    };
    let run = || -> Result<Decoded, Decoded> {
        let (len, n) = varint(0)?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= max_key_len)
            .ok_or(Decoded::Corrupt("impossible key length"))?;
        let key_end = n + len;
        let (rdb_size, a) = varint(key_end)?;
        let (member_count, c) = varint(key_end + a)?;
        let at = key_end + a + c;
        let f = *b.get(at).ok_or(Decoded::Partial)?;
        let mut facts = unflag(rdb_size, member_count, f).ok_or(Decoded::Corrupt("bad flags"))?;
        let mut at = at + 1;
        if f & HAS_MEM != 0 {
            let (m, k) = varint(at)?;
            facts.mem_size = Some(m);
            at += k;
        }
        let mut tag = None;
        if f & HAS_TAG != 0 {
            let (t, k) = varint(at)?;
            tag = Some(t);
            at += k;
        }
        Ok(Decoded::Entry(n, key_end, facts, tag, at))
    };
    match run() {
        Ok(d) | Err(d) => d,
    }
}

impl SpoolReader {
    /// Load the next entry; `false` at the end.
    pub fn advance(&mut self) -> Result<bool, SpillError> {
        loop {
            match decode_entry(&self.buf[self.pos..], self.max_key_len) {
                Decoded::Entry(k0, k1, facts, tag, used) => {
                    self.key = (self.pos + k0, self.pos + k1);
                    self.facts = facts;
                    self.tag = tag;
                    self.pos += used;
                    return Ok(true);
                }
                Decoded::Corrupt(what) => return Err(self.corrupt(what)),
                Decoded::Partial if self.eof => {
                    return if self.pos == self.buf.len() {
                        Ok(false)
                    } else {
                        Err(self.corrupt("truncated entry"))
                    };
                }
                Decoded::Partial => self.refill()?,
            }
        }
    }

    /// Move the unread bytes to the front of the buffer and read more after them.
    fn refill(&mut self) -> Result<(), SpillError> {
        self.buf.drain(..self.pos);
        self.pos = 0;
        let Some((r, _)) = self.src.as_mut() else {
            self.eof = true;
            return Ok(());
        };
        let have = self.buf.len();
        let want = self.buf.capacity().max(have + self.max_entry);
        self.buf.resize(want, 0);
        let mut filled = have;
        // Read until the buffer is full or the file ends: one partial entry at a time would
        // otherwise cost a read per entry near the end of each window.
        while filled < want {
            match r.read(&mut self.buf[filled..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(io_err(format!("cannot read {}", self.path.display()))(e));
                }
            }
        }
        self.buf.truncate(filled);
        Ok(())
    }

    /// The loaded entry's key.
    #[inline]
    pub fn key(&self) -> &[u8] {
        &self.buf[self.key.0..self.key.1]
    }

    /// The loaded entry's facts.
    #[inline]
    pub fn facts(&self) -> KeyFacts {
        self.facts
    }

    /// The loaded entry's tag.
    #[inline]
    pub fn tag(&self) -> Option<u64> {
        self.tag
    }

    /// The error for an entry that is not what its writer wrote.
    pub fn corrupt(&self, what: &'static str) -> SpillError {
        SpillError::Corrupt {
            path: self.path.clone(),
            what,
        }
    }
}

/// The first 8 bytes of `key`, big-endian, zero-padded.
#[inline]
fn head(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = key.len().min(8);
    b[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(b)
}

/// Sort the index by key bytes, 8 bytes at a time, most significant first (an MSD radix sort
/// with 64-bit digits). A pass sorts a range by (the 8 bytes at `depth`, how many of them the
/// key has) using only the index, where the 8 bytes are cached in `head`; a run that still ties
/// and whose keys go on is sorted again one chunk deeper. So each key's bytes are fetched from
/// the arena once per depth its run reaches, instead of at every comparison. The pending ranges
/// are a list, not recursion: identical long keys go as deep as they are long.
fn sort_index(index: &mut [IndexEntry], arena: &[u8]) {
    // (start, end, depth): entries [start, end) share their first `depth` bytes, and every
    // one of them is longer than `depth`... or `depth` is 0.
    let mut pending: Vec<(usize, usize, usize)> = vec![(0, index.len(), 0)];
    while let Some((start, end, depth)) = pending.pop() {
        let part = &mut index[start..end];
        if depth > 0 {
            for e in part.iter_mut() {
                let from = e.offset as usize + depth;
                let to = e.offset as usize + e.key_len as usize;
                e.head = head(&arena[from..to]);
            }
        }
        part.sort_unstable_by_key(|e| (e.head, rest_class(e, depth)));
        let mut i = 0;
        while i < part.len() {
            let digit = (part[i].head, rest_class(&part[i], depth));
            let mut j = i + 1;
            while j < part.len() && (part[j].head, rest_class(&part[j], depth)) == digit {
                j += 1;
            }
            // Class 9: the keys go on past these 8 bytes. (Classes 0-8 with equal bytes are
            // equal keys.)
            if j - i > 1 && digit.1 > 8 {
                pending.push((start + i, start + j, depth + 8));
            }
            i = j;
        }
    }
}

/// How many bytes the key has from `depth` on, capped at 9 ("more than this chunk"). Orders a
/// key that ends inside a chunk before a longer one whose remaining bytes are zeros.
#[inline]
fn rest_class(e: &IndexEntry, depth: usize) -> u32 {
    (e.key_len as usize - depth).min(9) as u32
}

/// Flags bit: a `mem_size` varint follows.
const HAS_MEM: u8 = 0x40;
/// Flags bit: a tag varint follows (after the `mem_size` one, if any).
const HAS_TAG: u8 = 0x20;
/// Flags bits: the type's index in `TYPES`.
const TYPE_BITS: u8 = 0x1f;

#[inline]
fn flags(f: KeyFacts, tagged: bool) -> u8 {
    let t = type_index(f.rtype) as u8;
    t | (u8::from(f.has_ttl) << 7)
        | if f.mem_size.is_some() { HAS_MEM } else { 0 }
        | if tagged { HAS_TAG } else { 0 }
}

/// The facts but `mem_size` (set by the caller when the flags say one follows).
#[inline]
fn unflag(rdb_size: u64, member_count: u64, flags: u8) -> Option<KeyFacts> {
    let rtype: RecordType = *TYPES.get(usize::from(flags & TYPE_BITS))?;
    Some(KeyFacts {
        rdb_size,
        mem_size: None,
        member_count,
        rtype,
        has_ttl: flags & 0x80 != 0,
    })
}

/// LEB128: 7 bits per byte, low bits first; returns the bytes used (at most 10).
#[inline]
fn encode_varint(mut v: u64, buf: &mut [u8; 10]) -> usize {
    let mut i = 0;
    while v >= 0x80 {
        buf[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    buf[i] = v as u8;
    i + 1
}

#[inline]
fn put_varint(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 10];
    let n = encode_varint(v, &mut buf);
    out.extend_from_slice(&buf[..n]);
}

/// A varint from the front of `b`: (value, bytes used). Only for bytes this module wrote.
#[inline]
fn get_varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Length of the (two varints + flags + optional varint) after a key in the arena.
#[inline]
fn entry_tail_len(b: &[u8]) -> usize {
    let (_, a) = get_varint(b).expect("arena written by push");
    let (_, c) = get_varint(&b[a..]).expect("arena written by push");
    let f = b[a + c];
    let mut len = a + c + 1;
    if f & HAS_MEM != 0 {
        len += get_varint(&b[len..]).expect("arena written by push").1;
    }
    if f & HAS_TAG != 0 {
        len += get_varint(&b[len..]).expect("arena written by push").1;
    }
    len
}

#[inline]
fn decode_mem<'a>(arena: &'a [u8], e: &IndexEntry) -> (&'a [u8], KeyFacts, Option<u64>) {
    let start = e.offset as usize;
    let key_end = start + e.key_len as usize;
    let tail = &arena[key_end..];
    let (rdb_size, a) = get_varint(tail).expect("arena written by push");
    let (member_count, c) = get_varint(&tail[a..]).expect("arena written by push");
    let f = tail[a + c];
    let mut facts = unflag(rdb_size, member_count, f).expect("flags written by push");
    let mut pos = a + c + 1;
    if f & HAS_MEM != 0 {
        let (m, n) = get_varint(&tail[pos..]).expect("arena written by push");
        facts.mem_size = Some(m);
        pos += n;
    }
    let tag =
        (f & HAS_TAG != 0).then(|| get_varint(&tail[pos..]).expect("arena written by push").0);
    (&arena[start..key_end], facts, tag)
}

/// Write one entry in run format; returns the bytes written.
fn write_entry(w: &mut impl Write, key: &[u8], f: KeyFacts, tag: Option<u64>) -> io::Result<u64> {
    let mut buf = [0u8; 10];
    let n = encode_varint(key.len() as u64, &mut buf);
    w.write_all(&buf[..n])?;
    w.write_all(key)?;
    let mut tail = [0u8; 41];
    let a = encode_varint(f.rdb_size, (&mut tail[..10]).try_into().expect("10 bytes"));
    let b = encode_varint(f.member_count, &mut buf);
    tail[a..a + b].copy_from_slice(&buf[..b]);
    tail[a + b] = flags(f, tag.is_some());
    let mut len = a + b + 1;
    for v in [f.mem_size, tag].into_iter().flatten() {
        let c = encode_varint(v, &mut buf);
        tail[len..len + c].copy_from_slice(&buf[..c]);
        len += c;
    }
    w.write_all(&tail[..len])?;
    Ok((n + key.len() + len) as u64)
}

/// A run being read back.
struct RunReader {
    path: PathBuf,
    r: BufReader<File>,
    key: Vec<u8>,
    max_key_len: usize,
    facts: KeyFacts,
    tag: Option<u64>,
}

impl RunReader {
    fn read_varint(&mut self) -> Result<Option<u64>, SpillError> {
        // Fast path: the whole number is in the read buffer.
        let buf = match self.r.fill_buf() {
            Ok(b) => b,
            Err(e) => return Err(io_err(format!("cannot read {}", self.path.display()))(e)),
        };
        if buf.is_empty() {
            return Ok(None);
        }
        if let Some((v, n)) = get_varint(buf) {
            self.r.consume(n);
            return Ok(Some(v));
        }
        let mut v = 0u64;
        for i in 0..10 {
            let mut b = [0u8; 1];
            match self.r.read(&mut b) {
                Ok(0) if i == 0 => return Ok(None),
                Ok(0) => return Err(self.corrupt("truncated number")),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(format!("cannot read {}", self.path.display()))(e)),
            }
            v |= u64::from(b[0] & 0x7f) << (7 * i);
            if b[0] & 0x80 == 0 {
                return Ok(Some(v));
            }
        }
        Err(self.corrupt("overlong number"))
    }

    fn corrupt(&self, what: &'static str) -> SpillError {
        SpillError::Corrupt {
            path: self.path.clone(),
            what,
        }
    }

    /// Load the next entry; `false` at the end of the run.
    fn advance(&mut self) -> Result<bool, SpillError> {
        let Some(len) = self.read_varint()? else {
            return Ok(false);
        };
        // The run was written by this process from keys it was given; a length beyond the
        // longest of them is corruption, not a reason to allocate.
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= self.max_key_len)
            .ok_or_else(|| self.corrupt("impossible key length"))?;
        self.key.resize(len, 0);
        let path = self.path.clone();
        self.r.read_exact(&mut self.key).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                SpillError::Corrupt {
                    path: path.clone(),
                    what: "truncated key",
                }
            } else {
                io_err(format!("cannot read {}", path.display()))(e)
            }
        })?;
        let rdb_size = self
            .read_varint()?
            .ok_or_else(|| self.corrupt("truncated entry"))?;
        let member_count = self
            .read_varint()?
            .ok_or_else(|| self.corrupt("truncated entry"))?;
        let mut f = [0u8; 1];
        self.r
            .read_exact(&mut f)
            .map_err(|_| self.corrupt("truncated entry"))?;
        self.facts =
            unflag(rdb_size, member_count, f[0]).ok_or_else(|| self.corrupt("bad flags"))?;
        if f[0] & HAS_MEM != 0 {
            self.facts.mem_size = Some(
                self.read_varint()?
                    .ok_or_else(|| self.corrupt("truncated entry"))?,
            );
        }
        self.tag = if f[0] & HAS_TAG != 0 {
            Some(
                self.read_varint()?
                    .ok_or_else(|| self.corrupt("truncated entry"))?,
            )
        } else {
            None
        };
        Ok(true)
    }
}

fn open_sources(
    runs: &[Run],
    buf: usize,
    max_key_len: usize,
) -> Result<Vec<RunReader>, SpillError> {
    runs.iter()
        .map(|run| {
            let f = File::open(&run.path)
                .map_err(io_err(format!("cannot open {}", run.path.display())))?;
            Ok(RunReader {
                path: run.path.clone(),
                r: BufReader::with_capacity(buf, f),
                key: Vec::new(),
                max_key_len,
                facts: KeyFacts::EMPTY,
                tag: None,
            })
        })
        .collect()
}

/// Heap item: the source whose current key is smallest comes out first.
struct Head {
    /// Index into the run readers, or `usize::MAX` for the in-memory run.
    source: usize,
    key: Vec<u8>,
}

impl PartialEq for Head {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Head {
    fn cmp(&self, o: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap.
        o.key
            .cmp(&self.key)
            .then_with(|| o.source.cmp(&self.source))
    }
}

/// K-way merge of the run readers and the sorted in-memory entries into `out`.
fn merge(
    runs: &mut [RunReader],
    arena: &[u8],
    index: &[IndexEntry],
    cancel: &Cancel,
    mut out: impl FnMut(&[u8], KeyFacts, Option<u64>) -> Result<(), SpillError>,
) -> Result<(), SpillError> {
    const MEM: usize = usize::MAX;
    let mut heap = BinaryHeap::with_capacity(runs.len() + 1);
    for (i, r) in runs.iter_mut().enumerate() {
        if r.advance()? {
            heap.push(Head {
                source: i,
                key: std::mem::take(&mut r.key),
            });
        }
    }
    let mut mem_pos = 0usize;
    if let Some(e) = index.first() {
        heap.push(Head {
            source: MEM,
            key: decode_mem(arena, e).0.to_vec(),
        });
    }
    let mut n = 0u32;
    while let Some(mut h) = heap.pop() {
        n = n.wrapping_add(1);
        if n.is_multiple_of(CANCEL_CHECK_EVERY) && cancel.is_cancelled() {
            return Err(SpillError::Interrupted);
        }
        if h.source == MEM {
            let (_, facts, tag) = decode_mem(arena, &index[mem_pos]);
            out(&h.key, facts, tag)?;
            mem_pos += 1;
            if let Some(e) = index.get(mem_pos) {
                h.key.clear();
                h.key.extend_from_slice(decode_mem(arena, e).0);
                heap.push(h);
            }
        } else {
            let r = &mut runs[h.source];
            out(&h.key, r.facts, r.tag)?;
            // Reuse the key buffer for the next entry of the same run.
            r.key = std::mem::take(&mut h.key);
            if r.advance()? {
                h.key = std::mem::take(&mut r.key);
                heap.push(h);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rnd(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    fn random_entries(n: usize, seed: u64) -> Vec<(Vec<u8>, KeyFacts)> {
        let mut r = rnd(seed);
        (0..n)
            .map(|_| {
                let len = (r() % 24) as usize;
                // A small alphabet so keys share prefixes and repeat.
                let key: Vec<u8> = (0..len)
                    .map(|_| [b'a', b'b', 0, 0xff][(r() % 4) as usize])
                    .collect();
                let facts = KeyFacts {
                    rdb_size: r() >> (r() % 64),
                    mem_size: (!r().is_multiple_of(3)).then(|| r() >> (r() % 64)),
                    member_count: r() % 1000,
                    rtype: TYPES[(r() % 7) as usize],
                    has_ttl: r().is_multiple_of(2),
                };
                (key, facts)
            })
            .collect()
    }

    fn sort_with(
        budget: u64,
        entries: &[(Vec<u8>, KeyFacts)],
    ) -> (Vec<(Vec<u8>, KeyFacts)>, SpillStats) {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = ExternalSorter::new(budget, Some(tmp.path().to_path_buf()), Cancel::default());
        for (k, f) in entries {
            s.push(k, *f).unwrap();
        }
        let mut out = Vec::new();
        let stats = s
            .finish(|k, f| {
                out.push((k.to_vec(), f));
                Ok::<(), std::io::Error>(())
            })
            .unwrap();
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            0,
            "spill directory removed"
        );
        (out, stats)
    }

    /// Tagged entries (the `--baseline` pass) keep their tags through spilled runs and
    /// intermediate merges, and untagged ones stay untagged.
    #[test]
    fn tags_survive_spills_and_merges() {
        let entries = random_entries(3000, 11);
        let tag = |i: usize| (!i.is_multiple_of(5)).then(|| (i as u64) * 0x1_0000_0001);
        let mut want: Vec<(Vec<u8>, KeyFacts, Option<u64>)> = entries
            .iter()
            .enumerate()
            .map(|(i, (k, f))| (k.clone(), *f, tag(i)))
            .collect();
        let key_of = |e: &(Vec<u8>, KeyFacts, Option<u64>)| {
            (
                e.0.clone(),
                e.2,
                e.1.rdb_size,
                e.1.mem_size,
                e.1.member_count,
            )
        };
        want.sort_by_key(key_of);
        for budget in [1 << 12, 1 << 16, 1 << 30] {
            let tmp = tempfile::tempdir().unwrap();
            let mut s =
                ExternalSorter::new(budget, Some(tmp.path().to_path_buf()), Cancel::default());
            for (i, (k, f)) in entries.iter().enumerate() {
                s.push_tagged(k, *f, tag(i)).unwrap();
            }
            let mut got = Vec::new();
            let stats = s
                .finish_tagged(|k, f, t| {
                    got.push((k.to_vec(), f, t));
                    Ok::<(), std::io::Error>(())
                })
                .unwrap();
            assert!(got.windows(2).all(|w| w[0].0 <= w[1].0), "key order");
            got.sort_by_key(key_of);
            assert_eq!(got, want, "budget {budget}");
            if budget == 1 << 12 {
                assert!(stats.runs_spilled > 0 && stats.runs_merged > 0, "{stats:?}");
            }
        }
    }

    #[test]
    fn sorts_like_a_full_sort_at_every_budget() {
        for (n, seed) in [(0, 1), (1, 2), (7, 3), (2_000, 4), (20_000, 5)] {
            let entries = random_entries(n, seed);
            let mut want = entries.clone();
            want.sort_by(|a, b| a.0.cmp(&b.0));
            // One-entry runs (budget 1) only on the small sets: 20,000 files would be slow.
            let budgets: &[u64] = if n <= 2_000 {
                &[1, 64, 4 << 10, 64 << 10, 1 << 30]
            } else {
                &[4 << 10, 64 << 10, 1 << 30]
            };
            for &budget in budgets {
                let (mut got, stats) = sort_with(budget, &entries);
                assert_eq!(stats.entries, n as u64);
                // Equal keys may come in any order: compare as multisets within equal keys.
                assert!(
                    got.windows(2).all(|w| w[0].0 <= w[1].0),
                    "n={n} budget={budget}"
                );
                got.sort_by(|a, b| {
                    a.0.cmp(&b.0)
                        .then(format!("{:?}", a.1).cmp(&format!("{:?}", b.1)))
                });
                let mut w = want.clone();
                w.sort_by(|a, b| {
                    a.0.cmp(&b.0)
                        .then(format!("{:?}", a.1).cmp(&format!("{:?}", b.1)))
                });
                assert_eq!(got, w, "n={n} budget={budget}");
                if budget == 1 << 30 {
                    assert_eq!(stats.runs_spilled, 0);
                }
                if budget <= 4 << 10 && n >= 2_000 {
                    assert!(stats.runs_spilled > 1);
                }
                if budget == 1 && n >= 2_000 {
                    assert!(stats.runs_merged > 0, "fan-in 2 forces intermediate merges");
                }
            }
        }
    }

    #[test]
    fn cancel_and_consumer_errors_remove_the_directory() {
        let entries = random_entries(5_000, 9);
        let tmp = tempfile::tempdir().unwrap();
        let cancel = Cancel::default();
        let mut s = ExternalSorter::new(4 << 10, Some(tmp.path().to_path_buf()), cancel.clone());
        for (k, f) in &entries {
            s.push(k, *f).unwrap();
        }
        assert!(s.spill_dir().is_some_and(|d| d.exists()));
        let mut seen = 0;
        let err = s
            .finish(|_, _| {
                seen += 1;
                if seen == 100 {
                    return Err(std::io::Error::other("consumer failed"));
                }
                Ok(())
            })
            .unwrap_err();
        assert!(err.to_string().contains("consumer failed"), "{err}");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);

        let mut s = ExternalSorter::new(4 << 10, Some(tmp.path().to_path_buf()), cancel.clone());
        for (k, f) in &entries {
            s.push(k, *f).unwrap();
        }
        cancel.cancel();
        assert!(matches!(
            s.push(b"x", entries[0].1),
            Ok(()) | Err(SpillError::Interrupted)
        ));
        drop(s);
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn stale_spill_dirs_are_removed_live_ones_kept() {
        let parent = tempfile::tempdir().unwrap();
        let p = parent.path();
        // A dead report's directory: runs and a lock file nobody holds.
        let dead = p.join(format!("{DIR_PREFIX}dead"));
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("run-000001"), b"x").unwrap();
        std::fs::write(dead.join(DIR_LOCK), b"").unwrap();
        // A live report's directory (its sorter holds the lock), one not locked yet, and a
        // directory that is not ours.
        let mut live = ExternalSorter::new(64, Some(p.to_path_buf()), Cancel::default());
        for (k, f) in random_entries(50, 7) {
            live.push(&k, f).unwrap();
        }
        let live_dir = live.spill_dir().expect("spilled").to_path_buf();
        let unlocked = p.join(format!("{DIR_PREFIX}new"));
        std::fs::create_dir(&unlocked).unwrap();
        let other = p.join("other");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join(DIR_LOCK), b"").unwrap();

        assert_eq!(remove_stale_spill_dirs(Some(p)), 1);
        assert!(!dead.exists());
        assert!(live_dir.join(DIR_LOCK).exists() && unlocked.exists() && other.exists());
        // Once the live report ends normally, nothing of it is left for a sweep.
        drop(live);
        assert!(!live_dir.exists());
        assert_eq!(remove_stale_spill_dirs(Some(p)), 0);
    }

    #[test]
    fn chunked_sort_edges() {
        // Zero bytes against padding, lengths around the 8-byte chunks, long equal keys.
        let long = vec![7u8; 10_000];
        let mut keys: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"\0".to_vec(),
            b"\0\0\0\0\0\0\0\0".to_vec(),
            b"\0\0\0\0\0\0\0\0\0".to_vec(),
            b"abcdefgh".to_vec(),
            b"abcdefgh\0".to_vec(),
            b"abcdefg".to_vec(),
            b"abcdefgi".to_vec(),
            b"abcdefghabcdefgh".to_vec(),
            b"abcdefghabcdefg".to_vec(),
            b"abcdefghabcdefgh\x01".to_vec(),
            long.clone(),
            long.clone(),
            [long.clone(), vec![0]].concat(),
            long[..9_999].to_vec(),
        ];
        keys.extend(keys.clone());
        let f = KeyFacts {
            rdb_size: 1,
            mem_size: Some(7),
            member_count: 1,
            rtype: RecordType::String,
            has_ttl: false,
        };
        let entries: Vec<(Vec<u8>, KeyFacts)> = keys.iter().rev().map(|k| (k.clone(), f)).collect();
        let mut want = keys.clone();
        want.sort();
        for budget in [1 << 30, 64 << 10] {
            let (got, _) = sort_with(budget, &entries);
            let got: Vec<Vec<u8>> = got.into_iter().map(|(k, _)| k).collect();
            assert_eq!(got, want, "budget {budget}");
        }
    }

    #[test]
    fn a_corrupt_run_is_an_error_not_an_allocation() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = ExternalSorter::new(64, Some(tmp.path().to_path_buf()), Cancel::default());
        for (k, f) in random_entries(200, 11) {
            s.push(&k, f).unwrap();
        }
        let dir = s.spill_dir().expect("spilled").to_path_buf();
        let run = std::fs::read_dir(&dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        // A key length of 2^60 at the start of the run.
        let mut huge = Vec::new();
        put_varint(&mut huge, 1 << 60);
        std::fs::write(&run, &huge).unwrap();
        let err = s.finish(|_, _| Ok::<(), std::io::Error>(())).unwrap_err();
        assert!(
            matches!(
                err,
                SpillError::Corrupt {
                    what: "impossible key length",
                    ..
                }
            ),
            "{err}"
        );
        assert!(!dir.exists());
    }

    #[test]
    fn varints() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(get_varint(&b), Some((v, b.len())));
        }
        assert_eq!(get_varint(&[0x80]), None);
    }
}
