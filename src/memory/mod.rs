//! The memory model: how many bytes of RAM a key takes once a server has loaded the RDB.
//!
//! `mem_size` counts what the server's allocator holds for one key right after loading: the
//! value's `robj`, the key's sds (Valkey 8: the key embedded in its dict entry), the value's
//! structures, the key's entry in its db's main dict and, with a TTL, in the expires dict,
//! each allocation rounded to the allocator's size class ([`Allocator::class`]). Not in it:
//! the keyspace dicts' bucket arrays (shared by all keys; see [`keyspace_tables`]),
//! fragmentation, and what a running server accumulates later (streams preallocate, dicts
//! grow).
//!
//! A [`Model`] is (server version, allocator, the loading server's settings, cluster mode).
//! [`MemoryOptions`] holds what the user or a live source said; [`MemoryOptions::resolve`]
//! completes it from what the RDB says (its `redis-ver`/`valkey-ver` aux fields, slot info).
//! The per-type arithmetic is in `estimate` (fed by the parser element by element, so no
//! value is ever held); the element encodings in `encode`.
//!
//! Validated against real servers by the tests (`tests/redis/memory.rs`): a key's drop of
//! `used_memory` when it is deleted from a freshly loaded server.

mod alloc;
pub(crate) mod encode;
pub(crate) mod estimate;

use std::fmt;

pub use alloc::Allocator;

/// The server whose memory layout a model follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServerVersion {
    Redis62,
    Redis70,
    Redis72,
    Redis74,
    Valkey80,
}

impl ServerVersion {
    /// Every modelled server, in the order of the `--memory-version` documentation.
    pub const ALL: [ServerVersion; 5] = [
        ServerVersion::Redis62,
        ServerVersion::Redis70,
        ServerVersion::Redis72,
        ServerVersion::Redis74,
        ServerVersion::Valkey80,
    ];

    /// The flag value.
    pub const fn as_str(self) -> &'static str {
        match self {
            ServerVersion::Redis62 => "redis-6.2",
            ServerVersion::Redis70 => "redis-7.0",
            ServerVersion::Redis72 => "redis-7.2",
            ServerVersion::Redis74 => "redis-7.4",
            ServerVersion::Valkey80 => "valkey-8.0",
        }
    }

    /// The version whose flag value is `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The model for a server that said it is `product` (`redis` or `valkey`) `version`
    /// (`7.2.4`), and whether that model is only the nearest one (a server whose layout was
    /// not validated: Redis < 6.2 or ≥ 8, Valkey ≥ 8.1).
    pub fn nearest(valkey: bool, version: &str) -> (ServerVersion, bool) {
        let mut parts = version.trim().split('.').map(|p| p.parse::<u32>().ok());
        let major = parts.next().flatten();
        let minor = parts.next().flatten().unwrap_or(0);
        let Some(major) = major else {
            return (ServerVersion::Redis72, true);
        };
        if valkey {
            return match (major, minor) {
                (8, 0) => (ServerVersion::Valkey80, false),
                (7, _) => (ServerVersion::Redis72, false),
                _ => (ServerVersion::Valkey80, true),
            };
        }
        match (major, minor) {
            (6, 2) => (ServerVersion::Redis62, false),
            (7, 0) => (ServerVersion::Redis70, false),
            (7, 2) => (ServerVersion::Redis72, false),
            (7, 4) => (ServerVersion::Redis74, false),
            (0..=5, _) | (6, _) => (ServerVersion::Redis62, true),
            (7, _) => (ServerVersion::Redis74, true),
            _ => (ServerVersion::Redis74, true),
        }
    }

    pub(crate) fn is_valkey(self) -> bool {
        self == ServerVersion::Valkey80
    }

    /// Redis 6.2 keeps ziplists in RAM; later servers convert them to listpacks.
    pub(crate) fn ziplists(self) -> bool {
        self == ServerVersion::Redis62
    }

    /// Small sets as listpacks, small lists as one listpack, `no_value` set dicts: 7.2+.
    pub(crate) fn since_72(self) -> bool {
        self >= ServerVersion::Redis72
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `maxmemory-policy` classes that matter here: LRU and LFU policies keep a private
/// `robj` for every integer (no shared integers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictionPolicy {
    /// `noeviction`, `volatile-ttl`, `*-random`.
    Other,
    /// `*-lru`, `*-lfu`.
    LruLfu,
}

/// The loading server's settings that change a key's layout. Defaults are the version's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub hash_max_entries: u64,
    pub hash_max_value: u64,
    pub zset_max_entries: u64,
    pub zset_max_value: u64,
    pub set_max_intset_entries: u64,
    /// 7.2+ only.
    pub set_max_listpack_entries: u64,
    /// 7.2+ only.
    pub set_max_listpack_value: u64,
    /// `list-max-listpack-size` (`list-max-ziplist-size`): negative = a byte limit.
    pub list_max_size: i64,
    /// `list-compress-depth`: nodes compressed in RAM are not modelled (approximate).
    pub list_compress_depth: u64,
    pub maxmemory: u64,
    pub policy: EvictionPolicy,
    /// Which settings were given explicitly (bit `i` = `Settings::FIELDS[i]`), so that
    /// flags can override what a server reported field by field.
    explicit: u16,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            hash_max_entries: 512,
            hash_max_value: 64,
            zset_max_entries: 128,
            zset_max_value: 64,
            set_max_intset_entries: 512,
            set_max_listpack_entries: 128,
            set_max_listpack_value: 64,
            list_max_size: -2,
            list_compress_depth: 0,
            maxmemory: 0,
            policy: EvictionPolicy::Other,
            explicit: 0,
        }
    }
}

/// A `--memory-config` item or a `CONFIG GET` reply that is not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("memory config {0}")]
pub struct SettingError(String);

impl Settings {
    /// The names [`Settings::set`] understands (with both the listpack and ziplist spellings).
    pub const NAMES: [&'static str; 14] = [
        "hash-max-listpack-entries",
        "hash-max-listpack-value",
        "zset-max-listpack-entries",
        "zset-max-listpack-value",
        "set-max-intset-entries",
        "set-max-listpack-entries",
        "set-max-listpack-value",
        "list-max-listpack-size",
        "list-compress-depth",
        "maxmemory",
        "maxmemory-policy",
        "hash-max-ziplist-entries",
        "hash-max-ziplist-value",
        "list-max-ziplist-size",
    ];

    /// Apply one setting, as `CONFIG GET` or `--memory-config` gives it. `cluster-enabled`
    /// is not a setting here (see [`MemoryOptions::cluster`]).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), SettingError> {
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        let num = || -> Result<u64, SettingError> {
            parse_bytes(value)
                .ok_or_else(|| SettingError(format!("{name}={value}: not a non-negative number")))
        };
        let canonical = name.replace("ziplist", "listpack");
        match canonical.as_str() {
            "hash-max-listpack-entries" => self.hash_max_entries = num()?,
            "hash-max-listpack-value" => self.hash_max_value = num()?,
            "zset-max-listpack-entries" => self.zset_max_entries = num()?,
            "zset-max-listpack-value" => self.zset_max_value = num()?,
            "set-max-intset-entries" => self.set_max_intset_entries = num()?,
            "set-max-listpack-entries" => self.set_max_listpack_entries = num()?,
            "set-max-listpack-value" => self.set_max_listpack_value = num()?,
            "list-max-listpack-size" => {
                self.list_max_size = value
                    .parse()
                    .map_err(|_| SettingError(format!("{name}={value}: not an integer")))?;
            }
            "list-compress-depth" => self.list_compress_depth = num()?,
            "maxmemory" => self.maxmemory = num()?,
            "maxmemory-policy" => {
                let v = value.to_ascii_lowercase();
                self.policy = if v.ends_with("-lru") || v.ends_with("-lfu") {
                    EvictionPolicy::LruLfu
                } else if matches!(
                    v.as_str(),
                    "noeviction" | "volatile-ttl" | "allkeys-random" | "volatile-random"
                ) {
                    EvictionPolicy::Other
                } else {
                    return Err(SettingError(format!("{name}={value}: unknown policy")));
                };
            }
            _ => {
                return Err(SettingError(format!(
                    "{name}: unknown setting (known: {}, cluster-enabled)",
                    Self::NAMES.join(", ")
                )));
            }
        }
        if let Some(i) = Self::NAMES.iter().position(|n| *n == canonical) {
            self.explicit |= 1 << i;
        }
        Ok(())
    }

    /// These settings where given explicitly, `base`'s elsewhere.
    pub fn over(self, base: Settings) -> Settings {
        let has = |name: &str| {
            Self::NAMES
                .iter()
                .position(|n| *n == name)
                .is_some_and(|i| self.explicit & (1 << i) != 0)
        };
        let pick = |name: &str, a: u64, b: u64| if has(name) { a } else { b };
        Settings {
            hash_max_entries: pick(
                "hash-max-listpack-entries",
                self.hash_max_entries,
                base.hash_max_entries,
            ),
            hash_max_value: pick(
                "hash-max-listpack-value",
                self.hash_max_value,
                base.hash_max_value,
            ),
            zset_max_entries: pick(
                "zset-max-listpack-entries",
                self.zset_max_entries,
                base.zset_max_entries,
            ),
            zset_max_value: pick(
                "zset-max-listpack-value",
                self.zset_max_value,
                base.zset_max_value,
            ),
            set_max_intset_entries: pick(
                "set-max-intset-entries",
                self.set_max_intset_entries,
                base.set_max_intset_entries,
            ),
            set_max_listpack_entries: pick(
                "set-max-listpack-entries",
                self.set_max_listpack_entries,
                base.set_max_listpack_entries,
            ),
            set_max_listpack_value: pick(
                "set-max-listpack-value",
                self.set_max_listpack_value,
                base.set_max_listpack_value,
            ),
            list_max_size: if has("list-max-listpack-size") {
                self.list_max_size
            } else {
                base.list_max_size
            },
            list_compress_depth: pick(
                "list-compress-depth",
                self.list_compress_depth,
                base.list_compress_depth,
            ),
            maxmemory: pick("maxmemory", self.maxmemory, base.maxmemory),
            policy: if has("maxmemory-policy") {
                self.policy
            } else {
                base.policy
            },
            explicit: self.explicit | base.explicit,
        }
    }

    /// Whether loaded integers 0..9999 use the server's shared objects.
    pub(crate) fn shares_integers(&self) -> bool {
        self.maxmemory == 0 || self.policy != EvictionPolicy::LruLfu
    }
}

/// `100`, `4gb`, `512mb`, `1k`: Redis's memory units (k/kb = 1000/1024).
fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.to_ascii_lowercase();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let mul = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1_000_000,
        "mb" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mul)
}

/// What is known of an instance's memory model before its RDB is read: flags, and what a
/// live source learned from the server (`INFO`, `MEMORY MALLOC-STATS`, `CONFIG GET`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryOptions {
    /// `--memory-version`, or what `INFO server` said (then `version_detected`).
    pub version: Option<ServerVersion>,
    /// Set when `version` was detected from a server rather than forced, and that server was
    /// not one the model was validated on.
    pub version_approximate: bool,
    /// `--memory-allocator`, or the quantum `MEMORY MALLOC-STATS` printed.
    pub allocator: Option<Allocator>,
    /// The loading server's settings (`--memory-config`, `CONFIG GET`).
    pub settings: Settings,
    /// `--memory-config cluster-enabled=yes`, or the source is a Redis Cluster.
    pub cluster: Option<bool>,
}

impl MemoryOptions {
    /// Parse a `--memory-config` list: `name=value,name=value`.
    pub fn apply_config_list(&mut self, list: &str) -> Result<(), SettingError> {
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| SettingError(format!("{item}: expected name=value")))?;
            if name.trim().eq_ignore_ascii_case("cluster-enabled") {
                self.cluster = Some(match value.trim().to_ascii_lowercase().as_str() {
                    "yes" | "1" | "true" => true,
                    "no" | "0" | "false" => false,
                    _ => return Err(SettingError(format!("{item}: expected yes or no"))),
                });
            } else {
                self.settings.set(name, value)?;
            }
        }
        Ok(())
    }

    /// What a live server told about itself: `INFO` (all default sections), the text of
    /// `MEMORY MALLOC-STATS` and `CONFIG GET` pairs (any of them may be missing where the
    /// server refused the command). Unknown or unparsable items are ignored.
    pub fn from_server(
        info: Option<&str>,
        malloc_stats: Option<&str>,
        config: &[(String, String)],
    ) -> MemoryOptions {
        let mut o = MemoryOptions::default();
        let field = |name: &str| {
            info.and_then(|text| {
                text.lines()
                    .find_map(|l| l.trim_end().strip_prefix(name)?.strip_prefix(':'))
                    .map(str::to_string)
            })
        };
        let server = match (field("valkey_version"), field("redis_version")) {
            (Some(v), _) => Some((true, v)),
            (None, Some(v)) => Some((false, v)),
            (None, None) => None,
        };
        if let Some((valkey, v)) = &server {
            let (version, approximate) = ServerVersion::nearest(*valkey, v);
            o.version = Some(version);
            o.version_approximate = approximate;
        }
        match field("mem_allocator").as_deref() {
            Some(a) if a.starts_with("libc") => o.allocator = Some(Allocator::Libc),
            Some(a) if a.starts_with("jemalloc") => {
                let quantum = malloc_stats.and_then(|s| {
                    s.lines().find_map(|l| {
                        l.trim()
                            .strip_prefix("Quantum size:")
                            .map(|q| q.trim().to_string())
                    })
                });
                o.allocator = match quantum.as_deref() {
                    Some("16") => Some(Allocator::Jemalloc16),
                    Some("8") => Some(Allocator::Jemalloc),
                    _ => None,
                };
            }
            _ => {}
        }
        if let Some(c) = field("cluster_enabled") {
            o.cluster = Some(c.trim() == "1");
        }
        for (name, value) in config {
            if Settings::NAMES.contains(&name.as_str()) {
                // A value the model does not understand keeps the default.
                let _ = o.settings.set(name, value);
            }
        }
        o
    }

    /// These options (flags) over what a server reported: each explicit flag wins.
    pub fn over(self, detected: MemoryOptions) -> MemoryOptions {
        MemoryOptions {
            version: self.version.or(detected.version),
            version_approximate: if self.version.is_some() {
                self.version_approximate
            } else {
                detected.version_approximate
            },
            allocator: self.allocator.or(detected.allocator),
            settings: self.settings.over(detected.settings),
            cluster: self.cluster.or(detected.cluster),
        }
    }

    /// The model for an RDB whose aux fields said `rdb_server` (`(valkey, "7.2.4")`), written
    /// with `slot_info` (a 7.4+ cluster node's RDB).
    pub fn resolve(&self, rdb_server: Option<(bool, &str)>, slot_info: bool) -> Model {
        let (version, approximate) = match (self.version, rdb_server) {
            (Some(v), _) => (v, self.version_approximate),
            (None, Some((valkey, ver))) => ServerVersion::nearest(valkey, ver),
            // No version aux field: an RDB from Redis ≤ 3.0.
            (None, None) => (ServerVersion::Redis62, true),
        };
        Model {
            version,
            allocator: self.allocator.unwrap_or(Allocator::Jemalloc),
            settings: self.settings,
            cluster: self.cluster.unwrap_or(slot_info),
            approximate,
        }
    }
}

/// One instance's resolved memory model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model {
    pub version: ServerVersion,
    pub allocator: Allocator,
    pub settings: Settings,
    pub cluster: bool,
    /// The nearest model of a server the model was not validated against.
    pub approximate: bool,
}

impl Model {
    /// One line that names the model: `redis-7.2 jemalloc` (+ `cluster`, `approximate`,
    /// non-default settings).
    pub fn describe(&self) -> String {
        let mut s = format!("{} {}", self.version, self.allocator);
        if self.cluster {
            s.push_str(" cluster");
        }
        let d = Settings::default();
        let st = &self.settings;
        let mut changed = Vec::new();
        for (name, a, b) in [
            (
                "hash-max-listpack-entries",
                st.hash_max_entries,
                d.hash_max_entries,
            ),
            (
                "hash-max-listpack-value",
                st.hash_max_value,
                d.hash_max_value,
            ),
            (
                "zset-max-listpack-entries",
                st.zset_max_entries,
                d.zset_max_entries,
            ),
            (
                "zset-max-listpack-value",
                st.zset_max_value,
                d.zset_max_value,
            ),
            (
                "set-max-intset-entries",
                st.set_max_intset_entries,
                d.set_max_intset_entries,
            ),
            (
                "set-max-listpack-entries",
                st.set_max_listpack_entries,
                d.set_max_listpack_entries,
            ),
            (
                "set-max-listpack-value",
                st.set_max_listpack_value,
                d.set_max_listpack_value,
            ),
            (
                "list-compress-depth",
                st.list_compress_depth,
                d.list_compress_depth,
            ),
            ("maxmemory", st.maxmemory, d.maxmemory),
        ] {
            if a != b {
                changed.push(format!("{name}={a}"));
            }
        }
        if st.list_max_size != d.list_max_size {
            changed.push(format!("list-max-listpack-size={}", st.list_max_size));
        }
        if st.policy != d.policy {
            changed.push("maxmemory-policy=lru/lfu".to_string());
        }
        if !changed.is_empty() {
            s.push(' ');
            s.push_str(&changed.join(","));
        }
        if self.approximate || st.list_compress_depth > 0 {
            s.push_str(" (approximate)");
        }
        s
    }
}

/// Bytes of one db's keyspace bucket arrays (main dict and expires dict), shared by all its
/// keys and so not in any key's `mem_size`: `8 × next_pow2(n)` per dict, sized at load from
/// the RDB's RESIZEDB hint.
pub fn keyspace_tables(keys: u64, expires: u64) -> u64 {
    let buckets = |n: u64| {
        if n == 0 {
            0
        } else {
            8 * n.next_power_of_two().max(4)
        }
    };
    buckets(keys) + buckets(expires)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_models() {
        assert_eq!(
            ServerVersion::nearest(false, "7.2.4"),
            (ServerVersion::Redis72, false)
        );
        assert_eq!(
            ServerVersion::nearest(false, "7.0.15"),
            (ServerVersion::Redis70, false)
        );
        assert_eq!(
            ServerVersion::nearest(false, "8.2.3"),
            (ServerVersion::Redis74, true)
        );
        assert_eq!(
            ServerVersion::nearest(false, "3.2.6"),
            (ServerVersion::Redis62, true)
        );
        assert_eq!(
            ServerVersion::nearest(true, "8.0.1"),
            (ServerVersion::Valkey80, false)
        );
        assert_eq!(
            ServerVersion::nearest(true, "8.1.8"),
            (ServerVersion::Valkey80, true)
        );
        for v in ServerVersion::ALL {
            assert_eq!(ServerVersion::parse(v.as_str()), Some(v));
        }
    }

    #[test]
    fn settings_and_config_lists() {
        let mut o = MemoryOptions::default();
        o.apply_config_list("hash-max-ziplist-entries=128, maxmemory=1gb,maxmemory-policy=allkeys-lru,cluster-enabled=yes")
            .unwrap();
        assert_eq!(o.settings.hash_max_entries, 128);
        assert_eq!(o.settings.maxmemory, 1 << 30);
        assert!(!o.settings.shares_integers());
        assert_eq!(o.cluster, Some(true));
        assert!(o.apply_config_list("nope=1").is_err());
        assert!(o.apply_config_list("maxmemory").is_err());
        let m = o.resolve(Some((false, "7.0.15")), false);
        assert_eq!(m.version, ServerVersion::Redis70);
        assert!(m.cluster);
        assert!(
            m.describe()
                .starts_with("redis-7.0 jemalloc cluster hash-max-listpack-entries=128")
        );
    }

    #[test]
    fn from_a_live_server() {
        let info = "# Server\r\nredis_version:7.2.4\r\nvalkey_version:8.0.1\r\n# Memory\r\n\
                    mem_allocator:jemalloc-5.3.0\r\n# Cluster\r\ncluster_enabled:1\r\n";
        let stats = "___ Begin jemalloc statistics ___\nVersion: 5.3.0\nQuantum size: 16\n";
        let config = [
            ("hash-max-listpack-entries".to_string(), "1024".to_string()),
            ("maxmemory-policy".to_string(), "allkeys-lfu".to_string()),
            ("maxmemory".to_string(), "0".to_string()),
        ];
        let d = MemoryOptions::from_server(Some(info), Some(stats), &config);
        assert_eq!(d.version, Some(ServerVersion::Valkey80));
        assert_eq!(d.allocator, Some(Allocator::Jemalloc16));
        assert_eq!(d.cluster, Some(true));
        assert_eq!(d.settings.hash_max_entries, 1024);
        assert!(d.settings.shares_integers());
        // Flags win field by field.
        let mut flags = MemoryOptions::default();
        flags
            .apply_config_list("hash-max-listpack-value=128")
            .unwrap();
        let m = flags.over(d);
        assert_eq!(m.settings.hash_max_entries, 1024);
        assert_eq!(m.settings.hash_max_value, 128);
        assert_eq!(m.settings.policy, EvictionPolicy::LruLfu);
        let libc = MemoryOptions::from_server(Some("mem_allocator:libc\r\n"), None, &[]);
        assert_eq!(libc.allocator, Some(Allocator::Libc));
        // jemalloc without its quantum (MEMORY MALLOC-STATS refused): unknown.
        let unknown =
            MemoryOptions::from_server(Some("mem_allocator:jemalloc-5.3.0\r\n"), None, &[]);
        assert_eq!(unknown.allocator, None);
    }

    #[test]
    fn keyspace_table_sizes() {
        assert_eq!(keyspace_tables(0, 0), 0);
        assert_eq!(keyspace_tables(3, 1), 32 + 32);
        assert_eq!(keyspace_tables(1000, 0), 8192);
    }
}
