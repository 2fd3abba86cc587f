//! An attempt's id ([`AttemptId`]): what the rows, the completion marker and the claims of
//! one run carry (see `claim`).

use std::num::NonZeroU64;

/// An attempt's id: 64 random bits, never 0 (the `attempt` that rows and markers written
/// before attempts were recorded read). Stored as `UInt64` in the records, markers and
/// summaries tables; shown (messages, logs, the claims table, `query_id`s) as 16 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptId(NonZeroU64);

impl AttemptId {
    /// A new random id, from the standard library's randomly seeded hasher (no RNG crate
    /// needed for an id that only has to be unique).
    pub fn random() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut salt = 0u64;
        loop {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(salt);
            h.write_u32(std::process::id());
            h.write_i64(crate::record::BatchTs::now().nanos());
            if let Some(id) = NonZeroU64::new(h.finish()) {
                return AttemptId(id);
            }
            salt += 1;
        }
    }

    /// The stored value.
    pub fn get(self) -> u64 {
        self.0.get()
    }

    /// The id a stored `attempt` value names; `None` for 0 (rows and markers written before
    /// attempts were recorded).
    pub fn from_stored(value: u64) -> Option<Self> {
        NonZeroU64::new(value).map(AttemptId)
    }

    /// The id a claim row names (its 16 hex digits); `None` for any other text (a claim of an
    /// rdbinsight before 64-bit attempt ids).
    pub fn parse_hex(text: &str) -> Option<Self> {
        if text.len() != 16 {
            return None;
        }
        u64::from_str_radix(text, 16)
            .ok()
            .and_then(Self::from_stored)
    }
}

impl std::fmt::Display for AttemptId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_ids_are_random_nonzero_and_shown_as_16_hex_digits() {
        let a = AttemptId::random();
        let b = AttemptId::random();
        assert_ne!(a, b);
        let shown = a.to_string();
        assert_eq!(shown.len(), 16, "{shown}");
        assert_eq!(AttemptId::parse_hex(&shown), Some(a));
        let small = AttemptId::parse_hex("00000000000000ff").expect("an id");
        assert_eq!(small.get(), 255);
        assert_eq!(small.to_string(), "00000000000000ff");
        // 0 is what rows before attempts read; a claim of a build with 32-digit ids is not one.
        assert_eq!(AttemptId::parse_hex("0000000000000000"), None);
        assert_eq!(AttemptId::from_stored(255), Some(small));
        assert_eq!(AttemptId::from_stored(0), None);
        assert_eq!(AttemptId::parse_hex(&format!("{shown}{shown}")), None);
        assert_eq!(AttemptId::parse_hex("ff"), None);
    }
}
