//! Publishing a file atomically: its content goes to a temporary file beside the target (same
//! directory, so same file system), which is fsynced, renamed over the target, and the
//! directory fsynced, so that a reader sees the old file or the whole new one, and a crash
//! after the rename keeps the new one. Used by the JSONL output and the `--metrics-file`
//! textfile; meant for every file rdbinsight publishes.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Which step of a publish failed, and on which path.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot write {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot fsync {}", .path.display())]
    SyncFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot rename {} to {}", .from.display(), .to.display())]
    Rename {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot fsync directory {}", .dir.display())]
    SyncDir {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl PublishError {
    /// The I/O error underneath.
    pub fn io(&self) -> &io::Error {
        match self {
            PublishError::Write { source, .. }
            | PublishError::SyncFile { source, .. }
            | PublishError::Rename { source, .. }
            | PublishError::SyncDir { source, .. } => source,
        }
    }

    /// The I/O error underneath, by value.
    pub fn into_io(self) -> io::Error {
        match self {
            PublishError::Write { source, .. }
            | PublishError::SyncFile { source, .. }
            | PublishError::Rename { source, .. }
            | PublishError::SyncDir { source, .. } => source,
        }
    }
}

/// Publish `tmp` (written through `file`, beside `target`) as `target`: fsync the file, rename
/// it over `target`, fsync the directory. After an error the caller still owns `tmp` (it is
/// left where it was unless the rename happened, which only the `SyncDir` error says).
pub fn publish(file: &File, tmp: &Path, target: &Path) -> Result<(), PublishError> {
    file.sync_all().map_err(|source| PublishError::SyncFile {
        path: tmp.to_path_buf(),
        source,
    })?;
    std::fs::rename(tmp, target).map_err(|source| PublishError::Rename {
        from: tmp.to_path_buf(),
        to: target.to_path_buf(),
        source,
    })?;
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Write `bytes` to `tmp` (created or truncated, beside `target`) and [`publish`] it as
/// `target`; `tmp` is removed if anything before the rename fails.
pub fn write_atomically(tmp: &Path, target: &Path, bytes: &[u8]) -> Result<(), PublishError> {
    let written = File::create(tmp)
        .and_then(|mut f| f.write_all(bytes).map(|()| f))
        .map_err(|source| PublishError::Write {
            path: tmp.to_path_buf(),
            source,
        })
        .and_then(|f| publish(&f, tmp, target));
    if let Err(e) = &written
        && !matches!(e, PublishError::SyncDir { .. })
    {
        let _ = std::fs::remove_file(tmp);
    }
    written
}

/// fsync a directory so renames inside it are durable (a no-op where directories cannot be
/// opened as files).
pub fn sync_dir(dir: &Path) -> Result<(), PublishError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| PublishError::SyncDir {
                dir: dir.to_path_buf(),
                source,
            })?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_target_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.prom");
        let tmp = dir.path().join("out.prom.1.tmp");
        write_atomically(&tmp, &target, b"one").unwrap();
        write_atomically(&tmp, &target, b"two").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_rename_keeps_the_target_and_removes_the_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        // A non-empty directory in the way: the rename fails.
        let target = dir.path().join("taken");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("x"), b"x").unwrap();
        let tmp = dir.path().join("taken.1.tmp");
        let err = write_atomically(&tmp, &target, b"new").unwrap_err();
        assert!(matches!(err, PublishError::Rename { .. }), "{err}");
        assert!(err.to_string().starts_with("cannot rename "), "{err}");
        assert!(!tmp.exists());
        assert!(target.join("x").exists());
    }
}
