//! Values per second, on one core, for every masker in the catalogue.
//!
//! Each benchmark masks a batch of [`BATCH`] realistic, distinct inputs of its kind
//! (addresses, names, `+49 30 1234567`, Luhn-valid card numbers, IBANs with valid
//! check digits, dates, JSON documents, free text with and without PII) and reports
//! the throughput in values per second. Run with `cargo bench --bench maskers`; the
//! table in `benches/README.md` comes from it.

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use lethe::mask::{MaskerSpec, MaskingKey, build};

fn main() {
    divan::main();
}

/// Inputs per benchmark iteration: enough distinct values that no branch predictor
/// or cache learns one input, few enough to stay in L1/L2.
const BATCH: usize = 256;

/// Every benchmark case: its label, the masker kind, the rule options as TOML.
/// Labels with a `/` are a second case of one kind with other inputs or options.
const CASES: &[(&str, &str, &str)] = &[
    ("array", "array", "element = \"email\""),
    ("city", "city", ""),
    ("company", "company", ""),
    ("country", "country", ""),
    ("credit_card", "credit_card", ""),
    ("date_of_birth", "date_of_birth", ""),
    ("date_shift", "date_shift", ""),
    ("email", "email", ""),
    ("first_name", "first_name", ""),
    ("full_name", "full_name", ""),
    ("generalize", "generalize", "to = \"month\""),
    ("hash", "hash", ""),
    ("iban", "iban", ""),
    ("ip", "ip", ""),
    ("ip/v6", "ip", ""),
    ("job_title", "job_title", ""),
    (
        "json",
        "json",
        "paths = { \"$.email\" = \"email\", \"$.name\" = \"full_name\" }",
    ),
    ("last_name", "last_name", ""),
    ("latitude", "latitude", ""),
    ("longitude", "longitude", ""),
    ("lorem", "lorem", ""),
    ("mac", "mac", ""),
    ("national_id", "national_id", ""),
    ("national_id/digits", "national_id", "format = \"digits\""),
    ("noise", "noise", ""),
    ("partial", "partial", ""),
    ("phone", "phone", ""),
    ("postcode", "postcode", ""),
    ("redact", "redact", ""),
    ("regex", "regex", "pattern = '\\d'\nreplace = \"#\""),
    ("scrub/no_pii", "scrub", ""),
    ("scrub/pii", "scrub", ""),
    ("state", "state", ""),
    ("street", "street", ""),
    ("username", "username", ""),
    ("uuid", "uuid", ""),
];

/// The labels of [`CASES`], as divan arguments.
const LABELS: [&str; CASES.len()] = {
    let mut labels = [""; CASES.len()];
    let mut i = 0;
    while i < CASES.len() {
        labels[i] = CASES[i].0;
        i += 1;
    }
    labels
};

#[divan::bench(args = LABELS)]
fn mask(bencher: Bencher, label: &str) {
    let Some(&(_, kind, options)) = CASES.iter().find(|(l, ..)| *l == label) else {
        panic!("no case {label}");
    };
    let spec = MaskerSpec {
        kind: kind.to_owned(),
        domain: None,
        options: toml::from_str(options).expect("case options are TOML"),
    };
    let masker = build(&spec).expect("case builds");
    let key = MaskingKey::new(b"bench-key-0123456789abcdef");
    let inputs: Vec<String> = (0..BATCH).map(|i| input(label, i)).collect();
    let mut out = String::with_capacity(4096);
    bencher.counter(ItemsCount::new(BATCH)).bench_local(|| {
        for input in &inputs {
            out.clear();
            masker.mask(black_box(input), &key, &mut out);
            black_box(&out);
        }
    });
}

/// A small deterministic generator, so every run benchmarks the same inputs.
struct Lcg(u64);

impl Lcg {
    fn new(seed: usize) -> Self {
        Self((seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }

    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }

    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.below(list.len() as u64) as usize]
    }
}

const FIRST: &[&str] = &[
    "Alice",
    "Bob",
    "Carla",
    "Dmitri",
    "Emma",
    "Farid",
    "Greta",
    "Hiroshi",
    "Ines",
    "Jonas",
    "Katarzyna",
    "Liam",
    "Mei",
    "Noah",
    "Olga",
    "Pedro",
];
const LAST: &[&str] = &[
    "Smith",
    "Müller",
    "Nowak",
    "García",
    "Rossi",
    "Tanaka",
    "Johansson",
    "Dubois",
    "Kowalski",
    "O'Brien",
    "van der Berg",
    "Schneider",
];
const CITIES: &[&str] = &[
    "Berlin",
    "München",
    "Hamburg",
    "London",
    "Paris",
    "New York",
    "São Paulo",
    "Zürich",
];
const STREETS: &[&str] = &[
    "Main Street",
    "Hauptstraße",
    "Rue de Rivoli",
    "Baker Street",
    "Unter den Linden",
];
const DOMAINS: &[&str] = &["example.org", "mail.corp.de", "gmail.com", "uni-hamburg.de"];

/// The `i`-th realistic input for a case label.
fn input(label: &str, i: usize) -> String {
    let mut r = Lcg::new(i + 1);
    let first = r.pick(FIRST);
    let last = r.pick(LAST);
    let email = format!(
        "{}.{}{}@{}",
        first.to_lowercase(),
        last.to_lowercase().replace(' ', ""),
        r.below(100),
        r.pick(DOMAINS)
    );
    match label {
        "array" => format!(
            "{{{email},NULL,\"{} {}@corp.test\"}}",
            first.to_lowercase(),
            r.below(1000)
        ),
        "city" => r.pick(CITIES).to_owned(),
        "company" => format!("{last} {}", r.pick(&["GmbH", "Inc", "LLC", "AG"])),
        "country" => r
            .pick(&["Germany", "France", "United States", "Japan", "Brazil"])
            .to_owned(),
        "credit_card" | "partial" => card(&mut r),
        "date_of_birth" => format!(
            "{}-{:02}-{:02}",
            1940 + r.below(70),
            1 + r.below(12),
            1 + r.below(28)
        ),
        "date_shift" | "generalize" => format!(
            "20{:02}-{:02}-{:02} {:02}:{:02}:{:02}+01",
            r.below(25),
            1 + r.below(12),
            1 + r.below(28),
            r.below(24),
            r.below(60),
            r.below(60)
        ),
        "email" | "hash" => email,
        "first_name" => first.to_owned(),
        "last_name" => last.to_owned(),
        "full_name" => format!("{first} {last}"),
        "iban" => iban(&mut r),
        "ip" => format!(
            "{}.{}.{}.{}",
            1 + r.below(223),
            r.below(256),
            r.below(256),
            1 + r.below(254)
        ),
        "ip/v6" => format!(
            "2001:db8:{:x}:{:x}::{:x}",
            r.below(65536),
            r.below(65536),
            r.below(65536)
        ),
        "job_title" => r
            .pick(&[
                "CEO",
                "Software Engineer",
                "Head of Sales",
                "Nurse",
                "Accountant",
            ])
            .to_owned(),
        "json" => format!(
            r#"{{"email": "{email}", "name": "{first} {last}", "plan": "pro", "seats": {}, "tags": ["a", "b"], "price": 1.50, "active": true}}"#,
            r.below(100)
        ),
        "latitude" => format!("{}.{}", r.below(90), r.digits(6)),
        "longitude" => format!("-{}.{}", r.below(180), r.digits(6)),
        "lorem" | "redact" => format!(
            "Customer {first} called about order {} and a late delivery to {}.",
            r.digits(6),
            r.pick(CITIES)
        ),
        "mac" => (0..6)
            .map(|_| format!("{:02X}", r.below(256)))
            .collect::<Vec<_>>()
            .join(":"),
        "national_id" => format!("{}-{}-{}", r.digits(3), r.digits(2), r.digits(4)),
        "national_id/digits" => format!("AB {} C", r.digits(6)),
        "noise" => format!("{}.{:02}", r.below(100_000), r.below(100)),
        "phone" => format!(
            "+{} {} {}",
            r.pick(&["49", "44", "33", "1"]),
            10 + r.below(90),
            r.digits(7)
        ),
        "postcode" => {
            if i.is_multiple_of(2) {
                r.digits(5)
            } else {
                format!("SW{} {}AA", r.below(10), r.below(10))
            }
        }
        "regex" => format!("INV-{}-{}", 2000 + r.below(25), r.digits(5)),
        "scrub/no_pii" => format!(
            "Customer asked why the {} delivery was late; promised a callback tomorrow \
             morning and logged the complaint with the warehouse team in {}.",
            r.pick(&["weekly", "express", "standard"]),
            r.pick(CITIES)
        ),
        "scrub/pii" => format!(
            "Customer {first} ({email}) called from +49 30 {} about card {}; refund to {}.",
            r.digits(7),
            card(&mut r),
            iban(&mut r)
        ),
        "state" => r
            .pick(&["California", "Texas", "New York", "Bavaria", "Ontario"])
            .to_owned(),
        "street" => format!("{} {}", 1 + r.below(200), r.pick(STREETS)),
        "username" => format!("{}{}", &first[..1].to_lowercase(), last.to_lowercase()),
        "uuid" => format!(
            "{}-{}-4{}-a{}-{}",
            hex(&mut r, 8),
            hex(&mut r, 4),
            hex(&mut r, 3),
            hex(&mut r, 3),
            hex(&mut r, 12)
        ),
        other => panic!("no inputs for {other}"),
    }
}

fn hex(r: &mut Lcg, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b"0123456789abcdef"[r.below(16) as usize]))
        .collect()
}

/// A Luhn-valid 16-digit Visa number in four groups.
fn card(r: &mut Lcg) -> String {
    let mut digits: Vec<u8> = std::iter::once(4)
        .chain((0..14).map(|_| r.below(10) as u8))
        .collect();
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i.is_multiple_of(2) {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    digits.push(((10 - sum % 10) % 10) as u8);
    let text: String = digits.iter().map(|&d| char::from(b'0' + d)).collect();
    format!(
        "{} {} {} {}",
        &text[..4],
        &text[4..8],
        &text[8..12],
        &text[12..]
    )
}

/// A German IBAN with valid check digits, grouped by four.
fn iban(r: &mut Lcg) -> String {
    let bban = r.digits(18);
    // mod 97 of BBAN || "DE" (13 14) || "00".
    let remainder = format!("{bban}131400")
        .bytes()
        .fold(0u32, |acc, b| (acc * 10 + u32::from(b - b'0')) % 97);
    let compact = format!("DE{:02}{bban}", 98 - remainder);
    compact
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ")
}
