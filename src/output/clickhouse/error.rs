//! ClickHouse failures as one line each.
//!
//! What the user sees for a failed request is `<what we were doing>: <why>`, where *why* is:
//! - the server's own exception, when it sent one: `Code: N. DB::Exception: <text> (NAME)`,
//!   its lines joined and without the stack trace some exceptions carry (12–30 lines); the
//!   whole text goes to the debug log (`-v`);
//! - which of our timeouts fired, by its flag (`--ch-connect-timeout`, `--ch-send-timeout`,
//!   `--ch-response-timeout`);
//! - otherwise the transport's reason (connection refused, connection lost...), each cause
//!   once.
//!
//! The hint about ClickHouse's own `http_receive_timeout` is given only when the server said
//! that timeout fired (`SOCKET_TIMEOUT` while reading from the socket), never for a connection
//! that was merely lost.

use std::time::Duration;

use clickhouse::error::Error;

use super::http::ConnectTimeout;
use crate::output::{OutputError, StoreCause, Timeout};

/// At most this many characters of a server exception go into the error line.
const MAX_SERVER_TEXT: usize = 400;

/// Which step of a request an [`Error::TimedOut`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Handing an INSERT's next chunk to the connection.
    Send,
    /// Waiting for the answer.
    Response,
}

/// `context: cause` as an [`OutputError`]; see the module docs. `step`: what a timeout means.
pub(crate) fn ch_error(
    context: impl std::fmt::Display,
    err: &Error,
    step: Step,
    timeout: Duration,
) -> OutputError {
    tracing::debug!("{context}: {err:?}");
    match classify(err, step, timeout) {
        Ok(cause) => OutputError::store(context.to_string(), cause),
        Err(t) => OutputError::timeout(context.to_string(), t),
    }
}

/// A response that did not come within `--ch-response-timeout` (a `tokio::time::timeout`
/// around a query).
pub(crate) fn response_timeout(context: impl std::fmt::Display, timeout: Duration) -> OutputError {
    OutputError::timeout(context.to_string(), Timeout::Response(timeout))
}

fn step_timeout(step: Step, timeout: Duration) -> Timeout {
    match step {
        Step::Send => Timeout::Send(timeout),
        Step::Response => Timeout::Response(timeout),
    }
}

/// What `err` is: the store's cause, or which of our timeouts fired.
fn classify(err: &Error, step: Step, timeout: Duration) -> Result<StoreCause, Timeout> {
    match err {
        Error::BadResponse(text) => {
            let mut line = server_exception(text);
            if is_receive_timeout(text) {
                line.push_str(
                    " (ClickHouse's http_receive_timeout fired: the server received nothing \
                     for that long; it is a server or settings-profile setting)",
                );
            }
            Ok(StoreCause::Server(line))
        }
        Error::TimedOut => Err(step_timeout(step, timeout)),
        other => {
            if let Some(t) = find_cause::<ConnectTimeout>(other) {
                return Err(Timeout::Connect(t.0));
            }
            Ok(StoreCause::Transport(cause_chain(other)))
        }
    }
}

/// The one-line reason for `err` (what follows the context in [`ch_error`]'s message).
#[cfg(test)]
fn describe(err: &Error, step: Step, timeout: Duration) -> String {
    match classify(err, step, timeout) {
        Ok(cause) => cause.to_string(),
        Err(t) => t.to_string(),
    }
}

/// A server exception text as one line: lines joined, the stack trace cut off, bounded.
pub(crate) fn server_exception(text: &str) -> String {
    let text = match text.find("Stack trace") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut line = String::with_capacity(text.len().min(MAX_SERVER_TEXT + 4));
    for word in text.split_whitespace() {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    // ": While executing ..." continues the previous line's sentence.
    let line = line.replace(" : ", ": ");
    let line = line.trim_end_matches([',', ':', ' ']);
    if line.chars().count() > MAX_SERVER_TEXT {
        let cut: String = line.chars().take(MAX_SERVER_TEXT).collect();
        format!("{cut}…")
    } else if line.is_empty() {
        "the server sent an empty error".to_string()
    } else {
        line.to_string()
    }
}

/// Did the server say that its `http_receive_timeout` fired?
fn is_receive_timeout(text: &str) -> bool {
    (text.contains("Code: 209.") || text.contains("(SOCKET_TIMEOUT)"))
        && text.contains("while reading from socket")
}

/// `err` and its causes, `: `-separated, each text once (hyper and the crate often repeat the
/// cause in the outer message).
pub(crate) fn cause_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = cause.source();
    }
    msg
}

fn find_cause<'a, T: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_exception_is_one_line_without_stack_trace() {
        let text = "Code: 33. DB::Exception: Cannot read all data. Bytes read: 2. Bytes expected: 5: (at row 1)\n\
                    : While executing BinaryRowInputFormat. (CANNOT_READ_ALL_DATA) (version 26.9.2.1)";
        assert_eq!(
            server_exception(text),
            "Code: 33. DB::Exception: Cannot read all data. Bytes read: 2. Bytes expected: 5: \
             (at row 1): While executing BinaryRowInputFormat. (CANNOT_READ_ALL_DATA) (version 26.9.2.1)"
        );
        let traced = "Code: 241. DB::Exception: Memory limit exceeded. (MEMORY_LIMIT_EXCEEDED), \
                      Stack trace (when copying this message, always include the lines below):\n\n\
                      0. DB::Exception::Exception(DB::Exception::MessageMasked&&, int, bool) @ 0x0\n\
                      1. DB::MemoryTracker::allocImpl @ 0x1\n";
        assert_eq!(
            server_exception(traced),
            "Code: 241. DB::Exception: Memory limit exceeded. (MEMORY_LIMIT_EXCEEDED)"
        );
        let long = "x".repeat(1000);
        assert_eq!(server_exception(&long).chars().count(), MAX_SERVER_TEXT + 1);
    }

    #[test]
    fn receive_timeout_hint_only_when_the_server_says_so() {
        let t = Duration::from_secs(5);
        let said = Error::BadResponse(
            "Code: 209. DB::NetException: Timeout exceeded while reading from socket (peer: \
             127.0.0.1:41882, local: 127.0.0.1:8123, 30000 ms). (SOCKET_TIMEOUT) (version 26.9.2.1)"
                .into(),
        );
        assert!(describe(&said, Step::Send, t).contains("http_receive_timeout"));
        let lost = Error::Network("connection closed before message completed".into());
        let text = describe(&lost, Step::Send, t);
        assert!(!text.contains("http_receive_timeout"), "{text}");
        assert!(text.contains("connection closed"), "{text}");
    }

    #[test]
    fn errors_are_typed_and_read_as_before() {
        let t = Duration::from_secs(7);
        let e = ch_error("cannot insert", &Error::TimedOut, Step::Send, t);
        assert!(
            matches!(
                e,
                OutputError::Timeout {
                    timeout: Timeout::Send(d),
                    ..
                } if d == t
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "cannot insert: the server accepted no data for 7 s (--ch-send-timeout)"
        );
        let e = ch_error(
            "cannot create",
            &Error::BadResponse("Code: 60. DB::Exception: Unknown table. (UNKNOWN_TABLE)".into()),
            Step::Response,
            t,
        );
        assert!(
            matches!(
                &e,
                OutputError::Store {
                    cause: StoreCause::Server(_),
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "cannot create: Code: 60. DB::Exception: Unknown table. (UNKNOWN_TABLE)"
        );
        let e = ch_error(
            "cannot query",
            &Error::Network(Box::new(ConnectTimeout(Duration::from_secs(3)))),
            Step::Response,
            t,
        );
        assert!(
            matches!(
                e,
                OutputError::Timeout {
                    timeout: Timeout::Connect(_),
                    ..
                }
            ),
            "{e:?}"
        );
        let e = response_timeout("cannot count", t);
        assert_eq!(
            e.to_string(),
            "cannot count: no answer from the server within 7 s (--ch-response-timeout)"
        );
    }

    #[test]
    fn timeouts_are_named_by_their_flag() {
        let t = Duration::from_secs(7);
        assert_eq!(
            describe(&Error::TimedOut, Step::Send, t),
            "the server accepted no data for 7 s (--ch-send-timeout)"
        );
        assert!(describe(&Error::TimedOut, Step::Response, t).contains("--ch-response-timeout"));
        let connect = Error::Network(Box::new(ConnectTimeout(Duration::from_secs(3))));
        assert_eq!(
            describe(&connect, Step::Response, t),
            "no connection within 3 s (--ch-connect-timeout)"
        );
    }
}
