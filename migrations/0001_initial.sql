-- 0001_initial: Sluice's storage schema. Everything lives in schema "sluice", which must never be
-- part of a replicated publication. Applied by `sluice migrate` (see server/storage/migrator.cpp),
-- which records each version in sluice.schema_migrations.

-- One row per sync-rules version. Bucket ids carry the version as a prefix ("2#by_user[\"u1\"]").
CREATE TABLE sluice.rules_versions (
    id              bigint PRIMARY KEY,
    content         text NOT NULL,
    state           text NOT NULL CHECK (state IN ('building', 'active', 'retired')),
    slot_name       text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    activated_at    timestamptz
);

-- The op log. op_id is one 64-bit counter for all buckets, assigned by the single replicating process
-- (it holds the replicator advisory lock) and continued from max(op_id) after a restart.
CREATE TABLE sluice.ops (
    bucket          text NOT NULL,
    op_id           bigint NOT NULL,
    op              smallint NOT NULL CHECK (op BETWEEN 1 AND 4),  -- 1 PUT, 2 REMOVE, 3 MOVE, 4 CLEAR
    object_type     text,
    object_id       text,
    subkey          text,
    data            text,              -- the output row as JSON text (PUT only)
    checksum        bigint NOT NULL,   -- unsigned 32-bit
    PRIMARY KEY (bucket, op_id)
);

-- Per-bucket running totals, so a checksum never needs a scan of the bucket: the checksum at a
-- checkpoint is the total minus the (few) ops written after it.
CREATE TABLE sluice.buckets (
    bucket          text PRIMARY KEY,
    last_op_id      bigint NOT NULL,
    checksum        bigint NOT NULL,   -- sum of op checksums mod 2^32
    op_count        bigint NOT NULL,
    compacted_to    bigint NOT NULL DEFAULT 0
);

-- The current copy of each replicated row (its column values in text form, to fill unchanged TOAST
-- values), the bucket placements it has (to emit REMOVEs when it moves out of a bucket) and the
-- lookup entries it contributes (to update the lookup index when it changes).
CREATE TABLE sluice.current_rows (
    source_table    text NOT NULL,     -- "schema.table"
    row_key         text NOT NULL,     -- replica identity values as a JSON array
    data            text NOT NULL,     -- column values, encoded by server/storage/row_codec
    placements      text NOT NULL,     -- (bucket, object_type, object_id) triples, same encoding
    lookups         text NOT NULL,     -- (lookup_key, bucket_params) pairs, same encoding
    PRIMARY KEY (source_table, row_key)
);

-- Parameter-lookup index maintained from replicated rows of parameter tables.
CREATE TABLE sluice.parameter_lookups (
    lookup_key      text NOT NULL,     -- e.g. user_lists/1/0["u1"]
    source_table    text NOT NULL,
    row_key         text NOT NULL,
    bucket_params   text NOT NULL,     -- JSON array of bucket parameter values
    PRIMARY KEY (lookup_key, source_table, row_key)
);
CREATE INDEX parameter_lookups_by_row ON sluice.parameter_lookups (source_table, row_key);

-- Checkpoints: created only at source commit boundaries.
CREATE TABLE sluice.checkpoints (
    op_id           bigint PRIMARY KEY,
    lsn             pg_lsn NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Replication progress per slot, including a resumable initial snapshot.
CREATE TABLE sluice.replication_state (
    slot_name       text PRIMARY KEY,
    rules_version   bigint NOT NULL,
    snapshot_done   boolean NOT NULL DEFAULT false,
    durable_lsn     pg_lsn NOT NULL DEFAULT '0/0',
    -- Checkpoints are hidden from clients until the stream reaches this LSN: the point where a
    -- snapshot resumed after a crash (and so read newer data than the slot's start) has converged.
    visible_from    pg_lsn NOT NULL DEFAULT '0/0',
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE sluice.snapshot_progress (
    slot_name       text NOT NULL,
    source_table    text NOT NULL,
    last_key        text,              -- last copied key as JSON text; NULL before the first chunk
    rows_done       bigint NOT NULL DEFAULT 0,
    rows_estimated  bigint NOT NULL DEFAULT 0,
    done            boolean NOT NULL DEFAULT false,
    PRIMARY KEY (slot_name, source_table)
);

-- Write checkpoints: a client's uploads are visible once replication passes lsn.
CREATE TABLE sluice.write_checkpoints (
    user_id         text NOT NULL,
    client_id       text NOT NULL,
    checkpoint      bigint NOT NULL,
    lsn             pg_lsn NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, client_id)
);

-- Exactly-once uploads: a batch and its result, recorded in the batch's own transaction.
CREATE TABLE sluice.uploads (
    client_id       text NOT NULL,
    batch_id        text NOT NULL,
    user_id         text NOT NULL,
    result          jsonb NOT NULL,
    applied_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, batch_id)
);
