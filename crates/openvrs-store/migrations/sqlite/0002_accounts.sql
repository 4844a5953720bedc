-- openvrs schema, version 2, SQLite. Accounts, sessions and security events: national tables (reference tables on Citus; sessions
-- and security events are written often and are small, so they stay on the coordinator).

CREATE TABLE accounts (
    user_id TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    prefecture SMALLINT,
    municipality_code CHAR(6) REFERENCES municipalities (municipality_code),
    venue TEXT,
    password_hash TEXT,
    token_digest BLOB,
    disabled SMALLINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX accounts_token ON accounts (token_digest);

CREATE TABLE sessions (
    session_digest BLOB PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES accounts (user_id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE security_events (
    event_id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    municipality_code CHAR(6),
    user_id TEXT,
    client TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX security_events_municipality ON security_events (municipality_code, event_id);
CREATE INDEX security_events_user ON security_events (user_id, kind, at);
