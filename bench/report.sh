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
#   BENCH_BASELINE a dataset (e.g. mixed-500k-s7) dumped as an earlier batch of the same cluster:
#                  each store is also timed with `--baseline` (alternating with the single
#                  report, run by run), and the ratio baseline/single is printed per run and
#                  for the best times
#   RDBINSIGHT_TEST_CLICKHOUSE_URL  http://host:8123 (optionally user:pass@); enables from-clickhouse
#
# Per dataset, untimed: one `dump from-file` into Parquet (a temp dir) and, with ClickHouse, into
# the database `bench_report` (dropped first), both with the same batch timestamp (now; the
# BENCH_BASELINE dataset an hour earlier). Then each report mode is timed with /usr/bin/time -v
# (JSON and HTML written to the temp dir), the modes taking turns within each run. Rows are
# appended to bench-data/report-results.tsv.
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

baseline=${BENCH_BASELINE:-}
for d in "${datasets[@]}" ${baseline:+"$baseline"}; do
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

# dump NAME FILE BATCH: the dataset into Parquet and, with ClickHouse, into bench_report.
dump() {
  "$bin" dump from-file --path "$2" --cluster bench --instance "$1" \
    --batch-timestamp "$3" into-parquet --dir "$work/pq" 2>"$work/dump.log" ||
    die "dump of $2 into Parquet failed: $(tail -1 "$work/dump.log")"
  if [ -n "$ch_url" ]; then
    "$bin" dump from-file --path "$2" --cluster bench --instance "$1" \
      --batch-timestamp "$3" into-clickhouse --url "$ch_url?database=bench_report" \
      --auto-create-tables 2>"$work/dump.log" ||
      die "dump of $2 into ClickHouse failed: $(tail -1 "$work/dump.log")"
  fi
}

for name in "${datasets[@]}"; do
  file=$data/$name.rdb
  batch=$(date -u +%FT%T.%NZ)
  rm -rf "$work/pq"
  if [ -n "$ch_url" ]; then
    ch_sql "DROP DATABASE IF EXISTS bench_report" || die "cannot reach ClickHouse at $ch_url"
  fi
  log "bench/report: $name: dumping into Parquet${ch_url:+ and ClickHouse} (untimed)"
  dump "$name" "$file" "$batch"
  stores=(parquet)
  [ -n "$ch_url" ] && stores+=(clickhouse)
  modes=()
  for store in "${stores[@]}"; do
    modes+=("$store")
    [ -n "$baseline" ] && modes+=("$store+baseline")
  done
  if [ -n "$baseline" ]; then
    base_batch=$(date -u -d '-1 hour' +%FT%T.%NZ)
    log "bench/report: $baseline: dumping as the baseline batch $base_batch (untimed)"
    dump "$name" "$data/$baseline.rdb" "$base_batch"
  fi
  echo
  printf '%s: %s (%s)%s\n' "$name" "$file" "$version" "${baseline:+, baseline $baseline}"
  declare -A best=() maxrss=() note=()
  declare -A walls=()
  for mode in "${modes[@]}"; do best[$mode]=""; maxrss[$mode]=0; note[$mode]=ok; walls[$mode]=""; done
  for ((i = 1; i <= runs; i++)); do
    for mode in "${modes[@]}"; do
      [ "${note[$mode]}" = ok ] || continue
      out=$work/$mode
      case $mode in
        parquet*)
          cmd=("$bin" -v report from-parquet --dir "$work/pq" --cluster bench --json "$out.json" -o "$out.html")
          [ -n "${BENCH_MEMORY_LIMIT:-}" ] && cmd+=(--memory-limit "$BENCH_MEMORY_LIMIT") ;;
        clickhouse*)
          cmd=("$bin" -v report from-clickhouse --url "$ch_url?database=bench_report" --cluster bench --json "$out.json" -o "$out.html") ;;
      esac
      [[ $mode == *+baseline ]] && cmd+=(--baseline "$base_batch")
      run_timed "$out.log" "${cmd[@]}"
      if [ "$rc" != 0 ]; then note[$mode]="FAILED: $(grep -m1 '^error' "$out.log")"; continue; fi
      walls[$mode]+=" $wall"
      if [ -z "${best[$mode]}" ] || lt "$wall" "${best[$mode]}"; then best[$mode]=$wall; fi
      [ "${rss:-0}" -gt "${maxrss[$mode]}" ] && maxrss[$mode]=$rss
    done
  done
  printf '%-28s %9s %12s  %s\n' mode wall_s peak_RSS_MB note
  keys=""
  for mode in "${modes[@]}"; do
    if [ "${note[$mode]}" = ok ]; then
      keys=$(grep -o '"totals":{"keys":[0-9]*' "$work/$mode.json" | head -1 | grep -o '[0-9]*$')
      spill=$(grep -o 'key sort spilled [0-9]* run(s), [0-9]* bytes' "$work/$mode.log" | head -1)
      n=${note[$mode]}
      [ -n "$spill" ] && n="ok, $spill"
      printf '%-28s %9.2f %12.1f  %s\n' "report-$mode" "${best[$mode]}" "$(calc "${maxrss[$mode]} / 1024")" "$n"
      printf '%s\t%s\t%s\t%s\t%.3f\t%s\t%s\t%s\n' "$stamp" "$name${baseline:+ vs $baseline}" "report-$mode" "$keys" "${best[$mode]}" "${maxrss[$mode]}" "$n" "$version" >>"$results"
    else
      printf '%-28s %9s %12s  %s\n' "report-$mode" - - "${note[$mode]}"
    fi
  done
  if [ -n "$baseline" ]; then
    for store in "${stores[@]}"; do
      [ "${note[$store]}" = ok ] && [ "${note[$store+baseline]}" = ok ] || continue
      read -ra s1 <<<"${walls[$store]}"
      read -ra s2 <<<"${walls[$store+baseline]}"
      per=""
      for ((j = 0; j < ${#s1[@]} && j < ${#s2[@]}; j++)); do
        per+=" $(calc "${s2[$j]} / ${s1[$j]}" | xargs printf '%.2f')"
      done
      printf '%s --baseline / single: %.2fx (best times); per run:%s\n' "$store" \
        "$(calc "${best[$store+baseline]} / ${best[$store]}")" "$per"
    done
  fi
  for suffix in "" ${baseline:+"+baseline"}; do
    a=$work/parquet$suffix.json b=$work/clickhouse$suffix.json
    if [ -s "$a" ] && [ -s "$b" ]; then
      if cmp -s "$a" "$b"; then
        echo "the two reports${suffix:+ ($suffix)} are byte-identical ($(stat -c %s "$a") bytes of JSON, $keys keys)"
      else
        echo "MISMATCH: the Parquet and ClickHouse reports${suffix:+ ($suffix)} differ"
        cp "$a" "$b" "$data/" 2>/dev/null
      fi
    fi
  done
  rm -f "$work"/*.json
  unset best maxrss note walls
done
[ -n "$ch_url" ] && ch_sql "DROP DATABASE IF EXISTS bench_report"
echo "results appended to $results"
