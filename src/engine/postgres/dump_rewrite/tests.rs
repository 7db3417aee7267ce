use super::*;

fn map() -> BTreeMap<String, String> {
    [
        ("public", "lethe_shadow_public"),
        ("Sales", "lethe_shadow_Sales"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn rw(script: &str) -> Vec<DumpStatement> {
    rewrite_dump(script, &map()).unwrap()
}

fn sqls(script: &str) -> Vec<String> {
    rw(script).into_iter().map(|s| s.sql).collect()
}

/// (object type, first line) of each statement.
fn summary(out: &[DumpStatement]) -> Vec<(&str, &str)> {
    out.iter()
        .map(|s| (s.object_type.as_str(), s.sql.lines().next().unwrap_or("")))
        .collect()
}

fn statement<'a>(out: &'a [DumpStatement], starts_with: &str) -> &'a str {
    let found: Vec<_> = out
        .iter()
        .filter(|s| s.sql.starts_with(starts_with))
        .collect();
    assert_eq!(found.len(), 1, "statements starting with {starts_with:?}");
    &found[0].sql
}

/// Every output statement is a statement of the input with only its schema names
/// changed: map them back and find it verbatim (the shadow names occur nowhere else).
fn assert_byte_identical(script: &str, out: &[DumpStatement]) {
    for s in out {
        let back = s
            .sql
            .replace("\"lethe_shadow_Sales\"", "\"Sales\"")
            .replace("lethe_shadow_public", "public");
        assert!(script.contains(&back), "not in the input:\n{back}");
    }
}

/// A `pg_dump --schema-only` script as PostgreSQL 15.20 writes it: the `$body` parts between
/// the preamble and the closing lines, which carry the run's `\restrict` key.
macro_rules! pg_dump_15 {
    ($key:literal, $($body:expr),+ $(,)?) => {
        concat!(
            r#"
--
-- PostgreSQL database dump
--

\restrict "#,
            $key,
            r#"

-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;
"#,
            $($body,)+
            r#"--
-- PostgreSQL database dump complete
--

\unrestrict "#,
            $key,
            "\n\n",
        )
    };
}

/// Real `pg_dump --schema-only --section=pre-data -n public -n '"Sales"'` output of
/// PostgreSQL 15.20 (plus an extension in an unmapped schema, as `--extension` adds).
const PRE_DATA: &str = pg_dump_15!(
    "AKMNztaTFmLCLewE9qfuGKXSwIZGjRzjbqlhOr0vE4JP8mp5SV0hrIFHnOXDcNI",
    r#"
--
-- Name: Sales; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA "Sales";


--
-- Name: public; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA public;


--
-- Name: SCHEMA public; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON SCHEMA public IS 'standard public schema';


--
-- Name: pgcrypto; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA extensions;


--
-- Name: EXTENSION pgcrypto; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON EXTENSION pgcrypto IS 'cryptographic functions';


--
-- Name: mood; Type: TYPE; Schema: public; Owner: -
--

CREATE TYPE public.mood AS ENUM (
    'sad',
    'ok',
    'happy; really'
);


--
-- Name: pair; Type: TYPE; Schema: public; Owner: -
--

CREATE TYPE public.pair AS (
	a integer,
	b public.mood
);


--
-- Name: posint; Type: DOMAIN; Schema: public; Owner: -
--

CREATE DOMAIN public.posint AS integer
	CONSTRAINT posint_check CHECK ((VALUE > 0));


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: customers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.customers (
    id integer NOT NULL,
    email text NOT NULL,
    mood public.mood DEFAULT 'ok'::public.mood,
    country text,
    note text DEFAULT 'public.x; y'::text,
    e text DEFAULT 'it''s public.a;'::text,
    n public.posint,
    big bigint NOT NULL,
    g integer GENERATED ALWAYS AS ((id * 2)) STORED
);


--
-- Name: TABLE customers; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.customers IS 'customers; with public.stuff';


--
-- Name: COLUMN customers.note; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.note IS 'free text; may contain public.stuff';


--
-- Name: total(public.customers); Type: FUNCTION; Schema: Sales; Owner: -
--

CREATE FUNCTION "Sales".total(public.customers) RETURNS numeric
    LANGUAGE sql STABLE
    AS $_$ select sum(amount) from "Sales"."Orders" o where o.customer_id = $1.id; $_$;


--
-- Name: f1(integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.f1(x integer) RETURNS integer
    LANGUAGE plpgsql
    AS $$ begin /* ; */ perform 1 from public.customers; return x; end $$;


--
-- Name: f2(integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.f2(x integer) RETURNS integer
    LANGUAGE sql
    BEGIN ATOMIC
 SELECT (x + ( SELECT (count(*))::integer AS count
            FROM public.customers));
END;


--
-- Name: grade(integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.grade(n integer) RETURNS text
    LANGUAGE sql IMMUTABLE
    BEGIN ATOMIC
 SELECT
         CASE
             WHEN (n > 10) THEN 'big; really'::text
             ELSE 'small'::text
         END AS "case";
END;


--
-- Name: touch(integer); Type: PROCEDURE; Schema: public; Owner: -
--

CREATE PROCEDURE public.touch(IN x integer)
    LANGUAGE sql
    BEGIN ATOMIC
 UPDATE public.customers SET note = 'public.touched;'::text
   WHERE (customers.id = touch.x);
END;


--
-- Name: trg(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.trg() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ begin new.note := 'public.z'; return new; end $$;


--
-- Name: Orders; Type: TABLE; Schema: Sales; Owner: -
--

CREATE TABLE "Sales"."Orders" (
    id bigint NOT NULL,
    customer_id integer,
    amount numeric,
    m public.mood DEFAULT 'sad'::public.mood,
    CONSTRAINT "Orders_amount_check" CHECK ((amount > (0)::numeric))
);


--
-- Name: Orders_id_seq; Type: SEQUENCE; Schema: Sales; Owner: -
--

CREATE SEQUENCE "Sales"."Orders_id_seq"
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: Orders_id_seq; Type: SEQUENCE OWNED BY; Schema: Sales; Owner: -
--

ALTER SEQUENCE "Sales"."Orders_id_seq" OWNED BY "Sales"."Orders".id;


--
-- Name: customers_big_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.customers ALTER COLUMN big ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.customers_big_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: customers_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.customers_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: customers_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.customers_id_seq OWNED BY public.customers.id;


--
-- Name: events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.events (
    id integer,
    at date NOT NULL
)
PARTITION BY RANGE (at);


--
-- Name: events_2024; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.events_2024 (
    id integer,
    at date NOT NULL
);


--
-- Name: mv; Type: MATERIALIZED VIEW; Schema: public; Owner: -
--

CREATE MATERIALIZED VIEW public.mv AS
 SELECT count(*) AS count
   FROM public.customers
  WITH NO DATA;


--
-- Name: s1; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.s1
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: s1; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.s1 OWNED BY public.customers.id;


--
-- Name: v_customers; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.v_customers AS
 SELECT c.id,
    c.email
   FROM public.customers c
  WHERE (c.note <> 'x;y'::text);


--
-- Name: v_totals; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.v_totals AS
SELECT
    NULL::integer AS id,
    NULL::text AS email,
    NULL::bigint AS n;


--
-- Name: events_2024; Type: TABLE ATTACH; Schema: public; Owner: -
--

ALTER TABLE ONLY public.events ATTACH PARTITION public.events_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');


--
-- Name: Orders id; Type: DEFAULT; Schema: Sales; Owner: -
--

ALTER TABLE ONLY "Sales"."Orders" ALTER COLUMN id SET DEFAULT nextval('"Sales"."Orders_id_seq"'::regclass);


--
-- Name: customers id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.customers ALTER COLUMN id SET DEFAULT nextval('public.customers_id_seq'::regclass);


"#
);

/// The matching `--section=post-data`.
const POST_DATA: &str = pg_dump_15!(
    "Wnf02dYHXyh33Ij1iNyNl5vrNq5qDV32SjhvyN9wfM40a04wZ1IfRSYTnxTWhfx",
    r#"
SET default_tablespace = '';

--
-- Name: Orders Orders_pkey; Type: CONSTRAINT; Schema: Sales; Owner: -
--

ALTER TABLE ONLY "Sales"."Orders"
    ADD CONSTRAINT "Orders_pkey" PRIMARY KEY (id);


--
-- Name: customers ck; Type: CHECK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE public.customers
    ADD CONSTRAINT ck CHECK ((id > 0)) NOT VALID;


--
-- Name: customers customers_email_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_email_key UNIQUE (email);


--
-- Name: customers customers_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_pkey PRIMARY KEY (id);


--
-- Name: orders_cust; Type: INDEX; Schema: Sales; Owner: -
--

CREATE INDEX orders_cust ON "Sales"."Orders" USING btree (customer_id);


--
-- Name: events_id_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX events_id_at_idx ON ONLY public.events USING btree (id, at);


--
-- Name: events_2024_id_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX events_2024_id_at_idx ON public.events_2024 USING btree (id, at);


--
-- Name: events_2024_id_at_idx; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.events_id_at_idx ATTACH PARTITION public.events_2024_id_at_idx;


--
-- Name: v_totals _RETURN; Type: RULE; Schema: public; Owner: -
--

CREATE OR REPLACE VIEW public.v_totals AS
 SELECT c.id,
    c.email,
    count(o.id) AS n
   FROM (public.customers c
     LEFT JOIN "Sales"."Orders" o ON ((o.customer_id = c.id)))
  GROUP BY c.id;


--
-- Name: v_customers r1; Type: RULE; Schema: public; Owner: -
--

CREATE RULE r1 AS
    ON UPDATE TO public.v_customers DO INSTEAD NOTHING;


--
-- Name: customers t1; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER t1 BEFORE INSERT ON public.customers FOR EACH ROW EXECUTE FUNCTION public.trg();


--
-- Name: Orders Orders_customer_id_fkey; Type: FK CONSTRAINT; Schema: Sales; Owner: -
--

ALTER TABLE ONLY "Sales"."Orders"
    ADD CONSTRAINT "Orders_customer_id_fkey" FOREIGN KEY (customer_id) REFERENCES public.customers(id) ON DELETE CASCADE;


--
-- Name: customers customers_country_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_country_fkey FOREIGN KEY (country) REFERENCES other.countries(code);


--
-- Name: customers; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.customers ENABLE ROW LEVEL SECURITY;

--
-- Name: customers p1; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY p1 ON public.customers USING ((email <> 'x;y'::text));


"#
);

#[test]
fn pre_data_script_is_split_and_rewritten() {
    let out = rw(PRE_DATA);
    assert_eq!(
        summary(&out),
        vec![
            ("TYPE", "CREATE TYPE lethe_shadow_public.mood AS ENUM ("),
            ("TYPE", "CREATE TYPE lethe_shadow_public.pair AS ("),
            (
                "DOMAIN",
                "CREATE DOMAIN lethe_shadow_public.posint AS integer"
            ),
            ("TABLE", "CREATE TABLE lethe_shadow_public.customers ("),
            (
                "COMMENT",
                "COMMENT ON TABLE lethe_shadow_public.customers IS 'customers; with public.stuff';"
            ),
            (
                "COMMENT",
                "COMMENT ON COLUMN lethe_shadow_public.customers.note IS 'free text; may contain public.stuff';"
            ),
            (
                "FUNCTION",
                "CREATE FUNCTION \"lethe_shadow_Sales\".total(lethe_shadow_public.customers) RETURNS numeric"
            ),
            (
                "FUNCTION",
                "CREATE FUNCTION lethe_shadow_public.f1(x integer) RETURNS integer"
            ),
            (
                "FUNCTION",
                "CREATE FUNCTION lethe_shadow_public.f2(x integer) RETURNS integer"
            ),
            (
                "FUNCTION",
                "CREATE FUNCTION lethe_shadow_public.grade(n integer) RETURNS text"
            ),
            (
                "PROCEDURE",
                "CREATE PROCEDURE lethe_shadow_public.touch(IN x integer)"
            ),
            (
                "FUNCTION",
                "CREATE FUNCTION lethe_shadow_public.trg() RETURNS trigger"
            ),
            ("TABLE", "CREATE TABLE \"lethe_shadow_Sales\".\"Orders\" ("),
            (
                "SEQUENCE",
                "CREATE SEQUENCE \"lethe_shadow_Sales\".\"Orders_id_seq\""
            ),
            (
                "SEQUENCE OWNED BY",
                "ALTER SEQUENCE \"lethe_shadow_Sales\".\"Orders_id_seq\" OWNED BY \"lethe_shadow_Sales\".\"Orders\".id;"
            ),
            (
                "SEQUENCE",
                "ALTER TABLE lethe_shadow_public.customers ALTER COLUMN big ADD GENERATED ALWAYS AS IDENTITY ("
            ),
            (
                "SEQUENCE",
                "CREATE SEQUENCE lethe_shadow_public.customers_id_seq"
            ),
            (
                "SEQUENCE OWNED BY",
                "ALTER SEQUENCE lethe_shadow_public.customers_id_seq OWNED BY lethe_shadow_public.customers.id;"
            ),
            ("TABLE", "CREATE TABLE lethe_shadow_public.events ("),
            ("TABLE", "CREATE TABLE lethe_shadow_public.events_2024 ("),
            (
                "MATERIALIZED VIEW",
                "CREATE MATERIALIZED VIEW lethe_shadow_public.mv AS"
            ),
            ("SEQUENCE", "CREATE SEQUENCE lethe_shadow_public.s1"),
            (
                "SEQUENCE OWNED BY",
                "ALTER SEQUENCE lethe_shadow_public.s1 OWNED BY lethe_shadow_public.customers.id;"
            ),
            ("VIEW", "CREATE VIEW lethe_shadow_public.v_customers AS"),
            ("VIEW", "CREATE VIEW lethe_shadow_public.v_totals AS"),
            (
                "TABLE ATTACH",
                "ALTER TABLE ONLY lethe_shadow_public.events ATTACH PARTITION lethe_shadow_public.events_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');"
            ),
            (
                "DEFAULT",
                "ALTER TABLE ONLY \"lethe_shadow_Sales\".\"Orders\" ALTER COLUMN id SET DEFAULT nextval('\"lethe_shadow_Sales\".\"Orders_id_seq\"'::regclass);"
            ),
            (
                "DEFAULT",
                "ALTER TABLE ONLY lethe_shadow_public.customers ALTER COLUMN id SET DEFAULT nextval('lethe_shadow_public.customers_id_seq'::regclass);"
            ),
        ]
    );
    assert_byte_identical(PRE_DATA, &out);

    assert_eq!(
        statement(&out, "CREATE TYPE lethe_shadow_public.mood"),
        "CREATE TYPE lethe_shadow_public.mood AS ENUM (\n    'sad',\n    'ok',\n    'happy; really'\n);"
    );
    assert_eq!(
        statement(&out, "CREATE TABLE lethe_shadow_public.customers"),
        "CREATE TABLE lethe_shadow_public.customers (
    id integer NOT NULL,
    email text NOT NULL,
    mood lethe_shadow_public.mood DEFAULT 'ok'::lethe_shadow_public.mood,
    country text,
    note text DEFAULT 'public.x; y'::text,
    e text DEFAULT 'it''s public.a;'::text,
    n lethe_shadow_public.posint,
    big bigint NOT NULL,
    g integer GENERATED ALWAYS AS ((id * 2)) STORED
);"
    );
    // Dollar-quoted bodies are late-bound by name: left alone.
    assert_eq!(
            statement(&out, "CREATE FUNCTION \"lethe_shadow_Sales\".total"),
            "CREATE FUNCTION \"lethe_shadow_Sales\".total(lethe_shadow_public.customers) RETURNS numeric
    LANGUAGE sql STABLE
    AS $_$ select sum(amount) from \"Sales\".\"Orders\" o where o.customer_id = $1.id; $_$;"
        );
    assert_eq!(
        statement(&out, "CREATE FUNCTION lethe_shadow_public.f1"),
        "CREATE FUNCTION lethe_shadow_public.f1(x integer) RETURNS integer
    LANGUAGE plpgsql
    AS $$ begin /* ; */ perform 1 from public.customers; return x; end $$;"
    );
    // BEGIN ATOMIC bodies are bound at creation: rewritten, and kept whole despite `;`.
    assert_eq!(
        statement(&out, "CREATE FUNCTION lethe_shadow_public.f2"),
        "CREATE FUNCTION lethe_shadow_public.f2(x integer) RETURNS integer
    LANGUAGE sql
    BEGIN ATOMIC
 SELECT (x + ( SELECT (count(*))::integer AS count
            FROM lethe_shadow_public.customers));
END;"
    );
    assert_eq!(
        statement(&out, "CREATE FUNCTION lethe_shadow_public.grade"),
        "CREATE FUNCTION lethe_shadow_public.grade(n integer) RETURNS text
    LANGUAGE sql IMMUTABLE
    BEGIN ATOMIC
 SELECT
         CASE
             WHEN (n > 10) THEN 'big; really'::text
             ELSE 'small'::text
         END AS \"case\";
END;"
    );
    assert_eq!(
        statement(&out, "CREATE PROCEDURE"),
        "CREATE PROCEDURE lethe_shadow_public.touch(IN x integer)
    LANGUAGE sql
    BEGIN ATOMIC
 UPDATE lethe_shadow_public.customers SET note = 'public.touched;'::text
   WHERE (customers.id = touch.x);
END;"
    );
    assert_eq!(
        statement(&out, "CREATE VIEW lethe_shadow_public.v_customers"),
        "CREATE VIEW lethe_shadow_public.v_customers AS
 SELECT c.id,
    c.email
   FROM lethe_shadow_public.customers c
  WHERE (c.note <> 'x;y'::text);"
    );
    assert!(
        statement(
            &out,
            "ALTER TABLE lethe_shadow_public.customers ALTER COLUMN big"
        )
        .contains("\n    SEQUENCE NAME lethe_shadow_public.customers_big_seq\n")
    );
}

#[test]
fn post_data_script_is_split_and_rewritten() {
    let out = rw(POST_DATA);
    assert_eq!(
        summary(&out),
        vec![
            (
                "CONSTRAINT",
                "ALTER TABLE ONLY \"lethe_shadow_Sales\".\"Orders\""
            ),
            (
                "CHECK CONSTRAINT",
                "ALTER TABLE lethe_shadow_public.customers"
            ),
            (
                "CONSTRAINT",
                "ALTER TABLE ONLY lethe_shadow_public.customers"
            ),
            (
                "CONSTRAINT",
                "ALTER TABLE ONLY lethe_shadow_public.customers"
            ),
            (
                "INDEX",
                "CREATE INDEX orders_cust ON \"lethe_shadow_Sales\".\"Orders\" USING btree (customer_id);"
            ),
            (
                "INDEX",
                "CREATE UNIQUE INDEX events_id_at_idx ON ONLY lethe_shadow_public.events USING btree (id, at);"
            ),
            (
                "INDEX",
                "CREATE UNIQUE INDEX events_2024_id_at_idx ON lethe_shadow_public.events_2024 USING btree (id, at);"
            ),
            (
                "INDEX ATTACH",
                "ALTER INDEX lethe_shadow_public.events_id_at_idx ATTACH PARTITION lethe_shadow_public.events_2024_id_at_idx;"
            ),
            (
                "RULE",
                "CREATE OR REPLACE VIEW lethe_shadow_public.v_totals AS"
            ),
            ("RULE", "CREATE RULE r1 AS"),
            (
                "TRIGGER",
                "CREATE TRIGGER t1 BEFORE INSERT ON lethe_shadow_public.customers FOR EACH ROW EXECUTE FUNCTION lethe_shadow_public.trg();"
            ),
            (
                "FK CONSTRAINT",
                "ALTER TABLE ONLY \"lethe_shadow_Sales\".\"Orders\""
            ),
            (
                "FK CONSTRAINT",
                "ALTER TABLE ONLY lethe_shadow_public.customers"
            ),
            (
                "ROW SECURITY",
                "ALTER TABLE lethe_shadow_public.customers ENABLE ROW LEVEL SECURITY;"
            ),
            (
                "POLICY",
                "CREATE POLICY p1 ON lethe_shadow_public.customers USING ((email <> 'x;y'::text));"
            ),
        ]
    );
    assert_byte_identical(POST_DATA, &out);
    let fks: Vec<&str> = out
        .iter()
        .filter(|s| s.object_type == "FK CONSTRAINT")
        .map(|s| s.sql.as_str())
        .collect();
    // A foreign key into another mapped schema follows it into its shadow...
    assert_eq!(
            fks[0],
            "ALTER TABLE ONLY \"lethe_shadow_Sales\".\"Orders\"
    ADD CONSTRAINT \"Orders_customer_id_fkey\" FOREIGN KEY (customer_id) REFERENCES lethe_shadow_public.customers(id) ON DELETE CASCADE;"
        );
    // ...one into a schema that isn't copied keeps pointing at it.
    assert_eq!(
        fks[1],
        "ALTER TABLE ONLY lethe_shadow_public.customers
    ADD CONSTRAINT customers_country_fkey FOREIGN KEY (country) REFERENCES other.countries(code);"
    );
    assert_eq!(
        statement(&out, "CREATE OR REPLACE VIEW"),
        "CREATE OR REPLACE VIEW lethe_shadow_public.v_totals AS
 SELECT c.id,
    c.email,
    count(o.id) AS n
   FROM (lethe_shadow_public.customers c
     LEFT JOIN \"lethe_shadow_Sales\".\"Orders\" o ON ((o.customer_id = c.id)))
  GROUP BY c.id;"
    );
}

#[test]
fn an_extension_in_a_mapped_schema_is_refused() {
    let script = "--\n-- Name: citext; Type: EXTENSION; Schema: -; Owner: -\n--\n\n\
                      CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA public;\n";
    assert_eq!(
        rewrite_dump(script, &map()),
        Err(RewriteError::Extension {
            name: "citext".into(),
            schema: "public".into()
        })
    );
    let quoted = "CREATE EXTENSION \"uuid-ossp\" WITH SCHEMA \"Sales\" VERSION '1.1';";
    let err = rewrite_dump(quoted, &map()).unwrap_err();
    assert_eq!(
        err,
        RewriteError::Extension {
            name: "uuid-ossp".into(),
            schema: "Sales".into()
        }
    );
    assert!(err.to_string().contains("\"uuid-ossp\""), "{err}");
    // Elsewhere, the extension (and its comment) is just left out.
    let elsewhere = "CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA extensions;\n\
                         COMMENT ON EXTENSION citext IS 'case-insensitive; text';\n\
                         CREATE TABLE public.t (e extensions.citext);\n";
    assert_eq!(
        sqls(elsewhere),
        ["CREATE TABLE lethe_shadow_public.t (e extensions.citext);"]
    );
}

#[test]
fn dollar_quoted_bodies_are_opaque() {
    let script = r#"CREATE FUNCTION public.f(a integer) RETURNS integer
    LANGUAGE plpgsql
    AS $fn$
declare
  s text := $$ it's; public.x $$;
begin
  -- public.y; 'not a string
  execute 'select 1 from public.z; ' || s;
  s := '
\echo not a meta-command inside a body';
  return $1 + a$b;
end $fn$;
SELECT $1, a$b$c.d, $tag_2$ ; $tag_1$ ; $tag_2$::text FROM public.t;
CREATE FUNCTION public.g() RETURNS text LANGUAGE sql AS 'select ''public.q; ''';
"#;
    let out = sqls(script);
    assert_eq!(out.len(), 3, "{out:#?}");
    assert_eq!(
        out[0],
        script[..script.find("end $fn$;").unwrap() + "end $fn$;".len()].replacen(
            "public.f(",
            "lethe_shadow_public.f(",
            1
        )
    );
    assert_eq!(
        out[1],
        "SELECT $1, a$b$c.d, $tag_2$ ; $tag_1$ ; $tag_2$::text FROM lethe_shadow_public.t;"
    );
    assert_eq!(
        out[2],
        "CREATE FUNCTION lethe_shadow_public.g() RETURNS text LANGUAGE sql AS 'select ''public.q; ''';"
    );
}

#[test]
fn begin_atomic_bodies_stay_whole() {
    let script = "CREATE OR REPLACE PROCEDURE public.p()
    LANGUAGE sql
    BEGIN ATOMIC
 INSERT INTO public.log (m) VALUES ('a;b');
 SELECT CASE WHEN true THEN CASE WHEN false THEN 1 END ELSE 2 END;
 SELECT (CASE WHEN true THEN 1 END);
END;
CREATE FUNCTION public.\"begin\"() RETURNS integer LANGUAGE sql RETURN 1;
CREATE FUNCTION public.b(x integer) RETURNS integer LANGUAGE sql BEGIN /* x */ ATOMIC; END;
SELECT 1;
";
    let out = sqls(script);
    assert_eq!(out.len(), 4, "{out:#?}");
    assert!(out[0].starts_with("CREATE OR REPLACE PROCEDURE lethe_shadow_public.p()"));
    assert!(out[0].contains("INSERT INTO lethe_shadow_public.log (m) VALUES ('a;b');"));
    assert!(out[0].ends_with("SELECT (CASE WHEN true THEN 1 END);\nEND;"));
    assert_eq!(
        out[1],
        "CREATE FUNCTION lethe_shadow_public.\"begin\"() RETURNS integer LANGUAGE sql RETURN 1;"
    );
    assert_eq!(
        out[2],
        "CREATE FUNCTION lethe_shadow_public.b(x integer) RETURNS integer LANGUAGE sql BEGIN /* x */ ATOMIC; END;"
    );
    assert_eq!(out[3], "SELECT 1;");
}

#[test]
fn strings_comments_and_quoted_identifiers_hide_semicolons_and_qualifiers() {
    let script = r#"
/* a comment; with public.x /* nested; */ still; public.y */
CREATE TABLE public."we;ird ""t""" (
    a text DEFAULT 'public.a; ''quoted''',  -- trailing; public.b
    b text DEFAULT E'it\'s public.c;\\',
    c text DEFAULT e'\\' || 'public.d;' || e'\';''',
    d bytea DEFAULT '\x00'::bytea,
    e text DEFAULT U&'d\0061t; public.e',
    f bit(3) DEFAULT B'101',
    "public.g;" integer
);
COMMENT ON COLUMN public."we;ird ""t""".a IS 'see public.t; and E''x''';
"#;
    let out = sqls(script);
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(
        out[0],
        script[script.find("CREATE").unwrap()..script.find("COMMENT").unwrap() - 1].replacen(
            "public.\"we",
            "lethe_shadow_public.\"we",
            1
        )
    );
    assert_eq!(
        out[1],
        "COMMENT ON COLUMN lethe_shadow_public.\"we;ird \"\"t\"\"\".a IS 'see public.t; and E''x''';"
    );
}

#[test]
fn schema_qualifiers() {
    let map: BTreeMap<String, String> = [
        ("public", "lethe_shadow_public"),
        ("Sales", "lethe_shadow_Sales"),
        ("app", "user"),
        ("x\"y", "9shadow"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let one = |sql: &str| {
        let out = rewrite_dump(sql, &map).unwrap();
        assert_eq!(out.len(), 1, "{out:?}");
        out.into_iter().next().unwrap().sql
    };
    assert_eq!(
        one("SELECT public.f(), \"public\".t, PUBLIC.t, Public.t FROM \"Sales\".o;"),
        "SELECT lethe_shadow_public.f(), lethe_shadow_public.t, lethe_shadow_public.t, \
             lethe_shadow_public.t FROM \"lethe_shadow_Sales\".o;"
    );
    // Not schema qualifiers (or not of a mapped schema).
    for unchanged in [
        "SELECT x.public.y FROM t;",
        "SELECT public .t, public, publicx.t, xpublic.t, \"Public\".t, sales.t FROM t;",
        "GRANT USAGE ON SCHEMA public TO public;",
        "SELECT 'public.t', $$public.t$$, \"public.t\" FROM t;",
    ] {
        assert_eq!(one(unchanged), unchanged);
    }
    // Three-part names: only the schema changes.
    assert_eq!(
        one("ALTER SEQUENCE public.s OWNED BY public.t.id;"),
        "ALTER SEQUENCE lethe_shadow_public.s OWNED BY lethe_shadow_public.t.id;"
    );
    // Shadow names are quoted when they must be.
    assert_eq!(one("CREATE TABLE app.t ();"), "CREATE TABLE \"user\".t ();");
    assert_eq!(
        one("CREATE TABLE \"x\"\"y\".t ();"),
        "CREATE TABLE \"9shadow\".t ();"
    );
    assert_eq!(
        one("SELECT OPERATOR(public.===) 1, 2::public.mood[], ROW(1)::\"Sales\".\"T\";"),
        "SELECT OPERATOR(lethe_shadow_public.===) 1, 2::lethe_shadow_public.mood[], \
             ROW(1)::\"lethe_shadow_Sales\".\"T\";"
    );
}

#[test]
fn reg_literals() {
    let cases = [
        (
            "nextval('public.customers_id_seq'::regclass)",
            "nextval('lethe_shadow_public.customers_id_seq'::regclass)",
        ),
        (
            "nextval('\"Sales\".\"Orders_id_seq\"'::pg_catalog.regclass)",
            "nextval('\"lethe_shadow_Sales\".\"Orders_id_seq\"'::pg_catalog.regclass)",
        ),
        (
            "to_tsvector('public.english'::regconfig, b)",
            "to_tsvector('lethe_shadow_public.english'::regconfig, b)",
        ),
        (
            "'public.f(public.mood, integer)'::regprocedure",
            "'lethe_shadow_public.f(lethe_shadow_public.mood, integer)'::regprocedure",
        ),
        (
            "'PUBLIC.T'::REGCLASS, 'public.mood'::regtype, 'public.f'::\"regproc\"",
            "'lethe_shadow_public.T'::REGCLASS, 'lethe_shadow_public.mood'::regtype, \
                 'lethe_shadow_public.f'::\"regproc\"",
        ),
        (
            "E'public.t'::regclass",
            "E'lethe_shadow_public.t'::regclass",
        ),
        // Left alone: not a reg* cast, not mapped, not directly cast, escapes.
        ("'public.t'::text", "'public.t'::text"),
        ("'public.t'::regclassy", "'public.t'::regclassy"),
        ("'other.t'::regclass", "'other.t'::regclass"),
        (
            "'pg_catalog.english'::regconfig",
            "'pg_catalog.english'::regconfig",
        ),
        ("'public.t' ::regclass", "'public.t' ::regclass"),
        ("'x.public.t'::regclass", "'x.public.t'::regclass"),
        ("E'public.\\x74'::regclass", "E'public.\\x74'::regclass"),
        ("$$public.t$$::regclass", "$$public.t$$::regclass"),
    ];
    for (input, expected) in cases {
        assert_eq!(
            sqls(&format!("SELECT {input};")),
            [format!("SELECT {expected};")]
        );
    }
    // The shadow name is quoted inside the literal when needed, with quotes doubled.
    let map = BTreeMap::from([("public".to_owned(), "it's".to_owned())]);
    let out = rewrite_dump("SELECT 'public.t'::regclass;", &map).unwrap();
    assert_eq!(out[0].sql, "SELECT '\"it''s\".t'::regclass;");
}

#[test]
fn session_statements_meta_commands_and_schemas_are_dropped() {
    let script = r#"\restrict abc
\connect -reuse-previous=on "dbname='x'"
SET statement_timeout = 0;
set search_path = public, pg_catalog;
SELECT pg_catalog.set_config('search_path', '', false);
SELECT set_config('a.b', 'c', false);
CREATE SCHEMA IF NOT EXISTS "Sales";
ALTER SCHEMA public OWNER TO app;
COMMENT ON SCHEMA public IS 'standard public schema';
SECURITY LABEL FOR anon ON SCHEMA public IS 'x';
SECURITY LABEL FOR anon ON COLUMN public.t.c IS 'MASKED';
SELECT pg_catalog.setval('public.s', 1, false);
CREATE TABLE public.t (c text);
\unrestrict abc
"#;
    assert_eq!(
        sqls(script),
        [
            "SECURITY LABEL FOR anon ON COLUMN lethe_shadow_public.t.c IS 'MASKED';",
            "SELECT pg_catalog.setval('public.s', 1, false);",
            "CREATE TABLE lethe_shadow_public.t (c text);",
        ]
    );
    // A meta-command line in the middle of a statement is cut out of it.
    assert_eq!(
        sqls("CREATE TABLE public.t (\n\\echo hi\n  c text);"),
        ["CREATE TABLE lethe_shadow_public.t (\n\n  c text);"]
    );
}

#[test]
fn standard_conforming_strings_off_makes_backslash_an_escape() {
    let script = "SET standard_conforming_strings = off;
INSERT INTO public.t VALUES ('it\\'s; public.x');
SET standard_conforming_strings TO 'on';
INSERT INTO public.t VALUES ('a\\', public.f());
";
    assert_eq!(
        sqls(script),
        [
            "INSERT INTO lethe_shadow_public.t VALUES ('it\\'s; public.x');",
            "INSERT INTO lethe_shadow_public.t VALUES ('a\\', lethe_shadow_public.f());",
        ]
    );
}

#[test]
fn object_types_come_from_the_latest_header() {
    let script = "CREATE TABLE public.a ();
--
-- Name: b; Type: TABLE; Schema: public; Owner: app
--
CREATE TABLE public.b ();
-- Name: we; Type: ird; Type: INDEX; Schema: public; Owner: -
CREATE INDEX i ON public.b ();
-- Data for Name: b; Type: TABLE DATA; Schema: public; Owner: -
SELECT 1;
-- Name: nope
SELECT 2;
";
    let out = rw(script);
    let types: Vec<&str> = out.iter().map(|s| s.object_type.as_str()).collect();
    assert_eq!(types, ["", "TABLE", "INDEX", "TABLE DATA", "TABLE DATA"]);
    assert_eq!(out[0].sql, "CREATE TABLE lethe_shadow_public.a ();");
}

#[test]
fn empty_statements_and_a_missing_final_semicolon() {
    assert_eq!(
        sqls(";\n ; -- x;\n/* ; */ ;SELECT 1;;\nSELECT 2 -- end"),
        ["SELECT 1;", "SELECT 2"]
    );
    assert!(rw("").is_empty());
    assert!(rw("-- only a comment\n\\restrict x\n").is_empty());
}

#[test]
fn unterminated_tokens_are_errors() {
    for (script, what, line) in [
        ("SELECT 1;\nSELECT 'abc;", "string literal", 2),
        ("SELECT 1;\n\nSELECT E'ab\\';", "string literal", 3),
        ("SELECT \"abc;", "quoted identifier", 1),
        ("SELECT 1; /* a /* b */ c;", "/* comment */", 1),
        (
            "CREATE FUNCTION f() AS $x$ body; $$;\n",
            "dollar-quoted string",
            1,
        ),
    ] {
        assert_eq!(
            rewrite_dump(script, &map()),
            Err(RewriteError::Unterminated { what, line }),
            "{script}"
        );
    }
}

#[test]
fn quote_ident_follows_postgres() {
    assert_eq!(quote_ident("lethe_shadow_public"), "lethe_shadow_public");
    assert_eq!(quote_ident("_x9"), "_x9");
    assert_eq!(quote_ident("lethe_shadow_Sales"), "\"lethe_shadow_Sales\"");
    assert_eq!(quote_ident("9a"), "\"9a\"");
    assert_eq!(quote_ident("a-b"), "\"a-b\"");
    assert_eq!(quote_ident("a$b"), "\"a$b\"");
    assert_eq!(quote_ident("ä"), "\"ä\"");
    assert_eq!(quote_ident(""), "\"\"");
    assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    assert_eq!(quote_ident("user"), "\"user\"");
    assert_eq!(quote_ident("select"), "\"select\"");
    assert_eq!(quote_ident("public"), "public"); // unreserved keyword
}

// ---- real pg_dump into a real shadow ---------------------------------------------------

mod live {
    use super::*;
    use crate::engine::postgres::dump::{Section, pg_dump_schema};
    use crate::engine::postgres::test_db::{TestDb, psql, run};
    use secrecy::SecretString;

    /// The copied schemas' DDL as a refresh gets it: through lethe's own pg_dump run.
    async fn pg_dump(db: &TestDb, section: Section) -> String {
        let url = SecretString::from(db.url.to_string());
        let schemas = ["public".to_owned(), "Sales".to_owned()];
        pg_dump_schema(&url, None, section, &schemas)
            .await
            .unwrap_or_else(|e| panic!("pg_dump failed: {e}"))
    }

    const SOURCE_SCHEMA: &str = r#"
            CREATE SCHEMA "Sales";
            CREATE SCHEMA other;
            CREATE TABLE other.countries (code text PRIMARY KEY);
            CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy; really');
            CREATE DOMAIN public.posint AS integer CHECK (VALUE > 0);
            CREATE FUNCTION public.trg() RETURNS trigger LANGUAGE plpgsql
                AS $$ begin new.note := 'public.z'; return new; end $$;
            CREATE TABLE public.customers (
                id serial PRIMARY KEY,
                email text UNIQUE NOT NULL,
                mood public.mood DEFAULT 'ok',
                country text REFERENCES other.countries (code),
                note text DEFAULT 'public.x; y',
                n public.posint,
                big bigint GENERATED ALWAYS AS IDENTITY,
                g int GENERATED ALWAYS AS (id * 2) STORED
            );
            COMMENT ON TABLE public.customers IS 'customers; see public.orders';
            CREATE TRIGGER t1 BEFORE INSERT ON public.customers
                FOR EACH ROW EXECUTE FUNCTION public.trg();
            CREATE FUNCTION public.f2(x int) RETURNS int LANGUAGE sql
                BEGIN ATOMIC SELECT x + (SELECT count(*)::int FROM public.customers); END;
            CREATE FUNCTION public.f3() RETURNS bigint LANGUAGE sql
                AS $$ SELECT count(*) FROM public.customers $$;
            CREATE TABLE "Sales"."Orders" (
                id bigserial PRIMARY KEY,
                customer_id int REFERENCES public.customers (id) ON DELETE CASCADE,
                amount numeric CHECK (amount > 0),
                m public.mood DEFAULT 'sad'
            );
            CREATE INDEX orders_cust ON "Sales"."Orders" (customer_id);
            CREATE FUNCTION "Sales".total(public.customers) RETURNS numeric LANGUAGE sql STABLE
                AS $$ SELECT sum(amount) FROM "Sales"."Orders" o WHERE o.customer_id = $1.id $$;
            CREATE TABLE public.events (id int, at date NOT NULL) PARTITION BY RANGE (at);
            CREATE TABLE public.events_2024 PARTITION OF public.events
                FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
            CREATE UNIQUE INDEX ON public.events (id, at);
            CREATE VIEW public.v_customers AS
                SELECT c.id, c.email FROM public.customers c WHERE c.note <> 'x;y';
            CREATE VIEW public.v_totals AS
                SELECT c.id, c.email, count(o.id) AS n
                FROM public.customers c LEFT JOIN "Sales"."Orders" o ON o.customer_id = c.id
                GROUP BY c.id;
            CREATE MATERIALIZED VIEW public.mv AS SELECT count(*) AS n FROM public.customers;
            ALTER TABLE public.customers ENABLE ROW LEVEL SECURITY;
            CREATE POLICY p1 ON public.customers USING (email <> 'x;y');
        "#;

    /// Objects directly in schema `public`: relations, types, routines.
    const PUBLIC_OBJECTS: &str = "
            SELECT string_agg(kind || ' ' || name, ', ' ORDER BY kind, name) FROM (
                SELECT 'class' AS kind, relname::text AS name FROM pg_class
                    WHERE relnamespace = 'public'::regnamespace
                UNION ALL SELECT 'type', typname::text FROM pg_type
                    WHERE typnamespace = 'public'::regnamespace
                UNION ALL SELECT 'proc', proname::text FROM pg_proc
                    WHERE pronamespace = 'public'::regnamespace) o";

    /// Normal dependencies on an object in `public` from anything outside it.
    const DEPENDENCIES_ON_PUBLIC: &str = "
            WITH pub(classid, objid) AS (
                SELECT 'pg_class'::regclass, oid FROM pg_class
                    WHERE relnamespace = 'public'::regnamespace
                UNION ALL SELECT 'pg_type'::regclass, oid FROM pg_type
                    WHERE typnamespace = 'public'::regnamespace
                UNION ALL SELECT 'pg_proc'::regclass, oid FROM pg_proc
                    WHERE pronamespace = 'public'::regnamespace)
            SELECT count(*) FROM pg_depend d
            JOIN pub ON (d.refclassid, d.refobjid) = (pub.classid, pub.objid)
            WHERE d.deptype = 'n'";

    #[tokio::test]
    async fn real_pg_dump_builds_the_shadow_and_survives_the_swap() {
        let source = TestDb::create("rwsrc");
        let target = TestDb::create("rwdst");
        psql(&source.url, SOURCE_SCHEMA);
        let pre = rewrite_dump(&pg_dump(&source, Section::PreData).await, &map()).unwrap();
        let post = rewrite_dump(&pg_dump(&source, Section::PostData).await, &map()).unwrap();
        assert!(pre.iter().any(|s| s.object_type == "TABLE"), "{pre:#?}");
        assert!(
            post.iter().any(|s| s.object_type == "FK CONSTRAINT"),
            "{post:#?}"
        );

        // The target: an unmapped schema the copy refers to, a live `public` holding
        // same-named decoys that an unrewritten name would silently bind to, and the
        // empty shadows.
        psql(
            &target.url,
            r#"
                CREATE SCHEMA other;
                CREATE TABLE other.countries (code text PRIMARY KEY);
                INSERT INTO other.countries VALUES ('DE');
                CREATE TYPE public.mood AS ENUM ('decoy');
                CREATE TABLE public.customers (id int, email text, note text);
                CREATE SEQUENCE public.customers_id_seq;
                CREATE FUNCTION public.trg() RETURNS trigger LANGUAGE plpgsql
                    AS $$ begin return new; end $$;
                CREATE SCHEMA lethe_shadow_public;
                CREATE SCHEMA "lethe_shadow_Sales";
            "#,
        );
        let live_before = psql(&target.url, PUBLIC_OBJECTS);

        // Schema, data, then the post-data, as a refresh does, in one transaction.
        let mut script: Vec<String> = vec![session_setup(false)];
        script.extend(pre.iter().map(|s| s.sql.clone()));
        script.push(
            "INSERT INTO lethe_shadow_public.customers (email, country) VALUES ('a@x', 'DE');"
                .into(),
        );
        script.extend(post.iter().map(|s| s.sql.clone()));
        let file = std::env::temp_dir().join(format!("{}.sql", target.name));
        std::fs::write(&file, script.join("\n")).unwrap();
        let out = run(
            "psql",
            &target.url,
            &[
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "--single-transaction",
                "-f",
                file.to_str().unwrap(),
            ],
        );
        std::fs::remove_file(&file).unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );

        // Nothing landed in `public`, and nothing in the shadow depends on it.
        assert_eq!(psql(&target.url, PUBLIC_OBJECTS), live_before);
        assert_eq!(psql(&target.url, DEPENDENCIES_ON_PUBLIC), "0");
        assert_eq!(
            psql(
                &target.url,
                "SELECT string_agg(relname, ', ' ORDER BY relname) FROM pg_class \
                     WHERE relnamespace = 'lethe_shadow_public'::regnamespace \
                     AND relkind IN ('r', 'p', 'v', 'm')"
            ),
            "customers, events, events_2024, mv, v_customers, v_totals"
        );

        // The swap: afterwards every name and every bound reference points at the copy.
        psql(
            &target.url,
            r#"
                BEGIN;
                ALTER SCHEMA public RENAME TO lethe_previous_public;
                ALTER SCHEMA lethe_shadow_public RENAME TO public;
                ALTER SCHEMA "lethe_shadow_Sales" RENAME TO "Sales";
                COMMIT;
            "#,
        );
        let q = |sql: &str| psql(&target.url, sql);
        assert_eq!(
            q("SELECT pg_get_serial_sequence('public.customers', 'id')"),
            "public.customers_id_seq"
        );
        // Default from the copied sequence, trigger from the copied function.
        assert_eq!(
            q("INSERT INTO public.customers (email) VALUES ('b@x') RETURNING id, note, mood, g"),
            "2|public.z|ok|4"
        );
        assert_eq!(q("SELECT public.f2(1), public.f3()"), "3|2");
        assert_eq!(q("SELECT count(*) FROM public.v_customers"), "2");
        assert_eq!(
            q(
                "SELECT confrelid::regclass FROM pg_constraint WHERE conname = 'Orders_customer_id_fkey'"
            ),
            "customers"
        );
        q(r#"INSERT INTO "Sales"."Orders" (customer_id, amount) VALUES (1, 5), (1, 7)"#);
        assert_eq!(q("SELECT n FROM public.v_totals WHERE id = 1"), "2");
        assert_eq!(
            q(r#"SELECT "Sales".total(c) FROM public.customers c WHERE id = 1"#),
            "12"
        );
        q("INSERT INTO public.events VALUES (1, '2024-05-01')");
        assert_eq!(q("SELECT count(*) FROM public.events_2024"), "1");
        assert_eq!(
            q(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'public.events_id_at_idx'::regclass"
            ),
            "1"
        );
        q("REFRESH MATERIALIZED VIEW public.mv");
        assert_eq!(q("SELECT n FROM public.mv"), "2");
        assert_eq!(
            q("SELECT count(*) FROM lethe_previous_public.customers"),
            "0"
        );
    }
}
