-- openvrs schema, version 1, PostgreSQL.
-- Rules (reference/scale-out.md): every municipality table has municipality_code first in its
-- primary key and in every unique and foreign key; no triggers; national tables are small
-- reference tables that municipality tables may reference, never the other way round.

-- National (reference) tables.
CREATE TABLE municipalities (
    municipality_code CHAR(6) PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Municipality (distributed) tables.
CREATE TABLE tenant_keys (
    municipality_code CHAR(6) NOT NULL REFERENCES municipalities (municipality_code),
    kind TEXT NOT NULL,
    version BIGINT NOT NULL,
    wrapped BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (municipality_code, kind, version)
);

CREATE TABLE persons (
    municipality_code CHAR(6) NOT NULL REFERENCES municipalities (municipality_code),
    address_number TEXT NOT NULL,
    name_sealed BYTEA NOT NULL,
    name_kana_sealed BYTEA NOT NULL,
    birth_date_sealed BYTEA NOT NULL,
    my_number_sealed BYTEA,
    my_number_index BYTEA,
    sex SMALLINT NOT NULL,
    moved_out_on DATE,
    moved_out_to CHAR(6),
    deceased_on DATE,
    use_suspended SMALLINT NOT NULL DEFAULT 0,
    content_digest BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (municipality_code, address_number)
);
CREATE UNIQUE INDEX persons_my_number ON persons (municipality_code, my_number_index);

CREATE TABLE vouchers (
    municipality_code CHAR(6) NOT NULL,
    voucher_number CHAR(10) NOT NULL,
    address_number TEXT NOT NULL,
    voucher_type SMALLINT,
    dose_number BIGINT,
    issued_on DATE,
    PRIMARY KEY (municipality_code, voucher_number),
    FOREIGN KEY (municipality_code, address_number)
        REFERENCES persons (municipality_code, address_number) ON DELETE CASCADE
);
CREATE INDEX vouchers_person ON vouchers (municipality_code, address_number);

CREATE TABLE doses (
    municipality_code CHAR(6) NOT NULL,
    dose_id BIGINT NOT NULL,
    address_number TEXT NOT NULL,
    dose_number BIGINT NOT NULL,
    status TEXT NOT NULL,
    given_on DATE NOT NULL,
    product TEXT NOT NULL,
    manufacturer TEXT NOT NULL,
    lot TEXT NOT NULL,
    venue TEXT NOT NULL,
    doctor TEXT NOT NULL,
    source TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    recorded_by TEXT NOT NULL,
    PRIMARY KEY (municipality_code, dose_id),
    FOREIGN KEY (municipality_code, address_number)
        REFERENCES persons (municipality_code, address_number) ON DELETE CASCADE
);
CREATE INDEX doses_person ON doses (municipality_code, address_number, dose_number);

CREATE TABLE audit_log (
    municipality_code CHAR(6) NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    zone TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    outcome TEXT NOT NULL,
    link BYTEA NOT NULL,
    PRIMARY KEY (municipality_code, seq)
);

-- The last link of each municipality's chain; its row lock serialises a municipality's writes.
CREATE TABLE audit_heads (
    municipality_code CHAR(6) PRIMARY KEY REFERENCES municipalities (municipality_code),
    seq BIGINT NOT NULL,
    link BYTEA NOT NULL
);
