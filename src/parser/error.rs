//! Parse errors: every error names the source, the absolute byte offset and what was wrong.

use std::fmt;
use std::sync::Arc;

/// What went wrong while parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The stream ended early (`what` says what was being read).
    UnexpectedEof { what: &'static str },
    /// The input is not an RDB file.
    BadMagic,
    /// The version field is not decimal digits.
    InvalidVersion,
    /// The version is outside what this parser understands.
    UnsupportedVersion(u32),
    /// A byte that is neither a known value type nor an opcode.
    UnknownType(u8),
    /// Type 6 (module pre-GA) has no length and cannot be skipped.
    UnsupportedModulePreGa,
    /// A structural problem in a value or container (`detail` says which).
    Corrupt(String),
    /// The CRC64 trailer does not match the data.
    ChecksumMismatch { stored: u64, computed: u64 },
    /// Reading from the underlying source failed: the `io::Error`'s kind (a timeout, a reset
    /// connection, ...) and its message (the error itself is not `Clone`).
    Io {
        kind: std::io::ErrorKind,
        message: String,
    },
}

/// A parse error with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The source's name (file path or instance address).
    pub source_name: Arc<str>,
    /// Absolute byte offset in the RDB stream where the problem was found.
    pub offset: u64,
    /// The key being read, when the error happened inside a key's value.
    pub key: Option<Vec<u8>>,
    pub kind: ParseErrorKind,
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseErrorKind::UnexpectedEof { what } => {
                write!(f, "unexpected end of file while reading {what}")
            }
            ParseErrorKind::BadMagic => {
                f.write_str("bad magic: not an RDB file (expected 'REDIS' or 'VALKEY')")
            }
            ParseErrorKind::InvalidVersion => f.write_str("invalid RDB version string"),
            ParseErrorKind::UnsupportedVersion(v) => write!(f, "unsupported RDB version {v}"),
            ParseErrorKind::UnknownType(t) => write!(f, "unknown type/opcode {t} (0x{t:02x})"),
            ParseErrorKind::UnsupportedModulePreGa => f.write_str(
                "unsupported type 6 (module pre-GA): its payload has no length and cannot be skipped",
            ),
            ParseErrorKind::Corrupt(d) => f.write_str(d),
            ParseErrorKind::ChecksumMismatch { stored, computed } => write!(
                f,
                "CRC64 checksum mismatch: file says 0x{stored:016x}, data gives 0x{computed:016x} \
                 (use --skip-checksum to ignore)"
            ),
            ParseErrorKind::Io { message, .. } => write!(f, "read error: {message}"),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: at byte offset {}", self.source_name, self.offset)?;
        if let Some(key) = &self.key {
            write!(
                f,
                " (key '{}')",
                String::from_utf8_lossy(key).escape_debug()
            )?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for ParseError {}

impl From<&std::io::Error> for ParseErrorKind {
    fn from(e: &std::io::Error) -> Self {
        ParseErrorKind::Io {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

/// A [`ParseErrorKind::Corrupt`] with its detail: the one way the parser's modules say that a
/// structure is malformed.
pub(crate) fn corrupt(detail: impl Into<String>) -> ParseErrorKind {
    ParseErrorKind::Corrupt(detail.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_io_error_keeps_its_kind_and_reads_as_before() {
        let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "idle for 30 s");
        let kind = ParseErrorKind::from(&e);
        assert_eq!(
            kind,
            ParseErrorKind::Io {
                kind: std::io::ErrorKind::TimedOut,
                message: "idle for 30 s".into()
            }
        );
        assert_eq!(kind.to_string(), "read error: idle for 30 s");
    }
}
