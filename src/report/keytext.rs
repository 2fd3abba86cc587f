//! Raw key bytes made displayable ([`KeyText`]), and the report's fixed-format timestamps.
//!
//! Both are pure functions of their input, so the same key or instant gives the same text from
//! either reader and on every run.

use std::fmt::Write as _;

use base64::Engine as _;

use super::model::KeyText;

/// `bytes` as a [`KeyText`]: UTF-8 text where every byte outside a valid UTF-8 sequence and
/// every control character (U+0000–U+001F, U+007F) is written `\xNN` and a backslash `\\`;
/// `base64` holds the exact bytes whenever some escape was written.
pub fn key_text(bytes: &[u8]) -> KeyText {
    let mut text = String::with_capacity(bytes.len());
    let mut escaped = false;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => {
                    text.push_str("\\\\");
                    escaped = true;
                }
                '\0'..='\x1f' | '\x7f' => {
                    push_hex_escape(&mut text, c as u8);
                    escaped = true;
                }
                c => text.push(c),
            }
        }
        for &b in chunk.invalid() {
            push_hex_escape(&mut text, b);
            escaped = true;
        }
    }
    let base64 = escaped.then(|| base64::engine::general_purpose::STANDARD.encode(bytes));
    KeyText { text, base64 }
}

fn push_hex_escape(out: &mut String, b: u8) {
    // Writing to a String cannot fail.
    let _ = write!(out, "\\x{b:02x}");
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
    let days = ms.div_euclid(86_400_000);
    let ms_of_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (h, rest) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, milli) = (rest / 1000, rest % 1000);
    let mut out = String::with_capacity(32);
    if (0..=9999).contains(&year) {
        let _ = write!(out, "{year:04}");
    } else if year > 9999 {
        let _ = write!(out, "+{year}");
    } else {
        let _ = write!(out, "-{:04}", year.unsigned_abs());
    }
    let _ = write!(out, "-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z");
    out
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

    fn kt(b: &[u8]) -> (String, Option<String>) {
        let k = key_text(b);
        (k.text, k.base64)
    }

    #[test]
    fn utf8_keys_are_themselves() {
        assert_eq!(kt(b"user:1"), ("user:1".into(), None));
        assert_eq!(kt("é✓".as_bytes()), ("é✓".into(), None));
        assert_eq!(kt(b""), ("".into(), None));
        assert_eq!(
            kt(b"</script><!--"),
            ("</script><!--".into(), None),
            "HTML escaping is the renderer's job"
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(kt(b"a\\b"), ("a\\\\b".into(), Some("YVxi".into())));
        assert_eq!(
            kt(b"\x00\x1f\x7f "),
            ("\\x00\\x1f\\x7f ".into(), Some("AB9/IA==".into()))
        );
        assert_eq!(kt(b"\xff\xfe"), ("\\xff\\xfe".into(), Some("//4=".into())));
        // A prefix cut inside a multi-byte character: the leading bytes are escaped.
        assert_eq!(
            kt(b"k\xe2\x9c"),
            ("k\\xe2\\x9c".into(), Some("a+Kc".into()))
        );
        // An escape-looking text is not ambiguous with an escaped byte.
        assert_ne!(kt(b"\\xff").0, kt(b"\xff").0);
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
        ];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Years 0..=9999.
            cases.push((x % 315_537_897_600_000) as i64 - 62_167_219_200_000);
        }
        for ms in cases {
            let want = DateTime::<Utc>::from_timestamp_millis(ms)
                .expect("in range")
                .to_rfc3339_opts(SecondsFormat::Millis, true);
            assert_eq!(format_ms(ms), want, "{ms}");
        }
    }

    #[test]
    fn timestamps_beyond_chrono() {
        assert_eq!(format_ms(253_402_300_800_000), "+10000-01-01T00:00:00.000Z");
        assert_eq!(format_ms(-62_167_219_200_001), "-0001-12-31T23:59:59.999Z");
        assert_eq!(format_ms(i64::MAX), "+292278994-08-17T07:12:55.807Z");
        assert_eq!(format_ms(i64::MIN), "-292275055-05-16T16:47:04.192Z");
        assert_eq!(format_ms(i64::MAX / 1000), "+294247-01-10T04:00:54.775Z");
    }
}
