-- 0005_lookup_history: the parameter lookup index as of any recent checkpoint, not only as of now.
--
-- A session resolves its buckets at checkpoint N and then serves ops up to N. When it read the
-- index as it stood at that moment, a grant committed after N (in a later storage write) could put
-- a bucket in its checkpoint whose rows at N the user was never allowed to see together with that
-- grant: a todo that had already left the list before the share was made, say. So each entry now
-- records the op_id range it is valid for: visible at checkpoint N when from_op <= N and
-- (to_op IS NULL or N < to_op). The writer closes entries instead of deleting them, deletes entries
-- that no checkpoint ever saw, and drops closed entries once no session can still resolve at a
-- checkpoint before their end (server/storage/bucket_writer.cpp).
--
-- Entries written before this migration are valid from the beginning.

ALTER TABLE sluice.parameter_lookups ADD COLUMN from_op bigint NOT NULL DEFAULT 0;
ALTER TABLE sluice.parameter_lookups ADD COLUMN to_op bigint;
ALTER TABLE sluice.parameter_lookups DROP CONSTRAINT parameter_lookups_pkey;
ALTER TABLE sluice.parameter_lookups ADD PRIMARY KEY (rules_version, lookup_key, source_table, row_key, from_op);
-- Closed entries, oldest end first: what the writer's clean-up deletes.
CREATE INDEX parameter_lookups_closed ON sluice.parameter_lookups (rules_version, to_op) WHERE to_op IS NOT NULL;
