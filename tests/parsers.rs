//! Bad input never panics: every parser of what a user writes (lethe.toml, `${...}`,
//! masking rules, schedules) and the COPY text codec, fed arbitrary and near-valid input,
//! gives a value or an error. Where a parse has an inverse, the round trip holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lethe::config::{Config, EnvError, interpolate_with};
use lethe::rows::copy_text;
use lethe::rules::{Rule, RuleSet};
use lethe::schedule::{self, FireTimes};
use proptest::prelude::*;
use secrecy::ExposeSecret;

/// How many cases a property runs: `default`, or `PROPTEST_CASES` to hunt longer.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// The variables `${NAME}` may find.
fn lookup(name: &str) -> Option<String> {
    match name {
        "A" => Some("alpha".into()),
        "URL" => Some("postgres://u:pw@h/db".into()),
        "KEY" => Some("0123456789abcdef0123".into()),
        "EMPTY" => Some(String::new()),
        "DOLLAR" => Some("$${A}".into()),
        _ => None,
    }
}

/// A stand-in for secret files: `ok` reads, everything else is missing.
fn read_file(path: &str) -> Result<String, EnvError> {
    match path {
        "ok" => Ok("from-file".into()),
        other => Err(EnvError::FileMissing(PathBuf::from(other))),
    }
}

/// `$` written so that interpolation gives it back.
fn escape(text: &str) -> String {
    text.replace('$', "$$")
}

/// A TOML basic string holding `text`.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// Pieces of text that exercise every branch of `${...}`.
fn interpolation_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z/:@ ]{0,8}",
        Just("$".to_owned()),
        Just("$$".to_owned()),
        Just("${".to_owned()),
        Just("}".to_owned()),
        Just("${A}".to_owned()),
        Just("${URL}".to_owned()),
        Just("${NOPE}".to_owned()),
        Just("${1X}".to_owned()),
        Just("${}".to_owned()),
        Just("${file:}".to_owned()),
        Just("${file:ok}".to_owned()),
        Just("${file:/no/such/file}".to_owned()),
        Just("${file:/dev/null}".to_owned()),
        Just("${file:/}".to_owned()),
        Just("${DOLLAR}".to_owned()),
        "\\PC{0,4}",
    ]
}

fn interpolation_text() -> impl Strategy<Value = String> {
    prop::collection::vec(interpolation_piece(), 0..8).prop_map(|p| p.concat())
}

/// [`interpolation_text`] that reads no secret (`${URL}`, `${KEY}`), for paths.
fn path_text() -> impl Strategy<Value = String> {
    interpolation_text().prop_map(|t| t.replace("${URL}", "${A}"))
}

/// A value for a lethe.toml key, mostly of the type it wants.
fn config_value(key: &'static str) -> BoxedStrategy<String> {
    let text = prop_oneof![
        2 => interpolation_text().prop_map(|t| toml_string(&t)),
        1 => Just(toml_string("${URL}")),
        1 => Just(toml_string("${KEY}")),
        1 => Just(toml_string("postgres://h/db")),
        1 => Just(toml_string("sqlite://x.sqlite")),
    ];
    let right: BoxedStrategy<String> = match key {
        // Paths are not secrets: an error may show them, so they never read URL or KEY.
        "rules" => path_text().prop_map(|t| toml_string(&t)).boxed(),
        "schemas" | "after_refresh" => prop::collection::vec(path_text(), 0..3)
            .prop_map(|v| {
                toml::Value::Array(v.into_iter().map(toml::Value::String).collect()).to_string()
            })
            .boxed(),
        "keep_previous" | "attempts" | "retry_backoff_secs" => prop_oneof![
            (-2i64..4).prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            Just("4294967296".to_owned()),
        ]
        .boxed(),
        "verify" => any::<bool>().prop_map(|b| b.to_string()).boxed(),
        "mode" => prop::sample::select(vec!["production", "development", "prod", ""])
            .prop_map(toml_string)
            .boxed(),
        "profile" => prop::sample::select(vec!["staging", "", "a/b", "ü", "-"])
            .prop_map(toml_string)
            .boxed(),
        "listen" => prop::sample::select(vec!["0.0.0.0:7070", "nope", ""])
            .prop_map(toml_string)
            .boxed(),
        _ => text.boxed(),
    };
    let wrong = prop::sample::select(vec!["1", "true", "[]", "{ a = 1 }", "1.5", "nan", "\"x\""])
        .prop_map(str::to_owned);
    prop_oneof![24 => right, 1 => wrong].boxed()
}

/// One section of lethe.toml: its header, its `required` keys (each left out at times)
/// and some of its `optional` ones.
fn config_section(
    header: &'static str,
    required: &'static [&'static str],
    optional: &'static [&'static str],
) -> impl Strategy<Value = String> {
    let required = prop::collection::vec(prop::bool::weighted(0.95), required.len()).prop_map(
        move |present| {
            required
                .iter()
                .zip(present)
                .filter_map(|(k, p)| p.then_some(*k))
                .collect::<Vec<_>>()
        },
    );
    (
        required,
        prop::sample::subsequence(optional.to_vec(), 0..=optional.len()),
    )
        .prop_flat_map(|(mut keys, optional)| {
            keys.extend(optional);
            keys.into_iter()
                .map(|k| config_value(k).prop_map(move |v| format!("{k} = {v}")))
                .collect::<Vec<_>>()
        })
        .prop_map(move |lines| format!("{header}\n{}\n", lines.join("\n")))
}

/// lethe.toml text: its sections, each present or not, with right or wrong values.
fn config_text() -> impl Strategy<Value = String> {
    (
        config_section("[source]", &["url"], &["schemas"]),
        prop::option::of(config_section(
            "[targets.dev]",
            &["url"],
            &["keep_previous", "after_refresh", "verify", "profile"],
        )),
        prop::option::of(config_section("[targets.\"a b\"]", &["url"], &["profile"])),
        config_section("[masking]", &["key"], &["rules"]),
        prop::option::of(config_section(
            "[daemon]",
            &[],
            &["listen", "mode", "attempts", "retry_backoff_secs"],
        )),
        prop::option::of(config_section("[audit]", &[], &["url"])),
        prop_oneof![
            16 => Just(String::new()),
            1 => Just("[nope]\n".to_owned()),
            1 => "\\PC{0,12}",
        ],
    )
        .prop_map(|(source, dev, other, masking, daemon, audit, extra)| {
            [
                Some(source),
                dev,
                other,
                Some(masking),
                daemon,
                audit,
                Some(extra),
            ]
            .into_iter()
            .flatten()
            .collect::<String>()
        })
}

/// The kind of value an option takes, to write one of it (or, at times, of another kind).
#[derive(Debug, Clone, Copy)]
enum Kind {
    Bool,
    Int,
    Float,
    Text,
    Texts,
    Pair,
    Rule,
    Paths,
}

/// Each masker (and `synth` generator) with its options, so that most generated rules
/// reach the builder's own checks rather than stop at an unknown option.
const MASKERS: &[(&str, &[(&str, Kind)])] = &[
    (
        "array",
        &[("element", Kind::Rule), ("max_length", Kind::Int)],
    ),
    ("city", &[]),
    ("company", &[("max_length", Kind::Int)]),
    (
        "country",
        &[
            ("keep", Kind::Bool),
            ("code", Kind::Bool),
            ("max_length", Kind::Int),
        ],
    ),
    ("credit_card", &[("keep_brand", Kind::Bool)]),
    (
        "date_of_birth",
        &[
            ("min_age", Kind::Int),
            ("max_age", Kind::Int),
            ("as_of", Kind::Text),
        ],
    ),
    ("date_shift", &[("days", Kind::Int), ("by", Kind::Texts)]),
    (
        "email",
        &[
            ("email_domain", Kind::Text),
            ("max_length", Kind::Int),
            ("keep_domain_shape", Kind::Bool),
        ],
    ),
    ("first_name", &[]),
    ("full_name", &[]),
    (
        "generalize",
        &[
            ("to", Kind::Text),
            ("size", Kind::Int),
            ("keep", Kind::Int),
            ("char", Kind::Text),
        ],
    ),
    ("hash", &[("length", Kind::Int), ("domain", Kind::Text)]),
    (
        "iban",
        &[("keep_country", Kind::Bool), ("country", Kind::Text)],
    ),
    ("ip", &[("keep_prefix", Kind::Int)]),
    ("job_title", &[("max_length", Kind::Int)]),
    ("json", &[("paths", Kind::Paths), ("rest", Kind::Text)]),
    ("last_name", &[]),
    ("latitude", &[("noise_km", Kind::Float)]),
    ("longitude", &[("noise_km", Kind::Float)]),
    ("lorem", &[("max_length", Kind::Int)]),
    ("mac", &[("keep_oui", Kind::Bool)]),
    ("national_id", &[("format", Kind::Text)]),
    (
        "noise",
        &[
            ("percent", Kind::Float),
            ("min", Kind::Float),
            ("max", Kind::Float),
        ],
    ),
    (
        "partial",
        &[
            ("keep_last", Kind::Int),
            ("keep_first", Kind::Int),
            ("char", Kind::Text),
        ],
    ),
    ("phone", &[("keep_country_code", Kind::Bool)]),
    ("postcode", &[]),
    (
        "redact",
        &[
            ("text", Kind::Text),
            ("keep_length", Kind::Bool),
            ("char", Kind::Text),
        ],
    ),
    ("regex", &[("pattern", Kind::Text), ("replace", Kind::Text)]),
    ("scrub", &[("find", Kind::Texts)]),
    (
        "state",
        &[("abbreviated", Kind::Bool), ("max_length", Kind::Int)],
    ),
    ("street", &[]),
    (
        "username",
        &[("max_length", Kind::Int), ("unique", Kind::Bool)],
    ),
    ("uuid", &[]),
    ("constant", &[("value", Kind::Text)]),
    ("template", &[("template", Kind::Text)]),
    ("keep", &[("bogus", Kind::Bool)]),
    ("null", &[]),
    ("emial", &[]),
];

const SYNTHS: &[(&str, &[(&str, Kind)])] = &[
    ("int", &[("range", Kind::Pair), ("by", Kind::Texts)]),
    ("date", &[("between", Kind::Pair), ("by", Kind::Texts)]),
    ("lorem", &[("words", Kind::Pair)]),
    (
        "choice",
        &[("values", Kind::Texts), ("weights", Kind::Pair)],
    ),
    ("nope", &[]),
];

/// Text values that mean something to some masker.
const TEXTS: &[&str] = &[
    "",
    "*",
    "**",
    "x",
    "year",
    "month",
    "bucket",
    "prefix",
    "keep",
    "drop",
    "null",
    "hash",
    "email",
    "us_ssn",
    "digits",
    "DE",
    "de",
    "ZZ",
    "example.org",
    "{first_name}.{id}",
    "{",
    "}}{{",
    "{ }",
    "[a-z]{3}\\d+",
    "(",
    "a{99999999}",
    "\\",
    "$",
    "2025-01-01",
    "2024-02-30",
    "0000-01-01",
    "9999-12-31",
    "id",
    "ü",
];

fn option_value(kind: Kind) -> BoxedStrategy<String> {
    let int = prop_oneof![
        (0i64..40).prop_map(|n| n.to_string()),
        Just("0".to_owned()),
        Just("1".to_owned()),
        Just("-1".to_owned()),
        Just("150".to_owned()),
        Just("4294967295".to_owned()),
        Just("4294967296".to_owned()),
        Just("9223372036854775807".to_owned()),
        Just("-9223372036854775808".to_owned()),
    ];
    let float = prop_oneof![
        Just("0.0".to_owned()),
        Just("-0.0".to_owned()),
        Just("0.5".to_owned()),
        Just("-5.0".to_owned()),
        Just("100.0".to_owned()),
        Just("1e308".to_owned()),
        Just("-1e308".to_owned()),
        Just("nan".to_owned()),
        Just("inf".to_owned()),
        Just("-inf".to_owned()),
        Just("5e-324".to_owned()),
        any::<f64>().prop_map(|f| toml::Value::Float(f).to_string()),
    ];
    let text = prop_oneof![
        prop::sample::select(TEXTS.to_vec()).prop_map(toml_string),
        "\\PC{0,10}".prop_map(|t| toml_string(&t)),
    ];
    let texts = prop::collection::vec(prop::sample::select(TEXTS.to_vec()), 0..4).prop_map(|v| {
        toml::Value::Array(
            v.into_iter()
                .map(|t| toml::Value::String(t.into()))
                .collect(),
        )
        .to_string()
    });
    let pair = prop_oneof![
        (int.clone(), int.clone()).prop_map(|(a, b)| format!("[{a}, {b}]")),
        (
            prop::sample::select(TEXTS.to_vec()),
            prop::sample::select(TEXTS.to_vec())
        )
            .prop_map(|(a, b)| format!("[{}, {}]", toml_string(a), toml_string(b))),
        Just("[]".to_owned()),
        Just("[1, 2, 3]".to_owned()),
    ];
    let wrong = prop_oneof![
        Just("true".to_owned()),
        Just("1".to_owned()),
        Just("\"1\"".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("1.5".to_owned()),
    ];
    let right: BoxedStrategy<String> = match kind {
        Kind::Bool => any::<bool>().prop_map(|b| b.to_string()).boxed(),
        Kind::Int => int.boxed(),
        Kind::Float => prop_oneof![float, int].boxed(),
        Kind::Text => text.boxed(),
        Kind::Texts => texts.boxed(),
        Kind::Pair => pair.boxed(),
        Kind::Rule => prop_oneof![
            prop::sample::select(vec![
                "\"email\"",
                "\"keep\"",
                "\"null\"",
                "\"array\"",
                "\"x\""
            ])
            .prop_map(str::to_owned),
            Just("{ mask = \"hash\", length = 0 }".to_owned()),
            Just("{ mask = \"array\", element = \"array\" }".to_owned()),
            Just("{ mask = \"partial\", keep_last = 99 }".to_owned()),
            Just("{ synth = \"int\", range = [1, 2] }".to_owned()),
        ]
        .boxed(),
        Kind::Paths => prop::collection::vec(
            (
                prop::sample::select(vec![
                    "$", "$.a", "$.a.b", "$[0]", "$.*", "$..x", "a", "$[", "",
                ]),
                prop::sample::select(vec![
                    "\"email\"",
                    "\"keep\"",
                    "\"null\"",
                    "\"json\"",
                    "\"hash\"",
                    "\"x\"",
                    "{ mask = \"hash\", length = 2 }",
                    "{ mask = \"json\", paths = {} }",
                    "1",
                ]),
            ),
            0..3,
        )
        .prop_map(|paths| {
            let fields: Vec<String> = paths
                .iter()
                .map(|(p, r)| format!("{} = {r}", toml_string(p)))
                .collect();
            format!("{{ {} }}", fields.join(", "))
        })
        .boxed(),
    };
    prop_oneof![9 => right, 1 => wrong].boxed()
}

/// `{ mask = "<kind>", <options> }` for one entry of `catalogue`, under `head`.
fn rule_table(
    head: &'static str,
    catalogue: &'static [(&'static str, &'static [(&'static str, Kind)])],
) -> impl Strategy<Value = String> {
    prop::sample::select(catalogue.to_vec()).prop_flat_map(move |(kind, options)| {
        let chosen = prop::sample::subsequence(options.to_vec(), 0..=options.len());
        chosen
            .prop_flat_map(|chosen| {
                chosen
                    .into_iter()
                    .map(|(name, kind)| {
                        option_value(kind).prop_map(move |v| format!("{name} = {v}"))
                    })
                    .collect::<Vec<_>>()
            })
            .prop_map(move |fields| {
                let mut all = vec![format!("{head} = {}", toml_string(kind))];
                all.extend(fields);
                format!("{{ {} }}", all.join(", "))
            })
    })
}

/// One column rule as written in a rules file, valid or not.
fn rule_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(MASKERS.iter().map(|(k, _)| *k).collect::<Vec<_>>())
            .prop_map(toml_string),
        6 => rule_table("mask", MASKERS),
        2 => rule_table("synth", SYNTHS),
        1 => prop::sample::select(vec![
            "{ mask = \"a\", synth = \"int\" }",
            "{ }",
            "{ mask = 1 }",
            "1",
            "[\"id\", 3]",
            "true",
        ])
        .prop_map(str::to_owned),
    ]
}

/// A rules file: a few tables, each with rules for a few columns (among them `id`, a
/// `by` target), valid or not.
fn rules_text() -> impl Strategy<Value = String> {
    let table = (
        prop::collection::btree_map(
            prop::sample::select(vec!["id", "email", "name", "skip_me", "x y", "ü"]),
            rule_value(),
            1..4,
        ),
        prop_oneof![
            12 => Just(""),
            2 => Just("keep = [\"created_at\"]\n"),
            2 => Just("skip = true\n"),
            1 => Just("keep = [1]\n"),
            1 => Just("skip = \"yes\"\n"),
        ],
    );
    prop::collection::btree_map(
        prop::sample::select(vec!["users", "orders", "\"a.b\"", "\"\""]),
        table,
        1..3,
    )
    .prop_map(|tables| {
        let mut text = String::new();
        for (name, (columns, extra)) in tables {
            text.push_str(&format!("[{name}]\n{extra}"));
            for (column, rule) in columns {
                text.push_str(&format!("{} = {rule}\n", toml_string(column)));
            }
            text.push('\n');
        }
        text
    })
}

/// Loads one `public.toml` of `text` (a rules folder needs files, not text).
fn load_rules(text: &str) -> Result<RuleSet, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::write(dir.path().join("public.toml"), text).map_err(|e| e.to_string())?;
    RuleSet::load(dir.path(), None).map_err(|e| e.to_string())
}

/// A cron field whose numbers are mostly within `low..=high`, valid or not.
fn cron_field(low: u32, high: u32, names: &'static [&'static str]) -> BoxedStrategy<String> {
    let number = prop_oneof![
        30 => (low..=high).prop_map(|n| n.to_string()),
        1 => (0u32..100).prop_map(|n| n.to_string()),
        1 => prop::sample::select(vec!["4294967296", "-1", "", "99999999999999999999"])
            .prop_map(str::to_owned),
    ];
    let atom = prop_oneof![
        30 => number.clone(),
        2 => prop::sample::select(names.to_vec()).prop_map(str::to_owned),
        1 => prop::sample::select(vec!["L", "W", "#", "?", "LW", "5L", "1#2"]).prop_map(str::to_owned),
    ];
    let item = prop_oneof![
        12 => Just("*".to_owned()),
        12 => atom.clone(),
        2 => (atom.clone(), atom.clone()).prop_map(|(a, b)| format!("{a}-{b}")),
        3 => (prop_oneof![Just("*".to_owned()), atom.clone()], number.clone())
            .prop_map(|(a, s)| format!("{a}/{s}")),
        1 => (atom.clone(), atom, number).prop_map(|(a, b, s)| format!("{a}-{b}/{s}")),
    ];
    prop_oneof![3 => prop::collection::vec(item.clone(), 1..2), 1 => prop::collection::vec(item, 2..4)]
        .prop_map(|items| items.join(","))
        .boxed()
}

/// A crontab line: 5 fields (or 6, seconds first), at times too few or too many.
fn cron_line() -> impl Strategy<Value = String> {
    let months: &'static [&'static str] = &["JAN", "dec", "Feb", "jan-mar", "XYZ"];
    let days: &'static [&'static str] = &["MON", "sun", "FRI-MON", "SAT-SUN", "mon-fri", "Sunday"];
    let five = (
        cron_field(0, 59, &["x"]),
        cron_field(0, 23, &["x"]),
        cron_field(1, 31, &["x"]),
        cron_field(1, 12, months),
        cron_field(0, 7, days),
    )
        .prop_map(|(a, b, c, d, e)| vec![a, b, c, d, e]);
    prop_oneof![
        6 => five.clone(),
        2 => (cron_field(0, 59, &["x"]), five).prop_map(|(s, mut f)| {
            f.insert(0, s);
            f
        }),
        1 => prop::collection::vec(cron_field(0, 59, &["x"]), 0..9),
    ]
    .prop_map(|fields| fields.join(" "))
}

fn zone() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "UTC",
            "Europe/Berlin",
            "America/New_York",
            "Australia/Lord_Howe",
            "Pacific/Chatham",
            "Asia/Kathmandu",
            "America/Santiago",
            "Antarctica/Troll",
            "Mars/Olympus",
            "",
            "utc",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,8}",
    ]
}

/// A config with target `dev`, for checking schedules against.
fn schedule_config(dir: &Path) -> Config {
    let text = "[source]\nurl = \"postgres://h/db\"\n[targets.dev]\nurl = \"postgres://h/dev\"\n\
                [masking]\nkey = \"0123456789abcdef0123\"\n";
    Config::parse(&dir.join("lethe.toml"), text, |_| None).unwrap_or_else(|e| panic!("{e}"))
}

fn fire_times_hold(times: &FireTimes) -> Result<(), TestCaseError> {
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-28T00:00:00Z")
        .map_err(|e| TestCaseError::fail(e.to_string()))?
        .with_timezone(&chrono::Utc);
    let upcoming = times.upcoming(start, 4);
    let mut last = start;
    for t in &upcoming {
        let t = t.with_timezone(&chrono::Utc);
        prop_assert!(t > last, "fire times go backwards: {upcoming:?}");
        last = t;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(512)))]

    #[test]
    fn interpolation_of_anything_gives_a_value_or_an_error(text in "\\PC*") {
        let _ = interpolate_with(&text, lookup, read_file);
    }

    #[test]
    fn interpolation_of_near_valid_text_gives_a_value_or_an_error(text in interpolation_text()) {
        let _ = interpolate_with(&text, lookup, read_file);
        // The real file reader too: the paths above are missing, directories or devices.
        let _ = lethe::config::interpolate(&text, lookup);
    }

    #[test]
    fn escaped_text_interpolates_back_to_itself(text in "\\PC*") {
        prop_assert_eq!(interpolate_with(&escape(&text), lookup, read_file), Ok(text));
    }

    #[test]
    fn references_become_their_values(
        pieces in prop::collection::vec(
            prop_oneof![
                "\\PC{0,6}".prop_map(|t| (escape(&t), t)),
                Just(("${A}".to_owned(), "alpha".to_owned())),
                Just(("${URL}".to_owned(), "postgres://u:pw@h/db".to_owned())),
                Just(("${EMPTY}".to_owned(), String::new())),
                // A value is not interpolated again.
                Just(("${DOLLAR}".to_owned(), "$${A}".to_owned())),
                Just(("${file:ok}".to_owned(), "from-file".to_owned())),
            ],
            0..10,
        )
    ) {
        let text: String = pieces.iter().map(|(written, _)| written.as_str()).collect();
        let expected: String = pieces.iter().map(|(_, value)| value.as_str()).collect();
        prop_assert_eq!(interpolate_with(&text, lookup, read_file), Ok(expected));
    }

    #[test]
    fn any_config_text_gives_a_config_or_errors(text in "\\PC*") {
        let _ = Config::parse(Path::new("lethe.toml"), &text, lookup);
    }

    #[test]
    fn near_valid_config_text_gives_a_config_or_errors(text in config_text()) {
        if let Err(errors) = Config::parse(Path::new("conf/lethe.toml"), &text, lookup) {
            // Every error is printable, and none shows a looked-up secret.
            let shown = errors.to_string();
            prop_assert!(!shown.contains("postgres://u:pw@h/db"), "{}", shown);
            prop_assert!(!shown.contains("0123456789abcdef0123"), "{}", shown);
        }
    }

    #[test]
    fn a_config_round_trips_its_values(
        url in "\\PC{1,40}",
        key in "[!-~]{16,40}",
        target in "[a-z][a-z0-9_]{0,10}",
        keep_previous in 0i64..=1,
        verify in any::<bool>(),
        schemas in prop::collection::vec("\\PC{0,10}", 0..4),
    ) {
        let text = format!(
            "[source]\nurl = {}\nschemas = {}\n\n[targets.{target}]\nurl = \"${{URL}}\"\n\
             keep_previous = {keep_previous}\nverify = {verify}\n\n[masking]\nkey = {}\n",
            toml_string(&escape(&url)),
            toml::Value::Array(schemas.iter().cloned().map(toml::Value::String).collect()),
            toml_string(&escape(&key)),
        );
        match Config::parse(Path::new("lethe.toml"), &text, lookup) {
            Ok(config) => {
                prop_assert_eq!(config.source.url.expose_secret(), url.as_str());
                prop_assert_eq!(config.masking.key.expose_secret(), key.as_str());
                prop_assert_eq!(config.source.schemas.as_ref(), Some(&schemas));
                let dev = config.target(&target).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(dev.url.expose_secret(), "postgres://u:pw@h/db");
                prop_assert_eq!(i64::from(dev.keep_previous), keep_previous);
                prop_assert_eq!(dev.verify, verify);
            }
            // Only a blank URL is refused.
            Err(e) => prop_assert!(url.trim().is_empty(), "{}\n{}", e, text),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn any_rules_text_gives_rules_or_errors(text in "\\PC*") {
        let _ = load_rules(&text);
    }

    #[test]
    fn near_valid_rules_give_rules_or_errors(text in rules_text()) {
        let _ = load_rules(&text);
    }

    #[test]
    fn simple_rules_round_trip(
        tables in prop::collection::btree_map(
            "[a-z][a-z0-9_]{0,8}",
            prop::collection::btree_map(
                "[a-z][a-z0-9_]{0,8}",
                prop::sample::select(vec!["keep", "null", "email", "hash", "first_name", "phone"]),
                1..5,
            ),
            1..4,
        )
    ) {
        let mut text = String::new();
        for (table, columns) in &tables {
            text.push_str(&format!("[{table}]\n"));
            for (column, rule) in columns {
                text.push_str(&format!("{column} = \"{rule}\"\n"));
            }
        }
        let rules = load_rules(&text).map_err(TestCaseError::fail)?;
        let parsed: BTreeMap<String, BTreeMap<String, String>> = rules
            .tables
            .iter()
            .map(|(name, t)| {
                prop_assert_eq!(&name.schema, "public");
                prop_assert!(!t.skip);
                Ok((
                    name.name.clone(),
                    t.columns.iter().map(|(c, r)| (c.clone(), r.describe.clone())).collect(),
                ))
            })
            .collect::<Result<_, TestCaseError>>()?;
        let written: BTreeMap<String, BTreeMap<String, String>> = tables
            .iter()
            .map(|(t, cols)| {
                (t.clone(), cols.iter().map(|(c, r)| (c.clone(), (*r).to_owned())).collect())
            })
            .collect();
        prop_assert_eq!(parsed, written);
        for (name, table) in &rules.tables {
            for (column, rule) in &table.columns {
                match tables[&name.name][column] {
                    "keep" => prop_assert!(matches!(rule.rule, Rule::Keep)),
                    "null" => prop_assert!(matches!(rule.rule, Rule::Null)),
                    _ => prop_assert!(matches!(rule.rule, Rule::Mask(_))),
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn any_cron_line_gives_fire_times_or_an_error(line in "\\PC*") {
        if let Ok(times) = FireTimes::parse(&line, chrono_tz::UTC) {
            fire_times_hold(&times)?;
        }
    }

    #[test]
    fn near_valid_cron_lines_give_fire_times_or_an_error(
        line in cron_line(),
        zone in prop::sample::select(vec![
            chrono_tz::UTC,
            chrono_tz::Europe::Berlin,
            chrono_tz::Australia::Lord_Howe,
            chrono_tz::America::Santiago,
            chrono_tz::Pacific::Chatham,
        ]),
    ) {
        if let Ok(times) = FireTimes::parse(&line, zone) {
            fire_times_hold(&times)?;
        }
    }

    #[test]
    fn schedule_files_give_schedules_or_errors(
        line in cron_line(),
        zone in zone(),
        targets in prop::collection::vec(prop::sample::select(vec!["dev", "prod", ""]), 0..3),
        extra in prop_oneof![
            Just(String::new()),
            Just("catch_up = false".to_owned()),
            Just("profile = \"staging\"".to_owned()),
            Just("retry = 3".to_owned()),
            "\\PC{0,12}",
        ],
    ) {
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let folder = dir.path().join("schedules");
        std::fs::create_dir(&folder).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let text = format!(
            "cron = {}\ntimezone = {}\ntargets = {}\n{extra}\n",
            toml_string(&line),
            toml_string(&zone),
            toml::Value::Array(targets.iter().map(|t| toml::Value::String((*t).to_owned())).collect()),
        );
        std::fs::write(folder.join("nightly.toml"), &text)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let config = schedule_config(dir.path());
        if let Ok(schedules) = schedule::load(&folder, &config) {
            prop_assert_eq!(schedules.len(), 1);
            prop_assert_eq!(&schedules[0].targets, &targets);
            prop_assert!(targets.iter().all(|t| *t == "dev"));
            fire_times_hold(&schedules[0].times)?;
        }
    }

    #[test]
    fn any_schedule_file_gives_schedules_or_errors(text in "\\PC*") {
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let folder = dir.path().join("schedules");
        std::fs::create_dir(&folder).map_err(|e| TestCaseError::fail(e.to_string()))?;
        std::fs::write(folder.join("x.toml"), &text)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let _ = schedule::load(&folder, &schedule_config(dir.path()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(1024)))]

    #[test]
    fn any_bytes_decode(field in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut out = Vec::new();
        copy_text::decode(&field, &mut out);
        // Escapes only shrink a field.
        prop_assert!(out.len() <= field.len());
    }

    #[test]
    fn escape_heavy_bytes_decode(
        field in prop::collection::vec(
            prop::sample::select(b"\\\\\\N01234567xXabfnrtv89\t\n".to_vec()),
            0..32,
        )
    ) {
        let mut out = Vec::new();
        copy_text::decode(&field, &mut out);
        prop_assert!(out.len() <= field.len());
    }

    #[test]
    fn text_round_trips_through_copy_text(text in "\\PC*|[\\\\\t\n\r\u{8}\u{b}\u{c}N0-7x]*") {
        let mut encoded = Vec::new();
        copy_text::encode(&text, &mut encoded);
        prop_assert!(!encoded.contains(&copy_text::DELIMITER));
        prop_assert!(!encoded.contains(&copy_text::NEWLINE));
        prop_assert!(!encoded.contains(&b'\r'));
        prop_assert_ne!(encoded.as_slice(), copy_text::NULL);
        let mut decoded = Vec::new();
        copy_text::decode(&encoded, &mut decoded);
        prop_assert_eq!(decoded, text.as_bytes());
    }
}

#[test]
fn deeply_nested_input_is_an_error_not_a_stack_overflow() {
    for (open, close) in [("[", "]"), ("{ a = ", " }")] {
        let nested = format!("{}1{}", open.repeat(100_000), close.repeat(100_000));
        let config = format!("[source]\nurl = {nested}\n");
        let err = Config::parse(Path::new("lethe.toml"), &config, lookup)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("lethe.toml:2:"), "{err}");
        let err = load_rules(&format!("[users]\nemail = {nested}\n"))
            .err()
            .unwrap_or_default();
        assert!(err.contains("public.toml:2:"), "{err}");
    }
}
