//! The demo's production database: synthetic customers, orders and support tickets
//! carrying personal data the way real ones do: in plain columns, inside JSON and in
//! free text. Deterministic (a fixed seed), so every demo shows the same rows.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rusqlite::{Connection, params};

use crate::engine::sqlite::Error;

const FIRST: &[&str] = &[
    "Anna", "Jonas", "Lea", "Lukas", "Mia", "Finn", "Emma", "Paul", "Sofia", "Elias", "Clara",
    "Noah", "Ida", "Felix", "Greta", "Anton", "Marie", "Oskar", "Lina", "Emil",
];
const LAST: &[&str] = &[
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Schäfer",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Neumann",
    "Schwarz",
];
const CITIES: &[(&str, &str, &str)] = &[
    ("Berlin", "10115", "30"),
    ("Hamburg", "20095", "40"),
    ("München", "80331", "89"),
    ("Köln", "50667", "221"),
    ("Leipzig", "04109", "341"),
    ("Dresden", "01067", "351"),
];
const STREETS: &[&str] = &[
    "Hauptstraße",
    "Gartenweg",
    "Lindenallee",
    "Bahnhofstraße",
    "Schillerplatz",
    "Rosenweg",
];
const MAILS: &[&str] = &["gmail.com", "web.de", "posteo.de", "gmx.net"];
const SUBJECTS: &[&str] = &[
    "Double charge",
    "Late delivery",
    "Change of address",
    "Question",
];
const STATUSES: &[&str] = &["paid", "shipped", "delivered", "refunded"];

/// How many rows the demo makes.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    /// Customers.
    pub customers: u32,
    /// Orders (spread over the customers).
    pub orders: u32,
    /// Support tickets.
    pub tickets: u32,
}

const SCHEMA: &str = "
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    phone TEXT,
    date_of_birth DATE,
    ssn TEXT,
    street TEXT,
    city TEXT,
    postcode TEXT,
    country TEXT NOT NULL,
    card_number TEXT,
    iban TEXT,
    prefs JSON,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    status TEXT NOT NULL,
    amount NUMERIC NOT NULL,
    placed_at TIMESTAMP NOT NULL,
    shipped_at TIMESTAMP,
    shipping JSON
);
CREATE INDEX orders_customer ON orders(customer_id);
CREATE TABLE tickets (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE VIEW open_tickets AS SELECT id, customer_id, subject FROM tickets;
";

/// One customer's real-looking data.
struct Person {
    name: String,
    email: String,
    phone: String,
    street: String,
    city: &'static str,
    postcode: &'static str,
    card: String,
    iban: String,
}

fn person(rng: &mut ChaCha8Rng, id: u32) -> Person {
    let first = FIRST[rng.random_range(0..FIRST.len())];
    let last = LAST[rng.random_range(0..LAST.len())];
    let (city, postcode, area) = CITIES[rng.random_range(0..CITIES.len())];
    let ascii = |s: &str| {
        s.to_lowercase()
            .replace('ü', "ue")
            .replace('ä', "ae")
            .replace('ö', "oe")
    };
    Person {
        name: format!("{first} {last}"),
        email: format!(
            "{}.{}{id}@{}",
            ascii(first),
            ascii(last),
            MAILS[rng.random_range(0..MAILS.len())]
        ),
        phone: format!("+49 {area} {}", rng.random_range(1_000_000..9_999_999)),
        street: format!(
            "{} {}",
            STREETS[rng.random_range(0..STREETS.len())],
            rng.random_range(1..120)
        ),
        city,
        postcode,
        card: card(rng),
        iban: iban(rng),
    }
}

/// A Luhn-valid 16-digit card number starting with 4, grouped by four.
fn card(rng: &mut ChaCha8Rng) -> String {
    let mut digits: Vec<u32> = std::iter::once(4)
        .chain((0..14).map(|_| rng.random_range(0..10)))
        .collect();
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 0 {
                (d * 2) % 9 + u32::from(d == 9) * 9
            } else {
                d
            }
        })
        .sum();
    digits.push((10 - sum % 10) % 10);
    digits
        .chunks(4)
        .map(|c| {
            c.iter()
                .map(|d| char::from(b'0' + d.to_le_bytes()[0]))
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A German IBAN with valid check digits.
fn iban(rng: &mut ChaCha8Rng) -> String {
    let bban: String = (0..18)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect();
    // Check digits: 98 - (BBAN || "DE00" as digits) mod 97, D=13, E=14.
    let rest = format!("{bban}131400");
    let modulo = rest
        .bytes()
        .fold(0u32, |m, b| (m * 10 + u32::from(b - b'0')) % 97);
    format!("DE{:02}{bban}", 98 - modulo)
}

/// Creates the demo tables in `conn` (an empty file) and fills them.
pub fn create(conn: &Connection, size: Size) -> Result<(), Error> {
    let mut rng = ChaCha8Rng::seed_from_u64(20_261_201);
    conn.execute_batch(&format!("BEGIN; {SCHEMA}"))
        .map_err(Error::query("creating the demo tables"))?;
    let mut people = Vec::with_capacity(size.customers as usize);
    for id in 1..=size.customers {
        let p = person(&mut rng, id);
        let dob = format!(
            "{}-{:02}-{:02}",
            rng.random_range(1950..2005),
            rng.random_range(1..13),
            rng.random_range(1..29)
        );
        let ssn = format!(
            "{:03}-{:02}-{:04}",
            rng.random_range(100..666),
            rng.random_range(1..100),
            rng.random_range(1..10_000)
        );
        let prefs = serde_json::json!({
            "newsletter": rng.random_bool(0.3),
            "contact": { "email": p.email, "phone": p.phone },
            "language": "de",
        });
        let created = format!(
            "2023-{:02}-{:02} 09:00:00",
            rng.random_range(1..13),
            rng.random_range(1..29)
        );
        conn.prepare_cached(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'DE', ?, ?, ?, ?)",
        )
        .and_then(|mut insert| {
            insert.execute(params![
                i64::from(id),
                p.name,
                p.email,
                p.phone,
                dob,
                ssn,
                p.street,
                p.city,
                p.postcode,
                p.card,
                p.iban,
                prefs.to_string(),
                created,
            ])
        })
        .map_err(Error::query("filling customers"))?;
        people.push(p);
    }
    for id in 1..=size.orders {
        let customer = rng.random_range(0..size.customers);
        let p = &people[customer as usize];
        let day = rng.random_range(1..28);
        let shipping = serde_json::json!({
            "name": p.name, "street": p.street, "city": p.city, "postcode": p.postcode,
        });
        let status = STATUSES[rng.random_range(0..STATUSES.len())];
        let amount = f64::from(rng.random_range(500..50_000u32)) / 100.0;
        conn.prepare_cached("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?)")
            .and_then(|mut insert| {
                insert.execute(params![
                    i64::from(id),
                    i64::from(customer + 1),
                    status,
                    amount,
                    format!("2024-03-{day:02} 10:00:00"),
                    format!("2024-04-{day:02} 16:30:00"),
                    shipping.to_string(),
                ])
            })
            .map_err(Error::query("filling orders"))?;
    }
    for id in 1..=size.tickets {
        let customer = rng.random_range(0..size.customers);
        let p = &people[customer as usize];
        let subject = SUBJECTS[rng.random_range(0..SUBJECTS.len())];
        let body = match id % 4 {
            0 => format!(
                "Hello, my card {} was charged twice. Please call me on {} or write to {}.",
                p.card, p.phone, p.email
            ),
            // `scrub` finds e-mails, phones, cards and IBANs in text, not names or streets:
            // free text that may hold those needs `lorem`, `redact` or a synth rule.
            1 => format!(
                "Please refund the last order to my account {}, thanks.",
                p.iban
            ),
            2 => format!("My parcel never arrived. Reach me at {}.", p.email),
            _ => "Where can I see my invoices?".to_owned(),
        };
        conn.prepare_cached("INSERT INTO tickets VALUES (?, ?, ?, ?, '2024-05-01 12:00:00')")
            .and_then(|mut insert| {
                insert.execute(params![
                    i64::from(id),
                    i64::from(customer + 1),
                    subject,
                    body
                ])
            })
            .map_err(Error::query("filling tickets"))?;
    }
    conn.execute_batch("COMMIT")
        .map_err(Error::query("saving the demo data"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_pass_luhn_and_ibans_mod_97() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..200 {
            let digits: Vec<u32> = card(&mut rng)
                .chars()
                .filter_map(|c| c.to_digit(10))
                .collect();
            let sum: u32 = digits
                .iter()
                .rev()
                .enumerate()
                .map(|(i, &d)| {
                    if i % 2 == 1 {
                        let x = d * 2;
                        if x > 9 { x - 9 } else { x }
                    } else {
                        d
                    }
                })
                .sum();
            assert_eq!(sum % 10, 0);
            let iban = iban(&mut rng);
            let moved = format!("{}{}", &iban[4..], &iban[..4]);
            let digits: String = moved
                .chars()
                .map(|c| c.to_digit(36).map_or(String::new(), |d| d.to_string()))
                .collect();
            let rest = digits
                .bytes()
                .fold(0u32, |m, b| (m * 10 + u32::from(b - b'0')) % 97);
            assert_eq!(rest, 1, "{iban}");
        }
    }
}
