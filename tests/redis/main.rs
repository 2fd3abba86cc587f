//! The integration tests against real `redis-server` processes (and fake servers), one test
//! binary (`cargo test --test redis`; one file with `cargo test --test redis tls::`): standalone,
//! cluster, Codis and TLS sources, dumps end to end, and the operator-facing behaviour of the
//! binary (exit codes, logs, metrics, bars in a real terminal through tmux), and `mem_size`
//! against five real servers (`memory`).

#[path = "../common/mod.rs"]
mod common;

mod cluster;
mod codis;
mod live_e2e;
mod memory;
mod operator;
mod standalone;
mod tls;
