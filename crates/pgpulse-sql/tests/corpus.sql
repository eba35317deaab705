-- Corpus of PostgreSQL 15 statements for pgpulse-sql (normalizer oracle,
-- benchmarks). Entries are separated by a line holding exactly `-- @@`.
-- Run in order, in one session, after tests/corpus_schema.sql.
-- @@
BEGIN
-- @@
UPDATE pgbench_accounts SET abalance = abalance + -4209 WHERE aid = 42446
-- @@
SELECT abalance FROM pgbench_accounts WHERE aid = 42446
-- @@
UPDATE pgbench_tellers SET tbalance = tbalance + -4209 WHERE tid = 5
-- @@
UPDATE pgbench_branches SET bbalance = bbalance + -4209 WHERE bid = 2
-- @@
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (5, 2, 42446, -4209, CURRENT_TIMESTAMP)
-- @@
END
-- @@
BEGIN
-- @@
UPDATE pgbench_accounts SET abalance = abalance + 991 WHERE aid = 9495
-- @@
SELECT abalance FROM pgbench_accounts WHERE aid = 9495
-- @@
UPDATE pgbench_tellers SET tbalance = tbalance + 991 WHERE tid = 18
-- @@
UPDATE pgbench_branches SET bbalance = bbalance + 991 WHERE bid = 1
-- @@
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (18, 1, 9495, 991, CURRENT_TIMESTAMP)
-- @@
END
-- @@
BEGIN
-- @@
UPDATE pgbench_accounts SET abalance = abalance + -4386 WHERE aid = 76388
-- @@
SELECT abalance FROM pgbench_accounts WHERE aid = 76388
-- @@
UPDATE pgbench_tellers SET tbalance = tbalance + -4386 WHERE tid = 2
-- @@
UPDATE pgbench_branches SET bbalance = bbalance + -4386 WHERE bid = 1
-- @@
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (2, 1, 76388, -4386, CURRENT_TIMESTAMP)
-- @@
END
-- @@
BEGIN
-- @@
UPDATE pgbench_accounts SET abalance = abalance + -3856 WHERE aid = 11266
-- @@
SELECT abalance FROM pgbench_accounts WHERE aid = 11266
-- @@
UPDATE pgbench_tellers SET tbalance = tbalance + -3856 WHERE tid = 14
-- @@
UPDATE pgbench_branches SET bbalance = bbalance + -3856 WHERE bid = 2
-- @@
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (14, 2, 11266, -3856, CURRENT_TIMESTAMP)
-- @@
END
-- @@
BEGIN
-- @@
UPDATE pgbench_accounts SET abalance = abalance + -4032 WHERE aid = 31545
-- @@
SELECT abalance FROM pgbench_accounts WHERE aid = 31545
-- @@
UPDATE pgbench_tellers SET tbalance = tbalance + -4032 WHERE tid = 3
-- @@
UPDATE pgbench_branches SET bbalance = bbalance + -4032 WHERE bid = 2
-- @@
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (3, 2, 31545, -4032, CURRENT_TIMESTAMP)
-- @@
END
-- @@
BEGIN
-- @@
UPDATE pgbench_accounts SET abalance = abalance + 4551 WHERE aid = 74116
-- @@
SELECT abalance FROM pgbench_accounts WHERE aid = 74116
-- @@
UPDATE pgbench_tellers SET tbalance = tbalance + 4551 WHERE tid = 4
-- @@
UPDATE pgbench_branches SET bbalance = bbalance + 4551 WHERE bid = 1
-- @@
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (4, 1, 74116, 4551, CURRENT_TIMESTAMP)
-- @@
END
-- @@
select abalance from pgbench_accounts where aid = 8109
-- @@
select abalance from pgbench_accounts where aid = 75643
-- @@
select abalance from pgbench_accounts where aid = 76749
-- @@
select abalance from pgbench_accounts where aid = 51994
-- @@
SELECT count(*) FROM pgbench_branches
-- @@
select o.n, p.partstrat, o.x from pg_catalog.pg_class as c left join pg_catalog.pg_partitioned_table as p on (p.partrelid = c.oid) cross join (select 1 as n, 'x' as x) o where c.relname = 'pgbench_accounts' and c.relnamespace = 'public'::regnamespace
-- @@
SELECT id, first_name, last_name, email, phone FROM clients WHERE id = 1
-- @@
SELECT id, first_name, last_name, email, phone FROM clients WHERE id = 7
-- @@
SELECT id, first_name, last_name, email, phone FROM clients WHERE id = 42
-- @@
SELECT * FROM clients WHERE lower(email) = lower('c3@example.com')
-- @@
SELECT * FROM clients WHERE lower(email) = lower('C17@Example.com')
-- @@
SELECT * FROM clients WHERE lower(email) = lower('nobody@example.com')
-- @@
SELECT id, first_name || ' ' || last_name AS full_name FROM clients WHERE last_name ILIKE 'last1%' ORDER BY last_name, first_name LIMIT 20
-- @@
SELECT id, first_name || ' ' || last_name AS full_name FROM clients WHERE last_name ILIKE 'Last2%' ORDER BY last_name, first_name LIMIT 50
-- @@
SELECT * FROM clients WHERE id IN (1)
-- @@
SELECT * FROM clients WHERE id IN (1, 2, 3)
-- @@
SELECT * FROM clients WHERE id IN (4, 8, 15, 16, 23, 42)
-- @@
SELECT count(*) FROM appointments WHERE status IN ('booked')
-- @@
SELECT count(*) FROM appointments WHERE status IN ('booked', 'confirmed')
-- @@
SELECT count(*) FROM appointments WHERE status IN ('done', 'cancelled', 'no_show')
-- @@
SELECT * FROM providers WHERE active ORDER BY name
-- @@
SELECT * FROM providers WHERE active = true AND hourly_rate > 75.5
-- @@
SELECT id, name, price FROM treatments WHERE category = 'facials' AND active ORDER BY price DESC
-- @@
SELECT id, name, price FROM treatments WHERE category = 'laser' AND active ORDER BY price DESC
-- @@
SELECT name FROM spa.rooms WHERE floor = 1
-- @@
SELECT * FROM treatments WHERE price BETWEEN 100 AND 300.00
-- @@
SELECT * FROM treatments WHERE price BETWEEN 150 AND 200
-- @@
SELECT a.id, a.starts_at, a.ends_at, c.first_name, t.name AS treatment, r.name AS room
FROM appointments a
JOIN clients c ON c.id = a.client_id
JOIN treatments t ON t.id = a.treatment_id
LEFT JOIN spa.rooms r ON r.id = a.room_id
WHERE a.provider_id = 1 AND a.starts_at >= '2024-03-02'::date AND a.starts_at < '2024-03-02'::date + 1
ORDER BY a.starts_at
-- @@
SELECT a.id, a.starts_at, a.ends_at, c.first_name, t.name AS treatment, r.name AS room
FROM appointments a
JOIN clients c ON c.id = a.client_id
JOIN treatments t ON t.id = a.treatment_id
LEFT JOIN spa.rooms r ON r.id = a.room_id
WHERE a.provider_id = 1 AND a.starts_at >= '2024-03-05'::date AND a.starts_at < '2024-03-05'::date + 1
ORDER BY a.starts_at
-- @@
SELECT p.name, count(*) FILTER (WHERE a.status = 'done') AS done, count(*) AS total
FROM providers p LEFT JOIN appointments a ON a.provider_id = p.id
GROUP BY p.name ORDER BY total DESC
-- @@
SELECT r.id, r.name FROM spa.rooms r
WHERE NOT EXISTS (SELECT 1 FROM appointments a WHERE a.room_id = r.id
  AND tstzrange(a.starts_at, a.ends_at) && tstzrange('2024-03-02 10:00+00', '2024-03-02 11:00+00'))
-- @@
SELECT * FROM upcoming_appointments WHERE starts_at > now() - interval '30 days' LIMIT 10
-- @@
SELECT * FROM appointments WHERE starts_at::date = DATE '2024-03-03'
-- @@
SELECT * FROM appointments WHERE starts_at::date = DATE '2024-03-04'
-- @@
SELECT a.* FROM appointments a WHERE a.client_id = 12 AND a.status <> 'cancelled'
ORDER BY a.starts_at DESC LIMIT 5 OFFSET 0
-- @@
SELECT a.* FROM appointments a WHERE a.client_id = 31 AND a.status != 'cancelled'
ORDER BY a.starts_at DESC LIMIT 5 OFFSET 5
-- @@
SELECT date_trunc('month', i.issued_at) AS month, sum(i.total) AS billed, sum(p.amount) AS collected
FROM invoices i LEFT JOIN payments p ON p.invoice_id = i.id
GROUP BY 1 ORDER BY 1
-- @@
WITH per_client AS (
  SELECT client_id, sum(total) AS spent FROM invoices WHERE status = 'paid' GROUP BY client_id
)
SELECT c.email, pc.spent FROM per_client pc JOIN clients c ON c.id = pc.client_id
ORDER BY pc.spent DESC LIMIT 10
-- @@
SELECT t.category, avg(t.price)::numeric(10,2) AS avg_price, percentile_cont(0.5) WITHIN GROUP (ORDER BY t.price) AS median
FROM treatments t GROUP BY t.category HAVING count(*) > 0
-- @@
SELECT c.id, c.email, rank() OVER (ORDER BY count(a.id) DESC) AS rnk
FROM clients c JOIN appointments a ON a.client_id = c.id GROUP BY c.id, c.email
-- @@
WITH RECURSIVE days(d) AS (SELECT DATE '2024-03-01' UNION ALL SELECT d + 1 FROM days WHERE d < DATE '2024-03-07')
SELECT d, (SELECT count(*) FROM appointments a WHERE a.starts_at::date = d) AS n FROM days
-- @@
SELECT status, count(*) FROM appointments GROUP BY status ORDER BY 2 DESC
-- @@
SELECT * FROM daily_revenue ORDER BY day DESC LIMIT 7
-- @@
SELECT sum(amount) FROM payments WHERE method = 'card' AND paid_at >= now() - interval '7 days'
-- @@
SELECT sum(amount) FROM payments WHERE method = 'cash' AND paid_at >= now() - interval '1 month'
-- @@
SELECT i.id, calc_tax(i.total) AS tax FROM invoices i WHERE i.status = 'open'
-- @@
SELECT client_id FROM invoices WHERE status = 'open' UNION SELECT client_id FROM appointments WHERE status = 'no_show'
-- @@
SELECT client_id FROM invoices INTERSECT SELECT client_id FROM appointments
-- @@
SELECT client_id FROM invoices EXCEPT ALL SELECT client_id FROM appointments
-- @@
SELECT sku, qty FROM inventory WHERE qty <= reorder_level
-- @@
SELECT sku, qty, qty - reorder_level AS margin FROM inventory ORDER BY margin
-- @@
SELECT * FROM inventory WHERE sku = ANY(ARRAY['BTX-100', 'HF-TIP'])
-- @@
SELECT * FROM inventory WHERE sku = ANY(ARRAY['PEEL-20'])
-- @@
SELECT notes->>'allergies' AS allergies FROM clients WHERE notes ? 'allergies'
-- @@
SELECT id FROM clients WHERE notes @> '{"vip": true}'::jsonb
-- @@
SELECT id FROM clients WHERE notes #>> '{prefs,contact}' = 'sms'
-- @@
SELECT extract(year FROM birth_date) AS y, count(*) FROM clients GROUP BY y
-- @@
SELECT coalesce(phone, 'n/a'), nullif(email, '') FROM clients LIMIT 3
-- @@
SELECT CASE WHEN vip THEN 'VIP' ELSE 'regular' END AS tier, count(*) FROM clients GROUP BY 1
-- @@
SELECT * FROM clients c WHERE c.created_at > now() - '1 day'::interval FOR UPDATE
-- @@
SELECT * FROM appointments WHERE id = 5 FOR NO KEY UPDATE
-- @@
SELECT * FROM inventory WHERE sku = 'BTX-100' FOR UPDATE SKIP LOCKED
-- @@
SELECT * FROM invoices WHERE id = 3 FOR SHARE
-- @@
SELECT * FROM invoices WHERE id = 4 FOR KEY SHARE NOWAIT
-- @@
SELECT nextval('invoice_no')
-- @@
SELECT now(), random(), clock_timestamp()
-- @@
SELECT current_user, session_user, current_database()
-- @@
SELECT * FROM generate_series(1, 10) AS g(n) WHERE n % 2 = 0
-- @@
SELECT x FROM unnest(ARRAY[1, 2, 3]) AS x
-- @@
SELECT * FROM "CamelCase" WHERE "Id" = 1
-- @@
SELECT "Value" FROM "CamelCase" c WHERE c."Id" > 10
-- @@
TABLE providers
-- @@
VALUES (1, 'one'), (2, 'two'), (3, 'three')
-- @@
VALUES (4, 'four')
-- @@
SELECT (SELECT max(starts_at) FROM appointments) AS last_booking
-- @@
SELECT a.id FROM appointments a, LATERAL (SELECT * FROM invoices i WHERE i.appointment_id = a.id LIMIT 1) li
-- @@
SELECT relname, n_live_tup FROM pg_stat_user_tables ORDER BY n_live_tup DESC
-- @@
SELECT indexrelname, idx_scan FROM pg_stat_user_indexes WHERE idx_scan = 0
-- @@
SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'
-- @@
SELECT pid, state, query FROM pg_stat_activity WHERE datname = current_database()
-- @@
SELECT setting FROM pg_settings WHERE name = 'work_mem'
-- @@
SELECT pg_size_pretty(pg_total_relation_size('appointments'))
-- @@
INSERT INTO clients (first_name, last_name, email) VALUES ('New0', 'Client', 'new0@example.com') RETURNING id
-- @@
INSERT INTO clients (first_name, last_name, email) VALUES ('New1', 'Client', 'new1@example.com') RETURNING id
-- @@
INSERT INTO clients (first_name, last_name, email) VALUES ('New2', 'Client', 'new2@example.com') RETURNING id
-- @@
INSERT INTO audit_log (actor, action, payload) VALUES ('system', 'login', '{"ip": "10.0.0.1"}'), ('system', 'logout', '{}')
-- @@
INSERT INTO audit_log (actor, action, payload) VALUES ('dana', 'view', '{}')
-- @@
INSERT INTO audit_log (actor, action, payload) VALUES ('a', 'x', '{}'), ('b', 'y', '{}'), ('c', 'z', '{}')
-- @@
INSERT INTO appointments (client_id, provider_id, treatment_id, room_id, starts_at, ends_at) VALUES (3, 1, 2, 1, '2024-04-01 09:00+00', '2024-04-01 10:00+00') RETURNING id, status
-- @@
INSERT INTO invoices (client_id, appointment_id, total, tax) SELECT a.client_id, a.id, t.price, calc_tax(t.price) FROM appointments a JOIN treatments t ON t.id = a.treatment_id WHERE a.status = 'done' AND NOT EXISTS (SELECT 1 FROM invoices i WHERE i.appointment_id = a.id)
-- @@
INSERT INTO payments (invoice_id, amount, method, reference) SELECT id, total, 'card', 'ch_' || id FROM invoices WHERE status = 'open' AND id % 3 = 0
-- @@
INSERT INTO inventory (sku, name, qty) VALUES ('BTX-100', 'Botox 100u vial', 2) ON CONFLICT (sku) DO UPDATE SET qty = inventory.qty + EXCLUDED.qty, updated_at = now()
-- @@
INSERT INTO inventory (sku, name, qty) VALUES ('NEW-2', 'Serum', 1) ON CONFLICT DO NOTHING
-- @@
INSERT INTO clients (first_name, last_name, email) VALUES ('Ann', 'Lee', 'c5@example.com') ON CONFLICT (email) DO UPDATE SET phone = EXCLUDED.phone RETURNING id
-- @@
INSERT INTO inventory_usage (appointment_id, item_id, used) VALUES (1, 1, 1), (2, 2, 3)
-- @@
UPDATE appointments SET status = 'confirmed' WHERE id = 11
-- @@
UPDATE appointments SET status = 'cancelled' WHERE id = 12
-- @@
UPDATE appointments SET starts_at = starts_at + interval '30 minutes', ends_at = ends_at + interval '30 minutes' WHERE id = 20
-- @@
UPDATE invoices SET status = 'paid', paid_at = now() WHERE id IN (SELECT invoice_id FROM payments GROUP BY invoice_id)
-- @@
UPDATE inventory i SET qty = i.qty - u.used, updated_at = now() FROM inventory_usage u WHERE u.item_id = i.id AND u.appointment_id = 1
-- @@
UPDATE clients SET notes = jsonb_set(notes, '{vip}', 'true'::jsonb), vip = true WHERE id = 7
-- @@
UPDATE clients SET vip = false WHERE id = 8 RETURNING *
-- @@
UPDATE pgbench_accounts SET filler = E'tab\there' WHERE aid = 1
-- @@
DELETE FROM audit_log WHERE at < now() - interval '90 days'
-- @@
DELETE FROM inventory_usage u USING appointments a WHERE u.appointment_id = a.id AND a.status = 'cancelled'
-- @@
DELETE FROM deliveries WHERE sku = 'nothing' RETURNING sku
-- @@
MERGE INTO inventory t USING deliveries d ON t.sku = d.sku
WHEN MATCHED THEN UPDATE SET qty = t.qty + d.qty
WHEN NOT MATCHED THEN INSERT (sku, name, qty) VALUES (d.sku, 'unknown', d.qty)
-- @@
WITH cancelled AS (
  UPDATE appointments SET status = 'cancelled' WHERE status = 'booked' AND starts_at < '2024-03-02' RETURNING id, client_id
)
INSERT INTO audit_log (actor, action, payload) SELECT 'system', 'auto_cancel', jsonb_build_object('appointment', id) FROM cancelled
-- @@
WITH moved AS (DELETE FROM audit_log WHERE action = 'logout' RETURNING *)
SELECT count(*) FROM moved
-- @@
SELECT * INTO TEMP TABLE tmp_open_invoices FROM invoices WHERE status = 'open'
-- @@
CREATE TABLE report_2024_03 AS SELECT * FROM appointments WHERE starts_at >= '2024-03-01' AND starts_at < '2024-04-01'
-- @@
DROP TABLE report_2024_03
-- @@
CREATE TABLE IF NOT EXISTS gift_cards (code text PRIMARY KEY, balance numeric(10,2) NOT NULL DEFAULT 0, client_id bigint REFERENCES clients)
-- @@
ALTER TABLE gift_cards ADD COLUMN expires_at date
-- @@
CREATE INDEX gift_cards_client_idx ON gift_cards (client_id)
-- @@
COMMENT ON TABLE gift_cards IS 'Prepaid gift cards'
-- @@
COMMENT ON COLUMN gift_cards.balance IS 'Remaining balance, USD'
-- @@
DROP INDEX gift_cards_client_idx
-- @@
TRUNCATE gift_cards
-- @@
DROP TABLE IF EXISTS gift_cards
-- @@
CREATE INDEX CONCURRENTLY IF NOT EXISTS invoices_status_idx ON invoices (status) WHERE status = 'open'
-- @@
REFRESH MATERIALIZED VIEW daily_revenue
-- @@
CREATE OR REPLACE VIEW vip_clients AS SELECT * FROM clients WHERE vip
-- @@
DROP VIEW vip_clients
-- @@
ALTER SEQUENCE invoice_no RESTART WITH 1000
-- @@
GRANT SELECT ON treatments TO PUBLIC
-- @@
REVOKE SELECT ON treatments FROM PUBLIC
-- @@
CREATE OR REPLACE FUNCTION visit_count(cid bigint) RETURNS bigint LANGUAGE sql STABLE AS $fn$ SELECT count(*) FROM appointments WHERE client_id = cid $fn$
-- @@
SELECT visit_count(3)
-- @@
DROP FUNCTION visit_count(bigint)
-- @@
BEGIN ISOLATION LEVEL REPEATABLE READ
-- @@
SAVEPOINT before_payment
-- @@
INSERT INTO payments (invoice_id, amount, method) SELECT id, 10, 'gift' FROM invoices ORDER BY id LIMIT 1
-- @@
ROLLBACK TO SAVEPOINT before_payment
-- @@
RELEASE SAVEPOINT before_payment
-- @@
COMMIT
-- @@
START TRANSACTION READ ONLY
-- @@
SELECT count(*) FROM invoices WHERE status = 'paid'
-- @@
ROLLBACK
-- @@
BEGIN
-- @@
SET LOCAL statement_timeout = '5s'
-- @@
SET LOCAL search_path TO public, spa
-- @@
LOCK TABLE inventory IN SHARE ROW EXCLUSIVE MODE
-- @@
COMMIT
-- @@
SET search_path TO public
-- @@
SET application_name = 'medspa-api'
-- @@
SET TIME ZONE 'America/Los_Angeles'
-- @@
SET work_mem TO '64MB'
-- @@
RESET work_mem
-- @@
RESET ALL
-- @@
SHOW search_path
-- @@
SHOW timezone
-- @@
PREPARE client_by_id(bigint) AS SELECT * FROM clients WHERE id = $1
-- @@
EXECUTE client_by_id(1)
-- @@
EXECUTE client_by_id(2)
-- @@
DEALLOCATE client_by_id
-- @@
LISTEN appointment_events
-- @@
NOTIFY appointment_events, 'booked:42'
-- @@
SELECT pg_notify('appointment_events', 'cancelled:7')
-- @@
UNLISTEN appointment_events
-- @@
UNLISTEN *
-- @@
DISCARD TEMP
-- @@
EXPLAIN SELECT * FROM appointments WHERE provider_id = 2
-- @@
EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT count(*) FROM appointments WHERE status = 'done'
-- @@
EXPLAIN ANALYZE UPDATE inventory SET qty = qty WHERE sku = 'HF-TIP'
-- @@
VACUUM ANALYZE appointments
-- @@
VACUUM (FREEZE, ANALYZE) invoices
-- @@
VACUUM FULL deliveries
-- @@
ANALYZE clients
-- @@
REINDEX TABLE deliveries
-- @@
CLUSTER appointments USING appointments_starts_at_idx
-- @@
CHECKPOINT
-- @@
CALL archive_audit(365)
-- @@
DO $$ BEGIN PERFORM 1; END $$
-- @@
DO LANGUAGE plpgsql $body$ DECLARE n int; BEGIN SELECT count(*) INTO n FROM clients; END $body$
-- @@
COPY (SELECT id, email FROM clients ORDER BY id LIMIT 5) TO STDOUT WITH (FORMAT csv, HEADER)
-- @@
COPY providers TO STDOUT
-- @@
BEGIN
-- @@
DECLARE appt_cur CURSOR FOR SELECT id FROM appointments ORDER BY id
-- @@
FETCH 10 FROM appt_cur
-- @@
MOVE FORWARD 5 IN appt_cur
-- @@
CLOSE appt_cur
-- @@
COMMIT
-- @@
SELECT 'it''s' AS s, 'a''b''c' AS t
-- @@
SELECT E'\'' AS quote, E'line\nbreak', e'\\'
-- @@
SELECT $$ ' $$ AS dollar, $a$ $b$ not the end $a$ AS tagged
-- @@
SELECT /* /* nested */ still comment */ 1 AS one
-- @@
SELECT 2 AS two -- trailing comment
-- @@
SELECT "quoted""ident" FROM (SELECT 1 AS "quoted""ident") s
-- @@
SELECT U&'d\0061t\+000061' AS data
-- @@
SELECT U&'d!0061t!+000061' UESCAPE '!' AS data
-- @@
SELECT 1e-5, .5, 1.5E+10, 3., 42 AS numbers
-- @@
SELECT B'1010' AS bits, X'1F' AS hex
-- @@
SELECT 'a' || 'b'
    'continued' AS s
-- @@
SELECT '5'::int + 1, CAST('7' AS int), '2024-01-01'::date
-- @@
PREPARE plus_one(int) AS SELECT $1::int + 1
-- @@
EXECUTE plus_one(41)
-- @@
DEALLOCATE plus_one
-- @@
SELECT -5, - 5, 3 - 5, -(5), -1.5e3
-- @@
SELECT 1 <> 2, 1 != 2, 3 >= 2, 'abc' ~* 'B', 'a' !~ 'b'
-- @@
SELECT '{"a": {"b": 1}}'::jsonb -> 'a' ->> 'b', '{1,2,3}'::int[] @> ARRAY[2], ARRAY[1,2] && ARRAY[2,3]
-- @@
SELECT (ARRAY[10, 20, 30])[2], (ARRAY[10, 20, 30])[1:2]
-- @@
SELECT 'semi;colon' AS s, $$also;here$$ AS d
-- @@
SELECT "select" FROM (SELECT 1 AS "select") AS "from"
-- @@
SELECT n'national' AS n
-- @@
SELECT interval '1 day' + timestamp '2024-01-01 00:00'
-- @@
SELECT TRUE AND NOT FALSE, NULL IS NULL, 1 IS DISTINCT FROM 2
-- @@
SELECT 'x' AS "UPPER", 'y' AS lower, 'z' AS MiXeD
-- @@
SeLeCt FiRsT_nAmE FrOm ClIeNtS wHeRe Id = 9
-- @@
select	first_name
from	clients
where	id = 10
-- @@
SELECT 1::numeric(10, 2), 2.50::money
-- @@
SELECT 'abc' LIKE 'a%' ESCAPE '\'
-- @@
SELECT position('b' IN 'abc'), substring('abcdef' FROM 2 FOR 3), trim(BOTH 'x' FROM 'xax')
-- @@
SELECT $q$It's $$ inside$q$ AS nested_dollars
-- @@
SELECT 1 AS a;
-- @@
;SELECT 2 AS b
