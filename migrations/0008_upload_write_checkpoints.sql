-- A batch's record keeps the write checkpoint its transaction issued (NULL for records written by
-- an older Sluice). Uploads write it in the statement that inserts the record; after a snapshot,
-- the replicator reads the checkpoints the snapshot already covers from here (see
-- server/storage/write_checkpoints.h). The same column is added by the Uploader when the source
-- database is another database.
ALTER TABLE sluice.uploads ADD COLUMN write_checkpoint bigint;
