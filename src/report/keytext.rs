//! Raw key bytes made displayable ([`KeyText`]) and their sort forms.
//!
//! Both are pure functions of their input, so the same key gives the same text from
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
