-- openvrs schema, version 9: data key rotation.

-- The version of the municipality's data key the row's personal fields are sealed with, so that
-- a rotation finds the rows still to re-seal without opening them. Every row so far is version 1.
ALTER TABLE persons ADD COLUMN key_version BIGINT NOT NULL DEFAULT 1;
