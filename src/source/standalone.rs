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
use crate::memory::{MemoryOptions, Settings};

/// Connect to `addr`, authenticate, request a full sync and return the snapshot stream.
pub fn open(addr: &str, opts: &ConnectionOptions) -> Result<OpenedStream, SourceError> {
    let mut c = Connection::connect(addr, opts)?;
    let memory = memory_facts(&mut c)?;

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
    let mut stream = snapshot::request(c)?;
    stream.memory = Some(memory);
    Ok(stream)
}

/// What the server says of its memory layout, for `mem_size`: `INFO` (version, allocator,
/// cluster mode), `MEMORY MALLOC-STATS` (the jemalloc quantum: 8 for the bundled build, 16
/// for a distribution's) and `CONFIG GET` of the settings the model uses. A command the
/// server refuses (ACL, renamed) leaves that part to the defaults and the flags, with one
/// warning.
fn memory_facts(c: &mut Connection) -> Result<MemoryOptions, SourceError> {
    let mut refused = Vec::new();
    let text =
        |c: &mut Connection, args: &[&[u8]], refused: &mut Vec<String>| match c.command(args)? {
            Reply::Bulk(Some(b)) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
            Reply::Simple(s) => Ok(Some(s)),
            Reply::Error(e) if e.starts_with("NOAUTH") || e.starts_with("LOADING") => {
                Err(c.server_error(&String::from_utf8_lossy(args[0]), e))
            }
            Reply::Error(e) => {
                refused.push(format!(
                    "{} ({e})",
                    String::from_utf8_lossy(&args.join(&b' '))
                ));
                Ok(None)
            }
            _ => Ok(None),
        };
    let info = text(c, &[b"INFO"], &mut refused)?;
    let uses_jemalloc = info
        .as_deref()
        .is_some_and(|i| i.contains("mem_allocator:jemalloc"));
    let stats = if uses_jemalloc {
        text(c, &[b"MEMORY", b"MALLOC-STATS"], &mut refused)?
    } else {
        None
    };
    let mut config = Vec::new();
    for name in Settings::NAMES {
        match c.command(&[b"CONFIG", b"GET", name.as_bytes()])? {
            Reply::Array(Some(items)) => {
                for pair in items.chunks(2) {
                    if let [Reply::Bulk(Some(k)), Reply::Bulk(Some(v))] = pair {
                        config.push((
                            String::from_utf8_lossy(k).into_owned(),
                            String::from_utf8_lossy(v).into_owned(),
                        ));
                    }
                }
            }
            Reply::Error(e) if e.starts_with("NOAUTH") || e.starts_with("LOADING") => {
                return Err(c.server_error("CONFIG GET", e));
            }
            Reply::Error(e) => {
                refused.push(format!("CONFIG GET ({e})"));
                break;
            }
            _ => {}
        }
    }
    if !refused.is_empty() {
        tracing::warn!(
            "{}: the memory model uses defaults (or --memory-* flags) where the server refused \
             {}",
            c.addr(),
            refused.join(", ")
        );
    }
    Ok(MemoryOptions::from_server(
        info.as_deref(),
        stats.as_deref(),
        &config,
    ))
}
