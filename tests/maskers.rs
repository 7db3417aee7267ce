//! The masker catalogue end to end on a real PostgreSQL: JSON paths in jsonb and json
//! columns, arrays element by element, PII scrubbed out of free text and documents,
//! uuid/inet/cidr/macaddr columns, checksummed identifiers on unique columns, numbers
//! and dates made coarser or noisy, and consistency domains. Each test refreshes one
//! small source (a few hundred to a few thousand rows) into one dev database.

mod common;

use std::collections::{HashMap, HashSet};

use common::{KEY, TestDb, Workspace, expect_exit};

/// A source holding `sql` and an empty dev database, with `rules` as `public.toml`.
async fn setup(sql: &str, rules: &str) -> (TestDb, TestDb, Workspace) {
    let source = TestDb::create("src").await;
    source.exec(sql).await;
    let dev = TestDb::create("dev").await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", rules)]);
    (source, dev, ws)
}

/// The rows of a query keyed by their first column (every value cast to text by the SQL).
async fn by_id(db: &TestDb, sql: &str) -> HashMap<String, Vec<Option<String>>> {
    db.rows(sql)
        .await
        .into_iter()
        .map(|mut row| {
            let id = row.remove(0).unwrap_or_default();
            (id, row)
        })
        .collect()
}

/// The Luhn check digit that completes `payload` (digits only).
fn luhn_digit(payload: &str) -> u32 {
    let sum: u32 = payload
        .chars()
        .rev()
        .filter_map(|c| c.to_digit(10))
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 0 {
                (d * 2) % 10 + d * 2 / 10
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

/// Whether the digits of `number` (separators ignored) pass the Luhn check.
fn luhn_ok(number: &str) -> bool {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    let (payload, check) = digits.split_at(digits.len() - 1);
    check.parse::<u32>().ok() == Some(luhn_digit(payload))
}

/// ISO 7064 mod 97 of an IBAN-ordered string (letters count as 10..35).
fn mod97(s: &str) -> u32 {
    s.chars().fold(0u32, |acc, c| {
        let v = c
            .to_digit(36)
            .unwrap_or_else(|| panic!("not alphanumeric: {c:?}"));
        if v < 10 {
            (acc * 10 + v) % 97
        } else {
            (acc * 100 + v) % 97
        }
    })
}

/// Whether `iban` (spaces ignored) has a valid check.
fn iban_ok(iban: &str) -> bool {
    let compact: String = iban.chars().filter(|c| *c != ' ').collect();
    compact.len() > 4 && mod97(&format!("{}{}", &compact[4..], &compact[..4])) == 1
}

/// A valid IBAN of `country` with `bban`.
fn iban(country: &str, bban: &str) -> String {
    let check = 98 - mod97(&format!("{bban}{country}00"));
    format!("{country}{check:02}{bban}")
}

/// `s` in groups of four, as IBANs and cards are printed.
fn grouped(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where the non-alphanumeric characters of `s` are: its layout.
fn layout(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_digit() {
                '9'
            } else if c.is_ascii_alphabetic() {
                'A'
            } else {
                c
            }
        })
        .collect()
}

#[tokio::test]
async fn json_paths_mask_jsonb_and_json_documents() {
    let sql = r#"
        CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL, prefs jsonb, raw json NOT NULL);
        INSERT INTO customers
        SELECT g, 'person' || g || '@corp.test',
               jsonb_build_object(
                   'contact', jsonb_build_object('email', 'person' || g || '@corp.test',
                                                 'phone', '+49 30 ' || (1000000 + g)),
                   'items', jsonb_build_array(jsonb_build_object('name', 'Alice' || g, 'qty', g),
                                              jsonb_build_object('name', 'Bob', 'qty', 1.50)),
                   'language', 'de',
                   'big', 123456789012345678901234567890.000100),
               ('{"contact": {"email": "person' || g || '@corp.test", "phone": "+1 555 0100"}, '
                 || '"account": {"id": 123456789012345678901234567890, "tier": "gold"}, '
                 || '"notes": "private note ' || g || '"}')::json
        FROM generate_series(1, 500) g;
        UPDATE customers SET prefs = NULL WHERE id % 50 = 0;
    "#;
    let rules = r#"
        [customers]
        keep = ["id"]
        email = "email"
        prefs = { mask = "json", paths = { "$.contact.email" = "email", "$.contact.phone" = "phone", "$.items[*].name" = "first_name" } }
        raw = { mask = "json", paths = { "$.contact.email" = "email", "$.account.id" = "keep" }, rest = "drop" }
    "#;
    let (_source, dev, ws) = setup(sql, rules).await;
    expect_exit(&ws.lethe(&["refresh", "dev", "--no-progress"]), 0);

    // The address inside the documents is the very fake of the row's `email` column.
    assert_eq!(
        dev.count("SELECT count(*) FROM customers WHERE prefs->'contact'->>'email' = email AND email LIKE '%@example.com'")
            .await,
        490
    );
    assert_eq!(
        dev.count("SELECT count(*) FROM customers WHERE raw->'contact'->>'email' = email")
            .await,
        500
    );
    assert_eq!(
        dev.count("SELECT count(*) FROM customers WHERE prefs IS NULL")
            .await,
        10,
        "NULL stays NULL"
    );
    // Every item's name is masked; the array, its other members and the order stay.
    assert_eq!(
        dev.count(
            "SELECT count(*) FROM customers
             WHERE jsonb_array_length(prefs->'items') = 2
               AND prefs->'items'->0->>'name' NOT LIKE 'Alice%'
               AND prefs->'items'->1->>'name' <> 'Bob'
               AND prefs->'items'->0->>'qty' = id::text
               AND (prefs->'items'->1->'qty')::text = '1.50'"
        )
        .await,
        490
    );
    assert_eq!(
        dev.count("SELECT count(DISTINCT prefs->'items'->1->>'name') FROM customers")
            .await,
        1,
        "one real name, one fake name"
    );
    // The phone keeps its country code; its digits are keyed.
    assert_eq!(
        dev.count(
            "SELECT count(*) FROM customers
             WHERE prefs->'contact'->>'phone' LIKE '+49 %'
               AND prefs->'contact'->>'phone' <> '+49 30 ' || (1000000 + id)"
        )
        .await,
        490
    );
    // rest = "keep": what no path names is kept, a 36-digit number to the last digit.
    assert_eq!(
        dev.count(
            "SELECT count(*) FROM customers
             WHERE prefs->>'language' = 'de'
               AND (prefs->'big')::text = '123456789012345678901234567890.000100'"
        )
        .await,
        490
    );
    // rest = "drop" (a json column, kept as text): only the named paths remain.
    let keys = dev
        .column(
            "SELECT DISTINCT k FROM customers,
                LATERAL (SELECT json_object_keys(raw) UNION ALL
                         SELECT 'contact.' || json_object_keys(raw->'contact') UNION ALL
                         SELECT 'account.' || json_object_keys(raw->'account')) AS x(k)
             ORDER BY k",
        )
        .await;
    assert_eq!(
        keys,
        ["account", "account.id", "contact", "contact.email"].map(|k| Some(k.to_owned()))
    );
    assert_eq!(
        dev.count(
            "SELECT count(*) FROM customers
             WHERE (raw->'account'->'id')::text = '123456789012345678901234567890'"
        )
        .await,
        500
    );
    assert_eq!(
        dev.count(
            "SELECT count(*) FROM customers
             WHERE raw::text LIKE '%corp.test%' OR raw::text LIKE '%private%'
                OR prefs::text LIKE '%corp.test%' OR prefs::text LIKE '%Alice%'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn arrays_are_masked_element_by_element() {
    let sql = r#"
        CREATE TABLE people (
            id int PRIMARY KEY,
            email text NOT NULL,
            alt text NOT NULL,
            odd text NOT NULL,
            emails text[],
            nicks varchar(5)[]
        );
        INSERT INTO people
        SELECT g, 'p' || g || '@corp.test', 'q,' || g || '@corp.test', 'o"ha\ra' || g || '@corp.test',
               ARRAY['p' || g || '@corp.test', NULL, 'q,' || g || '@corp.test', 'o"ha\ra' || g || '@corp.test'],
               ARRAY[left('Nm' || g, 5), NULL, 'Bo']::varchar(5)[]
        FROM generate_series(1, 400) g;
        UPDATE people SET emails = NULL WHERE id % 40 = 0;
        UPDATE people SET emails = '{}' WHERE id % 40 = 1;
    "#;
    let rules = r#"
        [people]
        keep = ["id"]
        email = "email"
        alt = "email"
        odd = "email"
        emails = { mask = "array", element = "email" }
        nicks = { mask = "array", element = "first_name", max_length = 5 }
    "#;
    let (_source, dev, ws) = setup(sql, rules).await;

    // Masked elements are not cut by the copy: a bounded element type needs max_length.
    ws.write_rules("public", &rules.replace(", max_length = 5", ""));
    let out = ws.lethe(&["plan", "dev"]);
    let (stdout, stderr) = expect_exit(&out, 3);
    assert!(
        format!("{stdout}{stderr}").contains("set `max_length = 5`"),
        "{stdout}\n{stderr}"
    );
    ws.write_rules("public", rules);
    expect_exit(&ws.lethe(&["refresh", "dev", "--no-progress"]), 0);

    // Each element is the fake of the same value in a text column, quoted or not;
    // NULL elements, NULL arrays and empty arrays stay as they are.
    assert_eq!(
        dev.count(
            "SELECT count(*) FROM people
             WHERE array_length(emails, 1) = 4 AND emails[1] = email AND emails[2] IS NULL
               AND emails[3] = alt AND emails[4] = odd AND email LIKE '%@example.com'"
        )
        .await,
        380
    );
    assert_eq!(
        dev.count("SELECT count(*) FROM people WHERE emails IS NULL")
            .await,
        10
    );
    assert_eq!(
        dev.count("SELECT count(*) FROM people WHERE emails = '{}'")
            .await,
        10
    );
    assert_eq!(
        dev.count("SELECT count(DISTINCT emails[3]) FROM people")
            .await,
        380,
        "distinct inputs, distinct fakes"
    );
    let leaked = dev
        .rows("SELECT emails::text, alt, odd FROM people WHERE emails::text LIKE '%corp.test%' OR alt LIKE '%corp.test%' OR odd LIKE '%o\"ha%'")
        .await;
    assert!(leaked.is_empty(), "{leaked:?}");
    // varchar(5)[]: every element fits (PostgreSQL would refuse the row otherwise).
    assert_eq!(
        dev.count(
            "SELECT count(*) FROM people
             WHERE array_length(nicks, 1) = 3 AND nicks[2] IS NULL
               AND nicks[1] NOT LIKE 'Nm%' AND length(nicks[1]) <= 5 AND length(nicks[3]) <= 5"
        )
        .await,
        400
    );
    assert!(
        dev.count("SELECT count(*) FROM people WHERE length(nicks[1]) = 5")
            .await
            > 0,
        "long names are cut to max_length, not dropped"
    );
    assert!(
        dev.count("SELECT count(DISTINCT nicks[1]) FROM people")
            .await
            > 20
    );
    assert_eq!(
        dev.count("SELECT count(DISTINCT nicks[3]) FROM people")
            .await,
        1
    );
}

#[tokio::test]
async fn scrub_replaces_pii_in_text_and_jsonb_with_the_columns_fakes() {
    let mut rows = Vec::new();
    for g in 1..=600u64 {
        let payload = format!("45{:013}", g * 7919);
        let card = grouped(&format!("{payload}{}", luhn_digit(&payload)));
        let iban = grouped(&iban("DE", &format!("{:018}", g * 104_729)));
        rows.push(format!(
            "({g}, 'user{g}@corp.test', '+49 30 {}', '{card}', '{iban}')",
            1_000_000 + g
        ));
    }
    // The notes are built from the row's own columns, so the same expression over the
    // masked columns must give the masked notes, byte for byte.
    let note = "'Ticket from ' || email || E':\\n call ' || phone || E' or charge ' || card \
                || '; refund to ' || iban || E'. Dated 2024-01-15, order 12345, ünïcödé ✓\\t\\\\ end'";
    let doc = "jsonb_build_object('contact', email, 'text', 'call ' || phone || ' now', 'n', 42, 'card', card, 'iban', iban)";
    let sql = format!(
        "CREATE TABLE customers (
            id int PRIMARY KEY, email text NOT NULL, phone text NOT NULL, card text NOT NULL,
            iban text NOT NULL, notes text, doc jsonb
         );
         INSERT INTO customers (id, email, phone, card, iban) VALUES {};
         UPDATE customers SET notes = {note}, doc = {doc};
         UPDATE customers SET notes = 'Plain note, nothing personal: 2024-01-15 / 3 items / 1.50' WHERE id % 10 = 0;
         UPDATE customers SET doc = NULL, notes = NULL WHERE id % 10 = 1;",
        rows.join(",\n")
    );
    let rules = r#"
        [customers]
        keep = ["id"]
        email = "email"
        phone = "phone"
        card = "credit_card"
        iban = "iban"
        notes = "scrub"
        doc = "scrub"
    "#;
    let (source, dev, ws) = setup(&sql, rules).await;
    expect_exit(&ws.lethe(&["refresh", "dev", "--no-progress"]), 0);

    assert_eq!(
        dev.count(&format!(
            "SELECT count(*) FROM customers WHERE notes = {note} AND doc = {doc}"
        ))
        .await,
        480
    );
    assert_eq!(
        dev.count(
            "SELECT count(*) FROM customers
             WHERE notes = 'Plain note, nothing personal: 2024-01-15 / 3 items / 1.50'"
        )
        .await,
        60
    );
    assert_eq!(
        dev.count("SELECT count(*) FROM customers WHERE notes IS NULL AND doc IS NULL")
            .await,
        60
    );
    // Every dedicated column was masked, so the checks above compared fakes.
    let real = source
        .column("SELECT email || phone || card || iban FROM customers")
        .await;
    let fake: HashSet<_> = dev
        .column("SELECT email || phone || card || iban FROM customers")
        .await
        .into_iter()
        .collect();
    assert!(real.iter().all(|r| !fake.contains(r)));
    assert_eq!(
        dev.count(
            "SELECT count(*) FROM customers
             WHERE notes LIKE '%corp.test%' OR notes LIKE '%+49 30 10%'
                OR doc::text LIKE '%corp.test%' OR email = 'user1@corp.test'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn uuid_inet_cidr_and_macaddr_columns() {
    let sql = "
        CREATE TABLE devices (
            n int NOT NULL UNIQUE,
            id uuid PRIMARY KEY,
            owner uuid,
            ip inet NOT NULL UNIQUE,
            net cidr,
            mac macaddr NOT NULL UNIQUE,
            mac_any macaddr
        );
        CREATE TABLE sessions (id int PRIMARY KEY, device_id uuid NOT NULL REFERENCES devices(id), ip inet);
        INSERT INTO devices
        SELECT g, md5(g::text)::uuid, CASE WHEN g % 2 = 0 THEN md5(g::text)::uuid END,
               CASE WHEN g % 5 = 0 THEN ('2001:db8::' || to_hex(g) || '/64')::inet
                    ELSE ('10.' || g / 250 || '.' || g % 250 || '.7/24')::inet END,
               ('192.168.' || g % 256 || '.0/24')::cidr,
               ('08002b' || lpad(to_hex(g), 6, '0'))::macaddr,
               ('08002b' || lpad(to_hex(g), 6, '0'))::macaddr
        FROM generate_series(1, 1000) g;
        INSERT INTO sessions SELECT s, d.id, d.ip FROM generate_series(1, 2000) s JOIN devices d ON d.n = 1 + s % 1000;
    ";
    let rules = r#"
        [devices]
        keep = ["n"]
        id = "uuid"
        owner = "uuid"
        ip = "ip"
        net = { mask = "ip", keep_prefix = 8 }
        mac = { mask = "mac", keep_oui = true }
        mac_any = "mac"

        [sessions]
        keep = ["id"]
        device_id = "uuid"
        ip = "ip"
    "#;
    let (source, dev, ws) = setup(sql, rules).await;
    expect_exit(&ws.lethe(&["refresh", "dev", "--no-progress"]), 0);

    // One domain per masker: the foreign key and the copied ip still match.
    assert_eq!(
        dev.count(
            "SELECT count(*) FROM sessions s JOIN devices d ON d.id = s.device_id AND d.ip = s.ip"
        )
        .await,
        2000
    );
    assert_eq!(
        dev.count("SELECT count(*) FROM devices WHERE owner = id")
            .await,
        500
    );
    assert_eq!(
        dev.count(
            "SELECT count(*) FROM devices
             WHERE substr(id::text, 15, 1) = '4' AND substr(id::text, 20, 1) IN ('8', '9', 'a', 'b')"
        )
        .await,
        1000,
        "version 4 UUIDs"
    );
    let query = "SELECT n::text, id::text, family(ip)::text, masklen(ip)::text, host(ip), net::text, \
                 mac::text, mac_any::text FROM devices";
    let before = by_id(&source, query).await;
    let after = by_id(&dev, query).await;
    assert_eq!(after.len(), 1000);
    let source_macs: HashSet<_> = before.values().map(|r| r[5].clone()).collect();
    for (n, real) in &before {
        let fake = &after[n];
        assert_ne!(fake[0], real[0], "uuid {n}");
        assert_eq!(
            (&fake[1], &fake[2]),
            (&real[1], &real[2]),
            "family and /nn {n}"
        );
        assert_ne!(fake[3], real[3], "address {n}");
        let net = fake[4].as_deref().unwrap_or_default();
        assert!(net.starts_with("192.") && net.ends_with(".0/24"), "{net}");
        // keep_oui keeps the vendor and permutes the device part.
        let mac = fake[5].as_deref().unwrap_or_default();
        assert!(mac.starts_with("08:00:2b:"), "{mac}");
        assert_ne!(fake[5], real[5]);
        // Without it, the stand-in is a locally administered unicast address.
        let any = fake[6].as_deref().unwrap_or_default();
        let first = u8::from_str_radix(&any[..2], 16).unwrap_or_else(|e| panic!("{any}: {e}"));
        assert_eq!(first & 0b11, 0b10, "{any}");
        assert!(!source_macs.contains(&fake[6]));
    }
    assert!(
        dev.count("SELECT count(DISTINCT net) FROM devices").await > 200,
        "networks are permuted, not collapsed"
    );
    assert!(
        dev.count(
            "SELECT count(*) FROM devices WHERE net <> ('192.168.' || n % 256 || '.0/24')::cidr"
        )
        .await
            > 900
    );
}

#[tokio::test]
async fn checksummed_identifiers_stay_valid_and_unique() {
    let mut rows = Vec::new();
    for g in 1..=3000u64 {
        let iban = if g % 3 == 0 {
            iban("NL", &format!("ABNA{:010}", g))
        } else {
            grouped(&iban("DE", &format!("{:018}", g)))
        };
        let card = if g % 4 == 0 {
            let payload = format!("37{:012}", g);
            let number = format!("{payload}{}", luhn_digit(&payload));
            format!("{}-{}-{}", &number[..4], &number[4..10], &number[10..])
        } else {
            let payload = format!("4{:014}", g);
            format!("{payload}{}", luhn_digit(&payload))
        };
        rows.push(format!("({g}, '{iban}', '{card}', 'TX-{g:09}-K')"));
    }
    let sql = format!(
        "CREATE TABLE accounts (
            id int PRIMARY KEY, iban text NOT NULL UNIQUE, card text NOT NULL UNIQUE,
            tax_id text NOT NULL UNIQUE
         );
         INSERT INTO accounts VALUES {};",
        rows.join(",\n")
    );
    let rules = r#"
        [accounts]
        keep = ["id"]
        iban = "iban"
        card = "credit_card"
        tax_id = { mask = "national_id", format = "digits" }
    "#;
    let (source, dev, ws) = setup(&sql, rules).await;

    // Fail closed: never-issued SSNs are too few for a unique column.
    ws.write_rules(
        "public",
        &rules.replace(
            "{ mask = \"national_id\", format = \"digits\" }",
            "\"national_id\"",
        ),
    );
    let (stdout, stderr) = expect_exit(&ws.lethe(&["plan", "dev"]), 3);
    assert!(
        format!("{stdout}{stderr}").contains("public.accounts.tax_id")
            && format!("{stdout}{stderr}").contains("unique"),
        "{stdout}\n{stderr}"
    );
    ws.write_rules("public", rules);
    // The unique indexes are built after the load: one collision fails the refresh.
    expect_exit(&ws.lethe(&["refresh", "dev", "--no-progress"]), 0);

    let query = "SELECT id::text, iban, card, tax_id FROM accounts";
    let before = by_id(&source, query).await;
    let after = by_id(&dev, query).await;
    assert_eq!(after.len(), 3000);
    for (id, real) in &before {
        let fake: Vec<&str> = after[id]
            .iter()
            .map(|v| v.as_deref().unwrap_or(""))
            .collect();
        let real: Vec<&str> = real.iter().map(|v| v.as_deref().unwrap_or("")).collect();
        // IBAN: valid mod 97, same country, length and grouping; NL keeps letters there.
        assert!(iban_ok(fake[0]), "{id}: {}", fake[0]);
        assert_eq!(layout(fake[0]), layout(real[0]), "{id}");
        assert_eq!(fake[0][..2], real[0][..2]);
        assert_ne!(fake[0], real[0]);
        // Card: Luhn-valid, same layout and brand prefix.
        assert!(luhn_ok(fake[1]), "{id}: {}", fake[1]);
        assert_eq!(layout(fake[1]), layout(real[1]), "{id}");
        let brand = if real[1].starts_with('4') { 1 } else { 2 };
        assert_eq!(fake[1][..brand], real[1][..brand]);
        assert_ne!(fake[1], real[1]);
        // Tax id: every digit replaced, letters and dashes kept.
        assert!(
            fake[2].starts_with("TX-") && fake[2].ends_with("-K"),
            "{}",
            fake[2]
        );
        assert_eq!(layout(fake[2]), layout(real[2]));
        assert_ne!(fake[2], real[2]);
    }
    // No fake is some other row's real value either.
    let real: HashSet<&str> = before
        .values()
        .flat_map(|r| r.iter().map(|v| v.as_deref().unwrap_or("")))
        .collect();
    assert!(
        after
            .values()
            .flat_map(|r| r.iter().map(|v| v.as_deref().unwrap_or("")))
            .all(|v| !real.contains(v))
    );
}

#[tokio::test]
async fn generalize_and_noise_on_numbers_and_dates() {
    let sql = "
        CREATE TABLE stats (
            id int PRIMARY KEY,
            born date NOT NULL,
            seen timestamp,
            age int NOT NULL,
            salary numeric(12,2) NOT NULL,
            score double precision,
            zip text
        );
        INSERT INTO stats
        SELECT g, date '1950-01-01' + g * 17, timestamp '2019-03-14 12:34:56.78' + g * interval '37 hours',
               g % 97 - 5, CASE WHEN g % 100 = 0 THEN 0 ELSE (g % 500) * 10.25 END,
               (g % 100)::float8 + 0.5, lpad((g * 7)::text, 5, '0')
        FROM generate_series(1, 2000) g;
    ";
    let rules = r#"
        [stats]
        keep = ["id"]
        born = { mask = "generalize", to = "year" }
        seen = { mask = "generalize", to = "month" }
        age = { mask = "generalize", to = "bucket", size = 10 }
        salary = { mask = "noise", percent = 10 }
        score = { mask = "noise", percent = 50, min = 0, max = 100 }
        zip = { mask = "generalize", to = "prefix", keep = 3 }
    "#;
    let (source, dev, ws) = setup(sql, rules).await;
    expect_exit(&ws.lethe(&["refresh", "dev", "--no-progress"]), 0);

    let expected = by_id(
        &source,
        "SELECT id::text, date_trunc('year', born)::date::text, date_trunc('month', seen)::text,
                (floor(age / 10.0) * 10)::int::text, left(zip, 3) FROM stats",
    )
    .await;
    let coarse = by_id(
        &dev,
        "SELECT id::text, born::text, seen::text, age::text, zip FROM stats",
    )
    .await;
    assert_eq!(coarse, expected);
    assert!(
        source
            .count("SELECT count(*) FROM stats WHERE born <> date_trunc('year', born) AND age % 10 <> 0")
            .await
            > 1000,
        "the inputs were not already coarse"
    );

    let real = by_id(
        &source,
        "SELECT id::text, salary::text, score::text FROM stats",
    )
    .await;
    let noisy = by_id(
        &dev,
        "SELECT id::text, salary::text, score::text FROM stats",
    )
    .await;
    let num = |v: &Option<String>| -> f64 {
        v.as_deref()
            .unwrap_or_default()
            .parse()
            .unwrap_or_else(|e| panic!("{v:?}: {e}"))
    };
    let mut moved = 0;
    let mut by_salary: HashMap<String, String> = HashMap::new();
    for (id, r) in &real {
        let (s, f) = (num(&r[0]), num(&noisy[id][0]));
        assert!((f - s).abs() <= s * 0.1 + 0.01, "{id}: {s} -> {f}");
        if s == 0.0 {
            assert_eq!(f, 0.0);
        }
        moved += usize::from(f != s);
        // The same real value moves the same way.
        let fake = noisy[id][0].clone().unwrap_or_default();
        let seen = by_salary
            .entry(r[0].clone().unwrap_or_default())
            .or_insert_with(|| fake.clone());
        assert_eq!(*seen, fake, "{id}");
        let (s, f) = (num(&r[1]), num(&noisy[id][1]));
        assert!((0.0..=100.0).contains(&f), "{id}: {f}");
        assert!((f - s).abs() <= s * 0.5 + 1e-9, "{id}: {s} -> {f}");
    }
    assert!(moved > 1800, "only {moved} salaries moved");
    assert!(
        dev.count("SELECT count(*) FROM stats WHERE score <> (id % 100) + 0.5")
            .await
            > 1800,
        "scores moved"
    );
}

#[tokio::test]
async fn consistency_domains_join_equal_names_and_separate_others() {
    let sql = "
        CREATE TABLE accounts (
            id int PRIMARY KEY, login text NOT NULL, login_copy text NOT NULL,
            login_other text NOT NULL, mail text NOT NULL
        );
        CREATE TABLE contacts (id int PRIMARY KEY, account_login text NOT NULL, mail text NOT NULL);
        INSERT INTO accounts
        SELECT g, 'user' || g, 'user' || g, 'user' || g, 'user' || g || '@corp.test'
        FROM generate_series(1, 500) g;
        INSERT INTO contacts
        SELECT g, 'user' || (1 + g % 500), 'user' || (1 + g % 500) || '@corp.test'
        FROM generate_series(1, 1500) g;
    ";
    let rules = r#"
        [accounts]
        keep = ["id"]
        login = { mask = "hash", domain = "login" }
        login_copy = { mask = "hash", domain = "login" }
        login_other = { mask = "hash", domain = "other" }
        mail = "email"

        [contacts]
        keep = ["id"]
        account_login = { mask = "hash", domain = "login" }
        mail = { mask = "email", domain = "crm" }
    "#;
    let (_source, dev, ws) = setup(sql, rules).await;
    expect_exit(&ws.lethe(&["refresh", "dev", "--no-progress"]), 0);

    assert_eq!(
        dev.count(
            "SELECT count(*) FROM accounts WHERE login = login_copy AND login NOT LIKE 'user%'"
        )
        .await,
        500
    );
    assert_eq!(
        dev.count("SELECT count(*) FROM accounts WHERE login = login_other")
            .await,
        0
    );
    assert_eq!(
        dev.count("SELECT count(*) FROM contacts c JOIN accounts a ON a.login = c.account_login AND a.id = 1 + c.id % 500")
            .await,
        1500
    );
    // `email` in its default domain and in `crm`: the same addresses, other fakes.
    assert_eq!(
        dev.count("SELECT count(*) FROM contacts c JOIN accounts a ON a.mail = c.mail")
            .await,
        0
    );
    assert_eq!(
        dev.count("SELECT count(DISTINCT mail) FROM contacts").await,
        500
    );
}
