//! The report in a real headless Chromium driven through chromedriver, one test binary
//! (`cargo test --test browser`; the timings with `cargo test --test browser report_browser --
//! --nocapture`): synthetic reports in depth, and a report of a real dump end to end.

#[path = "../common/mod.rs"]
mod common;

mod report_browser;
mod report_e2e;
