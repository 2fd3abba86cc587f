//! Allocator size classes: what `malloc(n)` really holds, as `zmalloc_usable_size` reports it.
//!
//! Redis and Valkey account memory by usable size, so every allocation of a key counts as the
//! size class its request falls in. jemalloc has four classes per power of two above four
//! quanta; below that, multiples of the quantum (8 bytes for the bundled build, 16 for a
//! distribution's system jemalloc). glibc's `malloc_usable_size` is the chunk size less 8
//! bytes: 24, 40, 56, … in steps of 16 (a 32-byte minimum chunk).

use std::fmt;

/// The allocator a server was built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Allocator {
    /// jemalloc with an 8-byte quantum: Redis and Valkey's bundled build (release tarballs,
    /// official container images).
    Jemalloc,
    /// jemalloc with a 16-byte quantum: distribution packages that link the system jemalloc
    /// (Debian, Ubuntu).
    Jemalloc16,
    /// glibc malloc (`make MALLOC=libc`).
    Libc,
}

impl Allocator {
    /// Every allocator, in the order of the `--memory-allocator` documentation.
    pub const ALL: [Allocator; 3] = [Allocator::Jemalloc, Allocator::Jemalloc16, Allocator::Libc];

    /// The flag value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Allocator::Jemalloc => "jemalloc",
            Allocator::Jemalloc16 => "jemalloc-16",
            Allocator::Libc => "libc",
        }
    }

    /// The allocator whose flag value is `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Usable size of an allocation of `n` bytes (`n = 0` allocates nothing here: callers
    /// only ask for real allocations).
    #[inline]
    pub const fn class(self, n: u64) -> u64 {
        match self {
            Allocator::Jemalloc => jemalloc_class(n, 3),
            Allocator::Jemalloc16 => jemalloc_class(n, 4),
            Allocator::Libc => libc_class(n),
        }
    }

    /// The allocation of an sds string of `len` < [`SMALL_SDS`] bytes (1-byte header below
    /// 32, else 3; an empty string has the 3-byte one), from a table: set members, hash
    /// fields and keys are mostly short, and the parser asks for every one.
    #[inline]
    pub(crate) fn small_sds(self, len: usize) -> u64 {
        SDS_TABLES[self as usize][len] as u64
    }
}

/// Strings shorter than this have the same sds header on every modelled server.
pub(crate) const SMALL_SDS: usize = 253;

const fn sds_table(a: Allocator) -> [u16; SMALL_SDS] {
    let mut t = [0u16; SMALL_SDS];
    let mut len = 0;
    while len < SMALL_SDS {
        let header = if len == 0 || len >= 32 { 3 } else { 1 };
        t[len] = a.class(header + len as u64 + 1) as u16;
        len += 1;
    }
    t
}

static SDS_TABLES: [[u16; SMALL_SDS]; 3] = [
    sds_table(Allocator::Jemalloc),
    sds_table(Allocator::Jemalloc16),
    sds_table(Allocator::Libc),
];

impl fmt::Display for Allocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// jemalloc 5's size classes for a quantum of `2^lg_quantum` bytes (`sc.h`): 8, then
/// multiples of the quantum up to four quanta, then four classes per doubling. Huge sizes keep
/// the same four-per-doubling spacing (jemalloc > 4.0.1 rounds them too).
#[inline]
const fn jemalloc_class(n: u64, lg_quantum: u32) -> u64 {
    let quantum = 1u64 << lg_quantum;
    if n <= 8 {
        return 8;
    }
    if n <= 4 * quantum {
        return n.div_ceil(quantum) * quantum;
    }
    // delta = 2^(floor(log2(n - 1)) - 2): the spacing of the doubling that holds n.
    let lg = 63 - (n - 1).leading_zeros();
    let delta = 1u64 << (lg - 2);
    n.div_ceil(delta).saturating_mul(delta)
}

/// glibc on 64-bit: chunks of `max(32, align16(n + 8))` bytes, of which `chunk - 8` are
/// usable. Large requests (mmap'd, ≥ 128 KiB by default) are page-rounded.
#[inline]
const fn libc_class(n: u64) -> u64 {
    const MMAP_THRESHOLD: u64 = 128 * 1024;
    if n.saturating_add(8) >= MMAP_THRESHOLD {
        // An mmap'd chunk: header 16 bytes, page-rounded, usable = size - 16.
        return n.saturating_add(16).div_ceil(4096).saturating_mul(4096) - 16;
    }
    let units = (n + 8).div_ceil(16);
    let chunk = if units < 2 { 2 } else { units } * 16;
    chunk - 8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jemalloc_q8_classes() {
        let a = Allocator::Jemalloc;
        let got: Vec<u64> = [
            1, 8, 9, 16, 17, 24, 25, 33, 40, 41, 49, 57, 64, 65, 80, 81, 97, 113,
        ]
        .iter()
        .map(|&n| a.class(n))
        .collect();
        assert_eq!(
            got,
            [
                8, 8, 16, 16, 24, 24, 32, 40, 40, 48, 56, 64, 64, 80, 80, 96, 112, 128
            ]
        );
        assert_eq!(a.class(129), 160);
        assert_eq!(a.class(1025), 1280);
        assert_eq!(a.class(8193), 10240);
        assert_eq!(a.class(16385), 20480);
        assert_eq!(a.class(540_000_000), 671_088_640);
    }

    #[test]
    fn jemalloc_q16_classes() {
        let a = Allocator::Jemalloc16;
        let got: Vec<u64> = [1, 9, 17, 24, 33, 40, 49, 56, 64, 65, 96, 129]
            .iter()
            .map(|&n| a.class(n))
            .collect();
        assert_eq!(got, [8, 16, 32, 32, 48, 48, 64, 64, 64, 80, 96, 160]);
    }

    #[test]
    fn libc_classes() {
        let a = Allocator::Libc;
        let got: Vec<u64> = [1, 24, 25, 40, 41, 56, 57]
            .iter()
            .map(|&n| a.class(n))
            .collect();
        assert_eq!(got, [24, 24, 40, 40, 56, 56, 72]);
    }

    #[test]
    fn small_sds_table_matches_the_rule() {
        for a in Allocator::ALL {
            for len in 0..SMALL_SDS {
                let header = if len == 0 || len >= 32 { 3 } else { 1 };
                assert_eq!(
                    a.small_sds(len),
                    a.class(header + len as u64 + 1),
                    "{a} {len}"
                );
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for a in Allocator::ALL {
            assert_eq!(Allocator::parse(a.as_str()), Some(a));
        }
    }
}
