#!/usr/bin/env bash
# Start a local ClickHouse (the real engine, from PyPI's chdb-core) for rdbinsight's tests.
#
# Two ways to use it:
#
#   scripts/clickhouse-test-env.sh cargo test --all-targets
#       starts the server, runs the command with RDBINSIGHT_TEST_CLICKHOUSE_URL set, stops the
#       server, exits with the command's status;
#
#   source scripts/clickhouse-test-env.sh
#       starts the server and exports RDBINSIGHT_TEST_CLICKHOUSE_URL and
#       RDBINSIGHT_TEST_CLICKHOUSE_STATE into the current shell; stop it later with
#       scripts/clickhouse-server.py stop --state-dir "$RDBINSIGHT_TEST_CLICKHOUSE_STATE"
#       (or `clickhouse_test_env_stop`).
#
# If RDBINSIGHT_TEST_CLICKHOUSE_URL is already set (your own ClickHouse), nothing is started.
#
# The venv (python3 -m venv + pip install --no-deps chdb-core==26.9.0, ~15 s, ~560 MB) is
# created once under target/chdb-venv (override with CHDB_VENV); it needs PyPI the first time.
# The server listens on a free 127.0.0.1 port; its data lives in a temp dir removed on stop;
# its log is in the state dir (server.log) until then.

_ch_sourced=0
(return 0 2>/dev/null) && _ch_sourced=1

_ch_main() {
    local root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" || return 1
    local venv="${CHDB_VENV:-$root/target/chdb-venv}"
    local python="${PYTHON:-python3}"
    local version=26.9.0

    if [ -n "${RDBINSIGHT_TEST_CLICKHOUSE_URL:-}" ]; then
        echo "clickhouse-test-env: using RDBINSIGHT_TEST_CLICKHOUSE_URL as set" >&2
        return 0
    fi

    if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('chdb-core') != '$version')" 2>/dev/null; then
        echo "clickhouse-test-env: installing chdb-core==$version into $venv" >&2
        "$python" -m venv "$venv" || return 1
        "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps "chdb-core==$version" || return 1
    fi

    local state
    state="$(mktemp -d "${TMPDIR:-/tmp}/rdbinsight-clickhouse.XXXXXX")" || return 1
    # setsid: its own process group, so Ctrl-C in the calling shell does not reach it.
    setsid "$venv/bin/python" "$root/scripts/clickhouse-server.py" run --state-dir "$state" \
        >"$state.out" 2>"$state.log" </dev/null &
    local pid=$!
    local i
    for i in $(seq 1 600); do
        if [ -s "$state/url" ]; then
            break
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "clickhouse-test-env: the server failed to start:" >&2
            cat "$state.log" >&2
            rm -rf "$state" "$state.out" "$state.log"
            return 1
        fi
        sleep 0.1
    done
    if [ ! -s "$state/url" ]; then
        echo "clickhouse-test-env: the server did not become ready in 60 s" >&2
        cat "$state.log" >&2
        "$venv/bin/python" "$root/scripts/clickhouse-server.py" stop --state-dir "$state"
        return 1
    fi
    mv "$state.log" "$state/server.log" 2>/dev/null
    rm -f "$state.out"
    RDBINSIGHT_TEST_CLICKHOUSE_URL="$(cat "$state/url")"
    RDBINSIGHT_TEST_CLICKHOUSE_STATE="$state"
    export RDBINSIGHT_TEST_CLICKHOUSE_URL RDBINSIGHT_TEST_CLICKHOUSE_STATE
    _CH_STARTED_VENV="$venv"
    _CH_ROOT="$root"
    echo "clickhouse-test-env: ClickHouse at $RDBINSIGHT_TEST_CLICKHOUSE_URL (state $state)" >&2
}

clickhouse_test_env_stop() {
    if [ -n "${RDBINSIGHT_TEST_CLICKHOUSE_STATE:-}" ] && [ -n "${_CH_STARTED_VENV:-}" ]; then
        "$_CH_STARTED_VENV/bin/python" "$_CH_ROOT/scripts/clickhouse-server.py" stop \
            --state-dir "$RDBINSIGHT_TEST_CLICKHOUSE_STATE"
        unset RDBINSIGHT_TEST_CLICKHOUSE_URL RDBINSIGHT_TEST_CLICKHOUSE_STATE _CH_STARTED_VENV
    fi
}

if [ "$_ch_sourced" = 1 ]; then
    _ch_main
else
    set -u
    _ch_main || exit 1
    if [ "$#" -eq 0 ]; then
        echo "clickhouse-test-env: no command given; source this script to keep the server" >&2
        clickhouse_test_env_stop
        exit 2
    fi
    trap clickhouse_test_env_stop EXIT
    trap 'exit 130' INT TERM
    "$@"
    exit $?
fi
