-- 0003_write_checkpoints: write checkpoints keep their history per (user, client) and learn the
-- checkpoint that first includes them. An upload (or GET /write-checkpoint2.json) records
-- (user, client, checkpoint number, source LSN after its commit) with op_id NULL; the replicating
-- BucketWriter sets op_id when it commits a checkpoint at or beyond that LSN (and commits a
-- checkpoint for that purpose when its batch wrote no op), so a session sending checkpoint X
-- reports the highest write checkpoint of its user and client with op_id <= X.
ALTER TABLE sluice.write_checkpoints DROP CONSTRAINT write_checkpoints_pkey;
ALTER TABLE sluice.write_checkpoints ADD PRIMARY KEY (user_id, client_id, checkpoint);
ALTER TABLE sluice.write_checkpoints ADD COLUMN op_id bigint;
-- The writer's lookup of write checkpoints that replication has just passed.
CREATE INDEX write_checkpoints_pending ON sluice.write_checkpoints (lsn) WHERE op_id IS NULL;
-- Numbers of server-assigned write checkpoints (POST /upload, GET /write-checkpoint2.json): one
-- sequence, so they only grow for every client.
CREATE SEQUENCE sluice.write_checkpoint_numbers;
