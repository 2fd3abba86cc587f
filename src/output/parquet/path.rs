//! File and directory names of the Parquet output.
//!
//! Names built from user input (cluster and instance names) are percent-encoded
//! ([`encode_name`]) so they can never escape the output directory, never produce a name some
//! file system or query engine chokes on, and never collide: every byte of the name's UTF-8
//! outside `[A-Za-z0-9._-]` becomes `%XX` (upper-case hex), the form Hive-style partition
//! readers decode (`127.0.0.1:6379` → `127.0.0.1%3A6379`, `a/b` → `a%2Fb`). The empty name is
//! `_` and the name `_` is `%5F`, so that too stays one-to-one.
//!
//! Older versions mapped names lossily ([`sanitize_name`]: `:` → `-`, anything else outside
//! `[A-Za-z0-9._-]` → `_`), so `a/b` and `a_b` shared `cluster=a_b`. Names made of
//! `[A-Za-z0-9._-]` only are the same in both forms; for the others the report also reads the
//! older directory (see `report::parquet`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::record::BatchTs;

/// File extension of a finished instance file.
pub const PARQUET_EXT: &str = "parquet";
/// Suffix of an instance file still being written.
pub const TMP_SUFFIX: &str = ".tmp";
/// Name prefix of a cluster's directory (Hive-style partition `cluster=`).
pub const CLUSTER_PREFIX: &str = "cluster=";
/// Name prefix of a completed batch's directory (Hive-style partition `batch=`).
pub const BATCH_PREFIX: &str = "batch=";
/// Name prefix of a batch directory being written.
pub const TMP_BATCH_PREFIX: &str = "_tmp_batch=";
/// Suffix of a batch's lock file (next to its tmp dir).
pub const LOCK_SUFFIX: &str = ".lock";

/// `name` as (part of) a single path component, one-to-one; see the module docs for the rule.
pub fn encode_name(name: &str) -> String {
    match name {
        "" => return "_".to_string(),
        "_" => return "%5F".to_string(),
        _ => {}
    }
    let mut out = String::with_capacity(name.len());
    for &b in name.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' => out.push(char::from(b)),
            // Writing to a String cannot fail.
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// The lossy name older versions gave `name` (`:` → `-`, anything else outside
/// `[A-Za-z0-9._-]` → `_`, the empty name `_`): where their batches of `name` are.
pub fn sanitize_name(name: &str) -> String {
    if name.is_empty() {
        return "_".to_string();
    }
    name.chars()
        .map(|c| match c {
            ':' => '-',
            'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '_',
        })
        .collect()
}

/// The directories of one batch under the output root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPaths {
    /// `DIR/cluster=<cluster>`.
    pub cluster_dir: PathBuf,
    /// `DIR/cluster=<cluster>/_tmp_batch=<slug>`: where instance files are written.
    pub tmp_dir: PathBuf,
    /// `DIR/cluster=<cluster>/batch=<slug>`: the tmp dir renamed once the batch is complete.
    pub final_dir: PathBuf,
    /// `DIR/cluster=<cluster>/_tmp_batch=<slug>.lock`: held (advisory lock) by the run writing
    /// the batch, so a second run of the same batch fails instead of deleting its files.
    pub lock_file: PathBuf,
}

impl BatchPaths {
    pub fn new(root: &Path, cluster: &str, batch: BatchTs) -> Self {
        let cluster_dir = Self::cluster_dir(root, cluster);
        let slug = batch.slug();
        BatchPaths {
            tmp_dir: cluster_dir.join(format!("{TMP_BATCH_PREFIX}{slug}")),
            final_dir: cluster_dir.join(format!("{BATCH_PREFIX}{slug}")),
            lock_file: cluster_dir.join(format!("{TMP_BATCH_PREFIX}{slug}{LOCK_SUFFIX}")),
            cluster_dir,
        }
    }

    /// `DIR/cluster=<encoded cluster>`: where the cluster's batches are.
    pub fn cluster_dir(root: &Path, cluster: &str) -> PathBuf {
        root.join(format!("{CLUSTER_PREFIX}{}", encode_name(cluster)))
    }

    /// `DIR/cluster=<legacy name>`: where older versions wrote the cluster's batches, shared
    /// by every cluster with the same [`sanitize_name`]. Equal to [`Self::cluster_dir`] for
    /// names made of `[A-Za-z0-9._-]` only (other than `_`).
    pub fn legacy_cluster_dir(root: &Path, cluster: &str) -> PathBuf {
        root.join(format!("{CLUSTER_PREFIX}{}", sanitize_name(cluster)))
    }

    /// The file name of an instance's finished file: `<encoded instance>.parquet`.
    pub fn instance_file_name(instance: &str) -> String {
        format!("{}.{PARQUET_EXT}", encode_name(instance))
    }

    /// `(temporary path, final path)` of an instance's file, both inside the tmp dir.
    pub fn instance_paths(&self, instance: &str) -> (PathBuf, PathBuf) {
        let name = Self::instance_file_name(instance);
        (
            self.tmp_dir.join(format!("{name}{TMP_SUFFIX}")),
            self.tmp_dir.join(name),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode() {
        assert_eq!(encode_name("127.0.0.1:6379"), "127.0.0.1%3A6379");
        assert_eq!(encode_name("redis-a_b.C9"), "redis-a_b.C9");
        assert_eq!(encode_name("../../etc/passwd"), "..%2F..%2Fetc%2Fpasswd");
        assert_eq!(encode_name("a\\b\0c\nd e=f%"), "a%5Cb%00c%0Ad%20e%3Df%25");
        assert_eq!(encode_name("[::1]:6379"), "%5B%3A%3A1%5D%3A6379");
        assert_eq!(encode_name("é"), "%C3%A9");
        assert_eq!(encode_name(""), "_");
        assert_eq!(encode_name("_"), "%5F");
        assert_eq!(encode_name(".."), "..");
        // One-to-one where the older form was not.
        assert_ne!(encode_name("a/b"), encode_name("a_b"));
        assert_ne!(encode_name("a:b"), encode_name("a-b"));
    }

    #[test]
    fn legacy() {
        assert_eq!(sanitize_name("127.0.0.1:6379"), "127.0.0.1-6379");
        assert_eq!(sanitize_name("redis-a_b.C9"), "redis-a_b.C9");
        assert_eq!(sanitize_name("../../etc/passwd"), ".._.._etc_passwd");
        assert_eq!(sanitize_name("a\\b\0c\nd e=f"), "a_b_c_d_e_f");
        assert_eq!(sanitize_name("[::1]:6379"), "_--1_-6379");
        assert_eq!(sanitize_name("é"), "_");
        assert_eq!(sanitize_name(""), "_");
        assert_eq!(sanitize_name(".."), "..");
    }

    #[test]
    fn layout() {
        let p = BatchPaths::new(Path::new("/out"), "my/cluster", BatchTs::from_nanos(0));
        assert_eq!(p.cluster_dir, Path::new("/out/cluster=my%2Fcluster"));
        assert_eq!(
            p.tmp_dir,
            Path::new("/out/cluster=my%2Fcluster/_tmp_batch=1970-01-01_00-00-00.000000000Z")
        );
        assert_eq!(
            p.final_dir,
            Path::new("/out/cluster=my%2Fcluster/batch=1970-01-01_00-00-00.000000000Z")
        );
        assert_eq!(
            BatchPaths::legacy_cluster_dir(Path::new("/out"), "my/cluster"),
            Path::new("/out/cluster=my_cluster")
        );
        let (tmp, fin) = p.instance_paths("10.0.0.1:7000");
        assert_eq!(tmp, p.tmp_dir.join("10.0.0.1%3A7000.parquet.tmp"));
        assert_eq!(fin, p.tmp_dir.join("10.0.0.1%3A7000.parquet"));
    }
}
