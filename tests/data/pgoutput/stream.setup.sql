-- Schema for the "stream" capture (protocol v2, streaming 'on', logical_decoding_work_mem 64kB).
DROP PUBLICATION IF EXISTS capture;
DROP TABLE IF EXISTS big;
CREATE TABLE big (id int PRIMARY KEY, pad text);
CREATE PUBLICATION capture FOR TABLE big;
