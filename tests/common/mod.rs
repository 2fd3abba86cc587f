//! Helpers shared by the integration tests (each test crate uses a part of them).
#![allow(dead_code)]

pub mod ch;
pub mod codis;
pub mod fixtures;
pub mod output;
pub mod redis;
