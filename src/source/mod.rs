//! Where RDB bytes come from. Every source yields, per instance, a blocking byte stream
//! ([`OpenedStream`]) that the parser reads; nothing is saved to disk.
//!
//! - [`file`]: an RDB file.
//! - [`standalone`]: a live Redis over the replication protocol.
//! - [`cluster`]: every shard of a Redis Cluster (replica preferred).
//! - [`codis`]: every group of a Codis cluster, found through its dashboard.
//!
//! [`resp`] is the small RESP client the live sources share.

pub mod cluster;
pub mod codis;
pub mod file;
pub mod resp;
pub mod standalone;

use std::io::Read;

/// Which slot column the records of an instance get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlotKind {
    #[default]
    None,
    /// Redis Cluster: fill `redis_slot`.
    Redis,
    /// Codis: fill `codis_slot`.
    Codis,
}

/// Errors from sources (connect, handshake, discovery, file open).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{instance}: {message}")]
    Instance { instance: String, message: String },
    #[error("{0}")]
    Other(String),
}

/// A handle that aborts a stream from another thread (e.g. shuts its socket down).
pub type CancelHandle = Box<dyn Fn() + Send + Sync>;

/// An opened RDB byte stream for one instance.
pub struct OpenedStream {
    /// The RDB bytes, from the magic through the checksum.
    pub reader: Box<dyn Read + Send>,
    /// Total RDB length when known up front (files, disk-based replication), for progress.
    pub total_bytes: Option<u64>,
    /// Aborts a blocked read (sockets); `None` where dropping the reader is enough.
    pub cancel: Option<CancelHandle>,
}

/// How to reach one instance.
#[derive(Debug, Clone)]
pub enum InstanceOpener {
    File(std::path::PathBuf),
    Standalone(standalone::StandaloneConfig),
}

/// One instance to dump.
#[derive(Debug, Clone)]
pub struct Instance {
    /// The `instance` column (`host:port`, or the file's instance name).
    pub name: String,
    pub slots: SlotKind,
    pub opener: InstanceOpener,
}

impl Instance {
    /// Open the instance's RDB stream (blocking: connects and performs the handshake).
    pub fn open(&self) -> Result<OpenedStream, SourceError> {
        match &self.opener {
            InstanceOpener::File(path) => file::open(&self.name, path),
            InstanceOpener::Standalone(cfg) => standalone::open(&self.name, cfg),
        }
    }
}
