//! Untrusted lengths never size an allocation: a counting global allocator records the largest
//! single allocation while the parser reads inputs that claim enormous strings, keys, counts
//! and LZF sizes, and random mutations of valid files.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

mod common;

use common::fixtures::xorshift;
use rdbinsight::parser::{ParseOptions, RdbParser};

struct Counting;
static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only records the requested size.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same layout the caller passed, as GlobalAlloc requires.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Largest allocation allowed while parsing: the 1 MiB input window (grown by doubling) and
/// small buffers; nothing proportional to a claimed length.
const LIMIT: usize = 2 << 20;

fn parse(data: &[u8]) -> Result<usize, String> {
    let mut p = RdbParser::new(data, "t", ParseOptions::default());
    let mut n = 0;
    loop {
        match p.next_record() {
            Ok(Some(_)) => n += 1,
            Ok(None) => return Ok(n),
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn len64(n: u64) -> Vec<u8> {
    let mut v = vec![0x81];
    v.extend_from_slice(&n.to_be_bytes());
    v
}

fn file(body: &[u8]) -> Vec<u8> {
    let mut d = b"REDIS0011".to_vec();
    d.extend_from_slice(body);
    d
}

#[test]
fn huge_claims_allocate_nothing_big() {
    let huge = 1u64 << 40;
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    // A key claiming 1 TiB, then 4 bytes.
    let mut b = vec![0u8];
    b.extend(len64(huge));
    b.extend_from_slice(b"abcd");
    cases.push(("key 2^40", file(&b)));
    // A string value claiming 1 TiB.
    let mut b = vec![0u8, 1, b'k'];
    b.extend(len64(huge));
    b.extend_from_slice(b"abcd");
    cases.push(("value 2^40", file(&b)));
    // An LZF key claiming 2^40 bytes from 5 compressed bytes.
    let mut b = vec![0u8, 0xC3, 5];
    b.extend(len64(huge));
    b.extend_from_slice(&[4, b'a', b'b', b'c', b'd']);
    cases.push(("lzf key 2^40", file(&b)));
    // An LZF key claiming a plausible size whose compressed bytes never arrive.
    let mut b = vec![0u8, 0xC3];
    b.extend(len64(huge));
    b.extend(len64(huge * 80));
    cases.push(("lzf key clen 2^40", file(&b)));
    // Sets, hashes, lists and quicklists claiming 2^62 members.
    for t in [1u8, 2, 4, 14, 18] {
        let mut b = vec![t, 1, b'k'];
        b.extend(len64(1 << 62));
        cases.push(("count 2^62", file(&b)));
    }
    // A listpack set whose blob claims 2^40 bytes.
    let mut b = vec![20u8, 1, b'k'];
    b.extend(len64(huge));
    b.extend_from_slice(&[0; 16]);
    cases.push(("listpack 2^40", file(&b)));
    // A compressed listpack claiming 2^40 decompressed bytes.
    let mut b = vec![20u8, 1, b'k', 0xC3, 3];
    b.extend(len64(huge));
    b.extend_from_slice(&[1, 0, 0]);
    cases.push(("lzf listpack 2^40", file(&b)));
    for (name, data) in cases {
        LARGEST.store(0, Ordering::Relaxed);
        let result = parse(&data);
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(result.is_err(), "{name}: accepted");
        assert!(
            largest <= LIMIT,
            "{name}: allocated {largest} bytes at once"
        );
    }
}

#[test]
fn random_mutations_stay_bounded() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let seeds: Vec<Vec<u8>> = [
        "r7-hashes.rdb",
        "r7-streams.rdb",
        "r7-lists.rdb",
        "r7-strings.rdb",
    ]
    .iter()
    .filter_map(|f| std::fs::read(dir.join(f)).ok())
    .collect();
    assert!(!seeds.is_empty(), "own fixtures missing");
    let mut rnd = xorshift(0x2545F4914F6CDD1Du64);
    for i in 0..2000 {
        let mut data = seeds[i % seeds.len()].clone();
        for _ in 0..1 + rnd() % 6 {
            let at = 9 + (rnd() as usize) % (data.len() - 9);
            data[at] = match rnd() % 4 {
                0 => 0x81, // 64-bit length marker
                1 => 0xFF,
                _ => rnd() as u8,
            };
        }
        LARGEST.store(0, Ordering::Relaxed);
        let _ = parse(&data);
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(
            largest <= LIMIT,
            "mutation {i}: allocated {largest} bytes at once"
        );
    }
}
