//! The integration tests that need no external service, one test binary
//! (`cargo test --test offline`; one file with `cargo test --test offline corpus::`): the fixture
//! corpus, malformed input, the project's own fixtures, the Parquet output and its readers, a
//! test-only output through the pipeline, the report's prefix tree, the dump's memory with huge
//! keys (the binary's peak RSS). `parquet_readers` runs the
//! README's recipes with the Python readers when `scripts/test.sh` has set their interpreters
//! (skipped otherwise). `tests/alloc_bound.rs` stays a binary of its own: its counting global
//! allocator would see every other test's allocations.

#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod corpus;
mod fixtures_own;
mod huge_keys;
mod parquet_output;
mod parquet_readers;
mod pipeline_output;
mod report_prefix;
