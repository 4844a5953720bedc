-- openvrs schema, version 7 (postgres): issued vaccination certificates and their revocation.

-- The public part of a signing key: a JWK for SMART Health Cards, a PEM certificate for the
-- CSCA and the VDS-NC and EU DCC signers.
ALTER TABLE signing_keys RENAME COLUMN public_jwk TO public_part;

-- Every certificate a municipality issued: what, for whom, how, with which key. Never the
-- certificate's content (it can be issued again from the record).
CREATE TABLE certificates (
    municipality_code CHAR(6) NOT NULL,
    certificate_id TEXT NOT NULL,
    address_number TEXT NOT NULL,
    kind TEXT NOT NULL,
    format TEXT NOT NULL,
    channel TEXT NOT NULL,
    kid TEXT NOT NULL,
    rid TEXT,
    issued_at BIGINT NOT NULL,
    issued_by TEXT NOT NULL,
    revoked_at BIGINT,
    revoked_by TEXT,
    revocation_reason TEXT,
    PRIMARY KEY (municipality_code, certificate_id)
);
CREATE INDEX certificates_person ON certificates (municipality_code, address_number);

-- The deployment's published revocation list, per SMART Health Card key: revocation ids only
-- (unlinkable to a person without the issuer's secret). Global, like signing_keys.
CREATE TABLE revocations (
    kid TEXT NOT NULL,
    rid TEXT NOT NULL,
    revoked_at BIGINT NOT NULL,
    PRIMARY KEY (kid, rid)
);
