//! Logging on stderr, and the one line a failure prints.
//!
//! - `--log-format text` (default): `TIMESTAMP LEVEL message`, coloured only when stderr is a
//!   terminal and `NO_COLOR` is unset or empty (<https://no-color.org>).
//! - `--log-format json`: one JSON object per line (`timestamp`, `level`, `message`, fields),
//!   for log shippers.
//!
//! On a terminal with progress bars every line is written through
//! [`MultiProgress::suspend`]: the bars are erased, the line printed, the bars redrawn, so a
//! log line never lands inside a bar.
//!
//! A failure ends with exactly one line: `error: <what failed>: <cause>: <cause>...`, each cause
//! once (a cause whose text the line already holds is not repeated) and only its first line;
//! the full texts are logged at `-v`. In JSON the same line is the `message` of one `ERROR`
//! event.

use std::io::{self, IsTerminal as _, Write};

use indicatif::MultiProgress;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use super::LogFormat;

/// Where log lines go: stderr, above the progress bars when there are any.
#[derive(Clone)]
pub struct Stderr {
    bars: Option<MultiProgress>,
}

impl Stderr {
    pub fn new(bars: Option<MultiProgress>) -> Self {
        Stderr { bars }
    }

    /// Write `buf` (whole lines) to stderr in one piece, with the bars out of the way.
    fn write_lines(&self, buf: &[u8]) -> io::Result<()> {
        let write = || {
            let mut err = io::stderr().lock();
            err.write_all(buf)?;
            err.flush()
        };
        match &self.bars {
            Some(bars) => bars.suspend(write),
            None => write(),
        }
    }

    /// Print one line (a newline is added).
    pub fn line(&self, text: &str) {
        let mut buf = Vec::with_capacity(text.len() + 1);
        buf.extend_from_slice(text.as_bytes());
        buf.push(b'\n');
        // Nothing sensible is left to do when stderr itself fails.
        let _ = self.write_lines(&buf);
    }
}

/// The writer of one log event (tracing formats an event fully, then writes it at once).
pub struct StderrEvent<'a>(&'a Stderr);

impl Write for StderrEvent<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_lines(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = StderrEvent<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        StderrEvent(self)
    }
}

/// Whether to colour text logs: stderr is a terminal and `NO_COLOR` is unset or empty.
pub fn use_color(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Install the global subscriber. `RUST_LOG` overrides the level `verbose` picks.
pub fn init(verbose: u8, format: LogFormat, out: Stderr) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(out)
        .with_target(false);
    match format {
        LogFormat::Text => {
            let color = use_color(
                io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            );
            builder.with_ansi(color).init();
        }
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}

/// The one-line report of `err`: `error: ` and the chain of causes, see the module docs.
pub fn error_line(err: &anyhow::Error) -> String {
    format!("error: {}", error_text(err))
}

/// [`error_line`] without its `error: ` prefix, for a line logged at ERROR level (which the
/// log format already labels).
pub fn error_text(err: &anyhow::Error) -> String {
    let mut line = String::new();
    let mut cut = false;
    for (i, cause) in err.chain().enumerate() {
        let text = cause.to_string();
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let first = lines.next().unwrap_or("");
        cut |= lines.next().is_some();
        if first.is_empty() || line.contains(first) {
            continue;
        }
        if i > 0 {
            line.push_str(": ");
        }
        line.push_str(first);
    }
    if cut {
        line.push_str(" (more with -v)");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot write /out/x.parquet: {0}")]
    struct Wrapping(#[source] io::Error);

    #[test]
    fn a_cause_already_in_the_line_is_not_repeated() {
        let disk_full = io::Error::from_raw_os_error(28);
        let text = disk_full.to_string();
        let err = anyhow::Error::new(Wrapping(disk_full)).context("instance a:1 failed");
        let line = error_line(&err);
        assert_eq!(
            line,
            format!("error: instance a:1 failed: cannot write /out/x.parquet: {text}")
        );
        assert_eq!(line.matches("(os error 28)").count(), 1, "{line}");
    }

    #[test]
    fn one_line_whatever_the_causes_hold() {
        let err = anyhow::anyhow!("Code: 62. DB::Exception: Syntax error\n  stack line 1\n  2")
            .context("cannot prepare the output");
        let line = error_line(&err);
        assert_eq!(
            line,
            "error: cannot prepare the output: Code: 62. DB::Exception: Syntax error \
             (more with -v)"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn color_only_on_a_terminal_without_no_color() {
        assert!(use_color(true, None));
        assert!(use_color(true, Some(OsStr::new(""))));
        assert!(!use_color(true, Some(OsStr::new("1"))));
        assert!(!use_color(false, None));
    }
}
