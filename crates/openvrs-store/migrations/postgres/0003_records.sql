-- openvrs schema, version 3 (postgres): the product catalogue, dose history, person changes.

-- National (reference) table: the vaccine product catalogue, maintained by the national
-- administrator. Seed rows: CVX from the CDC CVX table; ICD-11 MMS vaccine codes; EU codes from
-- the DCC value sets (vaccine-medicinal-product, vaccine-mah-manf, vaccine-prophylaxis).
-- Intervals and lot patterns are development seed values for the administrator to confirm.
CREATE TABLE products (
    product_code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    ledger_maker TEXT NOT NULL UNIQUE,
    cvx TEXT NOT NULL,
    icd11 TEXT NOT NULL,
    eu_mp TEXT NOT NULL,
    eu_ma TEXT NOT NULL,
    eu_vp TEXT NOT NULL,
    min_interval_days BIGINT NOT NULL,
    lot_pattern TEXT NOT NULL
);
INSERT INTO products VALUES
    ('comirnaty', 'コミナティ筋注', 'ファイザー', '208', 'XM0GQ8', 'EU/1/20/1528', 'ORG-100030215', '1119349007', 18, '[A-Z]{2}[0-9]{4}'),
    ('comirnaty-5-11', 'コミナティ筋注5～11歳用', 'ファイザー(5-11歳)', '218', 'XM0GQ8', 'EU/1/20/1528', 'ORG-100030215', '1119349007', 18, '[A-Z]{2}[0-9]{4}'),
    ('comirnaty-bivalent', 'コミナティRTU筋注(2価)', 'ファイザー(2価)', '300', 'XM0GQ8', 'EU/1/20/1528', 'ORG-100030215', '1119349007', 90, '[A-Z]{2}[0-9]{4}'),
    ('spikevax', 'スパイクバックス筋注', '武田/モデルナ', '207', 'XM0GQ8', 'EU/1/20/1507', 'ORG-100031184', '1119349007', 24, '[0-9A-Z]{6,10}'),
    ('spikevax-bivalent', 'スパイクバックス筋注(2価)', '武田/モデルナ(2価)', '229', 'XM0GQ8', 'EU/1/20/1507', 'ORG-100031184', '1119349007', 90, '[0-9A-Z]{6,10}'),
    ('vaxzevria', 'バキスゼブリア筋注', 'アストラゼネカ', '210', 'XM9QW8', 'EU/1/21/1529', 'ORG-100001699', '29061000087103', 27, '[0-9A-Z]{5,10}'),
    ('nuvaxovid', 'ヌバキソビッド筋注', '武田/ノババックス', '211', 'XM5JC5', 'EU/1/21/1618', 'ORG-100032020', '1162643001', 18, '[0-9A-Z]{5,10}'),
    ('jcovden', 'ジェコビデン筋注', 'ヤンセン', '212', 'XM9QW8', 'EU/1/20/1525', 'ORG-100001417', '29061000087103', 56, '[0-9A-Z]{5,10}');

-- The maker follows from the product (one place for each fact).
ALTER TABLE doses DROP COLUMN manufacturer;
ALTER TABLE doses ADD COLUMN voucher_number CHAR(10);
ALTER TABLE doses ADD COLUMN given_in CHAR(6);
ALTER TABLE doses ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

-- Every earlier version of a dose, with why and by whom it changed: history is never lost.
CREATE TABLE dose_history (
    municipality_code CHAR(6) NOT NULL,
    dose_id BIGINT NOT NULL,
    version BIGINT NOT NULL,
    address_number TEXT NOT NULL,
    dose_number BIGINT NOT NULL,
    status TEXT NOT NULL,
    given_on DATE NOT NULL,
    product TEXT NOT NULL,
    lot TEXT NOT NULL,
    venue TEXT NOT NULL,
    doctor TEXT NOT NULL,
    source TEXT NOT NULL,
    voucher_number CHAR(10),
    given_in CHAR(6),
    recorded_at BIGINT NOT NULL,
    recorded_by TEXT NOT NULL,
    change TEXT NOT NULL,
    reason TEXT NOT NULL,
    changed_at BIGINT NOT NULL,
    changed_by TEXT NOT NULL,
    PRIMARY KEY (municipality_code, dose_id, version)
);
CREATE INDEX dose_history_person ON dose_history (municipality_code, address_number);

-- Corrections, flag changes and suspensions of a person, with the reason (開示・訂正・利用停止).
-- Field names only: the values live (sealed) in persons.
CREATE TABLE person_changes (
    municipality_code CHAR(6) NOT NULL,
    change_id BIGINT NOT NULL,
    address_number TEXT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    fields TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (municipality_code, change_id)
);
CREATE INDEX person_changes_person ON person_changes (municipality_code, address_number);
