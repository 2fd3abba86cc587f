//! [`ReportError`]: why a report could not be made.

use std::path::PathBuf;

use super::aggregate;
use super::assemble::Inconsistent;
use super::prefix::PrefixError;
use super::spill::SpillError;

/// Why a report could not be made. Every message names the file, directory or server.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The cluster or batch does not exist; the message lists what does.
    #[error("{0}")]
    NoBatch(String),
    /// A bad option value.
    #[error("{0}")]
    Options(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Parquet file {}: {msg}", path.display())]
    Parquet { path: PathBuf, msg: String },
    #[error("{0}")]
    ClickHouse(String),
    #[error(transparent)]
    Prefix(#[from] PrefixError),
    #[error("sorting the keys: {0}")]
    Spill(SpillError),
    #[error(transparent)]
    Inconsistent(#[from] Inconsistent),
    /// Totals beyond u64: impossible input.
    #[error(transparent)]
    Overflow(#[from] aggregate::Overflow),
    /// Ctrl-C (the cancel flag) stopped the report; temporary files are gone.
    #[error("interrupted")]
    Interrupted,
}

impl From<SpillError> for ReportError {
    fn from(e: SpillError) -> Self {
        match e {
            SpillError::Interrupted => ReportError::Interrupted,
            SpillError::Consumer(inner) => match inner.downcast::<PrefixError>() {
                Ok(p) => ReportError::Prefix(*p),
                Err(other) => ReportError::Spill(SpillError::Consumer(other)),
            },
            e => ReportError::Spill(e),
        }
    }
}
