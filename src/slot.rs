//! Key → slot mapping for Redis Cluster and Codis.

use crc::{CRC_16_XMODEM, CRC_32_ISO_HDLC, Crc};

const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_XMODEM);
const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// Number of Redis Cluster slots.
pub const REDIS_SLOTS: u16 = 16384;
/// Number of Codis slots.
pub const CODIS_SLOTS: u16 = 1024;

/// Which slots a source's keys have: a Redis Cluster's (`redis_slot`) or a Codis cluster's
/// (`codis_slot`). A source without slots has none (`Option<SlotKind>`). The derived order is
/// the report's (codis before redis).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SlotKind {
    Codis,
    Redis,
}

impl SlotKind {
    /// `codis` or `redis`, as the report names it.
    pub fn as_str(self) -> &'static str {
        match self {
            SlotKind::Codis => "codis",
            SlotKind::Redis => "redis",
        }
    }
}

/// Redis Cluster slot: CRC16-XMODEM of the hash tag (the bytes between the first `{` and the
/// first `}` after it, when non-empty) or of the whole key, mod 16384.
pub fn redis_slot(key: &[u8]) -> u16 {
    let hashed = match hash_tag(key) {
        Some(tag) if !tag.is_empty() => tag,
        _ => key,
    };
    CRC16.checksum(hashed) % REDIS_SLOTS
}

/// Codis slot: CRC32-IEEE of the hash tag (first `{`, first `}` after it; hashed even when
/// empty) or of the whole key, mod 1024.
pub fn codis_slot(key: &[u8]) -> u16 {
    let hashed = hash_tag(key).unwrap_or(key);
    (CRC32.checksum(hashed) % u32::from(CODIS_SLOTS)) as u16
}

fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|&b| b == b'{')?;
    let rest = &key[open + 1..];
    let close = rest.iter().position(|&b| b == b'}')?;
    Some(&rest[..close])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_slots_match_redis() {
        // Values from `CLUSTER KEYSLOT` on a real server.
        assert_eq!(redis_slot(b"foo"), 12182);
        assert_eq!(redis_slot(b"bar"), 5061);
        assert_eq!(redis_slot(b"{user1000}.following"), redis_slot(b"user1000"));
        assert_eq!(redis_slot(b"foo{}{bar}"), redis_slot(b"foo{}{bar}"));
        assert_ne!(redis_slot(b"foo{}{bar}"), redis_slot(b"bar"));
        assert_eq!(redis_slot(b"foo{{bar}}zap"), redis_slot(b"{bar"));
        assert_eq!(redis_slot(b""), 0);
    }

    #[test]
    fn codis_hashes_empty_tag() {
        assert_eq!(codis_slot(b"a{}b"), (CRC32.checksum(b"") % 1024) as u16);
        assert_eq!(codis_slot(b"x{tag}y"), codis_slot(b"tag"));
        assert_eq!(
            codis_slot(b"plain"),
            (CRC32.checksum(b"plain") % 1024) as u16
        );
    }
}
