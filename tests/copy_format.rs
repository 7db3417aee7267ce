//! PostgreSQL tables travel in binary COPY where that is exact, and arrive identical to
//! the same refresh in COPY text (`--text-copy`): kept values of every common type, and
//! masked text, jsonb and dates, with the awkward values (escapes, BC dates, infinity,
//! NULLs, a cut to the column's width). A table that masks a column of another type, or
//! whose rules read across the row, goes as text.

mod common;

use common::{KEY, TestDb, Workspace, expect_exit};

const SCHEMA: &str = r#"
CREATE TYPE mood AS ENUM ('calm', 'tense');
CREATE DOMAIN label AS text CHECK (VALUE <> '');
CREATE TABLE people (
    id bigint PRIMARY KEY,
    email text NOT NULL,
    name varchar(12),
    code char(6),
    note text,
    tag label,
    born date,
    seen date,
    prefs jsonb,
    doc json,
    kept_text text,
    mood mood,
    tags text[],
    at timestamptz,
    amount numeric(12, 2),
    ratio float8,
    flag boolean,
    blob bytea,
    uid uuid,
    span interval
);
INSERT INTO people
SELECT g,
       'person' || g || '@corp.example',
       'Name' || g,
       lpad((g % 1000)::text, 4, '0'),
       CASE WHEN g % 7 = 0 THEN NULL ELSE E'line\ttab\nnew\\back ' || g || ' call +44 20 7946 0' || (g % 1000) END,
       'L' || g,
       CASE g % 5 WHEN 0 THEN NULL WHEN 1 THEN date '0044-03-15 BC' ELSE date '1950-01-01' + g END,
       CASE g % 4 WHEN 0 THEN 'infinity'::date WHEN 1 THEN '-infinity'::date ELSE date '2020-02-29' + g END,
       jsonb_build_object('contact', jsonb_build_object('email', 'p' || g || '@corp.example', 'tab', E'a\tb'), 'n', g, 'ok', g % 2 = 0),
       ('{"k": ' || g || ', "s": "x\\ny"}')::json,
       E'kept\\ttext\n' || g,
       CASE WHEN g % 2 = 0 THEN 'calm'::mood ELSE 'tense'::mood END,
       ARRAY['a', E'b\tc', NULL],
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute',
       g * 1.25,
       g / 3.0,
       g % 3 = 0,
       decode(md5(g::text), 'hex'),
       md5(g::text)::uuid,
       g * interval '1 second'
FROM generate_series(1, 20000) g;

CREATE TABLE devices (id int PRIMARY KEY, ip inet NOT NULL, owner text NOT NULL);
INSERT INTO devices SELECT g, ('10.0.' || (g / 250) || '.' || (g % 250))::inet, 'owner' || g FROM generate_series(1, 2000) g;

CREATE TABLE labels (id int PRIMARY KEY, first text NOT NULL, last text NOT NULL, badge text NOT NULL);
INSERT INTO labels SELECT g, E'Fi\trst' || g, 'Last' || g, '' FROM generate_series(1, 2000) g;
"#;

const RULES: &str = r#"
[people]
keep = ["id", "code", "kept_text", "mood", "tags", "at", "amount", "ratio", "flag", "blob", "uid", "span", "doc"]
email = "email"
name = "full_name"
note = "scrub"
tag = { mask = "constant", value = "masked" }
born = "date_of_birth"
seen = { mask = "generalize", to = "year" }
prefs = { mask = "json", paths = { "$.contact.email" = "email", "$.contact.tab" = "hash" } }

[devices]
keep = ["id"]
ip = "ip"
owner = "last_name"

[labels]
keep = ["id", "first", "last"]
badge = { mask = "template", template = "{first} {last}" }
"#;

/// Each table with its key, for a row-by-row digest.
const TABLES: [(&str, &str); 3] = [("people", "id"), ("devices", "id"), ("labels", "id")];

/// The megabytes read, from the summary line (`..., 4.2 MB in 1.0 s ...`).
fn megabytes_read(stdout: &str) -> String {
    stdout
        .split(" MB in ")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn binary_copies_equal_text_copies_value_for_value() {
    let source = TestDb::create("src").await;
    source.exec(SCHEMA).await;

    let binary = TestDb::create("bin").await;
    let ws_binary = Workspace::new(&source, &binary, KEY, &[("public", RULES)]);
    let (binary_out, _) = expect_exit(&ws_binary.lethe(&["refresh", "dev"]), 0);
    let text = TestDb::create("txt").await;
    let ws_text = Workspace::new(&source, &text, KEY, &[("public", RULES)]);
    let (text_out, _) = expect_exit(&ws_text.lethe(&["refresh", "dev", "--text-copy"]), 0);

    // Binary fields are length-prefixed: the same rows read as more bytes than text.
    assert_ne!(
        megabytes_read(&binary_out),
        megabytes_read(&text_out),
        "the default run read the same bytes as the text run: was anything read in binary?\n{binary_out}\n{text_out}"
    );
    for (table, order) in TABLES {
        let count = format!("SELECT count(*) FROM {table}");
        assert_eq!(
            binary.count(&count).await,
            source.count(&count).await,
            "{table}"
        );
        assert_eq!(
            binary.digest(table, order).await,
            text.digest(table, order).await,
            "{table}: the binary copy differs from the text copy"
        );
    }
    // Kept values arrive as they are in the source, whatever their type.
    let kept = "SELECT md5(string_agg(concat_ws('|', id, code, kept_text, mood, tags, at, amount, ratio, flag, blob, uid, span, doc::text), '#' ORDER BY id)) FROM people";
    assert_eq!(binary.column(kept).await, source.column(kept).await);
    // Masked values are masked: no real e-mail, and the width of varchar(12) holds.
    assert_eq!(
        binary
            .count("SELECT count(*) FROM people WHERE email LIKE 'person%' OR prefs->'contact'->>'email' LIKE 'p%@corp.example' OR length(name) > 12")
            .await,
        0
    );
    assert_eq!(
        binary
            .count("SELECT count(*) FROM people WHERE tag = 'masked'")
            .await,
        20000
    );
}
