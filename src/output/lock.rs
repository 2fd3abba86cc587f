//! Advisory lock files: how file outputs tell a live run from the leftovers of a dead one.
//!
//! A run that writes something (a Parquet batch, a JSONL file) holds an exclusive `flock` on a
//! lock file next to it for as long as it writes. The kernel drops the lock when the process
//! dies, however it dies (SIGKILL included), so a lock file that can be locked belongs to nobody
//! alive: whatever it guarded is a leftover that may be removed.
//!
//! Releasing removes the file first and unlocks second. A run that opened the file just before
//! the removal either fails to lock it (we still hold it) or locks it after we unlocked, and then
//! sees that the path no longer names the file it locked ([`FileLock::try_acquire`] checks).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

/// A held lock file; released (removed, then unlocked) by [`FileLock::release`] or on drop.
#[derive(Debug)]
pub struct FileLock {
    file: Option<File>,
    path: PathBuf,
}

impl FileLock {
    /// Create `path` if needed and lock it without waiting. `Ok(None)`: another live process
    /// holds it (or released it this very moment; the caller may report it as busy).
    pub fn try_acquire(path: &Path) -> io::Result<Option<FileLock>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(e),
        }
        if !same_file(&file, path) {
            // Removed (released by its holder) between our open and lock.
            return Ok(None);
        }
        Ok(Some(FileLock {
            file: Some(file),
            path: path.to_path_buf(),
        }))
    }

    /// Take over the lock at `path` only if nobody alive holds it: the lock of a dead run.
    /// `Ok(None)` when a live run holds it (or the file is gone).
    pub fn try_take_stale(path: &Path) -> io::Result<Option<FileLock>> {
        match fs::symlink_metadata(path) {
            Ok(m) if m.is_file() => Self::try_acquire(path),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Remove the lock file, then unlock.
    pub fn release(mut self) {
        self.release_inner();
    }

    fn release_inner(&mut self) {
        if let Some(file) = self.file.take() {
            if let Err(e) = fs::remove_file(&self.path)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!("cannot remove lock file {}: {e}", self.path.display());
            }
            drop(file);
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        self.release_inner();
    }
}

/// Whether `path` still names the open file `file`.
fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        match (file.metadata(), fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_then_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = FileLock::try_acquire(&path).unwrap().expect("free");
        assert!(path.exists());
        // flock locks belong to the open file description: a second open is refused even in
        // the same process, as another process would be.
        assert!(FileLock::try_acquire(&path).unwrap().is_none());
        assert!(FileLock::try_take_stale(&path).unwrap().is_none());
        held.release();
        assert!(!path.exists());
        assert!(FileLock::try_take_stale(&path).unwrap().is_none(), "gone");
        // A lock file left by a dead holder can be taken over.
        std::fs::write(&path, b"").unwrap();
        let taken = FileLock::try_take_stale(&path).unwrap().expect("stale");
        drop(taken);
        assert!(!path.exists());
    }
}
