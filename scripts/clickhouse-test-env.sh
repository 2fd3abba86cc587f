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
#       starts the servers and exports the variables below into the current shell; stop them
#       later with `clickhouse_test_env_stop`.
#
# Two engines are started, each also serving the native TCP protocol, both declaring the
# ClickHouse cluster `rdbinsight_test` of two shards (one per engine; no Keeper), for the
# `--on-cluster` tests. Exported:
#   RDBINSIGHT_TEST_CLICKHOUSE_URL         http://127.0.0.1:PORT of the first engine (shard 1)
#   RDBINSIGHT_TEST_CLICKHOUSE_SHARD_URLS  both engines' URLs, comma-separated, in shard order
#   RDBINSIGHT_TEST_CLICKHOUSE_CLUSTER     rdbinsight_test
#   RDBINSIGHT_TEST_CLICKHOUSE_STATE       the state dirs, comma-separated
#   RDBINSIGHT_TEST_CLICKHOUSE_PYTHON      the venv's python (tests start private engines)
#
# If RDBINSIGHT_TEST_CLICKHOUSE_URL is already set (your own ClickHouse), nothing is started
# (set the SHARD_URLS and CLUSTER variables too for the sharded tests).
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

    local free_port='import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    local tcp1 tcp2
    tcp1="$("$python" -c "$free_port")" && tcp2="$("$python" -c "$free_port")" || return 1
    local states=() pids=() i
    for i in 1 2; do
        local state tcp
        state="$(mktemp -d "${TMPDIR:-/tmp}/rdbinsight-clickhouse.XXXXXX")" || return 1
        tcp=$tcp1
        [ "$i" = 2 ] && tcp=$tcp2
        # setsid: its own process group, so Ctrl-C in the calling shell does not reach it.
        setsid "$venv/bin/python" "$root/scripts/clickhouse-server.py" run --state-dir "$state" \
            --tcp-port "$tcp" --cluster rdbinsight_test --shard-index "$i" \
            --shard "127.0.0.1:$tcp1" --shard "127.0.0.1:$tcp2" \
            >"$state.out" 2>"$state.log" </dev/null &
        pids+=($!)
        states+=("$state")
    done
    local urls=() k
    for k in 0 1; do
        local state=${states[$k]} pid=${pids[$k]}
        for i in $(seq 1 600); do
            if [ -s "$state/url" ]; then
                break
            fi
            if ! kill -0 "$pid" 2>/dev/null; then
                echo "clickhouse-test-env: a server failed to start:" >&2
                cat "$state.log" >&2
                _ch_stop_states "$venv" "$root" "${states[@]}"
                return 1
            fi
            sleep 0.1
        done
        if [ ! -s "$state/url" ]; then
            echo "clickhouse-test-env: a server did not become ready in 60 s" >&2
            cat "$state.log" >&2
            _ch_stop_states "$venv" "$root" "${states[@]}"
            return 1
        fi
        mv "$state.log" "$state/server.log" 2>/dev/null
        rm -f "$state.out"
        urls+=("$(cat "$state/url")")
    done
    RDBINSIGHT_TEST_CLICKHOUSE_URL="${urls[0]}"
    RDBINSIGHT_TEST_CLICKHOUSE_SHARD_URLS="${urls[0]},${urls[1]}"
    RDBINSIGHT_TEST_CLICKHOUSE_CLUSTER=rdbinsight_test
    RDBINSIGHT_TEST_CLICKHOUSE_STATE="${states[0]},${states[1]}"
    RDBINSIGHT_TEST_CLICKHOUSE_PYTHON="$venv/bin/python"
    export RDBINSIGHT_TEST_CLICKHOUSE_URL RDBINSIGHT_TEST_CLICKHOUSE_SHARD_URLS \
        RDBINSIGHT_TEST_CLICKHOUSE_CLUSTER RDBINSIGHT_TEST_CLICKHOUSE_STATE \
        RDBINSIGHT_TEST_CLICKHOUSE_PYTHON
    _CH_STARTED_VENV="$venv"
    _CH_ROOT="$root"
    echo "clickhouse-test-env: ClickHouse at $RDBINSIGHT_TEST_CLICKHOUSE_URL, shards $RDBINSIGHT_TEST_CLICKHOUSE_SHARD_URLS (state $RDBINSIGHT_TEST_CLICKHOUSE_STATE)" >&2
}

# _ch_stop_states VENV ROOT STATE...: stop the servers of these state dirs.
_ch_stop_states() {
    local venv=$1 root=$2 state
    shift 2
    for state in "$@"; do
        "$venv/bin/python" "$root/scripts/clickhouse-server.py" stop --state-dir "$state"
        rm -f "$state.out" "$state.log"
    done
}

clickhouse_test_env_stop() {
    if [ -n "${RDBINSIGHT_TEST_CLICKHOUSE_STATE:-}" ] && [ -n "${_CH_STARTED_VENV:-}" ]; then
        local states
        IFS=',' read -r -a states <<<"$RDBINSIGHT_TEST_CLICKHOUSE_STATE"
        _ch_stop_states "$_CH_STARTED_VENV" "$_CH_ROOT" "${states[@]}"
        unset RDBINSIGHT_TEST_CLICKHOUSE_URL RDBINSIGHT_TEST_CLICKHOUSE_SHARD_URLS \
            RDBINSIGHT_TEST_CLICKHOUSE_CLUSTER RDBINSIGHT_TEST_CLICKHOUSE_STATE \
            RDBINSIGHT_TEST_CLICKHOUSE_PYTHON _CH_STARTED_VENV
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
