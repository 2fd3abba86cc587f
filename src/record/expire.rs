//! The one rule for a key's expiry time, applied where a [`super::Record`] is built, and the
//! one calendar that writes it as text.
//!
//! An `EXPIRETIME_MS` opcode holds any `i64`, but only an absurd `PEXPIREAT` gives one beyond
//! [`MAX_EXPIRE_MS`] (year 294,247). Such a value is not representable in microseconds, and
//! engines that read timestamps as microseconds (DuckDB, Spark) fail on a whole Parquet column
//! holding one. So a record never carries it: [`expire_at_ms`] makes it `None` (no expiry), and
//! every writer (Parquet, ClickHouse, JSONL) and the report carry `Record::expire_at_ms` as it
//! is. The report applies the same rule to what it reads ([`expire_at_ms`] in Rust,
//! [`MAX_EXPIRE_MS`] in its SQL), since batches written by builds before this rule may hold such
//! values (ClickHouse kept them).

/// Largest `|expire_at|` in Unix milliseconds a record carries (`i64::MAX / 1000`).
pub const MAX_EXPIRE_MS: i64 = i64::MAX / 1000;

/// The expiry a record carries for a key whose RDB expiry is `ms` (Unix milliseconds): `ms`
/// itself, `None` beyond ±[`MAX_EXPIRE_MS`].
#[inline]
pub fn expire_at_ms(ms: i64) -> Option<i64> {
    (ms.unsigned_abs() <= MAX_EXPIRE_MS.unsigned_abs()).then_some(ms)
}

/// Unix milliseconds as an RFC 3339 UTC timestamp with 3 fractional digits
/// (`2024-01-02T03:04:05.678Z`), for every `i64`.
///
/// Years 0–9999 have four digits, as RFC 3339 requires; years outside that range (reachable only
/// through absurd expiry times) are written with a sign and at least four digits
/// (`+292278994-08-17T07:12:55.807Z`, `-0001-12-31T...`), the ISO 8601 expanded form. Implemented
/// here rather than with `chrono` because chrono's calendar ends at year ±262,143, and an
/// `expire_at` may lie beyond it.
pub fn format_ms(ms: i64) -> String {
    let mut out = Vec::with_capacity(32);
    write_ms(&mut out, ms);
    // ASCII digits and punctuation only.
    String::from_utf8(out).unwrap_or_default()
}

/// [`format_ms`] appended to `out`, without formatting machinery (the JSONL output writes one
/// per key with a TTL).
pub fn write_ms(out: &mut Vec<u8>, ms: i64) {
    let days = ms.div_euclid(86_400_000);
    let ms_of_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    // Digits of `v` (< 10^width), most significant first, then `sep`.
    let digits = |out: &mut Vec<u8>, v: i64, width: u32, sep: u8| {
        let mut p = 10i64.pow(width - 1);
        while p > 0 {
            out.push(b'0' + ((v / p) % 10) as u8);
            p /= 10;
        }
        out.push(sep);
    };
    if (0..=9999).contains(&year) {
        digits(out, year, 4, b'-');
    } else {
        // The expanded form: a sign, then at least four digits.
        out.push(if year > 0 { b'+' } else { b'-' });
        let mut text = itoa::Buffer::new();
        let abs = text.format(year.unsigned_abs());
        out.extend(std::iter::repeat_n(b'0', 4usize.saturating_sub(abs.len())));
        out.extend_from_slice(abs.as_bytes());
        out.push(b'-');
    }
    digits(out, i64::from(month), 2, b'-');
    digits(out, i64::from(day), 2, b'T');
    digits(out, ms_of_day / 3_600_000, 2, b':');
    digits(out, ms_of_day / 60_000 % 60, 2, b':');
    digits(out, ms_of_day / 1000 % 60, 2, b'.');
    digits(out, ms_of_day % 1000, 3, b'Z');
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (days may be any `i64` that
/// `ms / 86,400,000` yields). The usual era-based conversion: 400-year eras of 146,097 days,
/// with March as the first month so the leap day ends the year.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01. |days| <= 1.07e11, so no overflow in i64.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, SecondsFormat, Utc};

    #[test]
    fn expire_range() {
        for ms in [0, -1, 1_700_000_000_000, MAX_EXPIRE_MS, -MAX_EXPIRE_MS] {
            assert_eq!(expire_at_ms(ms), Some(ms));
        }
        for ms in [MAX_EXPIRE_MS + 1, -MAX_EXPIRE_MS - 1, i64::MAX, i64::MIN] {
            assert_eq!(expire_at_ms(ms), None);
        }
    }

    #[test]
    fn timestamps_match_chrono_where_it_reaches() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut cases = vec![
            0,
            -1,
            1,
            86_399_999,
            -86_400_000,
            951_782_400_000,     // 2000-02-29
            253_402_300_799_999, // 9999-12-31T23:59:59.999
            -62_167_219_200_000, // 0000-01-01
            // Outside 0..=9999, where chrono reaches: the JSONL writer formatted these with
            // chrono before it used this calendar.
            253_402_300_800_000,   // +10000-01-01
            -62_167_219_200_001,   // -0001-12-31T23:59:59.999
            8_000_000_000_000_000, // year 255,479
            -8_000_000_000_000_000,
        ];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Years 0..=9999.
            cases.push((x % 315_537_897_600_000) as i64 - 62_167_219_200_000);
            // Anywhere chrono reaches (|year| < 262,143).
            cases.push((x % 16_000_000_000_000_000) as i64 - 8_000_000_000_000_000);
        }
        for ms in cases {
            let want = DateTime::<Utc>::from_timestamp_millis(ms)
                .expect("in range")
                .to_rfc3339_opts(SecondsFormat::Millis, true);
            assert_eq!(format_ms(ms), want, "{ms}");
            assert_eq!(appended(ms), format!("x{want}"), "{ms}");
        }
    }

    /// `write_ms` after a byte already in the buffer (as the JSONL line has).
    fn appended(ms: i64) -> String {
        let mut out = b"x".to_vec();
        write_ms(&mut out, ms);
        String::from_utf8(out).expect("ASCII")
    }

    #[test]
    fn timestamps_beyond_chrono() {
        for (ms, want) in [
            (253_402_300_800_000, "+10000-01-01T00:00:00.000Z"),
            (-62_167_219_200_001, "-0001-12-31T23:59:59.999Z"),
            (i64::MAX, "+292278994-08-17T07:12:55.807Z"),
            (i64::MIN, "-292275055-05-16T16:47:04.192Z"),
            (i64::MAX / 1000, "+294247-01-10T04:00:54.775Z"),
        ] {
            assert_eq!(format_ms(ms), want, "{ms}");
            assert_eq!(appended(ms), format!("x{want}"), "{ms}");
        }
    }
}
