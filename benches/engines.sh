#!/usr/bin/env bash
# benches/engines.sh [SCALE] — the benchmark dataset on the other engines: the PostgreSQL
# bench source (made by benches/refresh.sh SCALE) is copied into an SQLite file and a
# MariaDB/MySQL database, then each is refreshed by lethe with the bench rules and timed
# beside that engine's plain copy (SQLite: INSERT ... SELECT over ATTACH; MySQL:
# mysqldump --single-transaction | mysql). Needs psql, python3, mysql, mysqldump.
# BENCH_LETHE_ARGS: extra arguments for both `lethe refresh` runs, split on spaces (e.g.
# `--min-piece-kb 8192` to cut the big tables into key ranges on MySQL).
set -euo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd -- "$here/.." && pwd)
scale=${1:-0.1}
pg=${PG_BENCH_URL:-postgres://postgres@127.0.0.1:5432}
src="lethe_bench_src_${scale//./_}"
my="mysql -uroot -h127.0.0.1 --local-infile=1"
lethe="$repo/target/release/lethe"
read -r -a lethe_args <<<"${BENCH_LETHE_ARGS:-}"
tables=(products customers addresses orders order_items payments support_tickets)

psql "$pg/$src" -Atc "SELECT 1" >/dev/null 2>&1 || {
    echo "no PostgreSQL bench source $src: run benches/refresh.sh $scale first" >&2
    exit 1
}
(cd "$repo" && cargo build --release --quiet)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Every column, booleans as 0/1 and timestamps in UTC without a zone (what MySQL takes).
select_list() {
    psql "$pg/$src" -Atc "SELECT string_agg(CASE data_type
        WHEN 'boolean' THEN format('%I::int', column_name)
        WHEN 'timestamp with time zone' THEN format('(%I AT TIME ZONE ''UTC'')', column_name)
        ELSE quote_ident(column_name) END, ', ' ORDER BY ordinal_position)
      FROM information_schema.columns WHERE table_schema = 'public' AND table_name = '$1'"
}
# CREATE TABLE in MySQL's or SQLite's types.
ddl() {
    psql "$pg/$src" -Atc "SELECT format('CREATE TABLE %s (%s)', '$2', string_agg(
        column_name || ' ' || CASE
          WHEN column_name = 'id' THEN CASE '$1' WHEN 'mysql' THEN 'BIGINT PRIMARY KEY' ELSE 'INTEGER PRIMARY KEY' END
          WHEN data_type = 'bigint' THEN 'BIGINT'
          WHEN data_type = 'integer' THEN 'INT'
          WHEN data_type = 'numeric' THEN format('DECIMAL(%s,%s)', numeric_precision, numeric_scale)
          WHEN data_type = 'character' THEN format('CHAR(%s)', character_maximum_length)
          WHEN data_type = 'boolean' THEN 'BOOLEAN'
          WHEN data_type = 'date' THEN 'DATE'
          WHEN data_type = 'timestamp with time zone' THEN CASE '$1' WHEN 'mysql' THEN 'DATETIME(6)' ELSE 'TIMESTAMP' END
          WHEN data_type = 'jsonb' THEN 'JSON'
          WHEN data_type = 'USER-DEFINED' THEN 'VARCHAR(32)'
          ELSE 'TEXT' END
        || CASE WHEN is_nullable = 'NO' AND column_name <> 'id' THEN ' NOT NULL' ELSE '' END,
        ', ' ORDER BY ordinal_position))
      FROM information_schema.columns WHERE table_schema = 'public' AND table_name = '$2'"
}

echo "exporting $src ..."
for t in "${tables[@]}"; do
    psql "$pg/$src" -qc "\\copy (SELECT $(select_list "$t") FROM public.$t) TO '$work/$t.tsv'"
done

# --- SQLite ---------------------------------------------------------------------------
mkdir -p "$work/sqlite/masking-rules"
cp "$repo/masking-rules/bench/public.toml" "$work/sqlite/masking-rules/main.toml"
for t in "${tables[@]}"; do ddl sqlite "$t"; done > "$work/sqlite.ddl"
python3 - "$work" "${tables[@]}" <<'PY'
import sqlite3, sys
work, tables = sys.argv[1], sys.argv[2:]
def fields(line):
    out = []
    for f in line.rstrip("\n").split("\t"):
        if f == "\\N":
            out.append(None)
            continue
        r, i = [], 0
        while i < len(f):
            c = f[i]
            if c == "\\" and i + 1 < len(f):
                n = f[i + 1]
                r.append({"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}.get(n, n)); i += 2
            else:
                r.append(c); i += 1
        out.append("".join(r))
    return out
db = sqlite3.connect(f"{work}/sqlite/prod.sqlite")
db.executescript(";\n".join(open(f"{work}/sqlite.ddl").read().splitlines()) + ";")
for t in tables:
    with open(f"{work}/{t}.tsv", encoding="utf-8") as f:
        rows = [fields(l) for l in f]
    if rows:
        db.executemany(f"INSERT INTO {t} VALUES ({','.join('?' * len(rows[0]))})", rows)
db.commit()
PY
cat > "$work/sqlite/lethe.toml" <<TOML
[source]
url = "sqlite://prod.sqlite"
[targets.bench]
url = "sqlite://dev.sqlite"
keep_previous = 0
[masking]
key = "lethe-bench-key-0123456789"
TOML
echo "sqlite: lethe refresh ..."
/usr/bin/time -f "sqlite lethe: %e s, peak RSS %M KB" "$lethe" --config "$work/sqlite/lethe.toml" refresh bench --no-progress "${lethe_args[@]}" 2>&1 | grep -E "refreshed|sqlite lethe"
start=$(date +%s.%N)
python3 - "$work" "${tables[@]}" <<'PY'
import sqlite3, sys
work, tables = sys.argv[1], sys.argv[2:]
db = sqlite3.connect(f"{work}/sqlite/raw.sqlite")
db.executescript(";\n".join(open(f"{work}/sqlite.ddl").read().splitlines()) + ";")
db.execute(f"ATTACH 'file:{work}/sqlite/prod.sqlite?mode=ro' AS p")
for t in tables:
    db.execute(f"INSERT INTO main.{t} SELECT * FROM p.{t}")
db.commit()
PY
printf "sqlite raw (INSERT ... SELECT over ATTACH): %.2f s\n" "$(echo "$(date +%s.%N) - $start" | bc)"

# --- MySQL / MariaDB ------------------------------------------------------------------
mydb=lethe_bench_my
$my -e "DROP DATABASE IF EXISTS $mydb; DROP DATABASE IF EXISTS ${mydb}_dev; DROP DATABASE IF EXISTS ${mydb}_raw;
        DROP DATABASE IF EXISTS ${mydb}_dev_lethe_prev; CREATE DATABASE $mydb CHARACTER SET utf8mb4;
        CREATE DATABASE ${mydb}_dev CHARACTER SET utf8mb4; CREATE DATABASE ${mydb}_raw CHARACTER SET utf8mb4"
for t in "${tables[@]}"; do
    $my "$mydb" -e "$(ddl mysql "$t"); LOAD DATA LOCAL INFILE '$work/$t.tsv' INTO TABLE $t CHARACTER SET utf8mb4"
done
mkdir -p "$work/mysql/masking-rules"
cp "$repo/masking-rules/bench/public.toml" "$work/mysql/masking-rules/$mydb.toml"
cat > "$work/mysql/lethe.toml" <<TOML
[source]
url = "mysql://root@127.0.0.1:3306/$mydb"
[targets.bench]
url = "mysql://root@127.0.0.1:3306/${mydb}_dev"
keep_previous = 0
[masking]
key = "lethe-bench-key-0123456789"
TOML
echo "mysql: lethe refresh ..."
/usr/bin/time -f "mysql lethe: %e s, peak RSS %M KB" "$lethe" --config "$work/mysql/lethe.toml" refresh bench --no-progress "${lethe_args[@]}" 2>&1 | grep -E "refreshed|mysql lethe|copying in pieces"
/usr/bin/time -f "mysql raw (mysqldump | mysql): %e s" sh -c \
    "mysqldump -uroot -h127.0.0.1 --single-transaction $mydb | mysql -uroot -h127.0.0.1 ${mydb}_raw"
$my -e "DROP DATABASE IF EXISTS $mydb; DROP DATABASE IF EXISTS ${mydb}_dev; DROP DATABASE IF EXISTS ${mydb}_raw; DROP DATABASE IF EXISTS ${mydb}_dev_lethe_prev"
