#!/usr/bin/env bash
# The ClickHouse writer against its ceiling: the engine's own ingest of the same rows.
#
#   RDBINSIGHT_TEST_CLICKHOUSE_URL=http://127.0.0.1:8123 bash bench/clickhouse.sh [DATASET...]
#   (or: scripts/clickhouse-test-env.sh bash bench/clickhouse.sh mixed-500k)
#
# For each dataset (default mixed-500k; bench-data/NAME.rdb, built by bench/run.sh):
#   1. the rows, encoded once by `examples/clickhouse_rowbinary.rs` (the writer's own encoder),
#      are kept in target/bench-clickhouse/NAME.rowbinary (uncompressed
#      RowBinaryWithNamesAndTypes; BENCH_CH_WORK to put them elsewhere);
#   2. `curl`: one plain HTTP INSERT of that file into an empty redis_records_raw — the ceiling;
#   3. `rdbinsight`: `dump from-file ... into-clickhouse` of the RDB into an empty schema.
#   Both run BENCH_RUNS times (default 3) in alternating order on the same engine, each into a
#   freshly created database; the best wall time and the largest peak RSS are reported, with
#   rdbinsight's time as a multiple of curl's. The row count is checked after every run.
#
# Environment:
#   RDBINSIGHT_TEST_CLICKHOUSE_URL  http://host:port of the engine (required)
#   BENCH_RUNS        runs per contender (default 3)
#   BENCH_BIN         the rdbinsight binary (default: cargo build --release)
#   BENCH_CH_OTHER    another rdbinsight binary to time the same way (e.g. an older design)
#   BENCH_DATA        dataset directory (default bench-data)
#   BENCH_CH_STREAMS  N instances at once (default 8; 0 = skip): the first dataset read by N
#                     instances through the real pipeline (`examples/clickhouse_streams.rs`),
#                     into ClickHouse and into nothing; the peak-RSS difference divided by N is
#                     the writer's memory per instance
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
data=${BENCH_DATA:-bench-data}
work=${BENCH_CH_WORK:-target/bench-clickhouse}
runs=${BENCH_RUNS:-3}
url=${RDBINSIGHT_TEST_CLICKHOUSE_URL:-}
url=${url%/}
log() { printf '%s\n' "$*" >&2; }
die() { log "bench/clickhouse: $*"; exit 1; }
calc() { awk "BEGIN { printf \"%.6f\", $* }"; }

[ -n "$url" ] || die "set RDBINSIGHT_TEST_CLICKHOUSE_URL (or run under scripts/clickhouse-test-env.sh)"
[ -x /usr/bin/time ] || die "/usr/bin/time missing (apt-get install -y time)"
datasets=("$@")
[ ${#datasets[@]} -gt 0 ] || datasets=(mixed-500k)

if [ -z "${BENCH_BIN:-}" ]; then
  cargo build --release --bin rdbinsight --example clickhouse_rowbinary --example clickhouse_streams >&2 ||
    die "build failed"
  BENCH_BIN=target/release/rdbinsight
fi
encoder=target/release/examples/clickhouse_rowbinary
streams=target/release/examples/clickhouse_streams
[ -x "$encoder" ] && [ -x "$streams" ] ||
  cargo build --release --example clickhouse_rowbinary --example clickhouse_streams >&2 || die "build failed"
unset RUST_BACKTRACE RUST_LIB_BACKTRACE

q() { curl -fsS "$url/" --data-binary "$1"; }
fresh_db() { # fresh_db NAME [BIN]: an empty database with BIN's schema (default $BENCH_BIN)
  q "DROP DATABASE IF EXISTS $1 SYNC" >/dev/null || die "cannot drop $1"
  q "CREATE DATABASE $1" >/dev/null || die "cannot create $1"
  # Statements end with ";" at the end of a line (comments contain ";" too).
  local script stmt
  script=$("${2:-$BENCH_BIN}" misc clickhouse-schema) || die "misc clickhouse-schema failed"
  while [ -n "$script" ]; do
    stmt=${script%%$';\n'*}
    if [ "$stmt" = "$script" ]; then script=""; else script=${script#*$';\n'}; fi
    stmt=${stmt%;}
    stmt=$(printf '%s\n' "$stmt" | grep -v '^--')
    [ -n "${stmt//[[:space:]]/}" ] || continue
    curl -fsS "$url/?database=$1" --data-binary "$stmt" >/dev/null || die "schema: $stmt"
  done
}

# time_it OUT CMD... -> "wall rss" in OUT
time_it() {
  local out=$1; shift
  /usr/bin/time -f '%e %M' -o "$out" "$@" >/dev/null 2>"$out.err" || { log "failed: $*"; cat "$out.err" >&2; return 1; }
}

printf '%-12s %-12s %8s %12s %9s %8s\n' dataset contender wall_s records/s rss_MB x_curl
for name in "${datasets[@]}"; do
  file=$data/$name.rdb
  [ -s "$file" ] || die "missing $file (bash bench/run.sh $name builds it)"
  mkdir -p "$work"
  rows=$work/$name.rowbinary
  batch_ns=$(( $(date +%s) * 1000000000 ))
  # Re-encoded when older than the RDB, or than 20 days (its batch must stay within the TTL).
  if [ ! -s "$rows" ] || [ "$rows" -ot "$file" ] || [ -n "$(find "$rows" -mtime +20)" ]; then
    log "encoding $file into $rows"
    "$encoder" "$file" bench "$name" "$batch_ns" >"$rows.tmp" && mv "$rows.tmp" "$rows" || die "encoding failed"
  fi
  keys=$("$BENCH_BIN" dump from-file --path "$file" --cluster bench --instance "$name" into-null 2>&1 |
    sed -n 's/.*dump complete: \([0-9]*\) records.*/\1/p')
  [ -n "$keys" ] || die "cannot count the records of $file"
  sql=$("$encoder" --sql)
  contenders=(curl rdbinsight)
  [ -n "${BENCH_CH_OTHER:-}" ] && contenders+=(other)
  declare -A best_wall=() max_rss=()
  for run in $(seq 1 "$runs"); do
    order=("${contenders[@]}")
    [ $((run % 2)) = 0 ] && order=($(printf '%s\n' "${contenders[@]}" | tac))
    for who in "${order[@]}"; do
      db=bench_ch_$who
      # Each binary writes into the schema it prints itself (an older one has fewer columns).
      if [ "$who" = other ]; then fresh_db "$db" "$BENCH_CH_OTHER"; else fresh_db "$db"; fi
      out=$(mktemp)
      case $who in
        curl) time_it "$out" curl -fsS --data-binary "@$rows" "$url/?database=$db&query=$sql" || exit 1 ;;
        rdbinsight | other)
          b=$BENCH_BIN; [ "$who" = other ] && b=$BENCH_CH_OTHER
          time_it "$out" "$b" dump --concurrency 1 from-file --path "$file" --cluster bench --instance "$name" \
            into-clickhouse --url "$url?database=$db" || exit 1 ;;
      esac
      read -r wall rss <"$out"; rm -f "$out" "$out.err"
      got=$(q "SELECT count() FROM $db.redis_records_raw")
      [ "$got" = "$keys" ] || die "$who stored $got rows, expected $keys"
      log "run $run $who: ${wall}s, $((rss / 1024)) MB"
      if [ -z "${best_wall[$who]:-}" ] || awk "BEGIN{exit !($wall < ${best_wall[$who]})}"; then best_wall[$who]=$wall; fi
      if [ -z "${max_rss[$who]:-}" ] || [ "$rss" -gt "${max_rss[$who]}" ]; then max_rss[$who]=$rss; fi
      q "DROP DATABASE IF EXISTS $db SYNC" >/dev/null
    done
  done
  for who in "${contenders[@]}"; do
    w=${best_wall[$who]}
    printf '%-12s %-12s %8.2f %12.0f %9.1f %8.2f\n' "$name" "$who" "$w" "$(calc "$keys / $w")" \
      "$(calc "${max_rss[$who]} / 1024")" "$(calc "$w / ${best_wall[curl]}")"
  done
done

n=${BENCH_CH_STREAMS:-8}
if [ "$n" -gt 0 ]; then
  name=${datasets[0]}
  file=$data/$name.rdb
  out=$(mktemp)
  time_it "$out" "$streams" "$file" "$n" null || exit 1
  read -r null_wall null_rss <"$out"
  db=bench_ch_streams
  q "DROP DATABASE IF EXISTS $db SYNC" >/dev/null
  time_it "$out" "$streams" "$file" "$n" clickhouse "$url?database=$db" || exit 1
  read -r ch_wall ch_rss <"$out"; rm -f "$out" "$out.err"
  got=$(q "SELECT count() FROM $db.redis_records_view")
  q "DROP DATABASE IF EXISTS $db SYNC" >/dev/null
  printf '\n%s x %d instances at once: into-null %.2f s, %.1f MB; into ClickHouse %.2f s, %.1f MB, %s rows;\n' \
    "$name" "$n" "$null_wall" "$(calc "$null_rss / 1024")" "$ch_wall" "$(calc "$ch_rss / 1024")" "$got"
  printf 'the ClickHouse writer adds %.1f MB per instance\n' "$(calc "($ch_rss - $null_rss) / 1024 / $n")"
fi
