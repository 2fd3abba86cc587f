//! An RDB file on disk.

use std::fs::File;
use std::path::Path;

use super::error::Cause;
use super::{OpenedStream, SourceError};

/// Open `path` for reading; the parser does its own buffering.
pub fn open(instance: &str, path: &Path) -> Result<OpenedStream, SourceError> {
    let file = File::open(path).map_err(|source| {
        SourceError::instance(
            instance,
            Cause::Io {
                context: format!("cannot open {}", path.display()),
                source,
            },
        )
    })?;
    let total_bytes = file.metadata().ok().map(|m| m.len());
    Ok(OpenedStream {
        reader: Box::new(file),
        total_bytes,
        cancel: None,
        memory: None,
    })
}
