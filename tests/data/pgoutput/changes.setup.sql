-- Schema for the "changes" capture: each replica identity, TOAST, truncate options, an origin.
DROP PUBLICATION IF EXISTS capture;
DROP TABLE IF EXISTS items, full_rows, by_index, child, parent CASCADE;
SELECT pg_replication_origin_drop('capture_origin') FROM pg_replication_origin WHERE roname = 'capture_origin';
CREATE TABLE items (id int PRIMARY KEY, name text, big text);
ALTER TABLE items ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE TABLE full_rows (id int, v text);
ALTER TABLE full_rows REPLICA IDENTITY FULL;
CREATE TABLE by_index (a int NOT NULL, b int NOT NULL, c text);
CREATE UNIQUE INDEX by_index_ab ON by_index (a, b);
ALTER TABLE by_index REPLICA IDENTITY USING INDEX by_index_ab;
CREATE TABLE parent (id serial PRIMARY KEY);
CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent (id));
CREATE PUBLICATION capture FOR TABLE items, full_rows, by_index, parent, child;
