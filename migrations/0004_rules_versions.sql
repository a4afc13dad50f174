-- 0004_rules_versions: several sync-rules versions side by side in one storage, so a changed rules
-- file is built in the background (its own slot and snapshot) while the active version keeps
-- serving, then switched to in one transaction (see server/app/rules_versions.h).
--
-- ops and buckets need nothing: bucket ids carry the version as a prefix ("2#by_user[...]").
-- The per-row state, the lookup index and the checkpoints are keyed by version here. Rows written
-- before this migration belong to version 1 (the prefix "1#" every earlier release used).

ALTER TABLE sluice.current_rows ADD COLUMN rules_version bigint NOT NULL DEFAULT 1;
ALTER TABLE sluice.current_rows DROP CONSTRAINT current_rows_pkey;
ALTER TABLE sluice.current_rows ADD PRIMARY KEY (rules_version, source_table, row_key);

ALTER TABLE sluice.parameter_lookups ADD COLUMN rules_version bigint NOT NULL DEFAULT 1;
ALTER TABLE sluice.parameter_lookups DROP CONSTRAINT parameter_lookups_pkey;
ALTER TABLE sluice.parameter_lookups ADD PRIMARY KEY (rules_version, lookup_key, source_table, row_key);
DROP INDEX sluice.parameter_lookups_by_row;

-- Checkpoints of different versions may share an op_id (each version's writer counts on from what
-- it finds); clients only ever see the active version's.
ALTER TABLE sluice.checkpoints ADD COLUMN rules_version bigint NOT NULL DEFAULT 1;
ALTER TABLE sluice.checkpoints DROP CONSTRAINT checkpoints_pkey;
ALTER TABLE sluice.checkpoints ADD PRIMARY KEY (rules_version, op_id);
-- The highest op_id of any version (where a writer continues after a restart) without a scan.
CREATE INDEX checkpoints_by_op_id ON sluice.checkpoints (op_id);

-- Version lifecycle: building -> active -> retired -> (cleaned_at set once its storage and slot are
-- gone). A build that is abandoned (the rules changed again) goes building -> retired directly.
ALTER TABLE sluice.rules_versions ADD COLUMN publication text NOT NULL DEFAULT '';
-- The checkpoint at which the version became active: sessions switch bucket sets there.
ALTER TABLE sluice.rules_versions ADD COLUMN activated_op_id bigint;
ALTER TABLE sluice.rules_versions ADD COLUMN cleaned_at timestamptz;
CREATE UNIQUE INDEX rules_versions_one_active ON sluice.rules_versions (state) WHERE state = 'active';
CREATE UNIQUE INDEX rules_versions_one_building ON sluice.rules_versions (state) WHERE state = 'building';
