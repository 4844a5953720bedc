-- openvrs schema, version 4 (postgres): venue tablets.

-- Each tablet submission by its device's idempotency key: a retry after a lost answer gets the
-- first answer again and never records twice.
CREATE TABLE tablet_requests (
    municipality_code CHAR(6) NOT NULL,
    device TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_digest BYTEA NOT NULL,
    outcome TEXT NOT NULL,
    record_id BIGINT NOT NULL,
    address_number TEXT NOT NULL,
    dose_number BIGINT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (municipality_code, device, idempotency_key)
);

-- A tablet's record of a dose already recorded differently: a tablet never overwrites; staff
-- of the municipality decide.
CREATE TABLE dose_conflicts (
    municipality_code CHAR(6) NOT NULL,
    conflict_id BIGINT NOT NULL,
    address_number TEXT NOT NULL,
    existing_dose_id BIGINT NOT NULL,
    dose_number BIGINT NOT NULL,
    given_on DATE NOT NULL,
    product TEXT NOT NULL,
    lot TEXT NOT NULL,
    venue TEXT NOT NULL,
    doctor TEXT NOT NULL,
    voucher_number CHAR(10),
    device TEXT NOT NULL,
    at BIGINT NOT NULL,
    resolved_at BIGINT,
    resolved_by TEXT,
    resolution TEXT,
    PRIMARY KEY (municipality_code, conflict_id)
);
CREATE INDEX dose_conflicts_open ON dose_conflicts (municipality_code, resolved_at);
