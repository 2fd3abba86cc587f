//! Raw key bytes made displayable ([`KeyText`]), and the report's fixed-format timestamps.
//!
//! Both are pure functions of their input, so the same key or instant gives the same text from
//! either reader and on every run.

use std::borrow::Cow;
use std::fmt::Write as _;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use super::model::{KEY_SHOWN_BYTES, KeyText};

/// Bytes of a long key's sort form: the shown bytes, the length (u64 big-endian), the SHA-256.
pub const LONG_FORM_BYTES: usize = KEY_SHOWN_BYTES + 8 + 32;

/// A key's sort form: the key itself when it has at most [`KEY_SHOWN_BYTES`] bytes; else its
/// first [`KEY_SHOWN_BYTES`] bytes, its length as a big-endian u64 and its SHA-256
/// ([`LONG_FORM_BYTES`] in all).
///
/// Every list of keys the report holds or sorts holds sort forms, so a key costs at most
/// [`LONG_FORM_BYTES`] however long it is. Byte order on sort forms is the report's key order:
/// by the first [`KEY_SHOWN_BYTES`] bytes, then by length, then by digest, which is byte order
/// on the keys themselves unless two keys share their first [`KEY_SHOWN_BYTES`] bytes (a short
/// form is never longer than [`KEY_SHOWN_BYTES`], so it sorts before every long form it
/// starts). Two keys have the same form exactly when they are equal (up to a SHA-256
/// collision). The ClickHouse reader orders by the same triple in SQL.
pub fn sort_form(key: &[u8]) -> Cow<'_, [u8]> {
    if key.len() <= KEY_SHOWN_BYTES {
        return Cow::Borrowed(key);
    }
    let mut out = Vec::with_capacity(LONG_FORM_BYTES);
    out.extend_from_slice(&key[..KEY_SHOWN_BYTES]);
    out.extend_from_slice(&(key.len() as u64).to_be_bytes());
    out.extend_from_slice(&Sha256::digest(key));
    Cow::Owned(out)
}

/// The sort form of a long key from its parts as the ClickHouse reader receives them: the
/// first [`KEY_SHOWN_BYTES`] bytes, the length and the SHA-256 in hex (either case; empty for
/// a key of at most [`KEY_SHOWN_BYTES`] bytes, whose form is `shown` itself). `None` when the
/// parts do not fit together.
pub fn sort_form_from_parts(shown: &[u8], len: u64, sha256_hex: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    sort_form_from_parts_into(shown, len, sha256_hex, &mut out).then_some(out)
}

/// [`sort_form_from_parts`] into `out` (cleared first; reused across keys); `false` when the
/// parts do not fit together.
pub fn sort_form_from_parts_into(
    shown: &[u8],
    len: u64,
    sha256_hex: &[u8],
    out: &mut Vec<u8>,
) -> bool {
    out.clear();
    if len <= KEY_SHOWN_BYTES as u64 {
        if shown.len() as u64 != len || !sha256_hex.is_empty() {
            return false;
        }
        out.extend_from_slice(shown);
        return true;
    }
    if shown.len() != KEY_SHOWN_BYTES || sha256_hex.len() != 64 {
        return false;
    }
    out.extend_from_slice(shown);
    out.extend_from_slice(&len.to_be_bytes());
    for pair in sha256_hex.chunks_exact(2) {
        let (Some(hi), Some(lo)) = (
            char::from(pair[0]).to_digit(16),
            char::from(pair[1]).to_digit(16),
        ) else {
            return false;
        };
        out.push((hi * 16 + lo) as u8);
    }
    true
}

/// The shown part of a sort form: the key itself, or a long key's first [`KEY_SHOWN_BYTES`].
#[inline]
pub fn shown_part(form: &[u8]) -> &[u8] {
    &form[..form.len().min(KEY_SHOWN_BYTES)]
}

/// A key given by its sort form ([`sort_form`]) as a [`KeyText`]: the text of its shown bytes,
/// and for a long key its length and SHA-256 (lowercase hex).
pub fn form_text(form: &[u8]) -> KeyText {
    let mut k = key_text(shown_part(form));
    if form.len() == LONG_FORM_BYTES {
        let (len, digest) = form[KEY_SHOWN_BYTES..].split_at(8);
        let mut be = [0u8; 8];
        be.copy_from_slice(len);
        k.len = Some(u64::from_be_bytes(be));
        let mut hex = String::with_capacity(64);
        for b in digest {
            let _ = write!(hex, "{b:02x}");
        }
        k.sha256 = Some(hex);
    }
    k
}

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
    KeyText {
        text,
        base64,
        len: None,
        sha256: None,
    }
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
    fn sort_forms_order_by_shown_bytes_then_length_then_digest() {
        let long = |len: usize, tail: u8| {
            let mut k = vec![b'k'; 5_000];
            k.resize(len, tail);
            k
        };
        let mut keys = [
            b"a".to_vec(),
            vec![b'k'; 4_095],
            vec![b'k'; 4_096],
            long(4_097, b'z'),
            long(6_000, b'a'),
            long(6_000, b'b'),
            long(5_001, b'b'),
            vec![b'k', b'l'],
        ];
        let mut forms: Vec<Vec<u8>> = keys.iter().map(|k| sort_form(k).into_owned()).collect();
        forms.sort();
        keys.sort_by(|a, b| {
            let shown = |k: &[u8]| k[..k.len().min(KEY_SHOWN_BYTES)].to_vec();
            shown(a)
                .cmp(&shown(b))
                .then(a.len().cmp(&b.len()))
                .then_with(|| Sha256::digest(a).cmp(&Sha256::digest(b)))
        });
        let want: Vec<Vec<u8>> = keys.iter().map(|k| sort_form(k).into_owned()).collect();
        assert_eq!(forms, want);
        // Short keys keep byte order among themselves and before the long keys they start.
        assert_eq!(forms[0], b"a");
        assert_eq!(forms[1].len(), 4_095);
        assert_eq!(forms[2].len(), 4_096);
        assert_eq!(forms.last().map(Vec::as_slice), Some(&b"kl"[..]));
        // Equal forms only for equal keys: the two 6,000-byte keys differ only after 4 KiB.
        assert_ne!(sort_form(&long(6_000, b'a')), sort_form(&long(6_000, b'b')));
        for f in &forms {
            assert!(f.len() <= KEY_SHOWN_BYTES || f.len() == LONG_FORM_BYTES);
        }
    }

    #[test]
    fn long_keys_show_their_first_bytes_length_and_digest() {
        let mut key = "é".repeat(2_048).into_bytes(); // 4,096 bytes
        assert_eq!(form_text(&sort_form(&key)), key_text(&key), "4 KiB: whole");
        key.insert(0, b'x'); // 4,097: the cut falls inside the last 'é'
        let k = form_text(&sort_form(&key));
        assert_eq!(k.len, Some(4_097));
        assert_eq!(
            k.sha256.as_deref(),
            Some(
                Sha256::digest(&key)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
                    .as_str()
            )
        );
        assert!(k.text.starts_with("xé") && k.text.ends_with("\\xc3"));
        assert!(k.base64.is_some(), "escaped: the shown bytes in base64");
        // The ClickHouse reader's parts give the same form (hex in either case).
        let form = sort_form(&key).into_owned();
        let hex: String = form[KEY_SHOWN_BYTES + 8..]
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        assert_eq!(
            sort_form_from_parts(&key[..KEY_SHOWN_BYTES], 4_097, hex.as_bytes()),
            Some(form)
        );
        assert_eq!(sort_form_from_parts(b"abc", 3, b""), Some(b"abc".to_vec()));
        assert_eq!(sort_form_from_parts(b"abc", 4, b""), None);
        assert_eq!(
            sort_form_from_parts(&key[..100], 4_097, hex.as_bytes()),
            None
        );
        assert_eq!(
            sort_form_from_parts(&key[..KEY_SHOWN_BYTES], 4_097, b"zz"),
            None
        );
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
