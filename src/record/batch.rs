//! [`BatchTs`]: the import batch timestamp and its renderings.
//!
//! A dump writes all its rows with one batch timestamp (Unix nanoseconds, UTC). It appears in
//! three textual forms, each owned here so every output and reader agrees on them:
//! - RFC 3339 with 9 fractional digits (`2024-01-02T03:04:05.123456789Z`): JSONL, logs, the
//!   report, `--batch-timestamp` and `report from-clickhouse --batch`;
//! - the directory slug (`2024-01-02_03-04-05.123456789Z`, no `:` so it is a valid file name on
//!   every file system and sorts by time): the Parquet `batch=` directory, `report from-parquet
//!   --batch`;
//! - the ClickHouse `DateTime64(9, 'UTC')` literal text (`2024-01-02 03:04:05.123456789`).

use std::fmt;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

/// Format of the directory slug (chrono `strftime` syntax).
const SLUG_FORMAT: &str = "%Y-%m-%d_%H-%M-%S%.9fZ";

/// The batch (import) timestamp: Unix nanoseconds, UTC. Covers 1677-09-21 to 2262-04-11.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BatchTs(i64);

/// A batch timestamp that could not be parsed or is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is {expected}")]
pub struct BatchTsError {
    text: String,
    expected: &'static str,
}

impl BatchTs {
    pub const fn from_nanos(nanos: i64) -> Self {
        BatchTs(nanos)
    }

    /// The current time (the clock saturated into the representable range).
    pub fn now() -> Self {
        let now = Utc::now();
        BatchTs(now.timestamp_nanos_opt().unwrap_or(if now.timestamp() < 0 {
            i64::MIN
        } else {
            i64::MAX
        }))
    }

    /// Parse an RFC 3339 timestamp with any offset (`2024-01-02T03:04:05Z`,
    /// `2024-01-02T05:04:05.5+02:00`).
    pub fn parse_rfc3339(text: &str) -> Result<Self, BatchTsError> {
        let err = |expected| BatchTsError {
            text: text.to_string(),
            expected,
        };
        const OUT_OF_RANGE: &str = "out of range: batch timestamps go from \
            1677-09-21T00:12:43.145224192Z to 2262-04-11T23:47:16.854775807Z";
        let trimmed = text.trim();
        let t = DateTime::parse_from_rfc3339(trimmed).map_err(|_| {
            // A year of five digits or more is RFC 3339's form but for its width.
            let year_digits = trimmed.bytes().take_while(u8::is_ascii_digit).count();
            match year_digits > 4 && trimmed.as_bytes().get(year_digits) == Some(&b'-') {
                true => err(OUT_OF_RANGE),
                false => err("not an RFC 3339 timestamp (e.g. 2024-01-02T03:04:05Z)"),
            }
        })?;
        t.timestamp_nanos_opt()
            .map(BatchTs)
            .ok_or_else(|| err(OUT_OF_RANGE))
    }

    /// Parse a batch as a user names it (`--batch`): a directory slug, else RFC 3339 (whose
    /// error is the one returned).
    pub fn parse_slug_or_rfc3339(text: &str) -> Result<Self, BatchTsError> {
        Self::parse_slug(text).or_else(|_| Self::parse_rfc3339(text))
    }

    /// Parse a directory slug (`2024-01-02_03-04-05.123456789Z`), exactly as [`BatchTs::slug`]
    /// writes it.
    pub fn parse_slug(text: &str) -> Result<Self, BatchTsError> {
        let err = || BatchTsError {
            text: text.to_string(),
            expected: "not a batch slug like 2024-01-02_03-04-05.123456789Z",
        };
        let t = NaiveDateTime::parse_from_str(text, SLUG_FORMAT).map_err(|_| err())?;
        let ts = t
            .and_utc()
            .timestamp_nanos_opt()
            .map(BatchTs)
            .ok_or_else(err)?;
        // Only the canonical spelling (9 digits): the slug names a directory exactly.
        if ts.slug() != text {
            return Err(err());
        }
        Ok(ts)
    }

    /// Unix nanoseconds.
    pub const fn nanos(self) -> i64 {
        self.0
    }

    /// Unix milliseconds, rounded down (towards the past).
    pub const fn millis(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    fn datetime(self) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp_nanos(self.0)
    }

    /// RFC 3339, UTC, 9 fractional digits: `2024-01-02T03:04:05.123456789Z`.
    pub fn rfc3339(self) -> String {
        self.datetime().to_rfc3339_opts(SecondsFormat::Nanos, true)
    }

    /// The directory slug: `2024-01-02_03-04-05.123456789Z`.
    pub fn slug(self) -> String {
        self.datetime().format(SLUG_FORMAT).to_string()
    }

    /// The text of a ClickHouse `DateTime64(9, 'UTC')` value: `2024-01-02 03:04:05.123456789`
    /// (to be quoted as a string literal, or bound as a parameter).
    pub fn clickhouse_datetime64(self) -> String {
        self.datetime().format("%Y-%m-%d %H:%M:%S%.9f").to_string()
    }
}

impl fmt::Display for BatchTs {
    /// The RFC 3339 form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_timestamps_say_so_with_the_range() {
        for text in [
            "99999-01-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "2263-01-01T00:00:00Z",
        ] {
            let e = BatchTs::parse_rfc3339(text).expect_err(text).to_string();
            assert!(e.contains("out of range"), "{e}");
            assert!(
                e.contains("1677-09-21T00:12:43.145224192Z to 2262-04-11"),
                "{e}"
            );
            assert!(!e.contains("RFC 3339"), "{e}");
        }
        let e = BatchTs::parse_rfc3339("yesterday")
            .expect_err("bad")
            .to_string();
        assert_eq!(
            e,
            "'yesterday' is not an RFC 3339 timestamp (e.g. 2024-01-02T03:04:05Z)"
        );
    }

    // 2024-01-02T03:04:05.123456789Z
    const T: BatchTs = BatchTs::from_nanos(1_704_164_645_123_456_789);

    #[test]
    fn renderings() {
        assert_eq!(T.rfc3339(), "2024-01-02T03:04:05.123456789Z");
        assert_eq!(T.slug(), "2024-01-02_03-04-05.123456789Z");
        assert_eq!(T.clickhouse_datetime64(), "2024-01-02 03:04:05.123456789");
        assert_eq!(T.to_string(), T.rfc3339());
        assert_eq!(T.millis(), 1_704_164_645_123);
        let zero = BatchTs::from_nanos(0);
        assert_eq!(zero.slug(), "1970-01-01_00-00-00.000000000Z");
        assert_eq!(zero.rfc3339(), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(BatchTs::from_nanos(-1).millis(), -1);
    }

    #[test]
    fn parsing_round_trips() {
        assert_eq!(BatchTs::parse_rfc3339(&T.rfc3339()), Ok(T));
        assert_eq!(BatchTs::parse_slug(&T.slug()), Ok(T));
        assert_eq!(
            BatchTs::parse_rfc3339("2024-01-02T05:04:05.123456789+02:00"),
            Ok(T)
        );
        assert_eq!(
            BatchTs::parse_rfc3339("2024-01-02T03:04:05Z").map(BatchTs::nanos),
            Ok(1_704_164_645_000_000_000)
        );
        for bad in ["", "2024-01-02", "yesterday", "2024-01-02T03:04:05"] {
            let e = BatchTs::parse_rfc3339(bad).expect_err(bad);
            assert!(e.to_string().contains("RFC 3339"), "{e}");
        }
        assert!(BatchTs::parse_rfc3339("3000-01-01T00:00:00Z").is_err());
        for bad in [
            "2024-01-02_03-04-05Z",
            "2024-01-02_03-04-05.123Z",
            "2024-01-02T03:04:05.123456789Z",
            "batch=2024-01-02_03-04-05.123456789Z",
        ] {
            assert!(BatchTs::parse_slug(bad).is_err(), "{bad}");
        }
    }
}
