#!/usr/bin/env bash
# benches/refresh.sh — end-to-end benchmark: `lethe refresh` vs a raw COPY.
#
#   benches/refresh.sh [SCALE] [--drop-source] [--raw-only] [--keep] [--subset PCT]
#
#   SCALE          dataset scale for benches/data/gen_prod.sql (default 0.1;
#                  0.01 ≈ 130k rows, 0.1 ≈ 1.3M rows, 1 ≈ 13M rows)
#   --drop-source  drop the source database at the end (it is kept by default,
#                  because generating it takes ~35 s at 0.1 and ~3 min at 1)
#   --raw-only     skip the build and the lethe run: measure the raw baseline only
#   --keep         keep lethe_bench_raw / lethe_bench_dst instead of dropping them
#   --subset PCT   after the full refresh, refresh a subset too: PCT percent of the
#                  customers and every row their keys need (lethe_bench_sub), and
#                  report it beside the full refresh
#
# Environment:
#   BENCH_DATABASE_URL  URL of a maintenance database on the server to use
#                       (default postgres://postgres@127.0.0.1:5432/postgres);
#                       the bench creates and drops its databases there:
#                       lethe_bench_src_<SCALE with . as _>, lethe_bench_raw,
#                       lethe_bench_dst, lethe_bench_sub.
#   LETHE_MASKING_KEY   masking key passed to lethe (default: a fixed bench key)
#   BENCH_LETHE_ARGS    extra arguments for `lethe refresh bench`, split on spaces
#                       (e.g. `--jobs 4`, or `--min-piece-kb 16384` to cut tables of
#                       16 MiB and more into pieces)
#
# See benches/README.md for what the figures mean and the targets.
set -euo pipefail

repo_root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

TABLES_BIG_FIRST=(order_items customers orders payments addresses support_tickets products)
TABLES=(products customers addresses orders order_items payments support_tickets)
GEN_SQL=benches/data/gen_prod.sql
RAW_DB=lethe_bench_raw
DST_DB=lethe_bench_dst
SUB_DB=lethe_bench_sub

log() { printf 'refresh.sh: %s\n' "$*" >&2; }
die() { printf 'FAIL: %s\n' "$*"; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

# ---------------------------------------------------------------- arguments
SCALE=0.1
drop_source=
raw_only=
keep=
scale_given=
subset=
want_subset=
for arg in "$@"; do
    if [[ -n $want_subset ]]; then
        subset=$arg
        want_subset=
        continue
    fi
    case $arg in
        --subset) want_subset=1 ;;
        --drop-source) drop_source=1 ;;
        --raw-only) raw_only=1 ;;
        --keep) keep=1 ;;
        -h | --help) usage; exit 0 ;;
        -*) usage >&2; exit 2 ;;
        *)
            [[ -z $scale_given ]] || { usage >&2; exit 2; }
            SCALE=$arg
            scale_given=1
            ;;
    esac
done
if ! [[ $SCALE =~ ^([0-9]+(\.[0-9]*)?|\.[0-9]+)$ ]] || ! awk -v s="$SCALE" 'BEGIN { exit !(s + 0 > 0) }'; then
    die "SCALE must be a positive number like 0.1, got '$SCALE'"
fi

if [[ -n $want_subset ]] || { [[ -n $subset ]] && ! awk -v p="$subset" 'BEGIN { exit !(p + 0 > 0 && p + 0 <= 100) }'; }; then
    die "--subset takes a percentage above 0 and at most 100"
fi

SRC_DB=lethe_bench_src_${SCALE//./_}

# ---------------------------------------------------------------- connection URLs
BENCH_DATABASE_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
[[ $BENCH_DATABASE_URL =~ ^postgres(ql)?:// ]] ||
    die "BENCH_DATABASE_URL must be a postgres:// URL"

# The URL of database $1 on the BENCH_DATABASE_URL server (same user, host, query).
db_url() {
    local url=$BENCH_DATABASE_URL base query=
    base=${url%%\?*}
    [[ $url == *\?* ]] && query="?${url#*\?}"
    local scheme=${base%%://*} rest=${base#*://}
    printf '%s://%s/%s%s\n' "$scheme" "${rest%%/*}" "$1" "$query"
}
ADMIN_URL=$BENCH_DATABASE_URL
SRC_URL=$(db_url "$SRC_DB")
RAW_URL=$(db_url "$RAW_DB")
DST_URL=$(db_url "$DST_DB")
SUB_URL=$(db_url "$SUB_DB")

psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
# One value from a query: sql_value URL SQL
sql_value() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
admin() { PGOPTIONS="-c client_min_messages=warning" psql_q -d "$ADMIN_URL" -c "$1" >/dev/null; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
checkpoint() { psql -X -q -d "$ADMIN_URL" -c CHECKPOINT >/dev/null 2>&1 || true; }

# ---------------------------------------------------------------- cleanup
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lethe-bench.XXXXXX")
cleanup() {
    local rc=$?
    if [[ -z $keep ]]; then
        admin "DROP DATABASE IF EXISTS $RAW_DB" 2>/dev/null || true
        admin "DROP DATABASE IF EXISTS $DST_DB" 2>/dev/null || true
        admin "DROP DATABASE IF EXISTS $SUB_DB" 2>/dev/null || true
    fi
    if [[ -n $drop_source ]]; then
        log "dropping source database $SRC_DB (--drop-source)"
        admin "DROP DATABASE IF EXISTS $SRC_DB" 2>/dev/null || true
    fi
    rm -rf -- "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- preflight
command -v psql >/dev/null || die "psql not found (apt-get install postgresql-client)"
command -v pg_dump >/dev/null || die "pg_dump not found (apt-get install postgresql-client)"
[[ -f $GEN_SQL ]] || die "$GEN_SQL is missing"
sql_value "$ADMIN_URL" "SELECT 1" >/dev/null ||
    die "cannot connect to BENCH_DATABASE_URL (the server's maintenance database)"
server_version=$(sql_value "$ADMIN_URL" "SHOW server_version")
server_version=${server_version%% *}

LETHE_BIN=$repo_root/target/release/lethe
RULES_DIR=$repo_root/masking-rules/bench
if [[ -z $raw_only ]]; then
    [[ -x /usr/bin/time ]] || die "/usr/bin/time (GNU time) not found (apt-get install time)"
    [[ -f $RULES_DIR/public.toml ]] || die "masking rules $RULES_DIR/public.toml not found"
    log "cargo build --release"
    cargo build --release || die "cargo build --release failed"
    [[ -x $LETHE_BIN ]] || die "$LETHE_BIN was not built"
fi

# ---------------------------------------------------------------- source database
# The marker ties the database to this scale and this exact gen_prod.sql; the
# cached statistics (COPY text bytes, rows per table) follow it.
gen_hash=$(md5sum "$GEN_SQL" | cut -c1-12)
marker="lethe bench scale=$SCALE gen=$gen_hash complete"

src_comment() {
    sql_value "$ADMIN_URL" "SELECT coalesce(shobj_description(oid, 'pg_database'), '')
                            FROM pg_database WHERE datname = '$SRC_DB'"
}

comment=$(src_comment)
if [[ $comment == "$marker;"* ]]; then
    log "reusing source database $SRC_DB"
else
    if [[ -n $(sql_value "$ADMIN_URL" "SELECT 1 FROM pg_database WHERE datname = '$SRC_DB'") ]]; then
        log "source database $SRC_DB exists but is incomplete or stale; re-creating it"
    fi
    admin "DROP DATABASE IF EXISTS $SRC_DB"
    admin "CREATE DATABASE $SRC_DB"
    log "generating the dataset at scale $SCALE into $SRC_DB (gen_prod.sql)"
    t0=$(now)
    psql -X -v ON_ERROR_STOP=1 -v scale="$SCALE" -d "$SRC_URL" -f "$GEN_SQL" ||
        die "gen_prod.sql failed"
    log "generated in $(elapsed "$t0" "$(now)") s; measuring row counts and COPY text volume"

    counts=()
    for t in "${TABLES[@]}"; do
        n=$(sql_value "$SRC_URL" "SELECT count(*) FROM public.$t") ||
            die "source table public.$t is missing after gen_prod.sql"
        counts+=("$t:$n")
    done
    copy_bytes=0
    for t in "${TABLES[@]}"; do
        b=$(psql_q -d "$SRC_URL" -c "\\copy public.$t TO STDOUT" | wc -c)
        copy_bytes=$((copy_bytes + b))
    done
    rows_csv=$(IFS=,; printf '%s' "${counts[*]}")
    admin "COMMENT ON DATABASE $SRC_DB IS '$marker; copy_bytes=$copy_bytes; rows=$rows_csv'"
    comment=$(src_comment)
fi

[[ $comment =~ copy_bytes=([0-9]+)\;\ rows=([a-z_:0-9,]+)$ ]] ||
    die "cannot parse the statistics in the comment of $SRC_DB: '$comment' (re-run with --drop-source)"
copy_bytes=${BASH_REMATCH[1]}
declare -A src_rows=()
total_rows=0
IFS=, read -ra pairs <<<"${BASH_REMATCH[2]}"
for p in "${pairs[@]}"; do
    src_rows[${p%%:*}]=${p#*:}
    total_rows=$((total_rows + ${p#*:}))
done

# Compare the row count of every table in database URL $2 (label $1) with the source.
check_rows() {
    local label=$1 url=$2 t n bad=0
    for t in "${TABLES[@]}"; do
        if ! n=$(sql_value "$url" "SELECT count(*) FROM public.$t" 2>/dev/null); then
            printf 'FAIL: %s: public.%s is missing (the source has %s rows)\n' "$label" "$t" "${src_rows[$t]}"
            bad=1
        elif [[ $n != "${src_rows[$t]}" ]]; then
            printf 'FAIL: %s: public.%s has %s rows, the source has %s\n' "$label" "$t" "$n" "${src_rows[$t]}"
            bad=1
        fi
    done
    return "$bad"
}

# ---------------------------------------------------------------- raw copy baseline
copy_table() {
    set -o pipefail
    psql -X -q -v ON_ERROR_STOP=1 -d "$SRC_URL" -c "\\copy public.$1 TO STDOUT" |
        psql -X -q -v ON_ERROR_STOP=1 -d "$RAW_URL" -c "\\copy public.$1 FROM STDIN" >/dev/null ||
        { printf 'FAIL: raw copy of public.%s\n' "$1" >&2; return 1; }
}
export -f copy_table
export SRC_URL RAW_URL

admin "DROP DATABASE IF EXISTS $RAW_DB"
admin "CREATE DATABASE $RAW_DB"
checkpoint
log "raw copy: pg_dump pre-data | psql, \\copy x7 (2 at a time), pg_dump post-data | psql"
t0=$(now)
pg_dump --schema-only --section=pre-data -d "$SRC_URL" | psql_q -d "$RAW_URL" >/dev/null ||
    die "raw copy: pre-data schema failed"
printf '%s\n' "${TABLES_BIG_FIRST[@]}" | xargs -P 2 -n 1 bash -c 'copy_table "$1"' _ ||
    die "raw copy: a table copy failed"
pg_dump --schema-only --section=post-data -d "$SRC_URL" | psql_q -d "$RAW_URL" >/dev/null ||
    die "raw copy: post-data schema failed"
t1=$(now)
raw_s=$(elapsed "$t0" "$t1")
log "raw copy: $raw_s s"
check_rows raw "$RAW_URL" || exit 1
# Free the disk and the dirty buffers before lethe's turn.
[[ -n $keep ]] || admin "DROP DATABASE IF EXISTS $RAW_DB"

# ---------------------------------------------------------------- lethe
lethe_s=
rss_kb=
if [[ -z $raw_only ]]; then
    admin "DROP DATABASE IF EXISTS $DST_DB"
    admin "CREATE DATABASE $DST_DB"
    export BENCH_SOURCE_URL=$SRC_URL
    export BENCH_TARGET_URL=$DST_URL
    # A fixed, public bench key: the bench is about speed, not secrecy.
    export LETHE_MASKING_KEY=${LETHE_MASKING_KEY:-6c657468652d62656e63682d6b65792d6e6f742d612d7365637265742d303031}
    cat >"$tmp/lethe.toml" <<EOF
[source]
url = "\${BENCH_SOURCE_URL}"

[targets.bench]
url = "\${BENCH_TARGET_URL}"

[masking]
key = "\${LETHE_MASKING_KEY}"
rules = "$RULES_DIR"
EOF
    checkpoint
    read -r -a lethe_args <<<"${BENCH_LETHE_ARGS:-}"
    log "lethe: $LETHE_BIN --config $tmp/lethe.toml refresh bench ${lethe_args[*]}"
    t0=$(now)
    rc=0
    /usr/bin/time -v -o "$tmp/time.txt" "$LETHE_BIN" --config "$tmp/lethe.toml" refresh bench "${lethe_args[@]}" || rc=$?
    t1=$(now)
    if ((rc != 0)); then
        printf 'FAIL: lethe refresh exited with status %s after %s s (raw copy took %s s)\n' \
            "$rc" "$(elapsed "$t0" "$t1")" "$raw_s"
        exit 1
    fi
    lethe_s=$(elapsed "$t0" "$t1")
    rss_kb=$(awk -F': *' '/Maximum resident set size \(kbytes\)/ { print $2 }' "$tmp/time.txt")
    [[ $rss_kb =~ ^[0-9]+$ ]] || die "could not read the peak RSS from GNU time's output"
    log "lethe: $lethe_s s"
    check_rows lethe "$DST_URL" || exit 1
fi

# ---------------------------------------------------------------- subset
sub_s=
sub_rss_kb=
sub_rows=
if [[ -n $subset && -z $raw_only ]]; then
    [[ -n $keep ]] || admin "DROP DATABASE IF EXISTS $DST_DB"
    admin "DROP DATABASE IF EXISTS $SUB_DB"
    admin "CREATE DATABASE $SUB_DB"
    export BENCH_SUBSET_URL=$SUB_URL
    cat >>"$tmp/lethe.toml" <<EOF

[targets.subset]
url = "\${BENCH_SUBSET_URL}"

[targets.subset.subset]
"public.customers" = { percent = $subset }
EOF
    checkpoint
    log "lethe subset: $LETHE_BIN --config $tmp/lethe.toml refresh subset ${lethe_args[*]}"
    t0=$(now)
    rc=0
    /usr/bin/time -v -o "$tmp/time-sub.txt" "$LETHE_BIN" --config "$tmp/lethe.toml" refresh subset "${lethe_args[@]}" || rc=$?
    t1=$(now)
    ((rc == 0)) || die "lethe refresh subset exited with status $rc"
    sub_s=$(elapsed "$t0" "$t1")
    sub_rss_kb=$(awk -F': *' '/Maximum resident set size \(kbytes\)/ { print $2 }' "$tmp/time-sub.txt")
    sub_rows=0
    for t in "${TABLES[@]}"; do
        sub_rows=$((sub_rows + $(sql_value "$SUB_URL" "SELECT count(*) FROM public.$t")))
    done
    keys=$(sql_value "$SUB_URL" "SELECT count(*) FILTER (WHERE convalidated) || '/' || count(*) FROM pg_constraint WHERE contype = 'f'")
    [[ $keys == 6/6 ]] || die "subset: $keys foreign keys valid, expected 6/6"
    log "lethe subset: $sub_s s, $sub_rows rows, foreign keys valid: $keys"
fi

# ---------------------------------------------------------------- report
row() { # label seconds [rss_kb]
    awk -v l="$1" -v s="$2" -v r="$total_rows" -v b="$copy_bytes" -v k="${3:-}" 'BEGIN {
        rss = (k == "") ? "-" : sprintf("%.1f", k * 1024 / 1e6)
        printf "%-6s %10.2f %12.0f %10.2f %12s\n", l, s, r / s, b / 1e6 / s, rss
    }'
}
echo
printf 'lethe bench: scale %s, %s rows, %.1f MB COPY text, PostgreSQL %s, %s CPUs\n' \
    "$SCALE" "$total_rows" "$(awk -v b="$copy_bytes" 'BEGIN { print b / 1e6 }')" "$server_version" "$(nproc)"
printf '%-6s %10s %12s %10s %12s\n' "" seconds rows/s MB/s "peak RSS MB"
row raw "$raw_s"
if [[ -n $lethe_s ]]; then
    row lethe "$lethe_s" "$rss_kb"
    printf 'ratio lethe/raw = %s\n' "$(awk -v a="$lethe_s" -v b="$raw_s" 'BEGIN { printf "%.2f", a / b }')"
    echo "targets: ratio <= 1.00 at scales 0.1 and 1; peak RSS < 200 MB at scales 0.1 and 1"
fi
if [[ -n $sub_s ]]; then
    awk -v s="$sub_s" -v r="$sub_rows" -v k="$sub_rss_kb" -v p="$subset" 'BEGIN {
        printf "subset (%s%% of customers) %.2f s, %d rows, %.0f rows/s, peak RSS %.1f MB\n", p, s, r, r / s, k * 1024 / 1e6
    }'
    printf 'ratio subset/full = %s (aim: <= 0.15 for a 10%% subset)\n' \
        "$(awk -v a="$sub_s" -v b="$lethe_s" 'BEGIN { printf "%.2f", a / b }')"
fi
