//! A live standalone Redis, read over the replication protocol (PSYNC). Not implemented yet.

use super::{OpenedStream, SourceError};

/// Connection settings for one server.
#[derive(Debug, Clone, Default)]
pub struct StandaloneConfig {
    pub addr: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// Connect, authenticate, request a full sync and return the snapshot stream.
pub fn open(instance: &str, _cfg: &StandaloneConfig) -> Result<OpenedStream, SourceError> {
    Err(SourceError::Instance {
        instance: instance.to_string(),
        message: "live sources are not implemented yet".into(),
    })
}
