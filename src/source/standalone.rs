//! A live standalone Redis, read over the replication protocol: we connect like a replica, ask
//! for a full resynchronization and hand the snapshot bytes to the parser as they arrive.
//! Nothing is written to disk and the snapshot is never buffered.
//!
//! This module is the replication handshake: after the connection's `AUTH` and `PING`
//! (`Connection::connect`), `REPLCONF capa eof capa psync2` (we accept diskless transfers)
//! and `REPLCONF rdb-only 1` (Redis ≥ 7: send the snapshot only; a refusal is tolerated).
//! `snapshot::request` then sends `PSYNC` and frames the snapshot.

use super::connection::{Connection, ConnectionOptions};
use super::resp::Reply;
use super::{OpenedStream, SourceError, snapshot};

/// Connect to `addr`, authenticate, request a full sync and return the snapshot stream.
pub fn open(addr: &str, opts: &ConnectionOptions) -> Result<OpenedStream, SourceError> {
    let mut c = Connection::connect(addr, opts)?;

    match c.command(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])? {
        Reply::Simple(_) => {}
        Reply::Error(e) => return Err(c.server_error("REPLCONF capa", e)),
        other => return Err(c.unexpected("REPLCONF", &other, "")),
    }
    // Redis ≥ 7: send only the snapshot, then close. Older servers refuse it; that is fine,
    // we simply stop reading after the snapshot.
    match c.command(&[b"REPLCONF", b"rdb-only", b"1"])? {
        Reply::Simple(_) => {}
        Reply::Error(e) if e.starts_with("NOAUTH") || e.starts_with("LOADING") => {
            return Err(c.server_error("REPLCONF", e));
        }
        Reply::Error(e) => {
            tracing::debug!("{addr}: REPLCONF rdb-only refused ({e}); continuing without it")
        }
        other => return Err(c.unexpected("REPLCONF rdb-only", &other, "")),
    }
    snapshot::request(c)
}
