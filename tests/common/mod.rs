//! Helpers shared by the integration tests (each test crate uses a part of them).
#![allow(dead_code)]

pub mod browser;
pub mod ch;
pub mod cli;
pub mod codis;
pub mod dumps;
pub mod fake_server;
pub mod fixtures;
pub mod output;
pub mod pki;
pub mod redis;
pub mod report_data;
pub mod report_ref;
pub mod resp;
