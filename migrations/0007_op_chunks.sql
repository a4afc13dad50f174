-- 0007_op_chunks: the op log moves from one row per op to chunks of a bucket's ops
-- (server/storage/op_chunks.h has the format and the measurements behind it). sluice.ops stays, as
-- a view that unpacks the chunks, for operators' queries and for tests; Sluice itself reads and
-- writes sluice.op_chunks.
CREATE TABLE sluice.op_chunks (
    bucket          text COLLATE "C" NOT NULL,
    first_op_id     bigint NOT NULL,
    last_op_id      bigint NOT NULL,
    op_count        integer NOT NULL,
    checksum        bigint NOT NULL,   -- sum of the ops' checksums, not wrapped
    ops             text NOT NULL,     -- JSON: [[op_id, op, object_type, object_id, subkey, data, checksum], ...]
    PRIMARY KEY (bucket, last_op_id)
);

-- Existing ops become chunks of one op each: valid chunks, compacted or rewritten no differently.
INSERT INTO sluice.op_chunks (bucket, first_op_id, last_op_id, op_count, checksum, ops)
SELECT bucket, op_id, op_id, 1, checksum,
       json_build_array(json_build_array(op_id, op, object_type, object_id, subkey, data, checksum))::text
FROM sluice.ops;

DROP TABLE sluice.ops;

CREATE VIEW sluice.ops AS
SELECT c.bucket,
       (e->>0)::bigint AS op_id,
       (e->>1)::smallint AS op,
       e->>2 AS object_type,
       e->>3 AS object_id,
       e->>4 AS subkey,
       e->>5 AS data,
       (e->>6)::bigint AS checksum
FROM sluice.op_chunks c, json_array_elements(c.ops::json) AS e;
