#!/usr/bin/env python3
"""A throwaway ClickHouse HTTP server for rdbinsight's tests, from PyPI's `chdb-core` wheel.

`chdb-core` embeds a full ClickHouse (26.9) as a Python extension. Its `query()` runs
clickhouse-local in-process; `SYSTEM START LISTEN HTTP` makes that embedded engine serve the
regular HTTP interface on ClickHouse's own threads, for as long as the query runs. The query
then blocks reading a FIFO (`SELECT count() FROM file('<fifo>', 'LineAsString')`); writing a
line to the FIFO ends the query, and the server with it.

Usage:
    clickhouse-server.py run  [--port N] [--host H] [--state-dir DIR] [--ready-timeout S]
                              [--tcp-port N --cluster NAME --shard HOST:PORT... --shard-index I]
    clickhouse-server.py stop --state-dir DIR [--keep]

With --tcp-port the engine also serves the native TCP protocol on that port, and --cluster
declares a ClickHouse cluster in `remote_servers`: one shard (of one replica) per --shard
(native HOST:PORT), in order, so that several engines started this way reach each other
(`Distributed` tables, `clusterAllReplicas`). The macros are {shard} = --shard-index and
{replica} = r<shard-index>. There is no Keeper: `ON CLUSTER` DDL and Replicated tables do not
work on such a cluster.

`run` stays in the foreground until stopped; once the server answers /ping it prints its URL
(one line on stdout) and writes the state dir:
    DIR/pid         this process's pid
    DIR/fifo        write a line here to stop the server
    DIR/url         http://HOST:PORT
    DIR/config.xml  the server config (listen_host, http_port, timezone)
    DIR/data/       the server's data (databases, parts); temporary, removed by `stop`
Without --state-dir, a fresh temp dir is created (its path is printed to stderr).
Without --port, a free port is picked. `stop` ends the server and removes DIR (unless --keep).

The interpreter must be able to find the wheel: run this with the venv's python (see
scripts/clickhouse-test-env.sh), or set CHDB_SO to the path of `chdb/_chdb.abi3.so`.
The `chdb` package itself is never imported: its `__init__` opens an embedded session of its
own, which keeps `SYSTEM START LISTEN HTTP` from working.
"""

import argparse
import glob
import importlib.util
import os
import shutil
import signal
import socket
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.request

CHDB_VERSION = "26.9.0"


def find_chdb_so():
    """Path of the wheel's `_chdb.abi3.so` (CHDB_SO, else this interpreter's site-packages)."""
    explicit = os.environ.get("CHDB_SO")
    if explicit:
        return explicit
    dirs = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    for d in list(dirs) + sys.path:
        hits = glob.glob(os.path.join(d, "chdb", "_chdb*.so"))
        if hits:
            return hits[0]
    sys.exit(
        "clickhouse-server.py: chdb-core is not installed for this interpreter "
        f"({sys.executable}); pip install --no-deps chdb-core=={CHDB_VERSION} "
        "(scripts/clickhouse-test-env.sh does it) or set CHDB_SO"
    )


def load_chdb(so_path):
    """Load the extension module alone, without the `chdb` package around it."""
    # RTLD_DEEPBIND: the pybind11 stubs it depends on must resolve operator new/delete from
    # the module's own jemalloc, not from the interpreter's libstdc++.
    sys.setdlopenflags(os.RTLD_NOW | os.RTLD_DEEPBIND)
    # The extension's init function is PyInit__chdb, so the module must be called `_chdb`.
    spec = importlib.util.spec_from_file_location("_chdb", so_path)
    if spec is None or spec.loader is None:
        sys.exit(f"clickhouse-server.py: cannot load {so_path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port(host):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def ping(url, timeout=1.0):
    try:
        with urllib.request.urlopen(url + "/ping", timeout=timeout) as r:
            return r.status == 200 and r.read().strip() == b"Ok."
    except OSError:
        return False


def write_file(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def stop_via_fifo(fifo):
    """Write a line to the FIFO if the server is reading it. True if written."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # ENXIO: nobody reads it (not started yet, or already gone); ENOENT
        return False
    try:
        os.write(fd, b"stop\n")
    finally:
        os.close(fd)
    return True


def cmd_run(args):
    host = args.host
    port = args.port or free_port(host)
    if args.state_dir:
        state = os.path.abspath(args.state_dir)
        os.makedirs(state, exist_ok=True)
    else:
        state = tempfile.mkdtemp(prefix="rdbinsight-clickhouse-")
        print(f"clickhouse-server.py: state dir {state}", file=sys.stderr, flush=True)
    data = os.path.join(state, "data")
    if os.path.exists(data):
        shutil.rmtree(data)
    os.makedirs(data)
    fifo = os.path.join(state, "fifo")
    if os.path.exists(fifo):
        os.unlink(fifo)
    os.mkfifo(fifo)
    for stale in ("url", "pid"):
        if os.path.exists(os.path.join(state, stale)):
            os.unlink(os.path.join(state, stale))

    # clickhouse-local reads config.xml from the working directory.
    extra = ""
    if args.tcp_port:
        extra += f"  <tcp_port>{args.tcp_port}</tcp_port>\n"
    if args.cluster:
        shards = ""
        for shard in args.shard:
            shard_host, _, shard_port = shard.rpartition(":")
            shards += (
                "      <shard><replica>"
                f"<host>{shard_host}</host><port>{shard_port}</port>"
                "</replica></shard>\n"
            )
        extra += (
            f"  <remote_servers>\n    <{args.cluster}>\n{shards}    </{args.cluster}>\n"
            "  </remote_servers>\n"
            f"  <macros><shard>{args.shard_index}</shard><replica>r{args.shard_index}</replica></macros>\n"
        )
    write_file(
        os.path.join(state, "config.xml"),
        "<clickhouse>\n"
        f"  <listen_host>{host}</listen_host>\n"
        f"  <http_port>{port}</http_port>\n"
        f"{extra}"
        "  <timezone>UTC</timezone>\n"
        "</clickhouse>\n",
    )
    os.chdir(state)
    chdb = load_chdb(find_chdb_so())
    write_file(os.path.join(state, "pid"), f"{os.getpid()}\n")
    url = f"http://{host}:{port}"

    result = {}

    def serve():
        try:
            listen = "SYSTEM START LISTEN HTTP; "
            if args.tcp_port:
                listen += "SYSTEM START LISTEN TCP; "
            sql = listen + f"SELECT count() FROM file('{fifo}', 'LineAsString')"
            result["res"] = chdb.query(sql, "CSV", path=data)
        except BaseException as e:  # reported by the main thread
            result["err"] = e

    server = threading.Thread(target=serve, name="clickhouse", daemon=True)
    server.start()

    deadline = time.monotonic() + args.ready_timeout
    while not ping(url):
        if not server.is_alive():
            sys.exit(f"clickhouse-server.py: the server ended before it answered: {result}")
        if time.monotonic() > deadline:
            stop_via_fifo(fifo)
            sys.exit(f"clickhouse-server.py: {url}/ping did not answer in {args.ready_timeout}s")
        time.sleep(0.05)
    write_file(os.path.join(state, "url"), url + "\n")
    print(url, flush=True)

    # SIGTERM/SIGINT stop the server the same way `stop` does.
    def on_signal(signum, _frame):
        stop_via_fifo(fifo)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while server.is_alive():
        server.join(0.2)
    if "err" in result:
        sys.exit(f"clickhouse-server.py: the server query failed: {result['err']}")
    return 0


def cmd_stop(args):
    state = os.path.abspath(args.state_dir)
    fifo = os.path.join(state, "fifo")
    pid = None
    try:
        with open(os.path.join(state, "pid")) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        pass

    def alive():
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True

    stop_via_fifo(fifo)
    deadline = time.monotonic() + 10
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive():
        print(f"clickhouse-server.py: pid {pid} did not stop; killing it", file=sys.stderr)
        os.kill(pid, signal.SIGKILL)
    if not args.keep:
        shutil.rmtree(state, ignore_errors=True)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run the server in the foreground")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=0, help="default: a free port")
    run.add_argument("--state-dir", help="default: a new temp dir")
    run.add_argument("--ready-timeout", type=float, default=60.0)
    run.add_argument("--tcp-port", type=int, default=0, help="also serve native TCP here")
    run.add_argument("--cluster", help="declare this cluster in remote_servers")
    run.add_argument("--shard", action="append", default=[], help="HOST:PORT (native), repeatable")
    run.add_argument("--shard-index", type=int, default=1, help="this engine's {shard} macro")
    stop = sub.add_parser("stop", help="stop a server started with `run`")
    stop.add_argument("--state-dir", required=True)
    stop.add_argument("--keep", action="store_true", help="keep the state dir (logs, data)")
    args = p.parse_args()
    return cmd_run(args) if args.cmd == "run" else cmd_stop(args)


if __name__ == "__main__":
    sys.exit(main())
