-- openvrs schema, version 6 (sqlite): the deployment's certificate signing keys.

-- One row per key ever made: the private part sealed under the master key (bound to its kind
-- and kid), the public JWK published until the key's certificates expire. At most one active
-- (not retired) key per kind.
CREATE TABLE signing_keys (
    kind TEXT NOT NULL,
    kid TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    sealed BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT,
    PRIMARY KEY (kind, kid)
);
