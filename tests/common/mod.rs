//! Helpers shared by the integration tests (each test crate uses a part of them).
#![allow(dead_code)]

pub mod cli;
pub mod codis;
pub mod fake_server;
pub mod fixtures;
pub mod output;
pub mod pki;
pub mod redis;
