//! `lethe scan` against a real PostgreSQL: suggestions and confidences from names and
//! sampled values, no sampled value in the output, and `--write` proposals that `lethe
//! plan` accepts while the rules file keeps its comments.

mod common;

use common::{KEY, TestDb, Workspace, expect_exit};

const SCHEMA: &str = "
CREATE TYPE state AS ENUM ('new', 'done');
CREATE TABLE customers (
    id bigserial PRIMARY KEY,
    email text NOT NULL,
    phone text,
    card_number text,
    payout_account text,
    ssn text,
    notes text,
    prefs jsonb,
    active boolean NOT NULL DEFAULT true,
    balance numeric(10,2) NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00',
    status text,
    progress state
);
INSERT INTO customers (email, phone, card_number, payout_account, ssn, notes, prefs, status, progress)
SELECT 'person' || g || '@corp.example',
       '+1 555 ' || lpad(g::text, 7, '0'),
       (ARRAY['4111111111111111', '5500000000000004', '340000000000009', '6011000000000004',
              '4012888888881881'])[1 + g % 5],
       (ARRAY['DE89370400440532013000', 'GB82WEST12345698765432', 'NL91ABNA0417164300',
              'FR1420041010050500013M02606'])[1 + g % 4],
       (100 + g % 500) || '-' || lpad((10 + g % 89)::text, 2, '0') || '-' || (1000 + g),
       CASE WHEN g % 4 = 0 THEN 'please write to person' || g || '@mail.example about the order'
            ELSE 'called about the delivery' END,
       jsonb_build_object('contact', jsonb_build_object('email', 'p' || g || '@corp.example'),
                          'lang', 'de'),
       CASE WHEN g % 2 = 0 THEN 'open' ELSE 'closed' END,
       'new'
FROM generate_series(1, 300) g;
CREATE TABLE events (
    id bigint PRIMARY KEY,
    kind text NOT NULL
);
INSERT INTO events SELECT g, 'kind ' || (g % 7) FROM generate_series(1, 30000) g;
ANALYZE;
";

/// The existing rules: one reviewed line and a comment that must survive `--write`.
const RULES: &str = "# Reviewed by the DPO on 2026-11-30: keep this comment.\n[customers]\nkeep = [\"id\", \"phone\"]   # surrogate key\n";

/// The report line of one column.
fn line<'a>(stdout: &'a str, column: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{column} ")))
        .unwrap_or_else(|| panic!("no line for {column} in\n{stdout}"))
}

/// Asserts the suggested masker and the confidence of one column's line.
fn suggests(stdout: &str, column: &str, masker: &str, confidence: &str) {
    let l = line(stdout, column);
    // Fields are set apart by two or more spaces (a type name may hold single ones).
    let words: Vec<&str> = l
        .split("  ")
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect();
    assert!(
        words.len() > 3 && words[2] == masker && words[3] == confidence,
        "{column}: expected {masker} ({confidence}), got: {l}"
    );
}

#[tokio::test]
async fn scan_suggests_rules_and_writes_them_for_review() {
    let source = TestDb::create("scan").await;
    source.exec(SCHEMA).await;
    let ws = Workspace::new(&source, &source, KEY, &[("public", RULES)]);

    let out = ws.lethe(&["scan", "--sample", "200"]);
    let (stdout, stderr) = expect_exit(&out, 3);
    suggests(&stdout, "email", "email", "high");
    assert!(
        line(&stdout, "email")
            .contains("name matches `email`; 100% of 200 sampled values are e-mail addresses"),
        "{stdout}"
    );
    // A kept column that looks like personal data is covered, with a warning.
    assert!(
        line(&stdout, "phone").contains(
            "covered: keep  (warning: looks like personal data, scan suggests `phone` (high): name matches `phone`"
        ),
        "{stdout}"
    );
    suggests(&stdout, "card_number", "credit_card", "high");
    suggests(&stdout, "payout_account", "iban", "high");
    suggests(&stdout, "ssn", "national_id", "high");
    suggests(&stdout, "notes", "scrub", "high");
    assert!(
        line(&stdout, "notes").contains("25% of 200 sampled values contain personal data"),
        "{stdout}"
    );
    suggests(&stdout, "prefs", "json", "high");
    suggests(&stdout, "active", "keep", "high");
    suggests(&stdout, "balance", "keep", "high");
    suggests(&stdout, "created_at", "keep", "high");
    suggests(&stdout, "progress", "keep", "medium");
    suggests(&stdout, "status", "null", "low");
    assert!(line(&stdout, "id").contains("covered: keep"), "{stdout}");
    assert!(
        stdout.contains("public.customers  (~300 rows, 200 sampled)"),
        "{stdout}"
    );
    // The large table is sampled by pages, still up to the limit.
    assert!(
        stdout.contains("public.events  (~30000 rows, 200 sampled)"),
        "{stdout}"
    );

    // No sampled value appears, in full or in part.
    let all = format!("{stdout}\n{stderr}");
    for fragment in [
        "corp.example",
        "mail.example",
        "person1",
        "555 0",
        "4111111111111111",
        "5500000000000004",
        "DE89370400440532013000",
        "GB82WEST",
        "-1001",
        "called about",
        "please write",
        "\"lang\"",
    ] {
        assert!(
            !all.contains(fragment),
            "`{fragment}` in the output:\n{all}"
        );
    }

    // --write adds a rule for every column without one; plan then accepts the rules.
    let (stdout, stderr) = expect_exit(&ws.lethe(&["scan", "--write"]), 0);
    assert!(
        stdout.contains("public.toml (updated): 13 proposed rule(s)"),
        "{stdout}"
    );
    assert!(!format!("{stdout}{stderr}").contains("corp.example"));
    let rules = std::fs::read_to_string(ws.path().join("masking-rules/public.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        rules.starts_with(
            "# Reviewed by the DPO on 2026-11-30: keep this comment.\n[customers]\nkeep = [\"id\", \"phone\"]   # surrogate key\n"
        ),
        "{rules}"
    );
    assert!(
        rules.contains(
            "# proposed by lethe scan: high, name matches `email`; 100% of 300 sampled values are e-mail addresses\nemail = \"email\"\n"
        ),
        "{rules}"
    );
    assert!(rules.contains("\n[events]\n"), "{rules}");
    assert!(rules.contains("\nactive = \"keep\"\n"), "{rules}");
    assert!(rules.contains("\nstatus = \"null\"\n"), "{rules}");
    // A suggested masker this build lacks stands in as `null`, saying so.
    for (column, masker) in [("card_number", "credit_card"), ("notes", "scrub")] {
        let written = rules
            .lines()
            .find(|l| l.starts_with(&format!("{column} = ")))
            .unwrap_or_else(|| panic!("no rule for {column}:\n{rules}"));
        assert!(
            written == format!("{column} = \"{masker}\"")
                || written == format!("{column} = \"null\""),
            "{written}"
        );
    }
    for value in ["corp.example", "4111111111111111", "GB82WEST"] {
        assert!(!rules.contains(value), "{rules}");
    }
    expect_exit(&ws.lethe(&["plan", "dev"]), 0);

    // Now everything is covered: a scan says so and exits 0.
    let (stdout, _) = expect_exit(&ws.lethe(&["scan"]), 0);
    assert!(stdout.contains("every column has a rule"), "{stdout}");
}

#[tokio::test]
async fn scan_starts_without_rules_and_refuses_unknown_schemas() {
    let source = TestDb::create("scan0").await;
    source
        .exec("CREATE TABLE people (id int PRIMARY KEY, first_name text, dob date);")
        .await;
    let ws = Workspace::new(&source, &source, KEY, &[]);

    let (stdout, _) = expect_exit(&ws.lethe(&["scan", "--schema", "nope"]), 2);
    assert!(stdout.is_empty(), "{stdout}");

    let (stdout, _) = expect_exit(&ws.lethe(&["scan", "--schema", "public"]), 3);
    suggests(&stdout, "first_name", "first_name", "medium");
    suggests(&stdout, "dob", "date_of_birth", "medium");
    suggests(&stdout, "id", "keep", "high");

    let (stdout, _) = expect_exit(&ws.lethe(&["scan", "--write"]), 0);
    assert!(
        stdout.contains("public.toml (new file): 3 proposed rule(s)"),
        "{stdout}"
    );
    let rules = std::fs::read_to_string(ws.path().join("masking-rules/public.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        rules.starts_with("[people]\n# proposed by lethe scan: "),
        "{rules}"
    );
    assert!(rules.contains("\nfirst_name = \"first_name\"\n"), "{rules}");
    expect_exit(&ws.lethe(&["plan", "dev"]), 0);
}
