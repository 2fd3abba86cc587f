#!/usr/bin/env bash
# Benchmark `rdbinsight report` on the mixed datasets of bench/run.sh: wall time and peak RSS of
# `report from-parquet` and `report from-clickhouse`, and whether the two JSON documents are
# byte-identical.
#
#   bash bench/report.sh                      # mixed-500k
#   bash bench/report.sh mixed-500k mixed-5m  # explicit datasets (built by bench/run.sh if missing)
#
# Environment:
#   BENCH_RUNS     runs per mode; the fastest wall time and the largest RSS are reported (default 1)
#   BENCH_BIN      use this rdbinsight binary and skip `cargo build --release`
#   BENCH_DATA     dataset directory (default bench-data)
#   BENCH_MEMORY_LIMIT  --memory-limit for from-parquet (default: the binary's, 256MiB)
#   RDBINSIGHT_TEST_CLICKHOUSE_URL  http://host:8123 (optionally user:pass@); enables from-clickhouse
#
# Per dataset, untimed: one `dump from-file` into Parquet (a temp dir) and, with ClickHouse, into
# the database `bench_report` (dropped first), both with the same batch timestamp (now). Then
# each report mode is timed with /usr/bin/time -v (JSON and HTML written to the temp dir). Rows are appended to
# bench-data/report-results.tsv.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
data=${BENCH_DATA:-bench-data}
runs=${BENCH_RUNS:-1}
log() { printf '%s\n' "$*" >&2; }
die() { log "bench/report: $*"; exit 1; }
calc() { awk "BEGIN { printf \"%.6f\", $* }"; }
lt() { awk "BEGIN { exit !($1 < $2) }"; }

datasets=("$@")
[ ${#datasets[@]} -gt 0 ] || datasets=(mixed-500k)
[ -x /usr/bin/time ] || die "/usr/bin/time missing (apt-get install -y time)"

# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
bin=$(bench_binary bench/report) || exit 1

for d in "${datasets[@]}"; do
  if [ ! -s "$data/$d.rdb" ]; then
    log "bench/report: building $data/$d.rdb (bench/run.sh)"
    BENCH_BIN="$bin" BENCH_MODES=md5sum BENCH_DATA="$data" bash bench/run.sh "$d" >/dev/null ||
      die "cannot build $d"
  fi
done

unset RUST_BACKTRACE RUST_LIB_BACKTRACE
ch_url=${RDBINSIGHT_TEST_CLICKHOUSE_URL:-}
ch_url=${ch_url%%\?*}
work=$(mktemp -d "${TMPDIR:-/tmp}/rdbinsight-report-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
results=$data/report-results.tsv
[ -s "$results" ] || printf 'date\tdataset\tmode\tkeys\twall_s\tpeak_rss_kib\tnote\tversion\n' >"$results"
version=$("$bin" --version)
stamp=$(date -u +%FT%TZ)

ch_sql() { curl -fsS "$ch_url/" --data-binary "$1" >/dev/null; }

# run_timed OUT CMD... -> sets wall, rss, rc
run_timed() {
  local out=$1 t0 t1
  shift
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$work/time.txt" "$@" >/dev/null 2>"$out"
  rc=$?
  t1=$(date +%s.%N)
  wall=$(calc "$t1 - $t0")
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): *//p' "$work/time.txt" | tail -1)
}

for name in "${datasets[@]}"; do
  file=$data/$name.rdb
  batch=$(date -u +%FT%T.%NZ)
  rm -rf "$work/pq"
  log "bench/report: $name: dumping into Parquet (untimed)"
  "$bin" dump from-file --path "$file" --cluster bench --instance "$name" \
    --batch-timestamp "$batch" into-parquet --dir "$work/pq" 2>"$work/dump.log" ||
    die "dump into Parquet failed: $(tail -1 "$work/dump.log")"
  modes=(parquet)
  if [ -n "$ch_url" ]; then
    log "bench/report: $name: dumping into ClickHouse database bench_report (untimed)"
    ch_sql "DROP DATABASE IF EXISTS bench_report" || die "cannot reach ClickHouse at $ch_url"
    "$bin" dump from-file --path "$file" --cluster bench --instance "$name" \
      --batch-timestamp "$batch" into-clickhouse --url "$ch_url?database=bench_report" \
      --auto-create-tables 2>"$work/dump.log" ||
      die "dump into ClickHouse failed: $(tail -1 "$work/dump.log")"
    modes+=(clickhouse)
  fi
  echo
  printf '%s: %s (%s)\n' "$name" "$file" "$version"
  printf '%-22s %9s %12s  %s\n' mode wall_s peak_RSS_MB note
  keys=""
  for mode in "${modes[@]}"; do
    case $mode in
      parquet)
        cmd=("$bin" -v report from-parquet --dir "$work/pq" --cluster bench --json "$work/$mode.json" -o "$work/$mode.html")
        [ -n "${BENCH_MEMORY_LIMIT:-}" ] && cmd+=(--memory-limit "$BENCH_MEMORY_LIMIT") ;;
      clickhouse)
        cmd=("$bin" -v report from-clickhouse --url "$ch_url?database=bench_report" --cluster bench --json "$work/$mode.json" -o "$work/$mode.html") ;;
    esac
    best=""; maxrss=0; note=ok
    for ((i = 1; i <= runs; i++)); do
      run_timed "$work/$mode.log" "${cmd[@]}"
      if [ "$rc" != 0 ]; then note="FAILED: $(grep -m1 '^error' "$work/$mode.log")"; break; fi
      if [ -z "$best" ] || lt "$wall" "$best"; then best=$wall; fi
      [ "${rss:-0}" -gt "$maxrss" ] && maxrss=$rss
    done
    if [ "$note" = ok ]; then
      keys=$(grep -o '"totals":{"keys":[0-9]*' "$work/$mode.json" | grep -o '[0-9]*$')
      spill=$(grep -o 'key sort spilled [0-9]* run(s), [0-9]* bytes' "$work/$mode.log" | head -1)
      [ -n "$spill" ] && note="ok, $spill"
      printf '%-22s %9.2f %12.1f  %s\n' "report-$mode" "$best" "$(calc "$maxrss / 1024")" "$note"
      printf '%s\t%s\t%s\t%s\t%.3f\t%s\t%s\t%s\n' "$stamp" "$name" "report-$mode" "$keys" "$best" "$maxrss" "$note" "$version" >>"$results"
    else
      printf '%-22s %9s %12s  %s\n' "report-$mode" - - "$note"
    fi
  done
  if [ -s "$work/clickhouse.json" ] && [ -s "$work/parquet.json" ]; then
    if cmp -s "$work/parquet.json" "$work/clickhouse.json"; then
      echo "the two reports are byte-identical ($(stat -c %s "$work/parquet.json") bytes of JSON, $keys keys)"
    else
      echo "MISMATCH: the Parquet and ClickHouse reports differ"
      cp "$work/parquet.json" "$work/clickhouse.json" "$data/" 2>/dev/null
    fi
  fi
  rm -f "$work/clickhouse.json" "$work/parquet.json"
done
[ -n "$ch_url" ] && ch_sql "DROP DATABASE IF EXISTS bench_report"
echo "results appended to $results"
