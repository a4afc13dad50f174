-- 0006_ops_in_flight: the writer streams ops into sluice.ops on a connection of its own, in parallel
-- with the rest of each storage write (server/storage/bucket_writer.cpp). That transaction commits
-- just before the main one, which holds the bucket totals, the checkpoint and the durable LSN. If
-- the main commit then fails (a crash, a lost connection), the ops it would have made visible are
-- left behind: never inside a checkpoint yet, but they would be inside the next one.
--
-- So the ops transaction records what it wrote here, and the main transaction deletes that record
-- when it commits. A record still present when a writer starts (or rolls back) names exactly the ops
-- to remove: those of its buckets within its op_id range.
CREATE TABLE sluice.ops_in_flight (
    rules_version   bigint NOT NULL,
    first_op_id     bigint NOT NULL,
    last_op_id      bigint NOT NULL,
    buckets         text[] COLLATE "C" NOT NULL,
    PRIMARY KEY (rules_version, first_op_id)
);
