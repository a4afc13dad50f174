-- 0002_c_collation: byte-order ("C") collation for every text column that is a key or an index
-- column. Sluice only compares these for equality and keeps its own order by op_id, so linguistic
-- collation bought nothing, while under the database default (en_US.UTF-8, C.UTF-8, ...) every
-- btree comparison went through strcoll: the largest single cost of writing the op log.
ALTER TABLE sluice.ops ALTER COLUMN bucket TYPE text COLLATE "C";
ALTER TABLE sluice.buckets ALTER COLUMN bucket TYPE text COLLATE "C";
ALTER TABLE sluice.current_rows
    ALTER COLUMN source_table TYPE text COLLATE "C",
    ALTER COLUMN row_key TYPE text COLLATE "C";
ALTER TABLE sluice.parameter_lookups
    ALTER COLUMN lookup_key TYPE text COLLATE "C",
    ALTER COLUMN source_table TYPE text COLLATE "C",
    ALTER COLUMN row_key TYPE text COLLATE "C";
ALTER TABLE sluice.snapshot_progress
    ALTER COLUMN slot_name TYPE text COLLATE "C",
    ALTER COLUMN source_table TYPE text COLLATE "C";
ALTER TABLE sluice.replication_state ALTER COLUMN slot_name TYPE text COLLATE "C";
ALTER TABLE sluice.write_checkpoints
    ALTER COLUMN user_id TYPE text COLLATE "C",
    ALTER COLUMN client_id TYPE text COLLATE "C";
ALTER TABLE sluice.uploads
    ALTER COLUMN client_id TYPE text COLLATE "C",
    ALTER COLUMN batch_id TYPE text COLLATE "C";
