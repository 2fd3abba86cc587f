//! A tiny RESP2 reader/writer: just enough for the replication handshake and topology
//! discovery. Commands are always sent as arrays of bulk strings, so arguments (passwords
//! included) may contain spaces or any bytes.

use std::fmt;
use std::io::{self, BufRead, Read, Write};

/// Longest status/error/header line accepted (a real server's lines are short).
pub const MAX_LINE: usize = 64 * 1024;
/// Largest bulk string accepted in a reply (e.g. `CLUSTER NODES` of a big cluster).
pub const MAX_BULK: usize = 256 * 1024 * 1024;
/// Most elements accepted in one array reply.
pub const MAX_ARRAY: usize = 1024 * 1024;
/// Deepest nesting accepted in array replies.
const MAX_DEPTH: usize = 8;

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+...`
    Simple(String),
    /// `-...` (the whole message, e.g. `WRONGPASS invalid username-password pair`).
    Error(String),
    /// `:...`
    Integer(i64),
    /// `$...`; `None` for the null bulk string.
    Bulk(Option<Vec<u8>>),
    /// `*...`; `None` for the null array.
    Array(Option<Vec<Reply>>),
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Simple(s) => write!(f, "+{s}"),
            Reply::Error(s) => write!(f, "-{s}"),
            Reply::Integer(i) => write!(f, ":{i}"),
            Reply::Bulk(None) => f.write_str("(nil)"),
            Reply::Bulk(Some(b)) => write!(f, "\"{}\"", preview(b)),
            Reply::Array(None) => f.write_str("(nil array)"),
            Reply::Array(Some(items)) => write!(f, "array of {} elements", items.len()),
        }
    }
}

/// Why a reply could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RespError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("connection closed by the server")]
    Closed,
    #[error("not a Redis reply (got \"{0}\"); is this a Redis server?")]
    Protocol(String),
}

/// Encode a command as a RESP array of bulk strings.
pub fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Write one command and flush.
pub fn write_command<W: Write>(w: &mut W, args: &[&[u8]]) -> io::Result<()> {
    w.write_all(&encode_command(args))?;
    w.flush()
}

/// A printable, shortened view of bytes from the peer (for error messages).
pub fn preview(bytes: &[u8]) -> String {
    const MAX: usize = 80;
    let cut = &bytes[..bytes.len().min(MAX)];
    let mut s = String::from_utf8_lossy(cut).escape_debug().to_string();
    if bytes.len() > MAX {
        s.push('…');
    }
    s
}

/// Read one line (up to `\n`), without its `\r\n` / `\n`. An empty result is a bare `\n`
/// (a master's keep-alive). Errors when the line is longer than [`MAX_LINE`] or the stream ends.
pub fn read_line<R: BufRead>(r: &mut R) -> Result<Vec<u8>, RespError> {
    let mut line = Vec::new();
    loop {
        let (done, used) = {
            let buf = r.fill_buf()?;
            if buf.is_empty() {
                if line.is_empty() {
                    return Err(RespError::Closed);
                }
                return Err(RespError::Protocol(format!(
                    "{} (then the connection closed)",
                    preview(&line)
                )));
            }
            match buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    line.extend_from_slice(&buf[..i]);
                    (true, i + 1)
                }
                None => {
                    line.extend_from_slice(buf);
                    (false, buf.len())
                }
            }
        };
        r.consume(used);
        if line.len() > MAX_LINE {
            return Err(RespError::Protocol(preview(&line)));
        }
        if done {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(line);
        }
    }
}

/// Read one reply. Bare `\n` keep-alives before it are skipped.
pub fn read_reply<R: BufRead>(r: &mut R) -> Result<Reply, RespError> {
    read_reply_depth(r, 0)
}

fn read_reply_depth<R: BufRead>(r: &mut R, depth: usize) -> Result<Reply, RespError> {
    let line = loop {
        let line = read_line(r)?;
        if !line.is_empty() {
            break line;
        }
    };
    let body = &line[1..];
    let text = || String::from_utf8_lossy(body).into_owned();
    match line[0] {
        b'+' => Ok(Reply::Simple(text())),
        b'-' => Ok(Reply::Error(text())),
        b':' => parse_int(body)
            .map(Reply::Integer)
            .ok_or_else(|| RespError::Protocol(preview(&line))),
        b'$' => {
            let Some(len) = parse_len(&line, MAX_BULK)? else {
                return Ok(Reply::Bulk(None));
            };
            // Grows as the bytes arrive: the length is the peer's claim.
            let mut data = Vec::new();
            r.take(len as u64 + 2).read_to_end(&mut data)?;
            if data.len() < len + 2 {
                return Err(RespError::Closed);
            }
            if &data[len..] != b"\r\n" {
                return Err(RespError::Protocol(preview(&data)));
            }
            data.truncate(len);
            Ok(Reply::Bulk(Some(data)))
        }
        b'*' => {
            let Some(n) = parse_len(&line, MAX_ARRAY)? else {
                return Ok(Reply::Array(None));
            };
            if depth >= MAX_DEPTH {
                return Err(RespError::Protocol(preview(&line)));
            }
            let mut items = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                items.push(read_reply_depth(r, depth + 1)?);
            }
            Ok(Reply::Array(Some(items)))
        }
        _ => Err(RespError::Protocol(preview(&line))),
    }
}

/// The length of a `$` or `*` line: `None` for -1 (null), at most `max`.
fn parse_len(line: &[u8], max: usize) -> Result<Option<usize>, RespError> {
    let bad = || RespError::Protocol(preview(line));
    let n = parse_int(&line[1..]).ok_or_else(bad)?;
    if n < 0 {
        return Ok(None);
    }
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| n <= max)
        .ok_or_else(bad)?;
    Ok(Some(n))
}

/// Parse a decimal integer (optional leading `-`), strictly.
pub fn parse_int(s: &[u8]) -> Option<i64> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn encodes_binary_safe_arrays() {
        assert_eq!(
            encode_command(&[b"AUTH", b"a b\r\n"]),
            b"*2\r\n$4\r\nAUTH\r\n$5\r\na b\r\n\r\n".to_vec()
        );
    }

    #[test]
    fn reads_replies() {
        let mut c = Cursor::new(
            b"\n\n+OK\r\n-ERR bad\r\n:42\r\n$3\r\na\nb\r\n$-1\r\n*2\r\n$1\r\nx\r\n:1\r\n*-1\r\n"
                .to_vec(),
        );
        assert_eq!(read_reply(&mut c).ok(), Some(Reply::Simple("OK".into())));
        assert_eq!(
            read_reply(&mut c).ok(),
            Some(Reply::Error("ERR bad".into()))
        );
        assert_eq!(read_reply(&mut c).ok(), Some(Reply::Integer(42)));
        assert_eq!(
            read_reply(&mut c).ok(),
            Some(Reply::Bulk(Some(b"a\nb".to_vec())))
        );
        assert_eq!(read_reply(&mut c).ok(), Some(Reply::Bulk(None)));
        assert_eq!(
            read_reply(&mut c).ok(),
            Some(Reply::Array(Some(vec![
                Reply::Bulk(Some(b"x".to_vec())),
                Reply::Integer(1)
            ])))
        );
        assert_eq!(read_reply(&mut c).ok(), Some(Reply::Array(None)));
        assert!(matches!(read_reply(&mut c), Err(RespError::Closed)));
    }

    #[test]
    fn rejects_garbage() {
        let mut c = Cursor::new(b"HTTP/1.1 400 Bad Request\r\n".to_vec());
        assert!(matches!(read_reply(&mut c), Err(RespError::Protocol(_))));
        let mut c = Cursor::new(b"$abc\r\n".to_vec());
        assert!(matches!(read_reply(&mut c), Err(RespError::Protocol(_))));
        let mut c = Cursor::new(b"$3\r\nabcd\r\n".to_vec());
        assert!(matches!(read_reply(&mut c), Err(RespError::Protocol(_))));
        let mut c = Cursor::new(b"+OK".to_vec());
        assert!(matches!(read_reply(&mut c), Err(RespError::Protocol(_))));
        let mut c = Cursor::new(vec![b'+'; MAX_LINE + 10]);
        assert!(matches!(read_reply(&mut c), Err(RespError::Protocol(_))));
    }
}
