-- Schema for tests/corpus.sql: pgbench's tables and a med-spa SaaS app.
-- Valid PostgreSQL 15. Run once in a fresh database before the corpus.

CREATE TABLE pgbench_branches (bid int PRIMARY KEY, bbalance int NOT NULL DEFAULT 0, filler char(88));
CREATE TABLE pgbench_tellers (tid int PRIMARY KEY, bid int, tbalance int NOT NULL DEFAULT 0, filler char(84));
CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int NOT NULL DEFAULT 0, filler char(84));
CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));

INSERT INTO pgbench_branches (bid) SELECT g FROM generate_series(1, 2) g;
INSERT INTO pgbench_tellers (tid, bid) SELECT g, 1 + g % 2 FROM generate_series(1, 20) g;
INSERT INTO pgbench_accounts (aid, bid) SELECT g, 1 + g % 2 FROM generate_series(1, 100000) g;

CREATE SCHEMA spa;
CREATE TABLE spa.rooms (id serial PRIMARY KEY, name text NOT NULL, floor int NOT NULL DEFAULT 1);

CREATE TABLE clients (
    id bigserial PRIMARY KEY,
    first_name text NOT NULL,
    last_name text NOT NULL,
    email text UNIQUE,
    phone text,
    birth_date date,
    vip boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    notes jsonb NOT NULL DEFAULT '{}'
);
CREATE TABLE providers (
    id serial PRIMARY KEY,
    name text NOT NULL,
    title text,
    active boolean NOT NULL DEFAULT true,
    hourly_rate numeric(10, 2)
);
CREATE TABLE treatments (
    id serial PRIMARY KEY,
    name text NOT NULL,
    category text NOT NULL,
    duration_min int NOT NULL,
    price numeric(10, 2) NOT NULL,
    active boolean NOT NULL DEFAULT true
);
CREATE TABLE appointments (
    id bigserial PRIMARY KEY,
    client_id bigint NOT NULL REFERENCES clients,
    provider_id int NOT NULL REFERENCES providers,
    treatment_id int NOT NULL REFERENCES treatments,
    room_id int REFERENCES spa.rooms,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    status text NOT NULL DEFAULT 'booked'
        CHECK (status IN ('booked', 'confirmed', 'done', 'cancelled', 'no_show')),
    notes text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX appointments_starts_at_idx ON appointments (starts_at);
CREATE TABLE invoices (
    id bigserial PRIMARY KEY,
    client_id bigint NOT NULL REFERENCES clients,
    appointment_id bigint REFERENCES appointments,
    total numeric(10, 2) NOT NULL,
    tax numeric(10, 2) NOT NULL DEFAULT 0,
    status text NOT NULL DEFAULT 'open',
    issued_at timestamptz NOT NULL DEFAULT now(),
    paid_at timestamptz
);
CREATE TABLE payments (
    id bigserial PRIMARY KEY,
    invoice_id bigint NOT NULL REFERENCES invoices,
    amount numeric(10, 2) NOT NULL,
    method text NOT NULL,
    paid_at timestamptz NOT NULL DEFAULT now(),
    reference text
);
CREATE TABLE inventory (
    id serial PRIMARY KEY,
    sku text UNIQUE NOT NULL,
    name text NOT NULL,
    qty int NOT NULL DEFAULT 0,
    reorder_level int NOT NULL DEFAULT 5,
    unit_cost numeric(10, 2),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE inventory_usage (
    id bigserial PRIMARY KEY,
    appointment_id bigint REFERENCES appointments,
    item_id int REFERENCES inventory,
    used int NOT NULL
);
CREATE TABLE deliveries (sku text NOT NULL, qty int NOT NULL);
CREATE TABLE audit_log (id bigserial PRIMARY KEY, actor text, action text, payload jsonb, at timestamptz DEFAULT now());
CREATE TABLE "CamelCase" ("Id" int, "Value" text);
CREATE SEQUENCE invoice_no;

CREATE FUNCTION calc_tax(amount numeric) RETURNS numeric
    LANGUAGE sql IMMUTABLE AS $$ SELECT round(amount * 0.0825, 2) $$;
CREATE PROCEDURE archive_audit(days int) LANGUAGE sql
    AS $$ DELETE FROM audit_log WHERE at < now() - make_interval(days => days) $$;

INSERT INTO clients (first_name, last_name, email, phone, birth_date, vip)
    SELECT 'First' || g, 'Last' || g, 'c' || g || '@example.com', '555-01' || g, date '1980-01-01' + g, g % 10 = 0
    FROM generate_series(1, 50) g;
INSERT INTO providers (name, title, hourly_rate) VALUES
    ('Dana', 'RN', 80), ('Lee', 'Esthetician', 60), ('Sam', 'MD', 200);
INSERT INTO treatments (name, category, duration_min, price) VALUES
    ('Botox', 'injectables', 30, 350), ('HydraFacial', 'facials', 60, 199),
    ('Laser Hair Removal', 'laser', 45, 250), ('Chemical Peel', 'facials', 40, 150);
INSERT INTO spa.rooms (name) VALUES ('Rose'), ('Lotus'), ('Jade');
INSERT INTO appointments (client_id, provider_id, treatment_id, room_id, starts_at, ends_at, status)
    SELECT 1 + g % 50, 1 + g % 3, 1 + g % 4, 1 + g % 3,
           timestamptz '2024-03-01 09:00+00' + g * interval '1 hour',
           timestamptz '2024-03-01 10:00+00' + g * interval '1 hour',
           (ARRAY['booked', 'confirmed', 'done', 'cancelled'])[1 + g % 4]
    FROM generate_series(1, 200) g;
INSERT INTO invoices (client_id, appointment_id, total, tax, status, paid_at)
    SELECT client_id, id, 199, 16.42, CASE WHEN id % 2 = 0 THEN 'paid' ELSE 'open' END,
           CASE WHEN id % 2 = 0 THEN starts_at END
    FROM appointments WHERE status = 'done';
INSERT INTO inventory (sku, name, qty, reorder_level, unit_cost) VALUES
    ('BTX-100', 'Botox 100u vial', 12, 4, 420), ('HF-TIP', 'HydraFacial tip', 40, 10, 12.5),
    ('PEEL-20', 'Glycolic peel 20%', 8, 3, 30);
INSERT INTO deliveries VALUES ('BTX-100', 5), ('NEW-1', 3);

CREATE MATERIALIZED VIEW daily_revenue AS
    SELECT date_trunc('day', paid_at) AS day, sum(amount) AS revenue FROM payments GROUP BY 1;
CREATE VIEW upcoming_appointments AS
    SELECT a.*, c.email FROM appointments a JOIN clients c ON c.id = a.client_id WHERE a.status IN ('booked', 'confirmed');
ANALYZE;
