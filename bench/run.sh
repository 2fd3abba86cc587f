#!/usr/bin/env bash
# Benchmark rdbinsight against md5sum on RDB datasets built by ../shared/bench/make-dataset.sh.
#
#   bash bench/run.sh                    # mixed 500k keys (bench-data/mixed-500k.rdb)
#   BENCH_SIZE=5000000 bash bench/run.sh # mixed 5M keys instead (bench-data/mixed-5m.rdb, ~1.9 GB)
#   BENCH_SIZE=500000,5000000 BENCH_BIG=1 bash bench/run.sh   # several mixed sizes plus `big`
#   bash bench/run.sh mixed-500k big     # explicit dataset names (mixed-<N|Nk|Nm>, big, huge-keys)
#
# Environment:
#   BENCH_SIZE     mixed key counts, comma-separated (default 500000)
#   BENCH_BIG      1 = also the `big` dataset (~0.9 GB of huge values)
#   BENCH_RUNS     runs per mode; the fastest wall time and the largest RSS are reported (default 1)
#   BENCH_MODES    modes to run (default "md5sum redis-check-rdb jsonl null parquet clickhouse")
#   BENCH_BIN      use this rdbinsight binary and skip `cargo build --release`
#   BENCH_BIN_B    a second rdbinsight binary (e.g. the previous build): every rdbinsight mode
#                  also runs it, alternating run by run with the first, and prints B's row and
#                  the ratio B/A of the best wall times and of the peak RSS
#   BENCH_ARGS_B   extra `dump` flags for B (e.g. "--no-memory" to time the same binary without
#                  the memory model: BENCH_BIN_B=$BENCH_BIN BENCH_ARGS_B=--no-memory)
#   BENCH_DATA     dataset directory (default bench-data, gitignored)
#   BENCH_SHARED   directory of make-dataset.sh (default ../shared/bench)
#   BENCH_VERIFY   0 = do not re-run into-jsonl once to count its records against the key count
#   BENCH_KEEP_BACKTRACE  1 = keep RUST_BACKTRACE/RUST_LIB_BACKTRACE (unset by default)
#   RDBINSIGHT_TEST_CLICKHOUSE_URL  http://host:8123 (optionally with user:pass@); enables `clickhouse`
#
# Missing datasets are built first (and their build time recorded in bench-data/NAME.gen.txt).
# A mode whose command fails is reported as SKIPPED with the reason; the script carries on.
# Results are printed as a table and appended to bench-data/results.tsv.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
data=${BENCH_DATA:-bench-data}
shared=${BENCH_SHARED:-../shared/bench}
runs=${BENCH_RUNS:-1}
modes=${BENCH_MODES:-md5sum redis-check-rdb jsonl null parquet clickhouse}
mkdir -p "$data"

log() { printf '%s\n' "$*" >&2; }
calc() { awk "BEGIN { printf \"%.6f\", $* }"; }     # calc '1 / 3'
lt() { awk "BEGIN { exit !($1 < $2) }"; }              # lt A B: A < B
die() { log "bench: $*"; exit 1; }

# ---------------------------------------------------------------- tools
if [ ! -x /usr/bin/time ]; then
  log "bench: /usr/bin/time missing, installing the 'time' package"
  if [ "$(id -u)" = 0 ]; then apt-get install -y time >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y time >/dev/null 2>&1; }; fi
  [ -x /usr/bin/time ] || die "/usr/bin/time not available (apt-get install -y time)"
fi

# ---------------------------------------------------------------- datasets
size_name() { # 500000 -> 500k, 5000000 -> 5m, 1234 -> 1234
  local n=$1
  if [ $((n % 1000000)) -eq 0 ]; then echo "$((n / 1000000))m"
  elif [ $((n % 1000)) -eq 0 ]; then echo "$((n / 1000))k"
  else echo "$n"; fi
}
name_size() { # mixed-500k -> 500000
  local s=${1#mixed-}
  case $s in
    *m) echo $(( ${s%m} * 1000000 )) ;;
    *k) echo $(( ${s%k} * 1000 )) ;;
    *) echo "$s" ;;
  esac
}

datasets=()
if [ $# -gt 0 ]; then
  datasets=("$@")
else
  IFS=',' read -r -a sizes <<<"${BENCH_SIZE:-500000}"
  for n in "${sizes[@]}"; do
    [[ $n =~ ^[0-9]+$ ]] || die "BENCH_SIZE must be key counts, got '$n'"
    datasets+=("mixed-$(size_name "$n")")
  done
  [ "${BENCH_BIG:-0}" = 1 ] && datasets+=(big)
fi

make_dataset() { # NAME -> builds $data/NAME.rdb if missing
  local name=$1 file=$data/$1.rdb args=()
  [ -s "$file" ] && return 0
  if [ "$name" = huge-keys ]; then
    # 40 LZF keys of 10 MiB (~4.6 MB file): the byte bounds between parser and writer
    python3 "$(dirname "$0")/../scripts/gen-huge-keys.py" "$file" || die "gen-huge-keys.py failed"
    printf 'keys=40\n' >"$data/$name.gen.txt"
    return 0
  fi
  case $name in
    mixed-*) local n; n=$(name_size "$name"); [[ $n =~ ^[0-9]+$ ]] || die "bad dataset name $name"; args=(mixed "$n") ;;
    big) args=(big) ;;
    *) die "unknown dataset '$name' (mixed-<N|Nk|Nm>, big or huge-keys)" ;;
  esac
  [ -x "$shared/make-dataset.sh" ] || [ -f "$shared/make-dataset.sh" ] || die "$shared/make-dataset.sh not found (set BENCH_SHARED)"
  command -v redis-server >/dev/null || die "redis-server not found: apt-get install -y redis-server"
  log "bench: building $file with make-dataset.sh ${args[*]} (mixed 500k takes ~40 s, 5M ~10 min)"
  local tmp=$data/.partial-$name t0 t1 out
  rm -f "$tmp.rdb"
  t0=$(date +%s.%N)
  out=$(bash "$shared/make-dataset.sh" "${args[@]}" "$tmp") || { rm -f "$tmp.rdb"; die "make-dataset.sh ${args[*]} failed"; }
  t1=$(date +%s.%N)
  mv "$tmp.rdb" "$file" || die "cannot move $tmp.rdb"
  # the key count make-dataset.sh reports (INFO keyspace) is the number of records to expect
  local keys; keys=$(grep -o 'keys=[0-9]*' <<<"$out" | awk -F= '{s+=$2} END {print s+0}')
  printf 'seconds=%.1f\nkeys=%s\n%s\n' "$(calc "$t1 - $t0")" "$keys" "$out" >"$data/$name.gen.txt"
  log "bench: $out ($(head -1 "$data/$name.gen.txt"))"
}

record_count() { # number of keys in the file: make-dataset's report, else redis-check-rdb
  local name=$1 file=$data/$1.rdb k=""
  [ -f "$data/$name.gen.txt" ] && k=$(sed -n 's/^keys=//p' "$data/$name.gen.txt")
  if [ -z "$k" ] || [ "$k" = 0 ]; then
    if command -v redis-check-rdb >/dev/null; then
      k=$(redis-check-rdb "$file" 2>&1 | sed -n 's/.*\[info\] \([0-9]*\) keys read.*/\1/p')
      [ -n "$k" ] && printf 'keys=%s\n' "$k" >>"$data/$name.gen.txt"
    fi
  fi
  echo "${k:-}"
}

for d in "${datasets[@]}"; do make_dataset "$d"; done

# ---------------------------------------------------------------- binary
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
bin=$(bench_binary bench) || exit 1
version=$("$bin" --version 2>/dev/null || echo "rdbinsight ?")

ch_url=${RDBINSIGHT_TEST_CLICKHOUSE_URL:-}

# Backtrace capture makes every error value expensive (RDB-NOTES: x50 on "need more data" paths):
# measure what users run.
if [ "${BENCH_KEEP_BACKTRACE:-0}" != 1 ]; then unset RUST_BACKTRACE RUST_LIB_BACKTRACE; fi
[ -z "${RUST_LOG:-}" ] || log "bench: note: RUST_LOG=$RUST_LOG is set; logging may slow rdbinsight down"

# ---------------------------------------------------------------- measuring
work=$(mktemp -d "${TMPDIR:-/tmp}/rdbinsight-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

bin_b=""
if [ -n "${BENCH_BIN_B:-}" ]; then
  [ -x "$BENCH_BIN_B" ] || die "BENCH_BIN_B=$BENCH_BIN_B is not an executable"
  bin_b=$(cd "$(dirname "$BENCH_BIN_B")" && pwd)/$(basename "$BENCH_BIN_B")
fi
read -r -a args_b <<<"${BENCH_ARGS_B:-}"

# mode_cmd MODE NAME FILE [BIN [DUMP_FLAGS...]] -> prints the command (NUL-separated) or nothing
# when the mode is off
mode_cmd() {
  local mode=$1 name=$2 file=$3 bin=${4:-$bin}
  shift 4 2>/dev/null || shift $#
  local src=(dump "$@" from-file --path "$file" --cluster bench --instance "$name")
  case $mode in
    md5sum) printf '%s\0' md5sum "$file" ;;
    redis-check-rdb) command -v redis-check-rdb >/dev/null && printf '%s\0' redis-check-rdb "$file" ;;
    jsonl) printf '%s\0' "$bin" "${src[@]}" into-jsonl --output /dev/null ;;
    null) printf '%s\0' "$bin" "${src[@]}" into-null ;;
    parquet) printf '%s\0' "$bin" "${src[@]}" into-parquet --dir "$work/parquet" ;;
    clickhouse)
      [ -n "$ch_url" ] || return 0
      local url
      if [[ $ch_url == *\?* ]]; then url="$ch_url&database=bench"; else url="$ch_url?database=bench"; fi
      printf '%s\0' "$bin" "${src[@]}" into-clickhouse --url "$url" --auto-create-tables ;;
    *) die "unknown mode $mode" ;;
  esac
}

why_off() {
  case $1 in
    redis-check-rdb) echo "redis-check-rdb not installed" ;;
    clickhouse) echo "RDBINSIGHT_TEST_CLICKHOUSE_URL not set" ;;
    *) echo "off" ;;
  esac
}

if [ -n "$ch_url" ] && [[ " $modes " == *" clickhouse "* ]] && command -v curl >/dev/null; then
  curl -fsS "${ch_url%%\?*}/" --data-binary "CREATE DATABASE IF NOT EXISTS bench" >/dev/null 2>&1 ||
    log "bench: could not create database 'bench' over HTTP (continuing; --auto-create-tables may need it)"
fi

# run_once CMD... -> sets wall (s), rss (KiB), rc, errline
run_once() {
  local t0 t1
  rm -rf "$work/parquet"; mkdir -p "$work/parquet"
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$work/time.txt" "$@" >"$work/stdout" 2>"$work/stderr"
  rc=$?
  t1=$(date +%s.%N)
  wall=$(calc "$t1 - $t0")
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): *//p' "$work/time.txt" | tail -1)
  errline=$(grep -i -m1 '^error' "$work/stderr" | cut -c1-160)
  [ -n "$errline" ] || errline=$(grep -v -m1 '^\s*$' "$work/stderr" | cut -c1-160)
}

fmt() { LC_ALL=C printf "$@"; }
results=$data/results.tsv
[ -s "$results" ] || printf 'date\tdataset\tmode\tbytes\trecords\twall_s\tMB_s\trecords_s\tpeak_rss_kib\tx_md5_wall\tstatus\tversion\n' >"$results"
stamp=$(date -u +%FT%TZ)

for name in "${datasets[@]}"; do
  file=$data/$name.rdb
  bytes=$(stat -c %s "$file")
  mb=$(calc "$bytes / 1000000")
  records=$(record_count "$name")
  log "bench: $name: warming the page cache"
  cat "$file" >/dev/null
  echo
  fmt '%s: %s, %.1f MB, %s records (%s)\n' "$name" "$file" "$mb" "${records:-?}" "$version"
  fmt '%-16s %9s %9s %10s %12s %8s  %s\n' mode wall_s MB/s records/s peak_RSS_MB x_md5 status
  md5_wall=""
  for mode in $modes; do
    cmd=()
    while IFS= read -r -d '' a; do cmd+=("$a"); done < <(mode_cmd "$mode" "$name" "$file")
    if [ ${#cmd[@]} -eq 0 ]; then
      fmt '%-16s %9s %9s %10s %12s %8s  %s\n' "$mode" - - - - - "SKIPPED: $(why_off "$mode")"
      continue
    fi
    cmd_b=()
    if [ -n "$bin_b" ] && [ "${cmd[0]}" = "$bin" ]; then
      while IFS= read -r -d '' a; do cmd_b+=("$a"); done < <(mode_cmd "$mode" "$name" "$file" "$bin_b" "${args_b[@]}")
    fi
    best=""; maxrss=0; status=ok; best_b=""; maxrss_b=0; status_b=ok
    for ((i = 1; i <= runs; i++)); do
      run_once "${cmd[@]}"
      if [ "$rc" != 0 ]; then status="SKIPPED: exit $rc: $errline"; break; fi
      if [ -z "$best" ] || lt "$wall" "$best"; then best=$wall; fi
      [ "${rss:-0}" -gt "$maxrss" ] && maxrss=$rss
      # A's output, before B's run replaces it
      [ "$mode" = parquet ] && parquet_mb=$(du -sm "$work/parquet" | cut -f1)
      # B right after A, run by run, so both see the same machine.
      if [ ${#cmd_b[@]} -gt 0 ] && [ "$status_b" = ok ]; then
        run_once "${cmd_b[@]}"
        if [ "$rc" != 0 ]; then status_b="SKIPPED: exit $rc: $errline"; continue; fi
        if [ -z "$best_b" ] || lt "$wall" "$best_b"; then best_b=$wall; fi
        [ "${rss:-0}" -gt "$maxrss_b" ] && maxrss_b=$rss
      fi
    done
    if [ "$status" != ok ]; then
      fmt '%-16s %9s %9s %10s %12s %8s  %s\n' "$mode" - - - - - "$status"
      printf '%s\t%s\t%s\t%s\t%s\t\t\t\t\t\t%s\t%s\n' "$stamp" "$name" "$mode" "$bytes" "$records" "$status" "$version" >>"$results"
      continue
    fi
    [ "$mode" = md5sum ] && md5_wall=$best
    mbs=$(calc "$mb / $best")
    if [ -n "$records" ] && [ "$mode" != md5sum ]; then rps=$(fmt '%.0f' "$(calc "$records / $best")"); else rps=-; fi
    if [ -n "$md5_wall" ]; then ratio=$(fmt '%.2fx' "$(calc "$best / $md5_wall")"); else ratio=-; fi
    extra=""
    if [ "$mode" = parquet ]; then extra=" (parquet output $parquet_mb MB)"; fi
    if [ "$mode" = jsonl ] && [ "${BENCH_VERIFY:-1}" = 1 ] && [ -n "$records" ]; then
      # not timed: the benchmark is worthless if records go missing
      got=$("${cmd[@]:0:${#cmd[@]}-2}" --output - 2>/dev/null | wc -l)
      if [ "$got" = "$records" ]; then extra=" (verified: $got records)"; else extra=" (MISMATCH: $got records, expected $records)"; status="MISMATCH: $got records"; fi
    fi
    fmt '%-16s %9.2f %9.1f %10s %12.1f %8s  %s\n' "$mode" "$best" "$mbs" "$rps" "$(calc "$maxrss / 1024")" "$ratio" "$([ "$status" = ok ] && echo "ok$extra" || echo "WRONG$extra")"
    printf '%s\t%s\t%s\t%s\t%s\t%.3f\t%.1f\t%s\t%s\t%s\t%s\t%s\n' "$stamp" "$name" "$mode" "$bytes" "$records" \
      "$best" "$mbs" "$rps" "$maxrss" "$ratio" "$status" "$version" >>"$results"
    if [ ${#cmd_b[@]} -gt 0 ]; then
      if [ "$status_b" != ok ] || [ -z "$best_b" ]; then
        fmt '%-16s %9s %9s %10s %12s %8s  %s\n' "$mode@B" - - - - - "$status_b"
      else
        fmt '%-16s %9.2f %9.1f %10s %12.1f %8s  B/A wall %.3f, B/A peak RSS %.3f\n' "$mode@B" "$best_b" "$(calc "$mb / $best_b")" - \
          "$(calc "$maxrss_b / 1024")" - "$(calc "$best_b / $best")" "$(calc "$maxrss_b / $maxrss")"
      fi
    fi
  done
done
echo
echo "x_md5 = wall time relative to md5sum of the same file in this run (lower is better)."
echo "results appended to $results"
