//! What a report is made with: `--top`, `--prefix-threshold`, `--delimiter`, `--memory-limit`,
//! validated once here so the readers never re-check them.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::model::{DEFAULT_PREFIX_THRESHOLD_PCT, DEFAULT_TOP, Measure};

/// Largest `--top`: the lists are held in memory and shown in one page.
pub const MAX_TOP: u64 = 100_000;
/// Default `--memory-limit`: 256 MiB.
pub const DEFAULT_MEMORY_LIMIT: u64 = 256 << 20;
/// Smallest `--memory-limit` accepted (tests use tiny limits to force spilling).
pub const MIN_MEMORY_LIMIT: u64 = 4 << 10;

/// `--prefix-threshold`: a percentage in (0, 100] with at most 6 decimals, kept as an exact
/// integer count of millionths of a percent so the threshold in bytes is computed without
/// floating point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixThreshold {
    /// The percentage × 1,000,000 (1 .. 100,000,000).
    micro_pct: u64,
}

const MICRO: u64 = 1_000_000;

impl PrefixThreshold {
    /// `max(1, floor(total × pct / 100))`; 0 when `total` is 0 (nothing to show).
    pub fn bytes(&self, total: u64) -> u64 {
        if total == 0 {
            return 0;
        }
        let t = u128::from(total) * u128::from(self.micro_pct) / u128::from(100 * MICRO);
        // t <= total because micro_pct <= 100 * MICRO.
        (t as u64).max(1)
    }

    /// The normalized decimal (`"1"`, `"0.5"`, `"12.000001"`).
    pub fn normalized(&self) -> String {
        let int = self.micro_pct / MICRO;
        let frac = self.micro_pct % MICRO;
        if frac == 0 {
            return int.to_string();
        }
        let digits = format!("{frac:06}");
        format!("{int}.{}", digits.trim_end_matches('0'))
    }
}

impl Default for PrefixThreshold {
    fn default() -> Self {
        DEFAULT_PREFIX_THRESHOLD_PCT
            .parse()
            .expect("the default threshold is valid")
    }
}

impl fmt::Display for PrefixThreshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized())
    }
}

impl FromStr for PrefixThreshold {
    type Err = String;

    /// Digits, optionally `.` and 1–6 more digits; greater than 0 and at most 100.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "'{s}' is not a percentage: expected a decimal number greater than 0 and at most \
                 100 with at most 6 decimals, e.g. 1 or 0.25"
            )
        };
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (s, None),
        };
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let frac = frac.unwrap_or("");
        if s.contains('.') && frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if frac.len() > 6 {
            return Err(format!(
                "'{s}' has more than 6 decimals (the threshold is exact to 0.000001 percent)"
            ));
        }
        let int = int.trim_start_matches('0');
        if int.len() > 3 {
            return Err(format!("'{s}' is more than 100 percent"));
        }
        let int: u64 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let frac_micro: u64 = if frac.is_empty() {
            0
        } else {
            let v: u64 = frac.parse().map_err(|_| bad())?;
            v * 10u64.pow(6 - frac.len() as u32)
        };
        let micro_pct = int * MICRO + frac_micro;
        if micro_pct == 0 {
            return Err(format!("'{s}' must be greater than 0 percent"));
        }
        if micro_pct > 100 * MICRO {
            return Err(format!("'{s}' is more than 100 percent"));
        }
        Ok(PrefixThreshold { micro_pct })
    }
}

/// `--delimiter CHARS`: each character (as its UTF-8 bytes) is a delimiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delimiters {
    chars: String,
    seqs: Vec<Vec<u8>>,
}

impl Delimiters {
    /// The characters as given.
    pub fn as_str(&self) -> &str {
        &self.chars
    }

    /// The length of `prefix` cut back to just after its last delimiter (0 without one).
    pub fn cut(&self, prefix: &[u8]) -> usize {
        (1..=prefix.len())
            .rev()
            .find(|&end| self.seqs.iter().any(|d| prefix[..end].ends_with(d)))
            .unwrap_or(0)
    }
}

impl FromStr for Delimiters {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err(
                "the delimiter list is empty: give one or more characters, e.g. ':'".into(),
            );
        }
        let mut seqs: Vec<Vec<u8>> = s.chars().map(|c| c.to_string().into_bytes()).collect();
        seqs.sort();
        seqs.dedup();
        Ok(Delimiters {
            chars: s.to_string(),
            seqs,
        })
    }
}

/// `--memory-limit`: a byte count with an optional binary unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimit(pub u64);

impl Default for MemoryLimit {
    fn default() -> Self {
        MemoryLimit(DEFAULT_MEMORY_LIMIT)
    }
}

impl fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0)
    }
}

impl FromStr for MemoryLimit {
    type Err = String;

    /// `268435456`, `256MiB`, `256M`, `1GiB`, `64KiB`, `512k` (units are binary: K = 1024,
    /// case-insensitive, optional `iB`/`B`); at least [`MIN_MEMORY_LIMIT`].
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("'{s}' is not a memory size: expected e.g. 256MiB, 1GiB, 65536 (binary units)")
        };
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        if num.is_empty() {
            return Err(bad());
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        let shift = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "kb" | "kib" => 10,
            "m" | "mb" | "mib" => 20,
            "g" | "gb" | "gib" => 30,
            "t" | "tb" | "tib" => 40,
            _ => return Err(bad()),
        };
        let bytes = n
            .checked_mul(1u64 << shift)
            .ok_or_else(|| format!("'{s}' is too large"))?;
        if bytes < MIN_MEMORY_LIMIT {
            return Err(format!(
                "'{s}' is below the minimum of {MIN_MEMORY_LIMIT} bytes (4KiB)"
            ));
        }
        Ok(MemoryLimit(bytes))
    }
}

/// Everything a report is made with besides where the batch comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportOptions {
    /// `--top`: 1..=[`MAX_TOP`].
    pub top: u64,
    pub prefix_threshold: PrefixThreshold,
    pub delimiter: Option<Delimiters>,
    /// `--measure`: what the tree and the rankings use (see `model::Memory::measure`).
    pub measure: Measure,
    /// Parquet only: the budget of the key sort (see `spill`).
    pub memory_limit: MemoryLimit,
    /// Parquet only: where sorted runs are spilled (default: the system temp dir).
    pub spill_dir: Option<PathBuf>,
    /// `--baseline`: the batch to compare with (a slug or RFC 3339 as `--batch`, or
    /// `previous`); adds [`super::model::Changes`].
    pub baseline: Option<String>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            top: DEFAULT_TOP,
            prefix_threshold: PrefixThreshold::default(),
            delimiter: None,
            measure: Measure::default(),
            memory_limit: MemoryLimit::default(),
            spill_dir: None,
            baseline: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pct(s: &str) -> Result<PrefixThreshold, String> {
        s.parse()
    }

    #[test]
    fn threshold_parsing() {
        for (s, norm) in [
            ("1", "1"),
            ("01", "1"),
            ("1.0", "1"),
            ("0.5", "0.5"),
            ("0.50", "0.5"),
            ("100", "100"),
            ("100.000000", "100"),
            ("0.000001", "0.000001"),
            ("12.345678", "12.345678"),
            ("007.25", "7.25"),
        ] {
            assert_eq!(pct(s).map(|p| p.normalized()), Ok(norm.to_string()), "{s}");
        }
        for s in [
            "",
            "0",
            "0.0",
            "0.0000001",
            "100.000001",
            "101",
            "1000",
            "-1",
            "+1",
            "1e2",
            ".5",
            "5.",
            "1.2.3",
            " 1",
            "1 ",
            "abc",
            "1,5",
            "NaN",
            "inf",
            "0x10",
            "99999999999999999999999",
        ] {
            assert!(pct(s).is_err(), "{s:?} accepted");
        }
        assert!(pct("1.1234567").unwrap_err().contains("6 decimals"));
        assert!(pct("0").unwrap_err().contains("greater than 0"));
    }

    #[test]
    fn threshold_bytes_is_exact() {
        let p = pct("1").unwrap();
        assert_eq!(p.bytes(0), 0);
        assert_eq!(p.bytes(1), 1, "max(1, ...)");
        assert_eq!(p.bytes(99), 1);
        assert_eq!(p.bytes(199), 1);
        assert_eq!(p.bytes(200), 2);
        assert_eq!(p.bytes(u64::MAX), u64::MAX / 100);
        assert_eq!(pct("100").unwrap().bytes(u64::MAX), u64::MAX);
        // 0.1 is not exact in binary floating point: 1000 * 0.1 / 100 must be exactly 1.
        assert_eq!(pct("0.1").unwrap().bytes(1000), 1);
        assert_eq!(pct("0.1").unwrap().bytes(999), 1);
        assert_eq!(pct("0.1").unwrap().bytes(1999), 1);
        assert_eq!(pct("0.1").unwrap().bytes(2000), 2);
        assert_eq!(pct("33.333333").unwrap().bytes(300_000_000), 99_999_999);
        assert_eq!(pct("0.000001").unwrap().bytes(100_000_000), 1);
        assert_eq!(pct("0.000001").unwrap().bytes(200_000_000), 2);
    }

    #[test]
    fn delimiters() {
        let d: Delimiters = ":/".parse().unwrap();
        assert_eq!(d.cut(b"user:1:name"), 7);
        assert_eq!(d.cut(b"user:"), 5);
        assert_eq!(d.cut(b"a/b:c"), 4);
        assert_eq!(d.cut(b"abc"), 0);
        assert_eq!(d.cut(b""), 0);
        let d: Delimiters = "→".parse().unwrap();
        assert_eq!(d.cut("a→b".as_bytes()), 4);
        // A prefix ending inside the delimiter's bytes has no delimiter there.
        assert_eq!(d.cut(&"a→".as_bytes()[..3]), 0);
        assert!("".parse::<Delimiters>().is_err());
    }

    #[test]
    fn memory_limits() {
        let m = |s: &str| s.parse::<MemoryLimit>().map(|m| m.0);
        assert_eq!(m("256MiB"), Ok(256 << 20));
        assert_eq!(m("256m"), Ok(256 << 20));
        assert_eq!(m("1GiB"), Ok(1 << 30));
        assert_eq!(m("64KiB"), Ok(64 << 10));
        assert_eq!(m("4096"), Ok(4096));
        assert_eq!(m("4 KiB"), Ok(4096));
        assert!(m("4095").is_err());
        assert!(m("").is_err());
        assert!(m("MiB").is_err());
        assert!(m("1.5GiB").is_err());
        assert!(m("-1").is_err());
        assert!(m("99999999999TiB").is_err());
        assert!(m("10 parsecs").is_err());
    }
}
