//! How the server encodes one element in RAM: integer detection, listpack and ziplist entry
//! sizes, sds sizes, and the text a zset score becomes.

/// Redis's `string2ll`: the integer a string is the canonical decimal form of (no sign but
/// `-`, no leading zeros, no spaces, at most 20 bytes, within `i64`).
#[inline]
pub fn string2ll(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if negative {
        if v > 1u64 << 63 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else {
        i64::try_from(v).ok()
    }
}

/// Decimal digits of `v` with its sign (the length of `ll2string`).
#[inline]
pub fn decimal_len(v: i64) -> u64 {
    let digits = v.unsigned_abs().checked_ilog10().map_or(1, |d| d + 1);
    u64::from(v < 0) + u64::from(digits)
}

/// Bytes of a listpack entry's back-length field for an entry of `len` bytes.
#[inline]
fn lp_backlen(len: u64) -> u64 {
    if len <= 127 {
        1
    } else if len < 16383 {
        2
    } else if len < 2_097_151 {
        3
    } else if len < 268_435_455 {
        4
    } else {
        5
    }
}

/// Bytes of a listpack entry holding the integer `v` (encoding, data and back-length).
#[inline]
pub fn lp_int_entry(v: i64) -> u64 {
    let enc = match v {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8_388_608..=8_388_607 => 4,
        -2_147_483_648..=2_147_483_647 => 5,
        _ => 9,
    };
    enc + lp_backlen(enc)
}

/// Bytes of a listpack entry holding a string of `len` bytes that is not an integer.
#[inline]
pub fn lp_str_entry(len: u64) -> u64 {
    let enc = if len < 64 {
        1 + len
    } else if len < 4096 {
        2 + len
    } else {
        5 + len
    };
    enc + lp_backlen(enc)
}

/// Bytes of a listpack entry appended from a string (`lpAppend` stores integer-looking
/// strings as integers): `int` is the string's `string2ll` value.
#[inline]
pub fn lp_entry(len: u64, int: Option<i64>) -> u64 {
    match int {
        Some(v) => lp_int_entry(v),
        None => lp_str_entry(len),
    }
}

/// An empty listpack: 4 bytes of total size, 2 of count, the 0xFF terminator.
pub const LP_EMPTY: u64 = 7;
/// An empty ziplist: 4 bytes of total size, 4 of tail offset, 2 of count, the terminator.
pub const ZL_EMPTY: u64 = 11;

/// Bytes of a ziplist entry (after a previous entry of `prev_len` bytes) holding a string of
/// `len` bytes, or the integer `int` (`zipTryEncoding` accepts integer strings of ≤ 32 bytes).
#[inline]
pub fn zl_entry(prev_len: u64, len: u64, int: Option<i64>) -> u64 {
    let prevlen = if prev_len < 254 { 1 } else { 5 };
    let body = match int {
        Some(v) => {
            1 + match v {
                0..=12 => 0,
                -128..=127 => 1,
                -32768..=32767 => 2,
                -8_388_608..=8_388_607 => 3,
                -2_147_483_648..=2_147_483_647 => 4,
                _ => 8,
            }
        }
        None if len <= 63 => 1 + len,
        None if len <= 16383 => 2 + len,
        None => 5 + len,
    };
    prevlen + body
}

/// Header bytes of an sds string of `len` bytes (`sdsReqType`; an empty string gets the
/// 8-bit header, type 5 cannot grow). Valkey 8 picks the smallest header whose type can hold
/// the whole allocation.
#[inline]
pub fn sds_header(len: u64, valkey: bool) -> u64 {
    if len < 32 {
        return if len == 0 { 3 } else { 1 };
    }
    if valkey {
        // A type holds lengths up to its maximum less the header and the NUL.
        if len < 256 - 3 {
            3
        } else if len < 65536 - 5 {
            5
        } else if len < (1u64 << 32) - 9 {
            9
        } else {
            17
        }
    } else if len < 256 {
        3
    } else if len < 65536 {
        5
    } else if len < 1u64 << 32 {
        9
    } else {
        17
    }
}

/// Redis's `double2ll`: the integer a score is, when it is one and within ±2^62.
#[inline]
pub fn double2ll(d: f64) -> Option<i64> {
    const LIMIT: f64 = (i64::MAX / 2) as f64;
    if !(-LIMIT..=LIMIT).contains(&d) {
        return None;
    }
    let ll = d as i64;
    (ll as f64 == d).then_some(ll)
}

/// How a server prints a non-integral score (`d2string`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreText {
    /// `%.17g` (Redis ≤ 7.0).
    Printf17g,
    /// `fpconv_dtoa`: the shortest round-trip digits (Redis ≥ 7.2, Valkey).
    Shortest,
}

/// Length of `d2string(score)` for a score that [`double2ll`] rejected (inf, -inf and
/// fractions; integral scores are stored as integers).
pub fn score_text_len(d: f64, style: ScoreText) -> u64 {
    if d.is_nan() {
        return 3;
    }
    if d.is_infinite() {
        return if d < 0.0 { 4 } else { 3 };
    }
    if d == 0.0 {
        return if d.is_sign_negative() { 2 } else { 1 };
    }
    let neg = u64::from(d < 0.0);
    match style {
        ScoreText::Printf17g => {
            let (digits, exp) = sci_digits(&format!("{:.16e}", d.abs()));
            let nd = digits.trim_end_matches('0').len().max(1) as i64;
            let body = if !(-4..17).contains(&exp) {
                // d.ddde±XX, at least two exponent digits.
                nd + i64::from(nd > 1) + 2 + exp_digits(exp).max(2)
            } else if exp >= 0 {
                let int_digits = exp + 1;
                let decimals = (nd - int_digits).max(0);
                int_digits + if decimals > 0 { 1 + decimals } else { 0 }
            } else {
                2 + (-exp - 1) + nd
            };
            neg + body as u64
        }
        ScoreText::Shortest => {
            let (digits, exp) = sci_digits(&format!("{:e}", d.abs()));
            let nd = digits.len() as i64;
            // The value is digits × 10^k.
            let k = exp - (nd - 1);
            let e = (k + nd - 1).abs();
            let body = if k >= 0 && e < nd + 7 {
                nd + k
            } else if k < 0 && (k > -7 || e < 4) {
                let offset = nd + k;
                if offset <= 0 { nd + 2 - offset } else { nd + 1 }
            } else {
                let nd = nd.min(18 - neg as i64);
                nd + i64::from(nd > 1) + 2 + exp_digits(e)
            };
            neg + body as u64
        }
    }
}

/// The mantissa digits (without the point) and the exponent of Rust's `{:e}` output.
fn sci_digits(s: &str) -> (String, i64) {
    let (mantissa, exp) = s.split_once('e').unwrap_or((s, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    (digits, exp.parse().unwrap_or(0))
}

fn exp_digits(e: i64) -> i64 {
    let e = e.abs();
    if e >= 100 {
        3
    } else if e >= 10 {
        2
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string2ll_is_redis_canonical() {
        assert_eq!(string2ll(b"0"), Some(0));
        assert_eq!(string2ll(b"-1"), Some(-1));
        assert_eq!(string2ll(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(string2ll(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"007",
            b"+5",
            b" 1",
            b"1 ",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"123456789012345678901",
            b"1a",
        ] {
            assert_eq!(string2ll(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn listpack_entries() {
        assert_eq!(lp_entry(1, Some(5)), 2);
        assert_eq!(lp_entry(3, Some(-100)), 3);
        assert_eq!(lp_entry(5, Some(40_000)), 5);
        assert_eq!(lp_entry(10, None), 12);
        assert_eq!(lp_entry(63, None), 65);
        assert_eq!(lp_entry(64, None), 67);
        // 2 + 126 = 128 bytes of entry need a 2-byte back-length.
        assert_eq!(lp_entry(126, None), 130);
        assert_eq!(decimal_len(-10), 3);
        assert_eq!(decimal_len(0), 1);
        assert_eq!(decimal_len(9), 1);
        assert_eq!(decimal_len(i64::MIN), 20);
        assert_eq!(decimal_len(i64::MAX), 19);
        assert_eq!(decimal_len(-1_000_000), 8);
    }

    #[test]
    fn sds_headers() {
        assert_eq!(sds_header(0, false), 3);
        assert_eq!(sds_header(31, false), 1);
        assert_eq!(sds_header(255, false), 3);
        assert_eq!(sds_header(256, false), 5);
        assert_eq!(sds_header(253, true), 5);
        assert_eq!(sds_header(252, true), 3);
    }

    #[test]
    fn score_texts() {
        use ScoreText::*;
        // 0.1 → "0.10000000000000001" with %.17g, "0.1" shortest.
        assert_eq!(score_text_len(0.1, Printf17g), 19);
        assert_eq!(score_text_len(0.1, Shortest), 3);
        assert_eq!(score_text_len(1.5, Printf17g), 3);
        assert_eq!(score_text_len(-2.25, Shortest), 5);
        assert_eq!(score_text_len(f64::INFINITY, Shortest), 3);
        assert_eq!(score_text_len(f64::NEG_INFINITY, Printf17g), 4);
        // 1e-7 → "9.9999999999999995e-08" (%.17g), "1e-7" (fpconv).
        assert_eq!(score_text_len(1e-7, Printf17g), 22);
        assert_eq!(score_text_len(1e-7, Shortest), 4);
        // 1e20 is integral but beyond double2ll: "1e+20" both ways.
        assert_eq!(double2ll(1e20), None);
        assert_eq!(score_text_len(1e20, Printf17g), 5);
        assert_eq!(score_text_len(1e20, Shortest), 5);
        assert_eq!(double2ll(3.0), Some(3));
    }
}
