-- Identity: organisations, users, refresh tokens, machine credentials, signing keys, the
-- published lists, idempotency keys and the audit log. Ids are 16-byte BLOBs, times text.

CREATE TABLE organisations (
    organisation_id BLOB PRIMARY KEY,
    kind TEXT NOT NULL,
    lrb_type TEXT,
    display_name TEXT NOT NULL,
    ukprn TEXT UNIQUE,
    organisation_reference TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX organisations_by_name ON organisations (display_name, organisation_id);

CREATE TABLE users (
    user_id BLOB PRIMARY KEY,
    organisation_id BLOB REFERENCES organisations (organisation_id),
    username TEXT NOT NULL,
    username_key TEXT NOT NULL UNIQUE,
    given_name TEXT NOT NULL,
    family_name TEXT NOT NULL,
    email TEXT NOT NULL,
    roles TEXT NOT NULL,
    state TEXT NOT NULL,
    uln TEXT,
    password_hash TEXT NOT NULL,
    password_change_required INTEGER NOT NULL,
    failed_sign_ins INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_sign_in_at TEXT
);
CREATE INDEX users_by_organisation ON users (organisation_id, username_key);

CREATE TABLE refresh_tokens (
    token_hash BLOB PRIMARY KEY,
    family_id BLOB NOT NULL,
    user_id BLOB NOT NULL REFERENCES users (user_id),
    issued_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT,
    revoked_at TEXT
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_user ON refresh_tokens (user_id);

CREATE TABLE client_credentials (
    client_id BLOB PRIMARY KEY,
    organisation_id BLOB NOT NULL REFERENCES organisations (organisation_id),
    display_name TEXT NOT NULL,
    roles TEXT NOT NULL,
    service TEXT,
    secret_hash BLOB NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE UNIQUE INDEX client_credentials_one_per_service
    ON client_credentials (service) WHERE service IS NOT NULL AND revoked_at IS NULL;
CREATE INDEX client_credentials_by_organisation
    ON client_credentials (organisation_id, created_at, client_id);

CREATE TABLE idempotency_keys (
    caller TEXT NOT NULL,
    operation TEXT NOT NULL,
    request_id TEXT NOT NULL,
    resource_id BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (caller, operation, request_id)
);

CREATE TABLE signing_keys (
    key_id TEXT PRIMARY KEY,
    public_key_pem TEXT NOT NULL,
    private_key_nonce BLOB NOT NULL,
    private_key_sealed BLOB NOT NULL,
    created_at TEXT NOT NULL,
    retired_at TEXT,
    expires_at TEXT
);
-- At most one current (unretired) key, so two replicas starting or rotating at once cannot
-- both install one.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys ((retired_at IS NULL))
    WHERE retired_at IS NULL;

CREATE TABLE providers (
    ukprn TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    town TEXT NOT NULL,
    postcode TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE awarding_organisations (
    number TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    acronym TEXT NOT NULL,
    status TEXT NOT NULL,
    ukprn TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE audit_events (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    audit_event_id BLOB NOT NULL UNIQUE,
    event_time TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    actor_organisation_id BLOB,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    target_organisation_id BLOB,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    request_id TEXT NOT NULL
);
CREATE INDEX audit_events_by_actor_organisation ON audit_events (actor_organisation_id, sequence);
CREATE INDEX audit_events_by_target_organisation ON audit_events (target_organisation_id, sequence);
