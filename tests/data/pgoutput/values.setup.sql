-- Schema for the "values" capture: one column per decoded Postgres type.
DROP PUBLICATION IF EXISTS capture;
DROP TABLE IF EXISTS all_types;
DROP TYPE IF EXISTS mood CASCADE;
DROP DOMAIN IF EXISTS positive_int CASCADE;
DROP DOMAIN IF EXISTS short_text CASCADE;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive_int AS int8 CHECK (VALUE > 0);
CREATE DOMAIN short_text AS varchar(10);
CREATE TABLE all_types (
    id int4 PRIMARY KEY,
    i2 int2, i8 int8, num numeric(20, 5), num_free numeric, f4 float4, f8 float8, flag bool,
    t text, vc varchar(20), ch char(3), one_char "char", u uuid, j json, jb jsonb,
    ts timestamp, tstz timestamptz, d date, tm time, iv interval, raw bytea,
    ints int4[], texts text[], grid int8[][], floats float8[], bools bool[], jsons jsonb[],
    moods mood[], m mood, pos positive_int, st short_text, nums numeric[], stamps timestamptz[]
);
CREATE PUBLICATION capture FOR TABLE all_types;
