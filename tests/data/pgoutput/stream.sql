-- Workload for the "stream" capture: a large committed transaction (streamed in chunks), a large
-- aborted one, a large one with a rolled-back subtransaction, and a small one (not streamed).
INSERT INTO big SELECT g, repeat('p', 100) FROM generate_series(1, 400) g;
BEGIN;
INSERT INTO big SELECT g, repeat('q', 100) FROM generate_series(2001, 2400) g;
ROLLBACK;
BEGIN;
INSERT INTO big SELECT g, repeat('r', 100) FROM generate_series(4001, 4400) g;
SAVEPOINT s;
INSERT INTO big SELECT g, repeat('s', 100) FROM generate_series(6001, 6400) g;
ROLLBACK TO SAVEPOINT s;
UPDATE big SET pad = 'small' WHERE id = 1;
COMMIT;
DELETE FROM big WHERE id = 2;
SELECT pg_logical_emit_message(false, 'capture-end', '');
