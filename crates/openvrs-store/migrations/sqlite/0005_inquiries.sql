-- openvrs schema, version 5 (sqlite): inter-municipality inquiry and provision.

-- The asking municipality's inquiries (single, or one row of a bulk job) and their answers.
-- Never a My Number: only its keyed index under the asker's own index key (to see the same
-- person asked of municipality after municipality).
CREATE TABLE inquiries (
    municipality_code CHAR(6) NOT NULL,
    inquiry_id BIGINT NOT NULL,
    job_id BIGINT,
    row_number BIGINT,
    source_municipality CHAR(6),
    address_number TEXT,
    my_number_index BLOB,
    basis TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT,
    record_count BIGINT NOT NULL,
    asked_by TEXT NOT NULL,
    at BIGINT NOT NULL,
    attached_at BIGINT,
    attached_by TEXT,
    PRIMARY KEY (municipality_code, inquiry_id)
);
CREATE INDEX inquiries_job ON inquiries (municipality_code, job_id, row_number);
CREATE INDEX inquiries_person ON inquiries (municipality_code, my_number_index, at);
CREATE INDEX inquiries_user ON inquiries (municipality_code, asked_by, at);
CREATE INDEX inquiries_at ON inquiries (municipality_code, at);

-- The doses an inquiry brought back: the source's dose as it was provided.
CREATE TABLE inquiry_doses (
    municipality_code CHAR(6) NOT NULL,
    inquiry_id BIGINT NOT NULL,
    address_number TEXT NOT NULL,
    dose_id BIGINT NOT NULL,
    version BIGINT NOT NULL,
    dose_number BIGINT NOT NULL,
    status TEXT NOT NULL,
    given_on TEXT NOT NULL,
    product TEXT NOT NULL,
    lot TEXT NOT NULL,
    venue TEXT NOT NULL,
    doctor TEXT NOT NULL,
    source TEXT NOT NULL,
    voucher_number CHAR(10),
    given_in CHAR(6),
    recorded_at BIGINT NOT NULL,
    recorded_by TEXT NOT NULL,
    PRIMARY KEY (municipality_code, inquiry_id, dose_id)
);

-- 情報提供等の記録: every answer given, kept by the providing municipality.
CREATE TABLE provisions (
    municipality_code CHAR(6) NOT NULL,
    provision_id BIGINT NOT NULL,
    asked_by_municipality CHAR(6) NOT NULL,
    asked_by TEXT NOT NULL,
    inquiry_id BIGINT NOT NULL,
    address_number TEXT NOT NULL,
    status TEXT NOT NULL,
    record_count BIGINT NOT NULL,
    basis TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (municipality_code, provision_id)
);
CREATE INDEX provisions_person ON provisions (municipality_code, address_number);

-- Where an attached dose came from.
CREATE TABLE dose_provenance (
    municipality_code CHAR(6) NOT NULL,
    dose_id BIGINT NOT NULL,
    source_municipality CHAR(6) NOT NULL,
    inquiry_id BIGINT NOT NULL,
    source_dose_id BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (municipality_code, dose_id)
);

-- Bulk inquiries (一括照会): one job per uploaded file.
CREATE TABLE inquiry_jobs (
    municipality_code CHAR(6) NOT NULL,
    job_id BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    total_rows BIGINT NOT NULL,
    done_rows BIGINT NOT NULL,
    finished_at BIGINT,
    error TEXT,
    PRIMARY KEY (municipality_code, job_id)
);
