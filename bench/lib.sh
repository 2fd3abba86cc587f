# Shared by the bench scripts (sourced; needs `log` and `die`).

# The rdbinsight binary to time, as an absolute path: $BENCH_BIN, or a fresh
# `cargo build --release`. `$1` names the calling script in the log.
bench_binary() {
  local bin=${BENCH_BIN:-}
  if [ -z "$bin" ]; then
    log "$1: cargo build --release"
    cargo build --release --quiet || die "cargo build --release failed"
    bin=${CARGO_TARGET_DIR:-target}/release/rdbinsight
  fi
  [ -x "$bin" ] || die "rdbinsight binary not found at $bin"
  printf '%s\n' "$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
}
