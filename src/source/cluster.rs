//! Redis Cluster topology discovery. Not implemented yet.
