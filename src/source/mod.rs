//! Where RDB bytes come from. A [`Spec`] (what the user named: a file, a server, a cluster's
//! seeds, a Codis dashboard) resolves to a list of [`Instance`]s; each opens, on demand, a
//! blocking byte stream ([`OpenedStream`]) that the parser reads. Nothing is saved to disk.
//!
//! By concern:
//! - [`file`](mod@file): an RDB file.
//! - `connection`: TCP, TLS (`tls`), `AUTH`, RESP round trips (`resp`), with the
//!   [`ConnectionOptions`] every live source shares.
//! - [`standalone`]: the replication handshake; `snapshot`: `PSYNC` and the snapshot's
//!   framing (disk-based or diskless).
//! - `cluster`, `codis`: topology discovery only (which node to read per shard or group).
//!
//! Errors are [`SourceError`]s with typed causes ([`error`]).

pub(crate) mod cluster;
pub(crate) mod codis;
pub(crate) mod connection;
pub mod error;
pub mod file;
pub(crate) mod resp;
pub(crate) mod snapshot;
pub mod standalone;
mod tls;

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

pub use crate::slot::SlotKind;
pub use connection::ConnectionOptions;
pub use error::{Cause, DiscoveryError, SourceError, TimeoutKind, Topology};
pub use tls::{ClientCertFiles, TlsConfig, TlsOptions};

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
    /// What a live server said of its memory layout (version, allocator, settings); `None`
    /// for files.
    pub memory: Option<crate::memory::MemoryOptions>,
}

/// How to reach one instance.
#[derive(Debug, Clone)]
pub enum InstanceOpener {
    File(PathBuf),
    /// A Redis server, read over replication.
    Redis {
        /// `host:port` (IPv6 as `[::1]:6379`).
        addr: String,
        options: Arc<ConnectionOptions>,
    },
}

/// One instance to dump.
#[derive(Debug, Clone)]
pub struct Instance {
    /// The `instance` column (`host:port`, or the file's instance name).
    pub name: String,
    /// Which slot column its records get (`None`: neither).
    pub slots: Option<SlotKind>,
    pub opener: InstanceOpener,
}

impl Instance {
    /// Open the instance's RDB stream (blocking: connects and performs the handshake).
    pub fn open(&self) -> Result<OpenedStream, SourceError> {
        match &self.opener {
            InstanceOpener::File(path) => file::open(&self.name, path),
            InstanceOpener::Redis { addr, options } => standalone::open(addr, options),
        }
    }
}

/// What the user asked to read.
#[derive(Debug, Clone)]
pub enum Spec {
    /// An RDB file, reported as `instance`.
    File { path: PathBuf, instance: String },
    /// One live server.
    Standalone { addr: String },
    /// Every shard of a Redis Cluster, found through any of `seeds`.
    Cluster {
        seeds: Vec<String>,
        /// Fail instead of reading a master when a shard has no healthy replica.
        require_slave: bool,
    },
    /// Every group of a Codis cluster, found through its dashboard.
    Codis {
        dashboard: String,
        /// Fail instead of reading a master or a read replica when a group has no spare
        /// replica.
        require_slave: bool,
    },
}

/// The instances a [`Spec`] stands for.
#[derive(Debug)]
pub struct Resolved {
    pub instances: Vec<Instance>,
    /// Codis: the dashboard's product name, the default cluster name.
    pub product_name: Option<String>,
}

impl Spec {
    /// The instances to dump: discovers the topology of a cluster or Codis (connecting to its
    /// seeds or dashboard, and probing replicas); files and standalone servers are not
    /// contacted until opened. `options` serves every live instance.
    pub fn resolve(&self, options: &ConnectionOptions) -> Result<Resolved, SourceError> {
        let options = Arc::new(options.clone());
        let redis = |addr: &str, slots| Instance {
            name: addr.to_string(),
            slots,
            opener: InstanceOpener::Redis {
                addr: addr.to_string(),
                options: Arc::clone(&options),
            },
        };
        let (instances, product_name) = match self {
            Spec::File { path, instance } => (
                vec![Instance {
                    name: instance.clone(),
                    slots: None,
                    opener: InstanceOpener::File(path.clone()),
                }],
                None,
            ),
            Spec::Standalone { addr } => (vec![redis(addr, None)], None),
            Spec::Cluster {
                seeds,
                require_slave,
            } => {
                let instances =
                    cluster::discover(seeds, &options, *require_slave).map_err(|cause| {
                        SourceError::Discovery {
                            topology: Topology::RedisCluster,
                            cause,
                        }
                    })?;
                (instances, None)
            }
            Spec::Codis {
                dashboard,
                require_slave,
            } => {
                let (product, instances) = codis::discover(dashboard, &options, *require_slave)
                    .map_err(|cause| SourceError::Discovery {
                        topology: Topology::Codis,
                        cause,
                    })?;
                (instances, product)
            }
        };
        Ok(Resolved {
            instances,
            product_name,
        })
    }
}
